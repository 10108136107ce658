#!/usr/bin/env bash
# benches/run.sh: rerun every `rtc bench` measurement of issue 6 (README "Performance").
#
# Each measurement starts its own release server on a free loopback port (a fresh process,
# so RSS per socket starts from a clean baseline), pins the server and the generator to
# different cores with taskset when there are two, prints every command it runs, shows
# the human report and keeps the JSON report in $OUT. Optionally does the same against
# Sockudo and prints rtc/Sockudo ratios.
#
# Usage: benches/run.sh [MEASUREMENT...]
#   MEASUREMENT: idle fanout-1k fanout-5k fanout-10k presence mixed drain (default: all of them)
#     or floor-1k floor-5k floor-10k idle-ping-10k ping-floor-10k channels-20x250 side-by-side
#   drain runs benches/drain.sh (issue 4: peak reconnect rate per survivor, paced drain vs all
#   at once, on a 3-node cluster) with its reports in $OUT/drain
#   floor-N runs benches/floor.c (issue 14): the kernel's floor, one pre-framed 64-byte
#   WebSocket frame written to each of N loopback sockets with one write() per socket, 10
#   rounds a second, sender on SERVER_CPU and reader on GEN_CPU; figure: deliveries per
#   sender CPU-second
#   idle-ping-10k: 10,000 sockets pinging every 5 s; CPU per answered ping
#   ping-floor-10k runs benches/ping_floor.c: the kernel's floor for the same 2,000 pings/s,
#   a minimal epoll answerer (one read, one pre-framed pong write per ping) on SERVER_CPU
#   and the pingers on GEN_CPU; figure: answerer CPU per answered ping
#   channels-20x250: 20 private channels x 250 subscribers, 200 events/s in all (delivery
#   p99 run to run; rtc, then Sockudo when available)
#   side-by-side: floor-N, then rtc (then Sockudo) on fanout-N for N = 1k 5k 10k in one run,
#   and a table of each figure and its fraction of the floor
# Environment:
#   SOCKETS=19000     sockets for idle and mixed (this machine's hard file limit is 20,000)
#   SERVER_CPU=0      core for the server; GEN_CPU=1 core for the generator
#   OUT=target/bench-results/<date>   where the JSON reports and server logs go
#   NO_BUILD=1        use the existing binary (RTC=path picks another one)
#   GEN=path          the rtc binary that runs `rtc bench` (default: $RTC), e.g. a newer
#                     generator against an older server
#   SOCKUDO=/path/to/sockudo   also run the comparable measurements against Sockudo
#                     (default: `sockudo` on PATH, if any). Install it with:
#                     cargo install sockudo --locked --no-default-features --features local
#                     (needs Debian's protobuf-compiler; ~10 min)
#   DRAIN_SOCKETS=10000  sockets on the drained node (benches/drain.sh's SOCKETS)
#   QUICK=1           small sizes (2,000 sockets, short holds) to check the script itself
#   FLOOR_FRAME=64    bytes of the floor's frame (2..127)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RTC=${RTC:-$ROOT/target/release/rtc}
GEN=${GEN:-$RTC}
OUT=${OUT:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}
SOCKETS=${SOCKETS:-19000}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
SOCKUDO=${SOCKUDO:-$(command -v sockudo || true)}
APP_ID=100001 APP_KEY=rtc-dev-key APP_SECRET=rtc-dev-secret
if [[ -n ${QUICK:-} ]]; then
  SOCKETS=2000 LONG=10s MEDIUM=5s BIG_FANOUT=2000
else
  LONG=90s MEDIUM=30s BIG_FANOUT=10000
