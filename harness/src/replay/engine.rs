//! The replay engine (DESIGN.md "Replay" steps 2-4): one connection of a capture played against
//! a fresh utcp `Stack` on a virtual clock. utcp takes the role of one recorded endpoint; the
//! other endpoint's packets are translated and injected at their capture times; a scripted
//! application writes what the recorded endpoint wrote, when it first sent it, shuts down where
//! it sent FIN, aborts where it sent RST, and reads everything. Timers run between injections and
//! for a bounded virtual time after the last one, each at its deadline. The stack runs in a
//! [`Host`] whose device records what it sends.
//!
//! Must not depend on: files, terminals, wall-clock time (the virtual clock is the capture's).

use super::compare::{align, compare_payloads, Alignment, Counts, Outcome, Profile, Seg};
use super::translate::{Mode, Translator};
use crate::capture::calls::AppCall;
use crate::capture::flows::{Flow, FlowPacket, Recorded, RecordedCall, Side};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use utcp::host::{Bounds, Device, Host, Quiet, Runaway};
use utcp::tcp::seq::SeqNum;
use utcp::time::{Duration, Instant};
use utcp::wire::{parse_datagram, ChecksumMode, Transport};
use utcp::{CloseReason, Config, Event, ListenerHandle, RecvError, SendError, SocketHandle, Stack};

/// Bytes the scripted application reads at a time.
const READ_SIZE: usize = 65536;

thread_local! {
    /// The application's read buffer, handed from one replay to the next on a thread: filling a
    /// fresh one with zeros cost a replay of many short connections 5 % of its time. Its
    /// contents are never read before `recv` writes them.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A read buffer of [`READ_SIZE`] bytes: the thread's, or a new one.
fn take_read_buffer() -> Vec<u8> {
    let b = READ_BUFFER.take();
    if b.len() == READ_SIZE {
        b
    } else {
        vec![0; READ_SIZE]
    }
}

/// The fixed ISN secret of replays: ISNs and TS offsets are the same on every run and machine.
pub const REPLAY_ISN_SECRET: [u8; 16] = *b"utcp-replay-isn!";

/// How to replay.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The recorded endpoint utcp plays.
    pub role: Side,
    /// Strict or adaptive injection.
    pub mode: Mode,
    /// What counts as equal.
    pub profile: Profile,
    /// Virtual time run after the last recorded packet.
    pub tail: Duration,
    /// Timer firings allowed between two recorded packets (the host's bound against runaway
    /// timers); once crossed, a note says so and no more timers run.
    pub max_timer_steps: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            role: Side::Server,
            mode: Mode::Adaptive,
            profile: Profile::Linux,
            tail: Duration::from_secs(120),
            max_timer_steps: 100_000,
        }
    }
}

/// What the scripted application did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `listen` on utcp's endpoint.
    Listen,
    /// `connect` to the peer.
    Connect,
    /// `accept` returned the connection.
    Accept,
    /// `send` of `asked` bytes took `taken`.
    Write {
        /// Bytes offered.
        asked: usize,
        /// Bytes the stack took.
        taken: usize,
    },
    /// `recv` returned this many bytes (summed over one step).
    Read(usize),
    /// `recv` returned end of stream.
    Eof,
    /// `shutdown` (SHUT_WR).
    Shutdown,
    /// `abort` (SO_LINGER 0 and close).
    Abort,
    /// `close` (a FIN after the queued data, or a RST over unread data).
    Close,
}

/// One step of the replay, in virtual-time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A peer packet injected into utcp.
    In {
        /// Virtual time.
        time: Instant,
        /// Its record number in the capture.
        number: u64,
        /// The datagram as injected.
        datagram: Vec<u8>,
        /// What was adapted or odd.
        notes: Vec<String>,
    },
    /// A datagram utcp sent.
    Out {
        /// Virtual time.
        time: Instant,
        /// The datagram.
        datagram: Vec<u8>,
    },
    /// A socket call of the application.
    Call {
        /// Virtual time.
        time: Instant,
        /// The call.
        call: Call,
    },
    /// Something the engine wants the reader to know (a packet it could not inject, ...).
    Note {
        /// Virtual time.
        time: Instant,
        /// The text.
        text: String,
    },
}

impl Step {
    /// Its virtual time.
    pub fn time(&self) -> Instant {
        match self {
            Step::In { time, .. }
            | Step::Out { time, .. }
            | Step::Call { time, .. }
            | Step::Note { time, .. } => *time,
        }
    }
}

pub use crate::backend::Backend;

