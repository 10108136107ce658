#!/usr/bin/env bash
# The one command that runs every test of rtc on a fresh machine:
#   installs what is missing (redis-server, nats-server, Node/npm, python3-venv; the npm
#   and PyPI packages of the interop suite), then runs formatting and lint checks, the
#   Rust unit and integration tests (which start their own redis-server and nats-server
#   processes on free ports), and the interop suite with the real pusher-js and pusher
#   libraries (its cluster mode over one Redis, a Redis Cluster, then NATS).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n==> %s\n' "$*"; }

apt_install() {
  if command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
  else
    echo "missing $* and no apt-get: install them by hand" >&2
    exit 1
  fi
}

say "checking tools"
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
  say "installing ${need[*]}"
  apt_install "${need[@]}"
fi
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

say "cargo test"
cargo test --workspace

say "interop suite (pusher-js, pusher for Node and Python)"
cargo build --quiet
export RTC_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/rtc"
tests/interop/run.sh

say "interop suite, cluster mode over a Redis Cluster (the redis-cluster engine)"
INTEROP_ENGINE=redis-cluster INTEROP_CLUSTER=1 tests/interop/run.sh

say "interop suite, cluster mode over NATS (the NATS engine)"
PATH="$PATH:/usr/sbin" INTEROP_ENGINE=nats INTEROP_CLUSTER=1 tests/interop/run.sh