fi
MEASUREMENTS=("$@")
[[ ${#MEASUREMENTS[@]} -gt 0 ]] || MEASUREMENTS=(idle fanout-1k fanout-5k fanout-10k presence mixed drain)
# side-by-side is floor + rtc (+ Sockudo) for each fan-out size.
EXPANDED=()
for m in "${MEASUREMENTS[@]}"; do
  if [[ $m == side-by-side ]]; then
    EXPANDED+=(floor-1k fanout-1k floor-5k fanout-5k floor-10k fanout-10k)
  else
    EXPANDED+=("$m")
  fi
done
MEASUREMENTS=("${EXPANDED[@]}")

mkdir -p "$OUT"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

# Pinning: server and generator on separate cores when the machine has two or more.
SERVER_PIN=() GEN_PIN=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
  SERVER_PIN=(taskset -c "$SERVER_CPU") GEN_PIN=(taskset -c "$GEN_CPU")
else
  echo "warning: no taskset or a single core: server and generator share the CPU" >&2
fi

if [[ -z ${NO_BUILD:-} ]]; then
  show cargo build --release
  (cd "$ROOT" && cargo build --release)
fi
[[ -x $RTC ]] || { echo "error: $RTC is missing; run cargo build --release" >&2; exit 2; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), open-file limit $(ulimit -Hn)" >&2
echo "results: $OUT" >&2
[[ -n $SOCKUDO ]] || echo "sockudo: no SOCKUDO binary given or on PATH; its measurements are skipped" >&2

SERVER_PID='' PORT=''
# rtc nodes get this admin token, and the generator reads their own fan-out figures with it.
BENCH_ADMIN_TOKEN=bench-admin-token STATS_ARGS=()
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=''
  fi
}
trap stop_server EXIT

# start_rtc NAME ACTIVITY_TIMEOUT: a fresh rtc node with limits lifted for the bench.
start_rtc() {
  local name=$1 activity=$2 cfg="$OUT/$1.rtc.toml"
  cat >"$cfg" <<EOF
[server]
host = "127.0.0.1"
log_format = "text"
admin_token = "$BENCH_ADMIN_TOKEN"

[[apps]]
id = "$APP_ID"
key = "$APP_KEY"
secret = "$APP_SECRET"
activity_timeout = $activity
max_presence_members = 5000
EOF
  show "${SERVER_PIN[*]} $RTC serve --config $cfg --port 0 > $OUT/$name.server.log"
  "${SERVER_PIN[@]}" "$RTC" serve --config "$cfg" --port 0 >"$OUT/$name.server.log" 2>&1 &
  SERVER_PID=$! STATS_ARGS=(--stats-token "$BENCH_ADMIN_TOKEN")
  if wait_rtc "$OUT/$name.server.log" "$SERVER_PID"; then
    PORT=$RTC_PORT
    return 0
  fi
  echo "error: rtc did not start; see $OUT/$name.server.log" >&2
  exit 1
}

# start_sockudo NAME: a Sockudo node (local adapter) with its default-app limits and its
# per-IP rate limiter lifted (the generator connects from one address: with the limiter on,
# Sockudo answers all but the first few upgrades with 429).
start_sockudo() {
  local name=$1
  PORT=$(free_port)
  show "PORT=$PORT SOCKUDO_DEFAULT_APP_*=... ${SERVER_PIN[*]} $SOCKUDO > $OUT/$name.server.log"
  env HOST=127.0.0.1 PORT="$PORT" METRICS_ENABLED=false \
    ADAPTER_DRIVER=local CACHE_DRIVER=memory QUEUE_DRIVER=none RATE_LIMITER_ENABLED=false \
    SOCKUDO_DEFAULT_APP_ID=$APP_ID SOCKUDO_DEFAULT_APP_KEY=$APP_KEY SOCKUDO_DEFAULT_APP_SECRET=$APP_SECRET \
    SOCKUDO_DEFAULT_APP_ENABLED=true \
    SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=1000000 SOCKUDO_MAX_CONNECTIONS=1000000 \
    SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=1000000 \
    SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND=1000000 \
    SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=1000000 \
    SOCKUDO_DEFAULT_APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL=5000 \
    "${SERVER_PIN[@]}" "$SOCKUDO" >"$OUT/$name.server.log" 2>&1 &
  SERVER_PID=$! STATS_ARGS=()
  wait_tcp "$PORT" "$SERVER_PID" 300 && return 0
  echo "error: sockudo did not start; see $OUT/$name.server.log" >&2
  exit 1
}

# bench NAME SCENARIO-ARGS...: run the generator against the current server.
bench() {
  local name=$1
  shift
  local cmd=("${GEN_PIN[@]}" "$GEN" bench --url "ws://127.0.0.1:$PORT" --server-pid "$SERVER_PID"
    --save "$OUT/$name.json" "${STATS_ARGS[@]}" "$@")
  show "${cmd[*]}"
  "${cmd[@]}" || echo "warning: $name exited with $?" >&2
}

# measure NAME ACTIVITY_TIMEOUT SCENARIO-ARGS...: rtc, then Sockudo when available.
measure() {
  local name=$1 activity=$2
  shift 2
  log "$name (rtc)"
  start_rtc "$name" "$activity"
  bench "$name.rtc" "$@"
  stop_server
  if [[ -n $SOCKUDO ]]; then
    log "$name (sockudo)"
    start_sockudo "$name"
    bench "$name.sockudo" "$@"
    stop_server
  fi
}

# c_floor PROGRAM NAME ARGS...: a kernel-floor program (benches/PROGRAM.c, built here with
# cc -O2 on first use) with ARGS; its one line of figures goes to $OUT/NAME.floor.txt.
c_floor() {
  local prog=$1 name=$2 bin="$OUT/$1"
  shift 2
  if [[ ! -x $bin ]]; then
    show "cc -O2 -o $bin benches/$prog.c"
    cc -O2 -o "$bin" "$ROOT/benches/$prog.c"
  fi
  log "$name (kernel floor, benches/$prog.c)"
  show "$bin $* > $OUT/$name.floor.txt"
  "$bin" "$@" | tee "$OUT/$name.floor.txt" || echo "warning: $name exited with $? (something lost)" >&2
}

# floor NAME SOCKETS: fan-out's floor, 10 rounds a second (benches/floor.c).
floor() {
  c_floor floor "$1" "$2" "${MEDIUM%s}" 10 "${FLOOR_FRAME:-64}" "$SERVER_CPU" "$GEN_CPU"
}

# ping_floor NAME SOCKETS: the idle path's floor, each socket pinging every 5 s
# (benches/ping_floor.c).
ping_floor() {
  c_floor ping_floor "$1" "$2" "${MEDIUM%s}" 5 "$SERVER_CPU" "$GEN_CPU"
}

for m in "${MEASUREMENTS[@]}"; do
  case $m in
    # Issue 14: 10,000 idle sockets each sending pusher:ping every 5 s (2,000 pings/s):
    # the summary prints the server's CPU per answered ping.
    idle-ping-10k) measure idle-ping-10k 120 connections -n 10000 --rate 2000 --activity-timeout 5s \
      --hold "$MEDIUM" --duration 120s ;;
    ping-floor-10k) ping_floor ping-floor-10k "$BIG_FANOUT" ;;
    floor-1k) floor floor-1k 1000 ;;
    floor-5k) floor floor-5k 5000 ;;
    floor-10k) floor floor-10k "$BIG_FANOUT" ;;
    # Issue 14: 5,000 sockets on 20 private channels of 250, 200 events/s in all (10 per
    # channel per second, 50,000 deliveries/s); no presence. Its delivery p99 from run to
    # run is the figure.
    channels-20x250) measure channels-20x250 120 mixed -n 5000 -g 250 -e 200 -m 0 -j 0 --rate 2000 \
      --hold "$MEDIUM" --duration 120s ;;
    # Targets 1 and 4: RSS per idle socket at $SOCKETS sockets, and idle CPU with every
    # socket pinging every 30 s (the server advertises activity_timeout 30).
    idle) measure idle 30 connections -n "$SOCKETS" --rate 2000 --activity-timeout 30s \
      --hold "$LONG" --duration 240s ;;
    # Sockudo's published comparison points: time to the last of 1k / 5k subscribers.
    fanout-1k) measure fanout-1k 120 fanout -s 1000 -b 10 --rate 2000 --hold "$MEDIUM" --duration 120s ;;
    fanout-5k) measure fanout-5k 120 fanout -s 5000 -b 10 --rate 2000 --hold "$MEDIUM" --duration 120s ;;
    # Target 2: one event to 10,000 subscribers at 10 events/s (100,000 deliveries/s).
    fanout-10k) measure fanout-10k 120 fanout -s "$BIG_FANOUT" -b 10 --rate 2000 --hold "$MEDIUM" \
      --duration 180s ;;
    # The presence cost on its own: 1,000 members, 15 joins + 15 leaves per second.
    presence) measure presence 120 presence -m 1000 -j 15 --rate 1000 --hold "$MEDIUM" --duration 120s ;;
    # Target 3: the production mix.
    mixed) measure mixed 120 mixed -n "$SOCKETS" -g 250 -e 200 -m 1000 -j 15 --rate 2000 \
      --hold "$LONG" --duration 300s ;;
    # Issue 4: a node with DRAIN_SOCKETS sockets drained paced, then all at once (its own
    # script: redis and three nodes per measurement).
    drain)
      log "drain (benches/drain.sh)"
      show "OUT=$OUT/drain benches/drain.sh"
      env -u SOCKETS NO_BUILD=1 RTC="$RTC" OUT="$OUT/drain" SERVER_CPU="$SERVER_CPU" GEN_CPU="$GEN_CPU" \
        ${DRAIN_SOCKETS:+SOCKETS="$DRAIN_SOCKETS"} "$ROOT/benches/drain.sh" ||
        echo "warning: drain exited with $?" >&2 ;;
    *) echo "error: unknown measurement '$m' (idle fanout-1k fanout-5k fanout-10k presence mixed drain" \
      "idle-ping-10k ping-floor-10k floor-1k floor-5k floor-10k channels-20x250 side-by-side)" >&2
      exit 2 ;;
  esac
