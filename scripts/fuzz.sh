#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for a bounded time, one after another.
#
#   bash scripts/fuzz.sh                        # 60 s per target
#   SECONDS_PER_TARGET=600 bash scripts/fuzz.sh # longer
#   bash scripts/fuzz.sh bus_decode             # only the named targets
#
# Needs a nightly toolchain (`cargo +nightly`) and a C++ compiler; installs cargo-fuzz
# if it is missing. Each run starts from the committed corpus fuzz/corpus/<target>/ and
# writes the inputs it finds to fuzz/target/corpus/<target>/ (git-ignored), so the
# committed corpus stays minimised; with KEEP_CORPUS=1 they go to fuzz/corpus/<target>/
# instead (then minimise before committing:
# `cd fuzz && cargo +nightly fuzz cmin <target> -- -use_counters=0`). A crash input lands
# in fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/ so
# tests/fuzz_corpus.rs keeps replaying it. Exits non-zero if any target crashed.
# Not part of CI (nightly only).
set -euo pipefail

SECONDS_PER_TARGET="${SECONDS_PER_TARGET:-60}"
RSS_LIMIT_MB="${RSS_LIMIT_MB:-2048}"
MAX_LEN="${MAX_LEN:-8192}"
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "+$TOOLCHAIN" fuzz list)
fi

logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    if [ "${KEEP_CORPUS:-0}" = 1 ]; then
        dirs=("corpus/$t")
    else
        mkdir -p "target/corpus/$t"
        dirs=("target/corpus/$t" "corpus/$t")
    fi
    dict=()
    if [ -f "dict/$t.dict" ]; then
        dict=("-dict=dict/$t.dict")
    fi
    echo "==> $t: ${SECONDS_PER_TARGET}s (rss limit ${RSS_LIMIT_MB} MB, max_len ${MAX_LEN})"
    log="$logdir/$t.log"
    status=0
    cargo "+$TOOLCHAIN" fuzz run "$t" "${dirs[@]}" -- \
        "${dict[@]}" \
        -max_total_time="$SECONDS_PER_TARGET" \
        -rss_limit_mb="$RSS_LIMIT_MB" \
        -max_len="$MAX_LEN" \
        -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    # libFuzzer's last status line: "#N DONE cov: C ft: F corp: K/S exec/s: E rss: R".
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)"
    line="$t: status=$status execs=${execs:-?} ${last}"
    summary+=("$line")
    echo "    $line"
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        echo "    $t FAILED; last lines of its log:"
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
done

echo
echo "==> summary"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashes or errors in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crashes"
