//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers, as far as a TCP endpoint needs them.
//!
//! Parsed by hand over the byte slice: every length is checked before it is used, so no input can
//! make an index panic. Must not depend on the transport modules.

use super::checksum::internet_checksum;
use super::{ChecksumMode, Layer, WireError, WireErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of ICMPv4.
pub const IPPROTO_ICMP: u8 = 1;
/// IPv6 next-header value of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// IPv6 extension header numbers walked by `parse_v6` (RFC 8200 §4, RFC 4302).
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_ESP: u8 = 50;
const IPV6_AH: u8 = 51;
const IPV6_DEST_OPTS: u8 = 60;

/// ECN field: not ECN-capable transport (RFC 3168 §5).
pub const ECN_NOT_ECT: u8 = 0b00;
/// ECN field: ECT(1).
pub const ECN_ECT1: u8 = 0b01;
/// ECN field: ECT(0), what an ECN-capable TCP sender marks (RFC 3168 §6.1.2).
pub const ECN_ECT0: u8 = 0b10;
/// ECN field: Congestion Experienced, set by a router instead of dropping.
pub const ECN_CE: u8 = 0b11;

/// The meaning of an IP header: addresses, transport protocol, hop limit, ECN field and payload
/// length.
///
/// The family is that of `src` and `dst`, which must agree. Extension headers and IPv4 options
/// are not kept; emitting writes a plain 20-byte IPv4 or 40-byte IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRepr {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol (IPv4 protocol field, or the last IPv6 next header).
    pub protocol: u8,
    /// TTL or hop limit.
    pub hop_limit: u8,
    /// The ECN field (RFC 3168 §5), the two low bits of the IPv4 TOS or IPv6 traffic class:
    /// [`ECN_NOT_ECT`], [`ECN_ECT1`], [`ECN_ECT0`] or [`ECN_CE`]. The DSCP bits are not kept.
    pub ecn: u8,
    /// Length of the transport header and payload.
    pub payload_len: usize,
}

impl IpRepr {
    /// The length of the header `emit` writes: 20 for IPv4, 40 for IPv6.
    pub fn header_len(&self) -> usize {
        if self.src.is_ipv4() {
            20
        } else {
            40
        }
    }

    /// Writes the header for a payload of `payload_len` bytes into `buf` (exactly `header_len()`
    /// bytes), with the IPv4 header checksum. IPv4 gets DF set and identification 0.
    #[inline]
    pub fn emit(&self, payload_len: usize, buf: &mut [u8]) -> Result<(), WireError> {
        let hlen = self.header_len();
        if buf.len() < hlen {
            return Err(WireError::truncated(Layer::Ip, 0, hlen, buf.len()));
        }
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let total = payload_len + 20;
                let Ok(total16) = u16::try_from(total) else {
                    return Err(WireError {
                        layer: Layer::Ipv4,
                        offset: 2,
                        kind: WireErrorKind::BadLength(total),
                    });
                };
                let h = &mut buf[..20];
                h[0] = 0x45;
                h[1] = self.ecn & 3;
                h[2..4].copy_from_slice(&total16.to_be_bytes());
                h[4..6].copy_from_slice(&[0, 0]);
                h[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF, offset 0
                h[8] = self.hop_limit;
                h[9] = self.protocol;
                h[10..12].copy_from_slice(&[0, 0]);
                h[12..16].copy_from_slice(&src.octets());
                h[16..20].copy_from_slice(&dst.octets());
                let c = !internet_checksum(0, h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                Ok(())
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let Ok(len16) = u16::try_from(payload_len) else {
                    return Err(WireError {
                        layer: Layer::Ipv6,
                        offset: 4,
                        kind: WireErrorKind::BadLength(payload_len),
                    });
                };
                let h = &mut buf[..40];
                h[0..4].copy_from_slice(&[0x60, (self.ecn & 3) << 4, 0, 0]);
                h[4..6].copy_from_slice(&len16.to_be_bytes());
                h[6] = self.protocol;
                h[7] = self.hop_limit;
                h[8..24].copy_from_slice(&src.octets());
                h[24..40].copy_from_slice(&dst.octets());
                Ok(())
            }
            _ => Err(WireError { layer: Layer::Ip, offset: 0, kind: WireErrorKind::MixedFamilies }),
        }
    }
}

/// Parses an IP header (either family) and returns it with exactly its payload and the payload's
/// offset from the start of `data` (to make transport error offsets datagram-relative).
#[inline]
pub(crate) fn parse(data: &[u8], checksums: ChecksumMode) -> Result<(IpRepr, &[u8], usize), WireError> {
    let Some(&first) = data.first() else {
        return Err(WireError::truncated(Layer::Ip, 0, 1, 0));
    };
    match first >> 4 {
        4 => parse_v4(data, checksums),
        6 => parse_v6(data),
        v => Err(WireError { layer: Layer::Ip, offset: 0, kind: WireErrorKind::BadVersion(v) }),
    }
}

