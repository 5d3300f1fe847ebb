#!/usr/bin/env bash
# Installs Apache Airflow 3 into a Python virtual environment for the Airflow target's tests and
# the demo (tests/airflow.rs starts `airflow standalone` from it). Prints the venv's absolute path
# on standard output; progress goes to standard error.
#
# The versions are pinned: scripts/python/airflow.in says what is asked for and
# scripts/python/airflow.txt pins every package of an environment that passed the tests. A venv
# that holds exactly those versions is reused; any other is rebuilt. Installs Debian's python3-venv
# when `python3 -m venv` is missing and the script runs as root.
#
# Settings (environment):
#   SLUICE_AIRFLOW_VENV      the virtual environment's folder   (default .venv-airflow)
set -euo pipefail
cd "$(dirname "$0")/.."

venv_dir="${SLUICE_AIRFLOW_VENV:-.venv-airflow}"
case "${venv_dir}" in
    /*) ;;
    *) venv_dir="$(pwd)/${venv_dir}" ;;
esac

say() { echo "setup-airflow: $*" >&2; }
fail() {
    echo "setup-airflow: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/python/venv.sh
. scripts/python/venv.sh

ensure_venv airflow "${venv_dir}"
version="$(AIRFLOW_HOME="$(mktemp -d)" "${venv_dir}/bin/python" -c \
    'import importlib.metadata as m; print(m.version("apache-airflow"))')" ||
    fail "apache-airflow is installed in ${venv_dir} but does not import"
say "apache-airflow ${version} ready in ${venv_dir}"
echo "${venv_dir}"
