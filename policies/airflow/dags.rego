# DAGs name an owner (someone to page when they fail) and never point MLflow at a local address:
# a tracking URI of localhost, 127.x, 0.0.0.0 or host.docker.internal works on a laptop and
# silently logs nowhere in a cluster. The URI belongs in the Airflow Variable
# `mlflow_tracking_uri`.
#
# Input: sluice's policy input. Read: `input.airflow`, the DAG folder as sluice describes it
# (conftest cannot parse Python, so sluice builds it from a DagBag and the files):
#   {"environment": "staging",
#    "dags": [{"dag_id": "train_churn_model", "file": "platform/dags/train_churn_model.py",
#              "owner": "ml-platform", "tags": ["ml"], "schedule": "0 3 * * 1",
#              "max_active_runs": 1, "sha256": "...", "source": "<text of the file>"}],
#    "import_errors": [...], "files": [...], "variables": {...}}
# `owner` is the DAG's owner as Airflow reports it (`airflow` when nobody set one; absent when
# unknown). Only what is hard-coded in a DAG file is judged: a Variable may rightly hold a
# loopback URL where Airflow and MLflow share one machine. Messages start with the environment
# (`input.airflow.environment`, else `data.sluice.context.environment`). An input without
# `airflow` produces no results.
package airflow.dags

import rego.v1

# Matched against lower-cased text: not every Rego engine supports inline regex flags.
local_address := `(localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|host\.docker\.internal|\[::1\])`

# "staging: " before every message; nothing when the environment is unknown.
where := sprintf("%s: ", [input.airflow.environment]) if {
	is_string(input.airflow.environment)
} else := sprintf("%s: ", [data.sluice.context.environment]) if {
	is_string(data.sluice.context.environment)
} else := ""

deny contains msg if {
	some dag in input.airflow.dags
	not dag.owner
	msg := sprintf("%sDAG `%s` (%s) has no owner; set default_args={\"owner\": \"<team>\"}", [where, dag.dag_id, dag.file])
}

deny contains msg if {
	some dag in input.airflow.dags
	trim_space(dag.owner) in {"", "airflow"}
	msg := sprintf("%sDAG `%s` (%s) has owner `%s`, Airflow's default; set default_args={\"owner\": \"<team>\"}", [where, dag.dag_id, dag.file, dag.owner])
}

deny contains msg if {
	some dag in input.airflow.dags
	lines := split(dag.source, "\n")
	some index, line in lines
	regex.match(`tracking_uri`, lower(line))
	regex.match(local_address, lower(line))
	msg := sprintf("%sDAG `%s` (%s:%d) points MLflow at a local address: `%s`; read the Airflow Variable `mlflow_tracking_uri` instead", [where, dag.dag_id, dag.file, index + 1, trim_space(line)])
}

warn contains msg if {
	some dag in input.airflow.dags
	count(object.get(dag, "tags", [])) == 0
	msg := sprintf("%sDAG `%s` (%s) has no tags; tag it so people can find it in the UI", [where, dag.dag_id, dag.file])
}

warn contains msg if {
	some dag in input.airflow.dags
	object.get(dag, "max_active_runs", 16) > 1
	contains(lower(dag.dag_id), "train")
	msg := sprintf("%straining DAG `%s` (%s) allows %d parallel runs; set max_active_runs=1 so runs do not race to register models", [where, dag.dag_id, dag.file, object.get(dag, "max_active_runs", 16)])
}
