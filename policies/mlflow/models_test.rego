# Tests of mlflow.models; run with `conftest verify -p policies` or `opa test policies`.
package mlflow.models_test

import rego.v1

import data.mlflow.models

pins(environment, pin) := {"environment": environment, "models": {"churn-classifier": pin}}

good_pin := {"version": 12, "alias": "production", "previous": 11, "gates": {"min_metrics": {"accuracy": 0.74, "f1_score": 0.68}}}

test_good_production_pin_passes if {
	count(models.deny) == 0 with input as pins("production", good_pin)
	count(models.warn) == 0 with input as pins("production", good_pin)
}

test_latest_is_allowed_in_dev_only if {
	moving := object.union(good_pin, {"version": "latest"})
	count(models.deny) == 0 with input as pins("dev", moving)
	some message in models.deny with input as pins("staging", moving)
	contains(message, "pins version `latest`; staging must pin a registered version number")
}

test_missing_alias_is_denied if {
	some message in models.deny with input as pins("staging", object.remove(good_pin, ["alias"]))
	contains(message, "has no alias")
}

test_missing_gates_are_denied if {
	some message in models.deny with input as pins("dev", object.remove(good_pin, ["gates"]))
	contains(message, "has no gates.min_metrics")
}

test_gates_must_be_fractions if {
	some message in models.deny with input as pins("dev", object.union(good_pin, {"gates": {"min_metrics": {"accuracy": 74}}}))
	contains(message, "gate `accuracy` is 74")
}

test_production_gates_respect_the_floor if {
	lax := object.union(good_pin, {"gates": {"min_metrics": {"accuracy": 0.5}}})
	some message in models.deny with input as pins("production", lax)
	contains(message, "below the production floor")
	count(models.deny) == 0 with input as pins("staging", lax)
}

test_production_without_previous_is_a_warning if {
	count(models.warn) == 1 with input as pins("production", object.remove(good_pin, ["previous"]))
}

test_other_inputs_are_ignored if {
	count(models.deny) == 0 with input as {"kind": "Deployment"}
}