/// The result of replaying one connection.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The stack that played the recorded endpoint (the fields named `utcp` hold its side).
    pub backend: Backend,
    /// The flow's 1-based index.
    pub flow: usize,
    /// The role utcp played.
    pub role: Side,
    /// utcp's endpoint (the recorded endpoint's address and port).
    pub local: SocketAddr,
    /// The peer's endpoint.
    pub remote: SocketAddr,
    /// Injection mode.
    pub mode: Mode,
    /// Comparison profile.
    pub profile: Profile,
    /// Whether the connection was replayed at all (not when seen mid-stream).
    pub replayed: bool,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The recorded endpoint's segments, relative, with their record numbers.
    pub recorded: Vec<(u64, Seg)>,
    /// The recorded endpoint's datagrams by record number (sliced ones cut to parse).
    pub recorded_datagrams: Vec<(u64, Vec<u8>)>,
    /// utcp's segments, relative, each with the index of its `Step::Out`.
    pub utcp: Vec<(usize, Seg)>,
    /// How they line up.
    pub alignment: Alignment,
    /// The counts.
    pub counts: Counts,
    /// Whether the connection reached its recorded end in utcp too.
    pub completed: bool,
    /// Why not, when it did not.
    pub reason: Option<String>,
    /// The first difference, as text.
    pub first_difference: Option<String>,
    /// ISNs: the recorded endpoint's, the peer's, utcp's.
    pub isns: (Option<SeqNum>, Option<SeqNum>, Option<SeqNum>),
    /// The stack's counters at the end.
    pub stats: utcp::Stats,
}

impl Replay {
    /// Whether nothing differed beyond the profile and the connection completed.
    pub fn ok(&self) -> bool {
        self.completed && self.counts.differed == 0 && self.counts.missing == 0 && self.counts.extra == 0
    }
}

/// How the recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordedEnd {
    FinFin,
    Rst,
    Open,
}

fn tcp_of(p: &FlowPacket) -> Option<utcp::wire::TcpRepr<'_>> {
    match parse_datagram(&p.datagram, ChecksumMode::Ignore).ok()?.transport {
        Transport::Tcp(t) => Some(t),
        _ => None,
    }
}

/// The stack's configuration for playing `role` of `flow`: Linux's knobs, the recorded
/// endpoint's address, its MTU (from its MSS, else the largest datagram, else 1500) and the
/// options it evidently had switched off.
pub fn config_for(flow: &Flow, role: Side) -> Config {
    let local = if role == Side::Server { flow.server } else { flow.client };
    let mut cfg = Config::linux_like().with_address(local.ip());
    cfg.isn_secret = REPLAY_ISN_SECRET;
    let own_syn = flow.packets.iter().find(|p| p.from == role && p.tcp.flags.syn()).and_then(tcp_of);
    let peer_syn = flow.packets.iter().find(|p| p.from != role && p.tcp.flags.syn()).and_then(tcp_of);
    let ip_overhead = if local.is_ipv4() { 40 } else { 60 };
    let largest = flow.packets.iter().map(|p| p.tcp.tcp_offset + p.tcp.header_len + p.tcp.payload_len).max();
    cfg.mtu = match own_syn.and_then(|s| s.options.mss) {
        Some(mss) => usize::from(mss) + ip_overhead,
        None => largest.unwrap_or(1500).max(if local.is_ipv4() { 576 } else { 1280 }),
    };
    if let Some(own) = own_syn {
        let o = own.options;
        match role {
            // The client's SYN says what it offered.
            Side::Client => {
                cfg.tcp.sack = o.sack_permitted;
                cfg.tcp.timestamps = o.timestamp.is_some();
                cfg.tcp.window_scale = o.window_scale.is_some();
            }
            // The server's SYN-ACK shows what it accepted of what was offered.
            Side::Server => {
                if let Some(p) = peer_syn {
                    cfg.tcp.sack &= !p.options.sack_permitted || o.sack_permitted;
                    cfg.tcp.timestamps &= p.options.timestamp.is_none() || o.timestamp.is_some();
                    cfg.tcp.window_scale &= p.options.window_scale.is_none() || o.window_scale.is_some();
                    // A SYN-ACK that acknowledges the SYN's data shows the server kept it
                    // (RFC 9293 §3.10.7.2; Linux without Fast Open would not).
                    if !p.payload.is_empty() && own.ack == p.seq + 1 + p.payload.len() {
                        cfg.tcp.accept_syn_data = true;
                    }
                }
            }
        }
    }
    cfg
}

/// The application and the stack while replaying.
struct Run<'f> {
    flow: &'f Flow,
    opts: Options,
    host: Host,
    local: SocketAddr,
    remote: SocketAddr,
    listener: Option<ListenerHandle>,
    socket: Option<SocketHandle>,
    pending: VecDeque<u8>,
    shutdown_wanted: bool,
    shutdown_done: bool,
    eof_seen: bool,
    gone: bool,
    close_reason: Option<CloseReason>,
    steps: Vec<Step>,
    tr: Translator,
    rec_isn: Option<SeqNum>,
    rec_ts: Option<(u32, Instant)>,
    /// A bound of the host was crossed: timers no longer run.
    runaway: bool,
    rbuf: Vec<u8>,
    /// The application makes the calls recorded with the capture, and no others.
    recorded_calls: bool,
    /// Timers run only where the capture records that the live driver ran them.
    recorded_timers: bool,
}

/// The replay's device: what the stack sends becomes a step, and teaches the translator.
struct Recorder<'r> {
    steps: &'r mut Vec<Step>,
    tr: &'r mut Translator,
    rec_isn: Option<SeqNum>,
    rec_ts: Option<(u32, Instant)>,
}

