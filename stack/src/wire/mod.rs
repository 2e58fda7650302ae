//! The wire layer: IPv4, IPv6, TCP and ICMP as values parsed from and emitted into bytes.
//!
//! Parsing is built on etherparse's slices; the values here (`IpRepr`, `TcpRepr`, `IcmpRepr`) are what
//! the rest of the stack reads. Errors keep the layer, the offset and the offending value, so a
//! report can say exactly why a packet was refused (STYLE.md 6). Nothing here allocates on the
//! parse or emit path, and nothing may panic on any input.
//!
//! Must not depend on: `crate::tcp` (except `SeqNum`), `crate::stack`, clocks, I/O.

mod checksum;
mod error;
mod icmp;
mod ip;
pub mod notation;
mod tcp;

pub use checksum::{copy_with_checksum, internet_checksum, pseudo_header_sum};
pub use error::{Layer, WireError, WireErrorKind};
pub use icmp::{IcmpRepr, Quote};
pub use ip::{IpRepr, ECN_CE, ECN_ECT0, ECN_ECT1, ECN_NOT_ECT, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP};
pub use notation::Notation;
pub use tcp::{
    FastOpen, FastOpenCookie, SackBlocks, TcpFlags, TcpOption, TcpOptions, TcpRepr, Timestamp, UnknownOptions,
};

/// Whether to check checksums on input (and, for `emit_*_with`, compute them on output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    /// Verify every checksum; a mismatch is a [`WireErrorKind::BadChecksum`].
    Verify,
    /// Accept whatever checksum is present (for captures taken with checksum offload).
    Ignore,
}

/// What an IP datagram carries, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp(TcpRepr<'a>),
    /// An ICMPv4 message (IPv4 with `IpRepr::protocol == IPPROTO_ICMP`) or ICMPv6 message (IPv6
    /// with `IPPROTO_ICMPV6`); the other family's ICMP number is `Other`.
    Icmp(IcmpRepr<'a>),
    /// Some other protocol; its payload, unparsed.
    Other(&'a [u8]),
}

/// One IP datagram, parsed down to its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The IP header's meaning.
    pub ip: IpRepr,
    /// The transport header and payload.
    pub transport: Transport<'a>,
}

/// Parses one IP datagram (v4 or v6, chosen by the version nibble) down to TCP or ICMP.
///
/// IPv4 header options are skipped; fragments (MF set or a non-zero offset, or an IPv6 fragment
/// header) are refused with [`WireErrorKind::Fragment`]; IPv6 extension headers are walked to the
/// transport. Bytes after the length the IP header declares (link-layer padding) are ignored.
#[inline]
pub fn parse_datagram(data: &[u8], checksums: ChecksumMode) -> Result<Datagram<'_>, WireError> {
    let (ip, payload, at) = ip::parse(data, checksums)?;
    // Transport errors carry offsets from the transport header; make them datagram-relative.
    let shift = |mut e: WireError| {
        e.offset += at;
        e
    };
    let transport = match (ip.protocol, ip.src.is_ipv4()) {
        (IPPROTO_TCP, _) => Transport::Tcp(TcpRepr::parse(&ip, payload, checksums).map_err(shift)?),
        (IPPROTO_ICMP, true) | (IPPROTO_ICMPV6, false) => {
            Transport::Icmp(IcmpRepr::parse(&ip, payload, checksums).map_err(shift)?)
        }
        _ => Transport::Other(payload),
    };
    Ok(Datagram { ip, transport })
}

/// The number of bytes [`emit_datagram`] writes for this datagram.
#[inline]
pub fn datagram_len(ip: &IpRepr, transport: &Transport<'_>) -> usize {
    ip.header_len()
        + match transport {
            Transport::Tcp(tcp) => tcp.buffer_len(),
            Transport::Icmp(icmp) => icmp.buffer_len(),
            Transport::Other(payload) => payload.len(),
        }
}

/// Writes a whole datagram into `buf` with correct lengths and checksums; returns its length.
///
/// `ip.protocol` must match the transport; `ip.payload_len` is ignored and computed. Fails with a
/// [`WireErrorKind::Truncated`] when `buf` is too short, never panics.
pub fn emit_datagram(ip: &IpRepr, transport: &Transport<'_>, buf: &mut [u8]) -> Result<usize, WireError> {
    emit_datagram_with(ip, transport, buf, ChecksumMode::Verify)
}

/// Like [`emit_datagram`]; with [`ChecksumMode::Ignore`] the TCP checksum is left zero (checksum
/// offload). The IPv4 header checksum and ICMP checksums are always computed.
#[inline]
pub fn emit_datagram_with(
    ip: &IpRepr,
    transport: &Transport<'_>,
    buf: &mut [u8],
    checksums: ChecksumMode,
) -> Result<usize, WireError> {
    // A TCP segment's options are laid out once, for the length and for the writing.
    let plan = match transport {
        Transport::Tcp(tcp) => Some(tcp.emit_plan()?),
        _ => None,
    };
    let hlen = ip.header_len();
    let total = match (transport, plan) {
        (Transport::Tcp(tcp), Some(plan)) => hlen + plan.buffer_len(tcp),
        _ => datagram_len(ip, transport),
    };
    if buf.len() < total {
        return Err(WireError::truncated(Layer::Ip, 0, total, buf.len()));
    }
    let payload_len = total - hlen;
    ip.emit(payload_len, &mut buf[..hlen])?;
    let body = &mut buf[hlen..total];
    match transport {
        Transport::Tcp(tcp) => match plan {
            Some(plan) => tcp.emit_planned(ip, body, checksums, plan)?,
            None => tcp.emit_with(ip, body, checksums)?,
        },
        Transport::Icmp(icmp) => icmp.emit(ip, body)?,
        Transport::Other(payload) => body.copy_from_slice(payload),
    }
    Ok(total)
}
