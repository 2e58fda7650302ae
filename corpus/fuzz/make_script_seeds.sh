#!/bin/sh
# Makes the seed inputs of the script_parser fuzz target: every script under corpus/scripts/,
# named <topic>-<script>. Rerunning is idempotent.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/script_parser"
mkdir -p "$out"
for f in "$here"/../scripts/*/*.pkt; do
    topic="$(basename "$(dirname "$f")")"
    cp "$f" "$out/$topic-$(basename "$f")"
done
