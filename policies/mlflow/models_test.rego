# Tests of mlflow.models; run with `sluice policy test policies` (or `opa test policies` with
# floors.yaml as data). Each input is sluice's: the model decisions under `input.mlflow`.
package mlflow.models_test

import rego.v1

import data.mlflow.models

good_decision := {
	"model": "churn-classifier", "alias": "production", "mode": "alias",
	"pin": 7, "from": "6", "to": "7", "moves": true,
	"metrics": {"accuracy": 0.81, "f1_score": 0.7}, "tags": {"git_sha": "3f9c2ab"},
	"restart": ["deployment/serving-api"],
}

# The good decision with some fields replaced (whole values: `metrics` is not merged).
decision(changes) := object.union(object.remove(good_decision, object.keys(changes)), changes)

facts(environment, decisions) := {"environment": environment, "tracking_uri": "http://mlflow:5000", "models": decisions}

test_a_good_production_move_passes if {
	count(models.deny) == 0 with input.mlflow as facts("production", [decision({})])
	count(models.warn) == 0 with input.mlflow as facts("production", [decision({})])
}

test_latest_is_allowed_in_dev_only if {
	moving := decision({"pin": "latest"})
	count(models.deny) == 0 with input.mlflow as facts("dev", [moving])
	denials := models.deny with input.mlflow as facts("staging", [moving])
	denials == {"staging: model `churn-classifier` pins version `latest`; staging must pin a registered version number"}
}

test_version_zero_is_denied if {
	some message in models.deny with input.mlflow as facts("dev", [decision({"pin": 0, "to": "0"})])
	contains(message, "registry versions start at 1")
}

test_a_metric_below_the_production_floor_is_denied if {
	weak := decision({"metrics": {"accuracy": 0.62}})
	denials := models.deny with input.mlflow as facts("production", [weak])
	denials == {"production: model churn-classifier version 7 has accuracy 0.62, below the floor 0.70; promote a version that meets it (floors are data.model_floors)"}
	count(models.deny) == 0 with input.mlflow as facts("staging", [weak])
}

test_the_floor_itself_passes_and_exact_values_are_shown_in_full if {
	count(models.deny) == 0 with input.mlflow as facts("production", [decision({"metrics": {"accuracy": 0.7}})])
	some message in models.deny with input.mlflow as facts("production", [decision({"metrics": {"accuracy": 0.6999}})])
	contains(message, "has accuracy 0.6999, below the floor 0.70")
}

test_a_missing_metric_is_denied_where_there_is_a_floor if {
	blind := decision({"metrics": {"f1_score": 0.9}})
	some message in models.deny with input.mlflow as facts("production", [blind])
	message == "production: model churn-classifier version 7 has no `accuracy` metric, so the floor 0.70 cannot be checked; log it in the version's training run"
	count(models.deny) == 0 with input.mlflow as facts("dev", [blind])
}

test_a_version_already_serving_below_the_floor_is_a_warning if {
	serving := decision({"from": "7", "moves": false, "metrics": {"accuracy": 0.5}})
	count(models.deny) == 0 with input.mlflow as facts("production", [serving])
	warnings := models.warn with input.mlflow as facts("production", [serving])
	warnings == {"production: model churn-classifier version 7, already serving, has accuracy 0.50, below the floor 0.70; promote a version that meets it"}
}

test_a_first_production_alias_is_a_warning if {
	warnings := models.warn with input.mlflow as facts("production", [decision({"from": null})])
	warnings == {"production: model `churn-classifier` gets alias `production` for the first time; a rollback will have no earlier version to go to"}
}

test_floors_come_from_data if {
	strict := {"staging": {"f1_score": 0.75}}
	some message in models.deny with input.mlflow as facts("staging", [decision({})]) with data.model_floors as strict
	contains(message, "staging: model churn-classifier version 7 has f1_score 0.70, below the floor 0.75")
}

test_the_environment_may_come_from_the_context if {
	weak := {"models": [decision({"metrics": {"accuracy": 0.62}})]}
	count(models.deny) == 1 with input.mlflow as weak with data.sluice.context as {"environment": "production"}
}

test_only_the_mlflow_domain_is_read if {
	weak := facts("production", [decision({"pin": "latest", "metrics": {"accuracy": 0.1}})])
	count(models.deny) == 2 with input.mlflow as weak
	# The decisions as the whole input, or a pins file, are not sluice's input.
	count(models.deny) == 0 with input as weak
	count(models.deny) == 0 with input as {"environment": "production", "models": {"churn-classifier": {"version": "latest"}}}
	count(models.deny) == 0 with input as {"terraform": {"resource_changes": []}, "kubernetes": {"environment": "production", "objects": []}}
}
