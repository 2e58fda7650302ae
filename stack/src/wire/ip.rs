//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers, as far as a TCP endpoint needs them.

use super::WireError;
use std::net::IpAddr;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of ICMPv4.
pub const IPPROTO_ICMP: u8 = 1;
/// IPv6 next-header value of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// The meaning of an IP header: addresses, transport protocol, hop limit and payload length.
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
    pub fn emit(&self, payload_len: usize, buf: &mut [u8]) -> Result<(), WireError> {
        let _ = (payload_len, buf);
        todo!("wire: IpRepr::emit")
    }
}

/// Parses an IP header (either family) and returns it with exactly its payload.
pub(crate) fn parse(data: &[u8]) -> Result<(IpRepr, &[u8]), WireError> {
    let _ = data;
    todo!("wire: ip::parse")
}