done

# One line per report, and rtc/Sockudo ratios where both ran.
log "summary ($OUT)"
python3 - "$OUT" "${SOCKUDO:+1}" <<'EOF'
import json, pathlib, sys

out = pathlib.Path(sys.argv[1])
SOCKUDO_GIVEN = len(sys.argv) > 2 and sys.argv[2] == "1"
reports = {p.name[:-5]: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}

def parse_secs(v):
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        for unit, scale in (("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
            if v.endswith(unit) and v[: -len(unit)].replace(".", "", 1).isdigit():
                return float(v[: -len(unit)]) * scale
    return None

def figures(r):
    s, d, c = r.get("server") or {}, r.get("deliveries") or {}, r["connections"]
    return {
        "ready": c["ready"],
        "rss_kib_per_socket": s.get("rss_per_socket_kib"),
        "server_cpu_cores": s.get("cpu_cores"),
        "frames_per_cpu_s": s.get("frames_per_cpu_second"),
        "delivery_p50_ms": d.get("latency", {}).get("p50_ms"),
        "delivery_p99_ms": d.get("latency", {}).get("p99_ms"),
        "to_last_median_ms": d.get("time_to_last", {}).get("p50_ms"),
        "lost": d.get("lost"),
        "dup": d.get("duplicates"),
        "reordered": d.get("reordered"),
        "overlap_reordered": d.get("reordered_overlapping"),
        "presence_p99_ms": (r.get("presence") or {}).get("latency", {}).get("p99_ms"),
        # The node's own fan-out time (arrival to the last subscriber's write), rtc only.
        "node_fanout_p99_le_ms": (r.get("server_fanout") or {}).get("p99_le_ms"),
        "bottleneck": r["verdict"]["bottleneck"],
        # Server CPU per answered ping: its cores over the ping rate (every socket pings
        # once per --activity-timeout).
        "us_per_ping": s["cpu_cores"] * 1e6 / (c["ready"] / activity)
        if r["scenario"] == "connections" and s.get("cpu_cores") and c.get("pings_sent")
        and (activity := parse_secs(r["parameters"].get("activity_timeout_s"))) else None,
    }

def fmt(v):
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

rows = {name: figures(r) for name, r in reports.items()}
for name, f in rows.items():
    print(f"{name:<22}" + "  ".join(f"{k}={fmt(v)}" for k, v in f.items()))
for name in sorted({n.rsplit(".", 1)[0] for n in rows}):
    a, b = rows.get(name + ".rtc"), rows.get(name + ".sockudo")
    if not (a and b):
        continue
    parts = []
    if a["rss_kib_per_socket"] and b["rss_kib_per_socket"]:
        parts.append(f"memory per socket rtc/sockudo = {a['rss_kib_per_socket'] / b['rss_kib_per_socket']:.3f}")
    if a["frames_per_cpu_s"] and b["frames_per_cpu_s"]:
        parts.append(f"frames per CPU-second rtc/sockudo = {a['frames_per_cpu_s'] / b['frames_per_cpu_s']:.2f}")
    if parts:
        print(f"{name:<22}" + "; ".join(parts))

# The floor beside each fan-out size: deliveries per sender CPU-second, and each server's
# frames per CPU-second as a fraction of it.
floors = {}
for p in sorted(out.glob("floor-*.floor.txt")):
    line = p.read_text().strip().splitlines()[-1:] or [""]
    kv = dict(x.split("=", 1) for x in line[0].split() if "=" in x)
    if "deliveries_per_cpu_second" in kv:
        floors[p.name.split(".")[0].replace("floor-", "fanout-")] = (float(kv["deliveries_per_cpu_second"]), kv.get("lost"))
if floors:
    print()
    print(f"{'scenario':<12}{'floor':>12}{'rtc':>12}{'rtc/floor':>11}{'sockudo':>12}{'sockudo/floor':>15}")
    for name, (fl, lost) in floors.items():
        a, b = rows.get(name + ".rtc"), rows.get(name + ".sockudo")
        ra = a and a["frames_per_cpu_s"]
        rb = b and b["frames_per_cpu_s"]
        print(f"{name:<12}{fl:>12,.0f}{(f'{ra:,.0f}' if ra else '-'):>12}{(f'{ra / fl:.2f}' if ra else '-'):>11}"
              f"{(f'{rb:,.0f}' if rb else '-'):>12}{(f'{rb / fl:.2f}' if rb else '-'):>15}"
              + (f"   (floor lost {lost})" if lost not in (None, "0") else ""))
    if not SOCKUDO_GIVEN:
        print("sockudo: not run (no SOCKUDO binary given or on PATH)")

# The ping floor beside the idle-ping measurement: CPU per answered ping.
for p in sorted(out.glob("ping-floor-*.floor.txt")):
    line = p.read_text().strip().splitlines()[-1:] or [""]
    kv = dict(x.split("=", 1) for x in line[0].split() if "=" in x)
    if "us_per_ping" not in kv:
        continue
    fl = float(kv["us_per_ping"])
    name = p.name.split(".")[0].replace("ping-floor-", "idle-ping-")
    a, b = rows.get(name + ".rtc"), rows.get(name + ".sockudo")
    ra, rb = a and a["us_per_ping"], b and b["us_per_ping"]
    print()
    print(f"{'scenario':<16}{'floor us/ping':>15}{'rtc':>8}{'floor/rtc':>11}{'sockudo':>10}{'floor/sockudo':>15}")
    print(f"{name:<16}{fl:>15.1f}{(f'{ra:.1f}' if ra else '-'):>8}{(f'{fl / ra:.2f}' if ra else '-'):>11}"
          f"{(f'{rb:.1f}' if rb else '-'):>10}{(f'{fl / rb:.2f}' if rb else '-'):>15}"
          + (f"   (floor unanswered {kv.get('unanswered')})" if kv.get("unanswered") not in (None, "0") else ""))
EOF
