# No ingress open to the whole internet in production: security groups and their rules, Azure
# network security rules, GCP firewalls and the example platform's `terraform_data` stand-ins
# may not admit 0.0.0.0/0 or ::/0, and a cluster's API endpoint may not be public. Outside
# production the same finding is a warning, so it is seen before it blocks a promotion.
#
# Input: sluice's policy input. Read: `input.terraform`, the plan as `terraform show -json
# PLANFILE` prints it (no plan, no result): `input.terraform.resource_changes[]` that are created
# or updated, by `type`: `aws_security_group` (`ingress[]`), `aws_security_group_rule`
# (`type == "ingress"`), `aws_vpc_security_group_ingress_rule`, `azurerm_network_security_rule`
# and `azurerm_network_security_group` (`security_rule[]`, inbound allow),
# `google_compute_firewall` (INGRESS), `terraform_data` (`change.after.input.ingress[]`,
# `change.after.input.endpoint_public`). The environment is `data.sluice.context.environment`.
package terraform.ingress

import rego.v1

world := {"0.0.0.0/0", "::/0"}

azure_world := {"*", "0.0.0.0/0", "::/0", "Internet", "Any"}

default environment := ""

environment := data.sluice.context.environment

changed_resources contains change if {
	some change in input.terraform.resource_changes
	change.mode == "managed"
	some action in change.change.actions
	action in {"create", "update"}
}

ports(rule) := sprintf("port %d", [rule.from_port]) if {
	rule.from_port == rule.to_port
	rule.from_port != 0
} else := sprintf("ports %d-%d", [rule.from_port, rule.to_port]) if {
	rule.to_port != 0
} else := "all ports"

# The world-open ranges of a rule in the AWS shape (cidr_blocks, ipv6_cidr_blocks), each with
# its ports.
aws_rule_openings(rule) := {sprintf("%s on %s", [cidr, ports(rule)]) |
	some field in ["cidr_blocks", "ipv6_cidr_blocks"]
	some cidr in as_array(object.get(rule, field, []))
	cidr in world
}

as_array(value) := value if {
	is_array(value)
} else := []

openings contains {"address": change.address, "opening": opening} if {
	some change in changed_resources
	change.type == "aws_security_group"
	some rule in as_array(change.change.after.ingress)
	some opening in aws_rule_openings(rule)
}

openings contains {"address": change.address, "opening": opening} if {
	some change in changed_resources
	change.type == "aws_security_group_rule"
	change.change.after.type == "ingress"
	some opening in aws_rule_openings(change.change.after)
}

openings contains {"address": change.address, "opening": opening} if {
	some change in changed_resources
	change.type == "aws_vpc_security_group_ingress_rule"
	some field in ["cidr_ipv4", "cidr_ipv6"]
	change.change.after[field] in world
	opening := sprintf("%s on %s", [change.change.after[field], ports(change.change.after)])
}

azure_rules(change) := [change.change.after] if {
	change.type == "azurerm_network_security_rule"
} else := as_array(change.change.after.security_rule) if {
	change.type == "azurerm_network_security_group"
}

openings contains {"address": change.address, "opening": opening} if {
	some change in changed_resources
	some rule in azure_rules(change)
	lower(rule.direction) == "inbound"
	lower(rule.access) == "allow"
	sources := array.concat([object.get(rule, "source_address_prefix", "")], as_array(object.get(rule, "source_address_prefixes", [])))
	some source in sources
	source in azure_world
	opening := sprintf("source `%s` (rule `%s`)", [source, object.get(rule, "name", "")])
}

openings contains {"address": change.address, "opening": opening} if {
	some change in changed_resources
	change.type == "google_compute_firewall"
	upper(object.get(change.change.after, "direction", "INGRESS")) == "INGRESS"
	some source in as_array(change.change.after.source_ranges)
	source in world
	opening := sprintf("source range %s", [source])
}

openings contains {"address": change.address, "opening": opening} if {
	some change in changed_resources
	change.type == "terraform_data"
	some rule in as_array(change.change.after.input.ingress)
	some opening in aws_rule_openings(rule)
}

openings contains {"address": change.address, "opening": "a public API endpoint (endpoint_public = true)"} if {
	some change in changed_resources
	change.type == "terraform_data"
	change.change.after.input.endpoint_public == true
}

deny contains msg if {
	environment == "production"
	some found in openings
	msg := sprintf("%s: ingress open to the internet in production: %s; restrict it to known CIDR ranges or put it behind a load balancer", [found.address, found.opening])
}

warn contains msg if {
	environment != "production"
	some found in openings
	msg := sprintf("%s: ingress open to the internet: %s; production refuses this", [found.address, found.opening])
}