impl Device for Recorder<'_> {
    fn transmit(&mut self, now: Instant, datagram: &[u8]) {
        if let Ok(d) = parse_datagram(datagram, ChecksumMode::Ignore) {
            if let Transport::Tcp(t) = d.transport {
                self.tr.observe_sent(now, &t, self.rec_isn, self.rec_ts);
            }
        }
        self.steps.push(Step::Out { time: now, datagram: datagram.to_vec() });
    }
}

impl Run<'_> {
    fn call(&mut self, time: Instant, call: Call) {
        self.steps.push(Step::Call { time, call });
    }

    /// Events; what the stack sends at once (as a kernel does before the application runs);
    /// writes and shutdown and what they send; reads and any window update they cause.
    fn service(&mut self, now: Instant) {
        self.host.set_now(now);
        while let Some(ev) = self.host.stack_mut().poll_event() {
            match ev {
                Event::Acceptable(l) if self.socket.is_none() && !self.gone => {
                    if let Ok(s) = self.host.stack_mut().accept(now, l) {
                        self.socket = Some(s);
                        self.call(now, Call::Accept);
                    }
                }
                Event::Closed(_, reason) => self.close_reason = Some(reason),
                _ => {}
            }
        }
        self.transmit(now);
        if let Some(s) = self.socket.filter(|_| !self.recorded_calls) {
            // One write of everything pending, as the application would (a runner of the emitted
            // script takes the stack's packets after each call).
            if !self.pending.is_empty() {
                let chunk = self.pending.make_contiguous();
                let asked = chunk.len();
                match self.host.stack_mut().send(now, s, chunk) {
                    Ok(taken) => {
                        self.pending.drain(..taken);
                        self.call(now, Call::Write { asked, taken });
                    }
                    Err(SendError::WouldBlock | SendError::NotConnected) => {}
                    Err(e) => {
                        let text =
                            format!("app: {} bytes not written: send failed ({e:?})", self.pending.len());
                        self.steps.push(Step::Note { time: now, text });
                        self.pending.clear();
                    }
                }
            }
            if self.shutdown_wanted && !self.shutdown_done && self.pending.is_empty() {
                if self.host.stack_mut().shutdown(now, s).is_ok() {
                    self.call(now, Call::Shutdown);
                }
                self.shutdown_done = true;
            }
            self.transmit(now);
            let mut read = 0;
            loop {
                match self.host.stack_mut().recv(now, s, &mut self.rbuf) {
                    Ok(0) => {
                        if !self.eof_seen {
                            self.eof_seen = true;
                            if read > 0 {
                                self.call(now, Call::Read(read));
                                read = 0;
                            }
                            self.call(now, Call::Eof);
                        }
                        break;
                    }
                    Ok(n) => read += n,
                    Err(RecvError::WouldBlock | RecvError::NotConnected) => break,
                    Err(_) => break,
                }
            }
            if read > 0 {
                self.call(now, Call::Read(read));
            }
        }
        self.transmit(now);
    }

    /// Everything the stack has to send now.
    fn transmit(&mut self, now: Instant) {
        self.host.set_now(now);
        let mut rec =
            Recorder { steps: &mut self.steps, tr: &mut self.tr, rec_isn: self.rec_isn, rec_ts: self.rec_ts };
        if let Err(r) = self.host.transmit(&mut rec, &mut Quiet) {
            self.stopped(r);
        }
    }

    /// Runs the timers due up to `until`, each at its deadline, and what the application does
    /// then (none where the timers run when the recording says the driver ran them).
    fn timers_until(&mut self, until: Instant) {
        if self.runaway || self.recorded_timers {
            return;
        }
        let mut timers = self.host.timers_until(until);
        loop {
            match timers.run_next(&mut self.host) {
                Ok(Some(at)) => self.service(at),
                Ok(None) => break,
                Err(r) => {
                    self.stopped(r);
                    break;
                }
            }
        }
    }

    /// Makes the recorded calls that came before packet `before` of the flow, each at its time
    /// (timers due before it run first, as the live driver ran them); returns the time reached.
    fn make_calls(&mut self, app: &mut RecordedApp<'_>, before: usize, mut now: Instant) -> Instant {
        while let Some(c) = app.calls.get(app.next).filter(|c| c.after <= before) {
            app.next += 1;
            let t = c.time.max(now);
            self.timers_until(t);
            now = t;
            match c.what {
                Recorded::Timers if !self.runaway => {
                    if let Err(r) = self.host.advance(now) {
                        self.stopped(r);
                    }
                    self.service(now);
                }
                Recorded::Timers => {}
                Recorded::App { call, .. } => {
                    self.service(now);
                    self.make_call(app, call, now);
                    self.transmit(now);
                }
            }
        }
        now
    }

    /// One recorded call, on the connection as it is in the replay.
    fn make_call(&mut self, app: &mut RecordedApp<'_>, call: AppCall, now: Instant) {
        self.host.set_now(now);
        let Some(s) = self.socket else {
            let text = format!("app: the recorded {call:?} found no connection to act on");
            self.steps.push(Step::Note { time: now, text });
            return;
        };
        let stack = self.host.stack_mut();
        match call {
            AppCall::Write { asked, taken } => {
                // The bytes offered past those taken are the next write's.
                let bytes = app.take(asked);
                match stack.send(now, s, &bytes) {
                    Ok(took) => {
                        drop(bytes);
                        app.written += took;
                        self.call(now, Call::Write { asked, taken: took });
                        if took != taken {
                            let text =
                                format!("app: the recorded write took {taken} bytes of {asked}, here {took}");
                            self.steps.push(Step::Note { time: now, text });
                        }
                    }
                    Err(e) => {
                        let text = format!("app: the recorded write of {asked} bytes failed here ({e:?})");
                        self.steps.push(Step::Note { time: now, text });
                    }
                }
            }
            AppCall::Read(n) => {
                let mut got = 0;
                while got < n {
                    let want = (n - got).min(self.rbuf.len());
                    match stack.recv(now, s, &mut self.rbuf[..want]) {
                        Ok(k) if k > 0 => got += k,
                        _ => break,
                    }
                }
                self.call(now, Call::Read(got));
                if got < n {
                    let text = format!("app: the recorded read returned {n} bytes, {got} were there");
                    self.steps.push(Step::Note { time: now, text });
                }
            }
            AppCall::Shutdown => match stack.shutdown(now, s) {
                Ok(()) => self.call(now, Call::Shutdown),
                Err(e) => {
                    let text = format!("app: the recorded shutdown failed here ({e:?})");
                    self.steps.push(Step::Note { time: now, text });
                }
            },
            AppCall::Close => {
                if stack.close(now, s).is_ok() {
                    self.call(now, Call::Close);
                }
                self.socket = None;
                self.gone = true;
            }
        }
    }

    /// The host ran away: a note says so, and timers run no more.
    fn stopped(&mut self, r: Runaway) {
        self.runaway = true;
        self.steps.push(Step::Note { time: r.at, text: format!("stopped: {r}") });
    }

    fn inject(&mut self, p: &FlowPacket, now: Instant) {
        let sliced = p.tcp.is_sliced().then_some(p.tcp.captured_payload_len);
        match self.tr.translate(&p.zero_filled(), sliced, self.opts.mode) {
            Ok(inj) => {
                // The translator emitted the datagram with its checksums computed (a bad one in
                // the capture is noted and replaced), so the stack need not verify them again.
                self.host.receive_unchecked(now, &inj.datagram, &mut Quiet);
                self.steps.push(Step::In {
                    time: now,
                    number: p.number,
                    datagram: inj.datagram,
                    notes: inj.notes,
                });
            }
            Err(why) => {
                let text = format!("record {} not injected: {why}", p.number);
                self.steps.push(Step::Note { time: now, text });
            }
        }
    }
}

