#!/usr/bin/env bash
# Runs sluice's benchmarks in release mode: webhook intake (against a do-nothing axum handler and
# adnanh/webhook, loaded by wrk), changed-path computation (against the git CLI) and image builds
# (against `docker build` + `docker push`; needs the Docker engine and the registry on 127.0.0.1:5000)
# and deliveries to finished runs on one replica on SQLite against one to three on PostgreSQL (needs
# PostgreSQL's initdb: scripts/setup-postgres.sh).
# Installs the peers from Debian's packages when they are missing (needs root or sudo).
# Usage: scripts/bench.sh [intake|changed_paths|build|replicas]...   (default: all four)
# Settings pass through the environment: BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_RATE, BENCH_REPEATS...
set -euo pipefail

cd "$(dirname "$0")/.."

missing_packages=()
command -v wrk >/dev/null 2>&1 || missing_packages+=(wrk)
command -v webhook >/dev/null 2>&1 || missing_packages+=(webhook)
command -v git >/dev/null 2>&1 || missing_packages+=(git)
if ((${#missing_packages[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        as_root=(false)
    fi
    echo "installing ${missing_packages[*]} ..." >&2
    if ! "${as_root[@]}" apt-get install -y -qq "${missing_packages[@]}" >/dev/null 2>&1; then
        "${as_root[@]}" apt-get update -qq >/dev/null 2>&1 || true
        "${as_root[@]}" apt-get install -y -qq "${missing_packages[@]}" >/dev/null 2>&1 ||
            echo "could not install ${missing_packages[*]}; the benchmarks skip or replace what is missing" >&2
    fi
fi

benches=("$@")
if ((${#benches[@]} == 0)); then
    benches=(intake changed_paths build replicas)
fi

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
for bench in "${benches[@]}"; do
    echo
    echo "== cargo bench --bench $bench"
    cargo bench --bench "$bench"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
