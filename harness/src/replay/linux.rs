//! The Linux backend of replay (DESIGN.md "Linux beside utcp"): one connection of a capture
//! played against the kernel's TCP in real time. The kernel takes the recorded endpoint's address
//! and port in a namespace of its own ([`KernelNet`]); the recorded peer's packets are translated
//! as for utcp (the same [`Translator`], learning from what the kernel sends) and written into
//! the TUN device at their capture-relative times; an application on real sockets writes what the
//! recorded endpoint wrote when it first sent it, shuts down at its FIN, aborts (SO_LINGER 0 and
//! close) at its RST and reads everything, as utcp's scripted application does. What the kernel
//! sends is read from the device and becomes the same [`Replay`], compared by the same code
//! (`engine::conclude`).
//!
//! Time: the capture's gaps are kept, except that a gap longer than `max_gap` is shortened to it
//! (with a note); a flow whose timeline is still longer than `max_duration` is not played (its
//! reason says so). After the last recorded packet the kernel's answers are read for `tail` at
//! most, less once it has nothing in flight and has been quiet for [`QUIET`]. Steps carry capture
//! times: the real offsets mapped back through the shortened gaps ([`Timeline`]).
//!
//! Network safety: everything happens in the namespace [`KernelNet`] creates and deletes on drop;
//! every wait is bounded by the flow's timeline plus the tail; SIGINT and SIGTERM (once
//! [`crate::netns::catch_signals`] ran) end the replay with an error that unwinds through the
//! guard.
//!
//! Must not depend on: utcp's `Stack` (only its wire parser and time types), files, terminals.

use super::engine::{
    conclude, config_for, lost_after_capture, syn_tsval, unplayable, write_plan, Backend, Call, Played, Step,
};
use super::engine::{Options, Replay};
use super::translate::{Mode, Translator};
use crate::capture::flows::{Flow, Side};
use crate::kernel::KernelNet;
use crate::netns::interrupted;
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant as RealInstant;
use utcp::time::{Duration, Instant};
use utcp::wire::{parse_datagram, ChecksumMode, TcpFlags, Transport};

/// After the last recorded packet, the kernel is done once it has nothing in flight and sent
/// nothing for this long (longer than its delayed-ACK timer, 40 to 200 ms).
pub const QUIET: std::time::Duration = std::time::Duration::from_millis(500);
/// The longest single wait in `poll(2)`, so that a signal is noticed soon.
const POLL_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// How the kernel's side is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxOptions {
    /// Real time the kernel's answers are read after the last recorded packet, at most.
    pub tail: std::time::Duration,
    /// A gap between two recorded packets longer than this is shortened to it.
    pub max_gap: Duration,
    /// The longest timeline (after shortening) played in real time; a longer flow is not played.
    pub max_duration: Duration,
}

impl Default for LinuxOptions {
    fn default() -> Self {
        LinuxOptions {
            tail: std::time::Duration::from_secs(3),
            max_gap: Duration::from_secs(10),
            max_duration: Duration::from_secs(60),
        }
    }
}

/// Where each recorded packet falls in the real-time replay: the capture's offsets from the
/// first packet, each gap longer than `max_gap` shortened to it. Packets out of time order are
/// played at the time of the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// Per packet: its capture offset and its replay offset.
    points: Vec<(Duration, Duration)>,
    /// The gaps shortened: the record number after the gap and the gap's recorded length.
    pub shortened: Vec<(u64, Duration)>,
}

impl Timeline {
    /// The timeline of packets `(record number, capture time)`, in capture order.
    pub fn new(packets: impl IntoIterator<Item = (u64, Instant)>, max_gap: Duration) -> Timeline {
        let mut t = Timeline { points: Vec::new(), shortened: Vec::new() };
        let mut start = None;
        let mut prev = (Duration::ZERO, Duration::ZERO);
        for (number, time) in packets {
            let start = *start.get_or_insert(time);
            let capture = time.saturating_duration_since(start).max(prev.0);
            let gap = capture - prev.0;
            let replay = prev.1 + if gap > max_gap { max_gap } else { gap };
            if gap > max_gap {
                t.shortened.push((number, gap));
            }
            prev = (capture, replay);
            t.points.push(prev);
        }
        t
    }

    /// Packet `i`'s offset in the replay.
    pub fn offset(&self, i: usize) -> Duration {
        self.points.get(i).map_or(Duration::ZERO, |p| p.1)
    }

    /// The replay's length, first packet to last.
    pub fn duration(&self) -> Duration {
        self.points.last().map_or(Duration::ZERO, |p| p.1)
    }

