//! Splitting a capture's TCP segments into connections (DESIGN.md "Replay" step 1).
//!
//! A connection is a 4-tuple plus SYN: a SYN on a tuple whose previous connection ended (RST,
//! or FIN both ways), or that was only seen mid-stream, starts a new connection; a retransmitted
//! SYN does not. The client is the endpoint that sent the SYN, or the one a SYN-ACK was sent to
//! when the SYN-ACK comes first (capture reordering). A connection with neither is kept and
//! marked mid-stream; its server is guessed as the endpoint with the lower port.
//!
//! [`split`] splits a capture held in memory; [`FlowStream`] reads a file record by record and
//! hands each connection over once it is finished (closed and past a grace, idle, or at the end
//! of the file), so that only the connections open at once are held.
//!
//! Headers are read with etherparse, leniently (captures are often sliced or have bad
//! checksums); the datagram is kept whole for replay to parse with `utcp::wire`.
//! Must not depend on: the stack, the transcript, terminals.

use crate::capture::calls::{parse_record, AppCall, Driven, CALLS_LINKTYPE};
use crate::capture::{CaptureError, CaptureStream, Content, LinkType, Record};
use etherparse::{IpNumber, LaxIpSlice, TcpSlice};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use utcp::tcp::seq::SeqNum;
use utcp::time::{Duration, Instant};
use utcp::wire::TcpFlags;

/// Which endpoint sent a packet.
pub use crate::side::Side;

/// The TCP header fields of a packet, read leniently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSummary {
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number as on the wire.
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Raw window field.
    pub window: u16,
    /// Payload bytes on the wire, from the IP header's length (more than were captured when the
    /// capture was taken with a short snap length).
    pub payload_len: usize,
    /// Payload bytes present in the capture.
    pub captured_payload_len: usize,
    /// Offset of the TCP header in the datagram.
    pub tcp_offset: usize,
    /// Length of the TCP header (options included).
    pub header_len: usize,
}

impl TcpSummary {
    /// Whether the capture holds less payload than was sent (snap length).
    pub fn is_sliced(&self) -> bool {
        self.captured_payload_len < self.payload_len
    }

    /// Length in sequence space: payload plus SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload_len + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }
}

/// One packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPacket {
    /// Record number in the capture (1-based).
    pub number: u64,
    /// Capture time.
    pub time: Instant,
    /// Who sent it.
    pub from: Side,
    /// The IP datagram as captured.
    pub datagram: Vec<u8>,
    /// Its TCP header fields.
    pub tcp: TcpSummary,
}

impl FlowPacket {
    /// The datagram with what a short snap length cut off as zeros: a sliced record parses whole,
    /// with the payload length its IP header declared (the captured bytes, then zeros). Its
    /// checksum no longer holds. A record captured whole is returned as it is.
    pub fn zero_filled(&self) -> Cow<'_, [u8]> {
        if !self.tcp.is_sliced() {
            return Cow::Borrowed(&self.datagram);
        }
        let mut d = self.datagram.clone();
        d.resize(self.tcp.tcp_offset + self.tcp.header_len + self.tcp.payload_len, 0);
        Cow::Owned(d)
    }

    /// The datagram as captured, its IP length fields cut down to match, so that a sliced record
    /// parses with only the captured payload. A record captured whole is returned as it is.
    pub fn as_captured(&self) -> Cow<'_, [u8]> {
        if !self.tcp.is_sliced() {
            return Cow::Borrowed(&self.datagram);
        }
        let mut d = self.datagram.clone();
        let captured = d.len();
        match d.first().map(|b| b >> 4) {
            Some(4) if captured >= 20 => d[2..4].copy_from_slice(&(captured.min(65535) as u16).to_be_bytes()),
            Some(6) if captured >= 40 => {
                d[4..6].copy_from_slice(&((captured - 40).min(65535) as u16).to_be_bytes())
            }
            _ => {}
        }
        Cow::Owned(d)
    }

    /// The raw TCP options area, in wire order.
    pub fn raw_options(&self) -> &[u8] {
        let start = self.tcp.tcp_offset + 20;
        self.datagram.get(start..self.tcp.tcp_offset + self.tcp.header_len).unwrap_or(&[])
    }
}

