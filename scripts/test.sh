#!/usr/bin/env bash
# The one command that runs every test of rtc on a fresh machine:
#   installs what is missing (redis-server, nats-server, Node/npm, python3-venv; the npm
#   and PyPI packages of the interop suite), then runs formatting and lint checks, the
#   Rust unit and integration tests (which start their own redis-server and nats-server
#   processes on free ports), the cluster suite again on a Redis Cluster and on NATS,
#   and the interop suite with the real pusher-js and pusher
#   libraries (its cluster mode over one Redis, a Redis Cluster, then NATS).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

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

say "cluster suite on a Redis Cluster (the redis-cluster engine)"
# One test at a time: each test starts its own 3-master Redis Cluster and three nodes,
# and two of those at once load the 2 cores enough to slow a channel's first SSUBSCRIBE
# by seconds (a new subscriber waits up to 5 s for it, then is refused with 503).
RTC_TEST_ENGINE=redis-cluster cargo test --test cluster -- --test-threads=1

say "cluster suite on NATS (the NATS engine)"
PATH="$PATH:/usr/sbin" RTC_TEST_ENGINE=nats cargo test --test cluster

say "interop suite (pusher-js, pusher for Node and Python)"
cargo build --quiet
export RTC_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/rtc"
tests/interop/run.sh

say "interop suite, cluster mode over a Redis Cluster (the redis-cluster engine)"
INTEROP_ENGINE=redis-cluster INTEROP_CLUSTER=1 tests/interop/run.sh

say "interop suite, cluster mode over NATS (the NATS engine)"
PATH="$PATH:/usr/sbin" INTEROP_ENGINE=nats INTEROP_CLUSTER=1 tests/interop/run.sh

say "all tests passed"
