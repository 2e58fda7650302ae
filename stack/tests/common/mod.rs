//! A test peer for state-machine tests: it injects exact segments into one `Stack` on a `Host`
//! (the one driver) and reads the exact segments that come back, on virtual time, in the
//! transcript notation.
//!
//! Inbound sequence numbers are relative to the peer's ISN (`PEER_ISN`), inbound ACKs relative to
//! the stack's ISS (learned from its first SYN or SYN-ACK); outbound the other way round. Until the
//! stack's ISS is known, numbers that belong to it are absolute. Segments print in the core's
//! [`Notation`], as every transcript does.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use utcp::host::{Bounds, Host, Observer, Outbox, Quiet};
use utcp::tcp::SeqNum;
use utcp::wire::{
    self, ChecksumMode, IpRepr, Notation, SackBlocks, TcpFlags, TcpOptions, TcpRepr, Timestamp, Transport,
};
use utcp::{
    AbortError, AcceptError, CloseError, CloseReason, Config, Duration, Event, Instant, ListenError,
    ListenerHandle, RecvError, SendError, SetOptionError, ShutdownError, SocketHandle, SocketOption, Stack,
    UnlistenError,
};

pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
pub const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// The stack's and the peer's addresses in the IPv6 tests (RFC 3849 documentation prefix).
pub const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
pub const REMOTE6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
pub const LOCAL_PORT: u16 = 8080;
pub const REMOTE_PORT: u16 = 40000;
pub const PEER_ISN: u32 = 1_000_000;

/// A segment the test peer sends; fill with struct update from a template.
#[derive(Clone)]
pub struct In {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub win: u16,
    pub data: &'static [u8],
    pub opts: TcpOptions<'static>,
    pub src_port: u16,
}

/// The SYN Linux sends: `S 0:0(0) win 64240 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>`.
pub const SYN: In = In {
    flags: TcpFlags::SYN,
    seq: 0,
    ack: 0,
    win: 64240,
    data: b"",
    opts: TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some(Timestamp { tsval: 100, tsecr: 0 }),
        sack: None,
        fast_open: None,
        unknown: wire::UnknownOptions::EMPTY,
    },
    src_port: REMOTE_PORT,
};

/// A bare SYN with no options at all.
pub const BARE_SYN: In = In { opts: NO_OPTS, win: 65535, ..SYN };

/// No options.
pub const NO_OPTS: TcpOptions<'static> = TcpOptions {
    mss: None,
    window_scale: None,
    sack_permitted: false,
    timestamp: None,
    sack: None,
    fast_open: None,
    unknown: wire::UnknownOptions::EMPTY,
};

/// A plain ACK after a handshake without options.
pub const ACK: In =
    In { flags: TcpFlags::ACK, seq: 1, ack: 1, win: 65535, data: b"", opts: NO_OPTS, src_port: REMOTE_PORT };

/// One stack on a [`Host`] (the one driver, virtual time), and the peer's view of it.
pub struct T {
    host: Host,
    /// What the stack sent and the test has not read yet.
    sent: Outbox,
    /// The stack's ISS once seen.
    pub iss: Option<u32>,
    pub listener: Option<ListenerHandle>,
    pub sock: Option<SocketHandle>,
}

/// Collects the events a host reports.
struct Events(Vec<Event>);

impl Observer for Events {
    fn event(&mut self, _now: Instant, event: Event) {
        self.0.push(event);
    }
}

/// Linux-like knobs, a fixed secret, no delayed-ACK surprises unless a test wants them.
pub fn config() -> Config {
    let mut c = Config::linux_like().with_address(LOCAL);
    c.isn_secret = [42; 16];
    c
}

impl T {
    pub fn new(config: Config) -> Self {
        let host = Host::new(Stack::new(config), Instant::from_secs(1), Bounds::default());
        T { host, sent: Outbox::default(), iss: None, listener: None, sock: None }
    }

    /// A stack listening on LOCAL:LOCAL_PORT.
    pub fn listening(config: Config) -> Self {
        let mut t = T::new(config);
        t.listener = Some(t.listen(SocketAddr::new(LOCAL, LOCAL_PORT), 8).unwrap());
        t
    }