/// One TCP connection found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// 1-based index in order of first packet.
    pub index: usize,
    /// The opener's endpoint.
    pub client: SocketAddr,
    /// The answerer's endpoint.
    pub server: SocketAddr,
    /// Seen without its SYN or SYN-ACK: the capture started mid-stream.
    pub mid_stream: bool,
    /// The packets in capture order.
    pub packets: Vec<FlowPacket>,
    /// The application's calls and the driver's timer runs recorded with the packets (utcp's
    /// live captures), in capture order.
    pub calls: Vec<RecordedCall>,
}

/// A record of utcp's live driver in the capture ([`crate::capture::calls`]): an application
/// call on the connection, or a run of the timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedCall {
    /// Record number in the capture (1-based).
    pub number: u64,
    /// When it happened.
    pub time: Instant,
    /// How many of the connection's packets came before it in the capture.
    pub after: usize,
    /// What happened.
    pub what: Recorded,
}

/// What a [`RecordedCall`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The application at endpoint `by` made `call`.
    App {
        /// The endpoint that made it.
        by: Side,
        /// The call.
        call: AppCall,
    },
    /// The driver ran the stack's timers that were due (recorded in every connection open).
    Timers,
}

impl Flow {
    /// Which side sent from `src` to `dst`, if the pair belongs to this flow.
    pub fn side_of(&self, src: SocketAddr, dst: SocketAddr) -> Option<Side> {
        if (src, dst) == (self.client, self.server) {
            Some(Side::Client)
        } else if (src, dst) == (self.server, self.client) {
            Some(Side::Server)
        } else {
            None
        }
    }

    /// The ISN of `side`: the sequence number of its first SYN, if it sent one.
    pub fn isn(&self, side: Side) -> Option<SeqNum> {
        self.packets.iter().find(|p| p.from == side && p.tcp.flags.syn()).map(|p| p.tcp.seq)
    }
}

/// Why a record is not part of any connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Record number.
    pub number: u64,
    /// Why: not IP, not TCP, a fragment, or a header that cannot be read.
    pub reason: String,
}

/// A capture split into connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flows {
    /// The connections, in order of first packet.
    pub flows: Vec<Flow>,
    /// Records that are not TCP segments of a connection, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Reads the TCP header of an IP datagram leniently: addresses, ports and fields.
pub fn summarize(ip: &[u8]) -> Result<(SocketAddr, SocketAddr, TcpSummary), String> {
    let (slice, _ext_err) = LaxIpSlice::from_slice(ip).map_err(|e| format!("IP header: {e}"))?;
    let payload = slice.payload();
    if payload.ip_number != IpNumber::TCP {
        return Err(format!("not TCP (protocol {})", payload.ip_number.0));
    }
    if payload.fragmented {
        return Err("IP fragment".to_string());
    }
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|e| format!("TCP header: {e}"))?;
    let src = SocketAddr::new(slice.source_addr(), tcp.source_port());
    let dst = SocketAddr::new(slice.destination_addr(), tcp.destination_port());
    let mut flags = TcpFlags::NONE;
    for (set, f) in [
        (tcp.fin(), TcpFlags::FIN),
        (tcp.syn(), TcpFlags::SYN),
        (tcp.rst(), TcpFlags::RST),
        (tcp.psh(), TcpFlags::PSH),
        (tcp.ack(), TcpFlags::ACK),
        (tcp.urg(), TcpFlags::URG),
        (tcp.ece(), TcpFlags::ECE),
        (tcp.cwr(), TcpFlags::CWR),
        (tcp.ns(), TcpFlags::NS),
    ] {
        if set {
            flags |= f;
        }
    }
    let tcp_offset = payload.payload.as_ptr() as usize - ip.as_ptr() as usize;
    let header_len = tcp.header_slice().len();
    let captured_payload_len = tcp.payload().len();
    // A short snap length cuts the datagram: the IP header still says how long it was.
    let declared_ip_len = match &slice {
        LaxIpSlice::Ipv4(v4) => usize::from(v4.header().total_len()),
        LaxIpSlice::Ipv6(v6) => match v6.header().payload_length() {
            0 => ip.len(), // jumbogram or unknown: trust the capture
            n => 40 + usize::from(n),
        },
    };
    let payload_len = if payload.incomplete {
        declared_ip_len.saturating_sub(tcp_offset + header_len).max(captured_payload_len)
    } else {
        captured_payload_len
    };
    let summary = TcpSummary {
        seq: SeqNum(tcp.sequence_number()),
        ack: SeqNum(tcp.acknowledgment_number()),
        flags,
        window: tcp.window_size(),
        payload_len,
        captured_payload_len,
        tcp_offset,
        header_len,
    };
    Ok((src, dst, summary))
}

