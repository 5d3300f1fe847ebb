#!/usr/bin/env bash
# Headless Chromium and its WebDriver server, from Debian's `chromium` and `chromium-driver`
# packages, for the web UI's browser tests. Idempotent.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "scripts/setup-browser.sh: run as root to install chromium and chromium-driver, or install them yourself" >&2; exit 2; }
echo "==> installing chromium and chromium-driver" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
