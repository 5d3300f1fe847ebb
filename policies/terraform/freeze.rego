# No production applies on Fridays: a plan that changes anything in a frozen environment
# (`data.freeze.environments`) on a frozen day (`data.freeze.weekdays`, counted in
# `data.freeze.timezone`) is denied. On a pull request it is only a warning: the review can go
# on, the merge will be refused while the freeze lasts.
#
# Input: sluice's policy input. Read: `input.terraform`, the plan as `terraform show -json
# PLANFILE` prints it (`input.terraform.resource_changes[].change.actions`); without a plan there
# is nothing to apply and no result. The moment is `data.sluice.context.time` (nanoseconds since
# the epoch, as `time.now_ns()`), the environment `data.sluice.context.environment`, the event
# `data.sluice.context.event`.
package terraform.freeze

import rego.v1

frozen_environments := {name | some name in data.freeze.environments}

frozen_days := {day | some day in data.freeze.weekdays}

environment := data.sluice.context.environment

weekday := time.weekday([data.sluice.context.time, data.freeze.timezone])

default event := ""

event := data.sluice.context.event

changes_infrastructure if {
	some change in input.terraform.resource_changes
	some action in change.change.actions
	action in {"create", "update", "delete"}
}

frozen if {
	environment in frozen_environments
	weekday in frozen_days
	changes_infrastructure
}

deny contains msg if {
	frozen
	event != "pull_request"
	msg := sprintf("%s: no applies on %s (%s, %s); apply on another day, or ask for a freeze exception", [environment, weekday, data.sluice.context.time_rfc3339, data.freeze.timezone])
}

warn contains msg if {
	frozen
	event == "pull_request"
	msg := sprintf("%s: today is %s (%s); merging now would apply during the freeze and be refused", [environment, weekday, data.freeze.timezone])
}
