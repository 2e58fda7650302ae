//! Capture files in and out: pcap (micro- and nanosecond stamps, either byte order) and pcapng
//! (several interfaces, each with its own link type and time resolution), down to IP datagrams.
//!
//! [`CaptureReader`] reads a whole file into memory and yields [`Record`]s that borrow from it;
//! [`CaptureWriter`] writes raw-IP pcap or pcapng, pcapng with a comment on any packet.
//! Damage is a [`CaptureError`] naming the file, the record and the reason, never a panic.
//!
//! [`flows`] splits the records into TCP connections, for `inspect` and replay alike.
//!
//! Must not depend on: replay, terminals; below `flows`, the TCP parsing in `utcp::wire`.

pub mod flows;
mod link;
mod write;

pub use link::{ip_payload, LinkType, NotIp};
pub use write::{CaptureWriter, Format};

use pcap_file::pcap::PcapHeader;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError, TsResolution};
use std::fmt;
use std::path::{Path, PathBuf};
use utcp::time::Instant;

/// Largest record body accepted, whatever the header's snap length says (Wireshark's limit).
const MAX_RECORD_LEN: u32 = 256 * 1024 * 1024;

/// What was wrong with a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureErrorKind {
    /// The file could not be opened or read.
    Io(String),
    /// The first bytes are neither a pcap magic nor a pcapng section header.
    NotACapture {
        /// The first four bytes, big-endian.
        magic: u32,
    },
    /// The file ends inside a header or a record.
    Truncated,
    /// A field holds an impossible value.
    Malformed(String),
}

impl fmt::Display for CaptureErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureErrorKind::Io(e) => write!(f, "cannot read: {e}"),
            CaptureErrorKind::NotACapture { magic } => {
                write!(f, "not a pcap or pcapng file (magic 0x{magic:08x})")
            }
            CaptureErrorKind::Truncated => f.write_str("file ends in the middle of it (truncated)"),
            CaptureErrorKind::Malformed(why) => write!(f, "malformed: {why}"),
        }
    }
}

/// A capture that cannot be read (further): which file, which record, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    /// The file, as given.
    pub file: PathBuf,
    /// The 1-based number of the record that could not be read; `None` for the file header.
    pub record: Option<u64>,
    /// Byte offset in the file where the damaged header or record starts.
    pub offset: usize,
    /// The reason.
    pub kind: CaptureErrorKind,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        match self.record {
            Some(n) => write!(f, "record {n} (byte {}): ", self.offset)?,
            None => f.write_str("file header: ")?,
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for CaptureError {}

/// What a record carries once the link-layer header is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content<'a> {
    /// An IP datagram (possibly followed by link-layer padding).
    Ip(&'a [u8]),
    /// Something else, and what.
    NotIp(NotIp),
}

/// One packet of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// 1-based packet number, as Wireshark numbers frames.
    pub number: u64,
    /// Capture time in microseconds since the Unix epoch (finer stamps rounded down).
    pub time: Instant,
    /// Link type of the interface it was captured on.
    pub link: LinkType,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
    /// Length of the packet on the wire.
    pub original_len: u32,
    /// The captured frame, link header included.
    pub frame: &'a [u8],
    /// The IP datagram inside the frame, or why there is none.
    pub content: Content<'a>,
    /// The pcapng packet comment (the first `opt_comment`), if any.
    pub comment: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// The IP datagram, if the record carries one.
    pub fn ip(&self) -> Option<&'a [u8]> {
        match self.content {
            Content::Ip(ip) => Some(ip),
            Content::NotIp(_) => None,
        }
    }

    /// Whether fewer bytes were captured than were on the wire (snap length).
    pub fn is_sliced(&self) -> bool {
        (self.frame.len() as u64) < u64::from(self.original_len)
    }
}

/// A capture file held in memory; iterate its records with [`CaptureReader::records`].
#[derive(Debug, Clone)]
pub struct CaptureReader {
    path: PathBuf,
    data: Vec<u8>,
}

