//! `utcp inspect`: one summary per TCP connection of a capture (like `tshark -z conv,tcp`), as a
//! table or JSON, and the transcript of any connection.
//!
//! Must not depend on: the stack's state machine, terminals, the command line.

use crate::capture::flows::{Flow, FlowPacket, Flows, Side};
use crate::notes::Tally;
use crate::transcript::{format_time, Direction, Transcript};
use serde_json::{json, Value};
use std::fmt::Write as _;
use utcp::wire::{parse_datagram, ChecksumMode, Transport};

/// Which parts of the handshake a connection shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Handshake {
    /// The client's SYN.
    pub syn: bool,
    /// The server's SYN-ACK.
    pub syn_ack: bool,
    /// The client's ACK of the SYN-ACK.
    pub ack: bool,
}

impl Handshake {
    /// `complete`, or the parts seen (`SYN,SYN-ACK`), or `none`.
    pub fn describe(&self) -> String {
        if self.syn && self.syn_ack && self.ack {
            return "complete".to_string();
        }
        let parts: Vec<&str> = [(self.syn, "SYN"), (self.syn_ack, "SYN-ACK"), (self.ack, "ACK")]
            .iter()
            .filter(|(seen, _)| *seen)
            .map(|(_, n)| *n)
            .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(",")
        }
    }
}

/// Counts for one direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectionStats {
    /// Segments sent.
    pub packets: u64,
    /// TCP payload bytes sent (retransmissions included).
    pub bytes: u64,
    /// Segments carrying payload of which some byte had been seen before.
    pub retransmissions: u64,
    /// Whether a FIN was sent.
    pub fin: bool,
    /// Whether a RST was sent.
    pub rst: bool,
}

/// The summary of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// 1-based flow index (as `--flow` takes it).
    pub flow: usize,
    /// The opener's endpoint.
    pub client: std::net::SocketAddr,
    /// The answerer's endpoint.
    pub server: std::net::SocketAddr,
    /// Seen without SYN or SYN-ACK.
    pub mid_stream: bool,
    /// Handshake parts seen.
    pub handshake: Handshake,
    /// Client to server.
    pub to_server: DirectionStats,
    /// Server to client.
    pub to_client: DirectionStats,
    /// First and last record numbers.
    pub records: (u64, u64),
    /// Microseconds from the first to the last packet.
    pub duration_us: u64,
}

