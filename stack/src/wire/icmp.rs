//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages: echo request and reply are interpreted,
//! everything else is kept as type, code and body.

use super::{ChecksumMode, IpRepr, WireError};

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
    pub fn parse(ip: &IpRepr, data: &'a [u8], checksums: ChecksumMode) -> Result<Self, WireError> {
        let _ = (ip, data, checksums);
        todo!("wire: IcmpRepr::parse")
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
        let _ = (ip, buf);
        todo!("wire: IcmpRepr::emit")
    }
}