/// Everything readable in a capture, and the damage that stopped reading, if any.
#[derive(Debug)]
pub struct ReadAll<'a> {
    /// Records read before the damage (all of them when `error` is `None`).
    pub records: Vec<Record<'a>>,
    /// What stopped reading.
    pub error: Option<CaptureError>,
}

impl CaptureReader {
    /// Reads the file at `path` into memory.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureReader, CaptureError> {
        let path = path.as_ref().to_path_buf();
        match std::fs::read(&path) {
            Ok(data) => Ok(CaptureReader { path, data }),
            Err(e) => Err(CaptureError {
                file: path,
                record: None,
                offset: 0,
                kind: CaptureErrorKind::Io(e.to_string()),
            }),
        }
    }

    /// A capture from bytes already in memory; `name` is used in error messages.
    pub fn from_bytes(name: impl Into<PathBuf>, data: Vec<u8>) -> CaptureReader {
        CaptureReader { path: name.into(), data }
    }

    /// The file name errors will carry.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records in file order; after an error the iterator ends.
    pub fn records(&self) -> Records<'_> {
        Records { path: &self.path, rest: &self.data, offset: 0, number: 0, state: State::Start }
    }

    /// All records; with `keep_going` the records before damage are kept and the error returned
    /// alongside them, without it damage is the only result.
    pub fn read_all(&self, keep_going: bool) -> Result<ReadAll<'_>, CaptureError> {
        let mut records = Vec::new();
        for r in self.records() {
            match r {
                Ok(rec) => records.push(rec),
                Err(e) if keep_going => return Ok(ReadAll { records, error: Some(e) }),
                Err(e) => return Err(e),
            }
        }
        Ok(ReadAll { records, error: None })
    }
}

/// A pcapng interface as far as records need it.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    /// `if_tsresol`: high bit clear means 10^-n seconds, set means 2^-n.
    tsresol: u8,
    /// `if_tsoffset` in seconds.
    tsoffset: u64,
}

enum State {
    Start,
    Pcap { header: PcapHeader, link: LinkType },
    PcapNg { parser: PcapNgParser, interfaces: Vec<Interface> },
    Done,
}

/// Iterator over the records of a [`CaptureReader`].
pub struct Records<'a> {
    path: &'a Path,
    rest: &'a [u8],
    offset: usize,
    number: u64,
    state: State,
}

const PCAP_MAGICS: [u32; 4] = [0xa1b2_c3d4, 0xd4c3_b2a1, 0xa1b2_3c4d, 0x4d3c_b2a1];
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;

fn pcap_error_kind(e: PcapError) -> CaptureErrorKind {
    match e {
        PcapError::IncompleteBuffer => CaptureErrorKind::Truncated,
        PcapError::IoError(e) => CaptureErrorKind::Io(e.to_string()),
        PcapError::InvalidField(f) => CaptureErrorKind::Malformed(f.to_string()),
        PcapError::Utf8Error(_) | PcapError::FromUtf8Error(_) => {
            CaptureErrorKind::Malformed("a text option is not UTF-8".to_string())
        }
        PcapError::InvalidInterfaceId(id) => {
            CaptureErrorKind::Malformed(format!("packet names interface {id}, which is not described"))
        }
    }
}

/// Microseconds from a pcapng timestamp in units of the interface's resolution, rounded down.
fn pcapng_micros(units: u64, iface: &Interface) -> Option<u64> {
    let n = u32::from(iface.tsresol & 0x7f);
    let micros = if iface.tsresol & 0x80 != 0 {
        if n >= 128 {
            return None;
        }
        u64::try_from((u128::from(units) * 1_000_000) >> n).ok()?
    } else if n >= 6 {
        units / 10u64.checked_pow(n - 6)?
    } else {
        units.checked_mul(10u64.pow(6 - n))?
    };
    micros.checked_add(iface.tsoffset.checked_mul(1_000_000)?)
}

