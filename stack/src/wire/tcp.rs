//! The TCP header and its options (RFC 9293 §3.1, RFC 7323, RFC 2018, RFC 6691).
//!
//! `TcpRepr` is canonical: parsing keeps what the options mean, not where NOPs stood, so that
//! emitting a parsed segment and parsing it again gives the same value. Unknown options are kept
//! as kind and bytes (a view into the parsed buffer).

use super::{ChecksumMode, IpRepr, WireError};
use crate::tcp::seq::SeqNum;

/// The TCP control bits (and the three ECN bits), as in the header's flags byte plus NS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN: no more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN: synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH: push function.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK: the acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG: the urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE: ECN echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR: congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// NS: ECN nonce (historic, RFC 3540).
    pub const NS: TcpFlags = TcpFlags(0x100);
    /// No bits set.
    pub const NONE: TcpFlags = TcpFlags(0);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether SYN is set.
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// Whether ACK is set.
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// Whether FIN is set.
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// Whether RST is set.
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// Whether PSH is set.
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    /// Whether URG is set.
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// The timestamps option (RFC 7323 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// TSval: the sender's timestamp clock.
    pub tsval: u32,
    /// TSecr: the echoed timestamp.
    pub tsecr: u32,
}

/// Up to four SACK blocks (RFC 2018 §3), each `left..right` (right edge exclusive).
///
/// A SACK option with no blocks (length 2) is valid syntax and parses as an empty `SackBlocks`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SackBlocks {
    len: u8,
    blocks: [(SeqNum, SeqNum); 4],
}

impl SackBlocks {
    /// At most this many blocks fit in 40 bytes of options.
    pub const CAPACITY: usize = 4;

    /// Blocks from a slice; `None` when there are more than four.
    pub fn from_slice(blocks: &[(SeqNum, SeqNum)]) -> Option<Self> {
        if blocks.len() > Self::CAPACITY {
            return None;
        }
        let mut out = SackBlocks::default();
        out.blocks[..blocks.len()].copy_from_slice(blocks);
        out.len = blocks.len() as u8;
        Some(out)
    }

    /// Appends a block; returns false (and changes nothing) when four are already held.
    pub fn push(&mut self, block: (SeqNum, SeqNum)) -> bool {
        if usize::from(self.len) == Self::CAPACITY {
            return false;
        }
        self.blocks[usize::from(self.len)] = block;
        self.len += 1;
        true
    }

    /// The blocks, first to last as on the wire.
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..usize::from(self.len)]
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl core::fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Options of kinds this stack does not interpret, kept as kind and data, in wire order.
///
/// A view into the parsed options area: iterating yields only the unknown options. Equality
/// compares the yielded options, not the underlying bytes.
#[derive(Clone, Copy, Default)]
pub struct UnknownOptions<'a> {
    /// The raw options area they were parsed from (or an encoded list built by the caller).
    raw: &'a [u8],
}

impl<'a> UnknownOptions<'a> {
    /// No unknown options.
    pub const EMPTY: UnknownOptions<'static> = UnknownOptions { raw: &[] };

    /// A view over a raw TCP options area; only options of unknown kinds are yielded.
    pub fn from_raw(raw: &'a [u8]) -> Self {
        UnknownOptions { raw }
    }

    /// The unknown options as `(kind, data)` pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        TcpOption::iter_raw(self.raw).filter_map(|o| match o {
            Ok(TcpOption::Unknown { kind, data }) => Some((kind, data)),
            _ => None,
        })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Bytes they take on the wire (2 + data each).
    pub fn wire_len(&self) -> usize {
        self.iter().map(|(_, d)| 2 + d.len()).sum()
    }
}

impl PartialEq for UnknownOptions<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UnknownOptions<'_> {}

impl core::hash::Hash for UnknownOptions<'_> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        for o in self.iter() {
            o.hash(state);
        }
    }
}

impl core::fmt::Debug for UnknownOptions<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What a segment's options mean, canonically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpOptions<'a> {
    /// Maximum segment size (kind 2).
    pub mss: Option<u16>,
    /// Window scale shift count as sent (kind 3); values above 14 are kept as found.
    pub window_scale: Option<u8>,
    /// SACK-permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8).
    pub timestamp: Option<Timestamp>,
    /// SACK blocks (kind 5); `Some` with no blocks for an empty SACK option.
    pub sack: Option<SackBlocks>,
    /// Options of other kinds.
    pub unknown: UnknownOptions<'a>,
}

/// One option as it stands on the wire, for transcripts that show the real layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0).
    Eol,
    /// No-operation (kind 1).
    Nop,
    /// Maximum segment size (kind 2).
    Mss(u16),
    /// Window scale (kind 3).
    WindowScale(u8),
    /// SACK permitted (kind 4).
    SackPermitted,
    /// SACK blocks (kind 5).
    Sack(SackBlocks),
    /// Timestamps (kind 8).
    Timestamp(Timestamp),
    /// Any other kind.
    Unknown {
        /// The kind byte.
        kind: u8,
        /// The data after kind and length.
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Walks a raw options area in wire order. Stops after EOL; yields an error (and then stops)
    /// at an option whose length is impossible.
    pub fn iter_raw(raw: &'a [u8]) -> impl Iterator<Item = Result<TcpOption<'a>, WireError>> + 'a {
        let _ = raw;
        todo!("wire: TcpOption::iter_raw");
        #[allow(unreachable_code)]
        core::iter::empty()
    }
}

/// A TCP segment's meaning: header fields, options and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number as on the wire (meaningful only with ACK).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field, unscaled, as on the wire.
    pub window: u16,
    /// Urgent pointer as on the wire.
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions<'a>,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses a TCP segment that arrived in `ip` (whose addresses make the pseudo-header).
    ///
    /// `data` is the IP payload, exactly `ip.payload_len` bytes. Errors carry offsets relative
    /// to the start of the TCP header.
    pub fn parse(ip: &IpRepr, data: &'a [u8], checksums: ChecksumMode) -> Result<Self, WireError> {
        let _ = (ip, data, checksums);
        todo!("wire: TcpRepr::parse")
    }

    /// Header length including options, padded to a multiple of four.
    pub fn header_len(&self) -> usize {
        todo!("wire: TcpRepr::header_len")
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Length in sequence space: payload plus one for SYN and one for FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }

    /// Writes header, options and payload into `buf` (exactly `buffer_len()` bytes) and fills in
    /// the checksum over `ip`'s pseudo-header. Options are laid out as Linux lays them out
    /// (NOP-aligned) when that fits in 40 bytes, otherwise packed.
    pub fn emit(&self, ip: &IpRepr, buf: &mut [u8]) -> Result<(), WireError> {
        let _ = (ip, buf);
        todo!("wire: TcpRepr::emit")
    }
}
