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

mod calls;
mod cookie;
mod fastopen;
mod hash;
mod icmp;
mod listen;

use crate::config::Config;
use crate::info::ConnectionInfo;
use crate::socket::SocketOptions;
use crate::stats::{DropReason, Stats};
use crate::tcp::conn::{ChallengeLimiter, Connection, Ctx, FourTuple, Opening, Outcome};
use crate::tcp::{isn, CloseReason, SeqNum, State};
use crate::time::Instant;
use crate::wire::{self, ChecksumMode, IpRepr, TcpFlags, TcpOptions, TcpRepr, Transport, IPPROTO_TCP};
pub(crate) use fastopen::Learned as FastOpenLearned;
use hash::KeyedHash;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

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
    /// Until when an ACK reaching the listener may answer a SYN cookie it sent (two cookie
    /// periods after the last one); `None` when it never sent one.
    cookies_until: Option<Instant>,
}

/// SYN cookies a stack sent and took back (RFC 4987 §3.6), from [`Stack::syn_cookies`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynCookies {
    /// SYN-ACKs sent with a cookie because a listener's SYN queue was full.
    pub sent: u64,
    /// ACKs that carried a good cookie and became connections.
    pub accepted: u64,
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
    /// In its listener's accept queue: kept, even once closed, until accepted or the listener
    /// goes (as Linux keeps a reset child in the queue, its data still readable).
    queued: bool,
    /// Connected, Readable, Writable, Closed events of this slot waiting in the queue.
    pending_events: [bool; 4],
    /// No application handle: released by `close` or `abort`, or not yet taken by `accept`. An
    /// orphan makes no events and is forgotten once its connection is done.
    orphaned: bool,
    /// The deadline the timer heap holds for this slot's connection (see [`Stack::schedule`]).
    scheduled: Option<Instant>,
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
    /// Timer deadlines (lazy: an entry is current only if it equals its slot's `scheduled`).
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
    cookies: SynCookies,
    /// TCP Fast Open client's cache of cookies and MSS per server (RFC 7413 §4.1.3).
    fast_open_cache: fastopen::Cache,
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
            cookies: SynCookies::default(),
            fast_open_cache: fastopen::Cache::default(),
        }
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.stats.count_drop(reason);
        tracing::trace!(reason = reason.as_str(), "dropped");
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
            self.count_drop(DropReason::NotLocal);
            return;
        }
        match dgram.transport {
            Transport::Tcp(seg) => self.handle_segment(now, &dgram.ip, &seg),
            Transport::Icmp(icmp) => self.handle_icmp(&dgram.ip, &icmp),
            Transport::Other(_) => self.count_drop(DropReason::UnknownProtocol),
        }
    }

    fn push_outbox(&mut self, packet: Vec<u8>) -> bool {
        if self.outbox.len() >= OUTBOX_LIMIT {
            self.count_drop(DropReason::OutboxFull);
            return false;
        }
        self.outbox.push_back(packet);
        true
    }

    fn handle_segment(&mut self, now: Instant, ip: &IpRepr, seg: &TcpRepr<'_>) {
        if seg.src_port == 0 || seg.dst_port == 0 {
            self.count_drop(DropReason::PortZero);
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
                let ce = ip.ecn == wire::ECN_CE;
                self.with_conn(idx, |conn, ctx| {
                    ctx.ce = ce;
                    conn.on_segment(now, seg, ctx)
                });
                return;
            }
        }
        if let Some(lidx) = self.find_listener(tuple.local) {
            self.listen_segment(now, lidx, tuple, seg);
            return;
        }
        // RFC 9293 §3.10.7.1: CLOSED. An incoming segment not containing a RST is answered by one.
        self.stats.segments_in += 1;
        self.count_drop(DropReason::NoSocket);
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
            ecn: 0,
            payload_len: 0,
        };
        let t = Transport::Tcp(rst);
        let mut buf = vec![0; wire::datagram_len(&ip_out, &t)];
        if wire::emit_datagram(&ip_out, &t, &mut buf).is_ok() && self.push_outbox(buf) {
            self.stats.resets_out += 1;
            self.stats.segments_out += 1;
        }
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
        slot.orphaned = false;
        slot.queued = false;
        slot.scheduled = None;
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
        let mut ctx = Ctx {
            cfg: &self.config.tcp,
            stats: &mut self.stats,
            challenge: &mut self.challenge,
            outcome: Outcome::default(),
            ce: false,
        };
        let r = f(conn, &mut ctx);
        let outcome = ctx.outcome;
        self.after_conn(idx, outcome);
        Some(r)
    }

    /// Bookkeeping after anything touched a connection: acts on what happened (`outcome`), and
    /// queues the connection for timers and transmission.
    fn after_conn(&mut self, idx: u32, outcome: Outcome) {
        let handle = self.handle_of(idx);
        let slot = &self.slots[idx as usize];
        let Some(conn) = slot.conn.as_deref() else { return };
        let Outcome { connected, accepted, readable, writable, closed, fast_open_learned } = outcome;
        if let Some(learned) = fast_open_learned {
            self.fast_open_cache.learn(conn.tuple.remote.ip(), learned);
        }
        let orphaned = slot.orphaned;
        if closed.is_some() {
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
        if accepted || connected {
            self.stats.connections_established += 1;
        }
        if accepted {
            if let Some(l) =
                listener.and_then(|l| self.listeners.get_mut(l as usize)).and_then(|l| l.as_mut())
            {
                l.half_open = l.half_open.saturating_sub(1);
                l.accept_queue.push_back(handle);
                self.slots[idx as usize].queued = true;
                self.push_event(Event::Acceptable(ListenerHandle(listener.unwrap_or(0))));
            }
        }
        if orphaned && listener.is_none() {
            return;
        }
        if connected {
            self.push_event(Event::Connected(handle));
        }
        if readable && !orphaned {
            self.push_event(Event::Readable(handle));
        }
        if writable && !orphaned {
            self.push_event(Event::Writable(handle));
        }
        if let Some(reason) = closed {
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
            self.count_drop(DropReason::BufferTooSmall);
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
            let mut ctx = Ctx {
                cfg: &self.config.tcp,
                stats: &mut self.stats,
                challenge: &mut self.challenge,
                outcome: Outcome::default(),
                ce: false,
            };
            let polled = conn.poll_transmit(now, &mut ctx);
            // Sending changes no state the stack reports.
            debug_assert_eq!(ctx.outcome, Outcome::default());
            let Some(out) = polled else {
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
                ecn: if out.ect { wire::ECN_ECT0 } else { wire::ECN_NOT_ECT },
                // Ignored by `emit_datagram_with`, which lays the options out once itself.
                payload_len: 0,
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
                    self.count_drop(DropReason::EmitFailed);
                }
            }
        }
        None
    }

    /// Timer and removal bookkeeping after a connection was asked for a segment.
    fn after_transmit(&mut self, idx: u32) {
        self.schedule(idx);
        let slot = &self.slots[idx as usize];
        let removable =
            slot.orphaned && !slot.queued && slot.conn.as_deref().is_some_and(Connection::is_done);
        if removable && !slot.dirty {
            self.remove(idx);
        }
    }

    /// Makes sure the timer heap holds an entry no later than the connection's next deadline.
    /// Entries are lazy: one is current only while it equals the slot's `scheduled`; a
    /// later deadline keeps the earlier entry, which re-schedules when it fires.
    fn schedule(&mut self, idx: u32) {
        let slot = &mut self.slots[idx as usize];
        let Some(conn) = slot.conn.as_deref() else { return };
        match (conn.poll_timeout(), slot.scheduled) {
            (Some(d), Some(s)) if d >= s => {}
            (Some(d), _) => {
                slot.scheduled = Some(d);
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
            let slot = self.slots.get_mut(idx as usize).filter(|s| s.conn.is_some());
            match slot {
                Some(s) if s.scheduled == Some(at) => s.scheduled = None,
                _ => continue, // stale entry
            }
            self.with_conn(idx, |conn, ctx| conn.on_timeout(now, ctx));
        }
    }

    // ------------------------------------------------------------------------------------------
    // Events and queries (the socket calls are in `calls.rs`, listeners in `listen.rs`)

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

    /// SYN cookies sent and accepted so far.
    pub fn syn_cookies(&self) -> SynCookies {
        self.cookies
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

    /// Changes the TCP knobs and the Fast Open key from now on, as Linux's `net.ipv4.tcp_*`
    /// sysctls change: new connections take them, and connections read the knobs they consult
    /// on every segment or timer (`syn_retries`, `delayed_ack`, `fast_open`, ...) from here.
    pub fn set_tcp_config(&mut self, tcp: crate::config::TcpConfig, fast_open_key: [u8; 16]) {
        self.config.tcp = tcp;
        self.config.fast_open_key = fast_open_key;
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
