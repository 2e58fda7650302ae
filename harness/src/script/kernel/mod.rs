//! Runs a parsed [`Script`] against the Linux kernel's TCP in real time (`utcp script --stack
//! linux`), with the same numbering, the same packet-line checks and the same failure text as the
//! utcp executor (`script::exec::wire`).
//!
//! Each script gets a namespace of its own ([`KernelNet`]): the script's local address on the
//! kernel's side of a TUN device, its remote address routed into it, the script's sysctls set in
//! there only. `<` lines are written into the device at their times; `>` lines take what the
//! kernel sent, each datagram stamped when it was read, within packetdrill's tolerance of the
//! line's time. Calls are real system calls on sockets opened inside the namespace; a call that
//! blocks (its thread sleeps in the kernel) stays pending on a thread of its own while later
//! lines run, as in packetdrill, and its return time is checked against `...` when it returns.
//!
//! Script time 0 is when the namespace is ready. Every wait is bounded by the script's own
//! times; a call still blocked at the end fails the script and its thread is released by
//! deleting the namespace (which resets the connections).
//!
//! Must not depend on: the utcp stack.

mod calls;
mod info;

use super::ast::*;
use super::env::{ShellCommand, DEFAULTS_SH};
use super::exec::wire::{Numbering, Sent};
use super::exec::{fail, refuse, secs, Failure, Outcome, CLIENT_PORT, SERVER_PORT};
use crate::kernel::KernelNet;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use utcp::Instant;

/// The longest one line waits for a call to show whether it blocks.
const CALL_START_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often the executor looks at pending calls while it waits for a time or a datagram.
const TICK: std::time::Duration = std::time::Duration::from_millis(1);

/// A distinct namespace tag per script run in this process.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs a script against the kernel. Needs root (a namespace and a TUN device); a script whose
/// namespace cannot be made fails at line 0 with the reason.
pub fn run_linux(script: &Script) -> Outcome {
    let o = &script.options;
    let tag = format!("s{}", RUNS.fetch_add(1, Ordering::Relaxed));
    let net = match KernelNet::create(&tag, o.local_ip, o.remote_ip, o.mtu.unwrap_or(1500)) {
        Ok(n) => n,
        Err(e) => {
            return Outcome {
                failure: Some(Failure {
                    line: 0,
                    expected: String::new(),
                    got: format!("cannot set up the kernel's namespace: {e}"),
                    refused: None,
                }),
                transcript: Vec::new(),
            }
        }
    };
    let mut exec = KExec::new(script, net);
    let result = exec.run_all();
    let transcript = std::mem::take(&mut exec.transcript);
    // The namespace goes first: blocked calls return (their sockets are reset), then the
    // threads are joined.
    let KExec { net, calls, .. } = exec;
    drop(net);
    calls.shutdown();
    Outcome { failure: result.err(), transcript }
}

/// A call that blocked and has not returned.
struct Pending {
    id: u64,
    line: usize,
    text: String,
    call: CallSpec,
    /// When the call is expected back (`t1...t2`), absolute microseconds.
    end_time: Option<u64>,
}

struct KExec<'s> {
    script: &'s Script,
    net: KernelNet,
    start: std::time::Instant,
    /// The script time of the previous event (microseconds): what the kernel sent before it
    /// and no line took fails the script at its end.
    last: u64,
    wire: Numbering,
    /// What the kernel sent and no `>` line took yet, with the script time it was read.
    sent: VecDeque<(Instant, Vec<u8>)>,
    calls: calls::Calls,
    pending: Vec<Pending>,
    transcript: Vec<String>,
    /// The connection's descriptor (script numbering) a Python block's `tcpi_*` describe.
    last_conn: Option<i64>,
}

impl Sent for KExec<'_> {
    fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    fn next_sent(&mut self, late: Instant) -> Result<Option<(Instant, Vec<u8>)>, Failure> {
        loop {
            if let Some(d) = self.sent.pop_front() {
                return Ok(Some(d));
            }
            if self.now() > late {
                return Ok(None);
            }
            self.read_until(late)?;
        }
    }

    fn put_back(&mut self, time: Instant, datagram: Vec<u8>) {
        self.sent.push_front((time, datagram));
    }

    fn record(&mut self, line: String) {
        self.transcript.push(line);
    }
}

impl<'s> KExec<'s> {
    fn new(script: &'s Script, net: KernelNet) -> Self {
        let o = &script.options;
        // One worker is started before the clock, so that the first call does not pay for it.
        let calls = calls::Calls::new(net.netns());
        KExec {
            script,
            start: std::time::Instant::now(),
            net,
            last: 0,
            wire: Numbering::new(
                SocketAddr::new(o.local_ip, SERVER_PORT),
                SocketAddr::new(o.remote_ip, CLIENT_PORT),
            ),
            sent: VecDeque::new(),
            calls,
            pending: Vec::new(),
            transcript: Vec::new(),
            last_conn: None,
        }
    }