/// What the splitter remembers about a connection while splitting.
#[derive(Debug, Clone, Copy)]
struct Open {
    client_isn: Option<SeqNum>,
    fin_client: bool,
    fin_server: bool,
    rst: bool,
    /// The client sent something other than a SYN (the handshake moved on).
    client_past_syn: bool,
    /// Where each side's first FIN ends in sequence space (client, server), once sent.
    fin_end: [Option<SeqNum>; 2],
    /// Whether the other side acknowledged that FIN (client's, server's).
    fin_acked: [bool; 2],
}

impl Open {
    const NEW: Open = Open {
        client_isn: None,
        fin_client: false,
        fin_server: false,
        rst: false,
        client_past_syn: false,
        fin_end: [None, None],
        fin_acked: [false, false],
    };

    /// A SYN on the tuple now starts a new connection.
    fn ended(&self) -> bool {
        self.rst || (self.fin_client && self.fin_server)
    }

    /// Nothing more belongs to the connection but stragglers: a RST, or both FINs acknowledged.
    fn closed(&self) -> bool {
        self.rst || (self.fin_acked[0] && self.fin_acked[1])
    }
}

type TupleKey = (SocketAddr, SocketAddr);

/// Tuple key independent of direction.
fn key(a: SocketAddr, b: SocketAddr) -> TupleKey {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// A connection being split: its state, and its packets until they are handed over.
#[derive(Debug)]
struct Tracked {
    open: Open,
    flow: Flow,
    /// Capture time of its last packet.
    last: Instant,
    /// Its packets were taken ([`Splitter::take`]); it stays known so that a late packet is
    /// recognised as one and a SYN on the tuple is judged as before.
    taken: bool,
}

/// The connections by index, from the oldest still known on: looked up without hashing, as
/// indices are given out in order and mostly forgotten in order.
#[derive(Debug, Default)]
struct Known {
    /// The index of `slots[0]`.
    first: usize,
    /// `None` for a connection forgotten while an older one is still known.
    slots: VecDeque<Option<Box<Tracked>>>,
}

impl Known {
    fn get(&self, i: usize) -> Option<&Tracked> {
        self.slots.get(i.checked_sub(self.first)?)?.as_deref()
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Tracked> {
        self.slots.get_mut(i.checked_sub(self.first)?)?.as_deref_mut()
    }

    /// Adds connection `i`, one past the newest.
    fn push(&mut self, i: usize, t: Tracked) {
        if self.slots.is_empty() {
            self.first = i;
        }
        self.slots.push_back(Some(Box::new(t)));
    }

    /// Forgets the connections `keep` refuses.
    /// Returns how many it forgot.
    fn retain(&mut self, keep: impl Fn(&Tracked) -> bool) -> usize {
        let mut forgotten = 0;
        for slot in &mut self.slots {
            if slot.as_deref().is_some_and(|t| !keep(t)) {
                *slot = None;
                forgotten += 1;
            }
        }
        self.trim();
        forgotten
    }

    fn remove(&mut self, i: usize) {
        if let Some(slot) = i.checked_sub(self.first).and_then(|j| self.slots.get_mut(j)) {
            *slot = None;
        }
        self.trim();
    }

    /// Drops the forgotten slots at the front.
    fn trim(&mut self) {
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.first += 1;
        }
    }

    /// The known connections in index order.
    fn iter(&self) -> impl Iterator<Item = (usize, &Tracked)> {
        self.slots.iter().enumerate().filter_map(|(j, s)| s.as_deref().map(|t| (self.first + j, t)))
    }

    /// The known connections, to change.
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Tracked> {
        self.slots.iter_mut().flatten().map(|t| &mut **t)
    }
}

/// Where [`Splitter::push`] put a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    /// The connection's 1-based index.
    pub flow: usize,
    /// The connection started with this packet.
    pub started: bool,
    /// With this packet the connection closed (a RST, or the ACK of the second FIN).
    pub closed: bool,
    /// The connection's packets were already taken: this one was left out.
    pub late: bool,
    /// An application call on a connection already taken, left out.
    pub late_call: bool,
}

