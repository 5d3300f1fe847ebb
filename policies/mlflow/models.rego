# Model pins (platform/models/<environment>.yaml) say exactly which registered version an
# environment serves and which gates it passed. Staging and production pin a number, never
# `latest`; every pin has an alias and metric gates in (0, 1]; production gates are at least as
# strict as the floor below.
#
# Input: one model pins file, parsed from YAML (`conftest test --namespace mlflow.models
# platform/models/production.yaml`):
#   {"environment": "production",
#    "models": {"churn-classifier": {"version": 12, "alias": "production", "previous": 11,
#               "gates": {"min_metrics": {"accuracy": 0.74, "f1_score": 0.68}, "soak_in": "staging"},
#               "consumers": [{"kind": "deployment", "namespace": "ml-prod", "name": "serving-api"}]}}}
# Inputs without `environment` and `models` produce no results.
package mlflow.models

import rego.v1

strict_environments := {"staging", "production"}

production_floor := {"accuracy": 0.7}

pins contains [name, pin] if {
	input.environment
	some name, pin in input.models
}

deny contains msg if {
	input.environment in strict_environments
	some [name, pin] in pins
	not is_number(pin.version)
	msg := sprintf("%s: model `%s` pins version `%v`; %s must pin a registered version number", [input.environment, name, object.get(pin, "version", null), input.environment])
}

deny contains msg if {
	some [name, pin] in pins
	is_number(pin.version)
	pin.version < 1
	msg := sprintf("%s: model `%s` pins version %v; registry versions start at 1", [input.environment, name, pin.version])
}

deny contains msg if {
	some [name, pin] in pins
	not pin.alias
	msg := sprintf("%s: model `%s` has no alias; serving resolves models by alias, add e.g. `alias: %s`", [input.environment, name, input.environment])
}

deny contains msg if {
	some [name, pin] in pins
	count(object.get(pin, ["gates", "min_metrics"], {})) == 0
	msg := sprintf("%s: model `%s` has no gates.min_metrics; add at least accuracy", [input.environment, name])
}

deny contains msg if {
	some [name, pin] in pins
	some metric, minimum in object.get(pin, ["gates", "min_metrics"], {})
	not valid_fraction(minimum)
	msg := sprintf("%s: model `%s` gate `%s` is %v; metric gates are fractions in (0, 1]", [input.environment, name, metric, minimum])
}

deny contains msg if {
	input.environment == "production"
	some [name, pin] in pins
	some metric, floor in production_floor
	minimum := object.get(pin, ["gates", "min_metrics", metric], 0)
	minimum < floor
	msg := sprintf("production: model `%s` gate `%s` is %v, below the production floor %v; raise it", [name, metric, minimum, floor])
}

warn contains msg if {
	input.environment == "production"
	some [name, pin] in pins
	not pin.previous
	msg := sprintf("production: model `%s` has no `previous` version; a rollback will not know where to go", [name])
}

valid_fraction(value) if {
	is_number(value)
	value > 0
	value <= 1
}
