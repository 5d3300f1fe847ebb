# Tests of terraform.freeze; run with `sluice policy test policies` (or `conftest verify -p policies --data policies`).
# Each plan is given as `input.terraform` (`with input.terraform as plan`), as sluice wraps one.
package terraform.freeze_test

import rego.v1

import data.terraform.freeze

# Friday 2025-01-03 16:00 UTC, and the Thursday before.
friday := 1735920000000000000

thursday := friday - ((24 * 60) * 60) * 1000000000

plan(actions) := {"resource_changes": [{"address": "terraform_data.x", "mode": "managed", "type": "terraform_data", "change": {"actions": actions}}]}

context(environment, at, event) := {"environment": environment, "time": at, "time_rfc3339": "2025-01-03T16:00:00Z", "event": event}

test_production_apply_on_friday_is_denied if {
	denials := freeze.deny with input.terraform as plan(["update"]) with data.sluice.context as context("production", friday, "merge")
	denials == {"production: no applies on Friday (2025-01-03T16:00:00Z, UTC); apply on another day, or ask for a freeze exception"}
}

test_thursday_passes if {
	count(freeze.deny) == 0 with input.terraform as plan(["update"]) with data.sluice.context as context("production", thursday, "merge")
}

test_other_environments_are_not_frozen if {
	count(freeze.deny) == 0 with input.terraform as plan(["create"]) with data.sluice.context as context("staging", friday, "merge")
}

test_a_plan_that_changes_nothing_passes if {
	count(freeze.deny) == 0 with input.terraform as plan(["no-op"]) with data.sluice.context as context("production", friday, "merge")
}

test_a_pull_request_only_warns if {
	count(freeze.deny) == 0 with input.terraform as plan(["update"]) with data.sluice.context as context("production", friday, "pull_request")
	count(freeze.warn) == 1 with input.terraform as plan(["update"]) with data.sluice.context as context("production", friday, "pull_request")
}

test_the_day_is_counted_in_the_freeze_time_zone if {
	# 23:30 UTC on Thursday is already Friday in Berlin.
	late_thursday := thursday + ((7 * 60) + 30) * 60000000000
	count(freeze.deny) == 0 with input.terraform as plan(["update"]) with data.sluice.context as context("production", late_thursday, "merge")
	count(freeze.deny) == 1 with input.terraform as plan(["update"]) with data.sluice.context as context("production", late_thursday, "merge")
		with data.freeze.timezone as "Europe/Berlin"
}