/// The peer's data packets the recorded endpoint never received: in a capture taken upstream of
/// a loss they are there, but whatever dropped them did so after the capture point. The evidence
/// is the recorded endpoint's: until the peer sent those bytes again, every ACK of its stayed
/// below them, none SACKed any of them, and one SACKed data above them (RFC 2018 §4: a hole).
/// Indices into `flow.packets`, with the index of the retransmission.
pub(crate) fn lost_after_capture(flow: &Flow, role: Side) -> HashMap<usize, usize> {
    let peer = role.other();
    let mut lost = HashMap::new();
    // Where each range of the peer's data was first sent, to find its retransmission fast.
    let mut first: HashMap<SeqNum, usize> = HashMap::new();
    let mut high: Option<SeqNum> = None;
    for (j, q) in flow.packets.iter().enumerate() {
        if q.from != peer || q.tcp.payload_len == 0 {
            continue;
        }
        let start = q.tcp.seq;
        let resent = high.is_some_and(|h| start < h);
        if !resent {
            first.insert(start, j);
            let end = start + q.tcp.payload_len;
            high = Some(high.map_or(end, |h| h.max(end)));
            continue;
        }
        let Some(&i) = first.get(&start) else { continue };
        let (a, b) = (start, start + flow.packets[i].tcp.payload_len);
        let mut hole = false;
        let mut got = false;
        for r in flow.packets[i + 1..j].iter().filter(|r| r.from == role && r.tcp.flags.ack()) {
            let sack = tcp_of(r).and_then(|t| t.options.sack);
            let blocks = sack.as_ref().map_or(&[][..], |s| s.as_slice());
            if r.tcp.ack >= b || blocks.iter().any(|&(l, r)| l < b && r > a) {
                got = true;
                break;
            }
            hole |= r.tcp.ack <= a && blocks.iter().any(|&(l, _)| l >= b);
        }
        if hole && !got {
            lost.insert(i, j);
        }
        // A retransmission lost in turn is found from the next one.
        first.insert(start, j);
    }
    lost
}

/// The recorded endpoint's TSval on its SYN or SYN-ACK, and when it sent it.
pub(crate) fn syn_tsval(flow: &Flow, side: Side) -> Option<(u32, Instant)> {
    let p = flow.packets.iter().find(|p| p.from == side && p.tcp.flags.syn())?;
    tcp_of(p)?.options.timestamp.map(|t| (t.tsval, p.time))
}

