//! The stack runner: drives one `Stack` on a `utcp::host::Host` through a decoded `StackInput`,
//! playing the peer, and checks the properties after every step. Depends on the input format, not
//! on the seeds.

use super::input::{
    IcmpSpec, SegmentSpec, Setup, StackInput, StackTarget, Step, ACCEPT_BACKLOG, LOCAL_PORT, LOCAL_V4,
    LOCAL_V6, MAX_PACKETS_PER_STEP, MAX_QUEUED, MAX_TIMER_RUNS_PER_ADVANCE, REMOTE_PORT, REMOTE_V4,
    REMOTE_V6, SYN_BACKLOG,
};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use utcp::host::{Bounds, Host, Outbox};
use utcp::tcp::SeqNum;
use utcp::wire::{
    datagram_len, emit_datagram, parse_datagram, ChecksumMode, IpRepr, TcpFlags, TcpOptions, TcpRepr,
};
use utcp::wire::{internet_checksum, pseudo_header_sum, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP};
use utcp::wire::{SackBlocks, Timestamp, Transport, UnknownOptions};
use utcp::{Duration, Instant, ListenerHandle, SocketHandle, SocketOption, Stack, State};

/// The host's bounds in the stack targets.
const BOUNDS: Bounds = Bounds {
    max_datagrams_per_drain: MAX_PACKETS_PER_STEP,
    max_timer_runs_per_advance: MAX_TIMER_RUNS_PER_ADVANCE,
};

/// What a run reports to someone watching (`utcp fuzz-show`): the host's observer; the fuzz
/// targets ignore everything ([`Quiet`]).
pub use utcp::host::{Observer, Quiet};

/// What the peer has learned of one 4-tuple from the segments it sent and received.
#[derive(Debug, Clone, Copy)]
struct PeerView {
    isn: SeqNum,
    snd_nxt: SeqNum,
    ts: u32,
    stack_iss: Option<SeqNum>,
    stack_ack: Option<SeqNum>,
    stack_high: Option<SeqNum>,
    stack_last_seq: Option<SeqNum>,
    stack_win: u32,
    stack_wscale: u8,
    stack_tsval: u32,
}

impl PeerView {
    fn new(port: u16) -> PeerView {
        let isn = SeqNum(1_000_000u32.wrapping_add(u32::from(port).wrapping_mul(7919)));
        PeerView {
            isn,
            snd_nxt: isn,
            ts: 100,
            stack_iss: None,
            stack_ack: None,
            stack_high: None,
            stack_last_seq: None,
            stack_win: 0,
            stack_wscale: 0,
            stack_tsval: 0,
        }
    }

    fn learn(&mut self, seg: &TcpRepr<'_>) {
        if seg.flags.syn() {
            self.stack_iss = Some(seg.seq);
            self.stack_wscale = seg.options.window_scale.unwrap_or(0).min(14);
        }
        let end = seg.seq + seg.segment_len();
        self.stack_high = Some(match self.stack_high {
            Some(h) if h > end => h,
            _ => end,
        });
        self.stack_last_seq = Some(seg.seq);
        if seg.flags.ack() {
            self.stack_ack = Some(seg.ack);
        }
        self.stack_win = u32::from(seg.window) << self.stack_wscale;
        if let Some(ts) = seg.options.timestamp {
            self.stack_tsval = ts.tsval;
        }
    }
}

/// The state of one run: the stack, the clock, the sockets and the peer's views.
struct Run<'o, O: Observer> {
    /// The stack and its clock.
    host: Host,
    setup: Setup,
    listeners: Vec<ListenerHandle>,
    sockets: Vec<SocketHandle>,
    accepted_total: usize,
    peers: Vec<(SocketAddr, PeerView)>,
    main_remote: IpAddr,
    target_established: bool,
    obs: &'o mut O,
    /// Bytes the application read from the main connection so far.
    main_read: usize,
    /// Every byte the peer sent on the main connection followed the stream pattern (no altered
    /// payloads, no new SYN re-basing it): then what the application reads must be that pattern.
    main_pure: bool,
    step: usize,
}

