//! Runs a parsed [`Script`] against a `utcp::Stack` on virtual time, through a [`Host`] whose
//! device is an [`Outbox`] the `>` lines are matched against.
//!
//! Numbering (DESIGN.md "Scripts"): `<` sequence numbers are relative to the remote ISN the runner
//! picks ([`REMOTE_ISN`]); numbers that belong to the stack (`>` sequence numbers, `<` ack numbers
//! and SACK blocks) are relative to the stack's ISN, re-based at every SYN the stack sends, and
//! absolute before any is known. Timestamps: the remote's values are absolute; the stack's are
//! mapped by the offset between the first `TS val` a `>` line wrote and the one the stack sent.
//!
//! Blocking calls that cannot complete at once stay pending while later lines run (as in
//! packetdrill, where they run in a thread); they complete when the stack lets them.
//! Must not depend on: wall-clock time, the network.

use super::ast::*;
use super::packet::Segment;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use utcp::host::{Bounds, Host, Observer, Outbox, Runaway, RunawayKind};
use utcp::tcp::seq::SeqNum;
use utcp::wire::{parse_datagram, ChecksumMode, Notation, TcpRepr, Transport};
use utcp::{
    AcceptError, CloseReason, Config, Duration, Errno, Event as StackEvent, Instant, ListenerHandle,
    RecvError, SendError, SocketHandle, SocketOption, SocketOptions, Stack, State,
};

/// The most bytes one write or read call hands to the stack at once (the rest follows as the
/// call blocks and retries).
const MAX_CALL_BYTES: usize = 1 << 20;

/// The remote's initial sequence number; `<` sequence numbers are relative to it.
pub const REMOTE_ISN: u32 = 1_000_000_000;
/// The port the stack listens on (and that `connect` goes to).
pub const SERVER_PORT: u16 = 8080;
/// The scripted peer's port for connections it opens.
pub const CLIENT_PORT: u16 = 47_000;
/// Linux's default keepalive idle time (net.ipv4.tcp_keepalive_time).
const DEFAULT_KEEPIDLE: Duration = Duration::from_secs(7200);
/// The longest a `*` outbound line waits for its packet.
const ANY_TIME_LIMIT: u64 = 3_600_000_000;
/// A stack that sends more at once, or runs more timers before the script's next line, has run
/// away.
const BOUNDS: Bounds = Bounds { max_datagrams_per_drain: 10_000, max_timer_runs_per_advance: 100_000 };

/// What the executor keeps of the stack's events: how each connection closed.
struct Closes<'a>(&'a mut HashMap<SocketHandle, CloseReason>);

impl Observer for Closes<'_> {
    fn event(&mut self, _now: Instant, event: StackEvent) {
        if let StackEvent::Closed(h, reason) = event {
            self.0.insert(h, reason);
        }
    }
}

/// Why a script failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The script line (1-based), 0 when not tied to a line.
    pub line: usize,
    /// The line as written.
    pub expected: String,
    /// What happened instead, in the same notation where there is one.
    pub got: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: expected: {}\n  instead: {}", self.line, self.expected, self.got)
    }
}

/// The result of running one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `None` when the script passed.
    pub failure: Option<Failure>,
    /// Every packet and call as it happened, one line each, times in seconds.
    pub transcript: Vec<String>,
}

impl Outcome {
    /// Whether the script passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The configuration a script runs against.
pub fn config_for(options: &ScriptOptions) -> Config {
    let mut config = match options.profile {
        Profile::Linux => Config::linux_like(),
        Profile::Default => Config::default(),
    };
    config = config.with_address(options.local_ip.into());
    if let Some(mtu) = options.mtu {
        config.mtu = mtu;
    }
    config.isn_secret = *b"utcp-script-isn!";
    config
}

/// Runs a script. A panic inside the stack is caught and reported as a failure at the line that
/// was running.
pub fn run(script: &Script) -> Outcome {
    let mut exec = Exec::new(script);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exec.run_all()));
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(f)) => Some(f),
        Err(panic) => {
            let msg = crate::panic_message(panic.as_ref());
            Some(Failure {
                line: exec.current_line,
                expected: exec.current_text.clone(),
                got: format!("the stack panicked: {msg}"),
            })
        }
    };
    Outcome { failure, transcript: std::mem::take(&mut exec.transcript) }
}

#[derive(Debug, Clone)]
enum FdKind {
    /// Created by `socket`, not yet listening or connected.
    Fresh {
        bound: bool,
    },
    Listener(ListenerHandle),
    Conn(SocketHandle),
}

#[derive(Debug, Clone)]
struct Fd {
    kind: FdKind,
    nonblocking: bool,
    linger0: bool,
    options: SocketOptions,
    keepalive_on: bool,
    keepidle: Option<Duration>,
}

/// What a call returned: a value or an errno.
type CallResult = Result<i64, Errno>;

/// A blocking call that could not complete yet.
#[derive(Debug, Clone)]
struct Pending {
    line: usize,
    text: String,
    call: CallSpec,
    /// When the call is expected back (`t1...t2`), absolute.
    end_time: Option<u64>,
    /// When the call was made, microseconds.
    started: u64,
    /// For `write`: bytes accepted so far.
    written: usize,
    /// Whether this is a retry of a call that blocked.
    retry: bool,
}

struct Exec<'s> {
    script: &'s Script,
    config: Config,
    /// The host, made at the first line that needs the stack (options may change the
    /// configuration until then).
    host: Option<Host>,
    /// The script's clock; the host follows it.
    now: Instant,
    /// The time of the previous event, for relative times.
    last: u64,
    fds: BTreeMap<i64, Fd>,
    /// What the stack sent and no `>` line has matched yet.
    out: Outbox,
    /// The stack's ISN per peer port, from the latest SYN it sent to that port.
    stack_isns: HashMap<u16, u32>,
    ts_offset: Option<u32>,
    last_ts_val: Option<u32>,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    closed: HashMap<SocketHandle, CloseReason>,
    pending: Option<Pending>,
    transcript: Vec<String>,
    current_line: usize,
    current_text: String,
}