/// Replays one connection of a capture.
pub fn replay_flow(flow: &Flow, opts: &Options) -> Replay {
    let role = opts.role;
    let (local, remote) = match role {
        Side::Server => (flow.server, flow.client),
        Side::Client => (flow.client, flow.server),
    };
    let rec_isn = flow.isn(role);
    let cfg = config_for(flow, role);
    let start = flow.packets.first().map_or(Instant::ZERO, |p| p.time);
    let bounds = Bounds { max_timer_runs_per_advance: opts.max_timer_steps, ..Bounds::default() };
    let mut run = Run {
        flow,
        opts: *opts,
        host: Host::new(Stack::new(cfg), start, bounds),
        local,
        remote,
        listener: None,
        socket: None,
        pending: VecDeque::new(),
        shutdown_wanted: false,
        shutdown_done: false,
        eof_seen: false,
        gone: false,
        close_reason: None,
        steps: Vec::new(),
        tr: Translator::default(),
        rec_isn,
        rec_ts: syn_tsval(flow, role),
        runaway: false,
        rbuf: take_read_buffer(),
        recorded_calls: false,
        recorded_timers: false,
    };
    if let Some(why) = unplayable(flow, role) {
        return finish(run, Some(why.to_string()));
    }
    let syn_ack_recorded = flow.packets.iter().any(|p| p.from == Side::Server && p.tcp.flags.syn());
    let rec_start = rec_isn.map(|i| i + 1);
    let mut now = start;
    let mut fin_seen = false;
    let mut rst_seen = false;
    // Setup at the first packet's time.
    match role {
        Side::Server if syn_ack_recorded => {
            if let Ok(l) = run.host.stack_mut().listen(now, local, 128) {
                run.listener = Some(l);
                run.call(now, Call::Listen);
            }
        }
        Side::Server => {
            let text = "the recorded server never sent a SYN-ACK: nothing listens (closed port)".to_string();
            run.steps.push(Step::Note { time: now, text });
        }
        Side::Client => {
            let at = flow
                .packets
                .iter()
                .find(|p| p.from == Side::Client && p.tcp.flags.syn())
                .map_or(now, |p| p.time);
            now = now.max(at);
            match run.host.stack_mut().connect(now, Some(local), remote) {
                Ok(s) => {
                    run.socket = Some(s);
                    run.call(now, Call::Connect);
                }
                Err(e) => {
                    let text = format!("connect failed: {e:?}");
                    run.steps.push(Step::Note { time: now, text });
                }
            }
        }
    }
    run.service(now);
    let mut writes = write_plan(flow, role, rec_start, &mut run.steps, now);
    // utcp's own live captures (pcapng) hold the application's calls: they are made as they
    // were, at their places among the packets, rather than guessed from the bytes sent.
    let mut app = RecordedApp::of(flow, role, &mut writes);
    if let Some(app) = &app {
        run.recorded_calls = true;
        let timers = app.calls.iter().filter(|c| c.what == Recorded::Timers).count();
        run.recorded_timers = timers > 0;
        let calls = app.calls.len() - timers;
        let text = format!(
            "app: the {calls} calls recorded with the capture are made as recorded, and the timers run at the {timers} times the driver ran them"
        );
        run.steps.push(Step::Note { time: now, text });
    }
    let lost = if opts.mode == Mode::Adaptive { lost_after_capture(flow, role) } else { HashMap::new() };
    for (idx, p) in flow.packets.iter().enumerate() {
        if let Some(app) = app.as_mut() {
            now = run.make_calls(app, idx, now);
        }
        let t = p.time.max(now);
        run.timers_until(t);
        now = t;
        if p.from != role {
            match lost.get(&idx) {
                Some(&again) => {
                    let text = format!(
                        "record {} not injected: the recorded endpoint never received it (its ACKs show the hole until record {})",
                        p.number, flow.packets[again].number
                    );
                    run.steps.push(Step::Note { time: now, text });
                }
                None => run.inject(p, now),
            }
            // Strict mode plays utcp's own captures (and a capture with the driver's records is
            // one), where the live driver stamps every datagram of one batch with the batch's
            // time: the peer's datagrams of one instant go in together before the stack's output
            // is taken, as they did.
            let next = flow.packets.get(idx + 1);
            let batches = opts.mode == Mode::Strict || run.recorded_calls;
            if batches && next.is_some_and(|n| n.from != role && n.time == p.time) {
                continue;
            }
        } else if !run.recorded_calls {
            // The recorded endpoint: its writes, FIN and RST drive the application.
            if let Some(bytes) = writes.remove(&idx) {
                run.pending.extend(bytes);
            }
            if p.tcp.flags.fin() && !fin_seen {
                fin_seen = true;
                run.shutdown_wanted = true;
            }
            if p.tcp.flags.rst() && !rst_seen && syn_ack_recorded {
                rst_seen = true;
                if run.socket.is_none() {
                    if let Some(l) = run.listener {
                        if let Ok(s) = run.host.stack_mut().accept(now, l) {
                            run.socket = Some(s);
                            run.call(now, Call::Accept);
                        }
                    }
                }
                if let Some(s) = run.socket.take() {
                    if run.host.stack_mut().abort(now, s).is_ok() {
                        run.call(now, Call::Abort);
                    }
                    run.pending.clear();
                    run.gone = true;
                }
            }
        }
        run.service(now);
        // Strict mode plays utcp's own captures, whose applications write as soon as they can: a
        // blocking write returns when an ACK frees room. A write whose first byte went out next
        // after the peer's packets is made right after them rather than when that byte went out,
        // so that a timer firing in between (a tail loss probe) finds the data there, as the
        // live stack did. (After the stack's own packets the application may have been busy,
        // opening a file say: its write stays where its first byte went out.)
        if opts.mode == Mode::Strict && p.from != role && !run.recorded_calls {
            let next = flow.packets.get(idx + 1).filter(|n| n.from == role);
            if let Some(bytes) = next.and_then(|_| writes.remove(&(idx + 1))) {
                run.pending.extend(bytes);
                run.service(now);
            }
        }
    }
    if let Some(app) = app.as_mut() {
        now = run.make_calls(app, usize::MAX, now);
    }
    // After the recording the timers run at their deadlines again, to see how it would end.
    run.recorded_timers = false;
    let end = now + opts.tail;
    run.timers_until(end);
    finish(run, None)
}

