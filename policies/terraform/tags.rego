# Every resource a Terraform plan creates or updates carries the tags finance and on-call rely on:
# `team`, `cost_center` and `environment`, non-empty, with `environment` one of dev, staging,
# production.
#
# Input: the JSON of a plan, as `terraform show -json PLANFILE` prints it (conftest:
# `conftest test --namespace terraform.tags plan.json`). Read: `resource_changes[]` with
# `address`, `type`, `change.actions` and `change.after`. Tags are looked up in
# `change.after.input.tags` for `terraform_data` resources and in `change.after.tags` for
# provider resources. Inputs of any other shape produce no results.
package terraform.tags

import rego.v1

required_tags := {"team", "cost_center", "environment"}

environments := {"dev", "staging", "production"}

# Resources the plan creates or updates; deletes and no-ops are not checked.
changed_resources contains change if {
	some change in input.resource_changes
	change.mode == "managed"
	some action in change.change.actions
	action in {"create", "update"}
}

tags_of(change) := tags if {
	change.type == "terraform_data"
	tags := change.change.after.input.tags
} else := tags if {
	tags := change.change.after.tags
} else := {}

deny contains msg if {
	some change in changed_resources
	tags := tags_of(change)
	some tag in required_tags
	not tags[tag]
	msg := sprintf("%s: required tag `%s` is missing; add it to the module's tags (required: team, cost_center, environment)", [change.address, tag])
}

deny contains msg if {
	some change in changed_resources
	tags := tags_of(change)
	some tag in required_tags
	tags[tag] == ""
	msg := sprintf("%s: tag `%s` is empty; give it a value", [change.address, tag])
}

deny contains msg if {
	some change in changed_resources
	environment := tags_of(change).environment
	environment != ""
	not environment in environments
	msg := sprintf("%s: tag `environment` is `%s`; use dev, staging or production", [change.address, environment])
}

warn contains msg if {
	some change in changed_resources
	tags := tags_of(change)
	not tags.managed_by
	msg := sprintf("%s: no `managed_by` tag; add managed_by = \"sluice\" so people know not to edit it by hand", [change.address])
}
