#!/usr/bin/env bash
# Measures the cluster bus: Redis PUBLISH commands per broadcast and the publish-to-
# receipt lag seen by the other node, on two release nodes and a private redis-server.
#   scripts/measure_bus.sh [SUBSCRIBERS] [EVENTS_PER_SEC] [SECONDS]
# Loopback only; everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUBS=${1:-1000}; RATE=${2:-50}; SECS=${3:-20}
BIN=${RTC_BIN:-target/release/rtc}
[ -x "$BIN" ] || cargo build --release --quiet
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(free_port); PA=$(free_port); PB=$(free_port)
TOKEN=measure-bus-token-0123456789
tmp=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; redis-cli -p "$RP" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$tmp"; }
pids=(); trap cleanup EXIT
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --logfile "$tmp/redis.log"
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.1; done
for n in a:$PA b:$PB; do
  id=${n%%:*}; port=${n##*:}
  "$BIN" serve --host 127.0.0.1 --port "$port" --redis-url "redis://127.0.0.1:$RP" --cluster bus \
    --node-id "node-$id" --admin-token "$TOKEN" >"$tmp/$id.log" 2>&1 &
  pids+=($!)
done
stats() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/admin/stats"; }
for _ in $(seq 1 100); do
  [ "$(stats "$PA" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("live_nodes"))' 2>/dev/null)" = 2 ] && break
  sleep 0.1
done
redis-cli -p "$RP" config resetstat >/dev/null
echo "fanout on node-b: $SUBS subscribers, $RATE events/s for ${SECS}s; node-a receives every event over the bus"
"$BIN" bench --url "ws://127.0.0.1:$PB" --hold "${SECS}s" --duration "$((SECS + 60))s" --json --save "$tmp/fanout.json" \
  fanout -s "$SUBS" -b "$RATE" >/dev/null
# Sample node-a's bus lag while publishing again for a few seconds.
"$BIN" bench --url "ws://127.0.0.1:$PB" --hold 5s --duration 60s --json fanout -s 10 -b "$RATE" >/dev/null &
bp=$!
sleep 3
stats "$PA" > "$tmp/a.json"
wait $bp || true
published=$(python3 -c "import json; r=json.load(open('$tmp/fanout.json')); print(r.get('publish',{}).get('sent') or r.get('publish',{}).get('published') or '')" 2>/dev/null || true)
publish_calls=$(redis-cli -p "$RP" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_publish:calls=\([0-9]*\).*/\1/p')
received=$(python3 -c "import json; print(json.load(open('$tmp/a.json'))['pubsub']['received'])")
python3 - "$tmp/a.json" <<PY
import json, sys
a = json.load(open(sys.argv[1]))
p = a["pubsub"]
print(f"node-a bus: received {p['received']} messages, lag mean {p['lag_ms']:.2f} ms, max {p['lag_max_ms']:.2f} ms (last second), backlog {p['backlog']}, skipped {p['skipped']}")
PY
echo "Redis PUBLISH calls: $publish_calls; messages node-a received from node-b: $received"
echo "(one PUBLISH per broadcast: the calls equal the events published, whatever the subscriber count)"
