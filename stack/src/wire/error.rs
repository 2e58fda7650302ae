//! Parse and emit errors that say what was wrong, where, and with which value.
//!
//! A length problem (`Truncated`) is a different kind from a content problem (a bad version, a
//! bad option length, a checksum mismatch), as in etherparse's `err` module.

use crate::stats::DropReason;
use core::fmt;

/// The protocol layer at which a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Before the version nibble is known.
    Ip,
    /// The IPv4 header.
    Ipv4,
    /// The IPv6 fixed header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Ext,
    /// The TCP header.
    Tcp,
    /// A TCP option.
    TcpOption,
    /// An ICMPv4 message.
    Icmpv4,
    /// An ICMPv6 message.
    Icmpv6,
    /// The datagram an ICMP error quotes; `Truncated` lengths count from its IP header.
    IcmpQuote,
}

/// What was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireErrorKind {
    /// Fewer bytes than the layer needs.
    Truncated {
        /// Bytes needed from the start of the layer.
        required: usize,
        /// Bytes present from the start of the layer.
        len: usize,
    },
    /// The IP version nibble is neither 4 nor 6.
    BadVersion(u8),
    /// IPv4 IHL below 5 or the TCP data offset below 5 (the value as found).
    HeaderLenTooSmall(u8),
    /// A length field claims less than the header itself, or more than the buffer; or, when
    /// emitting, a value does not fit its field.
    BadLength(usize),
    /// A fragment (IPv4 MF/offset, or an IPv6 fragment header); fragments are not reassembled.
    Fragment {
        /// The fragment offset in 8-byte units.
        offset: u16,
        /// The more-fragments flag.
        more: bool,
    },
    /// The checksum in the packet differs from the one computed over it.
    BadChecksum {
        /// The checksum in the packet.
        found: u16,
        /// The checksum it should have had.
        computed: u16,
    },
    /// A TCP option whose length byte is impossible for its kind or overruns the option space.
    BadOptionLength {
        /// The option kind.
        kind: u8,
        /// The length byte as found.
        len: u8,
    },
    /// More TCP options than fit in 40 bytes when emitting.
    OptionsTooLong(usize),
    /// An IPv4 or IPv6 source/destination pair of different families when emitting.
    MixedFamilies,
    /// An IPv6 extension header that cannot be walked (ESP, or an unknown next header).
    UnsupportedExtension(u8),
}

/// A packet refused by the wire layer: the layer, the offset from the start of the datagram (or
/// the buffer being emitted into) and what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireError {
    /// Where in the protocol stack.
    pub layer: Layer,
    /// Byte offset of the offending field from the start of the datagram.
    pub offset: usize,
    /// What was wrong, with the offending value.
    pub kind: WireErrorKind,
}

impl WireError {
    /// A length error.
    pub fn truncated(layer: Layer, offset: usize, required: usize, len: usize) -> Self {
        WireError { layer, offset, kind: WireErrorKind::Truncated { required, len } }
    }

    /// The drop counter this error is counted under (`DropReason::Truncated`, ...).
    pub fn reason(&self) -> DropReason {
        match self.kind {
            WireErrorKind::Truncated { .. } => DropReason::Truncated,
            WireErrorKind::BadVersion(_) => DropReason::BadVersion,
            WireErrorKind::HeaderLenTooSmall(_) => DropReason::HeaderLen,
            WireErrorKind::BadLength(_) => DropReason::BadLength,
            WireErrorKind::Fragment { .. } => DropReason::Fragment,
            WireErrorKind::BadChecksum { .. } => DropReason::BadChecksum,
            WireErrorKind::BadOptionLength { .. } => DropReason::BadOption,
            WireErrorKind::OptionsTooLong(_) => DropReason::OptionsTooLong,
            WireErrorKind::MixedFamilies => DropReason::MixedFamilies,
            WireErrorKind::UnsupportedExtension(_) => DropReason::UnsupportedExtension,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at byte {}: ", self.layer, self.offset)?;
        match self.kind {
            WireErrorKind::Truncated { required, len } => {
                write!(f, "truncated: needs {required} bytes, has {len}")
            }
            WireErrorKind::BadVersion(v) => write!(f, "IP version {v} is neither 4 nor 6"),
            WireErrorKind::HeaderLenTooSmall(v) => write!(f, "header length field {v} is below 5 words"),
            WireErrorKind::BadLength(v) => write!(f, "length field {v} is impossible"),
            WireErrorKind::Fragment { offset, more } => {
                write!(f, "fragment (offset {offset}, more fragments {more}) is not reassembled")
            }
            WireErrorKind::BadChecksum { found, computed } => {
                write!(f, "checksum 0x{found:04x} should be 0x{computed:04x}")
            }
            WireErrorKind::BadOptionLength { kind, len } => {
                write!(f, "option kind {kind} has impossible length {len}")
            }
            WireErrorKind::OptionsTooLong(n) => write!(f, "options need {n} bytes, at most 40 fit"),
            WireErrorKind::MixedFamilies => write!(f, "source and destination are of different families"),
            WireErrorKind::UnsupportedExtension(n) => write!(f, "extension header {n} cannot be walked"),
        }
    }
}

impl std::error::Error for WireError {}
