//! ICMPv4 (RFC 792, RFC 1191) and ICMPv6 (RFC 4443) messages: echo request and reply, and the
//! error messages a TCP endpoint acts on (destination unreachable, fragmentation needed / packet
//! too big, time exceeded, parameter problem) with the start of the datagram they quote. Anything
//! else is kept as type, code and body.
//!
//! Must not depend on: `crate::tcp` (except `SeqNum`), `crate::stack`.

use super::checksum::{internet_checksum, pseudo_header_sum};
use super::ip::{walk_v6_extensions, IPPROTO_ICMPV6};
use super::{ChecksumMode, IpRepr, Layer, WireError, WireErrorKind};
use crate::tcp::seq::SeqNum;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The message type numbers of one family.
struct Types {
    echo_request: u8,
    echo_reply: u8,
    unreachable: u8,
    time_exceeded: u8,
    param_problem: u8,
}

/// RFC 792.
const V4: Types =
    Types { echo_request: 8, echo_reply: 0, unreachable: 3, time_exceeded: 11, param_problem: 12 };
/// RFC 4443 §3, §4.
const V6: Types =
    Types { echo_request: 128, echo_reply: 129, unreachable: 1, time_exceeded: 3, param_problem: 4 };
/// ICMPv4 Destination Unreachable code 4, "fragmentation needed and DF set" (RFC 792, RFC 1191 §4).
const V4_FRAG_NEEDED: u8 = 4;
/// ICMPv6 Packet Too Big (RFC 4443 §3.2).
const V6_PACKET_TOO_BIG: u8 = 2;

/// The checksum's starting sum: nothing for ICMPv4, the pseudo-header for ICMPv6 (RFC 4443 §2.3).
fn initial_sum(ip: &IpRepr, len: usize) -> u32 {
    if ip.src.is_ipv4() {
        0
    } else {
        pseudo_header_sum(ip.src, ip.dst, IPPROTO_ICMPV6, len)
    }
}

/// An ICMP message of either family (the family is the enclosing `IpRepr`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpRepr<'a> {
    /// Echo request (ICMPv4 type 8, ICMPv6 type 128).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to echo.
        data: &'a [u8],
    },
    /// Echo reply (ICMPv4 type 0, ICMPv6 type 129).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echoed data.
        data: &'a [u8],
    },
    /// Destination Unreachable (ICMPv4 type 3 except code 4, RFC 792; ICMPv6 type 1, RFC 4443
    /// §3.1). The codes differ by family (port unreachable is 3 in ICMPv4, 4 in ICMPv6).
    DestUnreachable {
        /// Code.
        code: u8,
        /// The datagram it is about.
        quote: Quote<'a>,
    },
    /// Fragmentation needed and DF set (ICMPv4 type 3 code 4, MTU in bytes 6..8, RFC 1191 §4) or
    /// Packet Too Big (ICMPv6 type 2, MTU in bytes 4..8, RFC 4443 §3.2).
    PacketTooBig {
        /// The next-hop MTU (0 from an ICMPv4 router older than RFC 1191).
        mtu: u32,
        /// The datagram that was too big.
        quote: Quote<'a>,
    },
    /// Time Exceeded (ICMPv4 type 11, ICMPv6 type 3): code 0 hop limit, 1 reassembly.
    TimeExceeded {
        /// Code.
        code: u8,
        /// The datagram it is about.
        quote: Quote<'a>,
    },
    /// Parameter Problem (ICMPv4 type 12, ICMPv6 type 4).
    ParamProblem {
        /// Code.
        code: u8,
        /// Offset of the offending octet in the quoted datagram (ICMPv4: one byte).
        pointer: u32,
        /// The datagram it is about.
        quote: Quote<'a>,
    },
    /// Any other message.
    Other {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
        /// The four header bytes after the checksum, then the body.
        rest: &'a [u8],
    },
}

/// The start of the datagram an ICMP error is about (RFC 792: its IP header and the first 64 bits
/// of its data; RFC 4443 §2.4 (c): as much as fits), read as far as TCP needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quote<'a> {
    /// The quoted datagram's source: one of ours, when it is about something we sent.
    pub src: IpAddr,
    /// The quoted datagram's destination.
    pub dst: IpAddr,
    /// Its transport protocol (after any IPv6 extension headers).
    pub protocol: u8,
    /// Transport bytes 0..2: the source port of TCP (and UDP).
    pub src_port: u16,
    /// Transport bytes 2..4: the destination port.
    pub dst_port: u16,
    /// Transport bytes 4..8: the TCP sequence number.
    pub seq: SeqNum,
    /// The quoted bytes as they came, from the IP header on; the fields above are read from them
    /// and `emit` writes them.
    pub bytes: &'a [u8],
}

