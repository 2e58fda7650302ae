//! Transmit segmentation offload on a TUN device opened with `IFF_VNET_HDR`: consecutive
//! full-sized segments of one TCP connection that the stack sends in one drain are written as one
//! super-segment of up to 64 KiB behind a virtio-net header (`VIRTIO_NET_HDR_GSO_TCPV4` or
//! `_TCPV6`, `gso_size` the segments' payload, `NEEDS_CSUM` with the pseudo-header sum in the TCP
//! checksum field), one `writev(2)` for what would be up to 45 writes at MTU 1500. The kernel
//! takes it as it takes a GRO packet from a NIC, or cuts it into the segments it stands for when
//! it forwards it (`tcp_gso_segment`).
//!
//! A super-segment stands for exactly the datagrams it was made of: the segments of a batch have
//! the same IP and TCP headers apart from what segmentation rewrites (IPv4 total length,
//! identification and header checksum, IPv6 payload length, the sequence number, the TCP
//! checksum), consecutive sequence numbers and the same payload size, the last one possibly
//! shorter; PSH only on the last, whose flag the super-segment carries (segmentation clears
//! FIN and PSH on all but the last). SYN, FIN, RST, URG and CWR segments are never batched (CWR
//! would need `VIRTIO_NET_HDR_GSO_ECN` and is sent once), nor are segments with IPv4 options or
//! IPv6 extension headers. utcp's IPv4 datagrams carry DF and identification 0: atomic
//! datagrams, whose identification means nothing (RFC 6864 §4.1), so it does not matter that
//! segmentation numbers them.
//!
//! The stack lends a datagram only for the call, so the batch copies each one into a buffer of
//! its own, back to back (one copy more than writing it at once), and writes their payloads from
//! there with one iovec each, so building the super-segment copies nothing more; if the kernel
//! refuses it, the originals are written one by one from the same buffer.
//!
//! Must not depend on: system calls (the writer is given), the stack's state.

use crate::wire::{internet_checksum, pseudo_header_sum, TcpFlags};
use std::io::{self, IoSlice};
use std::net::IpAddr;
use std::ops::Range;

/// `struct virtio_net_hdr` (10 bytes, native byte order): what precedes each datagram on a
/// device opened with `IFF_VNET_HDR`.
pub(crate) const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the transport checksum holds only the pseudo-header sum.
pub(crate) const VNET_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
const GSO_TCPV6: u8 = 4;
/// The most a super-segment may hold: IPv4's total length and IPv6's payload length are 16 bits.
const MAX_SUPER: usize = 65535;
/// Offset of the checksum in the TCP header.
const TCP_CHECKSUM: usize = 16;
/// Flags that keep a segment out of every batch.
const NEVER: u16 =
    TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0 | TcpFlags::URG.0 | TcpFlags::CWR.0 | TcpFlags::NS.0;

/// The virtio-net header of a datagram that is complete as it is: no segmentation, checksums
/// done.
pub(crate) const PLAIN: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// Where a TCP segment's parts are in its datagram, for one that may be batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Length of the IP header (20 for IPv4 without options, 40 for IPv6).
    ip_len: usize,
    /// Length of the TCP header with its options.
    tcp_len: usize,
    /// Bytes of payload.
    payload: usize,
    /// The sequence number.
    seq: u32,
    /// The TCP flags (ACK, PSH and ECE are all a batched segment may have).
    flags: u16,
    v6: bool,
}

impl Layout {
    fn headers(&self) -> usize {
        self.ip_len + self.tcp_len
    }
}

