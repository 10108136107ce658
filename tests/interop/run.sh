#!/usr/bin/env bash
# Interop suite: the real pusher-js + pusher (Node), laravel-echo and pusher (Python)
# clients against `rtc serve`, first on one node, then on a 2-node cluster over a private
# redis-server (clients spread over both nodes). Installs what is missing, exits non-zero
# on any failure; the last line is `interop: N passed, N failed` over everything.
#
#   tests/interop/run.sh                 # everything, both modes
#   tests/interop/run.sh presence.test.js ...   # only these Node files (no Python), both modes
#   INTEROP_CLUSTER=0 tests/interop/run.sh      # single node only; INTEROP_CLUSTER=1: cluster only
#
# Env: RTC_BIN (default <repo>/target/debug/rtc), INTEROP_TIMEOUT_MS (5000),
#      INTEROP_SKIP_PYTHON=1, INTEROP_SKIP_NODE=1, INTEROP_CLUSTER=0|1 (default: both),
#      INTEROP_CLUSTER_HTTP_NODE=1|2 (cluster: the node HTTP-lib calls go to, default 2),
#      INTEROP_ENGINE=redis-cluster (cluster mode over a 3-master Redis Cluster started
#      per server with redis-cli --cluster create, i.e. the redis-cluster:// engine);
#      INTEROP_ENGINE=nats (cluster: the nodes join over a private `nats-server -js` instead of
#      redis-server; INTEROP_NATS_SERVER names the binary, default nats-server on the PATH).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ -n "${RTC_BIN:-}" ] && [ "${RTC_BIN#/}" = "$RTC_BIN" ]; then RTC_BIN="$PWD/$RTC_BIN"; fi
export RTC_BIN="${RTC_BIN:-$repo/target/debug/rtc}"
cd "$here"
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

die() { echo "interop: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node >= 20 needed)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node >= 20 needed, found $(node --version)"
[ -x "$RTC_BIN" ] || die "no rtc binary at $RTC_BIN: run \`cargo build\` in $repo (or set RTC_BIN)"

# 1. install what is missing
lock_stamp="node_modules/.package-lock.json"
if [ ! -f "$lock_stamp" ] || [ package-lock.json -nt "$lock_stamp" ]; then
  echo "interop: npm ci"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
fi
if [ "${INTEROP_SKIP_PYTHON:-0}" != 1 ] && [ "$#" -eq 0 ]; then
  py_stamp=".venv/.requirements-installed"
  if [ ! -x .venv/bin/python ]; then
    echo "interop: creating .venv"
    python3 -m venv .venv || die "python3 -m venv failed (apt-get install python3-venv?)"
  fi
  if [ ! -f "$py_stamp" ] || [ requirements.txt -nt "$py_stamp" ]; then
    echo "interop: pip install -r requirements.txt"
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt || die "pip install failed"
    touch "$py_stamp"
  fi
fi

case "${INTEROP_CLUSTER:-}" in
  1) modes=(cluster) ;;
  0) modes=(single) ;;
  "") modes=(single cluster) ;;
  *) die "INTEROP_CLUSTER must be 0, 1 or unset (both modes), not '${INTEROP_CLUSTER}'" ;;
esac
if [[ " ${modes[*]} " == *" cluster "* ]]; then
  command -v redis-server >/dev/null || die "redis-server is not installed (needed for the cluster mode; INTEROP_CLUSTER=0 skips it)"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# TLS material for tls.test.js: a throwaway CA and a leaf for 127.0.0.1/localhost signed
# by it. Node reads NODE_EXTRA_CA_CERTS only at start-up, so the CA is made here, before
# any node process, and trusted that way (never NODE_TLS_REJECT_UNAUTHORIZED=0). A CA
# file the caller already set is kept (Node takes one file: both go into it).
command -v openssl >/dev/null || die "openssl is not installed (tls.test.js needs it)"
tls_dir="$tmp/tls"
mkdir -p "$tls_dir"
if ! (
  cd "$tls_dir" &&
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key &&
  openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=rtc-interop-CA \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
  openssl ecparam -name prime256v1 -genkey -noout -out leaf.sec1 &&
  openssl pkcs8 -topk8 -nocrypt -in leaf.sec1 -out key.pem &&
  openssl req -new -key key.pem -out leaf.csr -subj /CN=localhost &&
  printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
    extendedKeyUsage=serverAuth subjectAltName=DNS:localhost,IP:127.0.0.1 > leaf.ext &&
  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 4242 -days 2 \
    -extfile leaf.ext -out cert.pem
) > "$tmp/openssl.log" 2>&1; then
  cat "$tmp/openssl.log" >&2
  die "could not make the TLS test certificate with openssl"
