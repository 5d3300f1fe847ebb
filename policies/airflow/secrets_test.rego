# Tests of airflow.secrets; run with `sluice policy test policies` or `opa test policies`.
# Each input is sluice's: the DAG folder's facts under `input.airflow`.
package airflow.secrets_test

import rego.v1

import data.airflow.secrets

dag(source) := {"dag_id": "batch_score", "file": "platform/dags/batch_score.py", "owner": "ml-platform", "source": source}

test_a_plain_secret_in_env_is_denied_with_its_line if {
	source := "from airflow.sdk import DAG\nenv = {\"AWS_SECRET_ACCESS_KEY\": \"wJalrXUtnFEMIK7MDENGbPxRfiCY\"}\n"
	secrets.deny == {"production: DAG `batch_score` (platform/dags/batch_score.py:2) sets a cloud credential in plain text; use an Airflow Connection or a secrets backend instead"} with input.airflow as {"environment": "production", "dags": [dag(source)]}
}

test_os_environ_assignments_are_denied if {
	count(secrets.deny) == 1 with input.airflow as {"environment": "dev", "dags": [dag("os.environ['AZURE_CLIENT_SECRET'] = 'abcdefghijkl'")]}
}

test_an_access_key_id_anywhere_is_denied if {
	denials := secrets.deny with input.airflow as {"environment": "staging", "dags": [dag("import os\nkey = 'AKIAIOSFODNN7EXAMPLE'")]}
	denials == {"staging: DAG `batch_score` (platform/dags/batch_score.py:2) contains an AWS access key id; remove it and rotate the key"}
}

test_reading_a_secret_from_a_connection_passes if {
	count(secrets.deny) == 0 with input.airflow as {"environment": "production", "dags": [dag("key = BaseHook.get_connection('aws').password\nAWS_SECRET_ACCESS_KEY = Variable.get('x')")]}
}

test_only_the_airflow_domain_is_read if {
	leaked := {"environment": "production", "dags": [dag("key = 'AKIAIOSFODNN7EXAMPLE'")]}
	count(secrets.deny) == 1 with input.airflow as leaked
	count(secrets.deny) == 0 with input as leaked
	count(secrets.deny) == 0 with input as {"mlflow": {"environment": "production", "models": []}}
}

test_a_folder_not_imported_is_scanned_file_by_file if {
	folder := {"environment": "production", "validated": false, "dags": [], "unimported": [{"file": "platform/dags/batch_score.py", "source": "import os\nkey = 'AKIAIOSFODNN7EXAMPLE'"}]}
	denials := secrets.deny with input.airflow as folder
	denials == {"production: DAG file (platform/dags/batch_score.py:2) contains an AWS access key id; remove it and rotate the key"}
}
