#!/usr/bin/env bash
# benches/drain.sh: issue 4's measurement (README "Deploys without reconnect storms"):
# the peak reconnect rate the survivors see when a node holding N sockets drains paced
# (rtc serve's defaults: 5 s pre-drain delay, hints spread over 15 s) against all at once
# (--pre-drain-delay 0 --drain-window 0: every socket gets 4200 in the first 100 ms tick,
# what Soketi and Sockudo do on SIGTERM).
#
# For each measurement it starts a redis-server on a free port and three release nodes of
# one cluster (A, B, C), opens N sockets on A with `rtc bench drain` (each joined to signed
# private channels), drains A (SIGTERM, as an orchestrator does) and lets the sockets
# reconnect to B and C as pusher-js would (4200 → at once, anything else → 1 s, no jitter,
# round-robin as a load balancer would). The servers and redis are pinned to one core and
# the generator to another when there are two. Every command is printed; the JSON reports
# and server logs stay in $OUT; the summary prints the peak reconnect rate per survivor of
# each measurement: the number that shows the storm is gone.
#
# Usage: benches/drain.sh [MEASUREMENT...]
#   MEASUREMENT: paced at-once kill (default: paced at-once)
#     paced    node A with the default drain settings (or PRE_DELAY / WINDOW)
#     at-once  node A with --pre-drain-delay 0 --drain-window 0
#     kill     SIGKILL on node A (no hint at all: pusher-js waits 1 s, then all come back)
# Environment:
#   SOCKETS=10000     sockets on node A (one generator process: ≤ ~18,000 under a 20,000
#                     open-file limit)
#   PRE_DELAY=5 WINDOW=15   the paced drain (rtc serve's defaults)
#   DRAIN_WITH=signal trigger: signal (SIGTERM) or admin (POST /admin/drain with the token)
#   CHANNELS=2        private channels per socket (each reconnect signs them again)
#   RATE=2000         ramp onto node A, sockets per second
#   ADMISSION=N       every node's server.max_new_connections_per_sec (default: rtc serve's,
#                     5000; 0 = off). Upgrades past it get HTTP 503 and count as failed
#                     reconnect attempts: pusher-js then retries on its 15 s attempt timer
#   SERVER_CPU=0      core for redis and the three nodes; GEN_CPU=1 core for the generator
#   OUT=target/bench-results/drain-<date>   where the JSON reports and logs go
#   NO_BUILD=1        use the existing binary (RTC=path picks another one)
#   QUICK=1           small sizes (1,000 sockets, 3 s window) to check the script itself
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RTC=${RTC:-$ROOT/target/release/rtc}
OUT=${OUT:-$ROOT/target/bench-results/drain-$(date +%Y%m%d-%H%M%S)}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
DRAIN_WITH=${DRAIN_WITH:-signal}
CHANNELS=${CHANNELS:-2}
RATE=${RATE:-2000}
if [[ -n ${QUICK:-} ]]; then
  SOCKETS=${SOCKETS:-1000} PRE_DELAY=${PRE_DELAY:-1} WINDOW=${WINDOW:-3}
else
  SOCKETS=${SOCKETS:-10000} PRE_DELAY=${PRE_DELAY:-5} WINDOW=${WINDOW:-15}
fi
APP_ID=100001 APP_KEY=rtc-dev-key APP_SECRET=rtc-dev-secret
TOKEN=bench-drain-admin-token-$RANDOM$RANDOM
CLUSTER=bench-drain
MEASUREMENTS=("$@")
[[ ${#MEASUREMENTS[@]} -gt 0 ]] || MEASUREMENTS=(paced at-once)
case $DRAIN_WITH in signal | admin) ;; *) echo "error: DRAIN_WITH is signal or admin" >&2; exit 2 ;; esac

mkdir -p "$OUT"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

SERVER_PIN=() GEN_PIN=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
  SERVER_PIN=(taskset -c "$SERVER_CPU") GEN_PIN=(taskset -c "$GEN_CPU")
else
  echo "warning: no taskset or a single core: the servers and the generator share the CPU" >&2
fi

if [[ -z ${NO_BUILD:-} ]]; then
  show cargo build --release
  (cd "$ROOT" && cargo build --release)
fi
[[ -x $RTC ]] || { echo "error: $RTC is missing; run cargo build --release" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "error: redis-server is not installed" >&2; exit 2; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), open-file limit $(ulimit -Hn)" >&2
echo "results: $OUT" >&2

# Servers run disowned (no job messages when the bench kills node A) and are killed
# outright at the end: SIGTERM would start a paced drain on each.
PIDS=()
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  PIDS=()
}
trap stop_all EXIT

cat >"$OUT/rtc.toml" <<EOF
[server]
host = "127.0.0.1"
log_format = "text"
${ADMISSION:+max_new_connections_per_sec = $ADMISSION}

[[apps]]
id = "$APP_ID"
key = "$APP_KEY"
secret = "$APP_SECRET"
EOF

