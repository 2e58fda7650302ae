//! The TCP header and its options (RFC 9293 §3.1, RFC 7323, RFC 2018, RFC 6691, RFC 7413).
//!
//! `TcpRepr` is canonical: parsing keeps what the options mean, not where NOPs stood, so that
//! emitting a parsed segment and parsing it again gives the same value. Unknown options are kept
//! as kind and bytes (a view into the parsed buffer).

use super::checksum::{copy_with_checksum, internet_checksum, pseudo_header_sum};
use super::ip::IPPROTO_TCP;
use super::{ChecksumMode, IpRepr, Layer, WireError, WireErrorKind};
use crate::tcp::seq::SeqNum;

/// Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WS: u8 = 3;
const KIND_SACK_PERM: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TS: u8 = 8;
/// TCP Fast Open cookie (RFC 7413 §4.1.1).
const KIND_FAST_OPEN: u8 = 34;
/// Experimental options (RFC 6994), where Fast Open was before kind 34: magic 0xF989.
const KIND_EXPERIMENTAL: u8 = 254;
/// The experiment identifier of Fast Open's experimental form (RFC 7413 §4.1.1, RFC 6994).
const FAST_OPEN_MAGIC: [u8; 2] = [0xf9, 0x89];

/// The most option bytes a header can carry (data offset 15).
const MAX_OPTIONS_LEN: usize = 40;

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

/// A TCP Fast Open cookie (RFC 7413 §4.1.1): up to 16 bytes. The option says nothing about
/// validity (RFC 7413 §4.1.1: 4 to 16 bytes, even); an empty cookie is a cookie request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FastOpenCookie {
    len: u8,
    bytes: [u8; 16],
}

impl FastOpenCookie {
    /// The most bytes a cookie has (RFC 7413 §4.1.1).
    pub const MAX: usize = 16;
    /// An empty cookie: the option of a cookie request.
    pub const REQUEST: FastOpenCookie = FastOpenCookie { len: 0, bytes: [0; 16] };

    /// A cookie of these bytes; `None` when longer than 16.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > Self::MAX {
            return None;
        }
        let mut c = FastOpenCookie { len: bytes.len() as u8, bytes: [0; 16] };
        c.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(c)
    }

    /// The cookie's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether it is empty (a cookie request).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a client may use it (RFC 7413 §4.1.1: "the cookie length MUST be between 4 and 16
    /// bytes, inclusive", and Linux takes only even lengths).
    pub fn is_valid(&self) -> bool {
        (4..=16).contains(&self.len) && self.len % 2 == 0
    }
}

impl core::fmt::Debug for FastOpenCookie {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The Fast Open option as sent or received: the cookie (empty for a request) and which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FastOpen {
    /// The cookie; empty in a cookie request.
    pub cookie: FastOpenCookie,
    /// The experimental form (kind 254, magic 0xF989) that clients used before kind 34.
    pub experimental: bool,
}

impl FastOpen {
    /// Bytes on the wire, without padding.
    fn wire_len(&self) -> usize {
        self.cookie.as_slice().len() + if self.experimental { 4 } else { 2 }
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
    /// TCP Fast Open (kind 34, or kind 254 with magic 0xF989; RFC 7413 §4.1.1). A cookie longer
    /// than 16 bytes is kept as an unknown option.
    pub fast_open: Option<FastOpen>,
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
    /// TCP Fast Open (kind 34 or its experimental form).
    FastOpen(FastOpen),
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
    ///
    /// Error offsets are relative to the start of `raw`; the layer is [`Layer::TcpOption`].
    pub fn iter_raw(raw: &'a [u8]) -> impl Iterator<Item = Result<TcpOption<'a>, WireError>> + 'a {
        OptionIter { raw, pos: 0 }
    }
}

/// The walker behind [`TcpOption::iter_raw`]; `pos == raw.len()` once finished.
struct OptionIter<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<TcpOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.raw;
        let pos = self.pos;
        let kind = *raw.get(pos)?;
        match kind {
            KIND_EOL => {
                // RFC 9293 §3.2: the end of the option list; what follows is padding.
                self.pos = raw.len();
                return Some(Ok(TcpOption::Eol));
            }
            KIND_NOP => {
                self.pos = pos + 1;
                return Some(Ok(TcpOption::Nop));
            }
            _ => {}
        }
        let len = raw.get(pos + 1).copied().unwrap_or(0);
        let bad = || {
            Some(Err(WireError {
                layer: Layer::TcpOption,
                offset: pos,
                kind: WireErrorKind::BadOptionLength { kind, len },
            }))
        };
        let n = usize::from(len);
        if n < 2 || raw.len() - pos < n {
            self.pos = raw.len();
            return bad();
        }
        let body = &raw[pos + 2..pos + n];
        let opt = match (kind, n) {
            (KIND_MSS, 4) => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
            (KIND_WS, 3) => TcpOption::WindowScale(body[0]),
            (KIND_SACK_PERM, 2) => TcpOption::SackPermitted,
            (KIND_SACK, 2 | 10 | 18 | 26 | 34) => {
                let mut blocks = SackBlocks::default();
                for b in body.chunks_exact(8) {
                    let left = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    let right = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                    blocks.push((SeqNum(left), SeqNum(right)));
                }
                TcpOption::Sack(blocks)
            }
            (KIND_TS, 10) => TcpOption::Timestamp(Timestamp {
                tsval: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                tsecr: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
            }),
            (KIND_FAST_OPEN, _) if n - 2 <= FastOpenCookie::MAX => TcpOption::FastOpen(FastOpen {
                cookie: FastOpenCookie::from_slice(body).unwrap_or_default(),
                experimental: false,
            }),
            (KIND_EXPERIMENTAL, _) if body.starts_with(&FAST_OPEN_MAGIC) && n - 4 <= FastOpenCookie::MAX => {
                TcpOption::FastOpen(FastOpen {
                    cookie: FastOpenCookie::from_slice(&body[2..]).unwrap_or_default(),
                    experimental: true,
                })
            }
            (KIND_MSS | KIND_WS | KIND_SACK_PERM | KIND_SACK | KIND_TS, _) => {
                self.pos = raw.len();
                return bad();
            }
            _ => TcpOption::Unknown { kind, data: body },
        };
        self.pos = pos + n;
        Some(Ok(opt))
    }
}