/// Splits records into TCP connections one at a time (the rules of [`split`]). A connection's
/// packets can be taken out once it is finished; what remains of it is its state, a few dozen
/// bytes, until [`Splitter::forget`] drops it.
#[derive(Debug, Default)]
pub struct Splitter {
    /// The current connection of each tuple, by index.
    current: HashMap<TupleKey, usize>,
    /// The last tuple seen, as consecutive packets mostly share one.
    last: Option<(TupleKey, usize)>,
    flows: Known,
    started: usize,
    /// Connections whose packets are held (not taken).
    held: usize,
}

impl Splitter {
    /// Assigns a record to its connection and keeps its packet, or says why it belongs to none.
    pub fn push(&mut self, rec: &Record<'_>) -> Result<Assigned, Skipped> {
        let ip = match rec.content {
            Content::Ip(ip) => ip,
            Content::NotIp(_) if rec.link == LinkType::Other(CALLS_LINKTYPE) => return self.push_call(rec),
            Content::NotIp(why) => return Err(Skipped { number: rec.number, reason: why.to_string() }),
        };
        let (src, dst, tcp) = summarize(ip).map_err(|reason| Skipped { number: rec.number, reason })?;
        let k = key(src, dst);
        let is_syn = tcp.flags.syn() && !tcp.flags.ack();
        let is_synack = tcp.flags.syn() && tcp.flags.ack();
        let found = match self.last {
            Some((lk, i)) if lk == k => Some(i),
            _ => self.current.get(&k).copied(),
        };
        // The tuple's connection, if it is still known, and whether this packet starts another.
        let (found, start_new) = match found.and_then(|i| self.flows.get(i).map(|t| (i, t))) {
            None => (None, true),
            Some((i, t)) => {
                let o = &t.open;
                let new_isn = matches!(o.client_isn, Some(isn) if isn != tcp.seq) && o.client_past_syn;
                (Some(i), is_syn && (o.ended() || t.flow.mid_stream || new_isn))
            }
        };
        let i = match found {
            Some(i) if !start_new => i,
            _ => {
                let (client, server, mid_stream) = if is_syn {
                    (src, dst, false)
                } else if is_synack {
                    (dst, src, false)
                } else if src.port() > dst.port() || (src.port() == dst.port() && src > dst) {
                    (src, dst, true)
                } else {
                    (dst, src, true)
                };
                // The tuple's previous connection can no longer be reached once its packets are out.
                if let Some(old) = found.filter(|&old| self.flows.get(old).is_some_and(|t| t.taken)) {
                    self.flows.remove(old);
                }
                self.started += 1;
                self.held += 1;
                let i = self.started;
                let flow =
                    Flow { index: i, client, server, mid_stream, packets: Vec::new(), calls: Vec::new() };
                self.flows.push(i, Tracked { open: Open::NEW, flow, last: rec.time, taken: false });
                self.current.insert(k, i);
                i
            }
        };
        self.last = Some((k, i));
        let Some(t) = self.flows.get_mut(i) else { unreachable!("flow {i} was inserted or found above") };
        let was_closed = t.open.closed();
        let o = &mut t.open;
        let from = if src == t.flow.client { Side::Client } else { Side::Server };
        let (me, other) = match from {
            Side::Client => (0, 1),
            Side::Server => (1, 0),
        };
        match from {
            Side::Client => {
                if is_syn && o.client_isn.is_none() {
                    o.client_isn = Some(tcp.seq);
                }
                o.client_past_syn |= !is_syn;
                o.fin_client |= tcp.flags.fin();
            }
            Side::Server => o.fin_server |= tcp.flags.fin(),
        }
        o.rst |= tcp.flags.rst();
        if tcp.flags.fin() && o.fin_end[me].is_none() {
            o.fin_end[me] = Some(tcp.seq + tcp.segment_len());
        }
        if tcp.flags.ack() && o.fin_end[other].is_some_and(|end| tcp.ack.diff(end) >= 0) {
            o.fin_acked[other] = true;
        }
        t.last = t.last.max(rec.time);
        let closed = !was_closed && t.open.closed();
        if t.taken {
            return Ok(Assigned { flow: i, started: false, closed, late: true, late_call: false });
        }
        t.flow.packets.push(FlowPacket {
            number: rec.number,
            time: rec.time,
            from,
            datagram: ip.to_vec(),
            tcp,
        });
        Ok(Assigned { flow: i, started: start_new, closed, late: false, late_call: false })
    }