impl<'a> Records<'a> {
    fn fail(&mut self, record: Option<u64>, kind: CaptureErrorKind) -> CaptureError {
        self.state = State::Done;
        CaptureError { file: self.path.to_path_buf(), record, offset: self.offset, kind }
    }

    fn advance(&mut self, rem: &'a [u8]) {
        self.offset += self.rest.len() - rem.len();
        self.rest = rem;
    }

    fn start(&mut self) -> Result<(), CaptureError> {
        if self.rest.len() < 4 {
            return Err(self.fail(None, CaptureErrorKind::Truncated));
        }
        let magic = u32::from_be_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]]);
        if PCAP_MAGICS.contains(&magic) {
            let (rem, header) =
                PcapHeader::from_slice(self.rest).map_err(|e| self.fail(None, pcap_error_kind(e)))?;
            let link = LinkType::from_number(u32::from(header.datalink));
            self.advance(rem);
            self.state = State::Pcap { header, link };
        } else if magic == PCAPNG_SHB {
            let (rem, parser) =
                PcapNgParser::new(self.rest).map_err(|e| self.fail(None, pcap_error_kind(e)))?;
            self.advance(rem);
            self.state = State::PcapNg { parser, interfaces: Vec::new() };
        } else {
            return Err(self.fail(None, CaptureErrorKind::NotACapture { magic }));
        }
        Ok(())
    }

    fn next_pcap(&mut self) -> Option<Result<Record<'a>, CaptureError>> {
        let State::Pcap { header, link } = &self.state else { return None };
        let (header, link) = (*header, *link);
        if self.rest.is_empty() {
            self.state = State::Done;
            return None;
        }
        let number = self.number + 1;
        let Some(raw) = pcap_record_header(self.rest, header.endianness) else {
            return Some(Err(self.fail(Some(number), CaptureErrorKind::Truncated)));
        };
        // pcap-file's own check refuses orig_len > snaplen, which tcpdump -s writes routinely;
        // check what matters instead.
        let frac_per_sec = match header.ts_resolution {
            TsResolution::MicroSecond => 1_000_000,
            TsResolution::NanoSecond => 1_000_000_000,
        };
        if raw.ts_frac >= frac_per_sec {
            let why = format!("timestamp fraction {} is a second or more", raw.ts_frac);
            return Some(Err(self.fail(Some(number), CaptureErrorKind::Malformed(why))));
        }
        if raw.incl_len > MAX_RECORD_LEN {
            let why = format!("captured length {} is impossible", raw.incl_len);
            return Some(Err(self.fail(Some(number), CaptureErrorKind::Malformed(why))));
        }
        let micros = u64::from(raw.ts_sec) * 1_000_000
            + match header.ts_resolution {
                TsResolution::MicroSecond => u64::from(raw.ts_frac),
                TsResolution::NanoSecond => u64::from(raw.ts_frac) / 1_000,
            };
        let body = &self.rest[16..];
        let Some(frame) = body.get(..raw.incl_len as usize) else {
            return Some(Err(self.fail(Some(number), CaptureErrorKind::Truncated)));
        };
        let rem = &body[frame.len()..];
        self.advance(rem);
        self.number = number;
        Some(Ok(make_record(number, Instant::from_micros(micros), link, 0, raw.orig_len, frame, None)))
    }

    fn next_pcapng(&mut self) -> Option<Result<Record<'a>, CaptureError>> {
        loop {
            let State::PcapNg { parser, interfaces } = &mut self.state else { return None };
            if self.rest.is_empty() {
                self.state = State::Done;
                return None;
            }
            let number = self.number + 1;
            let (rem, block) = match parser.next_block(self.rest) {
                Ok(b) => b,
                Err(e) => return Some(Err(self.fail(Some(number), pcap_error_kind(e)))),
            };
            let (iface_id, units, original_len, data, comment) = match block {
                Block::SectionHeader(_) => {
                    interfaces.clear();
                    self.advance(rem);
                    continue;
                }
                Block::InterfaceDescription(idb) => {
                    let mut iface = Interface {
                        link: LinkType::from_number(u32::from(idb.linktype)),
                        tsresol: 6,
                        tsoffset: 0,
                    };
                    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption as O;
                    for o in &idb.options {
                        match o {
                            O::IfTsResol(r) => iface.tsresol = *r,
                            O::IfTsOffset(s) => iface.tsoffset = *s,
                            _ => {}
                        }
                    }
                    interfaces.push(iface);
                    self.advance(rem);
                    continue;
                }
                Block::EnhancedPacket(epb) => {
                    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption as O;
                    let comment = epb.options.iter().find_map(|o| match o {
                        O::Comment(std::borrow::Cow::Borrowed(c)) => Some(*c),
                        _ => None,
                    });
                    // pcap-file stores the raw 64-bit units as nanoseconds; undo that.
                    let units = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                    (epb.interface_id, Some(units), epb.original_len, epb.data, comment)
                }
                Block::Packet(pb) => {
                    (u32::from(pb.interface_id), Some(pb.timestamp), pb.original_len, pb.data, None)
                }
                Block::SimplePacket(spb) => (0, None, spb.original_len, spb.data, None),
                _ => {
                    self.advance(rem);
                    continue;
                }
            };
            let Some(iface) = interfaces.get(iface_id as usize).copied() else {
                let why =
                    format!("packet names interface {iface_id}, but {} are described", interfaces.len());
                return Some(Err(self.fail(Some(number), CaptureErrorKind::Malformed(why))));
            };
            // A simple packet block has no timestamp; Wireshark shows it at time 0.
            let micros = match units.map(|u| pcapng_micros(u, &iface)) {
                Some(Some(m)) => m,
                None => 0,
                Some(None) => {
                    let why = format!("timestamp does not fit with if_tsresol 0x{:02x}", iface.tsresol);
                    return Some(Err(self.fail(Some(number), CaptureErrorKind::Malformed(why))));
                }
            };
            let std::borrow::Cow::Borrowed(frame) = data else {
                // pcap-file's slice parser borrows; an owned body would mean its API changed.
                let why = "packet data was copied by the parser".to_string();
                return Some(Err(self.fail(Some(number), CaptureErrorKind::Malformed(why))));
            };
            self.advance(rem);
            self.number = number;
            let time = Instant::from_micros(micros);
            return Some(Ok(make_record(number, time, iface.link, iface_id, original_len, frame, comment)));
        }
    }
}

