//! Writing captures: raw IP (link type 101), microsecond pcap or pcapng with nanosecond stamps
//! and an optional comment (`opt_comment`) on any packet.

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
        Ok(CaptureWriter { name, inner, written: 0 })
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
