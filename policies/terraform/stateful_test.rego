# Tests of terraform.stateful; run with `sluice policy test policies` (or `conftest verify -p policies --data policies`).
# Each plan is given as `input.terraform` (`with input.terraform as plan`), as sluice wraps one.
package terraform.stateful_test

import rego.v1

import data.terraform.stateful

change(type, name, actions) := {"address": sprintf("%s.%s", [type, name]), "mode": "managed", "type": type, "name": name, "change": {"actions": actions}}

test_destroying_a_database_without_approval_is_denied if {
	denials := stateful.deny with input.terraform as {"resource_changes": [change("aws_db_instance", "main", ["delete"])]}
	denials == {"aws_db_instance.main: the plan destroys a stateful `aws_db_instance`, and its data would be lost; get an approval from someone other than the author (/sluice approve), or back it up and move it out of the configuration with a `removed` block"}
}

test_replacing_a_bucket_is_a_destroy if {
	some message in stateful.deny with input.terraform as {"resource_changes": [change("aws_s3_bucket", "artifacts", ["delete", "create"])]}
	contains(message, "replaces (destroys, then recreates) a stateful `aws_s3_bucket`")
}

test_the_example_platforms_stand_ins_are_stateful if {
	database := change("terraform_data", "database", ["delete"])
	count(stateful.deny) == 1 with input.terraform as {"resource_changes": [database]}
	namespace := change("terraform_data", "namespace", ["delete"])
	count(stateful.deny) == 0 with input.terraform as {"resource_changes": [namespace]}
}

test_stateless_destroys_and_updates_pass if {
	count(stateful.deny) == 0 with input.terraform as {"resource_changes": [change("aws_security_group", "web", ["delete"]), change("aws_db_instance", "main", ["update"])]}
}

test_approval_by_someone_else_turns_it_into_a_warning if {
	plan := {"resource_changes": [change("aws_db_instance", "main", ["delete"])]}
	context := {"author": "alice", "approvals": ["bob"]}
	count(stateful.deny) == 0 with input.terraform as plan with data.sluice.context as context
	warnings := stateful.warn with input.terraform as plan with data.sluice.context as context
	warnings == {"aws_db_instance.main: the plan destroys a stateful `aws_db_instance`, approved by bob"}
}

test_the_author_cannot_approve_their_own_destroy if {
	plan := {"resource_changes": [change("aws_db_instance", "main", ["delete"])]}
	count(stateful.deny) == 1 with input.terraform as plan with data.sluice.context as {"author": "alice", "approvals": ["alice"]}
}