/// The executor's host, made with `config` if there is none yet, at the script's time `now`.
fn host_of<'h>(host: &'h mut Option<Host>, config: &Config, now: Instant) -> &'h mut Host {
    let host = host.get_or_insert_with(|| Host::new(Stack::new(config.clone()), now, BOUNDS));
    host.set_now(now);
    host
}

fn fail<T>(line: usize, expected: &str, got: impl Into<String>) -> Result<T, Failure> {
    Err(Failure { line, expected: expected.to_string(), got: got.into() })
}

fn secs(t: Instant) -> String {
    let us = t.total_micros();
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn format_result(r: &CallResult) -> String {
    match r {
        Ok(v) => format!("= {v}"),
        Err(e) => format!("= -1 {e}"),
    }
}

/// The errno of a core error; every error of the core's socket calls has one.
fn errno(e: Option<Errno>) -> Errno {
    e.unwrap_or(Errno::EINVAL)
}

fn int_arg(call: &CallSpec, i: usize) -> Result<i64, String> {
    match call.args.get(i) {
        Some(Expr::Int(v)) => Ok(*v),
        Some(Expr::Array(items)) if items.len() == 1 => match &items[0] {
            Expr::Int(v) => Ok(*v),
            e => Err(format!("argument {} of {}: expected a number, found `{e}`", i + 1, call.name)),
        },
        Some(e) => Err(format!("argument {} of {}: expected a number, found `{e}`", i + 1, call.name)),
        None => Err(format!("{} needs at least {} arguments", call.name, i + 1)),
    }
}

fn symbols(e: &Expr) -> Vec<String> {
    match e {
        Expr::Symbol(s) => vec![s.clone()],
        Expr::BitOr(parts) => parts.iter().flat_map(symbols).collect(),
        Expr::Array(items) => items.iter().flat_map(symbols).collect(),
        _ => Vec::new(),
    }
}

fn sym_arg(call: &CallSpec, i: usize) -> Result<String, String> {
    match call.args.get(i) {
        Some(Expr::Symbol(s)) => Ok(s.clone()),
        Some(e) => Err(format!("argument {} of {}: expected a name, found `{e}`", i + 1, call.name)),
        None => Err(format!("{} needs at least {} arguments", call.name, i + 1)),
    }
}

impl<'s> Exec<'s> {
    fn new(script: &'s Script) -> Self {
        let o = &script.options;
        Exec {
            script,
            config: config_for(o),
            host: None,
            now: Instant::ZERO,
            last: 0,
            fds: BTreeMap::new(),
            out: Outbox::default(),
            stack_isns: HashMap::new(),
            ts_offset: None,
            last_ts_val: None,
            local: SocketAddrV4::new(o.local_ip, SERVER_PORT),
            remote: SocketAddrV4::new(o.remote_ip, CLIENT_PORT),
            closed: HashMap::new(),
            pending: None,
            transcript: Vec::new(),
            current_line: 0,
            current_text: String::new(),
        }
    }

    /// The stack, made now if this is the first line that needs it; at the script's time.
    fn stack(&mut self) -> &mut Stack {
        host_of(&mut self.host, &self.config, self.now).stack_mut()
    }

    /// A runaway of the host as a failure of the current line.
    fn runaway<T>(&self, r: Runaway) -> Result<T, Failure> {
        let what = match r.what {
            RunawayKind::Datagrams => "the stack sent more than 10000 packets at once",
            RunawayKind::TimerRuns => "the stack's timers do not advance",
        };
        fail(self.current_line, &self.current_text, what)
    }

    fn default_options(&self) -> SocketOptions {
        SocketOptions::from_config(&self.config.tcp)
    }

    fn run_all(&mut self) -> Result<(), Failure> {
        let script = self.script;
        for event in &script.events {
            self.current_line = event.line;
            self.current_text = event.text.clone();
            match &event.kind {
                EventKind::Packet(p) if p.direction == Direction::Outbound => self.outbound(event, p)?,
                kind => {
                    let t = match event.time {
                        TimeSpec::Absolute(t) => t,
                        TimeSpec::Relative(d) => self.last + d,
                        TimeSpec::Any => self.now.total_micros(),
                        TimeSpec::Range { lo, relative, .. } => lo + if relative { self.last } else { 0 },
                    };
                    self.advance(Instant::from_micros(t), false)?;
                    self.no_unexpected_packet(event)?;
                    self.last = t;
                    match kind {
                        EventKind::Packet(p) => self.inbound(event, p)?,
                        EventKind::Call(c) => self.call(event, c)?,
                    }
                    self.after_input()?;
                }
            }
        }
        if let Some(p) = &self.pending {
            return fail(p.line, &p.text, "the call was still blocked at the end of the script");
        }
        Ok(())
    }

    /// Collects the stack's output and events, and completes a pending call if it can.
    fn after_input(&mut self) -> Result<(), Failure> {
        if let Some(host) = self.host.as_mut() {
            host.set_now(self.now);
            if let Err(r) = host.drain(&mut self.out, &mut Closes(&mut self.closed)) {
                return self.runaway(r);
            }
        }
        self.try_pending()
    }

    /// Runs timers up to `until`, each at its deadline. With `stop_at_packet`, stops as soon as a
    /// packet is queued.
    fn advance(&mut self, until: Instant, stop_at_packet: bool) -> Result<(), Failure> {
        self.after_input()?;
        if let Some(host) = self.host.as_ref() {
            let mut timers = host.timers_until(until);
            loop {
                if stop_at_packet && !self.out.sent.is_empty() {
                    return Ok(());
                }
                let Some(host) = self.host.as_mut() else { break };
                match timers.run_next(host) {
                    Ok(Some(at)) => self.now = self.now.max(at),
                    Ok(None) => break,
                    Err(r) => return self.runaway(r),
                }
                self.after_input()?;
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }

    fn no_unexpected_packet(&mut self, event: &Event) -> Result<(), Failure> {
        if let Some((t, d)) = self.out.sent.pop_front() {
            let shown = self.show_outbound(&d);
            self.transcript.push(format!("{} > {shown}", secs(t)));
            return fail(event.line, &event.text, format!("the stack sent `> {shown}` at {} first", secs(t)));
        }
        Ok(())
    }

    // ----- packets -------------------------------------------------------------------------

    /// The stack's ISN towards `peer_port`, or 0 (absolute numbers) before one is known.
    fn stack_base(&self, peer_port: u16) -> u32 {
        self.stack_isns.get(&peer_port).copied().unwrap_or(0)
    }

    /// The peer's address for a packet line: the current one, or another port when it says so.
    fn peer_for(&self, p: &PacketSpec) -> SocketAddrV4 {
        SocketAddrV4::new(*self.remote.ip(), p.peer_port.unwrap_or(self.remote.port()))
    }

    fn inbound(&mut self, event: &Event, p: &PacketSpec) -> Result<(), Failure> {
        let peer = self.peer_for(p);
        let base = self.stack_base(peer.port());
        let mut options = Vec::new();
        if let Some(OptionsSpec::List(list)) = &p.options {
            for o in list {
                options.push(match o {
                    TcpOptionSpec::Sack(blocks) => TcpOptionSpec::Sack(
                        blocks.iter().map(|(a, b)| (a.wrapping_add(base), b.wrapping_add(base))).collect(),
                    ),
                    TcpOptionSpec::Timestamp { val, ecr } => {
                        let ecr = match (self.ts_offset, self.last_ts_val) {
                            (Some(off), _) => ecr.wrapping_add(off),
                            (None, Some(v)) if *ecr != 0 => v,
                            _ => *ecr,
                        };
                        TcpOptionSpec::Timestamp { val: *val, ecr }
                    }
                    o => o.clone(),
                });
            }
        } else if p.options == Some(OptionsSpec::Any) {
            return fail(event.line, &event.text, "`<...>` (any options) only makes sense on a `>` line");
        }
        let seg = Segment {
            src: peer,
            dst: self.local,
            flags: p.flags,
            seq: REMOTE_ISN.wrapping_add(p.seq),
            ack: p.ack.map_or(0, |a| a.wrapping_add(base)),
            win: p.win.unwrap_or(65535),
            urg: p.urg.unwrap_or(0),
            options,
            payload_len: p.len,
        };
        let d = match seg.to_datagram() {
            Ok(d) => d,
            Err(e) => return fail(event.line, &event.text, e),
        };
        self.transcript.push(format!("{} < {}", secs(self.now), self.show_inbound(&d)));
        let host = host_of(&mut self.host, &self.config, self.now);
        host.receive(self.now, &d, &mut Closes(&mut self.closed));
        Ok(())
    }

    /// Formats an outbound datagram in the core's notation, numbers relative as in the script
    /// (the stack's ISN re-based at its SYNs, the remote's ISN the runner's).
    fn show_outbound(&self, d: &[u8]) -> String {
        self.show(d, |tcp| {
            let sender = if tcp.flags.syn() { Some(tcp.seq) } else { self.stack_isn(tcp.dst_port) };
            (sender, Some(SeqNum(REMOTE_ISN)), tcp.dst_port)
        })
    }

    /// Formats an inbound datagram as [`Exec::show_outbound`] does, from the remote's side.
    fn show_inbound(&self, d: &[u8]) -> String {
        self.show(d, |tcp| (Some(SeqNum(REMOTE_ISN)), self.stack_isn(tcp.src_port), tcp.src_port))
    }

    /// The stack's ISN towards `peer_port`, once known.
    fn stack_isn(&self, peer_port: u16) -> Option<SeqNum> {
        self.stack_isns.get(&peer_port).copied().map(SeqNum)
    }

    /// A datagram in the notation (options in wire order), `port N` after it when it is not the
    /// script's peer's; `isns` gives the sender's and receiver's ISN and the peer's port.
    fn show(&self, d: &[u8], isns: impl Fn(&TcpRepr<'_>) -> (Option<SeqNum>, Option<SeqNum>, u16)) -> String {
        match parse_datagram(d, ChecksumMode::Verify) {
            Ok(dg) => match dg.transport {
                Transport::Tcp(tcp) => {
                    let (sender, receiver, peer_port) = isns(&tcp);
                    let ihl = usize::from(d[0] & 0xf) * 4;
                    let raw = d
                        .get(ihl + 12)
                        .map(|b| usize::from(b >> 4) * 4)
                        .and_then(|doff| d.get(ihl + 20..ihl + doff));
                    let mut out = Notation::new(&tcp, sender, receiver).with_raw_options(raw).to_string();
                    if peer_port != self.remote.port() {
                        out.push_str(&format!(" port {peer_port}"));
                    }
                    out
                }
                _ => "(not a TCP segment)".to_string(),
            },
            Err(e) => format!("(unparsable datagram: {e})"),
        }
    }

    #[allow(clippy::type_complexity)]
    fn relative(&self, s: &Segment) -> (u8, u32, u32, u32, u16, u16, Vec<TcpOptionSpec>) {
        let base = if s.flags & flag::SYN != 0 { s.seq } else { self.stack_base(s.dst.port()) };
        let opts = s
            .options
            .iter()
            .map(|o| match o {
                TcpOptionSpec::Sack(blocks) => TcpOptionSpec::Sack(
                    blocks
                        .iter()
                        .map(|(a, b)| (a.wrapping_sub(REMOTE_ISN), b.wrapping_sub(REMOTE_ISN)))
                        .collect(),
                ),
                TcpOptionSpec::Timestamp { val, ecr } => {
                    TcpOptionSpec::Timestamp { val: val.wrapping_sub(self.ts_offset.unwrap_or(0)), ecr: *ecr }
                }
                o => o.clone(),
            })
            .collect();
        (s.flags, s.seq.wrapping_sub(base), s.payload_len, s.ack.wrapping_sub(REMOTE_ISN), s.win, s.urg, opts)
    }

    fn outbound(&mut self, event: &Event, p: &PacketSpec) -> Result<(), Failure> {
        let tol = self.script.options.tolerance_usecs;
        let (lo, hi) = match event.time {
            TimeSpec::Absolute(t) => (t, t),
            TimeSpec::Relative(d) => (self.last + d, self.last + d),
            TimeSpec::Any => (self.now.total_micros(), self.now.total_micros() + ANY_TIME_LIMIT),
            TimeSpec::Range { lo, hi, relative } => {
                let b = if relative { self.last } else { 0 };
                (lo + b, hi + b)
            }
        };
        let (early, late) =
            if event.time == TimeSpec::Any { (0, hi) } else { (lo.saturating_sub(tol), hi + tol) };
        self.advance(Instant::from_micros(late), true)?;
        let Some((t, d)) = self.out.sent.pop_front() else {
            return fail(
                event.line,
                &event.text,
                format!("no packet by {}", secs(Instant::from_micros(late))),
            );
        };
        let seg = match Segment::parse(&d) {
            Ok(s) => s,
            Err(e) => return fail(event.line, &event.text, format!("an unparsable datagram: {e}")),
        };
        if seg.flags & flag::SYN != 0 {
            self.stack_isns.insert(seg.dst.port(), seg.seq);
            if seg.flags & flag::ACK == 0 {
                self.local = seg.src;
                self.remote = seg.dst;
            }
        }
        let shown = self.show_outbound(&d);
        self.transcript.push(format!("{} > {shown}", secs(t)));
        let got = |why: String| format!("> {shown} at {} ({why})", secs(t));
        let tu = t.total_micros();
        if tu < early || tu > late {
            return fail(
                event.line,
                &event.text,
                got(format!(
                    "expected between {} and {}",
                    secs(Instant::from_micros(early)),
                    secs(Instant::from_micros(late))
                )),
            );
        }
        let peer = self.peer_for(p);
        if seg.src != self.local || seg.dst != peer {
            return fail(
                event.line,
                &event.text,
                got(format!(
                    "sent from {} to {}, expected {} to {}",
                    seg.src, seg.dst, self.local, self.remote
                )),
            );
        }
        let (flags, seq, len, ack, win, urg, opts) = self.relative(&seg);
        if flags != p.flags {
            return fail(
                event.line,
                &event.text,
                got(format!("flags {} instead of {}", format_flags(flags), format_flags(p.flags))),
            );
        }
        if seq != p.seq || len != p.len {
            return fail(event.line, &event.text, got("different sequence range".into()));
        }
        if let Some(a) = p.ack {
            if flags & flag::ACK == 0 || ack != a {
                return fail(event.line, &event.text, got(format!("ack {ack} instead of {a}")));
            }
        }
        if let Some(w) = p.win {
            if win != w {
                return fail(event.line, &event.text, got(format!("win {win} instead of {w}")));
            }
        }
        if let Some(u) = p.urg {
            if urg != u {
                return fail(event.line, &event.text, got(format!("urg {urg} instead of {u}")));
            }
        }
        if let Some(OptionsSpec::List(want)) = &p.options {
            let ok = want.len() == opts.len()
                && want.iter().zip(&opts).all(|(w, g)| match (w, g) {
                    (TcpOptionSpec::Timestamp { ecr: we, .. }, TcpOptionSpec::Timestamp { ecr: ge, .. }) => {
                        we == ge
                    }
                    (w, g) => w == g,
                });
            if !ok {
                return fail(
                    event.line,
                    &event.text,
                    got(format!("options {} instead of {}", format_options(&opts), format_options(want))),
                );
            }
        }
        // Learn the stack's timestamp clock from the first TS val the script wrote.
        let want_val = match &p.options {
            Some(OptionsSpec::List(want)) => want.iter().find_map(|o| match o {
                TcpOptionSpec::Timestamp { val, .. } => Some(*val),
                _ => None,
            }),
            _ => None,
        };
        if let Some(TcpOptionSpec::Timestamp { val, .. }) =
            seg.options.iter().find(|o| matches!(o, TcpOptionSpec::Timestamp { .. }))
        {
            self.last_ts_val = Some(*val);
            if let (None, Some(w)) = (self.ts_offset, want_val) {
                self.ts_offset = Some(val.wrapping_sub(w));
            }
        }
        self.last = tu;
        Ok(())
    }

    // ----- calls ---------------------------------------------------------------------------

    fn alloc_fd(&mut self, kind: FdKind, options: SocketOptions) -> i64 {
        let mut fd = 3;
        while self.fds.contains_key(&fd) {
            fd += 1;
        }
        self.fds.insert(
            fd,
            Fd { kind, nonblocking: false, linger0: false, options, keepalive_on: false, keepidle: None },
        );
        fd
    }

    fn call(&mut self, event: &Event, c: &CallSpec) -> Result<(), Failure> {
        if self.pending.is_some()
            && matches!(c.name.as_str(), "accept" | "connect" | "read" | "recv" | "write" | "send" | "poll")
        {
            let p = self.pending.as_ref().map(|p| p.line).unwrap_or(0);
            return fail(
                event.line,
                &event.text,
                format!("the blocking call at line {p} has not returned yet"),
            );
        }
        let end_time = event.end_time.map(|(t, rel)| if rel { self.last + t } else { t });
        let mut pending = Pending {
            line: event.line,
            text: event.text.clone(),
            call: c.clone(),
            end_time,
            started: self.now.total_micros(),
            written: 0,
            retry: false,
        };
        match self.attempt(&mut pending) {
            Err(msg) => fail(event.line, &event.text, msg),
            Ok(Some(result)) => self.check_result(&pending, result),
            Ok(None) => {
                self.pending = Some(pending);
                Ok(())
            }
        }
    }

    fn try_pending(&mut self) -> Result<(), Failure> {
        let Some(mut p) = self.pending.take() else { return Ok(()) };
        p.retry = true;
        match self.attempt(&mut p) {
            Err(msg) => fail(p.line, &p.text, msg),
            Ok(Some(result)) => self.check_result(&p, result),
            Ok(None) => {
                self.pending = Some(p);
                Ok(())
            }
        }
    }

    fn check_result(&mut self, p: &Pending, got: CallResult) -> Result<(), Failure> {
        self.transcript.push(format!("{} {} {}", secs(self.now), call_text(&p.call), format_result(&got)));
        let c = &p.call;
        let ok = match (&c.result, &c.errno, &got) {
            (Expr::Ellipsis, None, _) => true,
            (Expr::Int(-1), Some(e), Err(g)) => e == g.name(),
            (Expr::Int(v), None, Ok(g)) => v == g,
            _ => false,
        };
        if !ok {
            return fail(p.line, &p.text, format!("{} {}", call_text(c), format_result(&got)));
        }
        if let Some(end) = p.end_time {
            let tol = self.script.options.tolerance_usecs;
            let t = self.now.total_micros();
            if t + tol < end || t > end + tol {
                return fail(p.line, &p.text, format!("the call returned at {}", secs(self.now)));
            }
        }
        Ok(())
    }

    fn fd(&mut self, call: &CallSpec) -> Result<Result<(i64, Fd), Errno>, String> {
        let fd = int_arg(call, 0)?;
        Ok(self.fds.get(&fd).cloned().map(|f| (fd, f)).ok_or(Errno::EBADF))
    }

    /// Tries a call: `Ok(Some(result))` when it returned, `Ok(None)` when it blocks, `Err` when
    /// the script asked for something the executor cannot do.
    fn attempt(&mut self, p: &mut Pending) -> Result<Option<CallResult>, String> {
        let c = p.call.clone();
        let now = self.now;
        let r: CallResult = match c.name.as_str() {
            "socket" => {
                let kinds = c.args.iter().flat_map(symbols).collect::<Vec<_>>();
                if kinds.iter().any(|k| k == "SOCK_DGRAM" || k == "IPPROTO_UDP" || k == "AF_INET6") {
                    return Err(format!(
                        "only TCP over IPv4 sockets are scripted, found {}",
                        kinds.join(", ")
                    ));
                }
                let options = self.default_options();
                Ok(self.alloc_fd(FdKind::Fresh { bound: false }, options))
            }
            "bind" => match self.fd(&c)? {
                Err(e) => Err(e),
                Ok((fd, f)) => match f.kind {
                    FdKind::Fresh { .. } => {
                        if let Some(f) = self.fds.get_mut(&fd) {
                            f.kind = FdKind::Fresh { bound: true };
                        }
                        Ok(0)
                    }
                    _ => Err(Errno::EINVAL),
                },
            },
            "listen" => {
                let backlog = int_arg(&c, 1)?;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((fd, f)) => match f.kind {
                        FdKind::Fresh { .. } => {
                            let local =
                                SocketAddr::V4(SocketAddrV4::new(self.script.options.local_ip, SERVER_PORT));
                            match self.stack().listen_with(now, local, backlog.max(0) as usize, f.options) {
                                Ok(l) => {
                                    if let Some(f) = self.fds.get_mut(&fd) {
                                        f.kind = FdKind::Listener(l);
                                    }
                                    self.local = SocketAddrV4::new(self.script.options.local_ip, SERVER_PORT);
                                    self.remote =
                                        SocketAddrV4::new(self.script.options.remote_ip, CLIENT_PORT);
                                    Ok(0)
                                }
                                Err(e) => Err(errno(e.errno())),
                            }
                        }
                        FdKind::Listener(_) => Ok(0),
                        FdKind::Conn(_) => Err(Errno::EINVAL),
                    },
                }
            }
            "accept" => match self.fd(&c)? {
                Err(e) => Err(e),
                Ok((_, f)) => match f.kind {
                    FdKind::Listener(l) => match self.stack().accept(now, l) {
                        Ok(h) => {
                            let options = f.options;
                            let fd = self.alloc_fd(FdKind::Conn(h), options);
                            if let Some(nf) = self.fds.get_mut(&fd) {
                                nf.keepalive_on = f.keepalive_on;
                                nf.keepidle = f.keepidle;
                            }
                            Ok(fd)
                        }
                        Err(AcceptError::WouldBlock) if !f.nonblocking => return Ok(None),
                        Err(e) => Err(errno(e.errno())),
                    },
                    _ => Err(Errno::EINVAL),
                },
            },
            "connect" => match self.fd(&c)? {
                Err(e) => Err(e),
                Ok((fd, f)) => match f.kind {
                    FdKind::Fresh { bound } => {
                        let ip = self.script.options.local_ip;
                        let local = bound.then_some(SocketAddr::V4(SocketAddrV4::new(ip, SERVER_PORT)));
                        let remote = SocketAddrV4::new(self.script.options.remote_ip, SERVER_PORT);
                        match self.stack().connect_with(now, local, SocketAddr::V4(remote), f.options) {
                            Ok(h) => {
                                if let Some(f) = self.fds.get_mut(&fd) {
                                    f.kind = FdKind::Conn(h);
                                }
                                self.remote = remote;
                                if let Some(SocketAddr::V4(l)) = self.stack().info(h).map(|i| i.local) {
                                    self.local = l;
                                }
                                if f.nonblocking {
                                    Err(Errno::EINPROGRESS)
                                } else {
                                    return Ok(None);
                                }
                            }
                            Err(e) => Err(errno(e.errno())),
                        }
                    }
                    FdKind::Conn(h) => {
                        match (self.stack().state(h), self.closed.get(&h).and_then(CloseReason::errno)) {
                            (_, Some(e)) => Err(e),
                            (Some(State::SynSent), _) if f.nonblocking => Err(Errno::EALREADY),
                            (Some(State::SynSent), _) => return Ok(None),
                            (Some(State::Closed) | None, _) => Err(Errno::ECONNREFUSED),
                            _ if p.retry => Ok(0),
                            _ => Err(Errno::EISCONN),
                        }
                    }
                    FdKind::Listener(_) => Err(Errno::EISCONN),
                },
            },
            "write" | "send" => {
                let n = int_arg(&c, 2)?.max(0) as usize;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((_, f)) => match f.kind {
                        FdKind::Conn(h) => {
                            // The stack takes at most its free buffer space: never allocate what a
                            // script asks for beyond that (a fuzzer asked for 150 GB).
                            let data = vec![0u8; (n - p.written).min(MAX_CALL_BYTES)];
                            match self.stack().send(now, h, &data) {
                                Ok(k) => {
                                    p.written += k;
                                    if p.written < n && !f.nonblocking {
                                        return Ok(None);
                                    }
                                    Ok(p.written as i64)
                                }
                                Err(SendError::WouldBlock) | Err(SendError::NotConnected)
                                    if !f.nonblocking =>
                                {
                                    return Ok(None)
                                }
                                Err(_) if p.written > 0 => Ok(p.written as i64),
                                Err(e) => Err(errno(e.errno())),
                            }
                        }
                        _ => Err(Errno::EPIPE),
                    },
                }
            }
            "read" | "recv" => {
                let n = int_arg(&c, 2)?.max(0) as usize;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((_, f)) => match f.kind {
                        FdKind::Conn(h) => {
                            let mut buf = vec![0u8; n.min(MAX_CALL_BYTES)];
                            match self.stack().recv(now, h, &mut buf) {
                                Ok(k) => Ok(k as i64),
                                Err(RecvError::WouldBlock) | Err(RecvError::NotConnected)
                                    if !f.nonblocking =>
                                {
                                    return Ok(None)
                                }
                                Err(e) => Err(errno(e.errno())),
                            }
                        }
                        FdKind::Listener(_) => Err(Errno::ENOTCONN),
                        FdKind::Fresh { .. } => Err(Errno::ENOTCONN),
                    },
                }
            }
            "shutdown" => {
                let how = sym_arg(&c, 1)?;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((_, f)) => match (f.kind, how.as_str()) {
                        (_, h) if !matches!(h, "SHUT_RD" | "SHUT_WR" | "SHUT_RDWR") => {
                            return Err(format!(
                                "shutdown: expected SHUT_RD, SHUT_WR or SHUT_RDWR, found {how}"
                            ))
                        }
                        (FdKind::Conn(_), "SHUT_RD") => Ok(0),
                        (FdKind::Conn(h), _) => match self.stack().shutdown(now, h) {
                            Ok(()) => Ok(0),
                            Err(e) => Err(errno(e.errno())),
                        },
                        _ => Err(Errno::ENOTCONN),
                    },
                }
            }
            "close" => match self.fd(&c)? {
                Err(e) => Err(e),
                Ok((fd, f)) => {
                    self.fds.remove(&fd);
                    match f.kind {
                        FdKind::Fresh { .. } => Ok(0),
                        FdKind::Listener(l) => {
                            let _ = self.stack().unlisten(now, l);
                            Ok(0)
                        }
                        FdKind::Conn(h) => {
                            // close(2) of an open descriptor succeeds; the handle is never stale.
                            if f.linger0 {
                                let _ = self.stack().abort(now, h);
                            } else {
                                let _ = self.stack().close(now, h);
                            }
                            Ok(0)
                        }
                    }
                }
            },
            "setsockopt" => self.setsockopt(&c)?,
            "getsockopt" => self.getsockopt(&c)?,
            "fcntl" => {
                let cmd = sym_arg(&c, 1)?;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((fd, f)) => match cmd.as_str() {
                        "F_GETFL" => Ok(0x2 | if f.nonblocking { 0x800 } else { 0 }),
                        "F_SETFL" => {
                            let flags = c.args.get(2).map(symbols).unwrap_or_default();
                            if let Some(bad) =
                                flags.iter().find(|s| !matches!(s.as_str(), "O_RDWR" | "O_NONBLOCK"))
                            {
                                return Err(format!("fcntl F_SETFL: unsupported flag {bad}"));
                            }
                            if let Some(f) = self.fds.get_mut(&fd) {
                                f.nonblocking = flags.iter().any(|s| s == "O_NONBLOCK");
                            }
                            Ok(0)
                        }
                        _ => return Err(format!("fcntl: unsupported command {cmd} (F_GETFL, F_SETFL)")),
                    },
                }
            }
            "poll" => return self.poll(p),
            other => return Err(format!("unsupported call {other}")),
        };
        Ok(Some(r))
    }

    /// The poll(2) events ready on `fd` now.
    fn ready(&mut self, fd: i64) -> i64 {
        const POLLIN: i64 = 0x1;
        const POLLOUT: i64 = 0x4;
        const POLLERR: i64 = 0x8;
        const POLLHUP: i64 = 0x10;
        const POLLNVAL: i64 = 0x20;
        let Some(f) = self.fds.get(&fd).cloned() else { return POLLNVAL };
        match f.kind {
            FdKind::Fresh { .. } => POLLOUT | POLLHUP,
            FdKind::Listener(l) => match self.stack().pending_connections(l) {
                Some(n) if n > 0 => POLLIN,
                Some(_) => 0,
                None => POLLNVAL,
            },
            FdKind::Conn(h) => {
                let Some(r) = self.stack().readiness(h) else { return POLLNVAL };
                [(r.readable, POLLIN), (r.writable, POLLOUT), (r.error, POLLERR), (r.hangup, POLLHUP)]
                    .iter()
                    .filter(|(on, _)| *on)
                    .fold(0, |acc, (_, bit)| acc | bit)
            }
        }
    }

    /// poll([{fd=N, events=..., revents=...}, ...], nfds, timeout_ms).
    fn poll(&mut self, p: &mut Pending) -> Result<Option<CallResult>, String> {
        let c = p.call.clone();
        let Some(Expr::Array(items)) = c.args.first() else {
            return Err("poll: expected [{fd=N, events=..., revents=...}] as the first argument".into());
        };
        let timeout = int_arg(&c, 2)?;
        let bit = |s: &str| -> Result<i64, String> {
            Ok(match s {
                "POLLIN" => 0x1,
                "POLLPRI" => 0x2,
                "POLLOUT" => 0x4,
                "POLLERR" => 0x8,
                "POLLHUP" => 0x10,
                "POLLNVAL" => 0x20,
                "POLLRDNORM" => 0x40,
                "POLLWRNORM" => 0x100,
                "POLLRDHUP" => 0x2000,
                other => return Err(format!("poll: unknown event {other}")),
            })
        };
        let mask = |e: Option<&Expr>| -> Result<Option<i64>, String> {
            match e {
                None | Some(Expr::Ellipsis) => Ok(None),
                Some(Expr::Int(v)) => Ok(Some(*v)),
                Some(e) => symbols(e).iter().try_fold(0, |acc, s| Ok(acc | bit(s)?)).map(Some),
            }
        };
        let mut wanted = Vec::new();
        for item in items {
            let Expr::Struct(fields) = item else {
                return Err(format!("poll: expected {{fd=N, events=..., revents=...}}, found {item}"));
            };
            let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
            let Some(Expr::Int(fd)) = get("fd") else { return Err("poll: each entry needs fd=N".into()) };
            let events = mask(get("events"))?.unwrap_or(0);
            let revents = mask(get("revents"))?;
            wanted.push((*fd, events, revents));
        }
        let mut got = Vec::new();
        for (fd, events, _) in &wanted {
            // POLLERR, POLLHUP and POLLNVAL are reported whether asked for or not.
            let r = self.ready(*fd) & (events | 0x8 | 0x10 | 0x20);
            got.push(r);
        }
        let count = got.iter().filter(|r| **r != 0).count() as i64;
        let waited = self.now.total_micros().saturating_sub(p.started);
        let expired = timeout >= 0 && waited >= timeout as u64 * 1000;
        if count == 0 && !expired {
            return Ok(None);
        }
        for ((fd, _, want), g) in wanted.iter().zip(&got) {
            if let Some(w) = want {
                if w != g {
                    return Err(format!("poll: fd {fd} revents {g:#x}, expected {w:#x}"));
                }
            }
        }
        Ok(Some(Ok(count)))
    }

    fn setsockopt(&mut self, c: &CallSpec) -> Result<CallResult, String> {
        let now = self.now;
        let name = sym_arg(c, 2)?;
        let (fd, f) = match self.fd(c)? {
            Err(e) => return Ok(Err(e)),
            Ok(x) => x,
        };
        let value = c.args.get(3).cloned().unwrap_or(Expr::Ellipsis);
        let num = || -> Result<i64, String> { int_arg(c, 3) };
        let mut nf = f.clone();
        let mut option = None;
        match name.as_str() {
            "SO_REUSEADDR" | "SO_REUSEPORT" => {}
            "SO_LINGER" => {
                let Expr::Struct(fields) = &value else {
                    return Err(format!("SO_LINGER: expected {{onoff=1, linger=0}}, found {value}"));
                };
                let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let onoff = matches!(get("onoff"), Some(Expr::Int(v)) if v != 0);
                let linger = match get("linger") {
                    Some(Expr::Int(v)) => v,
                    _ => return Err("SO_LINGER: `linger` must be a number".into()),
                };
                if onoff && linger != 0 {
                    return Err(
                        "SO_LINGER with a non-zero time is not supported (only {onoff=1, linger=0})".into()
                    );
                }
                nf.linger0 = onoff;
            }
            "SO_RCVBUF" => {
                let v = num()?.max(0) as usize;
                nf.options.recv_buffer = v;
                option = Some(SocketOption::RecvBuffer(v));
            }
            "SO_SNDBUF" => {
                let v = num()?.max(0) as usize;
                nf.options.send_buffer = v;
                option = Some(SocketOption::SendBuffer(v));
            }
            "TCP_NODELAY" => {
                let v = num()? != 0;
                nf.options.nodelay = v;
                option = Some(SocketOption::NoDelay(v));
            }
            "TCP_MAXSEG" => {
                let v = u16::try_from(num()?).map_err(|_| "TCP_MAXSEG out of range".to_string())?;
                nf.options.max_segment = Some(v);
                option = Some(SocketOption::MaxSegment(v));
            }
            "SO_KEEPALIVE" | "TCP_KEEPIDLE" => {
                if name == "SO_KEEPALIVE" {
                    nf.keepalive_on = num()? != 0;
                } else {
                    nf.keepidle = Some(Duration::from_secs(num()?.max(1) as u64));
                }
                let ka = nf.keepalive_on.then(|| nf.keepidle.unwrap_or(DEFAULT_KEEPIDLE));
                nf.options.keepalive = ka;
                option = Some(SocketOption::KeepAlive(ka));
            }
            "TCP_KEEPINTVL" | "TCP_KEEPCNT" => {
                if self.host.is_some() {
                    return Err(format!(
                        "{name} is a stack-wide knob in utcp: set it before the first listen, connect or packet"
                    ));
                }
                let v = num()?.max(1) as u64;
                if name == "TCP_KEEPINTVL" {
                    self.config.tcp.keepalive_interval = Duration::from_secs(v);
                } else {
                    self.config.tcp.keepalive_probes = v as u32;
                }
            }
            other => return Err(format!("setsockopt: unsupported option {other}")),
        }
        match (&f.kind, option) {
            (FdKind::Conn(h), Some(o)) => {
                let h = *h;
                if let Err(e) = self.stack().set_option(now, h, o) {
                    return Ok(Err(errno(e.errno())));
                }
            }
            (FdKind::Listener(_), Some(_)) => {
                return Err(format!(
                    "setsockopt {name} on a listening socket: utcp's listeners take options at listen"
                ))
            }
            _ => {}
        }
        self.fds.insert(fd, nf);
        Ok(Ok(0))
    }

    fn getsockopt(&mut self, c: &CallSpec) -> Result<CallResult, String> {
        let name = sym_arg(c, 2)?;
        let (_, f) = match self.fd(c)? {
            Err(e) => return Ok(Err(e)),
            Ok(x) => x,
        };
        let want = c.args.get(3).cloned().unwrap_or(Expr::Ellipsis);
        let got: Expr = match (name.as_str(), &f.kind) {
            ("SO_ERROR", FdKind::Conn(h)) => {
                let h = *h;
                match self.stack().take_error(h).and_then(|r| r.errno()) {
                    None => Expr::Int(0),
                    Some(e) => Expr::Symbol(e.name().into()),
                }
            }
            ("SO_ERROR", _) => Expr::Int(0),
            ("TCP_MAXSEG", FdKind::Conn(h)) => {
                let h = *h;
                match self.stack().info(h) {
                    Some(i) => Expr::Int(i64::from(i.mss)),
                    None => return Ok(Err(Errno::ENOTCONN)),
                }
            }
            ("TCP_MAXSEG", _) => Expr::Int(i64::from(f.options.max_segment.unwrap_or(536))),
            (other, _) => return Err(format!("getsockopt: unsupported option {other}")),
        };
        let want_inner = match &want {
            Expr::Array(items) if items.len() == 1 => items[0].clone(),
            e => e.clone(),
        };
        if want_inner != Expr::Ellipsis && want_inner != got {
            return Err(format!("getsockopt {name} gave [{got}], expected [{want_inner}]"));
        }
        Ok(Ok(0))
    }
}