/// The application's calls recorded with a capture, and the bytes its writes wrote.
struct RecordedApp<'f> {
    calls: Vec<&'f RecordedCall>,
    /// The next call to make.
    next: usize,
    /// What the recorded endpoint sent, retransmissions removed: the bytes written, in order.
    stream: Vec<u8>,
    /// How much of `stream` the replay's writes took.
    written: usize,
}

impl<'f> RecordedApp<'f> {
    /// The calls `role` made in `flow`, if any were recorded; the write plan's bytes become the
    /// stream they write.
    fn of(flow: &'f Flow, role: Side, plan: &mut HashMap<usize, Vec<u8>>) -> Option<RecordedApp<'f>> {
        // The driver's records are those of the endpoint whose calls were recorded, if `role` is.
        if !flow.calls.iter().any(|c| matches!(c.what, Recorded::App { by, .. } if by == role)) {
            return None;
        }
        let calls: Vec<&RecordedCall> = flow
            .calls
            .iter()
            .filter(|c| {
                matches!(c.what, Recorded::Timers) || matches!(c.what, Recorded::App { by, .. } if by == role)
            })
            .collect();
        let mut writes: Vec<(usize, Vec<u8>)> = plan.drain().collect();
        writes.sort_unstable_by_key(|(at, _)| *at);
        let stream = writes.into_iter().flat_map(|(_, bytes)| bytes).collect();
        Some(RecordedApp { calls, next: 0, stream, written: 0 })
    }

    /// The next `n` bytes written (zeros past what the capture holds).
    fn take(&mut self, n: usize) -> Cow<'_, [u8]> {
        let from = self.written.min(self.stream.len());
        let to = (self.written + n).min(self.stream.len());
        let mut bytes = Cow::Borrowed(&self.stream[from..to]);
        if bytes.len() < n {
            bytes.to_mut().resize(n, 0);
        }
        bytes
    }
}

/// Why `role` of `flow` cannot be replayed at all, if it cannot.
pub(crate) fn unplayable(flow: &Flow, role: Side) -> Option<&'static str> {
    let client_syn =
        flow.packets.iter().any(|p| p.from == Side::Client && p.tcp.flags.syn() && !p.tcp.flags.ack());
    if flow.mid_stream {
        Some("seen mid-stream: the capture has no handshake to replay")
    } else if !client_syn || (role == Side::Client && flow.isn(role).is_none()) {
        Some("the client's SYN is not in the capture")
    } else {
        None
    }
}

