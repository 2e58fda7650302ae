//! The stack: local addresses, demultiplexing, listeners and backlog, ICMP echo, socket calls,
//! events and counters.
//!
//! Polling order, once per wake-up of the driver:
//! 1. feed every received datagram to [`Stack::handle_packet`];
//! 2. if `now >= poll_timeout()`, call [`Stack::handle_timeout`];
//! 3. make socket calls (`send`, `recv`, `accept`, ...), draining [`Stack::poll_event`];
//! 4. call [`Stack::poll_transmit`] until it returns `None`, sending each datagram;
//! 5. sleep until [`Stack::poll_timeout`] or the next packet.
//!
//! Must not depend on: clocks, I/O, threads, OS randomness.

use crate::config::Config;
use crate::socket::{
    AbortError, AcceptError, CloseError, ConnectError, ListenError, Readiness, RecvError, SendError,
    SetOptionError, ShutdownError, SocketOption, SocketOptions, UnlistenError,
};
use crate::tcp::conn::{ChallengeLimiter, Connection, Ctx, FourTuple, Opening};
use crate::tcp::{isn, CloseReason, SeqNum, State};
use crate::time::{Duration, Instant};
use crate::wire::{
    self, ChecksumMode, IcmpRepr, IpRepr, TcpFlags, TcpOptions, TcpRepr, Transport, IPPROTO_TCP,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A connection, as returned by [`Stack::connect`] and [`Stack::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle(pub(crate) u32);

/// A listening socket, as returned by [`Stack::listen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerHandle(pub(crate) u32);

impl fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}", self.0)
    }
}

impl fmt::Display for ListenerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener#{}", self.0)
    }
}

/// Something the application may want to act on, from [`Stack::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A connection opened with `connect` reached ESTABLISHED.
    Connected(SocketHandle),
    /// A listener has at least one established connection waiting in `accept`.
    Acceptable(ListenerHandle),
    /// Data, or the end of the peer's stream, can be read.
    Readable(SocketHandle),
    /// The send buffer has room again after a `send` was refused with `WouldBlock`.
    Writable(SocketHandle),
    /// The connection is over; the handle stays valid until `close` or `abort`.
    Closed(SocketHandle, CloseReason),
}

/// Counters, readable at any time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// IP datagrams given to `handle_packet`.
    pub packets_in: u64,
    /// IP datagrams returned by `poll_transmit`.
    pub packets_out: u64,
    /// TCP segments accepted for processing.
    pub segments_in: u64,
    /// TCP segments sent.
    pub segments_out: u64,
    /// Segments retransmitted (RTO, fast retransmit, SYN and FIN retransmissions).
    pub retransmissions: u64,
    /// Retransmission timeouts that fired.
    pub timeouts: u64,
    /// Fast retransmits (three duplicate ACKs).
    pub fast_retransmits: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the rate limit.
    pub challenge_acks_suppressed: u64,
    /// RSTs sent.
    pub resets_out: u64,
    /// RSTs accepted.
    pub resets_in: u64,
    /// Checksum failures (also counted in `drops`).
    pub checksum_failures: u64,
    /// Connections established.
    pub connections_established: u64,
    /// ICMP echo requests answered.
    pub echo_replies: u64,
    /// ICMP error messages received (destination unreachable, packet too big, time exceeded,
    /// parameter problem), whatever became of them.
    pub icmp_errors_in: u64,
    /// Path MTU decreases taken from fragmentation-needed / packet-too-big messages (RFC 1191,
    /// RFC 8201).
    pub pmtu_updates: u64,
    /// Dropped packets and segments by reason, sorted by reason name.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
}

impl Stats {
    /// The number of drops counted under `reason` (0 if none).
    pub fn dropped(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// A broken connection invariant, found by [`Stack::check_invariants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantViolation {
    /// The connection, or `None` for a stack-wide invariant.
    pub socket: Option<SocketHandle>,
    /// What does not hold, with the values.
    pub what: String,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.socket {
            Some(s) => write!(f, "{s}: {}", self.what),
            None => write!(f, "stack: {}", self.what),
        }
    }
}

/// A snapshot of one connection's variables, for tests, reports and invariant checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// RFC 9293 state.
    pub state: State,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Initial send sequence number.
    pub iss: u32,
    /// Initial receive sequence number (0 until known).
    pub irs: u32,
    /// SND.UNA.
    pub snd_una: u32,
    /// SND.NXT.
    pub snd_nxt: u32,
    /// The peer's window, scaled, in bytes.
    pub snd_wnd: u32,
    /// RCV.NXT.
    pub rcv_nxt: u32,
    /// The window last advertised, scaled, in bytes.
    pub rcv_wnd: u32,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow-start threshold in bytes.
    pub ssthresh: u32,
    /// Effective send MSS.
    pub mss: u16,
    /// Smoothed RTT, if measured.
    pub srtt: Option<Duration>,
    /// Current RTO.
    pub rto: Duration,
    /// Bytes queued for sending (unsent and unacknowledged).
    pub send_queue: usize,
    /// Bytes ready for the application to read.
    pub recv_queue: usize,
}

/// A fast keyed hash for the connection table: FxHash-style mixing from a key derived from the
/// configured secret (the core reads no OS randomness), so hash flooding needs the secret.
#[derive(Debug, Clone)]
struct KeyedHash(u64);