    /// A stack connecting out from LOCAL:LOCAL_PORT to REMOTE:REMOTE_PORT.
    pub fn connecting(config: Config) -> Self {
        let mut t = T::new(config);
        let local = SocketAddr::new(LOCAL, LOCAL_PORT);
        let now = t.now();
        let remote = SocketAddr::new(REMOTE, REMOTE_PORT);
        t.sock = Some(t.host.stack_mut().connect(now, Some(local), remote).unwrap());
        t
    }

    /// A passive connection without options, accepted: ESTABLISHED, windows 65535 both ways.
    pub fn established(config: Config) -> Self {
        let mut t = T::listening(config);
        t.send(In { ..BARE_SYN });
        assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
        t.send(ACK);
        t.accept();
        t.events();
        t
    }

    /// The stack, to call what the helpers here do not wrap.
    pub fn stack(&mut self) -> &mut Stack {
        self.host.stack_mut()
    }

    /// The stack, to read.
    pub fn s(&self) -> &Stack {
        self.host.stack()
    }

    /// The host's time: socket calls are made at it.
    pub fn now(&self) -> Instant {
        self.host.now()
    }

    pub fn accept(&mut self) -> SocketHandle {
        let h = self.accept_on(self.listener.unwrap()).expect("accept");
        self.sock = Some(h);
        h
    }

    pub fn sock(&self) -> SocketHandle {
        self.sock.expect("no socket")
    }

    // Socket calls at the host's time, named as on `Stack` (`write`/`read` for `send`/`recv`,
    // since `send` is the peer's).

    pub fn write(&mut self, h: SocketHandle, data: &[u8]) -> Result<usize, SendError> {
        let now = self.now();
        self.host.stack_mut().send(now, h, data)
    }

    pub fn read(&mut self, h: SocketHandle, buf: &mut [u8]) -> Result<usize, RecvError> {
        let now = self.now();
        self.host.stack_mut().recv(now, h, buf)
    }

    pub fn shutdown(&mut self, h: SocketHandle) -> Result<(), ShutdownError> {
        let now = self.now();
        self.host.stack_mut().shutdown(now, h)
    }

    pub fn close(&mut self, h: SocketHandle) -> Result<(), CloseError> {
        let now = self.now();
        self.host.stack_mut().close(now, h)
    }

    pub fn abort(&mut self, h: SocketHandle) -> Result<(), AbortError> {
        let now = self.now();
        self.host.stack_mut().abort(now, h)
    }

    pub fn set_option(&mut self, h: SocketHandle, option: SocketOption) -> Result<(), SetOptionError> {
        let now = self.now();
        self.host.stack_mut().set_option(now, h, option)
    }

    pub fn set_listener_option(
        &mut self,
        l: ListenerHandle,
        option: SocketOption,
    ) -> Result<(), SetOptionError> {
        let now = self.now();
        self.host.stack_mut().set_listener_option(now, l, option)
    }

    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> Result<ListenerHandle, ListenError> {
        let now = self.now();
        self.host.stack_mut().listen(now, local, backlog)
    }

    pub fn unlisten(&mut self, l: ListenerHandle) -> Result<(), UnlistenError> {
        let now = self.now();
        self.host.stack_mut().unlisten(now, l)
    }

    pub fn accept_on(&mut self, l: ListenerHandle) -> Result<SocketHandle, AcceptError> {
        let now = self.now();
        self.host.stack_mut().accept(now, l)
    }

    pub fn take_error(&mut self, h: SocketHandle) -> Option<CloseReason> {
        self.host.stack_mut().take_error(h)
    }

    /// One raw datagram into the stack now.
    pub fn receive(&mut self, datagram: &[u8]) {
        let now = self.now();
        self.host.receive(now, datagram, &mut Quiet);
    }

    #[track_caller]
    pub fn send(&mut self, seg: In) {
        let bytes = self.encode(&seg);
        self.receive(&bytes);
    }

