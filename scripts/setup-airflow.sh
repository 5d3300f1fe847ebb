#!/usr/bin/env bash
# Installs Apache Airflow 3 into a Python virtual environment for the Airflow target's tests and
# the demo (tests/airflow.rs starts `airflow standalone` from it). Prints the venv's absolute path
# on standard output; progress goes to standard error.
#
# Idempotent: does nothing when the venv already runs `airflow version` with the wanted major
# version. Installs Debian's python3-venv when `python3 -m venv` is missing and the script runs as
# root. Airflow's constraint files live on GitHub; they are used only when reachable.
#
# Settings (environment):
#   SLUICE_AIRFLOW_VENV      the virtual environment's folder   (default .venv-airflow)
#   SLUICE_AIRFLOW_VERSION   the pip version specifier           (default 3.1.*)
set -euo pipefail
cd "$(dirname "$0")/.."

venv_dir="${SLUICE_AIRFLOW_VENV:-.venv-airflow}"
case "${venv_dir}" in
    /*) ;;
    *) venv_dir="$(pwd)/${venv_dir}" ;;
esac
airflow_version="${SLUICE_AIRFLOW_VERSION:-3.1.*}"

say() { echo "setup-airflow: $*" >&2; }
fail() {
    echo "setup-airflow: error: $*" >&2
    exit 1
}

installed_version() {
    AIRFLOW_HOME="$(mktemp -d)" "${venv_dir}/bin/python" -c \
        'import importlib.metadata as m; print(m.version("apache-airflow"))' 2>/dev/null
}

wanted_prefix="${airflow_version%%\**}"
if [ -x "${venv_dir}/bin/airflow" ]; then
    current_version="$(installed_version || true)"
    case "${current_version}" in
        "${wanted_prefix}"*)
            say "apache-airflow ${current_version} already in ${venv_dir}"
            echo "${venv_dir}"
            exit 0
            ;;
    esac
fi

command -v python3 >/dev/null || fail "python3 is missing; install it (apt-get install python3) and run again"
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    [ "$(id -u)" = 0 ] || fail "python3 cannot create virtual environments; run as root or install python3-venv"
    say "installing python3-venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi

[ -x "${venv_dir}/bin/pip" ] || python3 -m venv "${venv_dir}"
python_minor="$("${venv_dir}/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
constraint_arguments=()
if [ "${wanted_prefix}" != "${airflow_version}" ]; then
    : # a wildcard version has no single constraints file
else
    constraints_url="https://raw.githubusercontent.com/apache/airflow/constraints-${airflow_version}/constraints-${python_minor}.txt"
    if curl -fsS --max-time 5 -o /dev/null "${constraints_url}" 2>/dev/null; then
        constraint_arguments=(--constraint "${constraints_url}")
    fi
fi
say "installing apache-airflow==${airflow_version} into ${venv_dir} (about a minute)"
"${venv_dir}/bin/pip" install --quiet --disable-pip-version-check "apache-airflow==${airflow_version}" \
    "${constraint_arguments[@]}" ||
    fail "pip could not install apache-airflow==${airflow_version}; check that PyPI is reachable"
current_version="$(installed_version)" || fail "apache-airflow installed but does not import"
say "apache-airflow ${current_version} ready in ${venv_dir}"
echo "${venv_dir}"