fn call_text(c: &CallSpec) -> String {
    let args: Vec<String> = c.args.iter().map(|a| a.to_string()).collect();
    format!("{}({})", c.name, args.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;

    fn run_text(text: &str) -> Outcome {
        run(&parse_script("t.pkt", text).expect("parses"))
    }

    #[test]
    fn calls_without_the_stack_pass_when_results_match() {
        let o = run_text(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
             +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4\n\
             +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n\
             +0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n\
             +0 setsockopt(3, SOL_TCP, TCP_NODELAY, [1], 4) = 0\n\
             +0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)\n\
             +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
             +0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)\n\
             +0 close(3) = 0\n\
             +0 close(3) = -1 EBADF (Bad file descriptor)\n\
             +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        );
        assert_eq!(o.failure, None, "{:?}", o.transcript);
        assert_eq!(o.transcript.len(), 11);
    }

    #[test]
    fn wrong_result_fails_at_its_line_with_what_came_instead() {
        let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(4) = 0\n");
        let f = o.failure.expect("fails");
        assert_eq!(f.line, 2);
        assert_eq!(f.expected, "+0 close(4) = 0");
        assert_eq!(f.got, "close(4) = -1 EBADF");
    }

    #[test]
    fn unsupported_requests_are_failures_with_line_numbers() {
        let o = run_text("0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3\n");
        assert_eq!(o.failure.as_ref().map(|f| f.line), Some(1));
        let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 fcntl(3, F_SETFL, O_APPEND) = 0\n");
        let f = o.failure.expect("fails");
        assert_eq!(f.line, 2);
        assert!(f.got.contains("O_APPEND"), "{f}");
        let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_SOCKET, SO_LINGER, [1], 4) = 0\n");
        assert_eq!(o.failure.map(|f| f.line), Some(2));
        let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 write(3, ..., 10) = 10\n");
        assert_eq!(o.failure.map(|f| f.got), Some("write(3, ..., 10) = -1 EPIPE".to_string()));
    }

    #[test]
    fn getsockopt_so_error_on_fresh_socket_is_zero() {
        let o = run_text(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
             +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n\
             +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0\n",
        );
        let f = o.failure.expect("second getsockopt fails");
        assert_eq!(f.line, 3);
    }

    #[test]
    fn script_times_map_to_exact_microseconds() {
        let o = run_text("0.000001 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+1.5 close(3) = 0\n");
        assert_eq!(o.failure, None);
        assert!(o.transcript[1].starts_with("1.500001 close(3)"), "{:?}", o.transcript);
    }

    // The stack answers a SYN to a closed port with RST|ACK at once (RFC 9293 §3.10.7.1): a
    // stable behaviour to test the matching rules against.

    #[test]
    fn matching_outbound_packet_passes() {
        let o = run_text("0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1 win 0\n");
        assert_eq!(o.failure, None, "{:?}", o.transcript);
        assert_eq!(o.transcript[1], "0.000000 > R. 0:0(0) ack 1 win 0");
    }

    #[test]
    fn wrong_ack_is_reported_in_packetdrill_notation() {
        let f = run_text("0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 2\n").failure.expect("fails");
        assert_eq!(f.line, 2);
        assert!(f.got.starts_with("> R. 0:0(0) ack 1 win 0 at 0.000000"), "{f}");
        assert!(f.got.contains("ack 1 instead of 2"), "{f}");
    }

    #[test]
    fn wrong_flags_and_options_are_reported() {
        let f = run_text("0 < S 0:0(0) win 65535\n+0 > R 0:0(0)\n").failure.expect("fails");
        assert!(f.got.contains("flags R. instead of R"), "{f}");
        let f = run_text("0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1 <nop>\n").failure.expect("fails");
        assert!(f.got.contains("options <> instead of <nop>"), "{f}");
    }

    #[test]
    fn packet_outside_tolerance_fails_and_inside_passes() {
        let f = run_text("0 < S 0:0(0) win 65535\n+.1 > R. 0:0(0) ack 1\n").failure.expect("fails");
        assert!(f.got.contains("expected between 0.096000 and 0.104000"), "{f}");
        let o = run_text("--tolerance_usecs=100000\n0 < S 0:0(0) win 65535\n+.1 > R. 0:0(0) ack 1\n");
        assert_eq!(o.failure, None);
        let o = run_text("0 < S 0:0(0) win 65535\n* > R. 0:0(0) ack 1\n");
        assert_eq!(o.failure, None);
    }

    #[test]
    fn unexpected_packet_before_an_event_fails() {
        let f = run_text("0 < S 0:0(0) win 65535\n+.1 < S 0:0(0) win 65535\n").failure.expect("fails");
        assert_eq!(f.line, 2);
        assert!(f.got.contains("the stack sent `> R. 0:0(0) ack 1 win 0` at 0.000000 first"), "{f}");
    }

    #[test]
    fn missing_packet_fails() {
        let f = run_text("0 < R 0:0(0) win 0\n+0 > R. 0:0(0) ack 1\n").failure.expect("fails");
        assert_eq!(f.got, "no packet by 0.004000");
    }

    #[test]
    fn rst_to_ack_uses_absolute_numbers_before_an_isn_is_known() {
        let o = run_text("0 < . 1:1(0) ack 4242 win 1000\n+0 > R 4242:4242(0)\n");
        assert_eq!(o.failure, None, "{:?}", o.transcript);
    }

    #[test]
    fn poll_reports_an_idle_listener_as_not_ready() {
        let o = run_text(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
             +0 poll([{fd=3, events=POLLIN, revents=0}], 1, 0) = 0\n",
        );
        assert_eq!(o.failure, None, "{:?}", o.transcript);
        let o = run_text(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
             +0 poll([{fd=3, events=POLLIN, revents=POLLIN}], 1, 0) = 1\n",
        );
        assert!(o.failure.is_some());
    }
}