    /// Attaches an application call to the connection it names, or a run of the timers to every
    /// connection held, among the packets seen so far. A run of the timers is assigned to flow 0.
    fn push_call(&mut self, rec: &Record<'_>) -> Result<Assigned, Skipped> {
        let skipped = |reason: String| Skipped { number: rec.number, reason };
        let (local, remote, call) = match parse_record(rec.frame).map_err(skipped)? {
            Driven::Timers => {
                for t in self.flows.iter_mut().filter(|t| !t.taken) {
                    let after = t.flow.packets.len();
                    let what = Recorded::Timers;
                    t.flow.calls.push(RecordedCall { number: rec.number, time: rec.time, after, what });
                }
                return Ok(Assigned {
                    flow: 0,
                    started: false,
                    closed: false,
                    late: false,
                    late_call: false,
                });
            }
            Driven::Call { local, remote, call } => (local, remote, call),
        };
        let i = self.current.get(&key(local, remote)).copied();
        let Some((i, t)) = i.and_then(|i| self.flows.get_mut(i).map(|t| (i, t))) else {
            return Err(skipped(format!(
                "application call on {local} - {remote}, a connection not in the capture"
            )));
        };
        let Some(by) = t.flow.side_of(local, remote) else { unreachable!("the tuple's flow has both ends") };
        if !t.taken {
            let after = t.flow.packets.len();
            let what = Recorded::App { by, call };
            t.flow.calls.push(RecordedCall { number: rec.number, time: rec.time, after, what });
        }
        Ok(Assigned { flow: i, started: false, closed: false, late: false, late_call: t.taken })
    }

    /// Takes the packets of connection `index` (all of the connection, once it is finished);
    /// later packets of it are left out. `None` when they were taken already.
    pub fn take(&mut self, index: usize) -> Option<Flow> {
        let t = self.flows.get_mut(index).filter(|t| !t.taken)?;
        t.taken = true;
        self.held -= 1;
        let f = &mut t.flow;
        let packets = std::mem::take(&mut f.packets);
        let calls = std::mem::take(&mut f.calls);
        Some(Flow {
            index: f.index,
            client: f.client,
            server: f.server,
            mid_stream: f.mid_stream,
            packets,
            calls,
        })
    }

    /// Drops what is known of the taken connections whose last packet is older than `before`:
    /// a packet of their tuple after that starts a connection of its own. Returns how many.
    pub fn forget(&mut self, before: Instant) -> usize {
        let forgotten = self.flows.retain(|t| !(t.taken && t.last < before));
        let flows = &self.flows;
        self.current.retain(|_, i| flows.get(*i).is_some());
        if self.last.is_some_and(|(_, i)| flows.get(i).is_none()) {
            self.last = None;
        }
        forgotten
    }

    /// The indices of the connections whose packets are held and whose last packet is older
    /// than `before`, in index order.
    pub fn idle(&self, before: Instant) -> Vec<usize> {
        self.flows.iter().filter(|(_, t)| !t.taken && t.last < before).map(|(i, _)| i).collect()
    }

    /// The indices of the connections whose packets are held, in index order.
    pub fn held_flows(&self) -> Vec<usize> {
        self.flows.iter().filter(|(_, t)| !t.taken).map(|(i, _)| i).collect()
    }

    /// How many connections have their packets held.
    pub fn held(&self) -> usize {
        self.held
    }

    /// How many connections were started.
    pub fn started(&self) -> usize {
        self.started
    }
}

/// Splits the records of a capture into TCP connections.
pub fn split<'a>(records: impl IntoIterator<Item = &'a Record<'a>>) -> Flows {
    let mut out = Flows::default();
    let mut splitter = Splitter::default();
    for rec in records {
        if let Err(s) = splitter.push(rec) {
            out.skipped.push(s);
        }
    }
    out.flows = (1..=splitter.started()).filter_map(|i| splitter.take(i)).collect();
    out
}

/// When [`FlowStream`] hands a connection over, in capture time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finishing {
    /// A closed connection (RST, or both FINs acknowledged) is held this long after it closed,
    /// for stragglers (a retransmitted FIN, a late RST) ...
    pub close_grace: Duration,
    /// ... but no more than this many closed connections are held: past it the longest closed
    /// goes at once (memory stays bounded however fast connections close).
    pub max_closed: usize,
    /// A connection with no packet for this long is handed over as it is.
    pub idle: Duration,
}

