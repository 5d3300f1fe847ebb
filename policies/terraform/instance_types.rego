# Instance types follow the budget tier: a `small` budget may not plan `m5.2xlarge` nodes or a
# GPU pool. Every planned instance or VM type (node pools, databases, EC2 instances, launch
# configurations, Azure and GCP VMs) must be on its tier's list; GPU pools that never scale to
# zero earn a warning.
#
# Input: sluice's policy input. Read: `input.terraform`, the plan as `terraform show -json
# PLANFILE` prints it: `input.terraform.resource_changes[]` whose `change.after.input`
# (terraform_data) or `change.after` (provider resources) has one of `instance_type`,
# `instance_class`, `vm_size`, `machine_type`, `node_type`. The tier is the resource's own
# `budget` input, else the `budget` of any resource in the same plan (the cluster module puts it
# on the control plane), else the tier of `data.sluice.context.environment` in
# `data.budgets.environments`. The tiers' lists are `data.budgets` (budgets.yaml). An input
# without `terraform` produces no results.
package terraform.instance_types

import rego.v1

size_attributes := ["instance_type", "instance_class", "vm_size", "machine_type", "node_type"]

# Each tier allows its own types and those of every tier before it.
tier_types contains {"tier": budget, "instance_type": instance_type} if {
	some index, budget in data.budgets.order
	some lower_index, lower in data.budgets.order
	lower_index <= index
	some instance_type in data.budgets.instance_types[lower]
}

allowed[budget] := types if {
	some budget in data.budgets.order
	types := {entry.instance_type | some entry in tier_types; entry.tier == budget}
}

# Messages that carry a computed list are joined with concat rather than formatted with
# sprintf: some Rego engines quote a computed string that sprintf's %s receives.
tier_names := concat(", ", data.budgets.order)

attributes(change) := change.change.after.input if {
	change.type == "terraform_data"
} else := change.change.after

changed_resources contains change if {
	some change in input.terraform.resource_changes
	some action in change.change.actions
	action in {"create", "update"}
}

plan_budgets contains budget if {
	some change in changed_resources
	budget := attributes(change).budget
	is_string(budget)
}

environment_budget := data.budgets.environments[data.sluice.context.environment]

budget_of(change) := attributes(change).budget if {
	is_string(attributes(change).budget)
} else := budget if {
	count(plan_budgets) == 1
	some budget in plan_budgets
} else := environment_budget if {
	count(plan_budgets) == 0
}

# The first size attribute the resource sets, in the order of `size_attributes`.
instance_type_of(change) := attributes(change)[names[0]] if {
	names := [name | some name in size_attributes; sets_size(attributes(change), name)]
	count(names) > 0
}

sets_size(attributes, name) if {
	is_string(attributes[name])
	attributes[name] != ""
}

sized_resources contains change if {
	some change in changed_resources
	instance_type_of(change)
}

deny contains msg if {
	some change in sized_resources
	not budget_of(change)
	count(plan_budgets) == 0
	msg := concat("", [
		sprintf("%s: instance type `%s` planned but no budget tier is set; set `budget` (", [change.address, instance_type_of(change)]),
		tier_names,
		") on the cluster module or name the environment's tier in data.budgets.environments",
	])
}

deny contains msg if {
	count(plan_budgets) > 1
	some change in sized_resources
	not is_string(attributes(change).budget)
	msg := concat("", [
		sprintf("%s: the plan mixes budget tiers ", [change.address]),
		concat(", ", sort([budget | some budget in plan_budgets])),
		"; give every environment one tier",
	])
}

deny contains msg if {
	some change in sized_resources
	budget := budget_of(change)
	not allowed[budget]
	msg := concat("", [sprintf("%s: budget tier `%s` is unknown; use ", [change.address, budget]), tier_names])
}

deny contains msg if {
	some change in sized_resources
	budget := budget_of(change)
	tier := allowed[budget]
	instance_type := instance_type_of(change)
	not instance_type in tier
	msg := concat("", [
		sprintf("%s: instance type `%s` is not allowed for budget `%s`; pick one of ", [change.address, instance_type, budget]),
		concat(", ", sort([allowed_type | some allowed_type in tier])),
		" or raise the budget with finance",
	])
}

warn contains msg if {
	some change in sized_resources
	attributes(change).gpu == true
	attributes(change).min_size > 0
	msg := sprintf("%s: GPU pool keeps %d node(s) running when idle; set min_size = 0 unless serving needs them", [change.address, attributes(change).min_size])
}