impl KeyedHash {
    fn new(secret: &[u8; 16]) -> Self {
        KeyedHash(isn::siphash24(secret, b"connection-table") | 1)
    }
}

impl std::hash::BuildHasher for KeyedHash {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher(self.0)
    }
}

/// The hasher of [`KeyedHash`].
#[derive(Debug)]
struct KeyedHasher(u64);

impl std::hash::Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn finish(&self) -> u64 {
        // A final avalanche so that the low bits the table uses depend on every input bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

/// A listening socket.
#[derive(Debug)]
struct Listener {
    local: SocketAddr,
    backlog: usize,
    options: SocketOptions,
    /// Established connections waiting for `accept`.
    accept_queue: VecDeque<SocketHandle>,
    /// Half-open connections (SYN-RECEIVED) it owns.
    half_open: usize,
}

/// A slab entry: the connection and the generation that tells stale handles apart.
#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Box<Connection>>,
    /// The listener a passive connection belongs to until it is accepted.
    listener: Option<u32>,
    /// In the transmit queue.
    dirty: bool,
    /// Connected, Readable, Writable, Closed events of this slot waiting in the queue.
    pending_events: [bool; 4],
}

const INDEX_BITS: u32 = 20;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
/// Stack-generated packets (RSTs to closed ports, echo replies) waiting to go out, at most.
const OUTBOX_LIMIT: usize = 1024;
/// The IANA dynamic port range (RFC 6335 §6), for ephemeral ports.
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

/// The sans-IO TCP/IP stack.
pub struct Stack {
    config: Config,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_tuple: HashMap<FourTuple, u32, KeyedHash>,
    /// The connection the last segment went to: bulk traffic hits it without hashing.
    last_lookup: Option<(FourTuple, u32)>,
    listeners: Vec<Option<Listener>>,
    listener_by_addr: HashMap<SocketAddr, u32>,
    /// Connections that may have something to send.
    transmit_queue: VecDeque<u32>,
    /// Timer deadlines (lazy: an entry is current only if it equals the connection's `scheduled`).
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    events: VecDeque<Event>,
    /// Acceptable events waiting, per listener index (to keep out duplicates).
    pending_acceptable: Vec<bool>,
    /// Stands in for the flag of an event whose connection is gone.
    scratch_flag: bool,
    outbox: VecDeque<Vec<u8>>,
    stats: Stats,
    challenge: ChallengeLimiter,
    next_port: u16,
    connections: usize,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("addresses", &self.config.addresses)
            .field("connections", &self.connections)
            .field("listeners", &self.listener_by_addr.len())
            .finish()
    }
}

impl Stack {
    /// A stack with the given configuration and no sockets.
    pub fn new(config: Config) -> Self {
        let next_port = {
            let h = crate::tcp::isn::siphash24(&config.isn_secret, b"ephemeral-port");
            EPHEMERAL.start() + (h % u64::from(EPHEMERAL.end() - EPHEMERAL.start())) as u16
        };
        let hasher = KeyedHash::new(&config.isn_secret);
        Stack {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            by_tuple: HashMap::with_hasher(hasher.clone()),
            last_lookup: None,
            listeners: Vec::new(),
            listener_by_addr: HashMap::new(),
            transmit_queue: VecDeque::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            pending_acceptable: Vec::new(),
            scratch_flag: false,
            outbox: VecDeque::new(),
            stats: Stats::default(),
            challenge: ChallengeLimiter::default(),
            next_port,
            connections: 0,
        }
    }

    fn count_drop(&mut self, reason: &'static str) {
        *self.stats.drops.entry(reason).or_insert(0) += 1;
        tracing::trace!(reason, "dropped");
    }

    fn is_local(&self, addr: IpAddr) -> bool {
        self.config.addresses.contains(&addr)
    }

    // ------------------------------------------------------------------------------------------
    // Packets in

