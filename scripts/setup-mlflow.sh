#!/usr/bin/env bash
# Installs MLflow (its tracking server and Python client) into a Python virtual environment, for
# the MLflow target's tests (tests/mlflow.rs) and the demo. Prints the venv's absolute path on
# standard output; progress goes to standard error.
#
# Idempotent: does nothing when the venv already has a working `mlflow` command and client.
# Installs Debian's python3-venv when `python3 -m venv` is missing and the script runs as root.
#
# Settings (environment):
#   SLUICE_MLFLOW_VENV      the virtual environment's folder   (default .venv-mlflow)
#   SLUICE_MLFLOW_VERSION   a version to pin, e.g. 2.22.0     (default: the newest)
set -euo pipefail
cd "$(dirname "$0")/.."

venv_dir="${SLUICE_MLFLOW_VENV:-.venv-mlflow}"
case "${venv_dir}" in
    /*) ;;
    *) venv_dir="$(pwd)/${venv_dir}" ;;
esac
requirement="mlflow${SLUICE_MLFLOW_VERSION:+==${SLUICE_MLFLOW_VERSION}}"

say() { echo "setup-mlflow: $*" >&2; }
fail() {
    echo "setup-mlflow: error: $*" >&2
    exit 1
}

works() {
    [ -x "${venv_dir}/bin/mlflow" ] && "${venv_dir}/bin/python" -c 'import mlflow' 2>/dev/null
}

if works; then
    echo "${venv_dir}"
    exit 0
fi

command -v python3 >/dev/null || fail "python3 is missing; install it (apt-get install python3) and run again"

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    [ "$(id -u)" = 0 ] || fail "python3 cannot create virtual environments; run as root or install python3-venv"
    say "installing python3-venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi

rm -rf "${venv_dir}"
say "creating ${venv_dir} and installing ${requirement} (about a minute)"
python3 -m venv "${venv_dir}"
"${venv_dir}/bin/pip" install --quiet --disable-pip-version-check "${requirement}" >&2 \
    || fail "pip could not install ${requirement}; check that PyPI is reachable"
works || fail "${requirement} installed but \`mlflow\` or \`import mlflow\` does not work in ${venv_dir}"
echo "${venv_dir}"