/// The layout of `d` if it is a TCP segment with payload that may join a batch: IPv4 without
/// options and not a fragment, or IPv6 with TCP as its first next header; ACK set and none of
/// [`NEVER`].
pub(crate) fn layout(d: &[u8]) -> Option<Layout> {
    let (ip_len, v6) = match d.first()? >> 4 {
        4 => {
            let (ihl, total, frag, proto) = (d[0] & 0x0f, be16(d, 2)?, be16(d, 6)?, *d.get(9)?);
            // Not a fragment: MF clear and offset zero (DF may be set).
            if ihl != 5 || usize::from(total) != d.len() || frag & 0x3fff != 0 || proto != 6 {
                return None;
            }
            (20, false)
        }
        6 => {
            if usize::from(be16(d, 4)?) + 40 != d.len() || *d.get(6)? != 6 {
                return None;
            }
            (40, true)
        }
        _ => return None,
    };
    let tcp = d.get(ip_len..)?;
    let tcp_len = usize::from(*tcp.get(12)? >> 4) * 4;
    let flags = be16(tcp, 12)? & 0x01ff;
    if tcp_len < 20 || tcp_len > tcp.len() || flags & TcpFlags::ACK.0 == 0 || flags & NEVER != 0 {
        return None;
    }
    let payload = tcp.len() - tcp_len;
    if payload == 0 {
        return None;
    }
    let seq = u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?);
    Some(Layout { ip_len, tcp_len, payload, seq, flags, v6 })
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Header bytes that segmentation rewrites, so that they may differ within a batch.
fn rewritten(l: &Layout) -> [Range<usize>; 5] {
    let t = l.ip_len;
    // IPv4: total length and identification, header checksum. IPv6: the payload length (and
    // an empty range, to keep the list's shape).
    let ip: [Range<usize>; 2] = if l.v6 { [4..6, 6..6] } else { [2..6, 10..12] };
    let [a, b] = ip;
    // The flags byte is compared apart (PSH may differ on the last segment).
    [a, b, t + 4..t + 8, t + 13..t + 14, t + TCP_CHECKSUM..t + TCP_CHECKSUM + 2]
}

/// Counters of the batcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GsoStats {
    /// Super-segments written (each of at least two segments).
    pub super_segments: u64,
    /// Segments they carried.
    pub segments: u64,
    /// Super-segments the device refused (their segments then went one by one).
    pub refused: u64,
}

/// The segments held back for one super-segment.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The original datagrams back to back.
    arena: Vec<u8>,
    /// Where each is in `arena`.
    spans: Vec<Range<usize>>,
    /// The first one's layout (`None`: the batch is empty).
    first: Option<Layout>,
    /// The sequence number the next segment must have.
    next_seq: u32,
    /// Payload bytes held.
    bytes: usize,
    /// The last segment held was short or had PSH: nothing may follow it.
    closed: bool,
    /// Scratch: the super-segment's virtio-net header and IP and TCP headers.
    header: Vec<u8>,
    pub(crate) stats: GsoStats,
}

impl Batch {
    /// Whether no segment is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Whether `d`, of layout `l`, may follow the segments held.
    fn continues(&self, d: &[u8], l: &Layout) -> bool {
        let Some(f) = &self.first else { return false };
        // IPv4's total length counts the IP header, IPv6's payload length does not.
        let limit = MAX_SUPER + if f.v6 { 40 } else { 0 };
        if self.closed
            || l.seq != self.next_seq
            || l.payload > f.payload
            || l.headers() != f.headers()
            || l.v6 != f.v6
            || f.headers() + self.bytes + l.payload > limit
            || (l.flags & !TcpFlags::PSH.0) != f.flags
        {
            return false;
        }
        let first = &self.arena[self.spans[0].start..][..f.headers()];
        let mut at = 0;
        for r in rewritten(f) {
            if first[at..r.start] != d[at..r.start] {
                return false;
            }
            at = r.end;
        }
        first[at..] == d[at..f.headers()]
    }

    /// Holds `d` if it continues the batch (true), or else leaves it (false): the caller then
    /// flushes the batch and either [`Batch::start`]s a new one with `d` or writes it alone.
    pub(crate) fn take(&mut self, d: &[u8], l: &Layout) -> bool {
        if !self.continues(d, l) {
            return false;
        }
        self.hold(d, l);
        true
    }

    /// Starts a batch with `d`, which must be empty (flushed).
    pub(crate) fn start(&mut self, d: &[u8], l: &Layout) {
        debug_assert!(self.is_empty(), "start on a batch that holds segments");
        self.arena.clear();
        self.spans.clear();
        self.bytes = 0;
        // A first segment with PSH starts a batch of one.
        self.first = Some(Layout { flags: l.flags & !TcpFlags::PSH.0, ..*l });
        self.hold(d, l);
    }

