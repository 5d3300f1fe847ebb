# Tests of terraform.instance_types; run with `sluice policy test policies` (or `conftest verify -p policies --data policies`).
# Each plan is given as `input.terraform` (`with input.terraform as plan`), as sluice wraps one.
package terraform.instance_types_test

import rego.v1

import data.terraform.instance_types

change(address, attributes) := {
	"address": address, "mode": "managed", "type": "terraform_data",
	"change": {"actions": ["create"], "after": {"input": attributes}},
}

control_plane(budget) := change("module.cluster.terraform_data.control_plane", {"name": "ml", "budget": budget})

pool(instance_type, budget) := change(
	"module.cluster.terraform_data.node_pool[\"general\"]",
	{"instance_type": instance_type, "budget": budget, "min_size": 1, "gpu": false},
)

test_allowed_type_passes if {
	count(instance_types.deny) == 0 with input.terraform as {"resource_changes": [control_plane("small"), pool("t3.large", "small")]}
}

test_too_large_for_budget_is_denied_with_the_allowed_list if {
	denials := instance_types.deny with input.terraform as {"resource_changes": [pool("m5.2xlarge", "small")]}
	count(denials) == 1
	some message in denials
	contains(message, "instance type `m5.2xlarge` is not allowed for budget `small`")
	contains(message, "t3.large")
}

test_a_larger_budget_allows_it if {
	count(instance_types.deny) == 0 with input.terraform as {"resource_changes": [pool("m5.2xlarge", "large")]}
}

test_resources_without_budget_use_the_plans_budget if {
	database := change("module.mlflow.terraform_data.database[0]", {"instance_type": "db.m5.xlarge"})
	denials := instance_types.deny with input.terraform as {"resource_changes": [control_plane("medium"), database]}
	some message in denials
	contains(message, "`db.m5.xlarge` is not allowed for budget `medium`")
}

test_no_budget_anywhere_is_denied if {
	database := change("module.mlflow.terraform_data.database[0]", {"instance_type": "db.t3.micro"})
	some message in instance_types.deny with input.terraform as {"resource_changes": [database]}
	contains(message, "no budget tier is set")
}

test_unknown_budget_is_denied if {
	some message in instance_types.deny with input.terraform as {"resource_changes": [pool("t3.large", "huge")]}
	contains(message, "budget tier `huge` is unknown")
}

test_idle_gpu_pool_is_a_warning if {
	gpu_pool := change("module.cluster.terraform_data.node_pool[\"gpu\"]", {"instance_type": "g4dn.xlarge", "budget": "large", "min_size": 2, "gpu": true})
	count(instance_types.deny) == 0 with input.terraform as {"resource_changes": [gpu_pool]}
	count(instance_types.warn) == 1 with input.terraform as {"resource_changes": [gpu_pool]}
}

test_only_the_terraform_domain_is_read if {
	plan := {"resource_changes": [pool("m5.2xlarge", "small")]}
	count(instance_types.deny) == 1 with input.terraform as plan
	count(instance_types.deny) == 0 with input as plan
	count(instance_types.deny) == 0 with input as {"mlflow": {"environment": "dev", "models": []}}
}

provider_change(type, attributes) := {
	"address": sprintf("%s.main", [type]), "mode": "managed", "type": type,
	"change": {"actions": ["create"], "after": attributes},
}

test_provider_instances_use_the_environments_budget if {
	ec2 := provider_change("aws_instance", {"instance_type": "m5.xlarge", "ami": "ami-1"})
	denials := instance_types.deny with input.terraform as {"resource_changes": [ec2]}
		with data.sluice.context as {"environment": "dev"}
	denials == {"aws_instance.main: instance type `m5.xlarge` is not allowed for budget `small`; pick one of Standard_B1s, Standard_B2s, db.t2.micro, db.t3.micro, db.t3.small, e2-medium, e2-small, t2.medium, t2.micro, t2.small, t3.large, t3.medium, t3.micro, t3.small or raise the budget with finance"}
	count(instance_types.deny) == 0 with input.terraform as {"resource_changes": [ec2]}
		with data.sluice.context as {"environment": "staging"}
}

test_database_classes_and_vm_sizes_are_checked if {
	database := provider_change("aws_db_instance", {"instance_class": "db.r6g.large"})
	vm := provider_change("azurerm_virtual_machine", {"vm_size": "Standard_NC6s_v3"})
	denials := instance_types.deny with input.terraform as {"resource_changes": [database, vm]}
		with data.sluice.context as {"environment": "staging"}
	count(denials) == 2
	count(instance_types.deny) == 0 with input.terraform as {"resource_changes": [database, vm]}
		with data.sluice.context as {"environment": "production"}
}

test_mixed_budgets_are_denied if {
	database := change("module.mlflow.terraform_data.database[0]", {"instance_type": "db.t3.micro"})
	some message in instance_types.deny with input.terraform as {"resource_changes": [control_plane("small"), pool("t3.large", "large"), database]}
	contains(message, "the plan mixes budget tiers large, small")
}

test_deletes_are_not_checked if {
	removed := object.union(pool("m5.4xlarge", "small"), {"change": {"actions": ["delete"], "after": null}})
	count(instance_types.deny) == 0 with input.terraform as {"resource_changes": [removed]}
}
