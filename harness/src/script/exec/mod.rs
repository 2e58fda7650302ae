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
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use utcp::host::{Bounds, Host, Observer, Outbox, Runaway, RunawayKind};
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
    /// When the line asks for a feature utcp does not have: its name. The script is refused
    /// there rather than failed.
    pub refused: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.refused {
            Some(feature) => write!(f, "line {}: refused: {feature}", self.line),
            None => write!(f, "line {}: expected: {}\n  instead: {}", self.line, self.expected, self.got),
        }
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

    /// The feature the script was refused for, if it was.
    pub fn refused(&self) -> Option<&str> {
        self.failure.as_ref().and_then(|f| f.refused.as_deref())
    }
}

/// The configuration a script runs against.
pub fn config_for(options: &ScriptOptions) -> Config {
    let mut config = match options.profile {
        Profile::Linux => Config::linux_like(),
        Profile::Default => Config::default(),
    };
    config = config.with_address(options.local_ip);
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
    if let Some(refusal) = calls::prescan(script) {
        return Outcome { failure: Some(refusal), transcript: Vec::new() };
    }
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
                refused: None,
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
    /// An epoll instance (its interest list is in `Exec::epolls`).
    Epoll,
}

#[derive(Debug, Clone)]
struct Fd {
    kind: FdKind,
    nonblocking: bool,
    linger0: bool,
    options: SocketOptions,
    keepalive_on: bool,
    keepidle: Option<Duration>,
    /// `shutdown(SHUT_RD)` was called: a read that would block returns 0 (end of file), as on
    /// Linux; data that still arrives is acknowledged and can be read.
    shut_rd: bool,
    /// SO_SNDBUF / SO_RCVBUF were set (getsockopt then reports Linux's doubled value).
    sndbuf_set: bool,
    rcvbuf_set: bool,
    /// A `TCP_FASTOPEN_CONNECT` connect returned at once with a cookie cached: the first write
    /// opens the connection (calls.rs).
    deferred: bool,
    /// `TCP_INQ` (Linux): `recvmsg` carries a `TCP_CM_INQ` control message with the bytes left
    /// to read (an accepted socket inherits it from its listener, as Linux copies it).
    inq: bool,
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
    /// The ISNs, the timestamp offset and the two addresses.
    wire: wire::Numbering,
    closed: HashMap<SocketHandle, CloseReason>,
    pending: Option<Pending>,
    transcript: Vec<String>,
    current_line: usize,
    current_text: String,
    /// The connection last accepted or connected: what a Python block's `tcpi_*` fields describe
    /// (packetdrill's "socket under test", the socket made last).
    last_conn: Option<SocketHandle>,
    /// The epoll instances, by descriptor.
    epolls: BTreeMap<i64, epoll::Epoll>,
}

/// The executor's host, made with `config` if there is none yet, at the script's time `now`.
fn host_of<'h>(host: &'h mut Option<Host>, config: &Config, now: Instant) -> &'h mut Host {
    let host = host.get_or_insert_with(|| Host::new(Stack::new(config.clone()), now, BOUNDS));
    host.set_now(now);
    host
}

pub(crate) fn fail<T>(line: usize, expected: &str, got: impl Into<String>) -> Result<T, Failure> {
    Err(Failure { line, expected: expected.to_string(), got: got.into(), refused: None })
}

/// The script is refused at `line`: it asks for `feature`, which utcp does not have.
pub(crate) fn refuse<T>(line: usize, expected: &str, feature: impl Into<String>) -> Result<T, Failure> {
    let feature = feature.into();
    Err(Failure {
        line,
        expected: expected.to_string(),
        got: format!("refused: {feature}"),
        refused: Some(feature),
    })
}

