#!/usr/bin/env bash
# Makes scripts/python/NAME.txt anew: installs scripts/python/NAME.in into a fresh virtual
# environment with no constraints (PyPI's newest versions that NAME.in allows) and writes its
# `pip freeze`. Run the test suite afterwards (scripts/test.sh rebuilds the environment from the
# new file); commit the file only when it passes. If the newest versions break a tool, add a cap to
# NAME.in (as airflow.in caps SQLAlchemy) and refresh again.
#
# usage: scripts/refresh-python-constraints.sh airflow|kubectl|mlflow|regopy
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "refresh-python-constraints: $*" >&2; }
fail() {
    echo "refresh-python-constraints: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/python/venv.sh
. scripts/python/venv.sh

name="${1:-}"
requirements="${python_dir}/${name}.in"
[ -n "${name}" ] && [ -r "${requirements}" ] ||
    fail "name one of: $(cd "${python_dir}" && ls -- *.in | sed 's/\.in$//' | tr '\n' ' ')"
ensure_python_venv_support
scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT
python3 -m venv "${scratch}/venv"
say "installing ${requirements} without constraints"
"${scratch}/venv/bin/pip" install --quiet --disable-pip-version-check -r "${requirements}" >&2
{
    echo "# The pinned environment for ${requirements}; made by scripts/refresh-python-constraints.sh ${name}"
    echo "# on $(date -u +%Y-%m-%d) with $("${scratch}/venv/bin/python" --version). Do not edit by hand."
    "${scratch}/venv/bin/pip" freeze --disable-pip-version-check --exclude-editable |
        grep -viE '^(pip|setuptools|wheel|pkg[-_]resources)=='
} >"${python_dir}/${name}.txt"
say "wrote ${python_dir}/${name}.txt ($(grep -vc '^#' "${python_dir}/${name}.txt") packages); run scripts/test.sh before committing it"