    fn now_us(&self) -> u64 {
        self.now().total_micros()
    }

    fn wall(&self, us: u64) -> std::time::Instant {
        self.start + std::time::Duration::from_micros(us)
    }

    /// Reads what the kernel sends until `until` (script time) or until one datagram came,
    /// whichever is first, looking at pending calls at least every [`TICK`].
    fn read_until(&mut self, until: Instant) -> Result<(), Failure> {
        if crate::netns::interrupted() {
            return fail(0, "", "interrupted");
        }
        let deadline = self.wall(until.total_micros()).min(std::time::Instant::now() + TICK);
        match self.net.recv(deadline) {
            Ok(Some(d)) => {
                let t = self.now();
                if super::packet::Segment::parse(&d).is_ok() {
                    self.sent.push_back((t, d));
                } else {
                    tracing::debug!(len = d.len(), "kernel sent a datagram that is not IPv4/TCP; ignored");
                }
            }
            Ok(None) => {}
            Err(e) => return fail(0, "", format!("the TUN device failed: {e}")),
        }
        self.reap()
    }

    /// Waits until script time `t`, reading what the kernel sends meanwhile.
    fn wait_until(&mut self, t: u64) -> Result<(), Failure> {
        while self.now_us() < t {
            self.read_until(Instant::from_micros(t))?;
        }
        self.reap()
    }

    fn run_all(&mut self) -> Result<(), Failure> {
        let script = self.script;
        // packetdrill (adjust_relative_event_times): a relative time counts from when the line
        // is reached, except that consecutive inbound packets count from the previous one's
        // script time, so that processing overheads do not add up along a train of them.
        let mut prev_inbound: Option<u64> = None;
        for event in &script.events {
            let inbound = matches!(&event.kind, EventKind::Packet(p) if p.direction == Direction::Inbound);
            let base = match (prev_inbound, inbound) {
                (Some(t), true) => t,
                _ => self.now_us(),
            };
            prev_inbound = None;
            match &event.kind {
                EventKind::Packet(p) if p.direction == Direction::Outbound => {
                    let mut wire = std::mem::take(&mut self.wire);
                    let options = ScriptOptions { timer_wheel_slack: true, ..script.options.clone() };
                    let r = wire.outbound(event, p, &options, base, self);
                    self.wire = wire;
                    r?;
                    self.last = self.now_us();
                }
                kind => {
                    let t = match event.time {
                        TimeSpec::Absolute(t) => t,
                        TimeSpec::Relative(d) => base + d,
                        TimeSpec::Any => self.now_us(),
                        TimeSpec::Range { lo, relative, .. } => lo + if relative { base } else { 0 },
                    };
                    self.wait_until(t)?;
                    self.last = t;
                    if inbound {
                        prev_inbound = Some(t);
                    }
                    match kind {
                        EventKind::Packet(p) => {
                            self.wire.note_inbound(p);
                            for d in self.wire.inbound(event, p, &script.options)? {
                                self.transcript.push(format!(
                                    "{} < {}",
                                    secs(self.now()),
                                    self.wire.show_inbound(&d)
                                ));
                                if let Err(e) = self.net.send(&d) {
                                    return fail(event.line, &event.text, e);
                                }
                            }
                        }
                        EventKind::Icmp(i) => {
                            let d = self.wire.inbound_icmp(event, i)?;
                            self.transcript.push(format!(
                                "{} < {}",
                                secs(self.now()),
                                event.text.trim_start_matches(|c: char| c != '<')
                            ));
                            if let Err(e) = self.net.send(&d) {
                                return fail(event.line, &event.text, e);
                            }
                        }
                        EventKind::Call(c) => self.call(event, c, base)?,
                        EventKind::Shell(cmds) => self.shell(event, cmds)?,
                        EventKind::Python(asserts) => self.python(event, asserts)?,
                    }
                }
            }
        }
        // Whatever the kernel already sent: one look without waiting. A call still blocked gets
        // until its `...` end (or the tolerance) to return: the kernel wakes it just after the
        // last line's packet.
        let now = self.now();
        self.read_until(now)?;
        let tol = script.options.tolerance_usecs;
        let grace = self.pending.iter().map(|p| p.end_time.unwrap_or(0).max(self.last) + tol).max();
        if let Some(until) = grace {
            while !self.pending.is_empty() && self.now_us() < until {
                self.read_until(Instant::from_micros(until))?;
            }
        }
        if let Some(p) = self.pending.first() {
            return fail(p.line, &p.text, "the call was still blocked at the end of the script");
        }
        self.wire.nothing_left_unmatched(self.sent.iter(), self.last, script, &mut self.transcript)
    }