    /// The capture offset of a replay offset: the last packet at or before it, plus the time
    /// since (a moment inside a shortened gap maps to its beginning part).
    pub fn capture_offset(&self, replay: Duration) -> Duration {
        let i = self.points.partition_point(|p| p.1 <= replay);
        match i.checked_sub(1).and_then(|i| self.points.get(i)) {
            Some(&(capture, at)) => capture + (replay - at),
            None => replay,
        }
    }
}

/// The namespace's sysctls that make the kernel offer and accept what the recorded endpoint
/// did: SACK, timestamps and window scaling as [`config_for`] finds them (for utcp), ECN as its
/// SYN (client) or SYN-ACK (server) shows (RFC 3168 §6.1.1: ECE and CWR on the SYN, ECE on the
/// SYN-ACK), and a server that kept a SYN's data (RFC 9293 §3.10.7.2) as Fast Open without a
/// cookie.
pub fn sysctls_for(flow: &Flow, role: Side) -> Vec<(&'static str, &'static str)> {
    let cfg = config_for(flow, role);
    let bit = |on: bool| if on { "1" } else { "0" };
    let mut out = vec![
        ("net.ipv4.tcp_sack", bit(cfg.tcp.sack)),
        ("net.ipv4.tcp_timestamps", bit(cfg.tcp.timestamps)),
        ("net.ipv4.tcp_window_scaling", bit(cfg.tcp.window_scale)),
    ];
    let ecn_syn = TcpFlags(TcpFlags::ECE.0 | TcpFlags::CWR.0);
    let syn = |side: Side, ack: bool| {
        flow.packets.iter().find(|p| p.from == side && p.tcp.flags.syn() && p.tcp.flags.ack() == ack)
    };
    let asked = syn(Side::Client, false).is_some_and(|p| p.tcp.flags.contains(ecn_syn));
    let accepted = syn(Side::Server, true).is_some_and(|p| p.tcp.flags.contains(TcpFlags::ECE));
    // Only where it differs from Linux's default, tcp_ecn 2: accept when asked, never ask.
    let ecn = match role {
        Side::Client => asked.then_some("1"),
        Side::Server => (asked && !accepted).then_some("0"),
    };
    out.extend(ecn.map(|v| ("net.ipv4.tcp_ecn", v)));
    if role == Side::Server && cfg.tcp.accept_syn_data {
        // The recorded server kept a SYN's data without a Fast Open cookie: TFO_SERVER_ENABLE
        // (0x2), TFO_SERVER_COOKIE_NOT_REQD (0x200) and TFO_SERVER_WO_SOCKOPT (0x400), and the
        // client bit (0x1) of the default.
        out.push(("net.ipv4.tcp_fastopen", "1539"));
    }
    out
}