    /// One IP datagram in. Bad input is dropped and counted, never a panic.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        let checksums =
            if self.config.checksum_offload { ChecksumMode::Ignore } else { ChecksumMode::Verify };
        self.handle_packet_with(now, packet, checksums);
    }

    /// One IP datagram whose checksums the device vouches for, parsed without verifying them:
    /// a local kernel's packet with a partial checksum (CHECKSUM_PARTIAL) read from a TUN device
    /// with offloads on, where the checksum field holds only the pseudo-header sum.
    pub fn handle_packet_unchecked(&mut self, now: Instant, packet: &[u8]) {
        self.handle_packet_with(now, packet, ChecksumMode::Ignore);
    }

    fn handle_packet_with(&mut self, now: Instant, packet: &[u8], checksums: ChecksumMode) {
        self.stats.packets_in += 1;
        let dgram = match wire::parse_datagram(packet, checksums) {
            Ok(d) => d,
            Err(e) => {
                if matches!(e.kind, wire::WireErrorKind::BadChecksum { .. }) {
                    self.stats.checksum_failures += 1;
                }
                tracing::debug!(error = %e, "malformed packet dropped");
                self.count_drop(e.reason());
                return;
            }
        };
        if !self.is_local(dgram.ip.dst) {
            self.count_drop("not_local");
            return;
        }
        match dgram.transport {
            Transport::Tcp(seg) => self.handle_segment(now, &dgram.ip, &seg),
            Transport::Icmp(icmp) => self.handle_icmp(&dgram.ip, &icmp),
            Transport::Other(_) => self.count_drop("unknown_protocol"),
        }
    }

    fn handle_icmp(&mut self, ip: &IpRepr, icmp: &IcmpRepr<'_>) {
        match *icmp {
            IcmpRepr::EchoRequest { ident, seq_no, data } => {
                let reply = IcmpRepr::EchoReply { ident, seq_no, data };
                let ip_out = IpRepr {
                    src: ip.dst,
                    dst: ip.src,
                    protocol: ip.protocol,
                    hop_limit: self.config.hop_limit,
                    payload_len: reply.buffer_len(),
                };
                let t = Transport::Icmp(reply);
                let mut buf = vec![0; wire::datagram_len(&ip_out, &t)];
                if wire::emit_datagram(&ip_out, &t, &mut buf).is_ok() && self.push_outbox(buf) {
                    self.stats.echo_replies += 1;
                }
            }
            IcmpRepr::DestUnreachable { .. }
            | IcmpRepr::PacketTooBig { .. }
            | IcmpRepr::TimeExceeded { .. }
            | IcmpRepr::ParamProblem { .. } => self.handle_icmp_error(icmp),
            IcmpRepr::EchoReply { .. } | IcmpRepr::Other { .. } => self.count_drop("icmp_ignored"),
        }
    }

    /// An ICMP error goes to the connection whose segment it quotes (the quoted source is our
    /// end, RFC 5927 §4); the connection decides what it means.
    fn handle_icmp_error(&mut self, icmp: &IcmpRepr<'_>) {
        let Some(quote) = icmp.quote() else { return };
        self.stats.icmp_errors_in += 1;
        if quote.protocol != IPPROTO_TCP {
            self.count_drop("icmp_not_tcp");
            return;
        }
        let tuple = FourTuple {
            local: SocketAddr::new(quote.src, quote.src_port),
            remote: SocketAddr::new(quote.dst, quote.dst_port),
        };
        match self.by_tuple.get(&tuple).copied() {
            Some(idx) => {
                self.with_conn(idx, |conn, ctx| conn.on_icmp_error(icmp, ctx));
            }
            None => self.count_drop("icmp_no_connection"),
        }
    }

    fn push_outbox(&mut self, packet: Vec<u8>) -> bool {
        if self.outbox.len() >= OUTBOX_LIMIT {
            self.count_drop("outbox_full");
            return false;
        }
        self.outbox.push_back(packet);
        true
    }

    fn handle_segment(&mut self, now: Instant, ip: &IpRepr, seg: &TcpRepr<'_>) {
        if seg.src_port == 0 || seg.dst_port == 0 {
            self.count_drop("port_zero");
            return;
        }
        let tuple = FourTuple {
            local: SocketAddr::new(ip.dst, seg.dst_port),
            remote: SocketAddr::new(ip.src, seg.src_port),
        };
        let found = match self.last_lookup {
            Some((t, idx)) if t == tuple => Some(idx),
            _ => self.by_tuple.get(&tuple).copied(),
        };
        if let Some(idx) = found {
            self.last_lookup = Some((tuple, idx));
            // RFC 9293 §3.10.7.4 / RFC 6191: a new SYN may reopen a connection in TIME-WAIT
            // when its sequence number is beyond the old connection's.
            let reopen = {
                let conn = self.slots[idx as usize].conn.as_deref();
                matches!(conn, Some(c) if c.state == State::TimeWait
                    && seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst()
                    && seg.seq > c.rcv_nxt())
            };
            if reopen && self.find_listener(tuple.local).is_some() {
                self.remove(idx);
            } else {
                self.with_conn(idx, |conn, ctx| conn.on_segment(now, seg, ctx));
                return;
            }
        }
        if let Some(lidx) = self.find_listener(tuple.local) {
            self.listen_segment(now, lidx, tuple, seg);
            return;
        }
        // RFC 9293 §3.10.7.1: CLOSED. An incoming segment not containing a RST is answered by one.
        self.stats.segments_in += 1;
        self.count_drop("no_socket");
        self.reset_for(ip, seg);
    }

    /// Sends the RST of RFC 9293 §3.10.7.1 for a segment that has no connection.
    fn reset_for(&mut self, ip: &IpRepr, seg: &TcpRepr<'_>) {
        if seg.flags.rst() {
            return;
        }
        let (seq, ack, flags) = if seg.flags.ack() {
            // <SEQ=SEG.ACK><CTL=RST>
            (seg.ack, SeqNum(0), TcpFlags::RST)
        } else {
            // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            (SeqNum(0), seg.seq + seg.segment_len(), TcpFlags::RST | TcpFlags::ACK)
        };
        let rst = TcpRepr {
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            seq,
            ack,
            flags,
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        let ip_out = IpRepr {
            src: ip.dst,
            dst: ip.src,
            protocol: IPPROTO_TCP,
            hop_limit: self.config.hop_limit,
            payload_len: 0,
        };
        let t = Transport::Tcp(rst);
        let mut buf = vec![0; wire::datagram_len(&ip_out, &t)];
        if wire::emit_datagram(&ip_out, &t, &mut buf).is_ok() && self.push_outbox(buf) {
            self.stats.resets_out += 1;
            self.stats.segments_out += 1;
        }
    }

    fn find_listener(&self, local: SocketAddr) -> Option<u32> {
        if let Some(&l) = self.listener_by_addr.get(&local) {
            return Some(l);
        }
        let any: IpAddr =
            if local.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
        self.listener_by_addr.get(&SocketAddr::new(any, local.port())).copied()
    }

    /// RFC 9293 §3.10.7.2: LISTEN.
    fn listen_segment(&mut self, now: Instant, lidx: u32, tuple: FourTuple, seg: &TcpRepr<'_>) {
        self.stats.segments_in += 1;
        let f = seg.flags;
        if f.rst() {
            self.count_drop("rst_to_listener");
            return;
        }
        let ip = IpRepr {
            src: tuple.remote.ip(),
            dst: tuple.local.ip(),
            protocol: IPPROTO_TCP,
            hop_limit: 64,
            payload_len: 0,
        };
        if f.ack() {
            // Any acknowledgment is bad if it arrives on a connection still in LISTEN.
            self.count_drop("ack_to_listener");
            self.reset_for(&ip, seg);
            return;
        }
        if !f.syn() {
            self.count_drop("no_syn_to_listener");
            return;
        }
        let Some(listener) = self.listeners[lidx as usize].as_ref() else { return };
        // Like Linux (sk_acceptq_is_full), the queue is full only beyond the backlog.
        if listener.accept_queue.len() > listener.backlog {
            // Like Linux: a full accept queue drops the SYN; the peer retries.
            self.count_drop("accept_queue_full");
            return;
        }
        if listener.half_open >= self.config.tcp.syn_backlog {
            // A SYN flood must not grow memory without bound.
            self.count_drop("syn_queue_full");
            return;
        }
        let options = listener.options;
        let conn = Connection::accept_syn(&self.opening(now, tuple, options), seg);
        if let Some(l) = self.listeners[lidx as usize].as_mut() {
            l.half_open += 1;
        }
        let Some(idx) = self.insert(conn) else {
            self.count_drop("too_many_connections");
            return;
        };
        self.slots[idx as usize].listener = Some(lidx);
        self.after_conn(idx);
    }

    /// What a new connection on `tuple` starts from: its ISN and timestamp offset from the
    /// configured secret (RFC 6528, RFC 7323 §7.1), the options, the TCP knobs and the MTU.
    fn opening(&self, now: Instant, tuple: FourTuple, options: SocketOptions) -> Opening<'_> {
        let secret = &self.config.isn_secret;
        Opening {
            now,
            tuple,
            iss: SeqNum(isn::initial_sequence_number(secret, tuple.local, tuple.remote, now)),
            ts_offset: isn::timestamp_offset(secret, tuple.local, tuple.remote),
            options,
            cfg: &self.config.tcp,
            mtu: self.config.mtu,
        }
    }

    fn insert(&mut self, conn: Connection) -> Option<u32> {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.slots.len() > INDEX_MASK as usize {
                    return None;
                }
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        self.by_tuple.insert(conn.tuple, idx);
        let slot = &mut self.slots[idx as usize];
        slot.conn = Some(Box::new(conn));
        slot.listener = None;
        self.connections += 1;
        Some(idx)
    }

    fn remove(&mut self, idx: u32) {
        let slot = &mut self.slots[idx as usize];
        if let Some(conn) = slot.conn.take() {
            if self.by_tuple.get(&conn.tuple) == Some(&idx) {
                self.by_tuple.remove(&conn.tuple);
            }
            self.last_lookup = None;
            self.connections -= 1;
            slot.generation = (slot.generation + 1) & (u32::MAX >> INDEX_BITS);
            let old_gen = slot.generation.wrapping_sub(1) & (u32::MAX >> INDEX_BITS);
            let old_handle = SocketHandle(idx | (old_gen << INDEX_BITS));
            if slot.pending_events.iter().any(|&p| p) {
                // The handle is gone: so are its queued events, and the slot starts clean.
                slot.pending_events = [false; 4];
                self.events.retain(|e| match *e {
                    Event::Connected(h) | Event::Readable(h) | Event::Writable(h) | Event::Closed(h, _) => {
                        h != old_handle
                    }
                    Event::Acceptable(_) => true,
                });
            }
            if let Some(l) = slot.listener.take() {
                if let Some(listener) = self.listeners.get_mut(l as usize).and_then(|l| l.as_mut()) {
                    let queued = listener.accept_queue.len();
                    listener.accept_queue.retain(|&h| h != old_handle);
                    if listener.accept_queue.len() == queued {
                        listener.half_open = listener.half_open.saturating_sub(1);
                    }
                }
            }
            self.free.push(idx);
        }
    }

    fn handle_of(&self, idx: u32) -> SocketHandle {
        SocketHandle(idx | (self.slots[idx as usize].generation << INDEX_BITS))
    }

    fn index_of(&self, h: SocketHandle) -> Option<u32> {
        let idx = h.0 & INDEX_MASK;
        let slot = self.slots.get(idx as usize)?;
        (slot.generation == h.0 >> INDEX_BITS && slot.conn.is_some()).then_some(idx)
    }

    /// Runs `f` on a connection with a context, then turns what happened into events, timers and
    /// transmissions.
    fn with_conn<R>(&mut self, idx: u32, f: impl FnOnce(&mut Connection, &mut Ctx<'_>) -> R) -> Option<R> {
        let conn = self.slots[idx as usize].conn.as_deref_mut()?;
        let mut ctx = Ctx { cfg: &self.config.tcp, stats: &mut self.stats, challenge: &mut self.challenge };
        let r = f(conn, &mut ctx);
        self.after_conn(idx);
        Some(r)
    }

    /// Bookkeeping after anything touched a connection.
    fn after_conn(&mut self, idx: u32) {
        let handle = self.handle_of(idx);
        let Some(conn) = self.slots[idx as usize].conn.as_deref_mut() else { return };
        let notes = core::mem::take(&mut conn.notes);
        let orphaned = conn.orphaned;
        if notes.closed.is_some() {
            // A closed connection no longer owns its 4-tuple: later segments are answered as for
            // a closed port (RFC 9293 §3.10.7.1) or go to a listener, even while the application
            // still holds the handle.
            let tuple = conn.tuple;
            if self.by_tuple.get(&tuple) == Some(&idx) {
                self.by_tuple.remove(&tuple);
                self.last_lookup = None;
            }
        }
        let listener = self.slots[idx as usize].listener;
        self.schedule(idx);
        if !self.slots[idx as usize].dirty {
            self.slots[idx as usize].dirty = true;
            self.transmit_queue.push_back(idx);
        }
        if notes.accepted || notes.connected {
            self.stats.connections_established += 1;
        }
        if notes.accepted {
            if let Some(l) =
                listener.and_then(|l| self.listeners.get_mut(l as usize)).and_then(|l| l.as_mut())
            {
                l.half_open = l.half_open.saturating_sub(1);
                l.accept_queue.push_back(handle);
                self.push_event(Event::Acceptable(ListenerHandle(listener.unwrap_or(0))));
            }
        }
        if orphaned && listener.is_none() {
            return;
        }
        if notes.connected {
            self.push_event(Event::Connected(handle));
        }
        if notes.readable && !orphaned {
            self.push_event(Event::Readable(handle));
        }
        if notes.writable && !orphaned {
            self.push_event(Event::Writable(handle));
        }
        if let Some(reason) = notes.closed {
            if !orphaned {
                self.push_event(Event::Closed(handle, reason));
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Packets out

    /// Writes the next datagram to send into `buf` (at least the MTU long) and returns its
    /// length, or `None` when there is nothing to send now. Call until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(p) = self.outbox.pop_front() {
            if p.len() <= buf.len() {
                buf[..p.len()].copy_from_slice(&p);
                self.stats.packets_out += 1;
                return Some(p.len());
            }
            self.count_drop("buffer_too_small");
        }
        let checksums =
            if self.config.checksum_offload { ChecksumMode::Ignore } else { ChecksumMode::Verify };
        while let Some(&idx) = self.transmit_queue.front() {
            let hop_limit = self.config.hop_limit;
            let Some(conn) = self.slots[idx as usize].conn.as_deref_mut() else {
                self.transmit_queue.pop_front();
                self.slots[idx as usize].dirty = false;
                continue;
            };
            let mut ctx =
                Ctx { cfg: &self.config.tcp, stats: &mut self.stats, challenge: &mut self.challenge };
            let Some(out) = conn.poll_transmit(now, &mut ctx) else {
                self.transmit_queue.pop_front();
                self.slots[idx as usize].dirty = false;
                self.after_transmit(idx);
                continue;
            };
            let tuple = conn.tuple;
            let payload = conn.send_buffer_slice(out.payload_offset, out.payload_len);
            let seg = TcpRepr {
                src_port: tuple.local.port(),
                dst_port: tuple.remote.port(),
                seq: out.seq,
                ack: out.ack,
                flags: out.flags,
                window: out.window,
                urgent: 0,
                options: out.options,
                payload,
            };
            let ip = IpRepr {
                src: tuple.local.ip(),
                dst: tuple.remote.ip(),
                protocol: IPPROTO_TCP,
                hop_limit,
                payload_len: seg.buffer_len(),
            };
            let result = wire::emit_datagram_with(&ip, &Transport::Tcp(seg), buf, checksums);
            self.after_transmit(idx);
            match result {
                Ok(n) => {
                    self.stats.packets_out += 1;
                    self.stats.segments_out += 1;
                    return Some(n);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not emit a segment");
                    self.count_drop("emit_failed");
                }
            }
        }
        None
    }

    /// Timer and removal bookkeeping after a connection was asked for a segment.
    fn after_transmit(&mut self, idx: u32) {
        self.schedule(idx);
        let removable = self.slots[idx as usize].conn.as_deref().is_some_and(Connection::is_removable);
        if removable && !self.slots[idx as usize].dirty {
            self.remove(idx);
        }
    }

    /// Makes sure the timer heap holds an entry no later than the connection's next deadline.
    /// Entries are lazy: one is current only while it equals the connection's `scheduled`; a
    /// later deadline keeps the earlier entry, which re-schedules when it fires.
    fn schedule(&mut self, idx: u32) {
        let Some(conn) = self.slots[idx as usize].conn.as_deref_mut() else { return };
        match (conn.poll_timeout(), conn.scheduled) {
            (Some(d), Some(s)) if d >= s => {}
            (Some(d), _) => {
                conn.scheduled = Some(d);
                self.timers.push(Reverse((d, idx)));
            }
            (None, _) => {}
        }
    }

    /// The next datagram to send as an owned buffer; see [`Stack::poll_transmit`].
    #[must_use]
    pub fn poll_transmit_vec(&mut self, now: Instant) -> Option<Vec<u8>> {
        let mut buf = vec![0; self.config.mtu.max(1280)];
        let n = self.poll_transmit(now, &mut buf)?;
        buf.truncate(n);
        Some(buf)
    }

    // ------------------------------------------------------------------------------------------
    // Timers

    /// When `handle_timeout` must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Runs the timers due at `now` (retransmission, delayed ACK, persist, keepalive, TIME-WAIT).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, idx))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let current = self.slots.get(idx as usize).and_then(|s| s.conn.as_deref()).map(|c| c.scheduled);
            if current != Some(Some(at)) {
                continue; // stale entry
            }
            if let Some(c) = self.slots[idx as usize].conn.as_deref_mut() {
                c.scheduled = None;
            }
            self.with_conn(idx, |conn, ctx| conn.on_timeout(now, ctx));
        }
    }

    // ------------------------------------------------------------------------------------------
    // Socket calls
    //
    // Every call takes `now`, the driver's current time: the stack keeps no clock of its own.
    // Calls whose effect does not depend on the time today ignore it (`let _ = now`), so that one
    // that comes to depend on it does not change the API.

    /// The next event for the application, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        *self.pending_flag(ev) = false;
        Some(ev)
    }

    /// Queues an event unless the same one is already waiting: the queue holds at most one of
    /// each per socket, so an application that polls rarely does not make it grow.
    fn push_event(&mut self, ev: Event) {
        let flag = self.pending_flag(ev);
        if !*flag {
            *flag = true;
            self.events.push_back(ev);
        }
    }

    /// The "already queued" flag of an event: one per kind per socket slot, one per listener.
    fn pending_flag(&mut self, ev: Event) -> &mut bool {
        let (h, kind) = match ev {
            Event::Acceptable(l) => {
                let i = l.0 as usize;
                if self.pending_acceptable.len() <= i {
                    self.pending_acceptable.resize(i + 1, false);
                }
                return &mut self.pending_acceptable[i];
            }
            Event::Connected(h) => (h, 0),
            Event::Readable(h) => (h, 1),
            Event::Writable(h) => (h, 2),
            Event::Closed(h, _) => (h, 3),
        };
        let slot = &mut self.slots[(h.0 & INDEX_MASK) as usize];
        if slot.generation != h.0 >> INDEX_BITS {
            // An event of a connection that is gone: not tracked.
            self.scratch_flag = false;
            return &mut self.scratch_flag;
        }
        &mut slot.pending_events[kind]
    }

    /// Listens on `local` (an address of the stack's, or unspecified for all of one family).
    pub fn listen(
        &mut self,
        now: Instant,
        local: SocketAddr,
        backlog: usize,
    ) -> Result<ListenerHandle, ListenError> {
        self.listen_with(now, local, backlog, self.default_options())
    }

    /// Listens with socket options that accepted connections inherit.
    pub fn listen_with(
        &mut self,
        now: Instant,
        local: SocketAddr,
        backlog: usize,
        options: SocketOptions,
    ) -> Result<ListenerHandle, ListenError> {
        let _ = now;
        if local.port() == 0 {
            return Err(ListenError::InvalidPort);
        }
        if !local.ip().is_unspecified() && !self.is_local(local.ip()) {
            return Err(ListenError::AddressNotLocal);
        }
        if self.listener_by_addr.contains_key(&local) {
            return Err(ListenError::AddressInUse);
        }
        let listener = Listener {
            local,
            backlog: backlog.clamp(1, 65535),
            options,
            accept_queue: VecDeque::new(),
            half_open: 0,
        };
        let idx = match self.listeners.iter().position(Option::is_none) {
            Some(i) => {
                self.listeners[i] = Some(listener);
                i
            }
            None => {
                self.listeners.push(Some(listener));
                self.listeners.len() - 1
            }
        } as u32;
        self.listener_by_addr.insert(local, idx);
        Ok(ListenerHandle(idx))
    }

    /// Stops listening; half-open and unaccepted connections are reset.
    pub fn unlisten(&mut self, now: Instant, listener: ListenerHandle) -> Result<(), UnlistenError> {
        let _ = now;
        let l = self
            .listeners
            .get_mut(listener.0 as usize)
            .and_then(Option::take)
            .ok_or(UnlistenError::InvalidHandle)?;
        self.listener_by_addr.remove(&l.local);
        let owned: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].listener == Some(listener.0))
            .collect();
        for idx in owned {
            self.slots[idx as usize].listener = None;
            self.with_conn(idx, |c, _| {
                c.orphaned = true;
                c.abort();
            });
        }
        Ok(())
    }

    /// Takes the oldest established connection from the listener's accept queue.
    pub fn accept(&mut self, now: Instant, listener: ListenerHandle) -> Result<SocketHandle, AcceptError> {
        let _ = now;
        let l = self
            .listeners
            .get_mut(listener.0 as usize)
            .and_then(|l| l.as_mut())
            .ok_or(AcceptError::InvalidHandle)?;
        let handle = l.accept_queue.pop_front().ok_or(AcceptError::WouldBlock)?;
        let idx = handle.0 & INDEX_MASK;
        self.slots[idx as usize].listener = None;
        let mut news = (false, None);
        if let Some(c) = self.slots[idx as usize].conn.as_deref_mut() {
            c.mark_accepted();
            news = (c.readable() > 0 || c.read_closed(), c.close_reason);
        }
        // Anything that happened before accept is news to the application now.
        if news.0 {
            self.push_event(Event::Readable(handle));
        }
        if let Some(reason) = news.1 {
            self.push_event(Event::Closed(handle, reason));
        }
        Ok(handle)
    }

    /// Opens a connection to `remote`; the SYN goes out on the next `poll_transmit`.
    /// `local` picks the address and port (port 0 or `None` for an ephemeral one).
    pub fn connect(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<SocketHandle, ConnectError> {
        self.connect_with(now, local, remote, self.default_options())
    }

    /// Opens a connection with socket options.
    pub fn connect_with(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        options: SocketOptions,
    ) -> Result<SocketHandle, ConnectError> {
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(ConnectError::InvalidRemote);
        }
        let local_ip = match local.map(|l| l.ip()) {
            Some(ip) if !ip.is_unspecified() => {
                if !self.is_local(ip) {
                    return Err(ConnectError::AddressNotLocal);
                }
                ip
            }
            _ => *self
                .config
                .addresses
                .iter()
                .find(|a| a.is_ipv4() == remote.is_ipv4())
                .ok_or(ConnectError::NoRoute)?,
        };
        if local_ip.is_ipv4() != remote.is_ipv4() {
            return Err(ConnectError::NoRoute);
        }
        let port = match local.map(|l| l.port()) {
            Some(p) if p != 0 => p,
            _ => self.ephemeral_port(local_ip, remote).ok_or(ConnectError::PortsExhausted)?,
        };
        let tuple = FourTuple { local: SocketAddr::new(local_ip, port), remote };
        if self.by_tuple.contains_key(&tuple) {
            return Err(ConnectError::AddressInUse);
        }
        let conn = Connection::connect(&self.opening(now, tuple, options));
        let idx = self.insert(conn).ok_or(ConnectError::PortsExhausted)?;
        self.after_conn(idx);
        Ok(self.handle_of(idx))
    }

    fn ephemeral_port(&mut self, local: IpAddr, remote: SocketAddr) -> Option<u16> {
        let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL.end() { *EPHEMERAL.start() } else { port + 1 };
            let tuple = FourTuple { local: SocketAddr::new(local, port), remote };
            if !self.by_tuple.contains_key(&tuple) && !self.listener_by_addr.contains_key(&tuple.local) {
                return Some(port);
            }
        }
        None
    }

    fn conn_mut(&mut self, socket: SocketHandle) -> Option<(u32, &mut Connection)> {
        let idx = self.index_of(socket)?;
        let conn = self.slots[idx as usize].conn.as_deref_mut()?;
        if conn.orphaned {
            return None;
        }
        Some((idx, conn))
    }

    fn conn_ref(&self, socket: SocketHandle) -> Option<&Connection> {
        let idx = self.index_of(socket)?;
        self.slots[idx as usize].conn.as_deref().filter(|c| !c.orphaned)
    }

    /// Queues bytes for sending; returns how many were taken (possibly fewer than given).
    pub fn send(&mut self, now: Instant, socket: SocketHandle, data: &[u8]) -> Result<usize, SendError> {
        let _ = now;
        let (idx, conn) = self.conn_mut(socket).ok_or(SendError::InvalidHandle)?;
        match conn.state {
            State::SynSent | State::SynReceived => return Err(SendError::NotConnected),
            State::Closed => {
                return Err(match conn.close_reason {
                    Some(CloseReason::Reset) => SendError::Reset,
                    Some(CloseReason::TimedOut) => SendError::TimedOut,
                    _ => SendError::Closed,
                })
            }
            _ if conn.write_closed() => return Err(SendError::Closed),
            _ => {}
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = conn.send(data);
        if n == 0 {
            return Err(SendError::WouldBlock);
        }
        self.after_conn(idx);
        Ok(n)
    }

    /// Reads received bytes; `Ok(0)` means the peer finished sending and everything was read.
    pub fn recv(&mut self, now: Instant, socket: SocketHandle, buf: &mut [u8]) -> Result<usize, RecvError> {
        let _ = now;
        let (idx, conn) = self.conn_mut(socket).ok_or(RecvError::InvalidHandle)?;
        if conn.readable() > 0 {
            let n = conn.recv(buf);
            self.after_conn(idx);
            return Ok(n);
        }
        if conn.read_closed() {
            return Ok(0);
        }
        match conn.state {
            State::SynSent | State::SynReceived => Err(RecvError::NotConnected),
            State::Closed => match conn.close_reason {
                Some(CloseReason::Reset) => Err(RecvError::Reset),
                Some(CloseReason::Refused) => Err(RecvError::Refused),
                Some(CloseReason::TimedOut) => Err(RecvError::TimedOut),
                _ => Ok(0),
            },
            _ => Err(RecvError::WouldBlock),
        }
    }

    /// Shuts down the sending direction: a FIN follows the queued data (half-close).
    pub fn shutdown(&mut self, now: Instant, socket: SocketHandle) -> Result<(), ShutdownError> {
        let _ = now;
        let (idx, conn) = self.conn_mut(socket).ok_or(ShutdownError::InvalidHandle)?;
        if matches!(conn.state, State::Closed | State::Listen) {
            return Err(ShutdownError::NotConnected);
        }
        conn.shutdown();
        self.after_conn(idx);
        Ok(())
    }

    /// Closes the socket: the handle becomes invalid at once, the connection finishes sending and
    /// closes gracefully (a RST instead when unread data is discarded, RFC 9293 §3.10.4 / RFC 2525).
    pub fn close(&mut self, now: Instant, socket: SocketHandle) -> Result<(), CloseError> {
        let fin_timeout = self.config.tcp.fin_timeout;
        let (idx, conn) = self.conn_mut(socket).ok_or(CloseError::InvalidHandle)?;
        if conn.readable() > 0 {
            // RFC 2525 §2.17: closing with unread data resets the connection.
            conn.abort();
        } else {
            conn.shutdown();
        }
        conn.orphan(now, fin_timeout);
        self.after_conn(idx);
        self.after_transmit(idx);
        Ok(())
    }

    /// Aborts the connection with a RST (SO_LINGER 0); the handle becomes invalid.
    pub fn abort(&mut self, now: Instant, socket: SocketHandle) -> Result<(), AbortError> {
        let _ = now;
        let (idx, conn) = self.conn_mut(socket).ok_or(AbortError::InvalidHandle)?;
        conn.abort();
        conn.orphaned = true;
        self.after_conn(idx);
        self.after_transmit(idx);
        Ok(())
    }

    /// Sets one socket option on a connection.
    pub fn set_option(
        &mut self,
        now: Instant,
        socket: SocketHandle,
        option: SocketOption,
    ) -> Result<(), SetOptionError> {
        let _ = now;
        let (idx, conn) = self.conn_mut(socket).ok_or(SetOptionError::InvalidHandle)?;
        let mut o = conn.options;
        match option {
            SocketOption::NoDelay(v) => o.nodelay = v,
            SocketOption::KeepAlive(v) => o.keepalive = v,
            SocketOption::RecvBuffer(v) => o.recv_buffer = v,
            SocketOption::SendBuffer(v) => o.send_buffer = v,
            SocketOption::MaxSegment(v) => o.max_segment = Some(v),
        }
        conn.set_options(o);
        self.after_conn(idx);
        Ok(())
    }

    /// What `poll(2)` would report for the connection now (see [`Readiness`] for the rules);
    /// `None` for an invalid handle.
    pub fn readiness(&self, socket: SocketHandle) -> Option<Readiness> {
        let conn = self.conn_ref(socket)?;
        let closed = conn.state == State::Closed;
        let write_done = closed || conn.write_closed();
        let can_send =
            matches!(conn.state, State::Established | State::CloseWait) && conn.send_capacity() > 0;
        Some(Readiness {
            readable: conn.readable() > 0 || conn.read_closed() || closed,
            writable: can_send || write_done,
            error: conn.error_pending.is_some(),
            hangup: closed || (conn.read_closed() && write_done),
        })
    }

    /// Established connections waiting in the listener's accept queue; `None` for an invalid
    /// handle.
    pub fn pending_connections(&self, listener: ListenerHandle) -> Option<usize> {
        self.listeners.get(listener.0 as usize)?.as_ref().map(|l| l.accept_queue.len())
    }

    /// Bytes the send buffer can take now; `None` for an invalid handle.
    pub fn send_capacity(&self, socket: SocketHandle) -> Option<usize> {
        self.conn_ref(socket).map(Connection::send_capacity)
    }

    /// The socket options new sockets get from the configuration.
    pub fn default_options(&self) -> SocketOptions {
        SocketOptions::from_config(&self.config.tcp)
    }

    /// The connection's state, or `None` for an invalid handle.
    pub fn state(&self, socket: SocketHandle) -> Option<State> {
        let idx = self.index_of(socket)?;
        self.slots[idx as usize].conn.as_deref().map(|c| c.state)
    }

    /// A snapshot of the connection's variables.
    pub fn info(&self, socket: SocketHandle) -> Option<ConnectionInfo> {
        let idx = self.index_of(socket)?;
        self.slots[idx as usize].conn.as_deref().map(Connection::info)
    }

    /// The pending error of a connection (SO_ERROR), cleared by reading it.
    pub fn take_error(&mut self, socket: SocketHandle) -> Option<CloseReason> {
        let idx = self.index_of(socket)?;
        self.slots[idx as usize].conn.as_deref_mut().and_then(|c| c.error_pending.take())
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Connections the stack still holds any state for (including TIME-WAIT and half-open ones).
    pub fn connection_count(&self) -> usize {
        self.connections
    }

    /// Checks the invariants of every connection (SND.UNA <= SND.NXT, nothing sent beyond the
    /// peer's window, nothing acknowledged that did not arrive, buffers within bounds, ...).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(c) = slot.conn.as_deref() {
                c.check_invariants().map_err(|what| InvariantViolation {
                    socket: Some(self.handle_of(i as u32)),
                    what: format!("{} {}: {what}", c.state, c.tuple.remote),
                })?;
            }
        }
        let live = self.slots.iter().filter(|s| s.conn.is_some()).count();
        if live != self.connections || self.by_tuple.len() > live {
            return Err(InvariantViolation {
                socket: None,
                what: format!(
                    "{} slots, {} counted, {} in the tuple map",
                    live,
                    self.connections,
                    self.by_tuple.len()
                ),
            });
        }
        if self.outbox.len() > OUTBOX_LIMIT {
            return Err(InvariantViolation { socket: None, what: "outbox above its limit".into() });
        }
        Ok(())
    }

    /// The configuration the stack was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The stack's local addresses.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.config.addresses
    }
}
