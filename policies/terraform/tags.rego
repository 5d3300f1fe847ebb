# Every resource a Terraform plan creates or updates carries the tags finance and on-call rely on:
# `owner` (who to page), `team`, `cost_center` and `environment`, non-empty, with `environment`
# one of dev, staging, production.
#
# Input: sluice's policy input. Read: `input.terraform`, the plan as `terraform show -json
# PLANFILE` prints it (conftest: `jq '{terraform: .}' plan.json | conftest test --namespace
# terraform.tags -`): `input.terraform.resource_changes[]` with `address`, `type`,
# `change.actions` and `change.after`. Tags are looked up in `change.after.input.tags` for
# `terraform_data` resources and in `change.after.tags` for provider resources, as a map or as a
# list of `{key, value}` blocks (autoscaling groups). Provider resources without a `tags`
# attribute (routes, policy attachments) cannot be tagged and are not checked. An input without
# `terraform` produces no results.
package terraform.tags

import rego.v1

required_tags := {"owner", "team", "cost_center", "environment"}

environments := {"dev", "staging", "production"}

# Resources the plan creates or updates; deletes and no-ops are not checked.
changed_resources contains change if {
	some change in input.terraform.resource_changes
	change.mode == "managed"
	some action in change.change.actions
	action in {"create", "update"}
}

# The tags as written; undefined for provider resources that have no `tags` attribute.
written_tags(change) := change.change.after.input.tags if {
	change.type == "terraform_data"
} else := {} if {
	change.type == "terraform_data"
} else := change.change.after.tags

tags_of(change) := tags if {
	tags := written_tags(change)
	is_object(tags)
} else := {tag.key: tag.value | some tag in written_tags(change); is_object(tag)} if {
	is_array(written_tags(change))
} else := {} if {
	written_tags(change) == null
}

tagged_resources contains {"address": change.address, "tags": tags} if {
	some change in changed_resources
	tags := tags_of(change)
}

deny contains msg if {
	some tagged in tagged_resources
	some tag in required_tags
	not tagged.tags[tag]
	msg := sprintf("%s: required tag `%s` is missing; add it to the module's tags (required: owner, team, cost_center, environment)", [tagged.address, tag])
}

deny contains msg if {
	some tagged in tagged_resources
	some tag in required_tags
	tagged.tags[tag] == ""
	msg := sprintf("%s: tag `%s` is empty; give it a value", [tagged.address, tag])
}

deny contains msg if {
	some tagged in tagged_resources
	environment := tagged.tags.environment
	is_string(environment)
	environment != ""
	not environment in environments
	msg := sprintf("%s: tag `environment` is `%s`; use dev, staging or production", [tagged.address, environment])
}

warn contains msg if {
	some tagged in tagged_resources
	not tagged.tags.managed_by
	msg := sprintf("%s: no `managed_by` tag; add the tag `managed_by = sluice` so people know not to edit it by hand", [tagged.address])
}
