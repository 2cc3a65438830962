#!/usr/bin/env bash
# Runs the test suite inside the project environment (set-up must have run: `make test` does it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/tools/env.sh"
cd "$ROOT"
exec python -m pytest -p no:cacheprovider "$@"