impl Default for Finishing {
    /// The replay engine's tail for the grace, 8 closed connections, 5 minutes of silence.
    fn default() -> Self {
        Finishing { close_grace: Duration::from_secs(120), max_closed: 8, idle: Duration::from_secs(300) }
    }
}

/// Counts of a [`FlowStream`] so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Records read.
    pub records: u64,
    /// Records that are not TCP segments of a connection.
    pub skipped: u64,
    /// Connections started.
    pub connections: usize,
    /// The most connections whose packets were held at once.
    pub peak_open_flows: usize,
    /// Packets of connections already handed over, left out.
    pub late_packets: u64,
    /// Application calls on connections already handed over, left out.
    pub late_calls: u64,
    /// Connections handed over and then forgotten after their silence: a later packet of their
    /// tuple starts a connection of its own, where [`split`] would have added it to theirs.
    pub forgotten: u64,
}

/// The connections of a capture read record by record, each handed over as soon as it is
/// finished: closed and past its grace, idle too long, or at the end of the file (or at damage).
/// Only the connections open at once are held, never the whole file. Connections come out in
/// the order they finish; their indices are those [`split`] gives.
pub struct FlowStream<R = std::fs::File> {
    records: CaptureStream<R>,
    splitter: Splitter,
    finishing: Finishing,
    /// Closed connections still held, in the order they closed, with the capture time they did.
    closed: VecDeque<(usize, Instant)>,
    ready: VecDeque<Flow>,
    /// The latest capture time read (capture times need not grow record by record).
    now: Instant,
    /// When to look for idle connections next.
    next_idle_check: Instant,
    done: bool,
    stats: StreamStats,
}

impl FlowStream<std::fs::File> {
    /// Opens the capture at `path`.
    pub fn open(path: impl AsRef<Path>, finishing: Finishing) -> Result<FlowStream, CaptureError> {
        Ok(FlowStream::new(CaptureStream::open(path)?, finishing))
    }
}

impl<R: std::io::Read> FlowStream<R> {
    /// The connections of the records `records` reads.
    pub fn new(records: CaptureStream<R>, finishing: Finishing) -> FlowStream<R> {
        FlowStream {
            records,
            splitter: Splitter::default(),
            finishing,
            closed: VecDeque::new(),
            ready: VecDeque::new(),
            now: Instant::ZERO,
            next_idle_check: Instant::ZERO,
            done: false,
            stats: StreamStats::default(),
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Bytes of the file parsed so far.
    pub fn bytes_read(&self) -> u64 {
        self.records.bytes_read()
    }

    /// The next finished connection; damage to the file once, as an error, after which the
    /// connections still open come (as at the end of the file) for a caller that goes on.
    pub fn next_flow(&mut self) -> Option<Result<Flow, CaptureError>> {
        loop {
            if let Some(f) = self.ready.pop_front() {
                return Some(Ok(f));
            }
            if self.done {
                return None;
            }
            match self.records.next_record() {
                None => {
                    self.done = true;
                    self.hand_over_all();
                }
                Some(Err(e)) => {
                    self.done = true;
                    self.hand_over_all();
                    return Some(Err(e));
                }
                Some(Ok(rec)) => {
                    self.stats.records += 1;
                    self.now = self.now.max(rec.time);
                    match self.splitter.push(&rec) {
                        Err(_) => self.stats.skipped += 1,
                        Ok(a) => {
                            self.stats.late_packets += u64::from(a.late);
                            self.stats.late_calls += u64::from(a.late_call);
                            if a.closed && !a.late {
                                self.closed.push_back((a.flow, self.now));
                            }
                        }
                    }
                    self.stats.connections = self.splitter.started();
                    self.stats.peak_open_flows = self.stats.peak_open_flows.max(self.splitter.held());
                    self.hand_over_finished();
                }
            }
        }
    }

    /// Closed connections past their grace or beyond the bound, and idle ones.
    fn hand_over_finished(&mut self) {
        let f = self.finishing;
        while let Some(&(i, at)) = self.closed.front() {
            if self.closed.len() <= f.max_closed && at + f.close_grace > self.now {
                break;
            }
            self.closed.pop_front();
            self.ready.extend(self.splitter.take(i));
        }
        if self.now >= self.next_idle_check {
            let before = Instant::from_micros(self.now.total_micros().saturating_sub(f.idle.total_micros()));
            for i in self.splitter.idle(before) {
                self.ready.extend(self.splitter.take(i));
            }
            self.stats.forgotten += self.splitter.forget(before) as u64;
            self.next_idle_check = self.now + Duration::from_micros((f.idle.total_micros() / 8).max(1));
        }
    }

    /// Every connection still held, in index order.
    fn hand_over_all(&mut self) {
        self.closed.clear();
        for i in self.splitter.held_flows() {
            self.ready.extend(self.splitter.take(i));
        }
    }
}

/// Items that arrive out of order by a 1-based index, given back in index order as soon as
/// every earlier one has arrived (finished connections waiting for the earlier open ones).
#[derive(Debug)]
pub struct InOrder<T> {
    next: usize,
    waiting: std::collections::BTreeMap<usize, T>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder { next: 1, waiting: std::collections::BTreeMap::new() }
    }
}

impl<T> InOrder<T> {
    /// Adds item `index`; returns the items now due, in order.
    pub fn insert(&mut self, index: usize, item: T) -> Vec<T> {
        self.waiting.insert(index, item);
        let mut due = Vec::new();
        while let Some(item) = self.waiting.remove(&self.next) {
            due.push(item);
            self.next += 1;
        }
        due
    }

