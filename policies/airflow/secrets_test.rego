# Tests of airflow.secrets; run with `sluice policy test policies` or `opa test policies`.
package airflow.secrets_test

import rego.v1

import data.airflow.secrets

dag(source) := {"dag_id": "batch_score", "file": "platform/dags/batch_score.py", "owner": "ml-platform", "source": source}

test_a_plain_secret_in_env_is_denied_with_its_line if {
	source := "from airflow.sdk import DAG\nenv = {\"AWS_SECRET_ACCESS_KEY\": \"wJalrXUtnFEMIK7MDENGbPxRfiCY\"}\n"
	secrets.deny == {"DAG `batch_score` (platform/dags/batch_score.py:2) sets a cloud credential in plain text; use an Airflow Connection or a secrets backend instead"} with input as {"dags": [dag(source)]}
}

test_os_environ_assignments_are_denied if {
	count(secrets.deny) == 1 with input as {"dags": [dag("os.environ['AZURE_CLIENT_SECRET'] = 'abcdefghijkl'")]}
}

test_an_access_key_id_anywhere_is_denied if {
	some message in secrets.deny with input as {"dags": [dag("key = 'AKIAIOSFODNN7EXAMPLE'")]}
	contains(message, "contains an AWS access key id")
}

test_reading_a_secret_from_a_connection_passes if {
	count(secrets.deny) == 0 with input as {"dags": [dag("key = BaseHook.get_connection('aws').password\nAWS_SECRET_ACCESS_KEY = Variable.get('x')")]}
}

test_other_inputs_are_ignored if {
	count(secrets.deny) == 0 with input as {"resource_changes": []}
}
