# Shared paths for the set-up and run scripts (sourced, not executed).
export CHATGATE_CACHE=${CHATGATE_CACHE:-$HOME/.cache/chatgate}
export CHATGATE_PROFILE=${CHATGATE_PROFILE:-cpu}
PYTHON_BIN=${PYTHON_BIN:-$(command -v python3.11 || command -v python3)}
VENV=${CHATGATE_VENV:-$CHATGATE_CACHE/venv-$CHATGATE_PROFILE-py311}
export PATH="$VENV/bin:$PATH"
# Ray workers import the project from the checkout.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Local runs: Ray 2.60 turns token auth on by default, which makes `serve status` answer 401.
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
export RAY_USAGE_STATS_ENABLED=0
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# C.UTF-8: onnxruntime's string normaliser refuses a locale the machine lacks.
export LC_ALL=${LC_ALL:-C.UTF-8} LANG=${LANG:-C.UTF-8}
mkdir -p "$CHATGATE_CACHE"
