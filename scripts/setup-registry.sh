#!/usr/bin/env bash
# Runs a local container registry (Distribution 2.8, Debian's `docker-registry`) on
# 127.0.0.1:5000 with the configuration in scripts/registry.yml, storing images under
# /var/lib/sluice-registry. Images built by the demo and the end-to-end tests are pushed here.
#
# Idempotent: installs the package only if missing and starts the registry only if `/v2/` does
# not answer yet; then waits, bounded, until `/v2/` answers.
#
# Settings (environment):
#   SLUICE_REGISTRY_ADDR          listen address             (default 127.0.0.1:5000)
#   SLUICE_REGISTRY_CONFIG        configuration file         (default scripts/registry.yml)
#   SLUICE_REGISTRY_STORAGE       storage directory          (default /var/lib/sluice-registry)
#   SLUICE_REGISTRY_LOG           log file                   (default /var/log/sluice-registry.log)
#   SLUICE_REGISTRY_WAIT_SECONDS  how long to wait           (default 30)
set -euo pipefail

script_directory="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
registry_addr="${SLUICE_REGISTRY_ADDR:-127.0.0.1:5000}"
registry_config="${SLUICE_REGISTRY_CONFIG:-${script_directory}/registry.yml}"
registry_storage="${SLUICE_REGISTRY_STORAGE:-/var/lib/sluice-registry}"
registry_log="${SLUICE_REGISTRY_LOG:-/var/log/sluice-registry.log}"
wait_seconds="${SLUICE_REGISTRY_WAIT_SECONDS:-30}"
registry_url="http://${registry_addr}/v2/"

say() { echo "setup-registry: $*"; }
fail() {
    echo "setup-registry: error: $*" >&2
    exit 1
}

# Prints the HTTP status of a GET, or 000 when nothing answers. curl when present, else python3.
http_status() {
    if command -v curl >/dev/null 2>&1; then
        curl --silent --output /dev/null --max-time 2 --write-out '%{http_code}' "$1" || true
    else
        python3 - "$1" <<'PYTHON'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as error:
    print(error.code)
except Exception:
    print("000")
PYTHON
    fi
}

registry_answers() { [ "$(http_status "${registry_url}")" = "200" ]; }

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        fail "$1 needs root; run this script as root (e.g. sudo $0)"
    fi
}

install_registry() {
    if command -v docker-registry >/dev/null 2>&1; then
        say "package docker-registry already installed"
        return
    fi
    require_root "installing docker-registry"
    say "installing docker-registry with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update failed; check the machine's apt sources and network"
    apt-get install -y -qq --no-install-recommends docker-registry ||
        fail "apt-get install docker-registry failed; see the apt output above"
}

start_registry() {
    if registry_answers; then
        say "registry already answers on ${registry_url}"
        return
    fi
    local port_status
    port_status="$(http_status "http://${registry_addr}/")"
    if [ "${port_status}" != "000" ]; then
        fail "something that is not a registry answers on ${registry_addr} (HTTP ${port_status}); stop it or set SLUICE_REGISTRY_ADDR to a free address"
    fi
    [ -r "${registry_config}" ] || fail "registry configuration ${registry_config} is missing; set SLUICE_REGISTRY_CONFIG"
    mkdir -p "${registry_storage}" "$(dirname "${registry_log}")" ||
        fail "cannot create ${registry_storage}; run as root or set SLUICE_REGISTRY_STORAGE"
    say "starting docker-registry on ${registry_addr} (config: ${registry_config}, storage: ${registry_storage}, log: ${registry_log})"
    # setsid: the registry must outlive this script and the shell that ran it. The environment
    # overrides the address and storage written in the configuration file.
    REGISTRY_HTTP_ADDR="${registry_addr}" \
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="${registry_storage}" \
        setsid docker-registry serve "${registry_config}" >>"${registry_log}" 2>&1 </dev/null &
    local registry_pid=$!
    say "docker-registry started as pid ${registry_pid}; waiting up to ${wait_seconds}s for ${registry_url}"
    local waited_seconds=0
    until registry_answers; do
        if ! kill -0 "${registry_pid}" 2>/dev/null; then
            echo "--- last lines of ${registry_log} ---" >&2
            tail -n 20 "${registry_log}" >&2 || true
            fail "docker-registry exited before answering; read ${registry_log} for the cause"
        fi
        if [ "${waited_seconds}" -ge "${wait_seconds}" ]; then
            fail "${registry_url} did not answer within ${wait_seconds}s; read ${registry_log}, or raise SLUICE_REGISTRY_WAIT_SECONDS"
        fi
        sleep 1
        waited_seconds=$((waited_seconds + 1))
    done
    say "registry answers after ${waited_seconds}s"
}

install_registry
start_registry
say "done: registry on ${registry_url} (push as ${registry_addr}/NAME:TAG)"
