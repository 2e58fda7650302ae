#!/usr/bin/env bash
# Measures the source coverage a fuzz corpus reaches, per target, with `cargo fuzz coverage`.
# Usage: fuzz/coverage.sh [--html] [TARGET...]   (default: every target)
#
# The corpus replayed is the working one in fuzz/corpus/<target>/ when a fuzz run has left one,
# otherwise the committed seeds in corpus/fuzz/<target>/. For each target it prints, from
# `llvm-cov report`, region and line coverage of every project file (stack/src, harness/src) the
# target enters, and their sum; the standard library, dependencies, the target's one-line main
# and files it never enters are left out. With --html it also writes fuzz/coverage/<target>/html/.
# Needs the nightly llvm-tools component, which it installs when missing.
set -euo pipefail

html=0
if [ "${1:-}" = "--html" ]; then
    html=1
    shift
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
llvm_bin="$(rustc +nightly --print sysroot)/lib/rustlib/$host/bin"
if [ ! -x "$llvm_bin/llvm-cov" ]; then
    rustup component add llvm-tools-preview --toolchain nightly
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Only the project's sources: everything outside stack/src and harness/src is ignored.
ignore='^(/rustc/|.*/\.cargo/|.*/\.rustup/|.*/fuzz/fuzz_targets/)'
for t in "${targets[@]}"; do
    if [ -n "$(ls -A "corpus/$t" 2>/dev/null)" ]; then
        corpus="corpus/$t"
    else
        corpus="$root/corpus/fuzz/$t"
    fi
    n="$(find "$corpus" -maxdepth 1 -type f | wc -l)"
    echo "== $t: $n inputs from ${corpus#"$root"/}"
    log="$(mktemp)"
    if ! cargo +nightly fuzz coverage --sanitizer none "$t" "$corpus" >"$log" 2>&1; then
        tail -n 40 "$log"
        rm -f "$log"
        echo "== $t: cargo fuzz coverage failed"
        exit 1
    fi
    rm -f "$log"
    bin="target/$host/coverage/$host/release/$t"
    profile="coverage/$t/coverage.profdata"
    # Columns of `llvm-cov report`: file, regions, missed, cover, functions, missed, executed,
    # lines, missed, cover, ... Files the target never enters are left out of the listing and
    # of the "reached files" sum, so the figure speaks of the code the target is about.
    "$llvm_bin/llvm-cov" report "$bin" -instr-profile="$profile" -ignore-filename-regex="$ignore" |
        awk '$1 ~ /^(stack|harness)\// && $8 > 0 && $9 < $8 {
                 printf "   %-34s regions %7s  lines %7s (%d of %d)\n", $1, $4, $10, $8 - $9, $8
                 r += $2; rm += $3; l += $8; lm += $9
             }
             END {
                 if (l > 0) printf "   %-34s regions %6.2f%%  lines %6.2f%% (%d of %d)\n", "reached files",
                     100 * (r - rm) / r, 100 * (l - lm) / l, l - lm, l
             }'
    if [ "$html" -eq 1 ]; then
        "$llvm_bin/llvm-cov" show "$bin" -instr-profile="$profile" -ignore-filename-regex="$ignore" \
            -format=html -output-dir="coverage/$t/html"
        echo "   html: fuzz/coverage/$t/html/index.html"
    fi
done