impl Connection {
    /// How it ended: `FIN/FIN`, `FIN client`, `RST server`, ... or `open`.
    pub fn end(&self) -> String {
        let mut parts = Vec::new();
        match (self.to_server.fin, self.to_client.fin) {
            (true, true) => parts.push("FIN/FIN"),
            (true, false) => parts.push("FIN client"),
            (false, true) => parts.push("FIN server"),
            (false, false) => {}
        }
        if self.to_server.rst {
            parts.push("RST client");
        }
        if self.to_client.rst {
            parts.push("RST server");
        }
        if parts.is_empty() {
            "open".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// Byte ranges already seen in one direction, as offsets from the first sequence number seen.
#[derive(Default)]
struct Seen {
    base: Option<utcp::tcp::seq::SeqNum>,
    ranges: Vec<(i64, i64)>,
}

impl Seen {
    /// Adds `[seq, seq+len)`; returns whether any byte of it had been seen.
    fn add(&mut self, seq: utcp::tcp::seq::SeqNum, len: usize) -> bool {
        let base = *self.base.get_or_insert(seq);
        let lo = i64::from(seq.diff(base));
        let hi = lo + len as i64;
        let overlap = self.ranges.iter().any(|&(a, b)| lo < b && a < hi);
        self.ranges.push((lo, hi));
        self.ranges.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.ranges.len());
        for &(a, b) in &self.ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.ranges = merged;
        overlap
    }
}

/// Summarises one connection.
pub fn summarize(flow: &Flow) -> Connection {
    let mut hs = Handshake::default();
    let mut to_server = DirectionStats::default();
    let mut to_client = DirectionStats::default();
    let mut seen = [Seen::default(), Seen::default()];
    for p in &flow.packets {
        let f = p.tcp.flags;
        let (stats, seen) = match p.from {
            Side::Client => (&mut to_server, &mut seen[0]),
            Side::Server => (&mut to_client, &mut seen[1]),
        };
        stats.packets += 1;
        stats.bytes += p.tcp.payload_len as u64;
        stats.fin |= f.fin();
        stats.rst |= f.rst();
        if p.tcp.payload_len > 0 {
            // Payload follows the SYN's sequence number when the SYN carries data.
            let seq = p.tcp.seq + usize::from(f.syn());
            if seen.add(seq, p.tcp.payload_len) {
                stats.retransmissions += 1;
            }
        }
        match p.from {
            Side::Client if f.syn() && !f.ack() => hs.syn = true,
            Side::Server if f.syn() && f.ack() => hs.syn_ack = true,
            Side::Client if hs.syn_ack && f.ack() && !f.syn() && !f.rst() => hs.ack = true,
            _ => {}
        }
    }
    let first = flow.packets.first();
    let last = flow.packets.last();
    Connection {
        flow: flow.index,
        client: flow.client,
        server: flow.server,
        mid_stream: flow.mid_stream,
        handshake: hs,
        to_server,
        to_client,
        records: (first.map_or(0, |p| p.number), last.map_or(0, |p| p.number)),
        duration_us: match (first, last) {
            (Some(a), Some(b)) => b.time.saturating_duration_since(a.time).total_micros(),
            _ => 0,
        },
    }
}

/// The report of a whole capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The name to show for the file.
    pub file: String,
    /// Records read.
    pub records: u64,
    /// Records that are not TCP segments.
    pub skipped: u64,
    /// One entry per connection.
    pub connections: Vec<Connection>,
    /// Damage that stopped reading early (keep-going), as text.
    pub error: Option<String>,
}

/// Builds the report of a capture split into flows.
pub fn report(file: &str, records: u64, flows: &Flows, error: Option<String>) -> Report {
    Report {
        file: file.to_string(),
        records,
        skipped: flows.skipped.len() as u64,
        connections: flows.flows.iter().map(summarize).collect(),
        error,
    }
}

/// The report as an aligned text table, one row per connection.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} records, {} TCP {}, {} records not in a connection",
        r.file,
        r.records,
        r.connections.len(),
        if r.connections.len() == 1 { "connection" } else { "connections" },
        r.skipped
    );
    let _ = writeln!(
        out,
        "(> client to server, < server to client; bytes are TCP payload; retx = segments repeating data)"
    );
    let header = [
        "flow",
        "client",
        "server",
        ">pkts",
        ">bytes",
        "<pkts",
        "<bytes",
        "handshake",
        "end",
        ">retx",
        "<retx",
        "records",
        "duration",
    ];
    let rows: Vec<[String; 13]> = r
        .connections
        .iter()
        .map(|c| {
            let hs = if c.mid_stream {
                format!("mid-stream {}", c.handshake.describe())
            } else {
                c.handshake.describe()
            };
            [
                c.flow.to_string(),
                c.client.to_string(),
                c.server.to_string(),
                c.to_server.packets.to_string(),
                c.to_server.bytes.to_string(),
                c.to_client.packets.to_string(),
                c.to_client.bytes.to_string(),
                hs,
                c.end(),
                c.to_server.retransmissions.to_string(),
                c.to_client.retransmissions.to_string(),
                format!("{}-{}", c.records.0, c.records.1),
                format_time(utcp::time::Duration::from_micros(c.duration_us)),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    // Text columns left-aligned, numbers right-aligned.
    let left = [false, true, true, false, false, false, false, true, true, false, false, true, false];
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            if left[i] {
                let _ = write!(l, "{cell:<w$}", w = widths[i]);
            } else {
                let _ = write!(l, "{cell:>w$}", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "stopped early: {e}");
    }
    out
}

fn direction_json(d: &DirectionStats) -> Value {
    json!({
        "packets": d.packets,
        "bytes": d.bytes,
        "retransmissions": d.retransmissions,
        "fin": d.fin,
        "rst": d.rst,
    })
}

/// The report as one JSON object with a `connections` array.
pub fn to_json(r: &Report) -> Value {
    let connections: Vec<Value> = r
        .connections
        .iter()
        .map(|c| {
            json!({
                "flow": c.flow,
                "client": c.client.to_string(),
                "server": c.server.to_string(),
                "mid_stream": c.mid_stream,
                "handshake": c.handshake.describe(),
                "handshake_complete": c.handshake.syn && c.handshake.syn_ack && c.handshake.ack,
                "ending": c.end(),
                "client_to_server": direction_json(&c.to_server),
                "server_to_client": direction_json(&c.to_client),
                "first_record": c.records.0,
                "last_record": c.records.1,
                "duration_us": c.duration_us,
            })
        })
        .collect();
    json!({
        "file": r.file,
        "records": r.records,
        "skipped": r.skipped,
        "connections": connections,
        "error": r.error,
    })
}

fn sliced_note(p: &FlowPacket) -> String {
    format!("sliced: {} of {} payload bytes captured", p.tcp.captured_payload_len, p.tcp.payload_len)
}

/// The notes on a connection's packets (segments cut by the snap length), grouped by kind.
pub fn notes(flow: &Flow) -> Tally {
    let mut t = Tally::default();
    for p in flow.packets.iter().filter(|p| p.tcp.is_sliced()) {
        t.add(p.number, &sliced_note(p));
    }
    t
}

/// The notes of each connection, each kind once with its count: `flow 3: 21 packets: sliced: ...`.
pub fn notes_text(flows: &[&Flow]) -> String {
    let mut out = String::new();
    for f in flows {
        for line in notes(f).summary_lines() {
            let _ = writeln!(out, "note: flow {}: {line}", f.index);
        }
    }
    out
}

/// The transcript of one connection from the server's side: the client's segments are `<`,
/// the server's `>`. Segments utcp's parser refuses appear as comments saying why.
pub fn transcript(flow: &Flow) -> String {
    let mut t = Transcript::new(flow.server, flow.client);
    let mid = if flow.mid_stream { ", seen mid-stream" } else { "" };
    t.comment(&format!("flow {}: client {}, server {}{mid}", flow.index, flow.client, flow.server));
    // Known ISNs apply from the first line, even when the SYN-ACK was captured before the SYN.
    if let Some(isn) = flow.isn(Side::Client) {
        t.set_isn(Direction::In, isn);
    }
    if let Some(isn) = flow.isn(Side::Server) {
        t.set_isn(Direction::Out, isn);
    }
    let tally = notes(flow);
    for p in &flow.packets {
        let dir = match p.from {
            Side::Client => Direction::In,
            Side::Server => Direction::Out,
        };
        if p.tcp.is_sliced() {
            push_sliced(&mut t, p, dir, &tally);
            continue;
        }
        match parse_datagram(&p.datagram, ChecksumMode::Ignore) {
            Ok(d) => match d.transport {
                Transport::Tcp(tcp) => t.push_raw(p.time, dir, &tcp, p.raw_options()),
                _ => t.comment(&format!("record {}: not TCP", p.number)),
            },
            Err(e) => t.comment(&format!("record {}: not parsed: {e}", p.number)),
        }
    }
    t.into_string()
}

/// A segment captured with a short snap length: its header is shown with the payload length
/// the IP header declares, and a note says how much was captured.
/// A kind that repeats on every packet is noted on its first only, with the count.
fn push_sliced(t: &mut Transcript, p: &FlowPacket, dir: Direction, tally: &Tally) {
    let d = p.zero_filled();
    let note = sliced_note(p);
    match parse_datagram(&d, ChecksumMode::Ignore) {
        Ok(parsed) => match parsed.transport {
            Transport::Tcp(tcp) => {
                let shown = tally.shown(p.number, &note);
                t.push_segment(p.time, dir, &tcp, Some(p.raw_options()), shown.as_deref());
            }
            _ => t.comment(&format!("record {}: not TCP", p.number)),
        },
        Err(e) => t.comment(&format!("record {}: not parsed ({note}): {e}", p.number)),
    }
}