fn make_record<'a>(
    number: u64,
    time: Instant,
    link: LinkType,
    interface: u32,
    original_len: u32,
    frame: &'a [u8],
    comment: Option<&'a str>,
) -> Record<'a> {
    let content = match ip_payload(link, frame) {
        Ok(ip) => Content::Ip(ip),
        Err(why) => Content::NotIp(why),
    };
    Record { number, time, link, interface, original_len, frame, content, comment }
}

/// The 16-byte pcap record header.
struct PcapRecordHeader {
    ts_sec: u32,
    ts_frac: u32,
    incl_len: u32,
    orig_len: u32,
}

fn pcap_record_header(b: &[u8], order: Endianness) -> Option<PcapRecordHeader> {
    let word = |i: usize| -> Option<u32> {
        let w: [u8; 4] = b.get(i * 4..i * 4 + 4)?.try_into().ok()?;
        Some(match order {
            Endianness::Big => u32::from_be_bytes(w),
            Endianness::Little => u32::from_le_bytes(w),
        })
    };
    Some(PcapRecordHeader { ts_sec: word(0)?, ts_frac: word(1)?, incl_len: word(2)?, orig_len: word(3)? })
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let State::Start = self.state {
            if let Err(e) = self.start() {
                return Some(Err(e));
            }
        }
        match self.state {
            State::Start | State::Done => None,
            State::Pcap { .. } => self.next_pcap(),
            State::PcapNg { .. } => self.next_pcapng(),
        }
    }
}
