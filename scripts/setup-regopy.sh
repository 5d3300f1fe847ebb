#!/usr/bin/env bash
# Installs `regopy` (Microsoft's rego-cpp, an independent Rego engine) into a Python virtual
# environment, for the differential test that compares sluice's policy results with it
# (tests/policy.rs). Prints the interpreter's absolute path on standard output; progress goes to
# standard error.
#
# The versions are pinned by scripts/python/regopy.in and scripts/python/regopy.txt; a venv that
# holds exactly those versions is reused, any other is rebuilt. Installs Debian's python3-venv
# when `python3 -m venv` is missing and the script runs as root.
#
# Settings (environment):
#   SLUICE_REGOPY_VENV      the virtual environment's folder   (default .venv-regopy)
set -euo pipefail
cd "$(dirname "$0")/.."

venv_dir="${SLUICE_REGOPY_VENV:-.venv-regopy}"
case "${venv_dir}" in
    /*) ;;
    *) venv_dir="$(pwd)/${venv_dir}" ;;
esac

say() { echo "setup-regopy: $*" >&2; }
fail() {
    echo "setup-regopy: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/python/venv.sh
. scripts/python/venv.sh

ensure_venv regopy "${venv_dir}"
"${venv_dir}/bin/python" -c 'import regopy' || fail "regopy is installed in ${venv_dir} but does not import"
echo "${venv_dir}/bin/python"
