# Tests of terraform.ingress; run with `sluice policy test policies` (or `conftest verify -p policies --data policies`).
# Each plan is given as `input.terraform` (`with input.terraform as plan`), as sluice wraps one.
package terraform.ingress_test

import rego.v1

import data.terraform.ingress

resource(type, after) := {"address": sprintf("%s.web", [type]), "mode": "managed", "type": type, "change": {"actions": ["create"], "after": after}}

open_group := resource("aws_security_group", {"name": "web", "ingress": [
	{"cidr_blocks": ["10.0.0.0/8"], "ipv6_cidr_blocks": [], "from_port": 443, "to_port": 443},
	{"cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": ["::/0"], "from_port": 22, "to_port": 22},
]})

production := {"environment": "production"}

test_world_open_ingress_is_denied_in_production if {
	denials := ingress.deny with input.terraform as {"resource_changes": [open_group]} with data.sluice.context as production
	denials == {
		"aws_security_group.web: ingress open to the internet in production: 0.0.0.0/0 on port 22; restrict it to known CIDR ranges or put it behind a load balancer",
		"aws_security_group.web: ingress open to the internet in production: ::/0 on port 22; restrict it to known CIDR ranges or put it behind a load balancer",
	}
}

test_world_open_ingress_is_a_warning_elsewhere if {
	count(ingress.deny) == 0 with input.terraform as {"resource_changes": [open_group]} with data.sluice.context as {"environment": "staging"}
	count(ingress.warn) == 2 with input.terraform as {"resource_changes": [open_group]} with data.sluice.context as {"environment": "staging"}
}

test_private_ranges_pass if {
	private := resource("aws_security_group_rule", {"type": "ingress", "cidr_blocks": ["10.0.0.0/8"], "from_port": 0, "to_port": 65535})
	count(ingress.deny) == 0 with input.terraform as {"resource_changes": [private]} with data.sluice.context as production
	count(ingress.warn) == 0 with input.terraform as {"resource_changes": [private]} with data.sluice.context as production
}

test_security_group_rules_count_only_for_ingress if {
	egress := resource("aws_security_group_rule", {"type": "egress", "cidr_blocks": ["0.0.0.0/0"], "from_port": 0, "to_port": 0})
	count(ingress.deny) == 0 with input.terraform as {"resource_changes": [egress]} with data.sluice.context as production
	rule := resource("aws_security_group_rule", {"type": "ingress", "cidr_blocks": ["0.0.0.0/0"], "from_port": 0, "to_port": 0})
	some message in ingress.deny with input.terraform as {"resource_changes": [rule]} with data.sluice.context as production
	contains(message, "0.0.0.0/0 on all ports")
}

test_azure_inbound_allow_from_anywhere_is_denied if {
	rule := resource("azurerm_network_security_rule", {"name": "ssh", "direction": "Inbound", "access": "Allow", "source_address_prefix": "*", "source_address_prefixes": null})
	some message in ingress.deny with input.terraform as {"resource_changes": [rule]} with data.sluice.context as production
	contains(message, "source `*` (rule `ssh`)")
	deny_rule := resource("azurerm_network_security_rule", {"name": "ssh", "direction": "Inbound", "access": "Deny", "source_address_prefix": "*"})
	count(ingress.deny) == 0 with input.terraform as {"resource_changes": [deny_rule]} with data.sluice.context as production
}

test_public_cluster_endpoint_is_denied if {
	control_plane := {"address": "module.cluster.terraform_data.control_plane", "mode": "managed", "type": "terraform_data", "change": {"actions": ["update"], "after": {"input": {"name": "ml-production", "endpoint_public": true}}}}
	some message in ingress.deny with input.terraform as {"resource_changes": [control_plane]} with data.sluice.context as production
	contains(message, "public API endpoint")
}

test_without_an_environment_it_is_a_warning if {
	count(ingress.deny) == 0 with input.terraform as {"resource_changes": [open_group]}
	count(ingress.warn) == 2 with input.terraform as {"resource_changes": [open_group]}
}
