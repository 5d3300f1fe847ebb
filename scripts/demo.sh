#!/usr/bin/env bash
# The demo, on a fresh Debian 12 machine or a developer's: starts what the example platform's
# pipeline needs (a Docker engine, a registry on 127.0.0.1:5000, the local Python base image the
# platform's images build FROM, the image its steps run in, an MLflow tracking server with the
# churn model's versions, kubectl for the Kubernetes overlays, an Airflow 3 per environment), then
# runs `sluice demo --serve` on the embedded example and ends with the address of its web UI,
# which stays up over the demo's data until the printed `kill` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ] && ! docker info >/dev/null 2>&1; then
  echo "scripts/demo.sh: run as root (it installs and starts a Docker engine and a registry)," >&2
  echo "or start them yourself (scripts/setup-docker.sh, scripts/setup-registry.sh) and run: cargo run --release -- demo" >&2
  exit 2
fi
if ! command -v python3 >/dev/null || ! command -v git >/dev/null; then
  apt-get update -qq && apt-get install -y -qq git python3 >/dev/null
fi
scripts/setup-docker.sh
scripts/setup-registry.sh
scripts/setup-python-base.sh
# Every step of the example platform runs in a container from this image (python3 + terraform).
scripts/setup-step-image.sh
# A real MLflow for the model promotion; the demo records the MLflow calls instead when none answers.
scripts/setup-demo-mlflow.sh || echo "scripts/demo.sh: no MLflow for the demo; it will record the model promotion instead" >&2
# kubectl renders the example's Kubernetes overlays; no cluster runs here, so they are applied to an
# in-process fake API server. Without kubectl the demo records the Kubernetes calls instead.
if SLUICE_KUBECTL="$(scripts/setup-kubectl.sh)"; then
  export SLUICE_KUBECTL
else
  echo "scripts/demo.sh: no kubectl for the demo; it will record the Kubernetes deploys instead" >&2
fi
# A real Airflow 3 per environment for the DAG deploys; without one the demo records those calls.
if SLUICE_AIRFLOW_VENV="$(scripts/setup-demo-airflow.sh)"; then
  export SLUICE_AIRFLOW_VENV
else
  echo "scripts/demo.sh: no Airflow for the demo; it will record the DAG deploys instead" >&2
fi

cargo build --release --locked
# The demo runs in the background and stays up at its end, serving the web UI over what it did;
# this script shows its output until the UI's address is printed, then leaves it running.
log="$(mktemp -t sluice-demo.XXXXXX.log)"
setsid nohup target/release/sluice demo --serve "$@" </dev/null >"$log" 2>&1 &
pid=$!
while IFS= read -r line; do
  printf '%s\n' "$line"
  case "$line" in *"==> the web UI is at"*) break ;; esac
done < <(tail -n +1 -f --pid="$pid" "$log" 2>/dev/null)
if ! kill -0 "$pid" 2>/dev/null; then
  wait "$pid"
  exit $?
fi
echo "==> the demo's server keeps running (pid $pid, output in $log); stop it with: kill $pid"
if grep -q "some runs failed" "$log"; then
  exit 1
fi
