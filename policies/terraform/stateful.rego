# No destroying what holds data without an approval: a plan that deletes or replaces a database,
# a bucket, a volume or a key (the types in `data.stateful.types`, and the example platform's
# `terraform_data` stand-ins whose name contains a word of `data.stateful.terraform_data_names`)
# is denied until someone other than the author approves the change. An approved destroy is
# still reported, as a warning, so the comment shows what will be lost.
#
# Input: sluice's policy input. Read: `input.terraform`, the plan as `terraform show -json
# PLANFILE` prints it (no plan, no result): `input.terraform.resource_changes[]` with `address`,
# `mode`, `type`, `name` and `change.actions`. Approvals are `data.sluice.context.approvals`
# (user names); the author is `data.sluice.context.author`.
package terraform.stateful

import rego.v1

stateful_types := {type | some type in data.stateful.types}

default approvals := []

approvals := data.sluice.context.approvals

default author := null

author := data.sluice.context.author

approvers contains approver if {
	some approver in approvals
	approver != author
}

stateful(change) if change.type in stateful_types

stateful(change) if {
	change.type == "terraform_data"
	some word in data.stateful.terraform_data_names
	contains(change.name, word)
}

what(actions) := "replaces (destroys, then recreates)" if {
	actions == ["delete", "create"]
} else := "replaces (creates, then destroys)" if {
	actions == ["create", "delete"]
} else := "destroys"

destroyed contains {"address": change.address, "type": change.type, "verb": what(change.change.actions)} if {
	some change in input.terraform.resource_changes
	change.mode == "managed"
	"delete" in change.change.actions
	stateful(change)
}

deny contains msg if {
	count(approvers) == 0
	some found in destroyed
	msg := sprintf("%s: the plan %s a stateful `%s`, and its data would be lost; get an approval from someone other than the author (/sluice approve), or back it up and move it out of the configuration with a `removed` block", [found.address, found.verb, found.type])
}

warn contains msg if {
	count(approvers) > 0
	some found in destroyed
	msg := concat("", [
		sprintf("%s: the plan %s a stateful `%s`, approved by ", [found.address, found.verb, found.type]),
		concat(", ", sort([approver | some approver in approvers])),
	])
}
