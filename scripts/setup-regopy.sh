#!/usr/bin/env bash
# Installs `regopy` (Microsoft's rego-cpp, an independent Rego engine) into a Python virtual
# environment, for the differential test that compares sluice's policy results with it
# (tests/policy.rs). Prints the interpreter's absolute path on standard output; progress goes to
# standard error.
#
# Idempotent: does nothing when the venv already imports regopy. Installs Debian's python3-venv
# when `python3 -m venv` is missing and the script runs as root.
#
# Settings (environment):
#   SLUICE_REGOPY_VENV      the virtual environment's folder   (default .venv-regopy)
#   SLUICE_REGOPY_VERSION   the regopy version to install       (default 1.5.2)
set -euo pipefail
cd "$(dirname "$0")/.."

venv_dir="${SLUICE_REGOPY_VENV:-.venv-regopy}"
case "${venv_dir}" in
    /*) ;;
    *) venv_dir="$(pwd)/${venv_dir}" ;;
esac
regopy_version="${SLUICE_REGOPY_VERSION:-1.5.2}"

say() { echo "setup-regopy: $*" >&2; }
fail() {
    echo "setup-regopy: error: $*" >&2
    exit 1
}

if [ -x "${venv_dir}/bin/python" ] && "${venv_dir}/bin/python" -c 'import regopy' 2>/dev/null; then
    echo "${venv_dir}/bin/python"
    exit 0
fi

command -v python3 >/dev/null || fail "python3 is missing; install it (apt-get install python3) and run again"

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    [ "$(id -u)" = 0 ] || fail "python3 cannot create virtual environments; run as root or install python3-venv"
    say "installing python3-venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi

rm -rf "${venv_dir}"
say "creating ${venv_dir} and installing regopy ${regopy_version}"
python3 -m venv "${venv_dir}"
"${venv_dir}/bin/pip" install --quiet --disable-pip-version-check "regopy==${regopy_version}" \
    || fail "pip could not install regopy ${regopy_version}; check that PyPI is reachable"
"${venv_dir}/bin/python" -c 'import regopy' || fail "regopy installed but does not import"
echo "${venv_dir}/bin/python"
