# Instance types follow the environment's budget tier: a `small` budget may not plan
# `m5.2xlarge` nodes or a GPU pool. Every planned `instance_type` (node pools, databases) must
# be on its tier's list; GPU pools that never scale to zero earn a warning.
#
# Input: the JSON of a plan (`terraform show -json PLANFILE`). Read: `resource_changes[]` whose
# `change.after.input` (terraform_data) or `change.after` (provider resources) has an
# `instance_type`. The tier is the resource's own `budget` input, else the `budget` of any
# resource in the same plan (the cluster module puts it on the control plane). Inputs of any
# other shape produce no results.
package terraform.instance_types

import rego.v1

small := {"t3.medium", "t3.large", "db.t3.micro", "db.t3.small"}

medium := small | {"m5.large", "m5.xlarge", "db.t3.medium", "db.m5.large"}

large := medium | {"m5.2xlarge", "m5.4xlarge", "g4dn.xlarge", "g5.xlarge", "db.m5.xlarge", "db.r6g.large"}

allowed := {"small": small, "medium": medium, "large": large}

attributes(change) := change.change.after.input if {
	change.type == "terraform_data"
} else := change.change.after

changed_resources contains change if {
	some change in input.resource_changes
	some action in change.change.actions
	action in {"create", "update"}
}

plan_budgets contains budget if {
	some change in changed_resources
	budget := attributes(change).budget
}

budget_of(change) := attributes(change).budget if {
	attributes(change).budget
} else := budget if {
	count(plan_budgets) == 1
	some budget in plan_budgets
}

sized_resources contains change if {
	some change in changed_resources
	attributes(change).instance_type
}

deny contains msg if {
	some change in sized_resources
	not budget_of(change)
	count(plan_budgets) == 0
	msg := sprintf("%s: instance type `%s` planned but no budget tier is set; set `budget` (small, medium or large) on the cluster module", [change.address, attributes(change).instance_type])
}

deny contains msg if {
	count(plan_budgets) > 1
	some change in sized_resources
	not attributes(change).budget
	msg := sprintf("%s: the plan mixes budget tiers %v; give every environment one tier", [change.address, plan_budgets])
}

deny contains msg if {
	some change in sized_resources
	budget := budget_of(change)
	not allowed[budget]
	msg := sprintf("%s: budget tier `%s` is unknown; use small, medium or large", [change.address, budget])
}

deny contains msg if {
	some change in sized_resources
	budget := budget_of(change)
	tier := allowed[budget]
	instance_type := attributes(change).instance_type
	not instance_type in tier
	msg := sprintf("%s: instance type `%s` is not allowed for budget `%s`; pick one of %s or raise the budget with finance", [change.address, instance_type, budget, concat(", ", sort([t | some t in tier]))])
}

warn contains msg if {
	some change in sized_resources
	attributes(change).gpu == true
	attributes(change).min_size > 0
	msg := sprintf("%s: GPU pool keeps %d node(s) running when idle; set min_size = 0 unless serving needs them", [change.address, attributes(change).min_size])
}
