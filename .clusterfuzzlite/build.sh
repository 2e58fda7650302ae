#!/bin/bash -eu
# Builds every cargo-fuzz target of fuzz/ into $OUT, as ClusterFuzzLite and OSS-Fuzz expect:
# each binary, its dictionary as $OUT/<target>.dict (from fuzz/dicts/) and its seeds as
# $OUT/<target>_seed_corpus.zip (from corpus/fuzz/<target>/).
#
# In the builder image this runs as is. Outside it (a dry run on a developer machine, see
# .clusterfuzzlite/dry-run.sh) set SRC and OUT, and FUZZ_TOOLCHAIN=nightly to run
# `cargo +nightly fuzz build -O`; CARGO_TARGET_DIR is honoured.

project="$SRC/utcp"
cd "$project"

toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
fi

cargo "${toolchain[@]}" fuzz build -O

target_dir="${CARGO_TARGET_DIR:-$project/fuzz/target}"
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"
mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
for t in "${targets[@]}"; do
    cp "$bin_dir/$t" "$OUT/"
    if [ -f "fuzz/dicts/$t.dict" ]; then
        cp "fuzz/dicts/$t.dict" "$OUT/$t.dict"
    fi
    if [ -d "corpus/fuzz/$t" ]; then
        rm -f "$OUT/${t}_seed_corpus.zip"
        (cd "corpus/fuzz/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
    fi
done
echo "built ${#targets[@]} targets into $OUT: ${targets[*]}"
