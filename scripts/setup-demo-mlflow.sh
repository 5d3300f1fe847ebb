#!/usr/bin/env bash
# For the demo: an MLflow tracking server on 127.0.0.1:5500 (the address in environments/*.yaml),
# with a SQLite backend under /var/lib/sluice-mlflow (or $SLUICE_DEMO_MLFLOW_DIR), holding 14
# versions of the `churn-classifier` model, each registered through the MLflow client with a real
# run, its metrics, and the `airflow_run_id` tag the training DAG would set. Idempotent: a server
# already answering is reused and versions already registered are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup-demo-mlflow: $*" >&2; }

url=http://127.0.0.1:5500
data_dir="${SLUICE_DEMO_MLFLOW_DIR:-/var/lib/sluice-mlflow}"
venv_dir="$(scripts/setup-mlflow.sh)"

if ! curl -fsS "${url}/health" >/dev/null 2>&1; then
    mkdir -p "${data_dir}/artifacts"
    say "starting mlflow server on ${url} (data: ${data_dir}, log: ${data_dir}/server.log)"
    nohup "${venv_dir}/bin/mlflow" server --backend-store-uri "sqlite:///${data_dir}/mlflow.db" \
        --default-artifact-root "${data_dir}/artifacts" --host 127.0.0.1 --port 5500 \
        >"${data_dir}/server.log" 2>&1 &
    for _ in $(seq 1 120); do
        curl -fsS "${url}/health" >/dev/null 2>&1 && break
        sleep 1
    done
    curl -fsS "${url}/health" >/dev/null || { say "mlflow server did not answer; see ${data_dir}/server.log"; exit 1; }
fi

registered=$(curl -fsS "${url}/api/2.0/mlflow/registered-models/get?name=churn-classifier" 2>/dev/null \
    | "${venv_dir}/bin/python" -c 'import json,sys; print(max([int(v["version"]) for v in json.load(sys.stdin)["registered_model"].get("latest_versions", [])] or [0]))' 2>/dev/null || echo 0)
if [ "${registered}" -ge 14 ]; then
    say "churn-classifier already has ${registered} versions"
    exit 0
fi
say "registering 14 versions of churn-classifier with real runs and metrics"
spec=$("${venv_dir}/bin/python" - <<'PY'
import json
versions = []
for index in range(1, 15):
    versions.append({
        "metrics": {"accuracy": round(0.70 + 0.005 * index, 4), "f1_score": round(0.60 + 0.006 * index, 4)},
        "tags": {"airflow_run_id": f"scheduled__2026-11-{index:02d}T02:00:00+00:00", "dataset_version": f"2026-11-{index:02d}"},
    })
print(json.dumps({"model": "churn-classifier", "versions": versions}))
PY
)
"${venv_dir}/bin/python" tests/support/mlflow_register.py "${url}" "${spec}" >/dev/null
say "done: ${url} serves churn-classifier versions 1 to 14"