    pub fn encode(&self, seg: &In) -> Vec<u8> {
        let iss = self.iss.unwrap_or(0);
        let flags = seg.flags;
        let ack = if flags.ack() { SeqNum(iss.wrapping_add(seg.ack)) } else { SeqNum(0) };
        let mut opts = seg.opts;
        if let Some(sack) = opts.sack {
            let blocks: Vec<_> = sack
                .as_slice()
                .iter()
                .map(|&(a, b)| (SeqNum(iss.wrapping_add(a.0)), SeqNum(iss.wrapping_add(b.0))))
                .collect();
            opts.sack = SackBlocks::from_slice(&blocks);
        }
        let tcp = TcpRepr {
            src_port: seg.src_port,
            dst_port: LOCAL_PORT,
            seq: SeqNum(PEER_ISN.wrapping_add(seg.seq)),
            ack,
            flags,
            window: seg.win,
            urgent: 0,
            options: opts,
            payload: seg.data,
        };
        let ip = IpRepr {
            src: REMOTE,
            dst: LOCAL,
            protocol: wire::IPPROTO_TCP,
            hop_limit: 64,
            ecn: 0,
            payload_len: 0,
        };
        let t = Transport::Tcp(tcp);
        let mut buf = vec![0; wire::datagram_len(&ip, &t)];
        wire::emit_datagram(&ip, &t, &mut buf).unwrap();
        buf
    }

    /// Everything the stack sends now, in notation.
    pub fn out(&mut self) -> Vec<String> {
        self.out_raw().iter().map(|p| self.format(p)).collect()
    }

    /// Everything the stack sends now, as raw packets.
    pub fn out_raw(&mut self) -> Vec<Vec<u8>> {
        self.take_sent().into_iter().map(|(_, p)| p).collect()
    }

    /// The next datagram the stack sends now, leaving the rest for later.
    pub fn next_raw(&mut self) -> Option<Vec<u8>> {
        self.host.transmit(&mut self.sent, &mut Quiet).expect("runaway");
        self.sent.sent.pop_front().map(|(_, p)| p)
    }

    /// What the stack sends now and what it sent before and the test has not read, with times.
    fn take_sent(&mut self) -> Vec<(Instant, Vec<u8>)> {
        self.host.transmit(&mut self.sent, &mut Quiet).expect("runaway");
        self.sent.sent.drain(..).collect()
    }

    /// Moves the clock by `d`, running every timer due on the way at its own deadline.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now() + d;
        let mut timers = self.host.timers_until(end);
        while timers.run_next(&mut self.host).expect("runaway").is_some() {}
        self.host.set_now(end);
    }

    /// Moves the clock by `d` and returns what was sent at each timer, with its time offset in ms.
    pub fn advance_out(&mut self, d: Duration) -> Vec<String> {
        let start = self.now();
        let end = start + d;
        let mut timers = self.host.timers_until(end);
        let mut v = Vec::new();
        loop {
            for (at, p) in self.take_sent() {
                let ms = at.saturating_duration_since(start).total_millis();
                v.push(format!("+{ms}ms {}", self.format(&p)));
            }
            if timers.run_next(&mut self.host).expect("runaway").is_none() {
                break;
            }
        }
        self.host.set_now(end);
        v
    }

    pub fn events(&mut self) -> Vec<Event> {
        let mut events = Events(Vec::new());
        self.host.report_events(&mut events);
        events.0
    }

    pub fn format(&mut self, p: &[u8]) -> String {
        let d = wire::parse_datagram(p, ChecksumMode::Verify).expect("stack sent a bad packet");
        let Transport::Tcp(seg) = d.transport else { return format!("{:?}", d.transport) };
        if seg.flags.syn() && self.iss.is_none() {
            self.iss = Some(seg.seq.0);
        }
        Notation::new(&seg, self.iss.map(SeqNum), Some(SeqNum(PEER_ISN))).to_string()
    }
}

/// A v6 peer's segment from REMOTE6:5555 to LOCAL6:443, absolute numbers, window 65535.
pub fn segment_v6(
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    options: TcpOptions<'static>,
    payload: &[u8],
) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: 5555,
        dst_port: 443,
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        window: 65535,
        urgent: 0,
        options,
        payload,
    };
    let ip = IpRepr {
        src: REMOTE6,
        dst: LOCAL6,
        protocol: wire::IPPROTO_TCP,
        hop_limit: 64,
        ecn: 0,
        payload_len: 0,
    };
    let t = Transport::Tcp(tcp);
    let mut buf = vec![0; wire::datagram_len(&ip, &t)];
    wire::emit_datagram(&ip, &t, &mut buf).unwrap();
    buf
}
