# benches/lib.sh: helpers shared by the bench scripts (run.sh, drain.sh, soak.sh).
# Sourced, not run. Loopback only. Servers are started under SERVER_PIN (an array,
# empty when unset: no pinning).

log() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
show() { printf '+ %s\n' "$*" >&2; }

# free_port: a TCP port that was free on 127.0.0.1 a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_tcp PORT [PID] [TRIES]: until 127.0.0.1:PORT accepts a connection, 0.1 s apart
# (default 100 tries). Fails when the tries run out or process PID (if given) exits.
wait_tcp() {
  local port=$1 pid=${2:-} tries=${3:-100}
  for _ in $(seq "$tries"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# start_redis LOG: a throwaway redis-server (no persistence) on a free loopback port,
# in the background; sets REDIS_PORT and REDIS_PID, exits the script if it does not start.
start_redis() {
  local log=$1
  REDIS_PORT=$(free_port)
  show "${SERVER_PIN[*]} redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no > $log"
  "${SERVER_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$log" 2>&1 &
  REDIS_PID=$!
  wait_tcp "$REDIS_PORT" "$REDIS_PID" || { echo "error: redis-server did not start; see $log" >&2; exit 1; }
}

# wait_rtc LOG PID: waits for the "rtc listening on http://127.0.0.1:PORT" line an
# `rtc serve --port 0` writes to LOG; sets RTC_PORT. Fails when PID exits first or after
# 10 s.
wait_rtc() {
  local log=$1 pid=$2
  for _ in $(seq 100); do
    RTC_PORT=$(sed -n 's|^rtc listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n1)
    [[ -n $RTC_PORT ]] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# wait_ready PORT PID: until the rtc node on 127.0.0.1:PORT answers /ready with 200
# (listening, and in cluster mode linked to Redis), 0.1 s apart, at most 10 s. Fails when
# PID exits first.
wait_ready() {
  local port=$1 pid=$2
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