/// The option layout of a segment about to be emitted, from [`TcpRepr::emit_plan`].
#[derive(Clone, Copy)]
pub(crate) struct EmitPlan {
    layout: Layout,
    opt_len: usize,
}

impl EmitPlan {
    /// Header (with options) plus payload of `tcp`, the segment this plan was made for.
    pub(crate) fn buffer_len(&self, tcp: &TcpRepr<'_>) -> usize {
        20 + self.opt_len + tcp.payload.len()
    }
}

/// Where each option goes when emitting: the Linux NOP-aligned layout, or packed when that
/// does not fit in 40 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Aligned,
    Packed,
}

impl TcpOptions<'_> {
    /// Option bytes (before padding) in the given layout.
    fn layout_len(&self, layout: Layout) -> usize {
        let aligned = layout == Layout::Aligned;
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        match (self.timestamp.is_some(), self.sack_permitted) {
            (true, true) => n += 12,
            (true, false) => n += if aligned { 12 } else { 10 },
            (false, true) => n += if aligned { 4 } else { 2 },
            (false, false) => {}
        }
        if self.window_scale.is_some() {
            n += if aligned { 4 } else { 3 };
        }
        if let Some(sack) = &self.sack {
            n += 2 + 8 * sack.len() + if aligned { 2 } else { 0 };
        }
        if let Some(fo) = &self.fast_open {
            // Linux pads the option to a multiple of four with NOPs; packed, it is not padded
            // (whatever parsed from 40 bytes then fits in 40 again).
            n += if aligned { fo.wire_len().next_multiple_of(4) } else { fo.wire_len() };
        }
        n + self.unknown.wire_len()
    }

    /// The layout emit uses and its padded length; `Err` with the packed length when over 40.
    #[inline]
    fn plan(&self) -> Result<(Layout, usize), usize> {
        // Fast paths for what nearly every segment carries: nothing, or `nop,nop,TS`.
        let only_ts = self.mss.is_none()
            && self.window_scale.is_none()
            && !self.sack_permitted
            && self.sack.is_none()
            && self.fast_open.is_none()
            && self.unknown.raw.is_empty();
        if only_ts {
            return Ok((Layout::Aligned, if self.timestamp.is_some() { 12 } else { 0 }));
        }
        let aligned = self.layout_len(Layout::Aligned);
        if aligned <= MAX_OPTIONS_LEN {
            return Ok((Layout::Aligned, aligned.next_multiple_of(4)));
        }
        let packed = self.layout_len(Layout::Packed);
        if packed.next_multiple_of(4) <= MAX_OPTIONS_LEN {
            Ok((Layout::Packed, packed.next_multiple_of(4)))
        } else {
            Err(packed)
        }
    }

    /// Writes the options into `buf` (exactly the padded length from `plan`).
    ///
    /// The aligned layout is Linux's `tcp_options_write`: `mss`, then `sackOK,TS` (or `nop,nop,TS`),
    /// `nop,nop,sackOK` when there is no TS, `nop,wscale`, `nop,nop,sack`, the Fast Open option
    /// padded with NOPs to four bytes, then unknown options; the rest is EOL (zero) padding.
    fn write(&self, layout: Layout, buf: &mut [u8]) {
        let aligned = layout == Layout::Aligned;
        let mut w = Writer { buf, pos: 0 };
        if let Some(mss) = self.mss {
            w.put(&[KIND_MSS, 4]);
            w.put(&mss.to_be_bytes());
        }
        if let Some(ts) = self.timestamp {
            if self.sack_permitted {
                w.put(&[KIND_SACK_PERM, 2]);
            } else if aligned {
                w.put(&[KIND_NOP, KIND_NOP]);
            }
            w.put(&[KIND_TS, 10]);
            w.put(&ts.tsval.to_be_bytes());
            w.put(&ts.tsecr.to_be_bytes());
        } else if self.sack_permitted {
            if aligned {
                w.put(&[KIND_NOP, KIND_NOP]);
            }
            w.put(&[KIND_SACK_PERM, 2]);
        }
        if let Some(ws) = self.window_scale {
            if aligned {
                w.put(&[KIND_NOP]);
            }
            w.put(&[KIND_WS, 3, ws]);
        }
        if let Some(sack) = &self.sack {
            if aligned {
                w.put(&[KIND_NOP, KIND_NOP]);
            }
            w.put(&[KIND_SACK, (2 + 8 * sack.len()) as u8]);
            for (l, r) in sack.as_slice() {
                w.put(&l.raw().to_be_bytes());
                w.put(&r.raw().to_be_bytes());
            }
        }
        if let Some(fo) = &self.fast_open {
            let len = fo.wire_len();
            if fo.experimental {
                w.put(&[KIND_EXPERIMENTAL, len as u8]);
                w.put(&FAST_OPEN_MAGIC);
            } else {
                w.put(&[KIND_FAST_OPEN, len as u8]);
            }
            w.put(fo.cookie.as_slice());
            if aligned {
                for _ in len..len.next_multiple_of(4) {
                    w.put(&[KIND_NOP]);
                }
            }
        }
        for (kind, data) in self.unknown.iter() {
            w.put(&[kind, (2 + data.len()) as u8]);
            w.put(data);
        }
        let pos = w.pos;
        w.buf[pos..].fill(KIND_EOL);
    }
}

