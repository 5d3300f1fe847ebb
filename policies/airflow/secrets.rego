# DAG files never carry cloud credentials in plain text: not as `os.environ[...] = "..."`, not in
# an operator's `env={...}`, not as a literal key. Credentials belong in an Airflow Connection or a
# secrets backend, where they can be rotated without a release.
#
# Input: sluice's policy input. Read: `input.airflow` (see dags.rego):
# `input.airflow.dags[_].source` is the text of the file that defines the DAG, `dag_id` and
# `file` name it; `input.airflow.unimported[_]` (`file`, `source`) are the Python files of a
# folder that was not imported. A secret is denied in every environment, dev included: it is in git either way.
# Messages start with the environment (`input.airflow.environment`, else
# `data.sluice.context.environment`). An input without `airflow` produces no results.
package airflow.secrets

import rego.v1

# Names whose value is a credential when a DAG file assigns it a literal.
credential_names := `(aws_secret_access_key|aws_session_token|aws_access_key_id|google_application_credentials_json|azure_client_secret|azure_storage_key|azure_storage_connection_string|gcp_service_account_key)`

# A name followed by `=` or `:` and a quoted literal of some length, e.g. `"AWS_SECRET_ACCESS_KEY": "abc..."`.
assignment := sprintf(`%s["'\]]*\s*[:=]\s*["'][^"'\s]{8,}["']`, [credential_names])

# "staging: " before every message; nothing when the environment is unknown.
where := sprintf("%s: ", [input.airflow.environment]) if {
	is_string(input.airflow.environment)
} else := sprintf("%s: ", [data.sluice.context.environment]) if {
	is_string(data.sluice.context.environment)
} else := ""

# What is scanned: each imported DAG's file, and, when the folder was not imported (a pull
# request's preview: code under review is not run on the server), each Python file as it is.
scanned contains [sprintf("DAG `%s`", [dag.dag_id]), dag.file, dag.source] if {
	some dag in input.airflow.dags
}

scanned contains ["DAG file", file.file, file.source] if {
	some file in input.airflow.unimported
}

deny contains msg if {
	some [name, file, source] in scanned
	some index, line in split(source, "\n")
	regex.match(assignment, lower(line))
	msg := sprintf("%s%s (%s:%d) sets a cloud credential in plain text; use an Airflow Connection or a secrets backend instead", [where, name, file, index + 1])
}

# AWS access key ids have a fixed shape wherever they appear.
deny contains msg if {
	some [name, file, source] in scanned
	some index, line in split(source, "\n")
	regex.match(`(AKIA|ASIA)[0-9A-Z]{16}`, line)
	msg := sprintf("%s%s (%s:%d) contains an AWS access key id; remove it and rotate the key", [where, name, file, index + 1])
}