#[inline]
fn parse_v4(data: &[u8], checksums: ChecksumMode) -> Result<(IpRepr, &[u8], usize), WireError> {
    let err = |offset, kind| WireError { layer: Layer::Ipv4, offset, kind };
    if data.len() < 20 {
        return Err(WireError::truncated(Layer::Ipv4, 0, 20, data.len()));
    }
    let ihl = data[0] & 0x0f;
    if ihl < 5 {
        return Err(err(0, WireErrorKind::HeaderLenTooSmall(ihl)));
    }
    let hlen = usize::from(ihl) * 4;
    if data.len() < hlen {
        return Err(WireError::truncated(Layer::Ipv4, 0, hlen, data.len()));
    }
    let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
    // RFC 791: total length covers header and data; less than the header, or more than arrived, is
    // impossible. More bytes than `total` is link-layer padding and is ignored.
    if total < hlen || total > data.len() {
        return Err(err(2, WireErrorKind::BadLength(total)));
    }
    let frag = u16::from_be_bytes([data[6], data[7]]);
    let more = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    if more || offset != 0 {
        return Err(err(6, WireErrorKind::Fragment { offset, more }));
    }
    if checksums == ChecksumMode::Verify {
        let header = &data[..hlen];
        if internet_checksum(0, header) != 0xffff {
            let found = u16::from_be_bytes([header[10], header[11]]);
            let partial = internet_checksum(u32::from(internet_checksum(0, &header[..10])), &header[12..]);
            return Err(err(10, WireErrorKind::BadChecksum { found, computed: !partial }));
        }
    }
    let src = Ipv4Addr::new(data[12], data[13], data[14], data[15]);
    let dst = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
    let ip = IpRepr {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        protocol: data[9],
        hop_limit: data[8],
        ecn: data[1] & 3,
        payload_len: total - hlen,
    };
    Ok((ip, &data[hlen..total], hlen))
}

fn parse_v6(data: &[u8]) -> Result<(IpRepr, &[u8], usize), WireError> {
    if data.len() < 40 {
        return Err(WireError::truncated(Layer::Ipv6, 0, 40, data.len()));
    }
    let payload_len = usize::from(u16::from_be_bytes([data[4], data[5]]));
    if 40 + payload_len > data.len() {
        return Err(WireError { layer: Layer::Ipv6, offset: 4, kind: WireErrorKind::BadLength(payload_len) });
    }
    let end = 40 + payload_len;
    let (next, pos) = walk_v6_extensions(data, data[6], 40, end)?;
    let mut src = [0u8; 16];
    src.copy_from_slice(&data[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&data[24..40]);
    let ip = IpRepr {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol: next,
        hop_limit: data[7],
        ecn: (data[1] >> 4) & 3,
        payload_len: end - pos,
    };
    Ok((ip, &data[pos..end], pos))
}

/// Walks IPv6 extension headers (RFC 8200 §4.1) in `data[pos..end]` from next-header value `next`
/// to the upper layer; returns its protocol number and offset. Offsets in errors are from the start
/// of `data`. Shared by datagrams and the datagrams ICMPv6 errors quote.
pub(crate) fn walk_v6_extensions(
    data: &[u8],
    mut next: u8,
    mut pos: usize,
    end: usize,
) -> Result<(u8, usize), WireError> {
    let end = end.min(data.len());
    loop {
        let ext_err = |offset, kind| WireError { layer: Layer::Ipv6Ext, offset, kind };
        let left = end.saturating_sub(pos);
        let ext_len = match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                if left < 2 {
                    return Err(WireError::truncated(Layer::Ipv6Ext, pos, 2, left));
                }
                (usize::from(data[pos + 1]) + 1) * 8
            }
            IPV6_AH => {
                // RFC 4302 §2.2: payload length in 32-bit words, minus 2.
                if left < 2 {
                    return Err(WireError::truncated(Layer::Ipv6Ext, pos, 2, left));
                }
                (usize::from(data[pos + 1]) + 2) * 4
            }
            IPV6_FRAGMENT => {
                if left < 8 {
                    return Err(WireError::truncated(Layer::Ipv6Ext, pos, 8, left));
                }
                let fo = u16::from_be_bytes([data[pos + 2], data[pos + 3]]);
                let offset = fo >> 3;
                let more = fo & 1 != 0;
                // RFC 6946: an atomic fragment (offset 0, M clear) is processed as a whole packet.
                if offset != 0 || more {
                    return Err(ext_err(pos + 2, WireErrorKind::Fragment { offset, more }));
                }
                8
            }
            IPV6_ESP => return Err(ext_err(pos, WireErrorKind::UnsupportedExtension(next))),
            _ => return Ok((next, pos)),
        };
        if left < ext_len {
            return Err(WireError::truncated(Layer::Ipv6Ext, pos, ext_len, left));
        }
        next = data[pos];
        pos += ext_len;
    }
}