    /// A shell line: each sysctl written in the namespace; defaults.sh's settings, where this
    /// kernel has them.
    fn shell(&mut self, event: &Event, cmds: &[ShellCommand]) -> Result<(), Failure> {
        for c in cmds {
            match c {
                ShellCommand::Defaults => {
                    for (k, v) in DEFAULTS_SH {
                        if let Err(e) = self.net.set_sysctl(k, v) {
                            tracing::info!(line = event.line, "defaults.sh: {e}");
                        }
                    }
                }
                ShellCommand::Sysctl(name, value) => {
                    if let Err(e) = self.net.set_sysctl(name, value) {
                        return fail(event.line, &event.text, e);
                    }
                }
                ShellCommand::Restore | ShellCommand::NoOp(_) => {}
            }
        }
        self.transcript.push(format!("{} {}", secs(self.now()), event.text));
        Ok(())
    }

    /// A Python block: each assert evaluated against the kernel's TCP_INFO of the connection
    /// last accepted or connected.
    fn python(&mut self, event: &Event, asserts: &[super::python::Assert]) -> Result<(), Failure> {
        let Some(fd) = self.last_conn else {
            return fail(event.line, &event.text, "no connection for TCP_INFO");
        };
        let info = match self.calls.tcp_info(fd) {
            Ok(i) => i,
            Err(e) => return fail(event.line, &event.text, format!("getsockopt(TCP_INFO): {e}")),
        };
        super::exec::check_asserts(event, asserts, &|n| info::field(&info, n), false)?;
        self.transcript.push(format!("{} {}", secs(self.now()), event.text));
        Ok(())
    }

    fn call(&mut self, event: &Event, c: &CallSpec, base: u64) -> Result<(), Failure> {
        // packetdrill (adjust_relative_event_times): the end of `+a...b` counts from the same base
        // as its start; the end of `a...b` is absolute.
        let end_time = event.end_time.map(|(t, _)| match event.time {
            TimeSpec::Relative(_) | TimeSpec::Range { relative: true, .. } => base + t,
            _ => t,
        });
        if c.name == "listen" {
            self.wire.fresh_port_due = true;
        }
        let started = match self.calls.start(c, &self.script.options) {
            Err(super::exec::CallErr::Fail(msg)) => return fail(event.line, &event.text, msg),
            Err(super::exec::CallErr::Refused(feature)) => return refuse(event.line, &event.text, feature),
            Ok(id) => id,
        };
        let p =
            Pending { id: started, line: event.line, text: event.text.clone(), call: c.clone(), end_time };
        // Wait until the call returns or its thread sleeps in the kernel (it blocks).
        let limit = std::time::Instant::now() + CALL_START_LIMIT;
        loop {
            if let Some(done) = self.calls.take_done(p.id) {
                return self.finish(&p, done);
            }
            if self.calls.is_blocked(p.id) || std::time::Instant::now() > limit {
                self.pending.push(p);
                return Ok(());
            }
            let until = Instant::from_micros(self.now_us() + 100);
            self.read_until(until)?;
        }
    }

    /// Checks the pending calls that returned.
    fn reap(&mut self) -> Result<(), Failure> {
        let mut i = 0;
        while i < self.pending.len() {
            if let Some(done) = self.calls.take_done(self.pending[i].id) {
                let p = self.pending.remove(i);
                self.finish(&p, done)?;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// A call's result: recorded, the descriptors it made mapped, checked against the line.
    fn finish(&mut self, p: &Pending, done: calls::Done) -> Result<(), Failure> {
        let t = Instant::from_micros(done.at.saturating_duration_since(self.start).as_micros() as u64);
        let got = self.calls.complete(p.id, done);
        if let Some(fd) = got.conn {
            self.last_conn = Some(fd);
        }
        let shown = match &got.result {
            Ok(v) => format!("= {v}"),
            Err(e) => format!("= -1 {e}"),
        };
        self.transcript.push(format!("{} {} {shown}", secs(t), super::exec::call_text(&p.call)));
        let c = &p.call;
        let ok = match (&c.result, &c.errno, &got.result) {
            (Expr::Ellipsis, None, _) => true,
            (Expr::Int(-1), Some(e), Err(g)) => e == g,
            (Expr::Int(v), None, Ok(g)) => v == g,
            _ => false,
        };
        if !ok {
            return fail(p.line, &p.text, format!("{} {shown}", super::exec::call_text(c)));
        }
        if let Some(msg) = got.mismatch {
            return fail(p.line, &p.text, msg);
        }
        if let Some(end) = p.end_time {
            let tol = self.script.options.tolerance_usecs;
            let tu = t.total_micros();
            if tu + tol < end || tu > end + tol {
                return fail(p.line, &p.text, format!("the call returned at {}", secs(t)));
            }
        }
        Ok(())
    }
}

/// The kernel's descriptors, by the numbers a script calls them, for [`calls::Calls`].
type FdMap = BTreeMap<i64, i32>;
