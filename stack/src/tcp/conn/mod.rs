//! One TCP connection: the state machine of RFC 9293 §3.10 with RFC 7323 (window scale,
//! timestamps, PAWS), RFC 2018 (SACK blocks), RFC 6298 (RTO), RFC 5681/6582 (congestion control),
//! RFC 5961 (challenge ACKs), RFC 1122 (delayed ACK, SWS avoidance, persist, keepalive), RFC 896
//! (Nagle), RFC 6691 (MSS), RFC 1337 (TIME-WAIT assassination) and RFC 7413 (TCP Fast Open: data
//! on the SYN, both ends).
//!
//! Inputs: [`Connection::on_segment`], [`Connection::on_timeout`] and the socket calls. Output:
//! [`Connection::poll_transmit`] describes the next segment (the stack writes it). Listening and
//! demultiplexing live in `crate::stack`.
//!
//! Must not depend on: clocks, I/O, `crate::stack`.

mod icmp;
mod input;
mod output;
mod recovery;
mod timers;

use super::buffers::{RecvBuffer, SendBuffer};
use super::congestion::{Controller, Cubic, Recovery, Reno, Unlimited};
use super::rtt::RttEstimator;
use super::scoreboard::Scoreboard;
use super::seq::SeqNum;
use super::timer::{Timer, TimerTable};
use super::{CloseReason, State};
use crate::config::{CongestionKind, EcnMode, TcpConfig};
use crate::socket::SocketOptions;
use crate::stats::{DropReason, Stats};
use crate::time::{Duration, Instant};
use crate::wire::{TcpFlags, TcpRepr};
use std::net::SocketAddr;

/// Linux's `tcp_reordering` sysctl, the reordering a connection assumes at first (segments).
const REORDERING_INITIAL: u32 = 3;
/// Linux's `tcp_max_reordering`.
const REORDERING_MAX: u32 = 300;

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

/// A connection's ECN state (RFC 3168 §6.1).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ecn {
    /// Our SYN was an ECN-setup SYN (ECE and CWR).
    pub(crate) asked: bool,
    /// The handshake agreed on ECN: new data goes out ECT(0), ECE and CWR mean what §6.1 says.
    pub(crate) ok: bool,
    /// A CE mark arrived and no CWR since (§6.1.3): every segment carries ECE.
    pub(crate) demand_cwr: bool,
    /// The window was reduced for an ECE (§6.1.2): the next new data segment carries CWR.
    pub(crate) queue_cwr: bool,
}

/// What a connection needs from the stack while it works, and what it hands back: the stack
/// makes one per input (`on_segment`, `on_timeout`, `on_icmp_error`, `poll_transmit`) with an
/// empty `outcome`, and acts on the outcome afterwards.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a TcpConfig,
    pub(crate) stats: &'a mut Stats,
    pub(crate) challenge: &'a mut ChallengeLimiter,
    /// What happened during the call.
    pub(crate) outcome: Outcome,
    /// The segment being taken arrived marked Congestion Experienced (RFC 3168 §5).
    pub(crate) ce: bool,
}

impl Ctx<'_> {
    fn drop(&mut self, reason: DropReason) {
        self.stats.count_drop(reason);
    }
}

/// What happened to a connection during one input or socket call, which the stack turns into
/// events, the accept queue, the tuple map and counters. Returned by the socket calls that can
/// change the state (`shutdown`, `abort`); accumulated in [`Ctx::outcome`] by the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use]
pub(crate) struct Outcome {
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
    /// A SYN-ACK answered a Fast Open client: what it says of the server, for the cache.
    pub(crate) fast_open_learned: Option<crate::stack::FastOpenLearned>,
}

