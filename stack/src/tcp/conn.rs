//! One TCP connection: the state machine of RFC 9293 §3.10 with RFC 7323 (window scale,
//! timestamps, PAWS), RFC 2018 (SACK blocks), RFC 6298 (RTO), RFC 5681/6582 (congestion control),
//! RFC 5961 (challenge ACKs), RFC 1122 (delayed ACK, SWS avoidance, persist, keepalive), RFC 896
//! (Nagle), RFC 6691 (MSS) and RFC 1337 (TIME-WAIT assassination).
//!
//! Inputs: [`Connection::on_segment`], [`Connection::on_timeout`] and the socket calls. Output:
//! [`Connection::poll_transmit`] describes the next segment (the stack writes it). Listening and
//! demultiplexing live in `crate::stack`.
//!
//! Must not depend on: clocks, I/O, `crate::stack` internals other than `Stats` and options.

use super::buffers::{RecvBuffer, SendBuffer};
use super::congestion::{Controller, Recovery, Reno, Unlimited};
use super::rtt::RttEstimator;
use super::seq::SeqNum;
use super::{CloseReason, State};
use crate::config::{CongestionKind, TcpConfig};
use crate::socket::SocketOptions;
use crate::stack::Stats;
use crate::time::{Duration, Instant};
use crate::wire::{IcmpRepr, SackBlocks, TcpFlags, TcpOptions, TcpRepr, Timestamp, UnknownOptions};
use std::net::SocketAddr;

/// A connection's two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FourTuple {
    /// Our address and port.
    pub(crate) local: SocketAddr,
    /// The peer's address and port.
    pub(crate) remote: SocketAddr,
}

/// Stack-wide rate limit of challenge ACKs (RFC 5961 §7).
#[derive(Debug, Clone, Default)]
pub(crate) struct ChallengeLimiter {
    window_start: Instant,
    sent: u32,
}

impl ChallengeLimiter {
    fn allow(&mut self, now: Instant, limit: u32) -> bool {
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.sent = 0;
        }
        if self.sent < limit {
            self.sent += 1;
            true
        } else {
            false
        }
    }
}

/// What a connection needs from the stack while it works.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a TcpConfig,
    pub(crate) stats: &'a mut Stats,
    pub(crate) challenge: &'a mut ChallengeLimiter,
}

impl Ctx<'_> {
    fn drop(&mut self, reason: &'static str) {
        *self.stats.drops.entry(reason).or_insert(0) += 1;
    }
}

/// Things that happened to a connection that the stack turns into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Notes {
    /// An active open reached ESTABLISHED.
    pub(crate) connected: bool,
    /// A passive open reached ESTABLISHED (belongs in its listener's accept queue).
    pub(crate) accepted: bool,
    /// Bytes or the end of stream became readable.
    pub(crate) readable: bool,
    /// Send-buffer space became available after a refused send.
    pub(crate) writable: bool,
    /// The connection reached CLOSED for this reason.
    pub(crate) closed: Option<CloseReason>,
}

/// The timers, indexed by kind; the next deadline is their minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Retransmit = 0,
    DelayedAck = 1,
    Persist = 2,
    Keepalive = 3,
    /// TIME-WAIT's 2×MSL, or the FIN-WAIT-2 limit of an orphaned connection.
    Close = 4,
}

const TIMERS: [Timer; 5] =
    [Timer::Retransmit, Timer::DelayedAck, Timer::Persist, Timer::Keepalive, Timer::Close];

/// At most this many duplicate ACKs are owed at once (one per out-of-order segment).
const MAX_ACKS_OWED: u8 = 64;

/// A segment to send, without its payload bytes (which stay in the send buffer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutSegment {
    pub(crate) seq: SeqNum,
    pub(crate) ack: SeqNum,
    pub(crate) flags: TcpFlags,
    pub(crate) window: u16,
    pub(crate) options: TcpOptions<'static>,
    /// Offset of the payload in the send buffer.
    pub(crate) payload_offset: usize,
    pub(crate) payload_len: usize,
}

/// One TCP connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) tuple: FourTuple,
    pub(crate) state: State,
    /// Opened by a listener: an RST in SYN-RECEIVED returns it to LISTEN (it is dropped).
    pub(crate) passive: bool,
    /// A passive connection the application accepted.
    accepted: bool,
    /// The application released its handle (`close` or `abort`), or never had one.
    pub(crate) orphaned: bool,

    // Send sequence space (RFC 9293 §3.3.1).
    iss: SeqNum,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
    /// The highest sequence number sent plus one (SND.NXT before an RTO rewound it).
    snd_max: SeqNum,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    send_buf: SendBuffer,
    /// The application shut down writing: a FIN follows the data.
    fin_queued: bool,
    /// The FIN's sequence number, once the FIN was sent.
    fin_seq: Option<SeqNum>,

    // Receive sequence space.
    irs: SeqNum,
    /// The right edge of the window last advertised.
    rcv_adv: SeqNum,
    recv_buf: RecvBuffer,
    /// The peer's FIN was received and is counted in RCV.NXT.
    fin_rcvd: bool,
    /// The stream offset of a FIN that arrived ahead of missing data.
    fin_pending_at: Option<u64>,

    // Negotiated options.
    /// MSS we advertise.
    our_mss: u16,
    /// Payload bytes per segment we send (the peer's MSS, our limit, the path MTU's, less the
    /// TS option): [`Connection::send_mss`].
    snd_mss: u32,
    /// The MSS the peer announced (or the default when it announced none).
    peer_mss: u16,
    /// The path MTU: the configured MTU until an ICMP error lowers it (RFC 1191, RFC 8201).
    path_mtu: usize,
    /// Shift applied to windows the peer sends (its wscale).
    snd_wscale: u8,
    /// Shift applied to windows we send (our wscale).
    rcv_wscale: u8,
    /// Window scaling offered (SYN-SENT) or agreed.
    ws_enabled: bool,
    ts_enabled: bool,
    sack_enabled: bool,
    ts_recent: u32,
    ts_offset: u32,
    last_ack_sent: SeqNum,

    // Reliability and congestion.
    rtt: RttEstimator,
    /// Our TSval when the retransmission timer last expired: older echoes give no RTT sample.
    rto_tsval: u32,
    /// Karn's algorithm without timestamps: the sequence number timed and when it was sent.
    rtt_probe: Option<(SeqNum, Instant)>,
    cc: Box<dyn Controller>,
    recovery: Recovery,
    /// Consecutive retransmission timeouts.
    retries: u32,
    /// The end of the last segment shorter than the MSS (Nagle with Minshall's refinement).
    last_small_end: SeqNum,
    /// A single segment to retransmit from this sequence number (fast retransmit).
    retransmit_at: Option<SeqNum>,
    timers: [Option<Instant>; 5],
    persist_backoff: u32,
    /// Send a window probe now (persist timer expired).
    probe_now: bool,
    keepalive_probes: u32,
    keepalive_probe_now: bool,
    last_activity: Instant,

    // Acknowledgment policy.
    ack_now: bool,
    /// Quick ACKs left (`TcpConfig::quickack`).
    quickacks: u32,
    /// An interactive connection: no quick ACKs.
    pingpong: bool,
    /// When in-order data last arrived.
    last_data_rcvd: Instant,
    /// The delayed-ACK time, for the interactivity test.
    delayed_ack: Option<Duration>,
    /// The application's last write was only partly taken: more data is coming.
    more_coming: bool,
    /// A duplicate range to report in the next ACK (RFC 2883).
    dsack: Option<(SeqNum, SeqNum)>,
    /// The application read since the last ACK went out (a window update may be due).
    read_since_ack: bool,
    /// Immediate ACKs still owed for out-of-order segments that arrived in one batch.
    acks_owed: u8,
    /// Full-sized segments received and not yet acknowledged (RFC 5681 §4.2).
    unacked_segments: u32,
    /// A RST to send: its sequence number and, for RST|ACK, the acknowledgment.
    pending_rst: Option<(SeqNum, Option<SeqNum>)>,

    // Application side.
    pub(crate) options: SocketOptions,
    want_writable: bool,
    /// Why the connection closed, kept for `recv`/`send` errors and SO_ERROR.
    pub(crate) close_reason: Option<CloseReason>,
    pub(crate) error_pending: Option<CloseReason>,
    pub(crate) notes: Notes,
    /// The deadline the stack's timer heap holds for this connection.
    pub(crate) scheduled: Option<Instant>,
    accept_syn_data: bool,
    /// The first time data was sent beyond the peer's window, for `check_invariants`.
    window_violation: Option<String>,
}