/// What a run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The state of each socket the application knew (accepted or connected), `None` once gone.
    pub states: Vec<Option<State>>,
    /// Datagrams the stack sent.
    pub packets_out: u64,
    /// Connections the stack still held.
    pub connections: usize,
}

/// Runs a decoded input with an observer; see [`stack_target`](super::stack_target).
pub fn run_stack<O: Observer>(target: StackTarget, input: &StackInput, obs: &mut O) -> Outcome {
    let setup = input.setup;
    let main_remote = if setup.ipv6 { REMOTE_V6 } else { REMOTE_V4 };
    let mut run = Run {
        host: Host::new(Stack::new(setup.config()), Instant::from_secs(1), BOUNDS),
        setup,
        listeners: Vec::new(),
        sockets: Vec::new(),
        accepted_total: 0,
        peers: Vec::new(),
        main_remote,
        target_established: target == StackTarget::Established,
        obs,
        main_read: 0,
        main_pure: true,
        step: 0,
    };
    run.setup_target(target);
    for (i, step) in input.steps.iter().enumerate() {
        run.step = i + 1;
        run.apply(step);
        run.drain();
        run.check();
    }
    Outcome {
        states: run.sockets.iter().map(|&s| run.host.stack().state(s)).collect(),
        packets_out: run.host.stack().stats().packets_out,
        connections: run.host.stack().connection_count(),
    }
}

