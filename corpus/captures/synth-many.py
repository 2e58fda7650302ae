#!/usr/bin/env python3
"""Writes a pcap of N synthetic, correct HTTP/1.0 connections, for measuring replay (issue 14).

No root, no network: every packet is made here. Client 10.77.0.1, server 10.77.0.2:80; client
ports cycle through 20000..59999 with fresh ISNs, CONCURRENT connections overlap in time (the
next one opens before the last closes), each is SYN, SYN-ACK, ACK, request, ACK, response
(RESPONSE bytes in MSS segments, each acknowledged), FIN from the server, ACK, FIN, ACK.
Checksums are right; link type Ethernet, microsecond stamps.

Usage: corpus/captures/synth-many.py N OUT.pcap [--response BYTES] [--concurrent K]
Example: a 20,000-connection capture, and one of about 1 GB:
  corpus/captures/synth-many.py 20000 /work/tmp-replay/many-20k.pcap
  corpus/captures/synth-many.py 60000 /work/tmp-replay/many-1g.pcap --response 14600
"""
import argparse
import struct
import sys

MSS = 1460
CLIENT = bytes([10, 77, 0, 1])
SERVER = bytes([10, 77, 0, 2])
ETH = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"


def csum_add(data, acc=0):
    if len(data) % 2:
        data += b"\x00"
    acc += sum(struct.unpack("!%dH" % (len(data) // 2), data))
    return acc


def fold(acc):
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return (~acc) & 0xFFFF


def packet(src, dst, sport, dport, seq, ack, flags, payload, payload_sum, opts=b""):
    hl = 20 + len(opts)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (hl // 4) << 4, flags, 65535, 0, 0) + opts
    pseudo = src + dst + struct.pack("!BBH", 0, 6, hl + len(payload))
    c = fold(csum_add(pseudo + tcp, payload_sum))
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    total = 20 + hl + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", fold(csum_add(ip))) + ip[12:]
    return ETH + ip + tcp + payload


def connection(i, response_chunks, request, sums):
    """(offset in microseconds, frame) of connection i, offsets from its own start."""
    cport = 20000 + i % 40000
    ciss = (i * 2654435761) & 0xFFFFFFFF
    siss = (i * 40503 + 12345) & 0xFFFFFFFF
    mss = struct.pack("!BBH", 2, 4, MSS)
    c, s = ciss, siss
    out = []
    t = 0

    def add(dt, from_client, seq, ack, flags, payload=b"", psum=0, opts=b""):
        nonlocal t
        t += dt
        if from_client:
            f = packet(CLIENT, SERVER, cport, 80, seq, ack, flags, payload, psum, opts)
        else:
            f = packet(SERVER, CLIENT, 80, cport, seq, ack, flags, payload, psum, opts)
        out.append((t, f))

    SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
    add(0, True, c, 0, SYN, opts=mss)
    add(50, False, s, c + 1, SYN | ACK, opts=mss)
    c += 1
    s += 1
    add(50, True, c, s, ACK)
    add(10, True, c, s, PSH | ACK, request, sums[0])
    c += len(request)
    add(40, False, s, c, ACK)
    for chunk, psum in response_chunks:
        add(20, False, s, c, PSH | ACK, chunk, psum)
        s += len(chunk)
        add(30, True, c, s, ACK)
    add(10, False, s, c, FIN | ACK)
    s += 1
    add(40, True, c, s, ACK)
    add(10, True, c, s, FIN | ACK)
    c += 1
    add(40, False, s, c, ACK)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    ap.add_argument("--response", type=int, default=1000, help="response bytes (default 1000)")
    ap.add_argument("--concurrent", type=int, default=4, help="connections open at once (default 4)")
    a = ap.parse_args()
    if a.n < 1 or a.concurrent < 1 or a.response < 0:
        sys.exit("synth-many: N and --concurrent must be positive, --response not negative")
    request = b"GET / HTTP/1.0\r\nHost: 10.77.0.2\r\n\r\n"
    body = (b"x" * 64 + b"\n") * (a.response // 65 + 1)
    body = b"HTTP/1.0 200 OK\r\n\r\n" + body
    body = body[: max(a.response, 1)]
    chunks = [body[k : k + MSS] for k in range(0, len(body), MSS)]
    response_chunks = [(ch, csum_add(ch)) for ch in chunks]
    sums = [csum_add(request)]
    start = 1_700_000_000 * 1_000_000
    # Each connection lasts `span` µs; starting one every span/concurrent keeps K open at once.
    span = connection(0, response_chunks, request, sums)[-1][0] + 100
    step = max(span // a.concurrent, 1)
    pending = []  # (time, frame) of open connections, merged in time order
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        import heapq

        for i in range(a.n):
            t0 = start + i * step
            while pending and pending[0][0] < t0:
                t, _, frame = heapq.heappop(pending)
                f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)))
                f.write(frame)
            for k, (dt, frame) in enumerate(connection(i, response_chunks, request, sums)):
                heapq.heappush(pending, (t0 + dt, i * 1000 + k, frame))
        while pending:
            t, _, frame = heapq.heappop(pending)
            f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)))
            f.write(frame)


if __name__ == "__main__":
    main()
