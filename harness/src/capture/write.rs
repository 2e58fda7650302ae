//! Writing captures: raw IP (link type 101), microsecond pcap or pcapng with nanosecond stamps
//! and an optional comment (`opt_comment`) on any packet; pcapng also holds the application's
//! calls ([`super::calls`]), on an interface of their own.

use super::calls::{format_call, AppCall, CALLS_INTERFACE, CALLS_LINKTYPE, TIMERS};
use super::{CaptureError, CaptureErrorKind};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use utcp::time::Instant;

/// Snap length written in headers: larger than any IP datagram.
const SNAPLEN: u32 = 262_144;

/// A capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap; packet comments are dropped.
    Pcap,
    /// pcapng; packet comments are kept.
    PcapNg,
}

impl Format {
    /// The format a file name asks for: pcapng for `.pcapng`, pcap otherwise.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pcapng") => Format::PcapNg,
            _ => Format::Pcap,
        }
    }
}

enum Inner<W: Write> {
    Pcap(PcapWriter<W>),
    PcapNg(PcapNgWriter<W>),
}

/// Writes IP datagrams as a raw-IP capture.
pub struct CaptureWriter<W: Write> {
    name: PathBuf,
    inner: Inner<W>,
    written: u64,
    /// The pcapng interface of the application's calls, once described.
    calls_interface: Option<u32>,
}

impl CaptureWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: impl AsRef<Path>, format: Format) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| CaptureError {
            file: path.to_path_buf(),
            record: None,
            offset: 0,
            kind: CaptureErrorKind::Io(e.to_string()),
        })?;
        CaptureWriter::new(BufWriter::new(file), path, format, Endianness::Little)
    }
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture on `out` (its headers are written now); `name` is used in errors.
    pub fn new(
        out: W,
        name: impl Into<PathBuf>,
        format: Format,
        order: Endianness,
    ) -> Result<Self, CaptureError> {
        let name = name.into();
        let fail = |e: PcapError| io_error(&name, None, e);
        let inner = match format {
            Format::Pcap => {
                let header = PcapHeader {
                    snaplen: SNAPLEN,
                    datalink: DataLink::RAW,
                    ts_resolution: TsResolution::MicroSecond,
                    endianness: order,
                    ..PcapHeader::default()
                };
                Inner::Pcap(PcapWriter::with_header(out, header).map_err(fail)?)
            }
            Format::PcapNg => {
                let mut w = PcapNgWriter::with_endianness(out, order).map_err(fail)?;
                let idb = InterfaceDescriptionBlock {
                    linktype: DataLink::RAW,
                    snaplen: SNAPLEN,
                    options: vec![InterfaceDescriptionOption::IfTsResol(9)],
                };
                w.write_pcapng_block(idb).map_err(fail)?;
                Inner::PcapNg(w)
            }
        };
        Ok(CaptureWriter { name, inner, written: 0, calls_interface: None })
    }

    /// Appends one IP datagram captured at `time`, with a comment (kept in pcapng only).
    pub fn write(&mut self, time: Instant, ip: &[u8], comment: Option<&str>) -> Result<(), CaptureError> {
        let number = self.written + 1;
        let len = u32::try_from(ip.len()).ok().filter(|l| *l <= SNAPLEN).ok_or_else(|| CaptureError {
            file: self.name.clone(),
            record: Some(number),
            offset: 0,
            kind: CaptureErrorKind::Malformed(format!("datagram of {} bytes is too long to write", ip.len())),
        })?;
        let result = match &mut self.inner {
            Inner::Pcap(w) => {
                w.write_packet(&PcapPacket::new(Duration::from_micros(time.total_micros()), len, ip))
            }
            Inner::PcapNg(w) => {
                let options =
                    comment.map(|c| EnhancedPacketOption::Comment(Cow::Borrowed(c))).into_iter().collect();
                // if_tsresol 9: pcap-file writes the Duration's nanoseconds as the raw units.
                let epb = EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: Duration::from_micros(time.total_micros()),
                    original_len: len,
                    data: Cow::Borrowed(ip),
                    options,
                };
                w.write_pcapng_block(epb)
            }
        };
        result.map_err(|e| io_error(&self.name, Some(number), e))?;
        self.written = number;
        Ok(())
    }

    /// Whether the format can hold the application's calls ([`CaptureWriter::write_call`]).
    pub fn holds_calls(&self) -> bool {
        matches!(self.inner, Inner::PcapNg(_))
    }

    /// Appends the application call `call` made at `time` by `local` on its connection with
    /// `remote` (pcapng only: a pcap file has one link type, and the call is not written).
    pub fn write_call(
        &mut self,
        time: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        call: AppCall,
    ) -> Result<(), CaptureError> {
        self.write_driven(time, &format_call(local, remote, call))
    }

    /// Appends the record of a run of the driver's timers at `time` (pcapng only).
    pub fn write_timers(&mut self, time: Instant) -> Result<(), CaptureError> {
        self.write_driven(time, TIMERS)
    }

    /// A record on the calls' interface, described before its first.
    fn write_driven(&mut self, time: Instant, body: &str) -> Result<(), CaptureError> {
        let Inner::PcapNg(w) = &mut self.inner else { return Ok(()) };
        let number = self.written + 1;
        let fail = |e: PcapError| io_error(&self.name, Some(number), e);
        let interface_id = match self.calls_interface {
            Some(id) => id,
            None => {
                let idb = InterfaceDescriptionBlock {
                    linktype: DataLink::from(CALLS_LINKTYPE),
                    snaplen: SNAPLEN,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Borrowed(CALLS_INTERFACE)),
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                };
                w.write_pcapng_block(idb).map_err(fail)?;
                *self.calls_interface.insert(1)
            }
        };
        let epb = EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::from_micros(time.total_micros()),
            original_len: body.len() as u32,
            data: Cow::Borrowed(body.as_bytes()),
            options: Vec::new(),
        };
        w.write_pcapng_block(epb).map_err(fail)?;
        self.written = number;
        Ok(())
    }

    /// Number of packets written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, CaptureError> {
        let mut out = match self.inner {
            Inner::Pcap(w) => w.into_writer(),
            Inner::PcapNg(w) => w.into_inner(),
        };
        out.flush().map_err(|e| io_error(&self.name, None, PcapError::IoError(e)))?;
        Ok(out)
    }
}

fn io_error(name: &Path, record: Option<u64>, e: PcapError) -> CaptureError {
    CaptureError { file: name.to_path_buf(), record, offset: 0, kind: CaptureErrorKind::Io(e.to_string()) }
}
