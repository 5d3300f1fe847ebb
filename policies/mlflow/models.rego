# Model promotion: what an environment's aliases would move to. Staging and production pin a
# registered version number, never `latest` (dev may follow the newest version that passes its
# gates), and a version whose training run is below the environment's metric floor
# (`data.model_floors`, floors.yaml: production's accuracy >= 0.7) is not moved there. A version
# already holding the alias below the floor is only a warning: refusing it would block releases
# that do not touch the model.
#
# Input: sluice's policy input. Read: `input.mlflow`, the model decisions of one environment:
#   {"environment": "production", "tracking_uri": "http://mlflow:5000",
#    "models": [{"model": "churn-classifier", "alias": "production", "mode": "alias",
#                "pin": 7, "from": "6", "to": "7", "moves": true,
#                "metrics": {"accuracy": 0.81, "f1_score": 0.7}, "tags": {"git_sha": "3f9c2ab"},
#                "restart": ["deployment/serving-api"]}]}
# `pin` is the version as written in the pins file (a number or "latest"), `to` the version the
# alias would hold and `metrics` that version's run metrics, `from` the version holding the alias
# now (null when none). The environment is `input.mlflow.environment`, else
# `data.sluice.context.environment`. The pins file's own gates (min_metrics, soak_in, ...) are
# enforced by the MLflow target when it chooses `to`. An input without `mlflow` produces no
# results.
package mlflow.models

import rego.v1

strict_environments := {"staging", "production"}

environment := input.mlflow.environment if {
	is_string(input.mlflow.environment)
} else := data.sluice.context.environment

default floors := {}

floors := data.model_floors[environment]

# A number as messages show it: two decimals when that is exact (0.70), else in full (0.6249).
shown(value) := text if {
	text := sprintf("%.2f", [value])
	to_number(text) == value
} else := sprintf("%v", [value])

deny contains msg if {
	environment in strict_environments
	some decision in input.mlflow.models
	not is_number(decision.pin)
	msg := sprintf("%s: model `%s` pins version `%v`; %s must pin a registered version number", [environment, decision.model, decision.pin, environment])
}

deny contains msg if {
	some decision in input.mlflow.models
	is_number(decision.pin)
	decision.pin < 1
	msg := sprintf("%s: model `%s` pins version %v; registry versions start at 1", [environment, decision.model, decision.pin])
}

deny contains msg if {
	some decision in input.mlflow.models
	decision.moves == true
	some metric, floor in floors
	value := decision.metrics[metric]
	value < floor
	msg := sprintf("%s: model %s version %s has %s %s, below the floor %s; promote a version that meets it (floors are data.model_floors)", [environment, decision.model, decision.to, metric, shown(value), shown(floor)])
}

deny contains msg if {
	some decision in input.mlflow.models
	decision.moves == true
	some metric, floor in floors
	not is_number(object.get(decision, ["metrics", metric], null))
	msg := sprintf("%s: model %s version %s has no `%s` metric, so the floor %s cannot be checked; log it in the version's training run", [environment, decision.model, decision.to, metric, shown(floor)])
}

warn contains msg if {
	some decision in input.mlflow.models
	decision.moves == false
	some metric, floor in floors
	value := decision.metrics[metric]
	value < floor
	msg := sprintf("%s: model %s version %s, already serving, has %s %s, below the floor %s; promote a version that meets it", [environment, decision.model, decision.to, metric, shown(value), shown(floor)])
}

warn contains msg if {
	environment == "production"
	some decision in input.mlflow.models
	decision.moves == true
	decision.from == null
	msg := sprintf("production: model `%s` gets alias `%s` for the first time; a rollback will have no earlier version to go to", [decision.model, decision.alias])
}