/// TCP Fast Open (RFC 7413) on one connection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastOpenState {
    /// Client: the Fast Open option of the first SYN (a cookie request or a cookie); a
    /// retransmitted SYN carries none (Linux: the first SYN may have been dropped for it).
    pub(crate) syn_option: Option<crate::wire::FastOpen>,
    /// Client: bytes of the send buffer the first SYN carries (RFC 7413 §4.1.3).
    pub(crate) syn_data: usize,
    /// Client: a Fast Open attempt (option or data on the SYN): the SYN-ACK updates the cache.
    pub(crate) active: bool,
    /// Server: opened by data on a SYN with a valid cookie, handed to `accept` before the
    /// handshake completes (RFC 7413 §4.2.2), and allowed to send in SYN-RECEIVED.
    pub(crate) child: bool,
    /// Server: the Fast Open option of the SYN-ACK (a cookie for the client, §4.1.2).
    pub(crate) reply: Option<crate::wire::FastOpen>,
    /// Data on the SYN was acknowledged (client) or accepted (server): `TCPI_OPT_SYN_DATA`.
    pub(crate) syn_data_acked: bool,
    /// Client: the end of SYN data the SYN-ACK did not acknowledge, sent again after it.
    pub(crate) resend_until: Option<SeqNum>,
}

/// One TCP connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) tuple: FourTuple,
    pub(crate) state: State,
    /// Opened by a listener: an RST in SYN-RECEIVED returns it to LISTEN (it is dropped).
    pub(crate) passive: bool,
    /// The application called CLOSE (RFC 9293 §3.10.4) and gave up its handle: from FIN-WAIT-1
    /// on, new data is answered with a RST (RFC 1122 §4.2.2.13) and FIN-WAIT-2 is bounded by
    /// `TcpConfig::fin_timeout`. (Whether a handle is held is the stack's business: `Slot`.)
    app_closed: bool,

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
    /// Receive-buffer autotuning (Linux's `rcvq_space`): what the application read per round
    /// trip.
    rcv_space: RcvSpace,
    /// The receiver's estimate of the round-trip time (from the echoes of our timestamps in the
    /// peer's data, Linux's `rcv_rtt_est`).
    rcv_rtt: Option<Duration>,

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
    /// Every segment outstanding: SACKed, lost, retransmitted, when sent (RFC 6675, RFC 8985).
    board: Scoreboard,
    /// RACK's state (RFC 8985 §6.1).
    rack: recovery::Rack,
    /// The tail loss probe in progress (RFC 8985 §7).
    tlp: recovery::Tlp,
    /// F-RTO after a timeout (RFC 5682).
    frto: recovery::Frto,
    /// Pacing (`TcpConfig::pacing`): when the next data segment may go, if pacing is on.
    pace: Option<Instant>,
    /// Consecutive retransmission timeouts.
    retries: u32,
    /// Explicit Congestion Notification (RFC 3168).
    ecn: Ecn,
    /// When the first retransmission since the connection was last in the open phase with
    /// nothing retransmitted in flight went out (Linux's `retrans_stamp`, "stamp of the first
    /// retransmit"): where TCP_USER_TIMEOUT counts from.
    retrans_stamp: Option<Instant>,
    /// When the persist timer first expired since the window was last open (Linux's
    /// `icsk_probes_tstamp`): where TCP_USER_TIMEOUT counts from behind a zero window.
    persist_stamp: Option<Instant>,
    /// The end of the last segment shorter than the MSS (Nagle with Minshall's refinement).
    last_small_end: SeqNum,
    /// The end of the last segment sent with PSH (Linux's `pushed_seq`).
    pushed_seq: SeqNum,
    timers: TimerTable,
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
    /// Linux's `MSG_MORE`: the last write said more follows, so a short segment waits for it
    /// until the next ACK, write or probe (Linux corks only the push that ends that `sendmsg`).
    more_hold: bool,
    /// The data at the tail of the send buffer came with `MSG_MORE`: no PSH on its segment.
    tail_more: bool,
    /// Linux's `MSG_EOR`: where the records the application ended lie, as the sequence number
    /// after each one's last byte, oldest first (let go when acknowledged, in process_ack). No
    /// segment, sent first or again, carries bytes from both sides of one, and the segment
    /// that ends a record carries PSH. At most one per byte of the send buffer.
    records: std::collections::VecDeque<SeqNum>,
    /// Linux's `tp->reordering` (`ConnectionInfo::reordering`), in segments.
    reordering: u32,
    /// Linux's `icsk_ack.rcv_mss`, its estimate of the peer's segment size
    /// (`ConnectionInfo::rcv_mss`), and the last segment size that estimate may drop to.
    rcv_mss: u32,
    last_seg_size: u32,
    /// Linux's `TCP_NAGLE_PUSH`: turning TCP_NODELAY on or TCP_CORK off sends what is queued
    /// once, whatever the cork, until the application writes again.
    push_once: bool,
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
    accept_syn_data: bool,
    /// TCP Fast Open (RFC 7413).
    pub(crate) fast_open: FastOpenState,
    /// Segments the peer acknowledged or SACKed, the SYN counted as one (Linux's
    /// `tcpi_delivered`; data in bytes over the MSS, rounded up, per ACK).
    delivered: u32,
    /// The application is blocked in a write until the handshake completes (Linux's
    /// `sk_write_pending`): the ACK of the SYN-ACK waits for its data.
    pub(crate) write_waiting: bool,
    /// The first time data was sent beyond the peer's window, for `check_invariants`.
    window_violation: Option<String>,
}