/// Largest MSS our MTU allows for this family (RFC 6691: MTU minus fixed IP and TCP headers).
pub(crate) fn mss_for_mtu(mtu: usize, remote: SocketAddr) -> u16 {
    let headers = if remote.is_ipv4() { 40 } else { 60 };
    mtu.saturating_sub(headers).clamp(64, 65535) as u16
}

/// The default send MSS when the peer sends none (RFC 9293 §3.7.1, RFC 8200 §5: 536 / 1220).
fn default_peer_mss(remote: SocketAddr) -> u16 {
    if remote.is_ipv4() {
        536
    } else {
        1220
    }
}

/// The smallest shift that lets a window of `buffer` bytes be advertised (RFC 7323 §2.3, max 14).
fn wscale_for(buffer: usize) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (65535usize << shift) < buffer {
        shift += 1;
    }
    shift
}

/// Everything a new connection starts from, whichever way it opens.
pub(crate) struct Opening<'a> {
    pub(crate) now: Instant,
    pub(crate) tuple: FourTuple,
    /// Initial send sequence number (RFC 6528).
    pub(crate) iss: SeqNum,
    /// Offset added to the timestamp clock (RFC 7323 §7.1).
    pub(crate) ts_offset: u32,
    pub(crate) options: SocketOptions,
    pub(crate) cfg: &'a TcpConfig,
    pub(crate) mtu: usize,
}

impl Connection {
    fn blank(o: &Opening<'_>) -> Self {
        let Opening { now, tuple, iss, ts_offset, options, cfg, mtu } = *o;
        let mut our_mss = mss_for_mtu(mtu, tuple.remote);
        if let Some(m) = options.max_segment {
            our_mss = our_mss.min(m.max(64));
        }
        let cc: Box<dyn Controller> = match cfg.congestion {
            CongestionKind::Reno => Box::new(Reno::new(cfg.initial_window, u32::from(our_mss))),
            CongestionKind::None => Box::new(Unlimited),
        };
        Connection {
            tuple,
            state: State::Closed,
            passive: false,
            accepted: false,
            orphaned: false,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            send_buf: SendBuffer::new(options.send_buffer),
            fin_queued: false,
            fin_seq: None,
            irs: SeqNum(0),
            rcv_adv: SeqNum(0),
            recv_buf: RecvBuffer::new(options.recv_buffer),
            fin_rcvd: false,
            fin_pending_at: None,
            our_mss,
            snd_mss: u32::from(default_peer_mss(tuple.remote).min(our_mss)),
            peer_mss: default_peer_mss(tuple.remote),
            path_mtu: mtu,
            snd_wscale: 0,
            rcv_wscale: if cfg.window_scale { wscale_for(options.recv_buffer) } else { 0 },
            ws_enabled: cfg.window_scale,
            ts_enabled: cfg.timestamps,
            sack_enabled: cfg.sack,
            ts_recent: 0,
            ts_offset,
            last_ack_sent: SeqNum(0),
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
            rtt_probe: None,
            rto_tsval: ts_offset,
            cc,
            recovery: Recovery::default(),
            retries: 0,
            retransmit_at: None,
            last_small_end: iss,
            timers: [None; 5],
            persist_backoff: 0,
            probe_now: false,
            keepalive_probes: 0,
            keepalive_probe_now: false,
            last_activity: now,
            ack_now: false,
            acks_owed: 0,
            read_since_ack: false,
            dsack: None,
            more_coming: false,
            quickacks: cfg.quickack,
            pingpong: false,
            last_data_rcvd: Instant::ZERO,
            delayed_ack: cfg.delayed_ack,
            unacked_segments: 0,
            pending_rst: None,
            options,
            want_writable: false,
            close_reason: None,
            error_pending: None,
            notes: Notes::default(),
            scheduled: None,
            accept_syn_data: cfg.accept_syn_data,
            window_violation: None,
        }
    }

    /// An active open: SYN-SENT, the SYN goes out on the next `poll_transmit`.
    pub(crate) fn connect(o: &Opening<'_>) -> Self {
        let mut c = Connection::blank(o);
        c.state = State::SynSent;
        c
    }

    /// A passive open from a SYN that reached a listener: SYN-RECEIVED, the SYN-ACK goes out on
    /// the next `poll_transmit` (RFC 9293 §3.10.7.2).
    pub(crate) fn accept_syn(o: &Opening<'_>, syn: &TcpRepr<'_>) -> Self {
        let mut c = Connection::blank(o);
        c.state = State::SynReceived;
        c.passive = true;
        c.orphaned = true;
        c.take_syn(syn, o.cfg);
        if c.accept_syn_data && !syn.payload.is_empty() {
            c.recv_buf.insert(0, syn.payload);
        }
        c.rcv_adv = c.rcv_nxt();
        c
    }

    /// Learns the peer's ISN and options from its SYN (RFC 9293 §3.10.7.2-3, RFC 7323, RFC 2018).
    fn take_syn(&mut self, syn: &TcpRepr<'_>, cfg: &TcpConfig) {
        self.irs = syn.seq;
        let o = &syn.options;
        self.peer_mss = o.mss.unwrap_or_else(|| default_peer_mss(self.tuple.remote)).max(64);
        // RFC 7323 §2.2: scaling only when both sides sent the option.
        match o.window_scale {
            Some(ws) if cfg.window_scale => {
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                self.snd_wscale = ws.min(14);
                self.ws_enabled = true;
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.ws_enabled = false;
            }
        }
        self.ts_enabled = cfg.timestamps && o.timestamp.is_some();
        if let Some(ts) = o.timestamp {
            self.ts_recent = ts.tsval;
        }
        self.sack_enabled = cfg.sack && o.sack_permitted;
        self.snd_mss = self.send_mss();
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        self.snd_wnd = u32::from(syn.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = syn.seq;
        // RFC 6928: the initial window from the MSS actually in use; RFC 5681 §3.1: one segment
        // when our SYN had to be retransmitted.
        if let CongestionKind::Reno = cfg.congestion {
            let iw = if self.retries > 0 { 1 } else { cfg.initial_window };
            self.cc = Box::new(Reno::new(iw, self.snd_mss));
        }
    }

    // ------------------------------------------------------------------------------------------
    // Derived values

    /// Payload bytes per segment: the least of the peer's MSS, ours and what the path MTU leaves
    /// after fixed IP and TCP headers, less the timestamp option when it is on (RFC 6691: the MSS
    /// counts neither IP nor TCP options; the TS option takes 12 bytes).
    fn send_mss(&self) -> u32 {
        let path = mss_for_mtu(self.path_mtu, self.tuple.remote);
        let mss = u32::from(self.peer_mss.min(self.our_mss).min(path));
        if self.ts_enabled {
            mss.saturating_sub(12).max(1)
        } else {
            mss
        }
    }

    /// RCV.NXT: the next sequence number expected.
    pub(crate) fn rcv_nxt(&self) -> SeqNum {
        let off = self.recv_buf.next_offset() as u32;
        SeqNum(self.irs.0.wrapping_add(1).wrapping_add(off).wrapping_add(u32::from(self.fin_rcvd)))
    }

    /// The sequence number of the first data byte in the send buffer.
    fn data_start(&self) -> SeqNum {
        if self.snd_una == self.iss {
            self.iss + 1
        } else {
            self.snd_una
        }
    }

    fn syn_acked(&self) -> bool {
        self.snd_una != self.iss
    }

    fn fin_acked(&self) -> bool {
        matches!(self.fin_seq, Some(f) if self.snd_una > f)
    }

    /// Bytes in flight (sent, not acknowledged), SYN and FIN included.
    fn flight(&self) -> u32 {
        (self.snd_nxt - self.snd_una) as u32
    }

    fn is_synchronized(&self) -> bool {
        !matches!(self.state, State::Closed | State::Listen | State::SynSent | State::SynReceived)
    }

    fn ts_now(&self, now: Instant, cfg_hz: u32) -> u32 {
        let us = now.total_micros();
        let hz = u64::from(cfg_hz);
        // Whole seconds and the rest apart: no 128-bit division on the per-segment path.
        let ticks = ((us / 1_000_000) * hz + (us % 1_000_000) * hz / 1_000_000) as u32;
        ticks.wrapping_add(self.ts_offset)
    }

    /// The window the peer may use from RCV.NXT, as acceptability uses it: never less than what
    /// was advertised (RFC 9293 §3.8.6.2.2: do not shrink the window).
    fn rcv_wnd(&self) -> u32 {
        let nxt = self.rcv_nxt();
        if self.rcv_adv > nxt {
            (self.rcv_adv - nxt) as u32
        } else {
            0
        }
    }

    /// The next deadline of any timer.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    fn set_timer(&mut self, t: Timer, at: Instant) {
        self.timers[t as usize] = Some(at);
    }