impl<'a> Quote<'a> {
    /// Reads a quoted datagram of the given family: its IP header (IPv4 options and IPv6 extension
    /// headers skipped) and at least 8 transport bytes. The quoted IPv4 header checksum is not
    /// checked (the datagram may be cut short, and routers are not asked to keep it valid).
    ///
    /// Errors are at [`Layer::IcmpQuote`], offsets from the start of `bytes`; fewer bytes than the
    /// header and 8 more is [`WireErrorKind::Truncated`].
    pub fn parse(bytes: &'a [u8], ipv4: bool) -> Result<Self, WireError> {
        let err = |offset, kind| WireError { layer: Layer::IcmpQuote, offset, kind };
        let min = if ipv4 { 28 } else { 48 };
        let Some(&first) = bytes.first() else {
            return Err(WireError::truncated(Layer::IcmpQuote, 0, min, 0));
        };
        let version = first >> 4;
        if version != if ipv4 { 4 } else { 6 } {
            return Err(err(0, WireErrorKind::BadVersion(version)));
        }
        let (src, dst, protocol, at) = if ipv4 {
            let ihl = first & 0x0f;
            if ihl < 5 {
                return Err(err(0, WireErrorKind::HeaderLenTooSmall(ihl)));
            }
            let hlen = usize::from(ihl) * 4;
            if bytes.len() < hlen + 8 {
                return Err(WireError::truncated(Layer::IcmpQuote, 0, hlen + 8, bytes.len()));
            }
            // A later fragment carries no transport header to read ports from.
            let frag = u16::from_be_bytes([bytes[6], bytes[7]]);
            if frag & 0x1fff != 0 {
                let kind = WireErrorKind::Fragment { offset: frag & 0x1fff, more: frag & 0x2000 != 0 };
                return Err(err(6, kind));
            }
            let src = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
            let dst = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
            (IpAddr::V4(src), IpAddr::V4(dst), bytes[9], hlen)
        } else {
            if bytes.len() < min {
                return Err(WireError::truncated(Layer::IcmpQuote, 0, min, bytes.len()));
            }
            let (protocol, at) = walk_v6_extensions(bytes, bytes[6], 40, bytes.len()).map_err(|e| {
                let kind = match e.kind {
                    // Counted from the quoted IP header, as this layer's lengths are.
                    WireErrorKind::Truncated { required, len } => {
                        return WireError::truncated(
                            Layer::IcmpQuote,
                            0,
                            e.offset + required + 8,
                            e.offset + len,
                        )
                    }
                    k => k,
                };
                err(e.offset, kind)
            })?;
            if bytes.len() < at + 8 {
                return Err(WireError::truncated(Layer::IcmpQuote, 0, at + 8, bytes.len()));
            }
            let mut src = [0u8; 16];
            src.copy_from_slice(&bytes[8..24]);
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&bytes[24..40]);
            (IpAddr::V6(Ipv6Addr::from(src)), IpAddr::V6(Ipv6Addr::from(dst)), protocol, at)
        };
        let t = &bytes[at..at + 8];
        Ok(Quote {
            src,
            dst,
            protocol,
            src_port: u16::from_be_bytes([t[0], t[1]]),
            dst_port: u16::from_be_bytes([t[2], t[3]]),
            seq: SeqNum(u32::from_be_bytes([t[4], t[5], t[6], t[7]])),
            bytes,
        })
    }
}

impl<'a> IcmpRepr<'a> {
    /// Parses an ICMP message carried in `ip` (ICMPv6 checksums cover a pseudo-header).
    ///
    /// Every ICMP message starts with an 8-byte header (RFC 792, RFC 4443 §2.1); fewer bytes is
    /// [`WireErrorKind::Truncated`]. An error message whose quote [`Quote::parse`] refuses is
    /// refused with that error (at [`Layer::IcmpQuote`]). Offsets are relative to the start of
    /// the message.
    pub fn parse(ip: &IpRepr, data: &'a [u8], checksums: ChecksumMode) -> Result<Self, WireError> {
        let v4 = ip.src.is_ipv4();
        let layer = if v4 { Layer::Icmpv4 } else { Layer::Icmpv6 };
        if data.len() < 8 {
            return Err(WireError::truncated(layer, 0, 8, data.len()));
        }
        if checksums == ChecksumMode::Verify {
            let init = initial_sum(ip, data.len());
            let partial = internet_checksum(internet_checksum(init, &data[..2]).into(), &data[4..]);
            let found = u16::from_be_bytes([data[2], data[3]]);
            if internet_checksum(partial.into(), &data[2..4]) != 0xffff {
                return Err(WireError {
                    layer,
                    offset: 2,
                    kind: WireErrorKind::BadChecksum { found, computed: !partial },
                });
            }
        }
        let types = if v4 { &V4 } else { &V6 };
        let icmp_type = data[0];
        let code = data[1];
        let word = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let body = &data[8..];
        let quote = || {
            Quote::parse(body, v4).map_err(|mut e| {
                e.offset += 8;
                e
            })
        };
        let ident = (word >> 16) as u16;
        let seq_no = word as u16;
        Ok(match icmp_type {
            t if t == types.echo_request && code == 0 => IcmpRepr::EchoRequest { ident, seq_no, data: body },
            t if t == types.echo_reply && code == 0 => IcmpRepr::EchoReply { ident, seq_no, data: body },
            // RFC 1191 §4: "the low-order 16 bits of the ICMP header field that is labelled
            // unused"; the high-order 16 bits are ignored.
            t if t == types.unreachable && v4 && code == V4_FRAG_NEEDED => {
                IcmpRepr::PacketTooBig { mtu: word & 0xffff, quote: quote()? }
            }
            // RFC 4443 §3.2: the code is "ignored by the receiver".
            V6_PACKET_TOO_BIG if !v4 => IcmpRepr::PacketTooBig { mtu: word, quote: quote()? },
            t if t == types.unreachable => IcmpRepr::DestUnreachable { code, quote: quote()? },
            t if t == types.time_exceeded => IcmpRepr::TimeExceeded { code, quote: quote()? },
            t if t == types.param_problem => {
                // RFC 792: a one-byte pointer; RFC 4443 §3.4: 32 bits.
                let pointer = if v4 { word >> 24 } else { word };
                IcmpRepr::ParamProblem { code, pointer, quote: quote()? }
            }
            _ => IcmpRepr::Other { icmp_type, code, rest: &data[4..] },
        })
    }