/// What the application read in the current measurement round trip, for receive-buffer
/// autotuning.
#[derive(Debug, Clone, Copy)]
struct RcvSpace {
    /// Bytes read in the last round trip that grew the buffer (the level to beat).
    space: usize,
    /// The stream offset read up to when this round trip began.
    start: u64,
    /// When this round trip began.
    time: Instant,
}

/// The controller `kind` names, with an initial window of `iw` segments of `mss` bytes.
pub(crate) fn new_controller(kind: CongestionKind, iw: u32, mss: u32) -> Box<dyn Controller> {
    match kind {
        CongestionKind::Reno => Box::new(Reno::new(iw, mss)),
        CongestionKind::Cubic => Box::new(Cubic::new(iw, mss)),
        CongestionKind::None => Box::new(Unlimited),
    }
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
        let cc = new_controller(cfg.congestion, cfg.initial_window, u32::from(our_mss));
        Connection {
            tuple,
            state: State::Closed,
            passive: false,
            app_closed: false,
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
            // Linux starts from ten segments' worth (TCP_INIT_CWND * advmss).
            rcv_space: RcvSpace { space: 10 * usize::from(our_mss), start: 0, time: now },
            rcv_rtt: None,
            our_mss,
            snd_mss: u32::from(default_peer_mss(tuple.remote).min(our_mss)),
            peer_mss: default_peer_mss(tuple.remote),
            path_mtu: mtu,
            snd_wscale: 0,
            // RFC 7323 §2.3: the shift must let the largest buffer autotuning may reach be
            // advertised (Linux chooses it from tcp_rmem[2] the same way).
            rcv_wscale: if cfg.window_scale {
                wscale_for(options.recv_buffer.max(options.recv_buffer_max))
            } else {
                0
            },
            ws_enabled: cfg.window_scale,
            ts_enabled: cfg.timestamps,
            sack_enabled: cfg.sack,
            ts_recent: 0,
            ts_offset,
            last_ack_sent: SeqNum(0),
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto).linux_rto(cfg.linux_rto),
            rtt_probe: None,
            rto_tsval: ts_offset,
            cc,
            recovery: Recovery::default(),
            board: Scoreboard::default(),
            rack: recovery::Rack::default(),
            tlp: recovery::Tlp { enabled: cfg.tail_loss_probe, ..recovery::Tlp::default() },
            frto: recovery::Frto { enabled: cfg.frto, ..recovery::Frto::default() },
            pace: cfg.pacing.then_some(Instant::ZERO),
            retries: 0,
            ecn: Ecn::default(),
            retrans_stamp: None,
            persist_stamp: None,
            last_small_end: iss,
            pushed_seq: iss + 1,
            timers: TimerTable::default(),
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
            more_hold: false,
            tail_more: false,
            records: std::collections::VecDeque::new(),
            reordering: REORDERING_INITIAL,
            rcv_mss: 0,
            last_seg_size: 0,
            push_once: false,
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
            accept_syn_data: cfg.accept_syn_data,
            fast_open: FastOpenState::default(),
            write_waiting: false,
            delivered: 0,
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
        Connection::accept_syn_fast_open(o, syn, false, None)
    }

    /// [`Connection::accept_syn`] on a Fast Open listener: with `fast_open_child` the SYN's data
    /// is taken and acknowledged by the SYN-ACK (RFC 7413 §4.2.2); `reply` is the Fast Open
    /// option the SYN-ACK carries.
    pub(crate) fn accept_syn_fast_open(
        o: &Opening<'_>,
        syn: &TcpRepr<'_>,
        fast_open_child: bool,
        reply: Option<crate::wire::FastOpen>,
    ) -> Self {
        let mut c = Connection::blank(o);
        c.state = State::SynReceived;
        c.passive = true;
        c.take_syn(syn, o.cfg);
        if (c.accept_syn_data || fast_open_child) && !syn.payload.is_empty() {
            c.recv_buf.insert(0, syn.payload);
        }
        c.fast_open.child = fast_open_child;
        c.fast_open.syn_data_acked = fast_open_child && !syn.payload.is_empty();
        c.fast_open.reply = reply;
        c.rcv_adv = c.rcv_nxt();
        c
    }

    /// Makes a connection in SYN-SENT, its SYN not yet sent, a TCP Fast Open client (RFC 7413
    /// §4.1): the first SYN carries `option` (a cookie request or a cookie) and the first
    /// `syn_data` bytes of `data`, which the send buffer takes; returns how many it took.
    pub(crate) fn start_fast_open(
        &mut self,
        option: Option<crate::wire::FastOpen>,
        data: &[u8],
        syn_data: usize,
    ) -> usize {
        let n = self.send_buf.push(&data[..syn_data.min(data.len())]);
        self.fast_open =
            FastOpenState { syn_option: option, syn_data: n, active: true, ..FastOpenState::default() };
        n
    }

    /// The MSS this side advertises.
    pub(crate) fn our_mss(&self) -> u16 {
        self.our_mss
    }

    /// Learns the peer's ISN and options from its SYN (RFC 9293 §3.10.7.2-3, RFC 7323, RFC 2018).
    fn take_syn(&mut self, syn: &TcpRepr<'_>, cfg: &TcpConfig) {
        self.irs = syn.seq;
        // RFC 3168 §6.1.1: an ECN-setup SYN has ECE and CWR; an ECN-setup SYN-ACK has ECE and
        // not CWR, and counts only when our SYN asked.
        let (ece, cwr) = (syn.flags.contains(TcpFlags::ECE), syn.flags.contains(TcpFlags::CWR));
        self.ecn.ok = if syn.flags.ack() {
            self.ecn.asked && ece && !cwr
        } else {
            cfg.ecn != EcnMode::Off && ece && cwr
        };
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
        let iw = if self.retries > 0 { 1 } else { cfg.initial_window };
        self.cc = new_controller(cfg.congestion, iw, self.snd_mss);
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

    /// How many of `len` bytes from `seq` lie in one record (`MSG_EOR`): up to the end of the
    /// first record that ends after `seq`.
    pub(crate) fn within_record(&self, seq: SeqNum, len: usize) -> usize {
        // The records are in sequence order: a binary search, as many may be queued.
        match self.records.get(self.records.partition_point(|&end| end <= seq)) {
            Some(&end) => len.min(end - seq),
            None => len,
        }
    }

    /// How many of the `len` bytes that end at `end` lie in one record: back to the end of the
    /// last record that ends before `end`.
    pub(crate) fn within_record_back(&self, end: SeqNum, len: usize) -> usize {
        match self.records.partition_point(|&e| e < end).checked_sub(1).map(|i| self.records[i]) {
            Some(e) => len.min(end - e),
            None => len,
        }
    }

    /// Whether a record (`MSG_EOR`) ends at `seq`.
    pub(crate) fn record_ends_at(&self, seq: SeqNum) -> bool {
        self.records.binary_search(&seq).is_ok()
    }

    /// Linux's tcp_measure_rcv_mss, for each data segment taken: a segment at least the
    /// estimate sets it (up to the MSS advertised); a smaller one lowers it only when two in a
    /// row, without PSH, FIN, URG or SYN unless over 536 bytes, are of one size.
    pub(crate) fn measure_rcv_mss(&mut self, seg: &TcpRepr<'_>) {
        let last = std::mem::take(&mut self.last_seg_size);
        let len = seg.payload.len() as u32;
        if len >= self.rcv_mss {
            self.rcv_mss = len.min(u32::from(self.our_mss));
            return;
        }
        let with_header = len + seg.header_len() as u32;
        let remnant =
            seg.flags.fin() || seg.flags.syn() || seg.flags.psh() || seg.flags.contains(TcpFlags::URG);
        if with_header >= 536 + 20 || (with_header >= 88 + 20 && !remnant) {
            let header = 20 + if self.ts_enabled { 12 } else { 0 };
            let size = with_header.saturating_sub(header);
            self.last_seg_size = size;
            if size == last {
                self.rcv_mss = size;
            }
        }
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
        self.timers.next_timeout()
    }

    // ------------------------------------------------------------------------------------------
    // Application calls

    /// Queues bytes; the caller checked the state. `more` is `MSG_MORE`: the application says
    /// more data follows, so the short tail of what is queued waits for it. `eor` is
    /// `MSG_EOR`: once the whole write is taken it ends a record, which later data does not
    /// share a segment with (as Linux marks the write's last buffer).
    pub(crate) fn send(&mut self, data: &[u8], more: bool, eor: bool, default_lowat: Option<u32>) -> usize {
        let room = self.send_capacity(default_lowat);
        let n = self.send_buf.push(&data[..data.len().min(room)]);
        if eor && n == data.len() && n > 0 {
            let end = self.data_start() + self.send_buf.len();
            if self.records.back() != Some(&end) {
                self.records.push_back(end);
            }
        }
        // A write the buffer could not take whole means more is coming (like MSG_MORE): a short
        // tail segment waits for it while data is in flight.
        self.more_coming = n < data.len();
        if n > 0 {
            self.more_hold = more;
            self.tail_more = more;
            self.push_once = false;
        }
        if n < data.len() {
            self.want_writable = true;
        }
        n
    }

    /// Bytes a write may queue now: the send buffer's room, and with a TCP_NOTSENT_LOWAT mark
    /// (the socket's, else `default_lowat`) what takes the unsent bytes to it, in whole segments
    /// (Linux checks the mark before each new buffer of a write, so it passes it by less than
    /// one).
    pub(crate) fn send_capacity(&self, default_lowat: Option<u32>) -> usize {
        let free = self.send_buf.free();
        match self.notsent_mark(default_lowat) {
            None => free,
            Some(mark) => {
                // Linux sends while it copies (tcp_push_one), so what the windows let out at
                // once does not count against the mark.
                let window = (self.snd_una + self.snd_wnd as usize).diff(self.snd_max).max(0) as usize;
                let room = (self.cc.cwnd().saturating_sub(self.pipe()) as usize).min(window);
                let mss = (self.snd_mss as usize).max(1);
                let allowed = (mark as usize + room).saturating_sub(self.unsent());
                free.min(allowed.div_ceil(mss) * mss)
            }
        }
    }

    /// Whether the socket polls writable: room to write and, with a TCP_NOTSENT_LOWAT mark,
    /// fewer than half the mark's bytes unsent (Linux's `tcp_stream_memory_free` with `wake`).
    /// `default_lowat` is `TcpConfig::notsent_lowat`, for a socket that set no mark of its own
    /// (Linux's `tcp_notsent_lowat`).
    pub(crate) fn writable(&self, default_lowat: Option<u32>) -> bool {
        self.send_capacity(default_lowat) > 0
            && self
                .notsent_mark(default_lowat)
                .is_none_or(|mark| (2 * self.unsent() as u64) < u64::from(mark))
    }

    /// The TCP_NOTSENT_LOWAT mark in force: the socket's, else the stack's (Linux's
    /// `tcp_notsent_lowat`).
    fn notsent_mark(&self, default_lowat: Option<u32>) -> Option<u32> {
        self.options.notsent_lowat.or(default_lowat)
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
    pub(crate) fn recv(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        let n = self.recv_buf.read(buf);
        self.read_since_ack |= n > 0;
        if n > 0 {
            self.rcv_space_adjust(now);
        }
        n
    }

    /// Receive-buffer autotuning, as Linux's `tcp_rcv_space_adjust` (dynamic right-sizing): once
    /// per round trip, if the application read more than in the round trip that last grew the
    /// buffer, grow it so the window covers twice that, plus room for a sender in slow start
    /// (which doubles its rate per round trip), up to `recv_buffer_max`.
    fn rcv_space_adjust(&mut self, now: Instant) {
        let max = self.options.recv_buffer_max;
        let capacity = self.recv_buf.capacity();
        if max <= capacity {
            return;
        }
        let Some(rtt) = self.rcv_rtt.or(self.rtt.srtt()) else { return };
        let space = &mut self.rcv_space;
        if now.saturating_duration_since(space.time) < rtt {
            return;
        }
        let read_off = self.recv_buf.read_offset();
        let copied = (read_off - space.start) as usize;
        space.start = read_off;
        space.time = now;
        if copied <= space.space {
            return;
        }
        let mss = usize::from(self.our_mss);
        let mut want = 2 * copied + 16 * mss;
        // Linux: the faster the application's reading grew, the more room ahead of it.
        let grow = want.saturating_mul(copied - space.space) / space.space.max(1);
        want = want.saturating_add(2 * grow);
        space.space = copied;
        if want > capacity {
            // At least double, so a growing window costs few re-layouts of the ring.
            self.recv_buf.set_capacity(want.max(2 * capacity).min(max));
        }
    }

    /// Send-buffer growth with the congestion window (Linux's `tcp_sndbuf_expand`): room for
    /// twice the window, so the application can keep it full, up to `send_buffer_max`.
    fn snd_buf_expand(&mut self, out: &mut Outcome) {
        let max = self.options.send_buffer_max;
        let capacity = self.send_buf.capacity();
        if max <= capacity {
            return;
        }
        let want = (2 * u64::from(self.cc.cwnd())).min(max as u64) as usize;
        if want > capacity {
            self.send_buf.set_capacity(want.max(2 * capacity).min(max));
            if self.want_writable {
                self.want_writable = false;
                out.writable = true;
            }
        }
    }

    /// Shuts down the sending direction (RFC 9293 §3.10.4 CLOSE, for the send side).
    pub(crate) fn shutdown(&mut self) -> Outcome {
        let mut out = Outcome::default();
        self.more_coming = false;
        if self.fin_queued {
            return out;
        }
        match self.state {
            State::SynSent => self.close_now(CloseReason::Normal, &mut out),
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
        out
    }

    /// Aborts with a RST where the peer knows the connection (RFC 9293 §3.10.5 ABORT).
    pub(crate) fn abort(&mut self) -> Outcome {
        let mut out = Outcome::default();
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
        self.close_now(CloseReason::Aborted, &mut out);
        out
    }

    /// Linux's TCP_NAGLE_PUSH, which setting TCP_NODELAY (or clearing TCP_CORK with it set)
    /// raises: what is queued goes out once, cork or not, until the application writes again.
    pub(crate) fn push_pending(&mut self) {
        self.push_once = true;
        self.more_hold = false;
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

    /// The application closed and released its handle at `now`; an orphan in FIN-WAIT-2 waits
    /// at most `fin_timeout` for the peer's FIN (Linux's tcp_fin_timeout).
    pub(crate) fn orphan(&mut self, now: Instant, fin_timeout: Duration) {
        self.app_closed = true;
        if self.state == State::FinWait2 && self.timers.get(Timer::Close).is_none() {
            self.timers.set(Timer::Close, now + fin_timeout);
        }
    }

    fn close_now(&mut self, reason: CloseReason, out: &mut Outcome) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.close_reason = Some(reason);
            if matches!(reason, CloseReason::Reset | CloseReason::Refused | CloseReason::TimedOut) {
                self.error_pending = Some(reason);
            }
            out.closed = Some(reason);
        }
        self.timers.stop_all();
        self.ack_now = false;
    }

    fn enter_time_wait(&mut self, now: Instant, cfg: &TcpConfig) {
        self.state = State::TimeWait;
        self.timers.stop_all();
        // RFC 9293 §3.10.7.4 eighth: start the time-wait timer, 2 MSL.
        self.timers.set(Timer::Close, now + cfg.msl.saturating_mul(2));
    }

    fn establish(&mut self, out: &mut Outcome) {
        self.state = State::Established;
        // Linux's tcp_initialize_rcv_mss: the advertised and send MSS, half the window, at most
        // the default MSS (536) and at least TCP_MIN_MSS (88).
        let window = (self.recv_buf.window() / 2) as u32;
        self.rcv_mss = u32::from(self.our_mss).min(self.snd_mss).min(window).clamp(88, 536);
        if self.fast_open.child {
            // RFC 7413 §4.2.2: already handed to the application when its SYN arrived.
        } else if self.passive {
            out.accepted = true;
        } else {
            out.connected = true;
        }
        if self.fin_queued {
            self.state = State::FinWait1;
        }
    }

    /// Whether the connection has nothing left to do: CLOSED, with no RST still to send. The
    /// stack forgets it then, unless the application still holds its handle.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Closed && self.pending_rst.is_none()
    }

    /// A snapshot of the variables.
    pub(crate) fn info(&self) -> crate::info::ConnectionInfo {
        crate::info::ConnectionInfo {
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
            adv_mss: self.our_mss,
            timestamps: self.ts_enabled,
            sack: self.sack_enabled,
            window_scale: self.ws_enabled.then_some((self.snd_wscale, self.rcv_wscale)),
            srtt: self.rtt.srtt(),
            rto: self.rtt.rto(),
            send_queue: self.send_buf.len(),
            recv_queue: self.recv_buf.ready(),
            ca_state: match self.recovery.phase {
                super::congestion::Phase::Recovery => crate::info::CaState::Recovery,
                super::congestion::Phase::Cwr => crate::info::CaState::Cwr,
                super::congestion::Phase::Loss => crate::info::CaState::Loss,
                super::congestion::Phase::Open
                    if self.recovery.dup_acks > 0 || self.board.sacked_bytes() > 0 =>
                {
                    crate::info::CaState::Disorder
                }
                super::congestion::Phase::Open => crate::info::CaState::Open,
            },
            sacked_bytes: self.board.sacked_bytes(),
            lost_bytes: self.board.lost_bytes(),
            reordering: self.reordering,
            rcv_mss: self.rcv_mss,
            retrans_bytes: self.board.retrans_bytes(),
            syn_data_acked: self.fast_open.syn_data_acked,
            delivered: self.delivered,
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
        if self.syn_acked() && !matches!(self.state, State::Closed | State::TimeWait) {
            self.board.check(self.snd_una, self.snd_max)?;
        }
        Ok(())
    }
}

fn ticks_to_duration(ticks: u32, hz: u32) -> Duration {
    Duration::from_micros(u64::from(ticks) * 1_000_000 / u64::from(hz.max(1)))
}