    fn clear_timer(&mut self, t: Timer) {
        self.timers[t as usize] = None;
    }

    fn timer(&self, t: Timer) -> Option<Instant> {
        self.timers[t as usize]
    }

    // ------------------------------------------------------------------------------------------
    // Application calls

    /// Queues bytes; the caller checked the state.
    pub(crate) fn send(&mut self, data: &[u8]) -> usize {
        let n = self.send_buf.push(data);
        // A write the buffer could not take whole means more is coming (like MSG_MORE): a short
        // tail segment waits for it while data is in flight.
        self.more_coming = n < data.len();
        if n < data.len() {
            self.want_writable = true;
        }
        n
    }

    /// Bytes the send buffer can take now.
    pub(crate) fn send_capacity(&self) -> usize {
        self.send_buf.free()
    }

    /// Whether writing was shut down.
    pub(crate) fn write_closed(&self) -> bool {
        self.fin_queued
    }

    /// Whether the peer's FIN was received (end of stream after the buffered bytes).
    pub(crate) fn read_closed(&self) -> bool {
        self.fin_rcvd
    }

    /// Bytes ready to read.
    pub(crate) fn readable(&self) -> usize {
        self.recv_buf.ready()
    }

    /// Reads in-order bytes.
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> usize {
        let n = self.recv_buf.read(buf);
        self.read_since_ack |= n > 0;
        n
    }

    /// Shuts down the sending direction (RFC 9293 §3.10.4 CLOSE, for the send side).
    pub(crate) fn shutdown(&mut self) {
        self.more_coming = false;
        if self.fin_queued {
            return;
        }
        match self.state {
            State::SynSent => self.close_now(CloseReason::Normal),
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Aborts with a RST where the peer knows the connection (RFC 9293 §3.10.5 ABORT).
    pub(crate) fn abort(&mut self) {
        match self.state {
            State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait => {
                self.pending_rst = Some((self.snd_nxt, Some(self.rcv_nxt())));
            }
            _ => {}
        }
        self.close_now(CloseReason::Aborted);
    }

    /// Sets a socket option.
    pub(crate) fn set_options(&mut self, options: SocketOptions) {
        if options.send_buffer != self.options.send_buffer {
            self.send_buf.set_capacity(options.send_buffer.max(self.send_buf.len()));
        }
        if options.recv_buffer != self.options.recv_buffer {
            self.recv_buf.set_capacity(options.recv_buffer);
        }
        self.options = options;
    }

    /// The application released its handle at `now`; an orphan in FIN-WAIT-2 waits at most
    /// `fin_timeout` for the peer's FIN (Linux's tcp_fin_timeout).
    pub(crate) fn orphan(&mut self, now: Instant, fin_timeout: Duration) {
        self.orphaned = true;
        if self.state == State::FinWait2 && self.timer(Timer::Close).is_none() {
            self.set_timer(Timer::Close, now + fin_timeout);
        }
    }

    fn close_now(&mut self, reason: CloseReason) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.close_reason = Some(reason);
            if matches!(reason, CloseReason::Reset | CloseReason::Refused | CloseReason::TimedOut) {
                self.error_pending = Some(reason);
            }
            self.notes.closed = Some(reason);
        }
        self.timers = [None; 5];
        self.ack_now = false;
        self.retransmit_at = None;
    }

    fn enter_time_wait(&mut self, now: Instant, cfg: &TcpConfig) {
        self.state = State::TimeWait;
        self.timers = [None; 5];
        // RFC 9293 §3.10.7.4 eighth: start the time-wait timer, 2 MSL.
        self.set_timer(Timer::Close, now + cfg.msl.saturating_mul(2));
    }