    fn hold(&mut self, d: &[u8], l: &Layout) {
        let at = self.arena.len();
        self.arena.extend_from_slice(d);
        self.spans.push(at..at + d.len());
        self.next_seq = l.seq.wrapping_add(l.payload as u32);
        self.bytes += l.payload;
        let full = self.first.is_some_and(|f| l.payload == f.payload);
        self.closed = !full || l.flags & TcpFlags::PSH.0 != 0;
    }

    /// Writes what is held through `write` (one datagram per call, its virtio-net header first)
    /// and empties the batch: one segment as it is, two or more as one super-segment. If the
    /// super-segment is refused, the segments are written one by one and `Err` says why the
    /// super-segment was refused (the caller may stop batching). Datagrams refused one by one
    /// are counted into `errors` and dropped, as every device drops them (TCP retransmits).
    pub(crate) fn flush(
        &mut self,
        errors: &mut u64,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> Result<(), io::Error> {
        let Some(f) = self.first.take() else { return Ok(()) };
        let mut refused = Ok(());
        if self.spans.len() > 1 {
            self.build_header(&f);
            let mut iov = Vec::with_capacity(self.spans.len() + 1);
            iov.push(IoSlice::new(&self.header));
            iov.extend(self.spans.iter().map(|s| IoSlice::new(&self.arena[s.start + f.headers()..s.end])));
            match write(&iov) {
                Ok(_) => {
                    self.stats.super_segments += 1;
                    self.stats.segments += self.spans.len() as u64;
                    return Ok(());
                }
                Err(e) => {
                    self.stats.refused += 1;
                    refused = Err(e);
                }
            }
        }
        for s in &self.spans {
            if write(&[IoSlice::new(&PLAIN), IoSlice::new(&self.arena[s.clone()])]).is_err() {
                *errors += 1;
            }
        }
        refused
    }

    /// The super-segment's headers into `self.header`: the virtio-net header, then the first
    /// segment's IP and TCP headers with the whole length, the last segment's PSH and the
    /// pseudo-header sum for the kernel to finish.
    fn build_header(&mut self, f: &Layout) {
        let hl = f.headers();
        let first = &self.arena[self.spans[0].start..][..hl];
        let last = &self.arena[self.spans[self.spans.len() - 1].clone()];
        let h = &mut self.header;
        h.clear();
        h.push(VNET_F_NEEDS_CSUM);
        h.push(if f.v6 { GSO_TCPV6 } else { GSO_TCPV4 });
        for v in [hl, f.payload, f.ip_len, TCP_CHECKSUM] {
            h.extend_from_slice(&(v as u16).to_ne_bytes());
        }
        h.extend_from_slice(first);
        let ip = &mut h[VNET_HDR_LEN..];
        let tcp_total = f.tcp_len + self.bytes;
        let (src, dst): (IpAddr, IpAddr) = if f.v6 {
            ip[4..6].copy_from_slice(&(tcp_total as u16).to_be_bytes());
            let a = |r: Range<usize>| IpAddr::from(<[u8; 16]>::try_from(&ip[r]).expect("16 bytes"));
            (a(8..24), a(24..40))
        } else {
            ip[2..4].copy_from_slice(&((f.ip_len + tcp_total) as u16).to_be_bytes());
            ip[10..12].copy_from_slice(&[0, 0]);
            let sum = !internet_checksum(0, &ip[..20]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            let a = |r: Range<usize>| IpAddr::from(<[u8; 4]>::try_from(&ip[r]).expect("4 bytes"));
            (a(12..16), a(16..20))
        };
        let tcp = &mut ip[f.ip_len..];
        tcp[13] |= last[f.ip_len + 13] & TcpFlags::PSH.0 as u8;
        let partial = internet_checksum(pseudo_header_sum(src, dst, 6, tcp_total), &[]);
        tcp[TCP_CHECKSUM..TCP_CHECKSUM + 2].copy_from_slice(&partial.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC4: [u8; 4] = [10, 99, 0, 2];
    const DST4: [u8; 4] = [10, 99, 0, 1];

    /// A TCP segment as the stack emits it: IPv4 (DF, id 0) or IPv6, ACK plus `flags`, a TS
    /// option with `tsval`, full checksums.
    fn segment(v6: bool, port: u16, seq: u32, flags: u16, tsval: u32, payload: &[u8]) -> Vec<u8> {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&port.to_be_bytes());
        tcp.extend_from_slice(&80u16.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&7u32.to_be_bytes());
        tcp.extend_from_slice(&((8u16 << 12) | TcpFlags::ACK.0 | flags).to_be_bytes());
        tcp.extend_from_slice(&[0x10, 0x00, 0, 0, 0, 0]);
        tcp.extend_from_slice(&[1, 1, 8, 10]);
        tcp.extend_from_slice(&tsval.to_be_bytes());
        tcp.extend_from_slice(&9u32.to_be_bytes());
        tcp.extend_from_slice(payload);
        finish(v6, tcp)
    }

    /// `tcp` (its checksum field ignored) in an IP datagram, checksums complete.
    fn finish(v6: bool, mut tcp: Vec<u8>) -> Vec<u8> {
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            ("fd00:99::2".parse().unwrap(), "fd00:99::1".parse().unwrap())
        } else {
            (SRC4.into(), DST4.into())
        };
        tcp[16..18].copy_from_slice(&[0, 0]);
        let sum = !internet_checksum(pseudo_header_sum(src, dst, 6, tcp.len()), &tcp);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        let mut d = Vec::new();
        if v6 {
            d.extend_from_slice(&[0x60, 0, 0, 0]);
            d.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            d.extend_from_slice(&[6, 64]);
            for a in [src, dst] {
                let IpAddr::V6(a) = a else { unreachable!() };
                d.extend_from_slice(&a.octets());
            }
        } else {
            d.extend_from_slice(&[0x45, 0]);
            d.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
            d.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            d.extend_from_slice(&SRC4);
            d.extend_from_slice(&DST4);
            let sum = !internet_checksum(0, &d);
            d[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        d.extend_from_slice(&tcp);
        d
    }

    /// What a receiver of one written datagram sees: segmentation as the kernel's
    /// `tcp_gso_segment` does it (the headers copied, the sequence number advanced by
    /// `gso_size` per segment, FIN and PSH cleared on all but the last, lengths and checksums
    /// made whole), keeping the IPv4 identification (see the module's note on it).
    fn segmented(write: &[u8]) -> Vec<Vec<u8>> {
        let (vnet, d) = write.split_at(VNET_HDR_LEN);
        let ne = |at: usize| usize::from(u16::from_ne_bytes([vnet[at], vnet[at + 1]]));
        if vnet == PLAIN {
            return vec![d.to_vec()];
        }
        assert_eq!(vnet[0], VNET_F_NEEDS_CSUM);
        let (hdr_len, gso_size, csum_start, csum_offset) = (ne(2), ne(4), ne(6), ne(8));
        let v6 = d[0] >> 4 == 6;
        assert_eq!(vnet[1], if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
        assert_eq!((csum_start, csum_offset), (if v6 { 40 } else { 20 }, 16));
        assert!(d.len() <= MAX_SUPER + if v6 { 40 } else { 0 }, "super-segment of {} bytes", d.len());
        if !v6 {
            assert_eq!(internet_checksum(0, &d[..20]), 0xffff, "IPv4 header checksum");
        }
        let (head, payload) = d.split_at(hdr_len);
        let tcp_len = hdr_len - csum_start;
        assert!(payload.len() > gso_size, "a super-segment of one segment");
        let seq = u32::from_be_bytes(head[csum_start + 4..csum_start + 8].try_into().unwrap());
        let chunks: Vec<&[u8]> = payload.chunks(gso_size).collect();
        chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut tcp = head[csum_start..].to_vec();
                tcp[4..8].copy_from_slice(&seq.wrapping_add((i * gso_size) as u32).to_be_bytes());
                if i + 1 < chunks.len() {
                    tcp[13] &= !((TcpFlags::FIN.0 | TcpFlags::PSH.0) as u8);
                }
                tcp.extend_from_slice(chunk);
                assert_eq!(tcp.len(), tcp_len + chunk.len());
                finish(v6, tcp)
            })
            .collect()
    }

    /// Feeds `datagrams` to a batch as the TUN device does, flushing when one does not continue
    /// it and at the end; returns every write.
    fn run(datagrams: &[Vec<u8>], refuse: bool) -> (Vec<Vec<u8>>, GsoStats, u64) {
        let mut b = Batch::default();
        let mut writes = Vec::new();
        let mut errors = 0;
        let mut write = |iov: &[IoSlice<'_>]| -> io::Result<usize> {
            let w: Vec<u8> = iov.iter().flat_map(|s| s.iter().copied()).collect();
            if refuse && w[..VNET_HDR_LEN] != PLAIN {
                return Err(io::Error::from_raw_os_error(22));
            }
            let n = w.len();
            writes.push(w);
            Ok(n)
        };
        for d in datagrams {
            match layout(d) {
                Some(l) if b.take(d, &l) => {}
                l => {
                    let _ = b.flush(&mut errors, &mut write);
                    match l {
                        Some(l) => b.start(d, &l),
                        None => {
                            let _ = write(&[IoSlice::new(&PLAIN), IoSlice::new(d)]);
                        }
                    }
                }
            }
        }
        let _ = b.flush(&mut errors, &mut write);
        (writes, b.stats, errors)
    }

    fn bulk(v6: bool, n: usize, mss: usize, last: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let len = if i + 1 == n { last } else { mss };
                let flags = if i + 1 == n { TcpFlags::PSH.0 } else { 0 };
                segment(v6, 4000, 1000 + (i * mss) as u32, flags, 77, &vec![i as u8; len])
            })
            .collect()
    }

    #[test]
    fn consecutive_full_segments_go_as_one_super_segment_that_stands_for_them() {
        for v6 in [false, true] {
            let segs = bulk(v6, 5, 1448, 700);
            let (writes, stats, _) = run(&segs, false);
            assert_eq!(writes.len(), 1, "one write for five segments (v6 {v6})");
            let w = &writes[0];
            assert_eq!(w[1], if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
            assert_eq!(u16::from_ne_bytes([w[4], w[5]]), 1448, "gso_size is the payload of the first");
            let ip = &w[VNET_HDR_LEN..];
            assert_eq!(ip.len(), if v6 { 40 } else { 20 } + 32 + 4 * 1448 + 700);
            assert_ne!(ip[if v6 { 40 } else { 20 } + 13] & TcpFlags::PSH.0 as u8, 0, "the last one's PSH");
            assert_eq!(segmented(w), segs);
            assert_eq!(stats, GsoStats { super_segments: 1, segments: 5, refused: 0 });
        }
    }

    #[test]
    fn the_tcp_checksum_field_holds_the_pseudo_header_sum_of_the_whole_length() {
        let segs = bulk(false, 2, 1000, 1000);
        let (writes, ..) = run(&segs, false);
        let ip = &writes[0][VNET_HDR_LEN..];
        let tcp_len = ip.len() - 20;
        let want = internet_checksum(pseudo_header_sum(SRC4.into(), DST4.into(), 6, tcp_len), &[]);
        assert_eq!(be16(ip, 36), Some(want));
        // The kernel's side: the sum from csum_start over everything, complemented, is the
        // checksum of the whole segment, which then verifies.
        let mut whole = ip.to_vec();
        let full = !internet_checksum(0, &whole[20..]);
        whole[36..38].copy_from_slice(&full.to_be_bytes());
        let pseudo = pseudo_header_sum(SRC4.into(), DST4.into(), 6, tcp_len);
        assert_eq!(internet_checksum(pseudo, &whole[20..]), 0xffff);
    }

    #[test]
    fn a_segment_that_does_not_continue_the_batch_ends_it() {
        let mss = 1000;
        let base =
            |seq: u32, flags: u16, ts: u32, port: u16| segment(false, port, seq, flags, ts, &[1; 1000]);
        let cases: [(&str, Vec<u8>); 6] = [
            ("a gap in sequence", base(1000 + 3 * mss, 0, 77, 4000)),
            ("another TS value", base(1000 + 2 * mss, 0, 78, 4000)),
            ("another connection", base(1000 + 2 * mss, 0, 77, 4001)),
            ("FIN", base(1000 + 2 * mss, TcpFlags::FIN.0, 77, 4000)),
            ("CWR", base(1000 + 2 * mss, TcpFlags::CWR.0, 77, 4000)),
            ("longer than the first", segment(false, 4000, 1000 + 2 * mss, 0, 77, &[1; 1001])),
        ];
        for (why, odd) in cases {
            let segs = vec![base(1000, 0, 77, 4000), base(1000 + mss, 0, 77, 4000), odd];
            let (writes, stats, _) = run(&segs, false);
            assert_eq!(writes.len(), 2, "{why}: the batch of two, then the odd one");
            assert_eq!(stats.segments, 2, "{why}");
            let all: Vec<Vec<u8>> = writes.iter().flat_map(|w| segmented(w)).collect();
            assert_eq!(all, segs, "{why}: nothing lost, order kept");
        }
    }

    #[test]
    fn nothing_follows_a_short_segment_or_one_with_psh() {
        let seg = |seq: u32, flags: u16, len: usize| segment(false, 4000, seq, flags, 77, &vec![2; len]);
        for (why, second) in [("short", seg(2000, 0, 500)), ("PSH", seg(2000, TcpFlags::PSH.0, 1000))] {
            let segs = vec![seg(1000, 0, 1000), second, seg(2000 + 1000, 0, 1000)];
            let (writes, ..) = run(&segs, false);
            assert_eq!(writes.len(), 2, "{why}: two segments, then the third alone");
            let all: Vec<Vec<u8>> = writes.iter().flat_map(|w| segmented(w)).collect();
            assert_eq!(all, segs, "{why}");
        }
    }

    #[test]
    fn pure_acks_syns_and_ip_options_are_written_alone() {
        let ack = segment(false, 4000, 1000, 0, 77, &[]);
        let syn = segment(false, 4000, 1000, TcpFlags::SYN.0, 77, &[3; 10]);
        let mut opts = segment(false, 4000, 1000, 0, 77, &[3; 10]);
        opts[0] = 0x46; // IHL 6: an IPv4 option
        for d in [ack, syn, opts] {
            assert_eq!(layout(&d), None);
        }
        assert_eq!(layout(&[0x45]), None, "a truncated datagram");
        assert_eq!(layout(&[]), None);
    }

    #[test]
    fn a_refused_super_segment_goes_out_as_its_segments() {
        let segs = bulk(false, 4, 1448, 1448);
        let (writes, stats, errors) = run(&segs, true);
        assert_eq!(writes.len(), 4);
        let all: Vec<Vec<u8>> = writes.iter().flat_map(|w| segmented(w)).collect();
        assert_eq!(all, segs);
        assert_eq!(stats, GsoStats { super_segments: 0, segments: 0, refused: 1 });
        assert_eq!(errors, 0);
    }

    #[test]
    fn a_super_segment_stays_within_64_kib() {
        let segs = bulk(false, 100, 1448, 1448);
        let (writes, stats, _) = run(&segs, false);
        // (65535 - 20 - 32) / 1448 = 45 segments at most in each.
        assert_eq!(writes.len(), 3);
        assert_eq!(stats.segments, 100);
        let all: Vec<Vec<u8>> = writes.iter().flat_map(|w| segmented(w)).collect();
        assert_eq!(all, segs);
    }

    proptest! {
        /// Whatever the stack sends, the writes stand for exactly those datagrams in order.
        #[test]
        fn writes_stand_for_exactly_the_datagrams_sent(
            steps in prop::collection::vec(
                (any::<bool>(), 0u8..4, 0u32..3, any::<bool>(), 0usize..5),
                0..80,
            ),
            v6 in any::<bool>(),
        ) {
            let mut next = [5000u32, 9000];
            let segs: Vec<Vec<u8>> = steps
                .iter()
                .map(|&(conn, kind, ts, psh, size)| {
                    let c = usize::from(conn);
                    let len = [1200, 1200, 1200, 700, 0][size];
                    // Sometimes a gap or a step back (a retransmission).
                    let seq = match kind { 0 => next[c].wrapping_sub(1200), 1 => next[c] + 1, _ => next[c] };
                    next[c] = seq.wrapping_add(len as u32);
                    let flags = if psh { TcpFlags::PSH.0 } else { 0 };
                    segment(v6, 4000 + u16::from(conn), seq, flags, ts, &vec![kind; len])
                })
                .collect();
            let (writes, stats, _) = run(&segs, false);
            let all: Vec<Vec<u8>> = writes.iter().flat_map(|w| segmented(w)).collect();
            prop_assert_eq!(all, segs.clone());
            prop_assert_eq!(writes.len() as u64 + stats.segments - stats.super_segments, segs.len() as u64);
        }
    }
}
