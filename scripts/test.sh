#!/usr/bin/env bash
# The full test suite, on a fresh Debian 12 machine or a developer's: installs and starts what the
# tests need (a Docker engine with a local base image, a registry on 127.0.0.1:5000, regopy,
# Airflow 3, MLflow and kubectl in virtual environments, PostgreSQL 15, headless Chromium), then runs
# every test once.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { [ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (it installs Debian packages), or start a Docker engine yourself and run: cargo test" >&2; exit 2; }; }

if ! command -v git >/dev/null || ! command -v python3 >/dev/null; then
  need_root
  apt-get update -qq && apt-get install -y -qq git python3 >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  need_root
fi
scripts/setup-docker.sh
scripts/setup-registry.sh
# tests/trust.rs runs a pull request's Terraform in the image the demo's steps use.
scripts/setup-python-base.sh
scripts/setup-step-image.sh

echo "==> regopy for the policy differential test"
# The differential test in tests/policy.rs compares sluice's policy results with regopy's; here
# a missing regopy fails it instead of skipping it.
SLUICE_REGOPY_PYTHON="$(scripts/setup-regopy.sh)"
export SLUICE_REGOPY_PYTHON SLUICE_REQUIRE_REGOPY=1

echo "==> Airflow 3 for the Airflow target's tests"
# tests/airflow.rs starts `airflow standalone` from this venv; here a missing one fails those tests.
SLUICE_AIRFLOW_VENV="$(scripts/setup-airflow.sh)"
export SLUICE_AIRFLOW_VENV SLUICE_REQUIRE_AIRFLOW=1
echo "==> MLflow for the MLflow target's tests"
# tests/mlflow.rs starts a real `mlflow server` from this venv; here a missing MLflow fails those
# tests instead of skipping them.
SLUICE_MLFLOW_VENV="$(scripts/setup-mlflow.sh)"
export SLUICE_MLFLOW_VENV SLUICE_REQUIRE_MLFLOW=1

echo "==> kubectl for the Kubernetes overlays"
# tests/kubernetes.rs renders the example platform's kustomize overlays with it; here a missing
# kubectl fails that test instead of skipping it.
SLUICE_KUBECTL="$(scripts/setup-kubectl.sh)"
export SLUICE_KUBECTL SLUICE_REQUIRE_KUBECTL=1

echo "==> PostgreSQL 15 for the store's second database and the replica tests"
# tests/store.rs, tests/replicas.rs and tests/migrate.rs start throwaway clusters with it; here a
# missing PostgreSQL fails them instead of skipping their PostgreSQL half.
SLUICE_POSTGRES_BIN="$(scripts/setup-postgres.sh)"
export SLUICE_POSTGRES_BIN SLUICE_REQUIRE_POSTGRES=1

echo "==> Chromium and chromedriver for the web UI's browser tests"
# tests/ui_browser.rs drives headless Chromium through WebDriver; here a missing browser fails it.
scripts/setup-browser.sh
export SLUICE_REQUIRE_BROWSER=1

echo "==> cargo test (library, binary and integration tests, one build)"
# Benchmarks are binaries of their own (scripts/bench.sh); `--all-targets` would run them here.
exec cargo test --locked --no-fail-fast --lib --bins --tests "$@"
