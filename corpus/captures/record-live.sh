#!/usr/bin/env bash
# Records utcp's own live capture, with its application's calls and the driver's timer runs:
# `utcp live http` on a TUN device in a network namespace this script creates (utcp-rec-live;
# utcp is 10.199.0.2, the kernel's side of the device 10.199.0.1), and curl in the same
# namespace fetching a 20 000-byte file from it. Nothing is configured in the host namespace and
# nothing is sent outside it; the namespace is removed on every exit path; every wait is bounded.
#
# Usage (root): corpus/captures/record-live.sh [UTCP] [OUTPUT_DIR]
#   UTCP defaults to target/release/utcp (build it with `cargo build --release`), OUTPUT_DIR to
#   this script's folder. Rerunnable: it overwrites utcp-live-http-ipv4.pcapng.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
UTCP="${1:-$HERE/../../target/release/utcp}"
OUT="${2:-$HERE}"
NS=utcp-rec-live
FILE="$OUT/utcp-live-http-ipv4.pcapng"
WORK=""
PID=""

log() { printf '[record-live] %s\n' "$*" >&2; }
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -INT "$PID" 2>/dev/null || true; sleep 0.5; kill -KILL "$PID" 2>/dev/null || true; fi
  ip netns del "$NS" 2>/dev/null || true
  [[ -n $WORK ]] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $EUID -eq 0 ]] || { log "needs root (a network namespace and a TUN device)"; exit 1; }
[[ -x $UTCP ]] || { log "no utcp binary at $UTCP: cargo build --release, or name one"; exit 1; }
command -v curl >/dev/null || { log "needs curl"; exit 1; }

WORK="$(mktemp -d)"
mkdir "$WORK/www"
# 20 000 bytes of a fixed pattern, the same on every recording.
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) % 251 for i in range(20000)))' >"$WORK/www/page.bin"

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" timeout 30 "$UTCP" live --tun utcp0 --addr 10.199.0.2/24 --configure \
  --pcap "$FILE" http 8080 "$WORK/www" 2>"$WORK/utcp.log" &
PID=$!
# The device is up with the kernel's address once `ip` shows it; utcp listens by then.
for _ in $(seq 1 50); do
  if ip -n "$NS" -4 addr show dev utcp0 2>/dev/null | grep -q 10.199.0.1; then break; fi
  sleep 0.1
done
sleep 0.2
ip netns exec "$NS" curl -sS --max-time 10 -o "$WORK/got.bin" http://10.199.0.2:8080/page.bin
cmp "$WORK/www/page.bin" "$WORK/got.bin"
# The closing handshake, then Ctrl-C (utcp closes what is left and exits 0).
sleep 0.3
kill -INT "$PID"
for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
wait "$PID"
PID=""

bad="$(tshark -r "$FILE" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE \
  -Y 'tcp.checksum.status==0 || ip.checksum.status==0 || _ws.malformed' 2>/dev/null || true)"
[[ -z $bad ]] || { log "bad or malformed packets in $FILE:"; echo "$bad" >&2; exit 1; }
log "$FILE: $(tshark -r "$FILE" 2>/dev/null | wc -l) records, $(tshark -r "$FILE" -Y 'frame.interface_id == 1' 2>/dev/null | wc -l) of them the driver's"