# start_cluster_redis NAME: a throwaway redis-server for the cluster's pub/sub.
start_cluster_redis() {
  start_redis "$OUT/$1.redis.log"
  PIDS+=("$REDIS_PID")
  disown "$REDIS_PID"
}

# start_node NAME ID EXTRA-FLAGS...: one cluster node; sets NODE_PID and NODE_PORT.
start_node() {
  local name=$1 id=$2
  shift 2
  local log="$OUT/$name.$id.log"
  local cmd=("${SERVER_PIN[@]}" "$RTC" serve --config "$OUT/rtc.toml" --port 0
    --redis-url "redis://127.0.0.1:$REDIS_PORT" --cluster "$CLUSTER" --node-id "$id" "$@")
  show "RTC_ADMIN_TOKEN=... ${cmd[*]} > $log"
  RTC_ADMIN_TOKEN=$TOKEN "${cmd[@]}" >"$log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  disown "$NODE_PID"
  if wait_rtc "$log" "$NODE_PID"; then
    NODE_PORT=$RTC_PORT
    wait_ready "$NODE_PORT" "$NODE_PID" && return 0
  fi
  echo "error: node $id did not start; see $log" >&2
  exit 1
}

# measure NAME NODE-A-FLAGS...: a fresh cluster, N sockets on A, drain A, reconnect to B and C.
measure() {
  local name=$1
  shift
  log "$name: $SOCKETS sockets on node A, survivors B and C"
  start_cluster_redis "$name"
  start_node "$name" node-b
  local b=$NODE_PORT
  start_node "$name" node-c
  local c=$NODE_PORT
  start_node "$name" node-a "$@"
  local a=$NODE_PORT a_pid=$NODE_PID
  local with=$DRAIN_WITH trigger=()
  [[ $name == kill ]] && with=kill
  [[ $with == admin ]] && trigger=(--admin-token "$TOKEN")
  # Ramp, then pre-delay + window, then a generous tail for the last reconnects.
  local duration=$((SOCKETS / RATE + PRE_DELAY + WINDOW + 40))
  local cmd=("${GEN_PIN[@]}" "$RTC" bench drain -n "$SOCKETS" --rate "$RATE" -c "$CHANNELS"
    --url "ws://127.0.0.1:$a" --survivor "ws://127.0.0.1:$b" --survivor "ws://127.0.0.1:$c"
    --drain-with "$with" --server-pid "$a_pid" --duration "${duration}s" --save "$OUT/$name.json")
  show "RTC_BENCH_KEY=$APP_KEY RTC_BENCH_SECRET=... RTC_ADMIN_TOKEN=... ${cmd[*]}"
  RTC_BENCH_APP_ID=$APP_ID RTC_BENCH_KEY=$APP_KEY RTC_BENCH_SECRET=$APP_SECRET RTC_ADMIN_TOKEN=$TOKEN \
    "${cmd[@]}" "${trigger[@]}" || echo "warning: $name exited with $?" >&2
  stop_all
}

for m in "${MEASUREMENTS[@]}"; do
  case $m in
    paced) measure paced --pre-drain-delay "$PRE_DELAY" --drain-window "$WINDOW" ;;
    at-once) measure at-once --pre-drain-delay 0 --drain-window 0 ;;
    kill) measure kill ;;
    *) echo "error: unknown measurement '$m' (paced at-once kill)" >&2; exit 2 ;;
  esac
done

log "summary ($OUT)"
python3 - "$OUT" <<'EOF'
import json, pathlib, sys

out = pathlib.Path(sys.argv[1])
rows = {}
for name in ("paced", "at-once", "kill"):
    p = out / f"{name}.json"
    if not p.exists():
        continue
    d = json.loads(p.read_text())["drain"]
    c = d["closes"]
    rows[name] = d
    per = "  ".join(f"survivor {i + 1} {s['peak']['per_second']}/s (100 ms peak {s['peak']['bucket_per_second']}/s)"
                    for i, s in enumerate(d["survivors"]))
    back = f"all back at {d['all_back_s']:.2f} s" if d.get("all_back_s") is not None else "NOT all back"
    spread = "-" if c["first_s"] is None else f"{c['first_s']:.2f}–{c['last_s']:.2f} s"
    print(f"{name:<8} {d['sockets_on_a']} sockets; closes {spread}; peak reconnects {per}; "
          f"cluster {d['cluster']['peak']['per_second']}/s; auth {d['auth_requests']['peak']['per_second']}/s; "
          f"{back}; lost {d['lost']['total']}")
if "paced" in rows and "at-once" in rows:
    worst = lambda d: max((s["peak"]["per_second"] for s in d["survivors"]), default=0)
    p, a = worst(rows["paced"]), worst(rows["at-once"])
    if p:
        print(f"peak reconnects per survivor (busiest second): paced {p}/s vs all at once {a}/s "
              f"({a / p:.1f}× lower when paced)")
EOF