pub(crate) fn secs(t: Instant) -> String {
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

pub(crate) fn int_arg(call: &CallSpec, i: usize) -> Result<i64, String> {
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

pub(crate) fn symbols(e: &Expr) -> Vec<String> {
    match e {
        Expr::Symbol(s) => vec![s.clone()],
        Expr::BitOr(parts) => parts.iter().flat_map(symbols).collect(),
        Expr::Array(items) => items.iter().flat_map(symbols).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn sym_arg(call: &CallSpec, i: usize) -> Result<String, String> {
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
            wire: wire::Numbering::new(
                SocketAddr::new(o.local_ip, SERVER_PORT),
                SocketAddr::new(o.remote_ip, CLIENT_PORT),
            ),
            closed: HashMap::new(),
            pending: None,
            transcript: Vec::new(),
            current_line: 0,
            current_text: String::new(),
            last_conn: None,
            epolls: BTreeMap::new(),
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
                    // packetdrill: relative times count from when the line is reached.
                    let t = match event.time {
                        TimeSpec::Absolute(t) => t,
                        TimeSpec::Relative(d) => self.last + d,
                        TimeSpec::Any => self.now.total_micros(),
                        TimeSpec::Range { lo, relative, .. } => lo + if relative { self.last } else { 0 },
                    };
                    let base = self.last;
                    self.advance(Instant::from_micros(t), false)?;
                    self.last = t;
                    match kind {
                        EventKind::Packet(p) => self.inbound(event, p)?,
                        EventKind::Icmp(i) => self.inbound_icmp(event, i)?,
                        EventKind::Call(c) => self.call(event, c, base)?,
                        EventKind::Shell(cmds) => self.shell(event, cmds)?,
                        EventKind::Python(asserts) => self.python(event, asserts)?,
                    }
                    self.after_input()?;
                }
            }
        }
        if let Some(p) = &self.pending {
            return fail(p.line, &p.text, "the call was still blocked at the end of the script");
        }
        self.wire.nothing_left_unmatched(self.out.sent.iter(), self.last, script, &mut self.transcript)
    }

    /// A shell line: each sysctl applied to the configuration, before the stack is made.
    fn shell(&mut self, event: &Event, cmds: &[super::env::ShellCommand]) -> Result<(), Failure> {
        use super::env::{apply_defaults, apply_sysctl, ShellCommand};
        let before = self.config.clone();
        for c in cmds {
            match c {
                ShellCommand::Defaults => apply_defaults(&mut self.config),
                ShellCommand::Sysctl(name, value) => {
                    if let Err(feature) = apply_sysctl(&mut self.config, name, value, false) {
                        return refuse(event.line, &event.text, feature);
                    }
                }
                // The cached Fast Open cookies are route metrics in Linux.
                ShellCommand::NoOp(cmd) if cmd == "ip tcp_metrics flush all" => {
                    if let Some(h) = self.host.as_mut() {
                        h.stack_mut().flush_fast_open_cache();
                    }
                }
                ShellCommand::Restore | ShellCommand::NoOp(_) => {}
            }
        }
        if self.host.is_some() && self.config != before {
            // The TCP knobs and the Fast Open key apply from now on, as Linux's sysctls do.
            let same_rest = Config {
                tcp: before.tcp.clone(),
                fast_open_key: before.fast_open_key,
                ..self.config.clone()
            };
            if same_rest != before {
                return refuse(
                    event.line,
                    &event.text,
                    "sysctls changed after the stack started (utcp reads its configuration once)",
                );
            }
            let (tcp, key) = (self.config.tcp.clone(), self.config.fast_open_key);
            self.stack().set_tcp_config(tcp, key);
        }
        self.transcript.push(format!("{} {}", secs(self.now), event.text));
        Ok(())
    }

    /// A Python block: each assert evaluated against the connection last accepted or connected.
    fn python(&mut self, event: &Event, asserts: &[super::python::Assert]) -> Result<(), Failure> {
        let Some(h) = self.last_conn.or_else(|| {
            self.fds.values().rev().find_map(|f| match f.kind {
                FdKind::Conn(h) => Some(h),
                _ => None,
            })
        }) else {
            return fail(event.line, &event.text, "no connection for TCP_INFO");
        };
        let Some(info) = self.stack().info(h) else {
            return fail(event.line, &event.text, "the connection is gone (no TCP_INFO)");
        };
        // A name utcp does not keep refuses the script.
        check_asserts(event, asserts, &|n| tcpi_field(&info, n), true)?;
        self.transcript.push(format!("{} {}", secs(self.now), event.text));
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
}

/// A Python block's asserts against `field` (a connection's `tcpi_*` values): the first that
/// does not hold fails at its line with the values it read. A name `field` lacks refuses the
/// script when `unknown_refuses` (utcp lacks the feature), else fails it.
pub(crate) fn check_asserts(
    event: &Event,
    asserts: &[super::python::Assert],
    field: &dyn Fn(&str) -> Option<i64>,
    unknown_refuses: bool,
) -> Result<(), Failure> {
    for a in asserts {
        match super::python::eval(&a.cond, field) {
            Err(feature) if unknown_refuses => return refuse(event.line, &event.text, feature),
            Err(feature) => return fail(event.line, &event.text, format!("cannot evaluate: {feature}")),
            Ok(0) => {
                let values: Vec<String> = tcpi_names(&a.cond)
                    .iter()
                    .map(|n| format!("{n}={}", field(n).unwrap_or_default()))
                    .collect();
                return fail(event.line, &a.text, format!("the assert does not hold: {}", values.join(", ")));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The `tcpi_*` names an expression reads, for a failing assert's message.
pub(crate) fn tcpi_names(e: &super::python::PyExpr) -> Vec<String> {
    use super::python::PyExpr as E;
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            E::Name(n) if n.starts_with("tcpi_") && !out.contains(n) => out.push(n.clone()),
            E::Not(x) | E::Neg(x) => stack.push(x),
            E::Bin(a, _, b) | E::And(a, b) | E::Or(a, b) => {
                stack.push(b);
                stack.push(a);
            }
            E::Compare(a, rest) => {
                stack.extend(rest.iter().rev().map(|(_, x)| x));
                stack.push(a);
            }
            _ => {}
        }
    }
    out
}

/// Linux's `TCP_INFO` field `name` from the connection's variables, where utcp has it.
fn tcpi_field(info: &utcp::ConnectionInfo, name: &str) -> Option<i64> {
    let mss = i64::from(info.mss.max(1));
    Some(match name {
        // Linux counts the window and the threshold in segments.
        "tcpi_snd_cwnd" => i64::from(info.cwnd) / mss,
        "tcpi_snd_ssthresh" => {
            if info.ssthresh >= i32::MAX as u32 {
                i64::from(i32::MAX)
            } else {
                i64::from(info.ssthresh) / mss
            }
        }
        "tcpi_snd_mss" => mss,
        "tcpi_advmss" => i64::from(info.adv_mss),
        // linux/tcp.h: TCPI_OPT_TIMESTAMPS 1, TCPI_OPT_SACK 2, TCPI_OPT_WSCALE 4, TCPI_OPT_SYN_DATA 32.
        "tcpi_options" => {
            i64::from(info.timestamps)
                | i64::from(info.sack) << 1
                | i64::from(info.window_scale.is_some()) << 2
                | i64::from(info.syn_data_acked) << 5
        }
        "tcpi_snd_wscale" => i64::from(info.window_scale.map_or(0, |w| w.0)),
        "tcpi_rcv_wscale" => i64::from(info.window_scale.map_or(0, |w| w.1)),
        "tcpi_rtt" => info.srtt.map_or(0, |d| d.total_micros() as i64),
        "tcpi_delivered" => i64::from(info.delivered),
        "tcpi_rto" => info.rto.total_micros() as i64,
        "tcpi_ca_state" => i64::from(info.ca_state.linux_value()),
        "tcpi_sacked" => (i64::from(info.sacked_bytes) + mss - 1) / mss,
        "tcpi_lost" => (i64::from(info.lost_bytes) + mss - 1) / mss,
        "tcpi_retrans" => (i64::from(info.retrans_bytes) + mss - 1) / mss,
        "tcpi_reordering" => i64::from(info.reordering),
        "tcpi_rcv_mss" => i64::from(info.rcv_mss),
        "tcpi_unacked" => {
            let out = i64::from(info.snd_nxt.wrapping_sub(info.snd_una));
            (out + mss - 1) / mss
        }
        // linux/tcp_states.h
        "tcpi_state" => match info.state {
            State::Established => 1,
            State::SynSent => 2,
            State::SynReceived => 3,
            State::FinWait1 => 4,
            State::FinWait2 => 5,
            State::TimeWait => 6,
            State::Closed => 7,
            State::CloseWait => 8,
            State::LastAck => 9,
            State::Listen => 10,
            State::Closing => 11,
        },
        _ => return None,
    })
}

pub(crate) fn call_text(c: &CallSpec) -> String {
    let args: Vec<String> = c.args.iter().map(|a| a.to_string()).collect();
    format!("{}({})", c.name, args.join(", "))
}

mod calls;
pub(crate) use calls::{expected_inq, normalize, poll_bit, shadow_fd, tcp_state_number, CallErr};
pub(crate) use epoll::epoll_bit;
mod epoll;
mod packets;
pub(crate) mod wire;

#[cfg(test)]
mod tests;
