#!/usr/bin/env bash
# For the demo: Airflow 3 (`airflow standalone` from the venv scripts/setup-airflow.sh makes) for
# each environment in environments/*.yaml, at the address its `airflow.api` names and reading the
# DAG folder its `airflow.folder` names (which sluice then owns: a symlink to a version
# directory). One Airflow per environment, as the environment files say, because one Airflow has
# one set of DAG ids and Variables and the three environments deploy the same DAGs with different
# Variables. Each keeps its home (metadata database, logs, the generated admin password in
# simple_auth_manager_passwords.json.generated) in $SLUICE_DEMO_AIRFLOW_DIR/ENV
# (default /var/lib/sluice-airflow/ENV), where `sluice demo` finds the login.
#
# The scheduler runs but creates no scheduled runs (use_job_schedule off): the example DAGs' tasks
# import the `churn` package from the trainer image, which this machine's workers do not have.
# Idempotent: a server already answering at an address is reused. Waits until every scheduler and
# DAG processor reports healthy; exits 1 (and says where the log is) when one does not.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup-demo-airflow: $*" >&2; }

homes="${SLUICE_DEMO_AIRFLOW_DIR:-/var/lib/sluice-airflow}"
venv_dir="$(scripts/setup-airflow.sh)"
python="${venv_dir}/bin/python"

# "NAME PORT FOLDER" for each environment file with an `airflow:` section on 127.0.0.1.
environments="$("${python}" - <<'PY'
import glob, urllib.parse, yaml
for path in sorted(glob.glob("environments/*.yaml")):
    with open(path, encoding="utf-8") as file:
        environment = yaml.safe_load(file) or {}
    airflow = environment.get("airflow") or {}
    url = urllib.parse.urlparse(airflow.get("api", ""))
    if url.hostname in ("127.0.0.1", "localhost") and url.port and airflow.get("folder"):
        print(environment["name"], url.port, airflow["folder"])
PY
)"
[ -n "${environments}" ] || { say "no environment names a local Airflow; nothing to start"; exit 0; }

healthy() {
    curl -fsS --max-time 5 "http://127.0.0.1:$1/api/v2/monitor/health" 2>/dev/null | "${python}" -c '
import json, sys
health = json.load(sys.stdin)
sys.exit(0 if all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler", "dag_processor")) else 1)' 2>/dev/null
}

while read -r name port folder; do
    home="${homes}/${name}"
    if curl -fsS --max-time 5 "http://127.0.0.1:${port}/api/v2/version" >/dev/null 2>&1; then
        say "${name}: an Airflow already answers on 127.0.0.1:${port}; reusing it"
        continue
    fi
    mkdir -p "${home}" "$(dirname "${folder}")"
    say "${name}: starting airflow standalone on 127.0.0.1:${port} (DAG folder ${folder}, home ${home}, log ${home}/standalone.log)"
    # Its own session, so it outlives this script and the demo, like the demo's MLflow.
    env PATH="${venv_dir}/bin:${PATH}" AIRFLOW_HOME="${home}" \
        AIRFLOW__CORE__DAGS_FOLDER="${folder}" \
        AIRFLOW__CORE__LOAD_EXAMPLES=False \
        AIRFLOW__CORE__PARALLELISM=2 \
        AIRFLOW__API__HOST=127.0.0.1 \
        AIRFLOW__API__PORT="${port}" \
        AIRFLOW__API__WORKERS=1 \
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:${port}/execution/" \
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=2 \
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=2 \
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=1 \
        AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD=10 \
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False \
        AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING \
        setsid nohup airflow standalone >"${home}/standalone.log" 2>&1 </dev/null &
done <<<"${environments}"

deadline=$((SECONDS + ${SLUICE_DEMO_AIRFLOW_TIMEOUT:-420}))
while read -r name port folder; do
    until healthy "${port}"; do
        if ((SECONDS > deadline)); then
            say "${name}: Airflow on 127.0.0.1:${port} is not healthy; see ${homes}/${name}/standalone.log:"
            tail -n 20 "${homes}/${name}/standalone.log" 2>/dev/null | sed 's/^/    /' >&2 || true
            exit 1
        fi
        sleep 2
    done
    [ -r "${homes}/${name}/simple_auth_manager_passwords.json.generated" ] ||
        { say "${name}: the Airflow on 127.0.0.1:${port} is not the demo's (no login in ${homes}/${name}); stop it and run again"; exit 1; }
    say "${name}: Airflow healthy on 127.0.0.1:${port}"
done <<<"${environments}"
echo "${venv_dir}"
