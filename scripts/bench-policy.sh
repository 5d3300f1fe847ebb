#!/usr/bin/env bash
# Runs the policy benchmark (benches/policy.rs) in release mode: the default Terraform policies
# over the 121 plans in tests/fixtures/terraform-plans with sluice, regopy and checkov.
# Installs the peers first when they are missing: regopy into .venv-regopy (scripts/setup-regopy.sh)
# and checkov into .venv-checkov (`pip install checkov`); needs python3 with venv and PyPI.
# Prints the date, machine, load average and commit, then the benchmark's Markdown tables.
#
# Usage: scripts/bench-policy.sh
# Settings (environment):
#   BENCH_REPEATS           passes over the plans per engine            (default 11)
#   BENCH_CHECKOV_FILES     plans checkov checks one process each       (default all)
#   SLUICE_CHECKOV_VENV     checkov's virtual environment               (default .venv-checkov)
#   SLUICE_CHECKOV_VERSION  the checkov version to install              (default: the newest)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "bench-policy: $*" >&2; }
fail() {
    echo "bench-policy: error: $*" >&2
    exit 1
}

regopy_python="$(scripts/setup-regopy.sh)" || fail "regopy could not be installed; see above"
export SLUICE_REGOPY_PYTHON="${regopy_python}"

checkov_venv="${SLUICE_CHECKOV_VENV:-.venv-checkov}"
case "${checkov_venv}" in
    /*) ;;
    *) checkov_venv="$(pwd)/${checkov_venv}" ;;
esac
if ! "${checkov_venv}/bin/checkov" --version >/dev/null 2>&1; then
    command -v python3 >/dev/null || fail "python3 is missing; install it (apt-get install python3) and run again"
    checkov_requirement="checkov${SLUICE_CHECKOV_VERSION:+==${SLUICE_CHECKOV_VERSION}}"
    say "creating ${checkov_venv} and installing ${checkov_requirement}; this takes a few minutes"
    rm -rf "${checkov_venv}"
    python3 -m venv "${checkov_venv}" || fail "python3 cannot create a virtual environment; install python3-venv"
    "${checkov_venv}/bin/pip" install --quiet --disable-pip-version-check "${checkov_requirement}" \
        || fail "pip could not install ${checkov_requirement}; check that PyPI is reachable"
    "${checkov_venv}/bin/checkov" --version >/dev/null || fail "checkov installed but does not run"
fi
export SLUICE_CHECKOV="${checkov_venv}/bin/checkov"

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "regopy: $("${regopy_python}" -m pip show regopy 2>/dev/null | sed -n 's/^Version: //p')"
echo "checkov: $("${SLUICE_CHECKOV}" --version)"
echo
echo "== cargo bench --bench policy"
cargo bench --bench policy