/// A cursor over an option buffer whose size `plan` already checked.
struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
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
    #[inline]
    pub fn parse(ip: &IpRepr, data: &'a [u8], checksums: ChecksumMode) -> Result<Self, WireError> {
        let err = |offset, kind| WireError { layer: Layer::Tcp, offset, kind };
        if data.len() < 20 {
            return Err(WireError::truncated(Layer::Tcp, 0, 20, data.len()));
        }
        let data_offset = data[12] >> 4;
        if data_offset < 5 {
            return Err(err(12, WireErrorKind::HeaderLenTooSmall(data_offset)));
        }
        let hlen = usize::from(data_offset) * 4;
        if data.len() < hlen {
            return Err(WireError::truncated(Layer::Tcp, 0, hlen, data.len()));
        }
        if checksums == ChecksumMode::Verify {
            // RFC 9293 §3.1: the checksum covers the pseudo-header, the header and the data.
            let pseudo = pseudo_header_sum(ip.src, ip.dst, IPPROTO_TCP, data.len());
            // One pass over the whole segment, checksum field included, sums to 0xffff when it
            // is right; the checksum it should have had is worked out only for a bad one.
            if internet_checksum(pseudo, data) != 0xffff {
                let partial = internet_checksum(internet_checksum(pseudo, &data[..16]).into(), &data[18..]);
                let found = u16::from_be_bytes([data[16], data[17]]);
                return Err(err(16, WireErrorKind::BadChecksum { found, computed: !partial }));
            }
        }
        let area = &data[20..hlen];
        let mut options = TcpOptions::default();
        let mut has_unknown = false;
        // Fast path: the `nop,nop,TS` that nearly every segment of a timestamped connection has.
        let linux_ts = area.len() == 12 && area[..4] == [KIND_NOP, KIND_NOP, KIND_TS, 10];
        if linux_ts {
            let be32 = |i: usize| u32::from_be_bytes([area[i], area[i + 1], area[i + 2], area[i + 3]]);
            options.timestamp = Some(Timestamp { tsval: be32(4), tsecr: be32(8) });
        }
        for opt in TcpOption::iter_raw(if linux_ts { &[] } else { area }) {
            match opt {
                Ok(TcpOption::Eol | TcpOption::Nop) => {}
                Ok(TcpOption::Mss(v)) => options.mss = Some(v),
                Ok(TcpOption::WindowScale(v)) => options.window_scale = Some(v),
                Ok(TcpOption::SackPermitted) => options.sack_permitted = true,
                Ok(TcpOption::Sack(b)) => options.sack = Some(b),
                Ok(TcpOption::Timestamp(t)) => options.timestamp = Some(t),
                Ok(TcpOption::FastOpen(fo)) => options.fast_open = Some(fo),
                Ok(TcpOption::Unknown { .. }) => has_unknown = true,
                Err(mut e) => {
                    e.offset += 20;
                    return Err(e);
                }
            }
        }
        if has_unknown {
            options.unknown = UnknownOptions::from_raw(area);
        }
        let be16 = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        Ok(TcpRepr {
            src_port: be16(0),
            dst_port: be16(2),
            seq: SeqNum(be32(4)),
            ack: SeqNum(be32(8)),
            flags: TcpFlags((u16::from(data[12] & 0x01) << 8) | u16::from(data[13])),
            window: be16(14),
            urgent: be16(18),
            options,
            payload: &data[hlen..],
        })
    }

    /// Header length including options, padded to a multiple of four.
    ///
    /// When the options cannot fit in 40 bytes this is still their padded packed length (over 60),
    /// and `emit` fails with [`WireErrorKind::OptionsTooLong`].
    #[inline]
    pub fn header_len(&self) -> usize {
        match self.options.plan() {
            Ok((_, n)) => 20 + n,
            Err(n) => 20 + n.next_multiple_of(4),
        }
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
        self.emit_with(ip, buf, ChecksumMode::Verify)
    }

    /// Like [`TcpRepr::emit`]; with [`ChecksumMode::Ignore`] the checksum field is left zero, as
    /// for a device that computes checksums itself (offload) or a link that needs none.
    #[inline]
    pub fn emit_with(&self, ip: &IpRepr, buf: &mut [u8], checksums: ChecksumMode) -> Result<(), WireError> {
        self.emit_planned(ip, buf, checksums, self.emit_plan()?)
    }

    /// How [`TcpRepr::emit_with`] will lay the options out, worked out once for a caller that
    /// needs the length first (`emit_datagram_with`).
    #[inline]
    pub(crate) fn emit_plan(&self) -> Result<EmitPlan, WireError> {
        let (layout, opt_len) = self.options.plan().map_err(|n| WireError {
            layer: Layer::TcpOption,
            offset: 20,
            kind: WireErrorKind::OptionsTooLong(n),
        })?;
        Ok(EmitPlan { layout, opt_len })
    }

    /// [`TcpRepr::emit_with`] with the plan already made.
    #[inline]
    pub(crate) fn emit_planned(
        &self,
        ip: &IpRepr,
        buf: &mut [u8],
        checksums: ChecksumMode,
        plan: EmitPlan,
    ) -> Result<(), WireError> {
        let EmitPlan { layout, opt_len } = plan;
        if ip.src.is_ipv4() != ip.dst.is_ipv4() {
            return Err(WireError { layer: Layer::Tcp, offset: 0, kind: WireErrorKind::MixedFamilies });
        }
        let hlen = 20 + opt_len;
        let total = hlen + self.payload.len();
        if buf.len() < total {
            return Err(WireError::truncated(Layer::Tcp, 0, total, buf.len()));
        }
        let buf = &mut buf[..total];
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..8].copy_from_slice(&self.seq.raw().to_be_bytes());
        buf[8..12].copy_from_slice(&self.ack.raw().to_be_bytes());
        buf[12] = ((hlen / 4) as u8) << 4 | ((self.flags.0 >> 8) & 0x01) as u8;
        buf[13] = self.flags.0 as u8;
        buf[14..16].copy_from_slice(&self.window.to_be_bytes());
        buf[16..18].copy_from_slice(&[0, 0]);
        buf[18..20].copy_from_slice(&self.urgent.to_be_bytes());
        self.options.write(layout, &mut buf[20..hlen]);
        if checksums == ChecksumMode::Verify {
            // The payload's sum is taken as it is copied in (the header's length is a multiple
            // of four, so the two sums chain).
            let pseudo = pseudo_header_sum(ip.src, ip.dst, IPPROTO_TCP, total);
            let header = internet_checksum(pseudo, &buf[..hlen]);
            let c = !copy_with_checksum(header.into(), self.payload, &mut buf[hlen..]);
            buf[16..18].copy_from_slice(&c.to_be_bytes());
        } else {
            buf[hlen..].copy_from_slice(self.payload);
        }
        Ok(())
    }
}
