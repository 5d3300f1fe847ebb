#!/usr/bin/env bash
# PostgreSQL 15's programs for the tests' and benchmarks' throwaway clusters (each test starts its
# own with initdb and pg_ctl in a temporary directory). Uses initdb and pg_ctl on PATH, then
# Debian's /usr/lib/postgresql/*/bin, and installs Debian's `postgresql` package when neither has
# them. Prints the directory that holds them.
set -euo pipefail

find_binaries() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  for directory in /usr/lib/postgresql/*/bin; do
    if [ -x "$directory/initdb" ] && [ -x "$directory/pg_ctl" ]; then
      echo "$directory"
      return 0
    fi
  done
  return 1
}

if ! directory="$(find_binaries)"; then
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/setup-postgres.sh: no PostgreSQL found; install Debian's postgresql package (PostgreSQL 15) or run as root" >&2
    exit 2
  fi
  echo "==> installing PostgreSQL (Debian's postgresql package)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  # The package's own cluster is not what the tests use.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
  fi
  directory="$(find_binaries)"
fi
echo "$directory"
