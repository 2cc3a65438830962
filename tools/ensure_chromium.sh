#!/usr/bin/env bash
# Headless Chromium + ChromeDriver for the browser tests (tests/web): Debian's `chromium` and
# `chromium-driver`, installed with apt-get when absent. Idempotent and quiet when present.
# Test-only: the server never needs a browser. Skipped (with a note) without root or apt-get.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup] no apt-get: install Chromium and ChromeDriver yourself for the browser tests" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "[setup] not root: run 'apt-get install chromium chromium-driver' for the browser tests" >&2
    exit 0
  fi
fi
printf '\033[1m==> [setup] %s\033[0m\n' "Chromium + ChromeDriver for browser tests (apt-get, ~1 min)" >&2
export DEBIAN_FRONTEND=noninteractive
# A stale package index gives 404s for superseded security builds: refresh once, then install.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
command -v chromium >/dev/null && command -v chromedriver >/dev/null
