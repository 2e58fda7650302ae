//! Capture files in and out: pcap (micro- and nanosecond stamps, either byte order) and pcapng
//! (several interfaces, each with its own link type and time resolution), down to IP datagrams.
//!
//! [`CaptureReader`] reads a whole file into memory and yields [`Record`]s that borrow from it;
//! [`CaptureStream`] reads the same records from a file a buffer at a time, for files of any size;
//! [`CaptureWriter`] writes raw-IP pcap or pcapng, pcapng with a comment on any packet and with
//! the application's [`calls`].
//! Damage is a [`CaptureError`] naming the file, the record and the reason, never a panic.
//!
//! [`flows`] splits the records into TCP connections, for `inspect` and replay alike, and
//! [`flows::FlowStream`] hands each connection over as soon as it is finished.
//!
//! Must not depend on: replay, terminals; below `flows`, the TCP parsing in `utcp::wire`.

pub mod calls;
pub mod flows;
mod link;
mod write;

pub use link::{ip_payload, LinkType, NotIp};
pub use write::{CaptureWriter, Format};

use pcap_file::pcap::PcapHeader;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError, TsResolution};
use std::fmt;
use std::ops::Range;
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
/// [`CaptureStream`] reads the same records from a file a buffer at a time.
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

fn open_error(path: PathBuf, e: &std::io::Error) -> CaptureError {
    CaptureError { file: path, record: None, offset: 0, kind: CaptureErrorKind::Io(e.to_string()) }
}

impl CaptureReader {
    /// Reads the file at `path` into memory.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureReader, CaptureError> {
        let path = path.as_ref().to_path_buf();
        match std::fs::read(&path) {
            Ok(data) => Ok(CaptureReader { path, data }),
            Err(e) => Err(open_error(path, &e)),
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
        Records { data: &self.data, parser: Parser::new(self.path.clone()) }
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

/// Iterator over the records of a [`CaptureReader`].
pub struct Records<'a> {
    data: &'a [u8],
    parser: Parser,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.parser.next(self.data, 0, true) {
            Parsed::Record(at) => Some(Ok(at.borrow(self.data, 0))),
            Parsed::Failed(e) => Some(Err(e)),
            // With the whole file at hand the parser never asks for more.
            Parsed::End | Parsed::More => None,
        }
    }
}

/// Bytes read from the file at a time (more when one record is longer).
const STREAM_CHUNK: usize = 256 * 1024;

/// A capture read from a file (or any reader) a buffer at a time: the same records, in the same
/// order, with the same errors as [`CaptureReader`], holding only the record being read and the
/// rest of its buffer. A record borrows the buffer until the next call of
/// [`CaptureStream::next_record`].
pub struct CaptureStream<R = std::fs::File> {
    reader: R,
    /// File bytes from `buf_start` on, in `buf[..filled]`; the parser has consumed those before
    /// its offset. The rest of `buf` is room for the next read, allocated once.
    buf: Vec<u8>,
    filled: usize,
    buf_start: usize,
    eof: bool,
    parser: Parser,
    /// Bytes asked of the reader at a time, at least.
    chunk: usize,
}

impl CaptureStream<std::fs::File> {
    /// Opens the file at `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureStream<std::fs::File>, CaptureError> {
        let path = path.as_ref().to_path_buf();
        match std::fs::File::open(&path) {
            Ok(f) => Ok(CaptureStream::new(path, f)),
            Err(e) => Err(open_error(path, &e)),
        }
    }
}

impl<R: std::io::Read> CaptureStream<R> {
    /// A capture read from `reader`; `name` is used in error messages.
    pub fn new(name: impl Into<PathBuf>, reader: R) -> CaptureStream<R> {
        CaptureStream::with_chunk(name, reader, STREAM_CHUNK)
    }

    /// As [`CaptureStream::new`], reading `chunk` bytes at a time (at least one; more when a
    /// record is longer): small chunks put buffer ends inside headers and records, for tests.
    pub fn with_chunk(name: impl Into<PathBuf>, reader: R, chunk: usize) -> CaptureStream<R> {
        let parser = Parser::new(name.into());
        CaptureStream {
            reader,
            buf: Vec::new(),
            filled: 0,
            buf_start: 0,
            eof: false,
            parser,
            chunk: chunk.max(1),
        }
    }

