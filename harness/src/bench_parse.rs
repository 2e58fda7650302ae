//! Parser benchmark: datagrams parsed per second by utcp's wire parser against etherparse's own
//! slicing, on the same mix of recorded datagrams, in the same process run, alternating.
//!
//! The mix is every IP datagram of the captures given (by default the project's own,
//! `corpus/captures/*.pcap` and `*.pcapng`): handshakes, bulk data with timestamps and SACK,
//! IPv4 and IPv6, resets, ICMP. Each contender parses the whole mix over and over until it has
//! parsed `datagrams` of them, and reads the same things from each: the addresses, the TCP ports,
//! sequence and acknowledgment numbers, flags, window, every option and the payload length.
//!
//! - `utcp`: [`utcp::wire::parse_datagram`] without checksum verification (etherparse's slicing
//!   verifies none), so both do the same work;
//! - `utcp_verify`: the same with every checksum verified, as the stack does on a TUN device;
//! - `etherparse_sliced`: `SlicedPacket::from_ip`, then the fields and `options_iterator`;
//! - `etherparse_ip_tcp`: `IpSlice::from_slice` then `TcpSlice::from_slice`, then the same.
//!
//! The benchmark prints figures; nothing here asserts a speed.
//!
//! Must not depend on: the stack (`Stack`), the link, anything with virtual time.

use crate::bench::median;
use crate::capture::CaptureReader;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant as WallInstant;
use utcp::wire::{self, ChecksumMode, Transport};

/// The parsers being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parser {
    /// `utcp::wire::parse_datagram`, checksums not verified.
    Utcp,
    /// `utcp::wire::parse_datagram`, checksums verified.
    UtcpVerify,
    /// `etherparse::SlicedPacket::from_ip`.
    EtherparseSliced,
    /// `etherparse::IpSlice` then `etherparse::TcpSlice`.
    EtherparseIpTcp,
}

impl Parser {
    /// All four, in table order.
    pub const ALL: [Parser; 4] =
        [Parser::Utcp, Parser::UtcpVerify, Parser::EtherparseSliced, Parser::EtherparseIpTcp];

    /// The name in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Parser::Utcp => "utcp",
            Parser::UtcpVerify => "utcp_verify",
            Parser::EtherparseSliced => "etherparse_sliced",
            Parser::EtherparseIpTcp => "etherparse_ip_tcp",
        }
    }
}

/// The datagrams every parser is given, and where they came from.
#[derive(Debug, Clone)]
pub struct Mix {
    /// The IP datagrams, each exactly as captured (link header removed).
    pub datagrams: Vec<Vec<u8>>,
    /// The capture files read.
    pub files: Vec<PathBuf>,
}

impl Mix {
    /// Bytes in the mix.
    pub fn bytes(&self) -> usize {
        self.datagrams.iter().map(Vec::len).sum()
    }
}

/// The project's own captures, if the source tree is where it was built.
pub fn default_captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures")
}

/// Reads every IP datagram of every `.pcap` and `.pcapng` file in `dir` (sorted by name).
pub fn load_mix(dir: &Path) -> Result<Mix, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    let mut datagrams = Vec::new();
    for f in &files {
        let reader = CaptureReader::open(f).map_err(|e| e.to_string())?;
        for record in reader.records() {
            let record = record.map_err(|e| e.to_string())?;
            if let Some(ip) = record.ip() {
                datagrams.push(ip.to_vec());
            }
        }
    }
    if datagrams.is_empty() {
        return Err(format!("{}: no IP datagrams in any .pcap or .pcapng file", dir.display()));
    }
    Ok(Mix { datagrams, files })
}

/// What one parser read from one datagram, summed so the work cannot be optimised away.
fn fold_fields(acc: &mut u64, fields: [u64; 4]) {
    for f in fields {
        *acc = acc.rotate_left(7) ^ f;
    }
}

