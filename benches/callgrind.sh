#!/usr/bin/env bash
# benches/callgrind.sh: user-space instructions per delivery of one rtc binary, counted by
# valgrind's callgrind, so before/after comparisons do not depend on how busy the shared
# machine is (CPU-time figures do; this VM has no hardware counters for `perf stat`).
#
# Starts the node under callgrind, connects SUBS subscribers with `rtc bench fanout`,
# zeroes the counters once they are all subscribed, lets EVENTS_PER_SEC broadcasts run
# for WINDOW seconds, dumps, and divides the instructions executed (Ir, rtc's process,
# every thread, user space only: the kernel's write() is not in it) by the frames the
# node sent in the window (`rtc_frames_out_total`).
#
# Usage: benches/callgrind.sh [RTC_BINARY]   (default target/release/rtc)
# Environment: SUBS=1000 EVENTS_PER_SEC=5 WINDOW=10 OUT=target/bench-results/callgrind-<date>
#   MODE=ping: SUBS idle sockets each sending pusher:ping every 5 s instead of a fan-out;
#   the figure is instructions per answered ping (every frame the node sends is a pong)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RTC=${1:-$ROOT/target/release/rtc}
SUBS=${SUBS:-1000} EVENTS_PER_SEC=${EVENTS_PER_SEC:-5} WINDOW=${WINDOW:-10} MODE=${MODE:-fanout}
OUT=${OUT:-$ROOT/target/bench-results/callgrind-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
SERVER_PIN=()
command -v valgrind >/dev/null || { echo "error: valgrind is not installed" >&2; exit 2; }

TOKEN=callgrind-bench-token
cat >"$OUT/rtc.toml" <<EOF
[server]
host = "127.0.0.1"
log_format = "text"
admin_token = "$TOKEN"

[[apps]]
id = "100001"
key = "rtc-dev-key"
secret = "rtc-dev-secret"
activity_timeout = 120
EOF
show "valgrind --tool=callgrind --callgrind-out-file=$OUT/callgrind.out $RTC serve --config $OUT/rtc.toml --port 0"
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
  "$RTC" serve --config "$OUT/rtc.toml" --port 0 >"$OUT/server.log" 2>&1 &
PID=$!
BENCH=''
cleanup() {
  [[ -n $BENCH ]] && kill "$BENCH" 2>/dev/null || true
  kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 600); do
  PORT=$(sed -n 's|^rtc listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$OUT/server.log" | head -n1)
  [[ -n $PORT ]] && break
  sleep 0.1
done
[[ -n ${PORT:-} ]] || { echo "error: rtc did not start under valgrind; see $OUT/server.log" >&2; exit 1; }

frames_out() {
  curl -fsS -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" |
    sed -n 's/^rtc_frames_out_total \([0-9.e+]*\)$/\1/p'
}
connections() {
  curl -fsS -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" |
    sed -n 's/^rtc_connections{[^}]*} \([0-9.e+]*\)$/\1/p'
}

HOLD=$((WINDOW + 30))
if [[ $MODE == ping ]]; then
  # Idle sockets that each send pusher:ping every 5 s: every frame out is a pong.
  SCENARIO=(connections -n "$SUBS" --rate 200 --activity-timeout 5s)
  UNIT="answered ping"
else
  SCENARIO=(fanout -s "$SUBS" -b "$EVENTS_PER_SEC" --rate 200)
  UNIT="delivery"
fi
show "$RTC bench --url ws://127.0.0.1:$PORT ${SCENARIO[*]} --hold ${HOLD}s"
"$RTC" bench --url "ws://127.0.0.1:$PORT" "${SCENARIO[@]}" \
  --hold "${HOLD}s" --duration "$((HOLD + 120))s" >"$OUT/bench.txt" 2>&1 &
BENCH=$!
for _ in $(seq 1200); do
  c=$(connections || true)
  [[ ${c%.*} -ge $SUBS ]] 2>/dev/null && break
  sleep 0.1
done
sleep 5 # subscriptions settle, publishing starts
f0=$(frames_out)
callgrind_control -z "$PID" >/dev/null
sleep "$WINDOW"
callgrind_control -d "$PID" >/dev/null
f1=$(frames_out)
sleep 1
DUMP=$(ls -t "$OUT"/callgrind.out* | head -n1)
IR=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$DUMP" | head -n1)
[[ -n $IR ]] || IR=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$DUMP" | head -n1)
python3 - "$IR" "$f0" "$f1" "$RTC" "$UNIT" <<'EOF'
import sys
ir, f0, f1, rtc, unit = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
frames = f1 - f0
print(f"callgrind {rtc}: {ir:,} instructions over {frames:,.0f} frames sent = {ir / frames:,.0f} instructions per {unit}"
      " (user space, all threads, bookkeeping included)")
EOF
