#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds (default 30) from its seeds in corpus/fuzz/<target>/,
# with its dictionary fuzz/dicts/<target>.dict (the protocol's constants; ClusterFuzzLite gets the
# same files through .clusterfuzzlite/build.sh).
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]
#
# The working corpus lives in fuzz/corpus/<target>/ (gitignored), started from a copy of the
# committed seeds, so nothing the fuzzer finds lands in git unless someone copies it there.
# A crash fails the script and prints the crashing input in hex; each target's execs/s and total
# executions are printed at the end.
#
# The code under test is safe Rust whose oracle is panics and the targets' own checks, so by
# default the targets are built without a sanitizer (the stack targets ran about 1,000 execs/s
# under AddressSanitizer and 5,000 without on this machine);
# UTCP_FUZZ_SANITIZER=address brings AddressSanitizer back.
set -euo pipefail

secs="${1:-30}"
sanitizer="${UTCP_FUZZ_SANITIZER:-none}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

hexdump_file() {
    if command -v xxd >/dev/null 2>&1; then xxd "$1"; else od -A x -t x1z -v "$1"; fi
}

summary=()
failed=0
for t in "${targets[@]}"; do
    work="corpus/$t"
    mkdir -p "$work" "artifacts/$t"
    if [ -d "$root/corpus/fuzz/$t" ]; then
        cp -n "$root/corpus/fuzz/$t"/* "$work"/ 2>/dev/null || true
    fi
    log="$(mktemp)"
    dict=()
    if [ -f "dicts/$t.dict" ]; then
        dict=(-dict="dicts/$t.dict")
    fi
    echo "== $t: ${secs}s${dict:+, dictionary dicts/$t.dict}"
    status=0
    cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "$work" -- -max_total_time="$secs" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 "${dict[@]}" >"$log" 2>&1 || status=$?
    # A crash ends the run before libFuzzer prints its final stats: no match is not an error.
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1 || true)"
    rate="$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1 || true)"
    summary+=("$t: ${rate:-?} execs/s, ${execs:-?} executions")
    if [ "$status" -ne 0 ]; then
        failed=1
        tail -n 60 "$log"
        crash="$(grep -oE 'artifacts/[^ ]+/(crash|leak|timeout|oom|slow-unit)-[0-9a-f]+' "$log" | tail -1 || true)"
        if [ -n "$crash" ] && [ -f "$crash" ]; then
            echo "== $t: crashing input fuzz/$crash ($(wc -c <"$crash") bytes):"
            hexdump_file "$crash"
        fi
        echo "== $t: FAILED (exit $status)"
    fi
    rm -f "$log"
done

echo "== fuzz summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