/// Replays one connection against the kernel. `Err` when the namespace or a socket cannot be
/// set up, the device fails, or a signal interrupted the run; a flow that cannot be played (no
/// handshake, a timeline too long for real time) comes back not replayed, with the reason.
pub fn replay_flow_linux(flow: &Flow, opts: &Options, lopts: &LinuxOptions) -> Result<Replay, String> {
    let role = opts.role;
    let (local, remote) = match role {
        Side::Server => (flow.server, flow.client),
        Side::Client => (flow.client, flow.server),
    };
    let timeline = Timeline::new(flow.packets.iter().map(|p| (p.number, p.time)), lopts.max_gap);
    let blank = |steps: Vec<Step>| Played {
        backend: Backend::Linux,
        local,
        remote,
        steps,
        tr: Translator::default(),
        reset: false,
        stats: utcp::Stats::default(),
    };
    if let Some(why) = unplayable(flow, role) {
        return Ok(conclude(flow, opts, blank(Vec::new()), Some(why.to_string())));
    }
    if timeline.duration() > lopts.max_duration {
        let why = format!(
            "its timeline is {} (gaps over {} shortened), longer than the {} the Linux backend \
             plays in real time (--max-duration)",
            secs(timeline.duration()),
            secs(lopts.max_gap),
            secs(lopts.max_duration)
        );
        return Ok(conclude(flow, opts, blank(Vec::new()), Some(why)));
    }
    // Loopback or shared addresses cannot sit on the two sides of a TUN device: the kernel gets
    // stand-ins, and every datagram is readdressed on its way in and out.
    let remap = needs_stand_ins(local, remote).then(|| Remap::for_family(local, remote));
    let (dev_local, dev_remote) = match &remap {
        Some(m) => {
            (SocketAddr::new(m.stand_in.0, local.port()), SocketAddr::new(m.stand_in.1, remote.port()))
        }
        None => (local, remote),
    };
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let tag = format!("replay{}", RUNS.fetch_add(1, Ordering::Relaxed));
    let cfg = config_for(flow, role);
    // A TUN device's MTU is at most 65535 (a loopback capture's MSS can ask for one more).
    let net = KernelNet::create(&tag, dev_local.ip(), dev_remote.ip(), cfg.mtu.min(65_535))
        .map_err(|e| format!("flow {}: the kernel's namespace: {e}", flow.index))?;
    for (key, value) in sysctls_for(flow, role) {
        net.set_sysctl(key, value).map_err(|e| format!("flow {}: {e}", flow.index))?;
    }
    let start = flow.packets.first().map_or(Instant::ZERO, |p| p.time);
    let mut run = Live {
        net: &net,
        start,
        timeline: &timeline,
        // The first packet's time: the socket calls of the setup happen at it, as in utcp's engine.
        t0: RealInstant::now(),
        last_packet: RealInstant::now(),
        local,
        remote,
        dev_remote,
        remap,
        steps: Vec::new(),
        tr: Translator::default(),
        rec_isn: flow.isn(role),
        rec_ts: syn_tsval(flow, role),
        app: App::default(),
        strays: 0,
        rbuf: vec![0; 65_536],
    };
    if let Some(m) = &run.remap {
        let text = format!(
            "the kernel has {} for {} and {} for {} (a TUN device needs two addresses, neither loopback)",
            m.stand_in.0,
            local.ip(),
            m.stand_in.1,
            remote.ip()
        );
        run.steps.push(Step::Note { time: start, text });
    }
    for &(number, gap) in &timeline.shortened {
        let text = format!(
            "gap of {} before record {number} shortened to {} (--max-gap)",
            secs(gap),
            secs(lopts.max_gap)
        );
        run.steps.push(Step::Note { time: start, text });
    }
    let syn_ack_recorded = flow.packets.iter().any(|p| p.from == Side::Server && p.tcp.flags.syn());
    match role {
        Side::Server if syn_ack_recorded => {
            let l = net
                .netns()
                .within("replay-listen", move || {
                    let l = TcpListener::bind(dev_local)
                        .map_err(|e| format!("cannot listen on {dev_local}: {e}"))?;
                    l.set_nonblocking(true).map_err(|e| format!("{dev_local}: non-blocking: {e}"))?;
                    Ok(l)
                })
                .map_err(|e| format!("flow {}: {e}", flow.index))?;
            run.app.listener = Some(l);
            run.call(Call::Listen);
        }
        Side::Server => {
            let text = "the recorded server never sent a SYN-ACK: nothing listens (closed port)".to_string();
            run.steps.push(Step::Note { time: start, text });
        }
        Side::Client => {
            let s = net
                .netns()
                .within("replay-socket", move || bound_socket(dev_local))
                .map_err(|e| format!("flow {}: {e}", flow.index))?;
            run.app.unconnected = Some(s);
        }
    }
    let rec_start = flow.isn(role).map(|i| i + 1);
    let mut writes = write_plan(flow, role, rec_start, &mut run.steps, start);
    let (mut fin_seen, mut rst_seen) = (false, false);
    if role == Side::Client {
        // At the recorded SYN's time, before anything recorded earlier (a capture can hold the
        // SYN-ACK first), as utcp's engine connects.
        let syn = flow.packets.iter().position(|p| p.from == Side::Client && p.tcp.flags.syn());
        run.wait_until(run.t0 + real(timeline.offset(syn.unwrap_or(0))))?;
        run.connect();
    }
    let lost = if opts.mode == Mode::Adaptive { lost_after_capture(flow, role) } else { HashMap::new() };
    for (idx, p) in flow.packets.iter().enumerate() {
        run.wait_until(run.t0 + real(timeline.offset(idx)))?;
        if p.from != role {
            match lost.get(&idx) {
                Some(&again) => run.note(format!(
                    "record {} not injected: the recorded endpoint never received it (its ACKs show the hole until record {})",
                    p.number, flow.packets[again].number
                )),
                None => run.inject(flow, idx, opts)?,
            }
            continue;
        }
        if let Some(bytes) = writes.remove(&idx) {
            run.app.pending.extend(bytes);
        }
        if p.tcp.flags.fin() && !fin_seen {
            fin_seen = true;
            run.app.shutdown_wanted = true;
        }
        if p.tcp.flags.rst() && !rst_seen && syn_ack_recorded {
            rst_seen = true;
            run.abort();
        }
        run.service()?;
    }
    let end = RealInstant::now() + lopts.tail;
    loop {
        let now = RealInstant::now();
        if now >= end || (run.idle() && now.duration_since(run.last_packet) >= QUIET) {
            break;
        }
        run.wait_until(end.min(now + POLL_SLICE))?;
    }
    if run.strays > 0 {
        tracing::debug!(flow = flow.index, strays = run.strays, "datagrams of no interest from the kernel");
    }
    let stats = utcp::Stats {
        retransmissions: run.app.info.map_or(0, |i| u64::from(i.tcpi_total_retrans)),
        resets_in: u64::from(run.app.reset),
        segments_out: run.steps.iter().filter(|s| matches!(s, Step::Out { .. })).count() as u64,
        segments_in: run.steps.iter().filter(|s| matches!(s, Step::In { .. })).count() as u64,
        ..utcp::Stats::default()
    };
    let played = Played {
        backend: Backend::Linux,
        local,
        remote,
        steps: std::mem::take(&mut run.steps),
        tr: std::mem::take(&mut run.tr),
        reset: run.app.reset,
        stats,
    };
    // The sockets close before the namespace goes (`run` and `net` drop in this order).
    drop(run);
    Ok(conclude(flow, opts, played, None))
}