/// Parses `d` with `parser`; true when it parsed. Adds what it read to `acc`.
#[inline]
pub fn parse_one(parser: Parser, d: &[u8], acc: &mut u64) -> bool {
    match parser {
        Parser::Utcp | Parser::UtcpVerify => {
            let mode = if parser == Parser::Utcp { ChecksumMode::Ignore } else { ChecksumMode::Verify };
            let Ok(dgram) = wire::parse_datagram(d, mode) else { return false };
            let addr = match dgram.ip.src {
                std::net::IpAddr::V4(a) => u64::from(a.to_bits()),
                std::net::IpAddr::V6(a) => a.to_bits() as u64,
            };
            match dgram.transport {
                Transport::Tcp(t) => {
                    let o = &t.options;
                    let opts = u64::from(o.mss.unwrap_or(0))
                        ^ u64::from(o.window_scale.unwrap_or(0)) << 16
                        ^ u64::from(o.sack_permitted) << 24
                        ^ o.timestamp.map_or(0, |ts| u64::from(ts.tsval) << 32 | u64::from(ts.tsecr))
                        ^ o.sack.map_or(0, |s| s.len() as u64);
                    fold_fields(
                        acc,
                        [
                            addr ^ u64::from(t.src_port) << 16 ^ u64::from(t.dst_port),
                            u64::from(t.seq.raw()) << 32 | u64::from(t.ack.raw()),
                            u64::from(t.flags.0) << 16 ^ u64::from(t.window) ^ (t.payload.len() as u64) << 32,
                            opts,
                        ],
                    );
                }
                Transport::Icmp(_) | Transport::Other(_) => fold_fields(acc, [addr, 0, 0, 0]),
            }
            true
        }
        Parser::EtherparseSliced => {
            let Ok(p) = etherparse::SlicedPacket::from_ip(d) else { return false };
            let addr = match &p.net {
                Some(etherparse::NetSlice::Ipv4(v4)) => u64::from(v4.header().source_addr().to_bits()),
                Some(etherparse::NetSlice::Ipv6(v6)) => v6.header().source_addr().to_bits() as u64,
                _ => 0,
            };
            match &p.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => tcp_fields(acc, addr, t),
                _ => fold_fields(acc, [addr, 0, 0, 0]),
            }
            true
        }
        Parser::EtherparseIpTcp => {
            let Ok(ip) = etherparse::IpSlice::from_slice(d) else { return false };
            let addr = match ip.source_addr() {
                std::net::IpAddr::V4(a) => u64::from(a.to_bits()),
                std::net::IpAddr::V6(a) => a.to_bits() as u64,
            };
            let payload = ip.payload();
            if payload.ip_number == etherparse::IpNumber::TCP {
                let Ok(t) = etherparse::TcpSlice::from_slice(payload.payload) else { return false };
                tcp_fields(acc, addr, &t);
            } else {
                fold_fields(acc, [addr, 0, 0, 0]);
            }
            true
        }
    }
}

/// The same fields utcp's parse gives, read from an etherparse `TcpSlice`.
#[inline]
fn tcp_fields(acc: &mut u64, addr: u64, t: &etherparse::TcpSlice<'_>) {
    use etherparse::TcpOptionElement as E;
    let mut opts = 0u64;
    for o in t.options_iterator() {
        match o {
            Ok(E::MaximumSegmentSize(m)) => opts ^= u64::from(m),
            Ok(E::WindowScale(w)) => opts ^= u64::from(w) << 16,
            Ok(E::SelectiveAcknowledgementPermitted) => opts ^= 1 << 24,
            Ok(E::Timestamp(v, e)) => opts ^= u64::from(v) << 32 | u64::from(e),
            Ok(E::SelectiveAcknowledgement(_, rest)) => opts ^= 1 + rest.iter().flatten().count() as u64,
            Ok(E::Noop) => {}
            Err(_) => opts ^= 0xdead,
        }
    }
    let flags = u64::from(t.fin())
        | u64::from(t.syn()) << 1
        | u64::from(t.rst()) << 2
        | u64::from(t.psh()) << 3
        | u64::from(t.ack()) << 4
        | u64::from(t.urg()) << 5
        | u64::from(t.ece()) << 6
        | u64::from(t.cwr()) << 7
        | u64::from(t.ns()) << 8;
    fold_fields(
        acc,
        [
            addr ^ u64::from(t.source_port()) << 16 ^ u64::from(t.destination_port()),
            u64::from(t.sequence_number()) << 32 | u64::from(t.acknowledgment_number()),
            flags << 16 ^ u64::from(t.window_size()) ^ (t.payload().len() as u64) << 32,
            opts,
        ],
    );
}

/// One parser's timed pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParseRun {
    /// Datagrams handed to the parser.
    pub datagrams: u64,
    /// Of those, the ones it accepted.
    pub parsed: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl ParseRun {
    /// Datagrams per second.
    pub fn per_second(&self) -> f64 {
        self.datagrams as f64 / self.seconds
    }
}

/// Parses the mix over and over with `parser` until `count` datagrams went through.
pub fn time_parser(parser: Parser, mix: &Mix, count: u64) -> ParseRun {
    let (mut done, mut parsed, mut acc) = (0u64, 0u64, 0u64);
    let start = WallInstant::now();
    'outer: loop {
        for d in &mix.datagrams {
            if done == count {
                break 'outer;
            }
            parsed += u64::from(parse_one(parser, std::hint::black_box(d), &mut acc));
            done += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(acc);
    ParseRun { datagrams: done, parsed, seconds }
}

/// One parser's median and its share of the mix it accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParserFigures {
    /// Which parser.
    pub parser: Parser,
    /// Median over the rounds, datagrams per second.
    pub per_second: f64,
    /// Datagrams of one pass over the mix it accepted.
    pub accepted: u64,
    /// Every round's datagrams per second.
    pub rounds: Vec<f64>,
}