/// The application's writes: the bytes the recorded endpoint sent, retransmissions removed, cut
/// into writes that end where it pushed (PSH, FIN or RST), each written at the packet that first
/// carried any of its bytes. Bytes whose first transmission is not in the capture (lost before a
/// capture point downstream of the loss) are written where the gap was seen, as a later packet
/// (their retransmission) carried them; bytes no packet carried are written as zeros, with a note.
pub(crate) fn write_plan(
    flow: &Flow,
    role: Side,
    start: Option<SeqNum>,
    steps: &mut Vec<Step>,
    now: Instant,
) -> HashMap<usize, Vec<u8>> {
    /// Stream bytes written as zeros for want of a packet carrying them: the write they are in,
    /// where in it they start, and the stream ranges no packet has carried yet.
    struct Gap {
        at: usize,
        pos: usize,
        start: i64,
        unfilled: Vec<(i64, i64)>,
    }
    let mut plan: HashMap<usize, Vec<u8>> = HashMap::new();
    let Some(start) = start else { return plan };
    let mut gaps: Vec<Gap> = Vec::new();
    let mut high: i64 = 0;
    let mut open: Option<usize> = None;
    for (idx, p) in flow.packets.iter().enumerate().filter(|(_, p)| p.from == role) {
        let off = i64::from((p.tcp.seq + usize::from(p.tcp.flags.syn())).diff(start));
        let end = off + p.tcp.payload_len as i64;
        let body_at = p.tcp.tcp_offset + p.tcp.header_len;
        let captured = p.datagram.get(body_at..body_at + p.tcp.captured_payload_len).unwrap_or(&[]);
        let have = captured.len().min(p.tcp.payload_len);
        // A packet that carries bytes of a gap (a retransmission) fills it.
        if off < high && have > 0 {
            let (lo, hi) = (off, off + have as i64);
            for gap in gaps.iter_mut() {
                let chunk = plan.get_mut(&gap.at).expect("a gap is in a write");
                let mut left = Vec::new();
                for &(a, b) in &gap.unfilled {
                    let (from, to) = (a.max(lo), b.min(hi));
                    if from >= to {
                        left.push((a, b));
                        continue;
                    }
                    let dst = gap.pos + (from - gap.start) as usize;
                    chunk[dst..dst + (to - from) as usize]
                        .copy_from_slice(&captured[(from - off) as usize..(to - off) as usize]);
                    if a < from {
                        left.push((a, from));
                    }
                    if to < b {
                        left.push((to, b));
                    }
                }
                gap.unfilled = left;
            }
            gaps.retain(|g| !g.unfilled.is_empty());
        }
        if p.tcp.payload_len > 0 && end > high {
            let at = *open.get_or_insert(idx);
            let chunk = plan.entry(at).or_default();
            if off > high {
                gaps.push(Gap { at, pos: chunk.len(), start: high, unfilled: vec![(high, off)] });
                chunk.extend(std::iter::repeat_n(0u8, (off - high) as usize));
            }
            let from = (high.max(off) - off) as usize;
            if from < have {
                chunk.extend_from_slice(&captured[from..have]);
            }
            chunk.resize(chunk.len() + (p.tcp.payload_len - from.max(have)), 0);
            high = end;
        }
        let f = p.tcp.flags;
        if f.psh() || f.fin() || f.rst() {
            open = None;
        }
    }
    for (a, b) in gaps.iter().flat_map(|g| g.unfilled.iter()) {
        let text = format!("app: bytes {a}..{b} were never captured: written as zeros");
        steps.push(Step::Note { time: now, text });
    }
    plan
}

/// The utcp run's part of the report: whether it accepted a RST, and its counters.
fn finish(mut run: Run<'_>, unplayable: Option<String>) -> Replay {
    READ_BUFFER.set(std::mem::take(&mut run.rbuf));
    let reset = matches!(run.close_reason, Some(CloseReason::Reset | CloseReason::Refused))
        || run.host.stack().stats().resets_in > 0;
    let played = Played {
        backend: Backend::Utcp,
        local: run.local,
        remote: run.remote,
        steps: run.steps,
        tr: run.tr,
        reset,
        stats: run.host.stack().stats().clone(),
    };
    conclude(run.flow, &run.opts, played, unplayable)
}

/// What a backend played, for [`conclude`].
pub(crate) struct Played {
    /// The stack that played the recorded endpoint.
    pub backend: Backend,
    /// Its endpoint.
    pub local: SocketAddr,
    /// The peer's endpoint.
    pub remote: SocketAddr,
    /// The steps, in time order.
    pub steps: Vec<Step>,
    /// The translator, which learnt the stack's ISN and TS clock.
    pub tr: Translator,
    /// Whether the stack accepted a RST (its connection reset or refused).
    pub reset: bool,
    /// Its counters (for Linux, what `TCP_INFO` and the wire show).
    pub stats: utcp::Stats,
}

