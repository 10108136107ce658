#!/usr/bin/env bash
# benches/soak.sh: a soak of a 2-node cluster under connection churn and broadcasts,
# recording each node's RSS, open files and threads, and the delivery figures, once a
# round, to show whether anything grows. Not part of CI.
#
#   MINUTES=30 benches/soak.sh        # default 30 minutes
#
# Each round (~22 s): 2,000 sockets connect to node A and hold 20 s while 500 more
# sockets on node A receive 20 events/s published through A's API (every event is also
# published on the cluster bus, which node B receives), then all close. After each round
# it samples both nodes' RSS, open files and threads and the round's loss and p99.
# Loopback only; everything started is stopped at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=benches/lib.sh
source benches/lib.sh
SERVER_PIN=()
MINUTES=${MINUTES:-30}
BIN=${RTC_BIN:-target/release/rtc}
[ -x "$BIN" ] || cargo build --release --quiet
PA=$(free_port); PB=$(free_port)
TOKEN=soak-admin-token-0123456789
OUT=${OUT:-target/bench-results/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n ${REDIS_PID:-} ]]; then kill "$REDIS_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
start_redis "$OUT/redis.log"
RP=$REDIS_PORT
for n in a:$PA b:$PB; do
  id=${n%%:*}; port=${n##*:}
  "$BIN" serve --host 127.0.0.1 --port "$port" --redis-url "redis://127.0.0.1:$RP" --cluster soak \
    --node-id "node-$id" --admin-token "$TOKEN" >"$OUT/$id.log" 2>&1 &
  pids+=($!)
done
PIDA=${pids[0]}; PIDB=${pids[1]}
wait_ready "$PA" "$PIDA" || { echo "error: node a did not start; see $OUT/a.log" >&2; exit 1; }
wait_ready "$PB" "$PIDB" || { echo "error: node b did not start; see $OUT/b.log" >&2; exit 1; }
sample() { # node-pid label
  local pid=$1
  printf '%s rss_kib=%s fds=%s threads=%s' "$2" \
    "$(awk '/VmRSS/{print $2}' /proc/$pid/status)" "$(ls /proc/$pid/fd | wc -l)" "$(awk '/Threads/{print $2}' /proc/$pid/status)"
}
end=$(( $(date +%s) + MINUTES * 60 ))
round=0
echo "soak: ${MINUTES} min, results in $OUT" | tee "$OUT/summary.txt"
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  "$BIN" bench --url "ws://127.0.0.1:$PA" --hold 20s --duration 60s --json --save "$OUT/churn-$round.json" \
    connections -n 2000 --rate 1000 >/dev/null 2>&1 &
  churn=$!
  "$BIN" bench --url "ws://127.0.0.1:$PA" --hold 20s --duration 60s --json --save "$OUT/fanout-$round.json" \
    fanout -s 500 -b 20 >/dev/null 2>&1 || true
  wait "$churn" || true
  lost=$(python3 -c "import json; d=json.load(open('$OUT/fanout-$round.json'))['deliveries']; print(f\"{d['lost']},{d['latency'].get('p99_ms', '?')}\")" 2>/dev/null || echo "?,?")
  line="round $round $(date +%H:%M:%S) $(sample "$PIDA" A) $(sample "$PIDB" B) fanout_lost,p99_ms=$lost"
  echo "$line" | tee -a "$OUT/summary.txt"
done
