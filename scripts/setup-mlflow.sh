#!/usr/bin/env bash
# Installs MLflow (its tracking server and Python client) into a Python virtual environment, for
# the MLflow target's tests (tests/mlflow.rs) and the demo. Prints the venv's absolute path on
# standard output; progress goes to standard error.
#
# The versions are pinned by scripts/python/mlflow.in and scripts/python/mlflow.txt; a venv that
# holds exactly those versions is reused, any other is rebuilt. Installs Debian's python3-venv
# when `python3 -m venv` is missing and the script runs as root.
#
# Settings (environment):
#   SLUICE_MLFLOW_VENV      the virtual environment's folder   (default .venv-mlflow)
set -euo pipefail
cd "$(dirname "$0")/.."

venv_dir="${SLUICE_MLFLOW_VENV:-.venv-mlflow}"
case "${venv_dir}" in
    /*) ;;
    *) venv_dir="$(pwd)/${venv_dir}" ;;
esac

say() { echo "setup-mlflow: $*" >&2; }
fail() {
    echo "setup-mlflow: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/python/venv.sh
. scripts/python/venv.sh

ensure_venv mlflow "${venv_dir}"
[ -x "${venv_dir}/bin/mlflow" ] && "${venv_dir}/bin/python" -c 'import mlflow' 2>/dev/null ||
    fail "\`mlflow\` or \`import mlflow\` does not work in ${venv_dir}"
echo "${venv_dir}"
