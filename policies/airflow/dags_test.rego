# Tests of airflow.dags; run with `sluice policy test policies` or `opa test policies`.
# Each input is sluice's: the DAG folder's facts under `input.airflow`.
package airflow.dags_test

import rego.v1

import data.airflow.dags

dag(owner, source) := {
	"dag_id": "train_churn_model", "file": "platform/dags/train_churn_model.py",
	"owner": owner, "tags": ["ml"], "max_active_runs": 1, "source": source,
}

good_source := "tracking_uri=Variable.get(\"mlflow_tracking_uri\")\n"

test_good_dag_passes if {
	count(dags.deny) == 0 with input.airflow as {"environment": "staging", "dags": [dag("ml-platform", good_source)]}
	count(dags.warn) == 0 with input.airflow as {"environment": "staging", "dags": [dag("ml-platform", good_source)]}
}

test_missing_owner_is_denied_naming_the_environment if {
	denials := dags.deny with input.airflow as {"environment": "production", "dags": [object.remove(dag("x", good_source), ["owner"])]}
	denials == {"production: DAG `train_churn_model` (platform/dags/train_churn_model.py) has no owner; set default_args={\"owner\": \"<team>\"}"}
}

test_airflow_default_owner_is_denied if {
	some message in dags.deny with input.airflow as {"environment": "dev", "dags": [dag("airflow", good_source)]}
	contains(message, "has owner `airflow`, Airflow's default")
}

test_localhost_tracking_uri_is_denied_with_its_line if {
	source := "import os\nos.environ[\"MLFLOW_TRACKING_URI\"] = \"http://127.0.0.1:5000\"\n"
	denials := dags.deny with input.airflow as {"environment": "staging", "dags": [dag("ml-platform", source)]}
	denials == {"staging: DAG `train_churn_model` (platform/dags/train_churn_model.py:2) points MLflow at a local address: `os.environ[\"MLFLOW_TRACKING_URI\"] = \"http://127.0.0.1:5000\"`; read the Airflow Variable `mlflow_tracking_uri` instead"}
}

test_every_local_spelling_is_caught if {
	every address in ["localhost:5000", "host.docker.internal:5000", "0.0.0.0:5000"] {
		source := sprintf("mlflow.set_tracking_uri(\"http://%s\")", [address])
		count(dags.deny) == 1 with input.airflow as {"dags": [dag("ml-platform", source)]}
	}
}

test_local_address_elsewhere_is_not_a_tracking_uri if {
	count(dags.deny) == 0 with input.airflow as {"dags": [dag("ml-platform", "requests.get(\"http://localhost:8080/health\")")]}
}

test_variables_are_not_judged if {
	count(dags.deny) == 0 with input.airflow as {"environment": "dev", "dags": [dag("ml-platform", good_source)], "variables": {"mlflow_tracking_uri": "http://localhost:5000"}}
}

test_parallel_training_runs_are_a_warning if {
	racing := object.union(dag("ml-platform", good_source), {"max_active_runs": 4})
	warnings := dags.warn with input.airflow as {"environment": "staging", "dags": [racing]}
	warnings == {"staging: training DAG `train_churn_model` (platform/dags/train_churn_model.py) allows 4 parallel runs; set max_active_runs=1 so runs do not race to register models"}
}

test_without_its_own_environment_the_context_names_it if {
	some message in dags.deny with input.airflow as {"dags": [dag("airflow", good_source)]} with data.sluice.context as {"environment": "staging"}
	startswith(message, "staging: DAG `train_churn_model`")
}

# A separate test: regorus keeps a rule's value from a `with data...` into later expressions.
test_without_any_environment_the_message_starts_with_the_dag if {
	some message in dags.deny with input.airflow as {"dags": [dag("airflow", good_source)]}
	startswith(message, "DAG `train_churn_model`")
}

test_only_the_airflow_domain_is_read if {
	unowned := {"environment": "production", "dags": [dag("airflow", good_source)]}
	count(dags.deny) == 1 with input.airflow as unowned
	# The DAG folder as the whole input (the shape before sluice's one input) is not read.
	count(dags.deny) == 0 with input as unowned
	count(dags.deny) == 0 with input as {"terraform": {"resource_changes": []}, "kubernetes": {"environment": "production", "objects": []}}
}
