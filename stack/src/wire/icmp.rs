//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages: echo request and reply are interpreted,
//! everything else is kept as type, code and body.

use super::checksum::{internet_checksum, pseudo_header_sum};
use super::ip::IPPROTO_ICMPV6;
use super::{ChecksumMode, IpRepr, Layer, WireError, WireErrorKind};

/// Echo types per family: (request, reply). RFC 792 and RFC 4443 §4.
const ECHO_V4: (u8, u8) = (8, 0);
const ECHO_V6: (u8, u8) = (128, 129);

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

impl<'a> IcmpRepr<'a> {
    /// Parses an ICMP message carried in `ip` (ICMPv6 checksums cover a pseudo-header).
    ///
    /// Every ICMP message starts with an 8-byte header (RFC 792, RFC 4443 §2.1); fewer bytes is
    /// [`WireErrorKind::Truncated`]. Offsets are relative to the start of the message.
    pub fn parse(ip: &IpRepr, data: &'a [u8], checksums: ChecksumMode) -> Result<Self, WireError> {
        let layer = if ip.src.is_ipv4() { Layer::Icmpv4 } else { Layer::Icmpv6 };
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
        let (request, reply) = if ip.src.is_ipv4() { ECHO_V4 } else { ECHO_V6 };
        let icmp_type = data[0];
        let code = data[1];
        let ident = u16::from_be_bytes([data[4], data[5]]);
        let seq_no = u16::from_be_bytes([data[6], data[7]]);
        Ok(if icmp_type == request && code == 0 {
            IcmpRepr::EchoRequest { ident, seq_no, data: &data[8..] }
        } else if icmp_type == reply && code == 0 {
            IcmpRepr::EchoReply { ident, seq_no, data: &data[8..] }
        } else {
            IcmpRepr::Other { icmp_type, code, rest: &data[4..] }
        })
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. } => 8 + data.len(),
            IcmpRepr::Other { rest, .. } => 4 + rest.len(),
        }
    }

    /// Writes the message with its checksum into `buf` (exactly `buffer_len()` bytes).
    pub fn emit(&self, ip: &IpRepr, buf: &mut [u8]) -> Result<(), WireError> {
        let layer = if ip.src.is_ipv4() { Layer::Icmpv4 } else { Layer::Icmpv6 };
        if ip.src.is_ipv4() != ip.dst.is_ipv4() {
            return Err(WireError { layer, offset: 0, kind: WireErrorKind::MixedFamilies });
        }
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(WireError::truncated(layer, 0, len, buf.len()));
        }
        let buf = &mut buf[..len];
        let (request, reply) = if ip.src.is_ipv4() { ECHO_V4 } else { ECHO_V6 };
        match *self {
            IcmpRepr::EchoRequest { ident, seq_no, data } | IcmpRepr::EchoReply { ident, seq_no, data } => {
                buf[0] = if matches!(self, IcmpRepr::EchoRequest { .. }) { request } else { reply };
                buf[1] = 0;
                buf[4..6].copy_from_slice(&ident.to_be_bytes());
                buf[6..8].copy_from_slice(&seq_no.to_be_bytes());
                buf[8..].copy_from_slice(data);
            }
            IcmpRepr::Other { icmp_type, code, rest } => {
                buf[0] = icmp_type;
                buf[1] = code;
                buf[4..].copy_from_slice(rest);
            }
        }
        buf[2..4].copy_from_slice(&[0, 0]);
        let c = !internet_checksum(initial_sum(ip, len), buf);
        buf[2..4].copy_from_slice(&c.to_be_bytes());
        Ok(())
    }
}
