#!/usr/bin/env bash
# Records the project's own captures of real Linux TCP (issue 3 item 6).
#
# Every scenario runs between two network namespaces this script creates itself
# (utcp-rec-a, the client, 10.199.0.1 / fd00:199::1, and utcp-rec-b, the server,
# 10.199.0.2 / fd00:199::2), joined by a veth pair created directly inside them, with
# every offload off on both ends so that the captured checksums are the ones on the wire.
# A fresh pair is made for each scenario (no TIME_WAIT, cached route metrics, firewall
# rules or sysctls carry over). tcpdump runs inside the client's namespace, filter `tcp`.
# Nothing is configured in the host namespace and nothing is sent outside the pair.
# The namespaces are removed on every exit path; every wait is bounded.
#
# Usage (root): corpus/captures/record.sh [OUTPUT_DIR]   (default: this script's folder)
# Rerunnable: it overwrites the captures.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE}"
NS_A=utcp-rec-a
NS_B=utcp-rec-b
VETH_A=utcp-rec-va
VETH_B=utcp-rec-vb
A4=10.199.0.1
B4=10.199.0.2
A6=fd00:199::1
B6=fd00:199::2
PY=/usr/bin/python3
[[ -x $PY ]] || PY="$(command -v python3)"
WORK=""
BG_PIDS=()
CAP_PIDS=()
NS_R=utcp-rec-r
VETH_RA=utcp-rec-ra
VETH_RB=utcp-rec-rb
B4R=10.199.1.2