/// Comparison, completion and the report fields, the same for every backend.
pub(crate) fn conclude(flow: &Flow, opts: &Options, played: Played, unplayable: Option<String>) -> Replay {
    let role = opts.role;
    let rec_isn = flow.isn(role);
    let peer_isn = flow.isn(role.other());
    let utcp_isn = played.tr.utcp_isn;
    // The recorded endpoint's datagrams as parsed (sliced ones cut down, the rest borrowed),
    // kept for the payload comparison.
    let captured: Vec<(&FlowPacket, std::borrow::Cow<'_, [u8]>)> =
        flow.packets.iter().filter(|p| p.from == role).map(|p| (p, p.as_captured())).collect();
    let mut rnums = Vec::with_capacity(captured.len());
    let mut rsegs = Vec::with_capacity(captured.len());
    let mut rbytes: Vec<&[u8]> = Vec::with_capacity(captured.len());
    for (p, d) in &captured {
        let declared = p.tcp.is_sliced().then_some(p.tcp.payload_len);
        if let Some(s) = Seg::parse(p.time, d, rec_isn, peer_isn, 0, declared) {
            rnums.push(p.number);
            rsegs.push(s);
            rbytes.push(d);
        }
    }
    let ts_shift = played.tr.ts_delta.unwrap_or(0);
    let (mut usteps, mut usegs) = (Vec::new(), Vec::new());
    let mut ubytes: Vec<&[u8]> = Vec::new();
    for (i, s) in played.steps.iter().enumerate() {
        if let Step::Out { time, datagram } = s {
            if let Some(seg) = Seg::parse(*time, datagram, utcp_isn, peer_isn, ts_shift, None) {
                usteps.push(i);
                usegs.push(seg);
                ubytes.push(datagram);
            }
        }
    }
    let mut alignment = align(&rsegs, &usegs, opts.profile);
    compare_payloads(&mut alignment, &rsegs, |i| rbytes[i], &usegs, |i| ubytes[i]);
    let counts = alignment.counts();
    // The datagrams of recorded packets utcp did not send, to show them.
    let missing: std::collections::HashSet<u64> = alignment
        .recorded
        .iter()
        .zip(&rnums)
        .filter(|(o, _)| **o == Outcome::Missing)
        .map(|(_, n)| *n)
        .collect();
    let recorded_datagrams: Vec<(u64, Vec<u8>)> = flow
        .packets
        .iter()
        .filter(|p| p.from == role && missing.contains(&p.number))
        .map(|p| (p.number, p.as_captured().into_owned()))
        .collect();

    // How the recording ended, and whether utcp got there.
    let rst = flow.packets.iter().any(|p| p.tcp.flags.rst());
    let fin_client = flow.packets.iter().any(|p| p.from == Side::Client && p.tcp.flags.fin());
    let fin_server = flow.packets.iter().any(|p| p.from == Side::Server && p.tcp.flags.fin());
    let end = if rst {
        RecordedEnd::Rst
    } else if fin_client && fin_server {
        RecordedEnd::FinFin
    } else {
        RecordedEnd::Open
    };
    let sent_fin = usegs.iter().any(|s| s.flags.fin());
    let sent_rst = usegs.iter().any(|s| s.flags.rst());
    let peer_fin_end = flow
        .packets
        .iter()
        .filter(|p| p.from != role && p.tcp.flags.fin())
        .map(|p| (p.tcp.seq + p.tcp.segment_len()).0.wrapping_sub(peer_isn.map_or(0, |i| i.0)))
        .next();
    let acked_peer_fin = peer_fin_end
        .is_some_and(|f| usegs.iter().any(|s| s.flags.ack() && (s.ack.wrapping_sub(f) as i32) >= 0));
    let name = played.backend.name();
    let reset = played.reset;
    let (completed, reason) = match (&unplayable, end) {
        (Some(why), _) => (false, Some(why.clone())),
        (None, RecordedEnd::Open) => {
            (false, Some("the capture ends before the connection does (no FIN both ways, no RST)".into()))
        }
        (None, RecordedEnd::FinFin) => match (sent_fin, acked_peer_fin) {
            (true, true) => (true, None),
            (false, _) => (false, Some(format!("{name} sent no FIN"))),
            (true, false) => (false, Some(format!("{name} did not acknowledge the peer's FIN"))),
        },
        (None, RecordedEnd::Rst) => {
            if sent_rst || reset {
                (true, None)
            } else {
                (false, Some(format!("the recording ends with a RST; {name} neither sent nor accepted one")))
            }
        }
    };
    let recorded: Vec<(u64, Seg)> = rnums.into_iter().zip(rsegs).collect();
    let utcp: Vec<(usize, Seg)> = usteps.into_iter().zip(usegs).collect();
    let start = flow.packets.first().map_or(Instant::ZERO, |p| p.time);
    let first_difference = first_difference(&recorded, &utcp, &alignment, start, name);
    Replay {
        backend: played.backend,
        flow: flow.index,
        role,
        local: played.local,
        remote: played.remote,
        mode: opts.mode,
        profile: opts.profile,
        replayed: unplayable.is_none(),
        steps: played.steps,
        recorded,
        recorded_datagrams,
        utcp,
        alignment,
        counts,
        completed,
        reason,
        first_difference,
        isns: (rec_isn, peer_isn, utcp_isn),
        stats: played.stats,
    }
}

/// The earliest difference in time: a differing or missing recorded packet, or an extra one.
fn first_difference(
    recorded: &[(u64, Seg)],
    utcp: &[(usize, Seg)],
    a: &Alignment,
    start: Instant,
    name: &str,
) -> Option<String> {
    let mut best: Option<(Instant, String)> = None;
    let mut offer = |t: Instant, text: String| {
        if best.as_ref().is_none_or(|(bt, _)| t < *bt) {
            best = Some((t, text));
        }
    };
    for (i, o) in a.recorded.iter().enumerate() {
        let (number, seg) = &recorded[i];
        match o {
            Outcome::Missing => {
                offer(seg.time, format!("record {number} ({}) not sent by {name}", seg.kind().describe()));
                break;
            }
            Outcome::Matched(_, diffs) if diffs.iter().any(|d| d.significant) => {
                let text: Vec<&str> =
                    diffs.iter().filter(|d| d.significant).map(|d| d.text.as_str()).collect();
                offer(seg.time, format!("record {number} ({}): {}", seg.kind().describe(), text.join(", ")));
                break;
            }
            _ => {}
        }
    }
    if let Some(i) = a.utcp.iter().position(Option::is_none) {
        let seg = &utcp[i].1;
        let at = crate::transcript::format_time(seg.time.saturating_duration_since(start));
        offer(seg.time, format!("{name} sent {} at {at} not in the recording", seg.kind().describe()));
    }
    best.map(|(_, t)| t)
}