fi
export INTEROP_TLS_CERT="$tls_dir/cert.pem" INTEROP_TLS_KEY="$tls_dir/key.pem" INTEROP_TLS_CA="$tls_dir/ca.pem"
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  cat "$NODE_EXTRA_CA_CERTS" "$INTEROP_TLS_CA" > "$tls_dir/node-extra-ca.pem"
else
  cp "$INTEROP_TLS_CA" "$tls_dir/node-extra-ca.pem"
fi

total_pass=0 total_fail=0 status=0
summary=()
now_ms() { date +%s%3N; }

for mode in "${modes[@]}"; do
  if [ "$mode" = cluster ]; then export INTEROP_CLUSTER=1; else export INTEROP_CLUSTER=0; fi
  node_pass=0 node_fail=0 py_pass=0 py_fail=0 node_ms=0 py_ms=0

  # 2. Node suite (node's built-in test runner; one file at a time: 2 cores)
  if [ "${INTEROP_SKIP_NODE:-0}" != 1 ]; then
    if [ "$#" -gt 0 ]; then files=("$@"); else files=(*.test.js); fi
    echo "interop [$mode]: node --test ${files[*]}"
    t0="$(now_ms)"
    # --test-force-exit: a socket closed by the server can leave pusher-js's faye socket
    # half-open for 30 s after a file's last test; every wait is bounded anyway.
    NODE_EXTRA_CA_CERTS="$tls_dir/node-extra-ca.pem" \
    node --test --test-concurrency=1 --test-timeout=60000 --test-force-exit \
      --test-reporter=spec "${files[@]}" 2>&1 | tee "$tmp/node-$mode.out"
    rc=${PIPESTATUS[0]}
    node_ms=$(( $(now_ms) - t0 ))
    node_pass="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$tmp/node-$mode.out" | tail -1)"
    node_fail="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$tmp/node-$mode.out" | tail -1)"
    node_pass="${node_pass:-0}" node_fail="${node_fail:-0}"
    if [ "$rc" -ne 0 ]; then
      status=1
      [ "$node_fail" -gt 0 ] || node_fail=1
    fi
  fi

  # 3. Python suite (official `pusher` from PyPI)
  if [ "${INTEROP_SKIP_PYTHON:-0}" != 1 ] && [ "$#" -eq 0 ]; then
    echo "interop [$mode]: python checks (pusher $(.venv/bin/python -c 'import pusher.version as v; print(v.VERSION)' 2>/dev/null))"
    t0="$(now_ms)"
    .venv/bin/python python/test_pusher_python.py 2>&1 | tee "$tmp/python-$mode.out"
    rc=${PIPESTATUS[0]}
    py_ms=$(( $(now_ms) - t0 ))
    line="$(grep -E '^python: [0-9]+ passed, [0-9]+ failed$' "$tmp/python-$mode.out" | tail -1)"
    if [ -n "$line" ]; then
      py_pass="$(echo "$line" | sed -E 's/^python: ([0-9]+) passed.*/\1/')"
      py_fail="$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')"
    fi
    if [ "$rc" -ne 0 ]; then
      status=1
      [ "$py_fail" -gt 0 ] || py_fail=1
    fi
  fi

  total_pass=$(( total_pass + node_pass + py_pass ))
  total_fail=$(( total_fail + node_fail + py_fail ))
  summary+=("$(printf 'interop [%s]: node %s passed, %s failed (%d.%01d s); python %s passed, %s failed (%d.%01d s)' \
    "$mode" "$node_pass" "$node_fail" $(( node_ms / 1000 )) $(( node_ms % 1000 / 100 )) \
    "$py_pass" "$py_fail" $(( py_ms / 1000 )) $(( py_ms % 1000 / 100 )))")
done

echo
for line in "${summary[@]}"; do echo "$line"; done
echo "interop: ${total_pass} passed, ${total_fail} failed"
exit "$status"
