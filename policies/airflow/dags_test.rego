# Tests of airflow.dags; run with `conftest verify -p policies` or `opa test policies`.
package airflow.dags_test

import rego.v1

import data.airflow.dags

dag(owner, source) := {
	"dag_id": "train_churn_model", "file": "platform/dags/train_churn_model.py",
	"owner": owner, "tags": ["ml"], "max_active_runs": 1, "source": source,
}

good_source := "tracking_uri=Variable.get(\"mlflow_tracking_uri\")\n"

test_good_dag_passes if {
	count(dags.deny) == 0 with input as {"environment": "staging", "dags": [dag("ml-platform", good_source)]}
	count(dags.warn) == 0 with input as {"environment": "staging", "dags": [dag("ml-platform", good_source)]}
}

test_missing_owner_is_denied if {
	some message in dags.deny with input as {"dags": [object.remove(dag("x", good_source), ["owner"])]}
	contains(message, "has no owner")
}

test_airflow_default_owner_is_denied if {
	some message in dags.deny with input as {"dags": [dag("airflow", good_source)]}
	contains(message, "has owner `airflow`, Airflow's default")
}

test_localhost_tracking_uri_is_denied_with_its_line if {
	source := "import os\nos.environ[\"MLFLOW_TRACKING_URI\"] = \"http://127.0.0.1:5000\"\n"
	denials := dags.deny with input as {"dags": [dag("ml-platform", source)]}
	denials == {"DAG `train_churn_model` (platform/dags/train_churn_model.py:2) points MLflow at a local address: `os.environ[\"MLFLOW_TRACKING_URI\"] = \"http://127.0.0.1:5000\"`; read the Airflow Variable `mlflow_tracking_uri` instead"}
}

test_every_local_spelling_is_caught if {
	every address in ["localhost:5000", "host.docker.internal:5000", "0.0.0.0:5000"] {
		source := sprintf("mlflow.set_tracking_uri(\"http://%s\")", [address])
		count(dags.deny) == 1 with input as {"dags": [dag("ml-platform", source)]}
	}
}

test_local_address_elsewhere_is_not_a_tracking_uri if {
	count(dags.deny) == 0 with input as {"dags": [dag("ml-platform", "requests.get(\"http://localhost:8080/health\")")]}
}

test_variables_are_not_judged if {
	count(dags.deny) == 0 with input as {"environment": "dev", "dags": [dag("ml-platform", good_source)], "variables": {"mlflow_tracking_uri": "http://localhost:5000"}}
}

test_parallel_training_runs_are_a_warning if {
	racing := object.union(dag("ml-platform", good_source), {"max_active_runs": 4})
	count(dags.warn) == 1 with input as {"dags": [racing]}
}

test_other_inputs_are_ignored if {
	count(dags.deny) == 0 with input as {"resource_changes": []}
}
