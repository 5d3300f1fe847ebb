# DAG files never carry cloud credentials in plain text: not as `os.environ[...] = "..."`, not in
# an operator's `env={...}`, not as a literal key. Credentials belong in an Airflow Connection or a
# secrets backend, where they can be rotated without a release.
#
# Input: the DAG folder as sluice describes it (see dags.rego): `input.dags[_].source` is the
# text of the file that defines the DAG. Inputs without `dags` produce no results.
package airflow.secrets

import rego.v1

# Names whose value is a credential when a DAG file assigns it a literal.
credential_names := `(aws_secret_access_key|aws_session_token|aws_access_key_id|google_application_credentials_json|azure_client_secret|azure_storage_key|azure_storage_connection_string|gcp_service_account_key)`

# A name followed by `=` or `:` and a quoted literal of some length, e.g. `"AWS_SECRET_ACCESS_KEY": "abc..."`.
assignment := sprintf(`%s["'\]]*\s*[:=]\s*["'][^"'\s]{8,}["']`, [credential_names])

deny contains msg if {
	some dag in input.dags
	some index, line in split(dag.source, "\n")
	regex.match(assignment, lower(line))
	msg := sprintf("DAG `%s` (%s:%d) sets a cloud credential in plain text; use an Airflow Connection or a secrets backend instead", [dag.dag_id, dag.file, index + 1])
}

# AWS access key ids have a fixed shape wherever they appear.
deny contains msg if {
	some dag in input.dags
	some index, line in split(dag.source, "\n")
	regex.match(`(AKIA|ASIA)[0-9A-Z]{16}`, line)
	msg := sprintf("DAG `%s` (%s:%d) contains an AWS access key id; remove it and rotate the key", [dag.dag_id, dag.file, index + 1])
}