    /// The datagram an error message quotes; `None` for echo and other messages.
    pub fn quote(&self) -> Option<&Quote<'a>> {
        match self {
            IcmpRepr::DestUnreachable { quote, .. }
            | IcmpRepr::PacketTooBig { quote, .. }
            | IcmpRepr::TimeExceeded { quote, .. }
            | IcmpRepr::ParamProblem { quote, .. } => Some(quote),
            IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. } | IcmpRepr::Other { .. } => None,
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. } => 8 + data.len(),
            IcmpRepr::Other { rest, .. } => 4 + rest.len(),
            IcmpRepr::DestUnreachable { quote, .. }
            | IcmpRepr::PacketTooBig { quote, .. }
            | IcmpRepr::TimeExceeded { quote, .. }
            | IcmpRepr::ParamProblem { quote, .. } => 8 + quote.bytes.len(),
        }
    }

    /// Writes the message with its checksum into `buf` (exactly `buffer_len()` bytes).
    ///
    /// Unused header bytes are written as zero. An MTU or pointer too large for its ICMPv4 field
    /// is [`WireErrorKind::BadLength`]. `DestUnreachable` with ICMPv4 code 4 is written with a
    /// zero MTU, and so parses back as `PacketTooBig`.
    pub fn emit(&self, ip: &IpRepr, buf: &mut [u8]) -> Result<(), WireError> {
        let v4 = ip.src.is_ipv4();
        let layer = if v4 { Layer::Icmpv4 } else { Layer::Icmpv6 };
        if v4 != ip.dst.is_ipv4() {
            return Err(WireError { layer, offset: 0, kind: WireErrorKind::MixedFamilies });
        }
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(WireError::truncated(layer, 0, len, buf.len()));
        }
        let too_large =
            |offset, v: u32| WireError { layer, offset, kind: WireErrorKind::BadLength(v as usize) };
        let types = if v4 { &V4 } else { &V6 };
        let (icmp_type, code, word, body) = match *self {
            IcmpRepr::EchoRequest { ident, seq_no, data } => {
                (types.echo_request, 0, u32::from(ident) << 16 | u32::from(seq_no), data)
            }
            IcmpRepr::EchoReply { ident, seq_no, data } => {
                (types.echo_reply, 0, u32::from(ident) << 16 | u32::from(seq_no), data)
            }
            IcmpRepr::DestUnreachable { code, quote } => (types.unreachable, code, 0, quote.bytes),
            IcmpRepr::PacketTooBig { mtu, quote } if v4 => {
                if mtu > 0xffff {
                    return Err(too_large(6, mtu));
                }
                (types.unreachable, V4_FRAG_NEEDED, mtu, quote.bytes)
            }
            IcmpRepr::PacketTooBig { mtu, quote } => (V6_PACKET_TOO_BIG, 0, mtu, quote.bytes),
            IcmpRepr::TimeExceeded { code, quote } => (types.time_exceeded, code, 0, quote.bytes),
            IcmpRepr::ParamProblem { code, pointer, quote } => {
                let word = if !v4 {
                    pointer
                } else if pointer <= 0xff {
                    pointer << 24
                } else {
                    return Err(too_large(4, pointer));
                };
                (types.param_problem, code, word, quote.bytes)
            }
            IcmpRepr::Other { icmp_type, code, rest } => {
                // The four header bytes are part of `rest`: written as they are, however long.
                let buf = &mut buf[..len];
                buf[0] = icmp_type;
                buf[1] = code;
                buf[4..].copy_from_slice(rest);
                finish_checksum(ip, buf);
                return Ok(());
            }
        };
        let buf = &mut buf[..len];
        buf[0] = icmp_type;
        buf[1] = code;
        buf[4..8].copy_from_slice(&word.to_be_bytes());
        buf[8..].copy_from_slice(body);
        finish_checksum(ip, buf);
        Ok(())
    }
}

/// Fills in the checksum of a message written into `buf` (all of it).
fn finish_checksum(ip: &IpRepr, buf: &mut [u8]) {
    buf[2..4].copy_from_slice(&[0, 0]);
    let c = !internet_checksum(initial_sum(ip, buf.len()), buf);
    buf[2..4].copy_from_slice(&c.to_be_bytes());
}