impl<O: Observer> Run<'_, O> {
    fn fail(&self, what: fmt::Arguments<'_>) -> ! {
        panic!("step {}: {what}", self.step)
    }

    fn local_for(remote: IpAddr) -> IpAddr {
        if remote.is_ipv4() {
            LOCAL_V4
        } else {
            LOCAL_V6
        }
    }

    fn setup_target(&mut self, target: StackTarget) {
        let now = self.host.now();
        let passive = target == StackTarget::Listen || !self.setup.active_open;
        if passive {
            for local in [LOCAL_V4, LOCAL_V6] {
                let l = self
                    .host
                    .stack_mut()
                    .listen(now, SocketAddr::new(local, LOCAL_PORT), ACCEPT_BACKLOG)
                    .unwrap_or_else(|e| panic!("listen on {local}: {e:?}"));
                self.listeners.push(l);
            }
            self.obs.note(now, format_args!("listen :{LOCAL_PORT} (v4 and v6)"));
        }
        if target == StackTarget::Listen {
            return;
        }
        let remote = SocketAddr::new(self.main_remote, REMOTE_PORT);
        let bare = self.setup.bare_syn;
        let syn_opts = |ts: u32, ecr: u32| TcpOptions {
            mss: (!bare).then_some(1460),
            window_scale: (!bare).then_some(7),
            sack_permitted: !bare,
            timestamp: (!bare).then_some(Timestamp { tsval: ts, tsecr: ecr }),
            ..TcpOptions::default()
        };
        if passive {
            let syn =
                SegmentSpec { flags: TcpFlags::SYN.0 as u8, mode: 0b01, window: 64240, ..Default::default() };
            self.inject_with(&syn, syn_opts(100, 0));
            self.drain();
            let ack = SegmentSpec { flags: TcpFlags::ACK.0 as u8, window: 502, ..Default::default() };
            self.inject(&ack);
            self.drain();
            let l = self.listeners[usize::from(self.setup.ipv6)];
            match self.host.stack_mut().accept(now, l) {
                Ok(s) => {
                    self.sockets.push(s);
                    self.accepted_total += 1;
                }
                Err(e) => panic!("the fixed handshake did not establish: accept {e:?}"),
            }
        } else {
            let local = SocketAddr::new(Self::local_for(self.main_remote), LOCAL_PORT);
            let s = self.host.stack_mut().connect(now, Some(local), remote).expect("connect");
            self.obs.note(now, format_args!("connect {remote} = {s}"));
            self.sockets.push(s);
            self.accepted_total += 1;
            self.drain();
            let synack = SegmentSpec {
                flags: (TcpFlags::SYN.0 | TcpFlags::ACK.0) as u8,
                mode: 0b01,
                window: 65535,
                ..Default::default()
            };
            let ecr = self.peer(remote).stack_tsval;
            self.inject_with(&synack, syn_opts(100, ecr));
            self.drain();
        }
        match self.host.stack().state(self.sockets[0]) {
            Some(State::Established) => {}
            other => panic!("the fixed handshake did not establish: {other:?}"),
        }
        while self.host.stack_mut().poll_event().is_some() {}
        self.check();
    }

    fn peer(&mut self, remote: SocketAddr) -> &mut PeerView {
        let i = match self.peers.iter().position(|(a, _)| *a == remote) {
            Some(i) => i,
            None => {
                self.peers.push((remote, PeerView::new(remote.port())));
                self.peers.len() - 1
            }
        };
        &mut self.peers[i].1
    }

    fn remote_of(&self, spec: &SegmentSpec) -> SocketAddr {
        let other = spec.mode & 0x10 != 0;
        let ip = match (self.main_remote.is_ipv4(), other) {
            (true, false) | (false, true) => REMOTE_V4,
            _ => REMOTE_V6,
        };
        SocketAddr::new(ip, REMOTE_PORT.wrapping_add(u16::from(spec.port)))
    }

    fn inject(&mut self, spec: &SegmentSpec) {
        let remote = self.remote_of(spec);
        let p = *self.peer(remote);
        let o = spec.opts;
        let mut options = TcpOptions::default();
        if o & 1 != 0 {
            options.mss = Some(spec.mss);
        }
        if o & 2 != 0 {
            options.window_scale = Some(spec.wscale);
        }
        options.sack_permitted = o & 4 != 0;
        if o & 8 != 0 {
            let tsval = p.ts.wrapping_add(spec.ts_delta as i32 as u32);
            self.peer(remote).ts = tsval;
            options.timestamp = Some(Timestamp { tsval, tsecr: p.stack_tsval });
        }
        if o & 16 != 0 {
            let high = p.stack_high.unwrap_or(SeqNum(0));
            let left = SeqNum(high.0.wrapping_sub(u32::from(spec.sack_left)));
            let right = SeqNum(left.0.wrapping_add(u32::from(spec.sack_len)));
            options.sack = SackBlocks::from_slice(&[(left, right)]);
        }
        if o & 32 != 0 {
            options.unknown = UnknownOptions::from_raw(&[253, 4, 0xab, 0xcd]);
        }
        self.inject_with(spec, options);
    }

    fn inject_with(&mut self, spec: &SegmentSpec, options: TcpOptions<'static>) {
        let now = self.host.now();
        let remote = self.remote_of(spec);
        let local = SocketAddr::new(Self::local_for(remote.ip()), LOCAL_PORT);
        let p = *self.peer(remote);
        let off = spec.seq_off as i32 as u32;
        let seq = match spec.mode & 3 {
            0 => p.stack_ack.unwrap_or(p.snd_nxt).0.wrapping_add(off),
            1 => p.snd_nxt.0.wrapping_add(off),
            2 => p.stack_ack.unwrap_or(p.snd_nxt).0.wrapping_add(p.stack_win).wrapping_add(off),
            _ => p.isn.0.wrapping_add(off << 16),
        };
        let high = p.stack_high.or(p.stack_iss).unwrap_or(SeqNum(0));
        let aoff = spec.ack_off as i32 as u32;
        let ack = match (spec.mode >> 2) & 3 {
            0 => high.0.wrapping_add(aoff),
            1 => p.stack_last_seq.unwrap_or(high).0.wrapping_add(aoff),
            2 => p.stack_iss.unwrap_or(high).0.wrapping_add(aoff),
            _ => high.0.wrapping_add(aoff << 16),
        };
        let len = spec.payload_len();
        let flip = if spec.mode & 0x40 != 0 { 0x5a } else { 0 };
        let payload: Vec<u8> =
            (0..len).map(|i| (seq.wrapping_add(i as u32).wrapping_sub(p.isn.0) as u8) ^ flip).collect();
        let flags = TcpFlags(u16::from(spec.flags));
        let tcp = TcpRepr {
            src_port: remote.port(),
            dst_port: local.port(),
            seq: SeqNum(seq),
            ack: if flags.ack() { SeqNum(ack) } else { SeqNum(0) },
            flags,
            window: spec.window,
            urgent: 0,
            options,
            payload: &payload,
        };
        let ip = IpRepr {
            src: remote.ip(),
            dst: local.ip(),
            protocol: utcp::wire::IPPROTO_TCP,
            hop_limit: 64,
            ecn: 0,
            payload_len: 0,
        };
        let t = Transport::Tcp(tcp);
        let mut buf = vec![0u8; datagram_len(&ip, &t)];
        if let Err(e) = emit_datagram(&ip, &t, &mut buf) {
            self.obs.note(now, format_args!("segment not emitted: {e}"));
            return;
        }
        if spec.mode & 0x20 != 0 {
            let at = ip.header_len() + 16;
            buf[at] ^= 0xff; // the TCP checksum
        }
        let main = SocketAddr::new(self.main_remote, REMOTE_PORT);
        if remote == main && (flip != 0 || (flags.syn() && self.step > 0)) {
            self.main_pure = false;
        }
        let end = SeqNum(seq) + tcp.segment_len();
        let view = self.peer(remote);
        if flags.syn() {
            view.isn = SeqNum(seq);
        }
        if end > view.snd_nxt || flags.syn() {
            view.snd_nxt = end;
        }
        self.host.receive(now, &buf, &mut *self.obs);
    }

    fn socket(&self, sock: u8) -> Option<SocketHandle> {
        (!self.sockets.is_empty()).then(|| self.sockets[usize::from(sock) % self.sockets.len()])
    }

    fn apply(&mut self, step: &Step) {
        let now = self.host.now();
        match *step {
            Step::Segment(spec) => self.inject(&spec),
            Step::Advance { millis } => self.advance(Step::advance_duration(millis)),
            Step::Send { sock, len } => {
                let Some(s) = self.socket(sock) else { return };
                let data: Vec<u8> = (0..usize::from(len)).map(|i| (i * 31 + 7) as u8).collect();
                let r = self.host.stack_mut().send(now, s, &data);
                self.obs.note(now, format_args!("send({s}, {len}) = {r:?}"));
                if let Ok(n) = r {
                    if n > usize::from(len) {
                        self.fail(format_args!("send took {n} of {len} bytes"));
                    }
                }
            }
            Step::Recv { sock, max } => {
                let Some(s) = self.socket(sock) else { return };
                let mut buf = vec![0u8; usize::from(max)];
                let r = self.host.stack_mut().recv(now, s, &mut buf);
                self.obs.note(now, format_args!("recv({s}, {max}) = {r:?}"));
                if let Ok(n) = r {
                    if n > usize::from(max) {
                        self.fail(format_args!("recv returned {n} into {max} bytes"));
                    }
                    if self.sockets.first() == Some(&s) && self.target_established {
                        self.check_stream(&buf[..n]);
                    }
                }
            }
            Step::Shutdown { sock } => {
                let Some(s) = self.socket(sock) else { return };
                let r = self.host.stack_mut().shutdown(now, s);
                self.obs.note(now, format_args!("shutdown({s}) = {r:?}"));
            }
            Step::Close { sock } => {
                let Some(s) = self.socket(sock) else { return };
                let r = self.host.stack_mut().close(now, s);
                self.obs.note(now, format_args!("close({s}) = {r:?}"));
            }
            Step::Abort { sock } => {
                let Some(s) = self.socket(sock) else { return };
                let r = self.host.stack_mut().abort(now, s);
                self.obs.note(now, format_args!("abort({s}) = {r:?}"));
            }
            Step::Accept => {
                for l in self.listeners.clone() {
                    let r = self.host.stack_mut().accept(now, l);
                    self.obs.note(now, format_args!("accept({l}) = {r:?}"));
                    if let Ok(s) = r {
                        self.sockets.push(s);
                        self.accepted_total += 1;
                    }
                }
            }
            Step::SetOption { sock, which, value } => {
                let Some(s) = self.socket(sock) else { return };
                let opt = match which % 5 {
                    0 => SocketOption::NoDelay(value & 1 != 0),
                    1 => SocketOption::KeepAlive(
                        (value != 0).then(|| Duration::from_millis(u64::from(value) * 10)),
                    ),
                    2 => SocketOption::RecvBuffer(usize::from(value) * 8),
                    3 => SocketOption::SendBuffer(usize::from(value) * 8),
                    _ => SocketOption::MaxSegment(value),
                };
                let r = self.host.stack_mut().set_option(now, s, opt);
                self.obs.note(now, format_args!("set_option({s}, {opt:?}) = {r:?}"));
            }
            Step::Connect { port } => {
                let remote = SocketAddr::new(self.main_remote, REMOTE_PORT.wrapping_add(u16::from(port)));
                let local = SocketAddr::new(Self::local_for(self.main_remote), LOCAL_PORT);
                let r = self.host.stack_mut().connect(now, Some(local), remote);
                self.obs.note(now, format_args!("connect {remote} = {r:?}"));
                if let Ok(s) = r {
                    self.sockets.push(s);
                    self.accepted_total += 1;
                }
            }
            Step::Icmp(spec) => self.icmp(&spec),
        }
    }

    /// Sends the stack an ICMP message from the peer's address (see [`Step::Icmp`]): an error
    /// quoting a segment the stack could have sent to that port, well or badly formed, or an
    /// echo request.
    fn icmp(&mut self, spec: &IcmpSpec) {
        let now = self.host.now();
        let ip = match (self.main_remote.is_ipv4(), spec.kind & 8 != 0) {
            (true, false) | (false, true) => REMOTE_V4,
            _ => REMOTE_V6,
        };
        let remote = SocketAddr::new(ip, REMOTE_PORT.wrapping_add(u16::from(spec.port)));
        let local = SocketAddr::new(Self::local_for(ip), LOCAL_PORT);
        let p = *self.peer(remote);
        let v4 = ip.is_ipv4();
        // The quoted datagram: a segment of the stack's to that port, at the sequence number of
        // its latest segment there moved by `seq_off` (RFC 5927 §4.1: in or out of the window).
        let seq =
            p.stack_last_seq.or(p.stack_iss).unwrap_or(SeqNum(0)).0.wrapping_add(spec.seq_off as i32 as u32);
        let quoted_tcp = TcpRepr {
            src_port: LOCAL_PORT,
            dst_port: remote.port(),
            seq: SeqNum(seq),
            ack: p.snd_nxt,
            flags: TcpFlags::ACK,
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        let qip =
            IpRepr { src: local.ip(), dst: ip, protocol: IPPROTO_TCP, hop_limit: 64, ecn: 0, payload_len: 0 };
        let qt = Transport::Tcp(quoted_tcp);
        let mut quoted = vec![0u8; datagram_len(&qip, &qt)];
        if emit_datagram(&qip, &qt, &mut quoted).is_err() {
            return;
        }
        let kind = spec.kind & 7;
        if kind == 5 {
            // A UDP datagram's quote: the protocol (IPv4) or next header (IPv6) says 17.
            quoted[if v4 { 9 } else { 6 }] = 17;
        }
        // RFC 792: the IP header and 64 bits of data; kind 6 cuts the quote shorter.
        quoted.truncate(qip.header_len() + if kind == 6 { 4 } else { 8 });
        let (types, codes) =
            if v4 { ([3, 3, 11, 12, 8], [0, 4, 0, 0, 0]) } else { ([1, 2, 3, 4, 128], [0; 5]) };
        let value = spec.value;
        let (icmp_type, code, word, body): (u8, u8, u32, Vec<u8>) = match kind {
            0 | 5 | 6 => (types[0], (value % 16) as u8, 0, quoted),
            1 => (types[1], codes[1], u32::from(value), quoted),
            2 => (types[2], (value & 1) as u8, 0, quoted),
            3 if v4 => (types[3], 0, u32::from(value as u8) << 24, quoted),
            3 => (types[3], 0, u32::from(value), quoted),
            4 => (types[4], 0, 0x1234_0001, (0..value % 64).map(|i| i as u8).collect()),
            _ => ((value >> 8) as u8, value as u8, 0, quoted),
        };
        let mut msg = vec![icmp_type, code, 0, 0];
        msg.extend(word.to_be_bytes());
        msg.extend(body);
        let protocol = if v4 { IPPROTO_ICMP } else { IPPROTO_ICMPV6 };
        let init = if v4 { 0 } else { pseudo_header_sum(ip, local.ip(), protocol, msg.len()) };
        let mut sum = !internet_checksum(init, &msg);
        if spec.kind & 16 != 0 {
            sum ^= 0x0f0f;
        }
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
        let outer = IpRepr { src: ip, dst: local.ip(), protocol, hop_limit: 64, ecn: 0, payload_len: 0 };
        let t = Transport::Other(&msg);
        let mut buf = vec![0u8; datagram_len(&outer, &t)];
        if let Err(e) = emit_datagram(&outer, &t, &mut buf) {
            self.obs.note(now, format_args!("ICMP message not emitted: {e}"));
            return;
        }
        self.obs
            .note(now, format_args!("ICMP type {icmp_type} code {code} about {local} > {remote} seq {seq}"));
        self.host.receive(now, &buf, &mut *self.obs);
    }

    /// Moves the clock by `d`, running every timer due on the way at its deadline and sending
    /// what they make.
    fn advance(&mut self, d: Duration) {
        let end = self.host.now() + d;
        self.obs.note(self.host.now(), format_args!("advance {d}"));
        let mut timers = self.host.timers_until(end);
        loop {
            match timers.run_next(&mut self.host) {
                Ok(Some(_)) => self.drain(),
                Ok(None) => break,
                Err(r) => self.fail(format_args!("in an advance of {d}: {r}")),
            }
        }
        self.host.set_now(end);
    }

    /// Sends everything the stack has to send now, checking each datagram.
    fn drain(&mut self) {
        let mut out = Outbox::default();
        if let Err(r) = self.host.drain(&mut out, &mut *self.obs) {
            self.fail(format_args!("{r}"));
        }
        let mtu = self.host.stack().config().mtu;
        for (_, p) in out.sent {
            if p.len() > mtu {
                self.fail(format_args!("sent a datagram of {} bytes, MTU {mtu}", p.len()));
            }
            let d = match parse_datagram(&p, ChecksumMode::Verify) {
                Ok(d) => d,
                Err(e) => self.fail(format_args!("sent a datagram that does not parse: {e}\n{p:02x?}")),
            };
            if !self.host.stack().addresses().contains(&d.ip.src) {
                self.fail(format_args!("sent from {}, not a local address", d.ip.src));
            }
            if let Transport::Tcp(seg) = d.transport {
                let remote = SocketAddr::new(d.ip.dst, seg.dst_port);
                self.peer(remote).learn(&seg);
            }
        }
    }

    /// Bytes read from the main connection are the peer's stream, in order: byte `k` of the
    /// stream is `(k + 1) as u8` (the payload pattern relative to the peer's ISN).
    fn check_stream(&mut self, got: &[u8]) {
        if self.main_pure {
            for (i, &b) in got.iter().enumerate() {
                let k = self.main_read + i;
                if b != (k + 1) as u8 {
                    self.fail(format_args!(
                        "read byte {k} of the stream as {b:#04x}, the peer sent {:#04x}",
                        (k + 1) as u8
                    ));
                }
            }
        }
        self.main_read += got.len();
    }

    /// The properties that hold after every step.
    fn check(&self) {
        if let Err(v) = self.host.stack().check_invariants() {
            self.fail(format_args!("invariant broken: {v}"));
        }
        // Every segment the stack decided to send went out: none failed to fit the MTU buffer.
        for reason in [utcp::DropReason::EmitFailed, utcp::DropReason::BufferTooSmall] {
            let n = self.host.stack().stats().dropped(reason);
            if n > 0 {
                self.fail(format_args!("{n} segments the stack meant to send were dropped: {reason}"));
            }
        }
        let limit = self.listeners.len() * (SYN_BACKLOG + ACCEPT_BACKLOG) + self.accepted_total;
        let n = self.host.stack().connection_count();
        if n > limit {
            self.fail(format_args!("{n} connections held, limit {limit}"));
        }
        for &s in &self.sockets {
            if let Some(i) = self.host.stack().info(s) {
                if i.send_queue > MAX_QUEUED || i.recv_queue > MAX_QUEUED {
                    self.fail(format_args!(
                        "{s}: {} bytes queued to send and {} to read, limit {MAX_QUEUED}",
                        i.send_queue, i.recv_queue
                    ));
                }
            }
        }
    }
}