/// Whether the two endpoints cannot be put on the two sides of a TUN device as they are: one
/// address for both, or a loopback address (the namespace's `lo` owns those).
fn needs_stand_ins(local: SocketAddr, remote: SocketAddr) -> bool {
    local.ip() == remote.ip() || local.ip().is_loopback() || remote.ip().is_loopback()
}

/// Stand-in addresses for the kernel's side and the peer's, and the recorded ones they replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Remap {
    /// The recorded endpoint's and the peer's addresses.
    recorded: (IpAddr, IpAddr),
    /// What the namespace uses instead: the kernel's and the peer's.
    stand_in: (IpAddr, IpAddr),
}

impl Remap {
    /// Private stand-ins of the recording's family (RFC 1918, RFC 4193).
    fn for_family(local: SocketAddr, remote: SocketAddr) -> Remap {
        let stand_in: (IpAddr, IpAddr) = if local.is_ipv4() {
            (Ipv4Addr::new(10, 254, 0, 2).into(), Ipv4Addr::new(10, 254, 0, 1).into())
        } else {
            let v6 = |n| IpAddr::from(Ipv6Addr::new(0xfd00, 0x254, 0, 0, 0, 0, 0, n));
            (v6(2), v6(1))
        };
        Remap { recorded: (local.ip(), remote.ip()), stand_in }
    }
}

/// The datagram with `src` and `dst` for its addresses, checksums computed again.
fn readdress(datagram: &[u8], src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, String> {
    let d = parse_datagram(datagram, ChecksumMode::Ignore).map_err(|e| e.to_string())?;
    let ip = utcp::wire::IpRepr { src, dst, ..d.ip };
    let mut out = vec![0u8; utcp::wire::datagram_len(&ip, &d.transport)];
    let n = utcp::wire::emit_datagram(&ip, &d.transport, &mut out).map_err(|e| e.to_string())?;
    out.truncate(n);
    Ok(out)
}

/// A length for a person: `10 s`, `58.2 s`.
pub fn secs(d: Duration) -> String {
    format!("{} s", d.total_millis() as f64 / 1000.0)
}

/// A replay offset as real time.
fn real(d: Duration) -> std::time::Duration {
    std::time::Duration::from_micros(d.total_micros())
}

/// The application on the kernel's sockets.
#[derive(Debug, Default)]
struct App {
    listener: Option<TcpListener>,
    /// The client's socket, bound to the recorded port, before `connect`.
    unconnected: Option<OwnedFd>,
    stream: Option<TcpStream>,
    pending: VecDeque<u8>,
    shutdown_wanted: bool,
    shutdown_done: bool,
    /// Reading is over: end of stream or an error.
    read_done: bool,
    eof_seen: bool,
    /// Aborted: nothing more is accepted or written.
    gone: bool,
    /// The kernel reported the connection reset or refused.
    reset: bool,
    /// The latest `TCP_INFO` of the stream.
    info: Option<libc::tcp_info>,
}

/// One replay in progress.
struct Live<'a> {
    net: &'a KernelNet,
    start: Instant,
    timeline: &'a Timeline,
    /// The real time of the first packet.
    t0: RealInstant,
    /// When the last datagram went either way.
    last_packet: RealInstant,
    /// The recorded endpoints.
    local: SocketAddr,
    remote: SocketAddr,
    /// The peer's endpoint in the namespace (the recorded one unless stand-ins were needed).
    dev_remote: SocketAddr,
    remap: Option<Remap>,
    steps: Vec<Step>,
    tr: Translator,
    rec_isn: Option<utcp::tcp::seq::SeqNum>,
    rec_ts: Option<(u32, Instant)>,
    app: App,
    /// Datagrams from the kernel that are not this connection's.
    strays: usize,
    rbuf: Vec<u8>,
}

