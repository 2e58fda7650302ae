//! The Internet checksum (RFC 1071) and the TCP/ICMPv6 pseudo-headers (RFC 9293 §3.1, RFC 8200 §8.1).

use std::net::IpAddr;

/// The ones'-complement sum of `data` folded to 16 bits, added to `initial` (not complemented).
pub fn internet_checksum(initial: u32, data: &[u8]) -> u16 {
    let _ = (initial, data);
    todo!("wire: internet_checksum")
}

/// The unfolded sum of the pseudo-header for a transport of `len` bytes and protocol `protocol`.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u32 {
    let _ = (src, dst, protocol, len);
    todo!("wire: pseudo_header_sum")
}
