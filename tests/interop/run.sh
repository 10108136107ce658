#!/usr/bin/env bash
# Interop suite: the real pusher-js + pusher (Node) and pusher (Python) clients against
# `rtc serve`. Installs what is missing, runs both suites, exits non-zero on any failure.
#
#   tests/interop/run.sh                 # everything
#   tests/interop/run.sh presence.test.js ...   # only these Node files (no Python)
#
# Env: RTC_BIN (default <repo>/target/debug/rtc), INTEROP_TIMEOUT_MS (5000),
#      INTEROP_SKIP_PYTHON=1, INTEROP_SKIP_NODE=1.
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

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

node_pass=0 node_fail=0 py_pass=0 py_fail=0 status=0

# 2. Node suite (node's built-in test runner; one file at a time: 2 cores)
if [ "${INTEROP_SKIP_NODE:-0}" != 1 ]; then
  if [ "$#" -gt 0 ]; then files=("$@"); else files=(*.test.js); fi
  echo "interop: node --test ${files[*]}"
  # --test-force-exit: a socket closed by the server can leave pusher-js's faye socket
  # half-open for 30 s after a file's last test; every wait is bounded anyway.
  node --test --test-concurrency=1 --test-timeout=60000 --test-force-exit \
    --test-reporter=spec "${files[@]}" 2>&1 | tee "$tmp/node.out"
  rc=${PIPESTATUS[0]}
  node_pass="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$tmp/node.out" | tail -1)"
  node_fail="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$tmp/node.out" | tail -1)"
  node_pass="${node_pass:-0}" node_fail="${node_fail:-0}"
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "$node_fail" -gt 0 ] || node_fail=1
  fi
fi

# 3. Python suite (official `pusher` from PyPI)
if [ "${INTEROP_SKIP_PYTHON:-0}" != 1 ] && [ "$#" -eq 0 ]; then
  echo "interop: python checks (pusher $(.venv/bin/python -c 'import pusher.version as v; print(v.VERSION)' 2>/dev/null))"
  .venv/bin/python python/test_pusher_python.py 2>&1 | tee "$tmp/python.out"
  rc=${PIPESTATUS[0]}
  line="$(grep -E '^python: [0-9]+ passed, [0-9]+ failed$' "$tmp/python.out" | tail -1)"
  if [ -n "$line" ]; then
    py_pass="$(echo "$line" | sed -E 's/^python: ([0-9]+) passed.*/\1/')"
    py_fail="$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')"
  fi
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "$py_fail" -gt 0 ] || py_fail=1
  fi
fi

echo
echo "interop summary: node ${node_pass} passed, ${node_fail} failed; python ${py_pass} passed, ${py_fail} failed"
echo "interop: $((node_pass + py_pass)) passed, $((node_fail + py_fail)) failed"
exit "$status"