impl Live<'_> {
    /// Now, as a capture time.
    fn now(&self) -> Instant {
        let since = RealInstant::now().saturating_duration_since(self.t0);
        let replay = Duration::from_micros(since.as_micros().min(u128::from(u64::MAX)) as u64);
        self.start + self.timeline.capture_offset(replay)
    }

    fn call(&mut self, call: Call) {
        let time = self.now();
        self.steps.push(Step::Call { time, call });
    }

    fn note(&mut self, text: String) {
        let time = self.now();
        self.steps.push(Step::Note { time, text });
    }

    /// Everything the kernel has sent so far: this connection's segments become steps and teach
    /// the translator.
    fn drain(&mut self) -> Result<(), String> {
        while let Some(d) = self.net.recv(RealInstant::now())? {
            let d = match &self.remap {
                Some(m) => match readdress(&d, m.recorded.0, m.recorded.1) {
                    Ok(d) => d,
                    Err(_) => {
                        self.strays += 1;
                        continue;
                    }
                },
                None => d,
            };
            let ours = match parse_datagram(&d, ChecksumMode::Ignore) {
                Ok(p) => match p.transport {
                    Transport::Tcp(t)
                        if SocketAddr::new(p.ip.src, t.src_port) == self.local
                            && SocketAddr::new(p.ip.dst, t.dst_port) == self.remote =>
                    {
                        self.tr.observe_sent(self.now(), &t, self.rec_isn, self.rec_ts);
                        true
                    }
                    _ => false,
                },
                Err(_) => false,
            };
            if ours {
                self.last_packet = RealInstant::now();
                let time = self.now();
                self.steps.push(Step::Out { time, datagram: d });
            } else {
                self.strays += 1;
            }
        }
        Ok(())
    }

    /// What the application does now: accept, write what is pending, shut down, read; with the
    /// kernel's datagrams taken before and after.
    fn service(&mut self) -> Result<(), String> {
        self.drain()?;
        if self.app.stream.is_none() && !self.app.gone {
            if let Some(l) = &self.app.listener {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(true);
                        self.note_congestion_control(s.as_raw_fd());
                        self.app.stream = Some(s);
                        self.call(Call::Accept);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => self.note(format!("app: accept failed: {e}")),
                }
            }
        }
        let Some(mut s) = self.app.stream.take() else { return self.drain() };
        if !self.app.pending.is_empty() {
            let chunk = self.app.pending.make_contiguous();
            let asked = chunk.len();
            match s.write(chunk) {
                Ok(taken) => {
                    self.app.pending.drain(..taken);
                    self.call(Call::Write { asked, taken });
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => {}
                Err(e) => {
                    self.app.reset |= is_reset(&e);
                    let text =
                        format!("app: {} bytes not written: send failed ({e})", self.app.pending.len());
                    self.note(text);
                    self.app.pending.clear();
                }
            }
        }
        if self.app.shutdown_wanted && !self.app.shutdown_done && self.app.pending.is_empty() {
            match s.shutdown(Shutdown::Write) {
                Ok(()) => {
                    self.app.shutdown_done = true;
                    self.call(Call::Shutdown);
                }
                Err(e) if e.kind() == ErrorKind::NotConnected && self.connecting(&s) => {}
                Err(_) => self.app.shutdown_done = true,
            }
        }
        self.drain()?;
        let mut read = 0;
        while !self.app.read_done {
            match s.read(&mut self.rbuf) {
                Ok(0) => {
                    self.app.read_done = true;
                    if read > 0 {
                        self.call(Call::Read(read));
                        read = 0;
                    }
                    self.app.eof_seen = true;
                    self.call(Call::Eof);
                }
                Ok(n) => read += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::NotConnected && self.connecting(&s) => break,
                Err(e) => {
                    self.app.reset |= is_reset(&e);
                    self.app.read_done = true;
                    tracing::debug!(error = %e, "read failed");
                }
            }
        }
        if read > 0 {
            self.call(Call::Read(read));
        }
        if let Some(info) = tcp_info(s.as_raw_fd()) {
            self.app.info = Some(info);
        }
        self.app.stream = Some(s);
        self.drain()
    }

    /// Says which congestion control the kernel's socket runs: the namespace's default, which it
    /// inherits from the host (on this machine often `bbr`), so a reader of the self-match knows
    /// what the recording is compared with.
    fn note_congestion_control(&mut self, fd: RawFd) {
        if let Ok(name) = crate::netns::congestion_control(fd) {
            self.note(format!("kernel: congestion control {name} (the namespace's default)"));
        }
    }

    /// Whether a client's `connect` is still under way.
    fn connecting(&self, s: &TcpStream) -> bool {
        tcp_info(s.as_raw_fd()).is_some_and(|i| i.tcpi_state == TCP_SYN_SENT)
    }

    /// The client's `connect` to the recorded server (non-blocking; the SYN leaves at once).
    fn connect(&mut self) {
        let Some(fd) = self.app.unconnected.take() else { return };
        match start_connect(fd.as_raw_fd(), self.dev_remote) {
            Ok(()) => {
                self.note_congestion_control(fd.as_raw_fd());
                self.app.stream = Some(TcpStream::from(fd));
                self.call(Call::Connect);
            }
            Err(e) => self.note(format!("connect failed: {e}")),
        }
    }

    /// SO_LINGER 0 and close: the kernel sends a RST (accepting the connection first, when it
    /// is queued but not yet accepted).
    fn abort(&mut self) {
        if self.app.stream.is_none() {
            if let Some(l) = &self.app.listener {
                if let Ok((s, _)) = l.accept() {
                    self.app.stream = Some(s);
                    self.call(Call::Accept);
                }
            }
        }
        if let Some(s) = self.app.stream.take() {
            if let Some(info) = tcp_info(s.as_raw_fd()) {
                self.app.info = Some(info);
            }
            if set_linger0(s.as_raw_fd()).is_ok() {
                drop(s);
                self.call(Call::Abort);
            }
            self.app.pending.clear();
            self.app.gone = true;
        }
    }

    /// Injects flow packet `idx` (the peer's), translated by what the kernel sent so far.
    fn inject(&mut self, flow: &Flow, idx: usize, opts: &Options) -> Result<(), String> {
        let p = &flow.packets[idx];
        self.service()?;
        let sliced = p.tcp.is_sliced().then_some(p.tcp.captured_payload_len);
        match self.tr.translate(&p.zero_filled(), sliced, opts.mode) {
            Ok(inj) => {
                let time = self.now();
                match &self.remap {
                    Some(m) => self.net.send(&readdress(&inj.datagram, m.stand_in.1, m.stand_in.0)?)?,
                    None => self.net.send(&inj.datagram)?,
                }
                self.last_packet = RealInstant::now();
                self.steps.push(Step::In {
                    time,
                    number: p.number,
                    datagram: inj.datagram,
                    notes: inj.notes,
                });
            }
            Err(why) => self.note(format!("record {} not injected: {why}", p.number)),
        }
        self.service()
    }

    /// Services the application and the device until `due`, waiting in `poll(2)` for the device
    /// and the sockets in between.
    fn wait_until(&mut self, due: RealInstant) -> Result<(), String> {
        loop {
            self.service()?;
            if interrupted() {
                return Err("interrupted".into());
            }
            let now = RealInstant::now();
            if now >= due {
                return Ok(());
            }
            self.poll((due - now).min(POLL_SLICE))?;
        }
    }

    /// Waits at most `wait` for the device, a connection to accept, data to read or room to
    /// write.
    fn poll(&self, wait: std::time::Duration) -> Result<(), String> {
        let mut fds = vec![libc::pollfd { fd: self.net.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let mut add = |fd: RawFd, events: libc::c_short| fds.push(libc::pollfd { fd, events, revents: 0 });
        match (&self.app.stream, &self.app.listener) {
            (Some(s), _) => {
                let mut events = 0;
                if !self.app.read_done {
                    events |= libc::POLLIN;
                }
                if !self.app.pending.is_empty() {
                    events |= libc::POLLOUT;
                }
                // A stream with nothing to wait for would report POLLHUP at once, forever.
                if events != 0 {
                    add(s.as_raw_fd(), events);
                }
            }
            (None, Some(l)) if !self.app.gone => add(l.as_raw_fd(), libc::POLLIN),
            _ => {}
        }
        let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a vector of pollfd we own, its length passed with it; the descriptors
        // stay open for the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        Ok(())
    }

    /// Whether the kernel has nothing left to send of its own accord: nothing pending in the
    /// application, and the connection (if any is open) past its handshake with nothing in
    /// flight or queued.
    fn idle(&self) -> bool {
        if !self.app.pending.is_empty() || (self.app.shutdown_wanted && !self.app.shutdown_done) {
            return false;
        }
        let Some(s) = &self.app.stream else { return true };
        let Some(info) = tcp_info(s.as_raw_fd()) else { return true };
        let settled = matches!(
            info.tcpi_state,
            TCP_ESTABLISHED | TCP_FIN_WAIT2 | TCP_TIME_WAIT | TCP_CLOSE | TCP_CLOSE_WAIT
        );
        settled && info.tcpi_unacked == 0 && out_queue(s.as_raw_fd()).unwrap_or(0) == 0
    }
}

/// The kernel's TCP states (include/net/tcp_states.h).
const TCP_ESTABLISHED: u8 = 1;
const TCP_SYN_SENT: u8 = 2;
const TCP_FIN_WAIT2: u8 = 5;
const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE: u8 = 7;
const TCP_CLOSE_WAIT: u8 = 8;

/// Whether a socket error says the peer reset or refused the connection.
fn is_reset(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused | ErrorKind::BrokenPipe)
}

