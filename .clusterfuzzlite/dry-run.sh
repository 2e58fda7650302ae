#!/usr/bin/env bash
# A container-free dry run of .clusterfuzzlite/build.sh: the builder image's layout ($SRC/utcp,
# $OUT, $WORK) made in a temporary folder on this machine, build.sh run there with
# `cargo +nightly fuzz build -O`, then every target it put in $OUT started on its seed corpus
# with its dictionary for a few seconds, as ClusterFuzzLite would start it.
# Usage: .clusterfuzzlite/dry-run.sh [SECONDS]   (CARGO_TARGET_DIR is honoured)
set -euo pipefail
secs="${1:-5}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export SRC="$tmp/src" OUT="$tmp/out" WORK="$tmp/work" FUZZ_TOOLCHAIN=nightly
mkdir -p "$SRC" "$OUT" "$WORK"
ln -s "$root" "$SRC/utcp"
cp "$root/.clusterfuzzlite/build.sh" "$SRC/build.sh"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
bash -eu "$SRC/build.sh"

failed=0
mapfile -t targets < <(cd "$root" && cargo +nightly fuzz list)
for t in "${targets[@]}"; do
    for f in "$OUT/$t" "$OUT/$t.dict" "$OUT/${t}_seed_corpus.zip"; do
        [ -e "$f" ] || { echo "missing: ${f#"$OUT"/}"; failed=1; }
    done
    [ -x "$OUT/$t" ] || continue
    corpus="$WORK/$t"
    mkdir -p "$corpus"
    unzip -q -o "$OUT/${t}_seed_corpus.zip" -d "$corpus"
    seeds="$(find "$corpus" -type f | wc -l)"
    log="$WORK/$t.log"
    if "$OUT/$t" -dict="$OUT/$t.dict" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" >"$log" 2>&1; then
        dict="$(grep -oE 'Dictionary: [0-9]+ entries' "$log" | head -1 || true)"
        execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)"
        echo "$t: ok, $seeds seeds, ${dict:-no dictionary read}, ${execs:-?} executions in ${secs}s"
    else
        echo "$t: FAILED"
        tail -n 30 "$log"
        failed=1
    fi
done
exit "$failed"
