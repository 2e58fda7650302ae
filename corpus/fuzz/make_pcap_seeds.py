#!/usr/bin/env python3
"""Makes the seed inputs of the pcap_reader fuzz target from the project's own captures.

Usage: corpus/fuzz/make_pcap_seeds.py

Writes corpus/fuzz/pcap_reader/<capture>-<n>.bin: each capture under corpus/captures/ cut after
whole records (pcap) or whole blocks (pcapng) at about 1 KB and 4 KB, plus one copy cut in the
middle of a record, so the fuzzer starts from every format, link type and timestamp resolution the
project records. Rerunning is idempotent.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURES = os.path.join(HERE, "..", "captures")
OUT = os.path.join(HERE, "pcap_reader")


def cut_points(data):
    """Offsets just after each whole record (pcap) or block (pcapng)."""
    magic = data[:4]
    points = []
    if magic == b"\x0a\x0d\x0d\x0a":
        e = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        pos = 0
        while pos + 12 <= len(data):
            (blen,) = struct.unpack(e + "I", data[pos + 4 : pos + 8])
            if blen < 12:
                break
            pos += blen
            points.append(pos)
        return points
    e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    points.append(pos)
    while pos + 16 <= len(data):
        (incl,) = struct.unpack(e + "I", data[pos + 8 : pos + 12])
        pos += 16 + incl
        points.append(pos)
    return points


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in sorted(os.listdir(CAPTURES)):
        if not name.endswith((".pcap", ".pcapng")):
            continue
        with open(os.path.join(CAPTURES, name), "rb") as f:
            data = f.read()
        points = [p for p in cut_points(data) if p <= len(data)]
        stem = name.replace(".", "-")
        for size in (1024, 4096):
            fit = [p for p in points if p <= size] or points[:1]
            with open(os.path.join(OUT, f"{stem}-{size}.bin"), "wb") as f:
                f.write(data[: fit[-1]])
        # Cut in the middle of the record after the first kilobyte: a truncated file.
        fit = [p for p in points if p <= 1024]
        nxt = [p for p in points if p > 1024]
        if fit and nxt:
            with open(os.path.join(OUT, f"{stem}-cut.bin"), "wb") as f:
                f.write(data[: (fit[-1] + nxt[0]) // 2])


if __name__ == "__main__":
    main()
