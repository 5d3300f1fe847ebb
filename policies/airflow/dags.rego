# DAGs name an owner (someone to page when they fail) and never point MLflow at a local address:
# a tracking URI of localhost, 127.x, 0.0.0.0 or host.docker.internal works on a laptop and
# silently logs nowhere in a cluster. The URI belongs in the Airflow Variable
# `mlflow_tracking_uri`.
#
# Input: the DAG folder as sluice describes it (conftest cannot parse Python, so the input is
# built by the caller from a DagBag and the files):
#   {"environment": "staging",
#    "dags": [{"dag_id": "train_churn_model", "file": "platform/dags/train_churn_model.py",
#              "owner": "ml-platform", "tags": ["ml"], "schedule": "0 3 * * 1",
#              "max_active_runs": 1, "source": "<text of the file>"}]}
# `owner` is the DAG's owner as Airflow reports it (`airflow` when nobody set one). Only what is
# hard-coded in a DAG file is judged: a Variable may rightly hold a loopback URL where Airflow and
# MLflow share one machine. Inputs without `dags` produce no results.
package airflow.dags

import rego.v1

# Matched against lower-cased text: not every Rego engine supports inline regex flags.
local_address := `(localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|host\.docker\.internal|\[::1\])`

deny contains msg if {
	some dag in input.dags
	not dag.owner
	msg := sprintf("DAG `%s` (%s) has no owner; set default_args={\"owner\": \"<team>\"}", [dag.dag_id, dag.file])
}

deny contains msg if {
	some dag in input.dags
	trim_space(dag.owner) in {"", "airflow"}
	msg := sprintf("DAG `%s` (%s) has owner `%s`, Airflow's default; set default_args={\"owner\": \"<team>\"}", [dag.dag_id, dag.file, dag.owner])
}

deny contains msg if {
	some dag in input.dags
	lines := split(dag.source, "\n")
	some index, line in lines
	regex.match(`tracking_uri`, lower(line))
	regex.match(local_address, lower(line))
	msg := sprintf("DAG `%s` (%s:%d) points MLflow at a local address: `%s`; read the Airflow Variable `mlflow_tracking_uri` instead", [dag.dag_id, dag.file, index + 1, trim_space(line)])
}

warn contains msg if {
	some dag in input.dags
	count(object.get(dag, "tags", [])) == 0
	msg := sprintf("DAG `%s` (%s) has no tags; tag it so people can find it in the UI", [dag.dag_id, dag.file])
}

warn contains msg if {
	some dag in input.dags
	object.get(dag, "max_active_runs", 16) > 1
	contains(lower(dag.dag_id), "train")
	msg := sprintf("training DAG `%s` allows %d parallel runs; set max_active_runs=1 so runs do not race to register models", [dag.dag_id, object.get(dag, "max_active_runs", 16)])
}
