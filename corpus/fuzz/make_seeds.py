#!/usr/bin/env python3
"""Makes the seed inputs of the wire fuzz targets from public captures.

Usage: corpus/fuzz/make_seeds.py [CAPTURE_DIR]   (default /work/shared/captures)

Writes corpus/fuzz/segment_parser/<capture>-<frame>.bin (the IP datagram of a frame, link layer
stripped) for a few frames of each distinct shape (family, TCP flags, option kinds, data or not),
and corpus/fuzz/tcp_options/<capture>-<frame>.bin (the TCP option area of a frame) for each distinct
option layout (kinds and lengths), plus a few hand-made option areas at the edges of the syntax. Only classic pcap
(micro- and nanosecond) is read; pcapng files and frames cut by the snap length are skipped. Rerunning is idempotent.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_DATAGRAMS = 60
MAX_PER_CAPTURE = 3


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return  # pcapng or unknown
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    pos, n = 24, 0
    while pos + 16 <= len(data):
        incl, orig = struct.unpack(e + "II", data[pos + 8 : pos + 16])
        pkt = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        n += 1
        if incl < orig:
            continue  # cut by the snap length: not a whole datagram
        ip = strip_link(linktype, pkt)
        if ip:
            yield n, ip


def strip_link(linktype, pkt):
    if linktype == 1:  # Ethernet, with any number of VLAN tags
        off, etype = 12, None
        while off + 2 <= len(pkt):
            etype = struct.unpack(">H", pkt[off : off + 2])[0]
            if etype in (0x8100, 0x88A8):
                off += 4
                continue
            break
        return pkt[off + 2 :] if etype in (0x0800, 0x86DD) else None
    if linktype == 0:  # BSD loopback
        return pkt[4:]
    if linktype in (12, 101, 228, 229):  # raw IP
        return pkt
    if linktype == 113:  # Linux SLL
        return pkt[16:]
    if linktype == 276:  # Linux SLL2
        return pkt[20:]
    return None


def tcp_parts(ip):
    """(shape key, option area) of a TCP datagram, or None."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        hl, proto = (ip[0] & 15) * 4, ip[9]
    elif v == 6 and len(ip) >= 40:
        hl, proto = 40, ip[6]
    else:
        return None
    tcp = ip[hl:]
    if proto != 6 or len(tcp) < 20:
        return ("other", v, proto), None
    doff = (tcp[12] >> 4) * 4
    area = tcp[20:doff]
    return (v, tcp[13], layout(area), len(tcp) > doff), area


def layout(area):
    """The option kinds and lengths in wire order: two areas with the same layout differ only in values."""
    out, i = [], 0
    while i < len(area):
        k = area[i]
        if k in (0, 1):
            out.append((k,))
            if k == 0:
                break
            i += 1
            continue
        if i + 1 >= len(area) or area[i + 1] < 2:
            out.append((k, None))
            break
        out.append((k, area[i + 1]))
        i += area[i + 1]
    return tuple(out)


# Option areas at the edges of the syntax (names say what each holds).
HAND_MADE = {
    "empty-sack": bytes([1, 1, 5, 2]),
    "four-sack-blocks": bytes([5, 34]) + bytes(range(32)) + bytes([1, 1, 0, 0]),
    "unknown-kinds": bytes([30, 4, 0xAA, 0xBB, 254, 6, 0xF9, 0x89, 1, 2, 1, 0]),
    "eol-then-garbage": bytes([2, 4, 5, 0xB4, 0, 3, 3, 7]),
    "mss-bad-length": bytes([2, 3, 5, 0xB4]),
    "zero-length": bytes([99, 0, 1, 1]),
    "overrun": bytes([8, 10, 0, 0, 0, 1]),
    "lone-kind-at-end": bytes([1, 1, 1, 3]),
    "ws-15": bytes([1, 3, 3, 15]),
    "duplicate-mss": bytes([2, 4, 5, 0xB4, 2, 4, 0x3F, 0xC4]),
}


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/captures"
    seg_dir = os.path.join(HERE, "segment_parser")
    opt_dir = os.path.join(HERE, "tcp_options")
    os.makedirs(seg_dir, exist_ok=True)
    os.makedirs(opt_dir, exist_ok=True)
    shapes, areas, written = set(), set(), 0
    for name in sorted(os.listdir(src)):
        if not name.endswith(".pcap"):
            continue
        stem, per = name[: -len(".pcap")], 0
        for n, ip in frames(os.path.join(src, name)):
            parts = tcp_parts(ip)
            if parts is None:
                continue
            shape, area = parts
            if area and layout(area) not in areas:
                areas.add(layout(area))
                with open(os.path.join(opt_dir, f"{stem}-{n:04}.bin"), "wb") as f:
                    f.write(area)
            if shape in shapes or per >= MAX_PER_CAPTURE or written >= MAX_DATAGRAMS:
                continue
            shapes.add(shape)
            per += 1
            written += 1
            with open(os.path.join(seg_dir, f"{stem}-{n:04}.bin"), "wb") as f:
                f.write(ip)
    for stem, area in HAND_MADE.items():
        with open(os.path.join(opt_dir, f"hand-{stem}.bin"), "wb") as f:
            f.write(area)
    print(f"{written} datagrams, {len(areas) + len(HAND_MADE)} option areas")


if __name__ == "__main__":
    main()