    fn establish(&mut self) {
        self.state = State::Established;
        if self.passive {
            self.notes.accepted = true;
        } else {
            self.notes.connected = true;
        }
        if self.fin_queued {
            self.state = State::FinWait1;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Segment arrival (RFC 9293 §3.10.7)

    /// Processes one segment addressed to this connection.
    pub(crate) fn on_segment(&mut self, now: Instant, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        ctx.stats.segments_in += 1;
        match self.state {
            State::Closed | State::Listen => ctx.drop("closed"),
            State::SynSent => self.on_segment_syn_sent(now, seg, ctx),
            _ => self.on_segment_synchronized(now, seg, ctx),
        }
    }

    /// RFC 9293 §3.10.7.3: SYN-SENT.
    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        let f = seg.flags;
        // First: check the ACK bit.
        if f.ack() && (seg.ack <= self.iss || seg.ack > self.snd_max) {
            if !f.rst() {
                self.pending_rst = Some((seg.ack, None));
            }
            ctx.drop("bad_ack");
            return;
        }
        let ack_ok = f.ack() && self.snd_una <= seg.ack && seg.ack <= self.snd_max;
        // Second: the RST bit.
        if f.rst() {
            if ack_ok {
                ctx.stats.resets_in += 1;
                self.close_now(CloseReason::Refused);
            } else {
                ctx.drop("rst_without_ack");
            }
            return;
        }
        // Fourth: the SYN bit.
        if !f.syn() {
            ctx.drop("no_syn");
            return;
        }
        self.take_syn(seg, ctx.cfg);
        self.last_activity = now;
        if ack_ok {
            // Our SYN is acknowledged: ESTABLISHED.
            self.on_rtt_sample_syn(now, seg, ctx.cfg);
            self.snd_una = seg.ack;
            self.snd_wl2 = seg.ack;
            self.clear_timer(Timer::Retransmit);
            self.retries = 0;
            self.rtt.reset_backoff();
            self.establish();
            self.ack_now = true;
            if !seg.payload.is_empty() {
                self.accept_text(now, seg.seq + 1, seg.payload, ctx);
            }
            if f.fin() {
                self.accept_fin(now, seg.seq + 1 + seg.payload.len(), ctx);
            }
        } else {
            // Simultaneous open (RFC 9293 §3.5 figure 7): SYN-RECEIVED, resend our SYN with ACK.
            self.state = State::SynReceived;
            self.snd_nxt = self.iss;
            self.clear_timer(Timer::Retransmit);
        }
        // Our SYN offered an unscaled window (RFC 7323 §2.2); the peer may use it at once.
        self.rcv_adv = self.rcv_nxt() + self.recv_buf.window().min(65535);
    }

    fn on_rtt_sample_syn(&mut self, now: Instant, seg: &TcpRepr<'_>, cfg: &TcpConfig) {
        if self.retries > 0 {
            return; // Karn: the SYN was retransmitted.
        }
        if let (true, Some(ts)) = (self.ts_enabled, seg.options.timestamp) {
            if ts.tsecr != 0 {
                let ticks = self.ts_now(now, cfg.ts_hz).wrapping_sub(ts.tsecr);
                self.rtt.sample(ticks_to_duration(ticks, cfg.ts_hz));
                return;
            }
        }
        if let Some((_, sent)) = self.rtt_probe.take() {
            self.rtt.sample(now - sent);
        }
    }

    /// RFC 9293 §3.10.7.4: every state from SYN-RECEIVED on.
    fn on_segment_synchronized(&mut self, now: Instant, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        let f = seg.flags;
        let rcv_nxt = self.rcv_nxt();

        // RFC 7323 §5.3 R1: PAWS, before the sequence check.
        if self.ts_enabled && !f.rst() {
            if let Some(ts) = seg.options.timestamp {
                if (ts.tsval.wrapping_sub(self.ts_recent) as i32) < 0 {
                    ctx.drop("paws");
                    self.ack_now = true;
                    return;
                }
            }
        }

        // First: is the segment acceptable (the four cases)?
        let seg_len = seg.segment_len();
        let wnd = self.rcv_wnd();
        let acceptable = match (seg_len, wnd) {
            (0, 0) => seg.seq == rcv_nxt,
            (0, _) => seg.seq.in_range(rcv_nxt, rcv_nxt + wnd as usize),
            (_, 0) => false,
            (_, _) => {
                seg.seq.in_range(rcv_nxt, rcv_nxt + wnd as usize)
                    || (seg.seq + (seg_len - 1)).in_range(rcv_nxt, rcv_nxt + wnd as usize)
            }
        };
        // RFC 9293 §3.10.7.4: with a zero window, still process ACK, RST and URG of a segment at
        // RCV.NXT (its text is then dropped below).
        let zero_window_at_edge = wnd == 0 && seg.seq == rcv_nxt;
        if !acceptable && !zero_window_at_edge {
            if self.state == State::SynReceived && f.syn() && f.ack() && seg.seq == self.irs && !self.passive
            {
                // Simultaneous open (RFC 9293 §3.5 figure 7): the peer's SYN-ACK carries its SYN
                // again; take the SYN as already seen and process the rest.
                let mut rest = *seg;
                rest.seq = seg.seq + 1;
                rest.flags = TcpFlags(seg.flags.0 & !TcpFlags::SYN.0);
                return self.on_segment_synchronized(now, &rest, ctx);
            }
            if self.state == State::SynReceived && f.syn() && !f.ack() && seg.seq == self.irs {
                // A retransmitted SYN: our SYN-ACK was lost; send it again, echoing the latest
                // timestamp (RFC 7323 §4.3: the SYN-ACK echoes the SYN it answers).
                if let (true, Some(ts)) = (self.ts_enabled, seg.options.timestamp) {
                    self.ts_recent = ts.tsval;
                }
                self.snd_nxt = self.iss;
                ctx.drop("retransmitted_syn");
                return;
            }
            if !f.rst() {
                self.ack_now = true;
                if self.sack_enabled && !seg.payload.is_empty() && seg.seq < rcv_nxt {
                    // RFC 2883 §4: report the duplicate range as the first SACK block.
                    let end = (seg.seq + seg.payload.len()).min(rcv_nxt);
                    self.dsack = Some((seg.seq, end));
                }
                if self.state == State::TimeWait && f.fin() {
                    // §3.10.7.4 eighth, TIME-WAIT: a retransmitted FIN restarts the 2 MSL timer.
                    self.set_timer(Timer::Close, now + ctx.cfg.msl.saturating_mul(2));
                }
            }
            ctx.drop("unacceptable");
            return;
        }

        // Second: the RST bit (RFC 5961 §3.2).
        if f.rst() {
            if seg.seq != rcv_nxt {
                // In the window but not exact: challenge ACK.
                self.challenge_ack(now, ctx);
                ctx.drop("rst_not_exact");
                return;
            }
            ctx.stats.resets_in += 1;
            match self.state {
                State::SynReceived if self.passive => {
                    // Return to LISTEN: this half-open connection just goes away.
                    self.close_now(CloseReason::Reset);
                }
                State::SynReceived => self.close_now(CloseReason::Refused),
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.close_now(CloseReason::Reset)
                }
                State::TimeWait if ctx.cfg.rfc1337 => {
                    // RFC 1337: ignore RST in TIME-WAIT, the peer's ACK may still be in flight.
                    ctx.drop("rst_in_time_wait");
                }
                _ => self.close_now(CloseReason::Normal),
            }
            return;
        }

        // Fourth: the SYN bit (RFC 5961 §4.2: challenge ACK, whatever its sequence number).
        if f.syn() {
            if self.state == State::SynReceived && self.passive {
                ctx.drop("syn_in_syn_received");
                self.snd_nxt = self.iss;
                return;
            }
            self.challenge_ack(now, ctx);
            ctx.drop("syn_in_window");
            return;
        }

        // Fifth: the ACK field.
        if !f.ack() {
            ctx.drop("no_ack");
            return;
        }
        self.last_activity = now;
        self.keepalive_probes = 0;
        if self.state == State::SynReceived {
            if self.snd_una < seg.ack && seg.ack <= self.snd_max {
                self.snd_una = seg.ack;
                self.snd_nxt = self.snd_nxt.max(seg.ack);
                if self.retries > 0 {
                    // RFC 5681 §3.1: the SYN-ACK was retransmitted, so the initial window is one
                    // segment.
                    if let CongestionKind::Reno = ctx.cfg.congestion {
                        self.cc = Box::new(Reno::new(1, self.snd_mss));
                    }
                }
                self.clear_timer(Timer::Retransmit);
                self.rtt.reset_backoff();
                // RFC 7323 §2.2: windows after the SYN are scaled.
                self.snd_wnd = u32::from(seg.window) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                let probe = self.rtt_probe.take();
                match (self.ts_enabled, seg.options.timestamp, probe) {
                    (true, Some(ts), _) if ts.tsecr != 0 => {
                        let ticks = self.ts_now(now, ctx.cfg.ts_hz).wrapping_sub(ts.tsecr);
                        self.rtt.sample(ticks_to_duration(ticks, ctx.cfg.ts_hz));
                    }
                    // Karn: only when the SYN-ACK was not retransmitted.
                    (_, _, Some((_, sent))) if self.retries == 0 => self.rtt.sample(now - sent),
                    _ => {}
                }
                self.retries = 0;
                self.establish();
            } else {
                // <SEQ=SEG.ACK><CTL=RST>
                self.pending_rst = Some((seg.ack, None));
                ctx.drop("bad_ack");
                return;
            }
        }

        // RFC 5961 §5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
        let lower = self.snd_una - self.max_snd_wnd.max(1) as usize;
        if seg.ack > self.snd_max || seg.ack < lower {
            self.challenge_ack(now, ctx);
            ctx.drop("ack_out_of_range");
            return;
        }

        self.update_ts_recent(seg);
        self.process_ack(now, seg, ctx);
        if self.state == State::Closed {
            return;
        }

        match self.state {
            State::FinWait1 if self.fin_acked() => {
                self.state = State::FinWait2;
                if self.orphaned {
                    self.set_timer(Timer::Close, now + ctx.cfg.fin_timeout);
                }
            }
            State::Closing if self.fin_acked() => self.enter_time_wait(now, ctx.cfg),
            State::LastAck if self.fin_acked() => {
                self.close_now(CloseReason::Normal);
                return;
            }
            _ => {}
        }

        // Seventh: segment text.
        if !seg.payload.is_empty() {
            if self.orphaned
                && !self.passive_unaccepted()
                && matches!(self.state, State::FinWait1 | State::FinWait2)
            {
                // RFC 1122 §4.2.2.13: new data after CLOSE is answered with a RST.
                // Linux answers as a closed socket would: <SEQ=SEG.ACK><CTL=RST>.
                self.pending_rst = Some((seg.ack, None));
                ctx.drop("data_after_close");
                self.close_now(CloseReason::Aborted);
                return;
            }
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    self.accept_text(now, seg.seq, seg.payload, ctx);
                }
                _ => {
                    // The peer's FIN was already received: RFC 9293 says ignore the text.
                    ctx.drop("data_after_fin");
                }
            }
        }

        // Eighth: the FIN bit.
        if f.fin() {
            self.accept_fin(now, seg.seq + seg.payload.len(), ctx);
        }
    }

    fn update_ts_recent(&mut self, seg: &TcpRepr<'_>) {
        // RFC 7323 §4.3 (2): TS.Recent <- SEG.TSval if SEG.TSval >= TS.Recent and
        // SEG.SEQ <= Last.ACK.sent.
        if let (true, Some(ts)) = (self.ts_enabled, seg.options.timestamp) {
            if (ts.tsval.wrapping_sub(self.ts_recent) as i32) >= 0 && seg.seq <= self.last_ack_sent {
                self.ts_recent = ts.tsval;
            }
        }
    }

    fn challenge_ack(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        // RFC 5961 §7: rate-limit challenge ACKs.
        if ctx.challenge.allow(now, ctx.cfg.challenge_ack_limit) {
            ctx.stats.challenge_acks += 1;
            self.ack_now = true;
        } else {
            ctx.stats.challenge_acks_suppressed += 1;
        }
    }

    /// RFC 9293 §3.10.7.4 fifth, ESTABLISHED and later: SND.UNA, the window, RTT, congestion.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        let ack = seg.ack;
        let window = u32::from(seg.window) << self.snd_wscale;
        if ack > self.snd_una {
            let acked = (ack - self.snd_una) as u32;
            // How much of that is data (the SYN and FIN occupy a number each).
            let data_start = self.data_start();
            let data_end = data_start + self.send_buf.len();
            let data_acked = if ack > data_start { (ack.min(data_end) - data_start) as u32 } else { 0 };
            self.send_buf.consume(data_acked as usize);
            self.snd_una = ack;
            if self.snd_nxt < ack {
                self.snd_nxt = ack;
            }
            self.retries = 0;
            self.persist_backoff = 0;
            if let Some(at) = self.retransmit_at {
                if at < ack {
                    self.retransmit_at = None;
                }
            }
            // RTT: timestamps (RFC 7323 §4.1) or the timed segment (Karn, RFC 6298 §3).
            match (self.ts_enabled, seg.options.timestamp) {
                // Karn's rule carried over to timestamps: an echo of a transmission older than the
                // last timeout says how long the lost ACK took to be repaired, not the path's RTT.
                (true, Some(ts)) if ts.tsecr != 0 && (ts.tsecr.wrapping_sub(self.rto_tsval) as i32) >= 0 => {
                    let ticks = self.ts_now(now, ctx.cfg.ts_hz).wrapping_sub(ts.tsecr);
                    if (ticks as i32) >= 0 {
                        self.rtt.sample(ticks_to_duration(ticks, ctx.cfg.ts_hz));
                    }
                }
                _ => {
                    if let Some((probe, sent)) = self.rtt_probe {
                        if ack > probe {
                            self.rtt.sample(now - sent);
                            self.rtt_probe = None;
                        }
                    }
                }
            }
            self.rtt.reset_backoff();
            // Congestion control (RFC 5681 §3, RFC 6582 §3.2).
            let mss = self.snd_mss;
            match self.recovery.recover {
                Some(recover) if ack >= recover => {
                    self.recovery.recover = None;
                    self.cc.on_recovery_end(self.flight(), mss);
                }
                Some(_) => {
                    // Partial ACK: retransmit the next unacknowledged segment at once.
                    self.cc.on_partial_ack(acked, mss);
                    self.retransmit_at = Some(self.snd_una);
                }
                None => self.cc.on_ack(acked, mss),
            }
            self.recovery.dup_acks = 0;
            // RFC 6298 (5.2)/(5.3): stop the timer when all is acknowledged, else restart it.
            if self.snd_una == self.snd_max {
                self.clear_timer(Timer::Retransmit);
            } else {
                self.set_timer(Timer::Retransmit, now + self.rtt.rto());
            }
            if self.want_writable && self.send_buf.free() > 0 {
                self.want_writable = false;
                self.notes.writable = true;
            }
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.flags.syn()
            && !seg.flags.fin()
            && window == self.snd_wnd
            && self.snd_max > self.snd_una
        {
            // RFC 5681 §2: a duplicate acknowledgment.
            self.recovery.dup_acks += 1;
            let mss = self.snd_mss;
            if self.recovery.recover.is_some() {
                self.cc.on_dup_ack_in_recovery(mss);
            } else if self.recovery.dup_acks == 3 {
                // RFC 5681 §3.2 (2)-(4): fast retransmit and enter fast recovery.
                self.recovery.recover = Some(self.snd_max);
                self.cc.on_fast_retransmit(self.flight(), mss);
                self.retransmit_at = Some(self.snd_una);
                self.rtt_probe = None;
                ctx.stats.fast_retransmits += 1;
            }
        }
        // RFC 6675 §5 (IsLost): with SACK, DupThresh segments SACKed above SND.UNA mark it lost
        // even when fewer than three duplicate ACKs arrived.
        if self.sack_enabled && self.recovery.recover.is_none() && self.snd_max > self.snd_una {
            if let Some(blocks) = seg.options.sack {
                let sacked: usize = blocks
                    .as_slice()
                    .iter()
                    .filter(|(l, r)| *l >= self.snd_una && r <= &self.snd_max && l < r)
                    .map(|&(l, r)| r - l)
                    .sum();
                if sacked >= 3 * self.snd_mss as usize {
                    self.recovery.recover = Some(self.snd_max);
                    self.cc.on_fast_retransmit(self.flight(), self.snd_mss);
                    self.retransmit_at = Some(self.snd_una);
                    self.rtt_probe = None;
                    ctx.stats.fast_retransmits += 1;
                }
            }
        }
        // Window update (RFC 9293 §3.10.7.4: SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
        // SND.WL2 =< SEG.ACK)).
        if self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= ack) {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            if window > 0 {
                self.clear_timer(Timer::Persist);
                self.persist_backoff = 0;
            }
        }
    }

    /// Stores segment text and decides when to acknowledge it (RFC 9293 §3.10.7.4 seventh,
    /// RFC 5681 §4.2, RFC 1122 §4.2.3.2).
    fn accept_text(&mut self, now: Instant, seq: SeqNum, payload: &[u8], ctx: &mut Ctx<'_>) {
        let rcv_nxt = self.rcv_nxt();
        let next_off = self.recv_buf.next_offset();
        // Trim what was already received; the rest lands at its stream offset.
        let (off, skip) = if seq < rcv_nxt {
            (next_off, (rcv_nxt - seq).min(payload.len()))
        } else {
            (next_off + (seq - rcv_nxt) as u64, 0)
        };
        let had_holes = self.recv_buf.has_holes();
        let in_order = seq <= rcv_nxt;
        let delivered = self.recv_buf.insert(off, &payload[skip..]);
        if delivered > 0 {
            self.notes.readable = true;
        }
        if let Some(fin_off) = self.fin_pending_at {
            if fin_off == self.recv_buf.next_offset() {
                self.fin_pending_at = None;
                self.consume_fin(now, ctx);
            }
        }
        if !in_order || had_holes || delivered < payload.len() - skip {
            // Out of order, filling a hole, or beyond the window: acknowledge at once, one ACK
            // for each such segment even when several arrive before the next poll (RFC 5681 §4.2:
            // the duplicate ACKs drive the sender's fast retransmit).
            self.ack_now = true;
            self.acks_owed = self.acks_owed.saturating_add(1).min(MAX_ACKS_OWED);
            return;
        }
        self.last_data_rcvd = now;
        if self.quickacks > 0 && !self.pingpong {
            // Linux's quick-ACK mode at the start of a connection: every segment at once.
            self.quickacks -= 1;
            self.ack_now = true;
            return;
        }
        // A super-segment from a device with receive offload (GRO, TSO on TUN) counts as the
        // full-sized segments it carries, as Linux counts a GRO packet.
        let full = (self.our_mss as usize).saturating_sub(if self.ts_enabled { 12 } else { 0 }).max(1);
        self.unacked_segments = self.unacked_segments.saturating_add((payload.len() / full) as u32);
        match ctx.cfg.delayed_ack {
            // RFC 1122 §4.2.3.2: ACK at least every second full-sized segment.
            Some(_) if self.unacked_segments < 2 => {
                if self.timer(Timer::DelayedAck).is_none() {
                    let delay = ctx.cfg.delayed_ack.unwrap_or(Duration::ZERO);
                    self.set_timer(Timer::DelayedAck, now + delay);
                }
            }
            _ => self.ack_now = true,
        }
    }

    /// The FIN at stream position `seq` (RFC 9293 §3.10.7.4 eighth).
    fn accept_fin(&mut self, now: Instant, seq: SeqNum, ctx: &mut Ctx<'_>) {
        if self.fin_rcvd {
            self.ack_now = true;
            if self.state == State::TimeWait {
                self.set_timer(Timer::Close, now + ctx.cfg.msl.saturating_mul(2));
            }
            return;
        }
        let rcv_nxt = self.rcv_nxt();
        let off = (self.recv_buf.next_offset() as i64 + i64::from(seq.diff(rcv_nxt))).max(0) as u64;
        if off == self.recv_buf.next_offset() {
            self.consume_fin(now, ctx);
        } else if off > self.recv_buf.next_offset() {
            // The FIN came ahead of missing data: remember it, acknowledge what we have.
            self.fin_pending_at = Some(off);
            self.ack_now = true;
        }
    }

    fn consume_fin(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        self.fin_rcvd = true;
        self.notes.readable = true;
        match self.state {
            State::SynReceived | State::Established => {
                self.state = State::CloseWait;
                self.pingpong = true;
                // Like Linux, the ACK of a FIN that only half-closes is delayed so that the
                // application's reply or its own FIN can carry it (RFC 1122 §4.2.3.2).
                match ctx.cfg.delayed_ack {
                    Some(delay) => {
                        if self.timer(Timer::DelayedAck).is_none() {
                            self.set_timer(Timer::DelayedAck, now + delay);
                        }
                    }
                    None => self.ack_now = true,
                }
                return;
            }
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now, ctx.cfg);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now, ctx.cfg),
            _ => {}
        }
        self.ack_now = true;
    }

    // ------------------------------------------------------------------------------------------
    // ICMP errors (RFC 1122 §4.2.3.9, RFC 1191, RFC 8201, RFC 5927)

    /// An ICMP error whose quote names this connection (the stack matched the 4-tuple).
    pub(crate) fn on_icmp_error(&mut self, icmp: &IcmpRepr<'_>, ctx: &mut Ctx<'_>) {
        let Some(quote) = icmp.quote() else { return };
        // SND.NXT of RFC 5927 is our SND.MAX: a timeout may have rewound SND.NXT, and the
        // quoted segment may be one sent before that.
        //= https://www.rfc-editor.org/rfc/rfc5927#section-4.1
        //# TCP SHOULD check that the TCP sequence number contained in the payload of the ICMP
        //# error message is within the range SND.UNA =< SEG.SEQ < SND.NXT.
        if !quote.seq.in_range(self.snd_una, self.snd_max) {
            ctx.drop("icmp_seq_out_of_window");
            return;
        }
        match *icmp {
            IcmpRepr::PacketTooBig { mtu, .. } => self.on_packet_too_big(mtu, ctx),
            // RFC 1122 §4.2.3.9: net, host and source-route unreachable are soft errors (a TCP
            // "MUST NOT abort"); protocol and port unreachable are hard ones (it "SHOULD abort").
            // RFC 5927 §4 asks that hard errors on synchronized connections be treated as soft,
            // as Linux does (it keeps them as sk_err_soft, reported only if the connection times
            // out). Here every error is counted and nothing else happens, in every state: the
            // connection goes on until its own timers give up. (Linux does abort in SYN-SENT and
            // SYN-RECEIVED; that is not done here.)
            IcmpRepr::DestUnreachable { .. } => ctx.drop("icmp_unreachable"),
            // RFC 1122 §4.2.3.9: Time Exceeded and Parameter Problem "SHOULD" be passed to the
            // application; like the soft errors above they are only counted (the socket calls
            // have no error for them yet).
            IcmpRepr::TimeExceeded { .. } => ctx.drop("icmp_time_exceeded"),
            IcmpRepr::ParamProblem { .. } => ctx.drop("icmp_param_problem"),
            IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. } | IcmpRepr::Other { .. } => {}
        }
    }

    /// A fragmentation-needed (RFC 1191) or packet-too-big (RFC 8201) message reporting a
    /// next-hop MTU of `mtu`: lowers the path MTU and the send MSS with it, and sends again at
    /// once the unacknowledged data, which went out in segments that may have been too big.
    fn on_packet_too_big(&mut self, mtu: u32, ctx: &mut Ctx<'_>) {
        let mtu = mtu as usize;
        // The smallest path MTU believed. IPv4: Linux's min_pmtu, 552 (512 bytes of payload
        // behind 20 + 20 bytes of headers); RFC 1191 §3 would allow 68, which RFC 5927 §7.2
        // shows lets an attacker shrink segments to a few bytes. IPv6: RFC 8201 §4, "If a node
        // receives a Packet Too Big message reporting a next-hop MTU that is less than the IPv6
        // minimum link MTU, it must discard it."
        let floor = if self.tuple.remote.is_ipv4() { 552 } else { 1280 };
        if mtu < floor {
            ctx.drop("icmp_mtu_too_small");
            return;
        }
        // RFC 1191 §3 / RFC 8201 §4: a message may only lower the PMTU estimate.
        if mtu >= self.path_mtu {
            ctx.drop("icmp_mtu_not_lower");
            return;
        }
        self.path_mtu = mtu;
        ctx.stats.pmtu_updates += 1;
        let old = self.snd_mss;
        self.snd_mss = self.send_mss();
        // RFC 1191 §6.5: the datagram was dropped by the router, so "the TCP layer should
        // retransmit" it. Like Linux (tcp_simple_retransmit), everything unacknowledged goes out
        // again now at the new size, from SND.UNA, as after a timeout but without the congestion
        // response, the backoff or a retry counted: a smaller path is not congestion.
        if self.snd_mss < old && self.syn_acked() && self.snd_max > self.snd_una {
            self.snd_nxt = self.snd_una;
            self.retransmit_at = None;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Timers

    /// Runs the timers due at `now`.
    pub(crate) fn on_timeout(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        for t in TIMERS {
            match self.timer(t) {
                Some(at) if at <= now => {
                    self.clear_timer(t);
                    self.fire(t, now, ctx);
                }
                _ => {}
            }
        }
    }

    fn fire(&mut self, t: Timer, now: Instant, ctx: &mut Ctx<'_>) {
        match t {
            Timer::Retransmit => self.on_rto(now, ctx),
            Timer::DelayedAck => self.ack_now = true,
            Timer::Persist => {
                // RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17: probe the zero window.
                self.probe_now = true;
                self.persist_backoff = self.persist_backoff.saturating_add(1);
            }
            Timer::Keepalive => self.on_keepalive(now, ctx),
            Timer::Close => match self.state {
                State::TimeWait => self.close_now(CloseReason::Normal),
                State::FinWait2 => self.close_now(CloseReason::Normal),
                _ => {}
            },
        }
    }

    fn on_rto(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.snd_max {
            return;
        }
        ctx.stats.timeouts += 1;
        self.retries += 1;
        let limit = match self.state {
            State::SynSent | State::SynReceived => ctx.cfg.syn_retries,
            _ => ctx.cfg.max_retries,
        };
        if self.retries > limit {
            // RFC 1122 §4.2.3.5 R2: give up.
            self.close_now(CloseReason::TimedOut);
            return;
        }
        // RFC 6298 (5.5)-(5.6): back off and retransmit the earliest unacknowledged segment.
        self.rtt.back_off();
        self.rtt_probe = None;
        self.rto_tsval = self.ts_now(now, ctx.cfg.ts_hz);
        let flight = self.flight();
        self.cc.on_timeout(flight, self.snd_mss);
        self.recovery = Recovery::default();
        self.retransmit_at = None;
        self.snd_nxt = self.snd_una;
    }

    fn on_keepalive(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        let Some(idle) = self.options.keepalive else { return };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        let since = now.saturating_duration_since(self.last_activity);
        if since < idle {
            self.set_timer(Timer::Keepalive, self.last_activity + idle);
            return;
        }
        // RFC 1122 §4.2.3.6: probes until one is answered or the count runs out.
        if self.keepalive_probes >= ctx.cfg.keepalive_probes {
            // As Linux does, tell the peer (if it is still there) with a RST.
            self.pending_rst = Some((self.snd_nxt, Some(self.rcv_nxt())));
            self.close_now(CloseReason::TimedOut);
            return;
        }
        self.keepalive_probes += 1;
        self.keepalive_probe_now = true;
        self.set_timer(Timer::Keepalive, now + ctx.cfg.keepalive_interval);
    }

    // ------------------------------------------------------------------------------------------
    // Transmission

    /// The window field to advertise now, updating the advertised right edge (RFC 7323 §2.3,
    /// RFC 1122 §4.2.3.3 receiver SWS avoidance, never shrinking the window).
    fn window_to_advertise(&mut self) -> u16 {
        let nxt = self.rcv_nxt();
        let free = self.recv_buf.window() as u32;
        let edge_now = nxt + free as usize;
        let threshold = (self.recv_buf.capacity() as u32 / 2).min(u32::from(self.our_mss));
        let right = if self.rcv_adv > nxt
            && edge_now > self.rcv_adv
            && (edge_now - self.rcv_adv) < threshold as usize
        {
            // Receiver SWS avoidance: do not move the edge by less than min(buffer/2, MSS).
            self.rcv_adv
        } else {
            edge_now.max(self.rcv_adv)
        };
        let avail = if right > nxt { (right - nxt) as u32 } else { 0 };
        let field = (avail >> self.rcv_wscale).min(65535);
        let edge = nxt + ((field as usize) << self.rcv_wscale);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        field as u16
    }

    fn syn_window(&mut self) -> u16 {
        // RFC 7323 §2.2: the window in a SYN or SYN-ACK is not scaled.
        let w = self.recv_buf.window().min(65535);
        if self.state == State::SynReceived {
            self.rcv_adv = self.rcv_adv.max(self.rcv_nxt() + w);
        }
        w as u16
    }

    /// Whether a window update is worth an ACK of its own (RFC 9293 §3.8.6.2.2, RFC 1122
    /// §4.2.3.3): after the application read, when the window still offered has fallen below two
    /// segments (the peer is about to stall) and reading opened at least one more segment. A
    /// larger offered window needs no update: the ACKs of the data it lets in carry the new one.
    fn window_update_due(&self) -> bool {
        if !self.read_since_ack
            || !matches!(self.state, State::Established | State::FinWait1 | State::FinWait2)
            || self.fin_rcvd
        {
            return false;
        }
        let nxt = self.rcv_nxt();
        let offered = if self.rcv_adv > nxt { self.rcv_adv - nxt } else { 0 };
        let max = 65535usize << self.rcv_wscale;
        let possible = ((self.recv_buf.window() >> self.rcv_wscale) << self.rcv_wscale).min(max);
        let mss = usize::from(self.our_mss);
        offered < 2 * mss && possible >= offered + mss
    }

    fn options_for(&self, now: Instant, hz: u32, syn: bool) -> TcpOptions<'static> {
        let mut o = TcpOptions { unknown: UnknownOptions::EMPTY, ..TcpOptions::default() };
        if self.ts_enabled {
            o.timestamp = Some(Timestamp { tsval: self.ts_now(now, hz), tsecr: self.ts_recent });
        }
        if syn {
            o.mss = Some(self.our_mss);
            if self.ws_enabled {
                o.window_scale = Some(self.rcv_wscale);
            }
            o.sack_permitted = self.sack_enabled;
            if self.state == State::SynSent {
                // The SYN's TSecr is zero (RFC 7323 §3.2).
                if let Some(ts) = o.timestamp.as_mut() {
                    ts.tsecr = 0;
                }
            }
        } else if self.sack_enabled && (self.recv_buf.has_holes() || self.dsack.is_some()) {
            // RFC 2018 §4: report the most recent block first; as many as fit. RFC 2883: a
            // D-SACK block for a duplicate goes before them.
            let max = if self.ts_enabled { 3 } else { 4 };
            let mut blocks = SackBlocks::default();
            if let Some(d) = self.dsack {
                blocks.push(d);
            }
            let base = self.irs.0.wrapping_add(1);
            for (s, e) in self.recv_buf.sack_intervals().take(max - blocks.len()) {
                blocks.push((SeqNum(base.wrapping_add(s as u32)), SeqNum(base.wrapping_add(e as u32))));
            }
            o.sack = Some(blocks);
        }
        o
    }

    /// The next segment to send, if any. The caller writes it with the payload
    /// `send_buffer_slice(payload_offset, payload_len)`.
    pub(crate) fn poll_transmit(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        let hz = ctx.cfg.ts_hz;
        if let Some((seq, ack)) = self.pending_rst.take() {
            ctx.stats.resets_out += 1;
            let flags = if ack.is_some() { TcpFlags::RST | TcpFlags::ACK } else { TcpFlags::RST };
            return Some(OutSegment {
                seq,
                ack: ack.unwrap_or(SeqNum(0)),
                flags,
                window: 0,
                options: TcpOptions::default(),
                payload_offset: 0,
                payload_len: 0,
            });
        }
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                let syn_ack = self.state == State::SynReceived;
                if self.snd_max != self.iss {
                    ctx.stats.retransmissions += 1;
                } else {
                    // RFC 6298 §2: the handshake gives the first RTT measurement.
                    self.rtt_probe = Some((self.iss, now));
                }
                self.snd_nxt = self.iss + 1;
                self.snd_max = self.snd_max.max(self.snd_nxt);
                if self.timer(Timer::Retransmit).is_none() {
                    self.set_timer(Timer::Retransmit, now + self.rtt.rto());
                }
                let ack = if syn_ack { self.rcv_nxt() } else { SeqNum(0) };
                if syn_ack {
                    self.last_ack_sent = ack;
                    self.ack_now = false;
                }
                let mut flags = TcpFlags::SYN;
                if syn_ack {
                    flags |= TcpFlags::ACK;
                }
                Some(OutSegment {
                    seq: self.iss,
                    ack,
                    flags,
                    window: self.syn_window(),
                    options: self.options_for(now, hz, true),
                    payload_offset: 0,
                    payload_len: 0,
                })
            }
            State::SynSent => None,
            State::SynReceived => {
                if self.ack_now {
                    self.ack_now = false;
                    return Some(self.pure_ack(now, hz, self.snd_max));
                }
                None
            }
            _ => self.poll_transmit_synchronized(now, ctx),
        }
    }

    /// An ACK without data. Callers pass SND.MAX (the highest sequence number sent), not a
    /// SND.NXT that a retransmission timeout rewound: the peer may already hold everything up to
    /// SND.MAX, and an ACK from behind its RCV.NXT would be unacceptable and answered with an
    /// ACK of its own, and so on forever.
    fn pure_ack(&mut self, now: Instant, hz: u32, seq: SeqNum) -> OutSegment {
        let ack = self.rcv_nxt();
        let window = self.window_to_advertise();
        let options = self.options_for(now, hz, false);
        self.last_ack_sent = ack;
        self.ack_now = false;
        self.read_since_ack = false;
        self.dsack = None;
        self.acks_owed = self.acks_owed.saturating_sub(1);
        self.unacked_segments = 0;
        self.clear_timer(Timer::DelayedAck);
        OutSegment { seq, ack, flags: TcpFlags::ACK, window, options, payload_offset: 0, payload_len: 0 }
    }

    fn poll_transmit_synchronized(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        let hz = ctx.cfg.ts_hz;
        if self.state == State::TimeWait {
            if self.ack_now {
                return Some(self.pure_ack(now, hz, self.snd_max));
            }
            return None;
        }
        if let Some(seg) = self.poll_data(now, ctx) {
            return Some(seg);
        }
        if self.keepalive_probe_now {
            self.keepalive_probe_now = false;
            // RFC 1122 §4.2.3.6: a probe with SEG.SEQ = SND.NXT - 1 and no data.
            return Some(self.pure_ack(now, hz, self.snd_nxt - 1));
        }
        if self.ack_now || self.acks_owed > 0 || self.window_update_due() {
            return Some(self.pure_ack(now, hz, self.snd_max));
        }
        // Arm the keepalive timer while idle (RFC 1122 §4.2.3.6, off by default).
        if let Some(idle) = self.options.keepalive {
            if self.timer(Timer::Keepalive).is_none()
                && matches!(self.state, State::Established | State::CloseWait)
            {
                self.set_timer(Timer::Keepalive, self.last_activity + idle);
            }
        }
        None
    }

    /// A data and/or FIN segment, a retransmission, or a window probe.
    fn poll_data(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        let hz = ctx.cfg.ts_hz;
        if !self.syn_acked() {
            return None;
        }
        let data_start = self.data_start();
        let data_end = data_start + self.send_buf.len();
        let mss = self.payload_limit();

        // Fast retransmit / partial-ACK retransmission of one segment, outside the window rules.
        if let Some(at) = self.retransmit_at.take() {
            if at >= self.snd_una && at < self.snd_max {
                let off = at - data_start;
                let len = (data_end.max(at) - at).min(mss).min(self.snd_max - at);
                let fin = self.fin_seq == Some(at + len) && self.snd_max > at + len;
                if len > 0 || fin {
                    ctx.stats.retransmissions += 1;
                    return Some(self.data_segment(now, hz, at, off, len, fin));
                }
            }
        }

        let sent_off = self.snd_nxt.max(data_start) - data_start;
        let unsent = self.send_buf.len().saturating_sub(sent_off);
        let fin_unsent = self.fin_queued
            && (self.fin_seq.is_none() || self.snd_nxt <= self.fin_seq.unwrap_or(self.snd_nxt));
        let in_flight = self.flight() as usize;
        // RFC 3042 (Limited Transmit): the first two duplicate ACKs each let one new segment out.
        let limited = if self.recovery.recover.is_none() && self.recovery.dup_acks < 3 {
            self.recovery.dup_acks * self.snd_mss
        } else {
            0
        };
        let cwnd = self.cc.cwnd().max(self.snd_mss).saturating_add(limited);
        let wnd = (self.snd_wnd as usize).min(cwnd as usize);
        let usable = wnd.saturating_sub(in_flight);
        let len = unsent.min(mss).min(usable);

        if self.probe_now {
            self.probe_now = false;
            if unsent > 0 && len == 0 && self.snd_wnd == 0 {
                // Zero-window probe (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17), as Linux sends it:
                // an ACK carrying SEG.SEQ = SND.UNA - 1, which the peer must answer with its window.
                self.arm_persist(now, unsent);
                return Some(self.pure_ack(now, hz, self.snd_una - 1));
            }
        }

        let retransmission = self.snd_nxt < self.snd_max;
        let all_queued = len == unsent;
        let can_fin = fin_unsent && all_queued;
        if len == 0 && !can_fin {
            self.arm_persist(now, unsent);
            return None;
        }
        if len > 0 && len < mss && !retransmission {
            // RFC 896 (Nagle) and RFC 1122 §4.2.3.4 sender SWS avoidance: a short segment goes
            // only when it empties the queue and nothing is in flight (or Nagle is off), or
            // when it is at least half the largest window the peer offered.
            // Minshall's refinement, as Linux does: hold only while a small segment is unacked.
            let small_unacked = self.last_small_end > self.snd_una;
            let nagle_ok = all_queued
                && (in_flight == 0
                    || can_fin
                    || (!self.more_coming && (self.options.nodelay || !small_unacked)));
            let half_window = len * 2 >= self.max_snd_wnd as usize && self.max_snd_wnd > 0;
            // With nothing in flight no ACK will come to release a held runt: send it.
            let window_limited_idle = !all_queued && in_flight == 0;
            if !(nagle_ok || half_window || window_limited_idle) {
                self.arm_persist(now, unsent);
                return None;
            }
        }
        let seq = self.snd_nxt;
        let off = seq - data_start;
        if retransmission {
            ctx.stats.retransmissions += 1;
        }
        Some(self.data_segment(now, hz, seq, off, len, can_fin))
    }

    /// Payload bytes that fit in the next segment: the MSS less the SACK option it will carry
    /// (RFC 6691: options come out of the MSS; the timestamp option is already counted).
    fn payload_limit(&self) -> usize {
        let mut limit = self.snd_mss as usize;
        if self.sack_enabled && (self.recv_buf.has_holes() || self.dsack.is_some()) {
            let max = if self.ts_enabled { 3 } else { 4 };
            let blocks =
                (usize::from(self.dsack.is_some()) + self.recv_buf.sack_intervals().count()).min(max);
            limit = limit.saturating_sub(4 + 8 * blocks);
        }
        limit.max(1)
    }

    fn arm_persist(&mut self, now: Instant, unsent: usize) {
        // RFC 9293 §3.8.6.1: with data waiting, a zero window and no retransmission timer
        // running, the persist timer makes sure a window update is not waited for forever. Not
        // "nothing in flight": after a timeout rewinds SND.NXT into a zero window, an
        // unacknowledged probe byte is in flight with no timer left to resend it.
        if unsent > 0
            && self.snd_wnd == 0
            && self.timer(Timer::Retransmit).is_none()
            && self.timer(Timer::Persist).is_none()
        {
            let rto = self.rtt.rto();
            let backoff = rto.saturating_mul(1 << self.persist_backoff.min(10));
            self.set_timer(Timer::Persist, now + backoff.min(Duration::from_secs(60)));
        }
    }

    fn data_segment(
        &mut self,
        now: Instant,
        hz: u32,
        seq: SeqNum,
        off: usize,
        len: usize,
        fin: bool,
    ) -> OutSegment {
        let end = seq + len + usize::from(fin);
        let new_data = end > self.snd_max;
        if fin {
            self.fin_seq = Some(seq + len);
        }
        if len < self.snd_mss as usize {
            self.last_small_end = self.last_small_end.max(seq + len);
        }
        if seq == self.snd_nxt {
            self.snd_nxt = end;
        }
        if new_data && len > 0 {
            // Data sent soon after data arrived: an interactive connection, whose ACKs ride on
            // the replies (Linux's "pingpong" mode ends quick ACKs).
            if let Some(ato) = self.delayed_ack {
                if now.saturating_duration_since(self.last_data_rcvd) < ato
                    && self.last_data_rcvd != Instant::ZERO
                {
                    self.pingpong = true;
                }
            }
        }
        if new_data {
            let data_end = seq + len;
            let allowed = self.snd_una + (self.snd_wnd as usize).max(1);
            if len > 0 && data_end > allowed && self.window_violation.is_none() {
                self.window_violation = Some(format!(
                    "sent {}..{} beyond the peer's window edge {} (SND.UNA {}, SND.WND {})",
                    seq, data_end, allowed, self.snd_una, self.snd_wnd
                ));
            }
            if !self.ts_enabled && self.rtt_probe.is_none() && seq >= self.snd_max {
                self.rtt_probe = Some((seq, now));
            }
            self.snd_max = end;
        } else if let Some((probe, _)) = self.rtt_probe {
            // Karn: a retransmission covering the timed segment spoils the measurement.
            if probe >= seq && probe < end {
                self.rtt_probe = None;
            }
        }
        // RFC 6298 (5.1): start the timer if it is not running.
        if self.timer(Timer::Retransmit).is_none() {
            self.set_timer(Timer::Retransmit, now + self.rtt.rto());
        }
        let data_end_off = self.send_buf.len();
        let mut flags = TcpFlags::ACK;
        if len > 0 && off + len == data_end_off {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        let ack = self.rcv_nxt();
        let window = self.window_to_advertise();
        self.last_ack_sent = ack;
        self.ack_now = false;
        self.unacked_segments = 0;
        self.clear_timer(Timer::DelayedAck);
        let options = self.options_for(now, hz, false);
        self.dsack = None;
        OutSegment { seq, ack, flags, window, options, payload_offset: off, payload_len: len }
    }

    /// The payload bytes of a segment from `poll_transmit`.
    pub(crate) fn send_buffer_slice(&mut self, offset: usize, len: usize) -> &[u8] {
        self.send_buf.slice(offset, len)
    }

    /// A passive connection that the application never accepted (it is orphaned only in name).
    fn passive_unaccepted(&self) -> bool {
        self.passive && !self.accepted
    }

    /// The application took this connection from its listener's accept queue.
    pub(crate) fn mark_accepted(&mut self) {
        self.accepted = true;
        self.orphaned = false;
    }

    /// Whether the stack may forget this connection.
    pub(crate) fn is_removable(&self) -> bool {
        self.state == State::Closed && self.pending_rst.is_none() && self.orphaned
    }

    /// A snapshot of the variables.
    pub(crate) fn info(&self) -> crate::stack::ConnectionInfo {
        crate::stack::ConnectionInfo {
            state: self.state,
            local: self.tuple.local,
            remote: self.tuple.remote,
            iss: self.iss.0,
            irs: self.irs.0,
            snd_una: self.snd_una.0,
            snd_nxt: self.snd_nxt.0,
            snd_wnd: self.snd_wnd,
            rcv_nxt: self.rcv_nxt().0,
            rcv_wnd: self.rcv_wnd(),
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            mss: self.snd_mss.min(65535) as u16,
            srtt: self.rtt.srtt(),
            rto: self.rtt.rto(),
            send_queue: self.send_buf.len(),
            recv_queue: self.recv_buf.ready(),
        }
    }

    /// The connection invariants of DESIGN.md "Testing".
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        if self.snd_una > self.snd_nxt {
            return Err(format!("SND.UNA {} > SND.NXT {}", self.snd_una, self.snd_nxt));
        }
        if self.snd_nxt > self.snd_max {
            return Err(format!("SND.NXT {} > highest sent {}", self.snd_nxt, self.snd_max));
        }
        if self.send_buf.len() > self.send_buf.capacity().max(self.send_buf.len()) {
            return Err("send buffer above capacity".into());
        }
        if self.recv_buf.ready() + self.recv_buf.out_of_order_bytes() > self.recv_buf.capacity() {
            return Err(format!(
                "receive buffer holds {} + {} bytes, capacity {}",
                self.recv_buf.ready(),
                self.recv_buf.out_of_order_bytes(),
                self.recv_buf.capacity()
            ));
        }
        // Never acknowledge what did not arrive: RCV.NXT covers only stored bytes, SYN and FIN.
        if self.is_synchronized() || self.state == State::SynReceived {
            let expected = self.irs.0.wrapping_add(1).wrapping_add(self.recv_buf.next_offset() as u32);
            let expected = expected.wrapping_add(u32::from(self.fin_rcvd));
            if self.rcv_nxt().0 != expected {
                return Err("RCV.NXT disagrees with the bytes received".into());
            }
        }
        // Never send beyond the peer's window, except one probe byte into a zero window.
        if let Some(v) = &self.window_violation {
            return Err(v.clone());
        }
        Ok(())
    }
}

fn ticks_to_duration(ticks: u32, hz: u32) -> Duration {
    Duration::from_micros(u64::from(ticks) * 1_000_000 / u64::from(hz.max(1)))
}