log() { printf '[record] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- cleanup on every exit path -------------------------------------------------------

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

remove_ns() {
  local ns=$1 pid
  ns_exists "$ns" || return 0
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${BG_PIDS[@]}" "${CAP_PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  remove_ns "$NS_A"
  remove_ns "$NS_B"
  remove_ns "$NS_R"
  [[ -n $WORK ]] && rm -rf "$WORK"
  if ns_exists "$NS_A" || ns_exists "$NS_B" || ns_exists "$NS_R"; then
    log "warning: a namespace could not be removed; see 'ip netns list'"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# --- tools ----------------------------------------------------------------------------

[[ $(id -u) -eq 0 ]] || die "run as root (namespaces, tcpdump, iptables)"

need=()
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v ethtool >/dev/null || need+=(ethtool)
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v ss >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v ping >/dev/null || need+=(iputils-ping)
command -v editcap >/dev/null || need+=(wireshark-common)
command -v tshark >/dev/null || need+=(tshark)
[[ -n $PY ]] || need+=(python3)
if ((${#need[@]})); then
  log "installing: ${need[*]}"
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${need[@]}" >/dev/null
fi

WORK="$(mktemp -d /tmp/utcp-rec.XXXXXX)"
mkdir -p "$OUT" "$WORK/www"
PEER=("$PY" -u "$WORK/peer.py")

# A small web page for the HTTP scenarios (deterministic content, 20 000 bytes).
"$PY" - "$WORK/www/page.html" <<'EOF'
import sys
body = "".join(f"<p>line {i:05d} of the utcp test page</p>\n" for i in range(100000))
open(sys.argv[1], "w").write(("<html><body>\n" + body)[:19985] + "</body></html>\n")
EOF

# The servers and clients: each role does exactly one thing, with socket timeouts.
cat >"$WORK/peer.py" <<'EOF'
"""Servers and clients for record.sh. Usage: peer.py ROLE key=value..."""
import socket
import struct
import sys
import time

args = dict(a.split("=", 1) for a in sys.argv[2:])
role = sys.argv[1]
host = args.get("host", "")
port = int(args.get("port", "0"))
family = socket.AF_INET6 if ":" in host else socket.AF_INET
TIMEOUT = 20


def listen_accept(rcvbuf=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        # Set on the listener so the SYN-ACK's window and scale already reflect it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((host, port))
    s.listen(1)
    s.settimeout(TIMEOUT)
    c, _ = s.accept()
    s.close()
    c.settimeout(TIMEOUT)
    return c


def connect():
    c = socket.create_connection((host, port), timeout=TIMEOUT)
    c.settimeout(TIMEOUT)
    return c


def read_to_eof(c):
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            return n
        n += len(b)


def pattern(n):
    block = bytes(range(256)) * 256
    return (block * (n // len(block) + 1))[:n]


if role == "sink":
    # Server: optionally pause without reading (zero window), then read to EOF and close.
    c = listen_accept(int(args["rcvbuf"]) if "rcvbuf" in args else None)
    time.sleep(float(args.get("pause", "0")))
    n = read_to_eof(c)
    c.close()
    print(f"sink: received {n} bytes")
elif role == "send":
    # Client: send N bytes, close its half, wait for the server's FIN, close.
    c = connect()
    c.sendall(pattern(int(args["bytes"])))
    c.shutdown(socket.SHUT_WR)
    read_to_eof(c)
    c.close()
    print("send: done")
elif role == "refused":
    # Client: one SYN to a closed port; the answer is a RST.
    try:
        connect()
        sys.exit("refused: connection unexpectedly accepted")
    except ConnectionRefusedError:
        print("refused: connection refused (RST)")
elif role == "abort-server":
    # Server: answer one line, then read until the peer's RST (or EOF).
    c = listen_accept()
    req = c.recv(100)
    c.sendall(b"world " + req)
    try:
        read_to_eof(c)
        print("abort-server: EOF (no RST seen)")
    except ConnectionResetError:
        print("abort-server: connection reset by peer")
    c.close()
elif role == "abort-client":
    # Client: send a line, read the answer, then close with SO_LINGER {1, 0}: a RST.
    c = connect()
    c.sendall(b"hello\n")
    got = c.recv(100)
    time.sleep(0.1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    print(f"abort-client: got {got!r}, aborted")
elif role == "halfclose-server":
    # Server: read the request to EOF (the client's FIN), then still send three chunks
    # with pauses, then close.
    c = listen_accept()
    n = read_to_eof(c)
    for i in range(3):
        c.sendall(bytes([0x41 + i]) * 4000)
        time.sleep(0.1)
    c.close()
    print(f"halfclose-server: read {n} bytes, sent 12000 after the peer's FIN")
elif role == "halfclose-client":
    # Client: send a request, shutdown(SHUT_WR), keep reading the answer to EOF.
    c = connect()
    c.sendall(b"request " * 125)
    c.shutdown(socket.SHUT_WR)
    n = read_to_eof(c)
    c.close()
    print(f"halfclose-client: received {n} bytes after its own FIN")
elif role == "echo-server":
    # Server: answer each line in upper case until EOF, then close.
    c = listen_accept()
    buf = b""
    while True:
        b = c.recv(4096)
        if not b:
            break
        buf += b
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            c.sendall(line.upper() + b"\n")
    c.close()
    print("echo-server: done")
elif role == "echo-client":
    # Client: five request/response rounds with a short think time, then close.
    c = connect()
    for i in range(5):
        c.sendall(f"message {i} from the client\n".encode())
        got = b""
        while not got.endswith(b"\n"):
            b = c.recv(4096)
            if not b:
                sys.exit("echo-client: early EOF")
            got += b
        time.sleep(0.05)
    c.shutdown(socket.SHUT_WR)
    read_to_eof(c)
    c.close()
    print("echo-client: done")
else:
    sys.exit(f"unknown role {role}")
EOF

# --- namespaces ------------------------------------------------------------------------

new_ns() {
  local ns=$1
  remove_ns "$ns"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
  ip netns exec "$ns" sysctl -qw net.ipv4.tcp_no_metrics_save=1
}

# Checksums are computed in software before tcpdump sees a packet; no TSO/GSO/GRO
# super-packets: the capture holds the segments as sent.
dev_up() {
  local ns=$1 dev=$2
  ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null
  ip -n "$ns" link set "$dev" up
}

reachable() { # FROM_NS ADDR
  for _ in $(seq 50); do
    ip netns exec "$1" ping -c1 -W1 -q "$2" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$1 cannot reach $2"
}

# Two namespaces, one veth pair born inside them: the host namespace never sees it.
make_pair() {
  remove_ns "$NS_R"
  new_ns "$NS_A"
  new_ns "$NS_B"
  ip -n "$NS_A" link add "$VETH_A" type veth peer name "$VETH_B" netns "$NS_B"
  ip -n "$NS_A" addr add "$A4/24" dev "$VETH_A"
  ip -n "$NS_B" addr add "$B4/24" dev "$VETH_B"
  ip -n "$NS_A" addr add "$A6/64" dev "$VETH_A" nodad
  ip -n "$NS_B" addr add "$B6/64" dev "$VETH_B" nodad
  dev_up "$NS_A" "$VETH_A"
  dev_up "$NS_B" "$VETH_B"
  reachable "$NS_A" "$B4" # also resolves the neighbours before any capture
  reachable "$NS_A" "$B6"
}

# Three namespaces: A (10.199.0.1) - R (router, 10.199.0.254 / 10.199.1.254) - B (10.199.1.2).
# Losses made in R's FORWARD chain are real losses that neither end is told about.
make_routed() {
  new_ns "$NS_A"
  new_ns "$NS_R"
  new_ns "$NS_B"
  ip -n "$NS_A" link add "$VETH_A" type veth peer name "$VETH_RA" netns "$NS_R"
  ip -n "$NS_B" link add "$VETH_B" type veth peer name "$VETH_RB" netns "$NS_R"
  ip -n "$NS_A" addr add "$A4/24" dev "$VETH_A"
  ip -n "$NS_R" addr add 10.199.0.254/24 dev "$VETH_RA"
  ip -n "$NS_R" addr add 10.199.1.254/24 dev "$VETH_RB"
  ip -n "$NS_B" addr add "$B4R/24" dev "$VETH_B"
  dev_up "$NS_A" "$VETH_A"
  dev_up "$NS_R" "$VETH_RA"
  dev_up "$NS_R" "$VETH_RB"
  dev_up "$NS_B" "$VETH_B"
  ip -n "$NS_A" route add default via 10.199.0.254
  ip -n "$NS_B" route add default via 10.199.1.254
  ip netns exec "$NS_R" sysctl -qw net.ipv4.ip_forward=1
  reachable "$NS_A" "$B4R"
}

drop_pair() {
  remove_ns "$NS_A"
  remove_ns "$NS_B"
  remove_ns "$NS_R"
}

# --- capture ---------------------------------------------------------------------------

# start_capture NS FILE IFACE [tcpdump options...]: one more tcpdump, in namespace NS.
start_capture() {
  local ns=$1 file=$2 iface=$3 err
  shift 3
  err="$WORK/tcpdump.${#CAP_PIDS[@]}.err"
  : >"$err"
  ip netns exec "$ns" tcpdump -Z root -n -U --immediate-mode -B 65536 -s 0 -i "$iface" "$@" \
    -w "$file" tcp 2>"$err" &
  CAP_PIDS+=($!)
  for _ in $(seq 100); do
    grep -q 'listening on' "$err" && return 0
    kill -0 "${CAP_PIDS[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  cat "$err" >&2
  die "tcpdump did not start"
}

# stop_capture: stop every tcpdump (SIGINT, bounded wait); fail if one dropped packets.
stop_capture() {
  local pid n=0 err
  sleep 0.5 # let the last ACKs reach the capture
  for pid in "${CAP_PIDS[@]}"; do
    kill -INT "$pid" 2>/dev/null || true
  done
  for pid in "${CAP_PIDS[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
      die "tcpdump $pid did not stop" # cleanup kills it
    fi
    wait "$pid" 2>/dev/null || true
    err="$WORK/tcpdump.$n.err"
    n=$((n + 1))
    grep -E 'captured|dropped' "$err" | sed 's/^/[tcpdump] /' >&2 || true
    if grep -E '^[1-9][0-9]* packets dropped by kernel' "$err" >/dev/null; then
      die "tcpdump dropped packets"
    fi
  done
  CAP_PIDS=()
}

# server NS PORT CMD...: start a server (bounded by timeout) and wait until it listens.
server() {
  local ns=$1 port=$2
  shift 2
  timeout 30 ip netns exec "$ns" "$@" >"$WORK/server.out" 2>&1 &
  SERVER_PID=$!
  BG_PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do
    if ip netns exec "$ns" ss -Hltn "sport = :$port" | grep -q .; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$WORK/server.out" >&2
  die "server on port $port did not start"
}

# wait_server: the server is wrapped in `timeout 30`, so this wait is bounded.
wait_server() {
  local rc=0
  wait "$SERVER_PID" || rc=$?
  sed 's/^/[server] /' "$WORK/server.out" >&2
  [[ $rc -eq 0 ]] || die "server exited with $rc"
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

client() { timeout 30 ip netns exec "$NS_A" "$@" | sed 's/^/[client] /' >&2; }


# scenario NAME: record into $WORK/NAME, then move it into place.
begin() {
  CUR="$1"
  log "--- $CUR"
  make_pair
}
finish() {
  drop_pair
  mv -f "$WORK/$CUR" "$OUT/$CUR"
}

# --- scenarios -------------------------------------------------------------------------

http_get() { # FILE SERVER_ADDR URL_HOST [tcpdump options...]
  local file=$1 addr=$2 urlhost=$3
  shift 3
  begin "$file"
  server "$NS_B" 8080 "$PY" -u -m http.server 8080 --bind "$addr" --directory "$WORK/www"
  start_capture "$NS_A" "$WORK/$file" "$@"
  client curl -gsS --noproxy '*' --max-time 10 -o /dev/null \
    -w 'HTTP %{http_code}, %{size_download} bytes\n' "http://$urlhost:8080/page.html"
  stop_capture
  stop_server
  finish
}

http_get http-get-ipv4.pcap "$B4" "$B4" "$VETH_A"
http_get http-get-ipv6.pcap "$B6" "[$B6]" "$VETH_A"
# tcpdump 4.99 / libpcap 1.10 list LINUX_SLL2 for 'any'; older ones only LINUX_SLL.
if ! timeout 10 unshare -n tcpdump -i any -L 2>&1 | grep LINUX_SLL2 >/dev/null; then
  die "this tcpdump/libpcap cannot capture LINUX_SLL2 on 'any'"
fi
http_get http-get-ipv4-any-sll2.pcap "$B4" "$B4" any -y LINUX_SLL2

begin bulk-2mb-ipv4.pcap
server "$NS_B" 5001 "${PEER[@]}" sink port=5001 host="$B4"
start_capture "$NS_A" "$WORK/$CUR" "$VETH_A"
client "${PEER[@]}" send port=5001 host="$B4" bytes=2000000
wait_server
stop_capture
finish

begin syn-closed-port-ipv4.pcap
start_capture "$NS_A" "$WORK/$CUR" "$VETH_A"
client "${PEER[@]}" refused port=5009 host="$B4"
stop_capture
finish

begin abort-linger0-ipv4.pcap
server "$NS_B" 5002 "${PEER[@]}" abort-server port=5002 host="$B4"
start_capture "$NS_A" "$WORK/$CUR" "$VETH_A"
client "${PEER[@]}" abort-client port=5002 host="$B4"
wait_server
stop_capture
finish

begin half-close-ipv4.pcap
server "$NS_B" 5003 "${PEER[@]}" halfclose-server port=5003 host="$B4"
start_capture "$NS_A" "$WORK/$CUR" "$VETH_A"
client "${PEER[@]}" halfclose-client port=5003 host="$B4"
wait_server
stop_capture
finish

begin zero-window-ipv4.pcap
server "$NS_B" 5004 "${PEER[@]}" sink port=5004 host="$B4" rcvbuf=4096 pause=4
start_capture "$NS_A" "$WORK/$CUR" "$VETH_A"
client "${PEER[@]}" send port=5004 host="$B4" bytes=100000
wait_server
stop_capture
finish

# Loss: a router namespace drops 5 % of the client's segments to port 5005 at random
# (iptables statistic in R's FORWARD chain), during a 500 kB upload. The same connection
# is recorded on both sides of the loss: on the sender's side (in A: every lost segment
# is in the capture, followed later by its retransmission) and on the receiver's side
# (in B: the lost segments are missing, the receiver's duplicate ACKs with SACK blocks
# and the retransmissions are there). Random loss: each recording differs.
# (Drops in the sender's own OUTPUT chain are no loss: the sender's stack is told that
# the transmission failed and sends the segment again later as if for the first time.)
log "--- loss-sender-side-ipv4.pcap + loss-receiver-side-ipv4.pcap"
make_routed
ip netns exec "$NS_R" iptables -A FORWARD -p tcp --dport 5005 \
  -m statistic --mode random --probability 0.05 -j DROP
server "$NS_B" 5005 "${PEER[@]}" sink port=5005 host="$B4R"
start_capture "$NS_A" "$WORK/loss-sender-side-ipv4.pcap" "$VETH_A"
start_capture "$NS_B" "$WORK/loss-receiver-side-ipv4.pcap" "$VETH_B"
client "${PEER[@]}" send port=5005 host="$B4R" bytes=500000
wait_server
stop_capture
ip netns exec "$NS_R" iptables -vnL FORWARD | sed 's/^/[router] /' >&2
drop_pair
mv -f "$WORK/loss-sender-side-ipv4.pcap" "$WORK/loss-receiver-side-ipv4.pcap" "$OUT/"

begin no-sack-ts-ws-ipv4.pcap
for ns in "$NS_A" "$NS_B"; do
  ip netns exec "$ns" sysctl -qw net.ipv4.tcp_sack=0 net.ipv4.tcp_timestamps=0 \
    net.ipv4.tcp_window_scaling=0
  ip netns exec "$ns" sysctl net.ipv4.tcp_sack net.ipv4.tcp_timestamps \
    net.ipv4.tcp_window_scaling | sed "s/^/[$ns] /" >&2
done
server "$NS_B" 5007 "${PEER[@]}" sink port=5007 host="$B4"
start_capture "$NS_A" "$WORK/$CUR" "$VETH_A"
client "${PEER[@]}" send port=5007 host="$B4" bytes=200000
wait_server
stop_capture
finish

# Nanosecond pcap, and the same recording converted to pcapng.
begin echo-ipv6-nano.pcap
server "$NS_B" 5008 "${PEER[@]}" echo-server port=5008 host="$B6"
start_capture "$NS_A" "$WORK/$CUR" "$VETH_A" --time-stamp-precision=nano
client "${PEER[@]}" echo-client port=5008 host="$B6"
wait_server
stop_capture
finish
editcap -F pcapng "$OUT/echo-ipv6-nano.pcap" "$OUT/echo-ipv6.pcapng"

# Derived, not recorded: one pcapng with two interfaces of different link types and time
# resolutions (SLL2 in microseconds, Ethernet in nanoseconds), two connections, and a
# comment on the first packet.
mergecap -F pcapng -w "$WORK/merged.pcapng" "$OUT/http-get-ipv4-any-sll2.pcap" "$OUT/echo-ipv6-nano.pcap"
editcap -a '1:recorded by corpus/captures/record.sh' "$WORK/merged.pcapng" "$OUT/two-interfaces.pcapng"

# --- checks ----------------------------------------------------------------------------

log "--- checks"
status=0
for f in "$OUT"/*.pcap "$OUT"/*.pcapng; do
  n=$(tshark -r "$f" -T fields -e frame.number 2>/dev/null | wc -l)
  # Checksum status: 0 bad, 1 good, 2 unverified. Every packet must be verified good, except
  # that a TCP checksum of 0xffff where 0x0000 is computed is valid (one's complement has
  # two zeros, RFC 1624): Linux writes it so (CSUM_MANGLED_0), tshark calls it "Bad".
  bad=$(tshark -r "$f" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE \
    -Y 'tcp.checksum.status==2 or (tcp.checksum.status==0 and not tcp.checksum.ffff)
        or (ip and ip.checksum.status!=1) or _ws.malformed or _ws.expert.severity==error' \
    -T fields -e frame.number 2>/dev/null | wc -l)
  ffff=$(tshark -r "$f" -o tcp.check_checksum:TRUE -Y 'tcp.checksum.ffff' \
    -T fields -e frame.number 2>/dev/null | wc -l)
  printf '%-32s %6s packets %9s bytes  bad=%s checksum-0xffff=%s\n' "$(basename "$f")" "$n" \
    "$(stat -c %s "$f")" "$bad" "$ffff" >&2
  [[ $bad -eq 0 && $n -gt 0 ]] || status=1
done
[[ $status -eq 0 ]] || die "a capture is empty or has bad checksums / malformed packets"
log "done"