    /// How many items wait for an earlier one.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;

    const C: ([u8; 4], u16) = ([192, 0, 2, 1], 40000);
    const S: ([u8; 4], u16) = ([192, 168, 0, 1], 8080);

    /// A datagram from `from` to `to` with flags given as packetdrill letters.
    fn seg(
        from: ([u8; 4], u16),
        to: ([u8; 4], u16),
        flags: &str,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = etherparse::PacketBuilder::ipv4(from.0, to.0, 64).tcp(from.1, to.1, seq, 1000);
        for c in flags.chars() {
            b = match c {
                'S' => b.syn(),
                'F' => b.fin(),
                'R' => b.rst(),
                'P' => b.psh(),
                '.' => b.ack(ack),
                _ => panic!("flag {c}"),
            };
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn records(datagrams: &[Vec<u8>]) -> Vec<Record<'_>> {
        datagrams
            .iter()
            .enumerate()
            .map(|(i, d)| Record {
                number: i as u64 + 1,
                time: Instant::from_micros(i as u64 * 10),
                link: LinkType::RawIp,
                interface: 0,
                original_len: d.len() as u32,
                frame: d,
                content: Content::Ip(d),
                comment: None,
            })
            .collect()
    }

    fn sides(f: &Flow) -> String {
        f.packets.iter().map(|p| if p.from == Side::Client { 'c' } else { 's' }).collect()
    }

    #[test]
    fn recorded_calls_and_timer_runs_land_in_their_connection_between_its_packets() {
        use crate::capture::calls::AppCall;
        use crate::capture::{CaptureReader, CaptureWriter, Format};
        let addr = |e: ([u8; 4], u16)| SocketAddr::from((std::net::Ipv4Addr::from(e.0), e.1));
        let t = Instant::from_micros;
        let mut w =
            CaptureWriter::new(Vec::new(), "calls.pcapng", Format::PcapNg, pcap_file::Endianness::Little)
                .unwrap();
        w.write(t(10), &seg(C, S, "S", 100, 0, b""), None).unwrap();
        w.write(t(10), &seg(S, C, "S.", 500, 101, b""), None).unwrap();
        w.write(t(20), &seg(C, S, "P.", 101, 501, b"GET"), None).unwrap();
        w.write_call(t(30), addr(S), addr(C), AppCall::Read(3)).unwrap();
        w.write_call(t(40), addr(S), addr(C), AppCall::Write { asked: 9, taken: 5 }).unwrap();
        w.write(t(40), &seg(S, C, "P.", 501, 104, b"HELLO"), None).unwrap();
        w.write_timers(t(50)).unwrap();
        // A call on a connection the capture never saw.
        w.write_call(t(60), addr(C), ([10, 0, 0, 9], 1).into(), AppCall::Close).unwrap();
        let bytes = w.finish().unwrap();
        let reader = CaptureReader::from_bytes("calls.pcapng", bytes);
        let all = reader.read_all(false).unwrap();
        let flows = split(&all.records);
        assert_eq!(flows.flows.len(), 1);
        let f = &flows.flows[0];
        assert_eq!(f.packets.len(), 4);
        let got: Vec<_> = f.calls.iter().map(|c| (c.number, c.time, c.after, c.what)).collect();
        let server = |call| Recorded::App { by: Side::Server, call };
        assert_eq!(
            got,
            [
                (4, t(30), 3, server(AppCall::Read(3))),
                (5, t(40), 3, server(AppCall::Write { asked: 9, taken: 5 })),
                (7, t(50), 4, Recorded::Timers),
            ]
        );
        assert_eq!(flows.skipped.len(), 1);
        assert_eq!(flows.skipped[0].number, 8);
        assert!(flows.skipped[0].reason.contains("a connection not in the capture"), "{:?}", flows.skipped);
    }

    #[test]
    fn syn_ack_captured_before_syn_still_makes_the_syn_sender_the_client() {
        let d = [
            seg(S, C, "S.", 500, 101, b""),
            seg(C, S, "S", 100, 0, b""),
            seg(C, S, ".", 101, 501, b""),
            seg(C, S, "P.", 101, 501, b"GET"),
        ];
        let flows = split(&records(&d));
        assert_eq!(flows.flows.len(), 1);
        let f = &flows.flows[0];
        assert_eq!((f.client.port(), f.server.port(), f.mid_stream), (40000, 8080, false));
        assert_eq!(sides(f), "sccc");
        assert_eq!(f.isn(Side::Client), Some(SeqNum(100)));
        assert_eq!(f.isn(Side::Server), Some(SeqNum(500)));
    }

    #[test]
    fn new_syn_after_close_starts_a_new_connection_but_a_retransmitted_syn_does_not() {
        let d = [
            seg(C, S, "S", 100, 0, b""),
            seg(C, S, "S", 100, 0, b""),
            seg(S, C, "S.", 500, 101, b""),
            seg(C, S, ".", 101, 501, b""),
            seg(C, S, "R.", 101, 501, b""),
            seg(C, S, "S", 9000, 0, b""),
            seg(S, C, "S.", 7000, 9001, b""),
        ];
        let flows = split(&records(&d));
        assert_eq!(flows.flows.len(), 2);
        assert_eq!(flows.flows[0].packets.len(), 5);
        assert_eq!(flows.flows[1].packets.iter().map(|p| p.number).collect::<Vec<_>>(), [6, 7]);
        assert_eq!(flows.flows[1].index, 2);
    }

    #[test]
    fn mid_stream_connection_is_marked_and_the_lower_port_is_the_server() {
        let d = [seg(S, C, "P.", 500, 101, b"data"), seg(C, S, ".", 101, 504, b"")];
        let flows = split(&records(&d));
        let f = &flows.flows[0];
        assert!(f.mid_stream);
        assert_eq!(f.server.port(), 8080);
        assert_eq!(sides(f), "sc");
        assert_eq!(f.packets[0].tcp.payload_len, 4);
    }

    #[test]
    fn non_tcp_records_are_skipped_with_a_reason() {
        let udp = {
            let mut out = Vec::new();
            etherparse::PacketBuilder::ipv4(C.0, S.0, 64).udp(1, 2).write(&mut out, b"x").unwrap();
            out
        };
        let d = [udp, vec![0x45, 0, 0]];
        let flows = split(&records(&d));
        assert!(flows.flows.is_empty());
        assert_eq!(flows.skipped.len(), 2);
        assert_eq!(flows.skipped[0].reason, "not TCP (protocol 17)");
        assert!(flows.skipped[1].reason.starts_with("IP header"), "{:?}", flows.skipped[1]);
    }

    #[test]
    fn raw_options_are_the_options_area() {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4(C.0, S.0, 64)
            .tcp(C.1, S.1, 1, 1000)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap()
            .write(&mut out, b"")
            .unwrap();
        let d = [out];
        let flows = split(&records(&d));
        assert_eq!(flows.flows[0].packets[0].raw_options(), [2, 4, 0x05, 0xb4]);
    }

    #[test]
    fn sliced_datagram_counts_the_payload_the_ip_header_declares() {
        let full = seg(C, S, "P.", 101, 501, &[7u8; 400]);
        let cut = full[..54].to_vec();
        let (_, _, t) = summarize(&cut).unwrap();
        assert_eq!((t.payload_len, t.captured_payload_len, t.is_sliced()), (400, 14, true));
        let (_, _, t) = summarize(&full).unwrap();
        assert_eq!((t.payload_len, t.captured_payload_len, t.is_sliced()), (400, 400, false));
    }
}