    /// The file name errors will carry.
    pub fn path(&self) -> &Path {
        &self.parser.path
    }

    /// Records read so far.
    pub fn records_read(&self) -> u64 {
        self.parser.number
    }

    /// Bytes of the file parsed so far.
    pub fn bytes_read(&self) -> u64 {
        self.parser.offset as u64
    }

    /// The next record in file order, or the damage that ends reading, or `None` at the end.
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, CaptureError>> {
        loop {
            let buf = &self.buf[..self.filled];
            match self.parser.next(buf, self.buf_start, self.eof) {
                Parsed::Record(at) => return Some(Ok(at.borrow(&self.buf[..self.filled], self.buf_start))),
                Parsed::Failed(e) => return Some(Err(e)),
                Parsed::End => return None,
                Parsed::More => {
                    if let Err(e) = self.fill() {
                        let record = self.parser.record_number_at_offset();
                        return Some(Err(self.parser.fail(record, CaptureErrorKind::Io(e.to_string()))));
                    }
                }
            }
        }
    }

    /// Drops the consumed bytes and reads at least as many again as are left (so that a long
    /// record is read in a few calls), or notes the end of the file.
    fn fill(&mut self) -> std::io::Result<()> {
        let consumed = self.parser.offset - self.buf_start;
        self.buf.copy_within(consumed..self.filled, 0);
        self.filled -= consumed;
        self.buf_start = self.parser.offset;
        let want = self.chunk.max(self.filled);
        if self.buf.len() < self.filled + want {
            self.buf.resize(self.filled + want, 0);
        }
        let end = self.filled + want;
        while self.filled < end {
            match self.reader.read(&mut self.buf[self.filled..end]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
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

/// A record found by the parser, its bytes named by their place in the file so that it holds no
/// borrow of the buffer it was found in.
struct Located {
    number: u64,
    time: Instant,
    link: LinkType,
    interface: u32,
    original_len: u32,
    frame: Range<usize>,
    comment: Option<Range<usize>>,
}

impl Located {
    /// The record over `buf`, which holds the file's bytes from `buf_start` on.
    fn borrow(self, buf: &[u8], buf_start: usize) -> Record<'_> {
        let at = |r: &Range<usize>| &buf[r.start - buf_start..r.end - buf_start];
        // The parser checked the comment was UTF-8 where it found it.
        let comment = self.comment.as_ref().and_then(|r| std::str::from_utf8(at(r)).ok());
        make_record(
            self.number,
            self.time,
            self.link,
            self.interface,
            self.original_len,
            at(&self.frame),
            comment,
        )
    }
}

/// What the parser found at its offset.
enum Parsed {
    Record(Located),
    /// The buffer ends inside the next header or record, and the file goes on.
    More,
    End,
    Failed(CaptureError),
}

/// The record-by-record parse of a capture, over a buffer of the file that may hold only part
/// of it: whether the whole file or a window of it is at hand, the same bytes give the same
/// records and the same errors.
struct Parser {
    path: PathBuf,
    /// Where the next header or record starts in the file.
    offset: usize,
    /// Records read.
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

/// Whether `rest` holds less than the whole pcapng block starting it: the 12 bytes that give its
/// length, then that length.
fn pcapng_block_incomplete(rest: &[u8], order: Endianness) -> bool {
    let Some(head) = rest.get(..12) else { return true };
    let word = |i: usize| [head[i], head[i + 1], head[i + 2], head[i + 3]];
    // A section header's own byte-order magic says how its length is written.
    let order = if u32::from_be_bytes(word(0)) == PCAPNG_SHB {
        match u32::from_be_bytes(word(8)) {
            0x1a2b_3c4d => Endianness::Big,
            _ => Endianness::Little,
        }
    } else {
        order
    };
    let len = match order {
        Endianness::Big => u32::from_be_bytes(word(4)),
        Endianness::Little => u32::from_le_bytes(word(4)),
    };
    (rest.len() as u64) < u64::from(len)
}

impl Parser {
    fn new(path: PathBuf) -> Parser {
        Parser { path, offset: 0, number: 0, state: State::Start }
    }

    fn fail(&mut self, record: Option<u64>, kind: CaptureErrorKind) -> CaptureError {
        self.state = State::Done;
        CaptureError { file: self.path.clone(), record, offset: self.offset, kind }
    }

    /// The number an error at the current offset carries: the next record's, or none before the
    /// file header was read.
    fn record_number_at_offset(&self) -> Option<u64> {
        match self.state {
            State::Start => None,
            _ => Some(self.number + 1),
        }
    }

    /// The next record from `buf`, which holds the file's bytes from `buf_start` on (at least
    /// up to the parser's offset); `eof` says the file ends where `buf` does.
    fn next(&mut self, buf: &[u8], buf_start: usize, eof: bool) -> Parsed {
        let rest = &buf[self.offset - buf_start..];
        if let State::Start = self.state {
            match self.start(rest, eof) {
                Ok(true) => {}
                Ok(false) => return Parsed::More,
                Err(e) => return Parsed::Failed(e),
            }
        }
        match self.state {
            State::Start | State::Done => Parsed::End,
            State::Pcap { .. } => self.next_pcap(buf, buf_start, eof),
            State::PcapNg { .. } => self.next_pcapng(buf, buf_start, eof),
        }
    }

    /// Reads the file header; `Ok(false)` when `rest` is too short to tell and the file goes on.
    fn start(&mut self, rest: &[u8], eof: bool) -> Result<bool, CaptureError> {
        if rest.len() < 4 {
            return if eof { Err(self.fail(None, CaptureErrorKind::Truncated)) } else { Ok(false) };
        }
        let magic = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if PCAP_MAGICS.contains(&magic) {
            match PcapHeader::from_slice(rest) {
                Ok((rem, header)) => {
                    let link = LinkType::from_number(u32::from(header.datalink));
                    self.offset += rest.len() - rem.len();
                    self.state = State::Pcap { header, link };
                }
                Err(PcapError::IncompleteBuffer) if !eof => return Ok(false),
                Err(e) => return Err(self.fail(None, pcap_error_kind(e))),
            }
        } else if magic == PCAPNG_SHB {
            match PcapNgParser::new(rest) {
                Ok((rem, parser)) => {
                    self.offset += rest.len() - rem.len();
                    self.state = State::PcapNg { parser, interfaces: Vec::new() };
                }
                Err(PcapError::IncompleteBuffer)
                    if !eof && pcapng_block_incomplete(rest, Endianness::Big) =>
                {
                    return Ok(false)
                }
                Err(e) => return Err(self.fail(None, pcap_error_kind(e))),
            }
        } else {
            return Err(self.fail(None, CaptureErrorKind::NotACapture { magic }));
        }
        Ok(true)
    }

    fn next_pcap(&mut self, buf: &[u8], buf_start: usize, eof: bool) -> Parsed {
        let State::Pcap { header, link } = &self.state else { return Parsed::End };
        let (header, link) = (*header, *link);
        let rest = &buf[self.offset - buf_start..];
        if rest.is_empty() {
            if !eof {
                return Parsed::More;
            }
            self.state = State::Done;
            return Parsed::End;
        }
        let number = self.number + 1;
        let Some(raw) = pcap_record_header(rest, header.endianness) else {
            if !eof {
                return Parsed::More;
            }
            return Parsed::Failed(self.fail(Some(number), CaptureErrorKind::Truncated));
        };
        // pcap-file's own check refuses orig_len > snaplen, which tcpdump -s writes routinely;
        // check what matters instead.
        let frac_per_sec = match header.ts_resolution {
            TsResolution::MicroSecond => 1_000_000,
            TsResolution::NanoSecond => 1_000_000_000,
        };
        if raw.ts_frac >= frac_per_sec {
            let why = format!("timestamp fraction {} is a second or more", raw.ts_frac);
            return Parsed::Failed(self.fail(Some(number), CaptureErrorKind::Malformed(why)));
        }
        if raw.incl_len > MAX_RECORD_LEN {
            let why = format!("captured length {} is impossible", raw.incl_len);
            return Parsed::Failed(self.fail(Some(number), CaptureErrorKind::Malformed(why)));
        }
        let micros = u64::from(raw.ts_sec) * 1_000_000
            + match header.ts_resolution {
                TsResolution::MicroSecond => u64::from(raw.ts_frac),
                TsResolution::NanoSecond => u64::from(raw.ts_frac) / 1_000,
            };
        let frame_start = self.offset + 16;
        let frame_end = frame_start + raw.incl_len as usize;
        if frame_end > buf_start + buf.len() {
            if !eof {
                return Parsed::More;
            }
            return Parsed::Failed(self.fail(Some(number), CaptureErrorKind::Truncated));
        }
        self.offset = frame_end;
        self.number = number;
        Parsed::Record(Located {
            number,
            time: Instant::from_micros(micros),
            link,
            interface: 0,
            original_len: raw.orig_len,
            frame: frame_start..frame_end,
            comment: None,
        })
    }

    fn next_pcapng(&mut self, buf: &[u8], buf_start: usize, eof: bool) -> Parsed {
        // Where a slice of `buf` lies in the file.
        let place = |s: &[u8]| {
            let start = s.as_ptr() as usize - buf.as_ptr() as usize + buf_start;
            start..start + s.len()
        };
        loop {
            let State::PcapNg { parser, interfaces } = &mut self.state else { return Parsed::End };
            let rest = &buf[self.offset - buf_start..];
            if rest.is_empty() {
                if !eof {
                    return Parsed::More;
                }
                self.state = State::Done;
                return Parsed::End;
            }
            let number = self.number + 1;
            let order = parser.section().endianness;
            let (rem, block) = match parser.next_block(rest) {
                Ok(b) => b,
                Err(PcapError::IncompleteBuffer) if !eof && pcapng_block_incomplete(rest, order) => {
                    return Parsed::More
                }
                Err(e) => return Parsed::Failed(self.fail(Some(number), pcap_error_kind(e))),
            };
            let consumed = rest.len() - rem.len();
            let (iface_id, units, original_len, data, comment) = match block {
                Block::SectionHeader(_) => {
                    interfaces.clear();
                    self.offset += consumed;
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
                    self.offset += consumed;
                    continue;
                }
                Block::EnhancedPacket(epb) => {
                    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption as O;
                    let comment = epb.options.iter().find_map(|o| match o {
                        O::Comment(std::borrow::Cow::Borrowed(c)) => Some(place(c.as_bytes())),
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
                    self.offset += consumed;
                    continue;
                }
            };
            let Some(iface) = interfaces.get(iface_id as usize).copied() else {
                let why =
                    format!("packet names interface {iface_id}, but {} are described", interfaces.len());
                return Parsed::Failed(self.fail(Some(number), CaptureErrorKind::Malformed(why)));
            };
            // A simple packet block has no timestamp; Wireshark shows it at time 0.
            let micros = match units.map(|u| pcapng_micros(u, &iface)) {
                Some(Some(m)) => m,
                None => 0,
                Some(None) => {
                    let why = format!("timestamp does not fit with if_tsresol 0x{:02x}", iface.tsresol);
                    return Parsed::Failed(self.fail(Some(number), CaptureErrorKind::Malformed(why)));
                }
            };
            let std::borrow::Cow::Borrowed(frame) = data else {
                // pcap-file's slice parser borrows; an owned body would mean its API changed.
                let why = "packet data was copied by the parser".to_string();
                return Parsed::Failed(self.fail(Some(number), CaptureErrorKind::Malformed(why)));
            };
            let frame = place(frame);
            self.offset += consumed;
            self.number = number;
            return Parsed::Record(Located {
                number,
                time: Instant::from_micros(micros),
                link: iface.link,
                interface: iface_id,
                original_len,
                frame,
                comment,
            });
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