/// The result of `utcp bench parse`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParseReport {
    /// Datagrams in the mix.
    pub mix_datagrams: usize,
    /// Bytes in the mix.
    pub mix_bytes: usize,
    /// Capture files the mix came from.
    pub captures: Vec<String>,
    /// Datagrams each parser parsed per round.
    pub datagrams_per_round: u64,
    /// Median datagrams per second of utcp's parser without checksums.
    pub utcp_per_second: f64,
    /// Median datagrams per second of utcp's parser verifying checksums.
    pub utcp_verify_per_second: f64,
    /// Median datagrams per second of etherparse's `SlicedPacket`.
    pub etherparse_sliced_per_second: f64,
    /// Median datagrams per second of etherparse's `IpSlice` + `TcpSlice`.
    pub etherparse_ip_tcp_per_second: f64,
    /// `utcp_per_second / etherparse_sliced_per_second`.
    pub ratio: f64,
    /// Every parser's figures.
    pub parsers: Vec<ParserFigures>,
}

/// Runs `rounds` rounds of every parser over `mix`, `count` datagrams each, the order reversed
/// every other round; `progress` is told about every run.
pub fn run_parse(
    mix: &Mix,
    count: u64,
    rounds: usize,
    mut progress: impl FnMut(usize, Parser, &ParseRun),
) -> ParseReport {
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); Parser::ALL.len()];
    for round in 1..=rounds {
        let mut order: Vec<usize> = (0..Parser::ALL.len()).collect();
        if round % 2 == 0 {
            order.reverse();
        }
        for i in order {
            let run = time_parser(Parser::ALL[i], mix, count);
            progress(round, Parser::ALL[i], &run);
            per[i].push(run.per_second());
        }
    }
    let parsers: Vec<ParserFigures> = Parser::ALL
        .iter()
        .zip(per)
        .map(|(&parser, rounds)| ParserFigures {
            parser,
            per_second: median(rounds.clone()).unwrap_or(0.0),
            accepted: time_parser(parser, mix, mix.datagrams.len() as u64).parsed,
            rounds,
        })
        .collect();
    let rate = |p: Parser| parsers.iter().find(|f| f.parser == p).map_or(0.0, |f| f.per_second);
    let ether = rate(Parser::EtherparseSliced);
    ParseReport {
        mix_datagrams: mix.datagrams.len(),
        mix_bytes: mix.bytes(),
        captures: mix
            .files
            .iter()
            .map(|f| f.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()))
            .collect(),
        datagrams_per_round: count,
        utcp_per_second: rate(Parser::Utcp),
        utcp_verify_per_second: rate(Parser::UtcpVerify),
        etherparse_sliced_per_second: ether,
        etherparse_ip_tcp_per_second: rate(Parser::EtherparseIpTcp),
        ratio: if ether > 0.0 { rate(Parser::Utcp) / ether } else { 0.0 },
        parsers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_mix_has_datagrams_and_every_parser_accepts_the_tcp_ones() {
        let mix = load_mix(&default_captures()).unwrap();
        assert!(mix.datagrams.len() > 100, "{} datagrams", mix.datagrams.len());
        assert!(mix.files.len() >= 10);
        for parser in [Parser::Utcp, Parser::EtherparseSliced, Parser::EtherparseIpTcp] {
            let run = time_parser(parser, &mix, mix.datagrams.len() as u64);
            assert_eq!(run.datagrams, mix.datagrams.len() as u64);
            // Every datagram in the corpus is whole and unfragmented: all parse without checksums.
            assert_eq!(run.parsed, run.datagrams, "{}", parser.name());
        }
    }

    #[test]
    fn utcp_and_etherparse_read_the_same_fields() {
        let mix = load_mix(&default_captures()).unwrap();
        for d in &mix.datagrams {
            let (mut a, mut b, mut c) = (0, 0, 0);
            assert!(parse_one(Parser::Utcp, d, &mut a));
            assert!(parse_one(Parser::EtherparseSliced, d, &mut b));
            assert!(parse_one(Parser::EtherparseIpTcp, d, &mut c));
            assert_eq!(a, b, "utcp and SlicedPacket read different fields from {d:02x?}");
            assert_eq!(b, c, "the two etherparse paths read different fields from {d:02x?}");
        }
    }

    #[test]
    fn report_has_every_parser_and_the_json_keys() {
        let mix = load_mix(&default_captures()).unwrap();
        let mut runs = 0;
        let report = run_parse(&mix, 500, 2, |_, _, _| runs += 1);
        assert_eq!(runs, 8);
        assert_eq!(report.parsers.len(), 4);
        assert!(report.parsers.iter().all(|p| p.rounds.len() == 2 && p.per_second > 0.0));
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "utcp_per_second",
            "utcp_verify_per_second",
            "etherparse_sliced_per_second",
            "etherparse_ip_tcp_per_second",
            "ratio",
            "mix_datagrams",
        ] {
            assert!(json[key].is_number(), "{key} in {json}");
        }
    }

    #[test]
    fn a_directory_without_captures_is_an_error() {
        let dir = std::env::temp_dir().join(format!("utcp-bench-parse-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(load_mix(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