/// `sockaddr_in` or `sockaddr_in6` for `addr`.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeros is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(ss).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(ss).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// A non-blocking TCP socket bound to `local` (SO_REUSEADDR), not yet connected. Run inside the
/// namespace: the socket stays in it.
fn bound_socket(local: SocketAddr) -> Result<OwnedFd, String> {
    let family = if local.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a descriptor socket(2) just returned, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on our descriptor with a c_int option value and its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            std::ptr::addr_of!(one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let (ss, len) = sockaddr(local);
    // SAFETY: bind with a sockaddr_storage holding an address of `len` bytes.
    if unsafe { libc::bind(fd.as_raw_fd(), std::ptr::addr_of!(ss).cast(), len) } != 0 {
        return Err(format!("cannot bind {local}: {}", std::io::Error::last_os_error()));
    }
    Ok(fd)
}

/// Starts a non-blocking `connect` (EINPROGRESS is the expected answer).
fn start_connect(fd: RawFd, remote: SocketAddr) -> std::io::Result<()> {
    let (ss, len) = sockaddr(remote);
    // SAFETY: connect with a sockaddr_storage holding an address of `len` bytes.
    if unsafe { libc::connect(fd, std::ptr::addr_of!(ss).cast(), len) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok(())
    } else {
        Err(e)
    }
}

/// SO_LINGER {1, 0}: `close` then resets the connection.
fn set_linger0(fd: RawFd) -> std::io::Result<()> {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on an open descriptor with a linger value and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(l).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `TCP_INFO` of a socket.
fn tcp_info(fd: RawFd) -> Option<libc::tcp_info> {
    // SAFETY: tcp_info is plain data; all zeros is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which is that large.
    let r = unsafe {
        libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, std::ptr::addr_of_mut!(info).cast(), &mut len)
    };
    (r == 0).then_some(info)
}

/// The bytes in the send queue, sent or not (SIOCOUTQ).
fn out_queue(fd: RawFd) -> Option<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one c_int.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    (r == 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn timeline(times_ms: &[u64], max_gap_ms: u64) -> Timeline {
        Timeline::new(
            times_ms.iter().enumerate().map(|(i, &t)| (i as u64 + 1, Instant::from_millis(1000 + t))),
            ms(max_gap_ms),
        )
    }

    #[test]
    fn timeline_keeps_short_gaps_and_shortens_long_ones_with_their_record() {
        let t = timeline(&[0, 100, 30_100, 30_150], 10_000);
        let offsets: Vec<Duration> = (0..4).map(|i| t.offset(i)).collect();
        assert_eq!(offsets, [ms(0), ms(100), ms(10_100), ms(10_150)]);
        assert_eq!(t.duration(), ms(10_150));
        assert_eq!(t.shortened, [(3, ms(30_000))]);
    }

    #[test]
    fn timeline_plays_a_packet_out_of_time_order_with_the_one_before() {
        let t = timeline(&[0, 200, 150, 300], 10_000);
        let offsets: Vec<Duration> = (0..4).map(|i| t.offset(i)).collect();
        assert_eq!(offsets, [ms(0), ms(200), ms(200), ms(300)]);
        assert!(t.shortened.is_empty());
    }

    #[test]
    fn timeline_maps_replay_offsets_back_to_capture_offsets() {
        let t = timeline(&[0, 100, 30_100], 10_000);
        // Before the long gap: the same.
        assert_eq!(t.capture_offset(ms(50)), ms(50));
        // Inside the shortened gap: from the packet before it.
        assert_eq!(t.capture_offset(ms(5_100)), ms(5_100));
        // At and after the packet after the gap: its capture time plus the time since.
        assert_eq!(t.capture_offset(ms(10_100)), ms(30_100));
        assert_eq!(t.capture_offset(ms(12_100)), ms(32_100));
    }

    fn corpus_flow(name: &str) -> Flow {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures").join(name);
        let reader = crate::capture::CaptureReader::open(&path).unwrap();
        let all = reader.read_all(false).unwrap();
        crate::capture::flows::split(&all.records).flows.remove(0)
    }

    /// RFC 7323 §1.3 and RFC 2018 §2: window scaling, timestamps and SACK are offered on the SYN
    /// and used only when both offered them. A client offers what the recorded one offered; a
    /// server keeps on what the recorded client never offered, which it is never asked about.
    #[test]
    fn sysctls_offer_on_the_syn_only_the_options_the_recorded_client_offered() {
        let v = |on: &'static str| {
            [("net.ipv4.tcp_sack", on), ("net.ipv4.tcp_timestamps", on), ("net.ipv4.tcp_window_scaling", on)]
        };
        assert_eq!(sysctls_for(&corpus_flow("no-sack-ts-ws-ipv4.pcap"), Side::Client), v("0"));
        assert_eq!(sysctls_for(&corpus_flow("no-sack-ts-ws-ipv4.pcap"), Side::Server), v("1"));
        for role in [Side::Server, Side::Client] {
            assert_eq!(sysctls_for(&corpus_flow("http-get-ipv4.pcap"), role), v("1"), "{role:?}");
        }
    }

    #[test]
    fn loopback_and_shared_addresses_get_stand_ins_of_their_family() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(needs_stand_ins(a("127.0.0.1:80"), a("127.0.0.1:4000")));
        assert!(needs_stand_ins(a("[::1]:80"), a("[fd00::1]:4000")));
        assert!(needs_stand_ins(a("10.0.0.1:80"), a("10.0.0.1:4000")));
        assert!(!needs_stand_ins(a("10.0.0.1:80"), a("10.0.0.2:4000")));
        let m = Remap::for_family(a("[::1]:80"), a("[::1]:4000"));
        assert!(m.stand_in.0.is_ipv6() && m.stand_in.0 != m.stand_in.1 && !m.stand_in.1.is_loopback());
    }

    #[test]
    fn readdressing_keeps_the_segment_and_makes_the_checksum_right_again() {
        let flow = corpus_flow("http-get-ipv4.pcap");
        let d = &flow.packets[0].datagram;
        let (src, dst): (IpAddr, IpAddr) = ("10.254.0.1".parse().unwrap(), "10.254.0.2".parse().unwrap());
        let out = readdress(d, src, dst).unwrap();
        let p = parse_datagram(&out, ChecksumMode::Verify).unwrap();
        assert_eq!((p.ip.src, p.ip.dst), (src, dst));
        // The TCP segment comes back byte for byte, checksum included (the IPv4 header is written
        // anew: its identification and flags are not kept).
        let back = readdress(&out, flow.client.ip(), flow.server.ip()).unwrap();
        assert_eq!(back[20..], d[20..]);
    }

    /// A flow whose timeline is longer than real time should take is not played: it says so
    /// (and needs no privileges, since nothing is set up).
    #[test]
    fn a_flow_longer_than_max_duration_is_not_played_and_says_why() {
        let flow = corpus_flow("zero-window-ipv4.pcap");
        let lopts = LinuxOptions { max_duration: Duration::from_secs(1), ..LinuxOptions::default() };
        let r = replay_flow_linux(&flow, &Options::default(), &lopts).unwrap();
        assert!(!r.replayed && !r.completed);
        let why = r.reason.unwrap();
        assert!(why.contains("longer than the 1 s") && why.contains("--max-duration"), "{why}");
        assert!(r.steps.is_empty());
    }

    #[test]
    fn an_empty_timeline_is_zero_long() {
        let t = timeline(&[], 10_000);
        assert_eq!(t.duration(), Duration::ZERO);
        assert_eq!(t.capture_offset(ms(7)), ms(7));
    }
}
