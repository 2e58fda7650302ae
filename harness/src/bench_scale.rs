//! Scale benchmark: memory per idle connection, the cost per segment with 1, 1,000 and 100,000
//! connections in one stack, and a SYN flood at a listener.
//!
//! Memory is counted, not estimated: [`CountingAlloc`] is the global allocator of the `utcp`
//! binary (and of this crate's unit tests) and counts the bytes live on the current thread, so
//! the figures are what the stack allocated while this thread drove it, table growth included.
//! Buffers are counted apart: the send and receive rings are allocated on first use, so an idle
//! connection that never carried data has none, and `buffer_bytes_per_connection` is measured on
//! a sample of connections after one segment each way.
//!
//! Peers are written by hand (this module builds their datagrams with `utcp::wire`): one server
//! [`Stack`] on a [`Host`], N peers that each open a connection with a Linux-like SYN (MSS, SACK,
//! timestamps, window scale) and complete the handshake, and the server application accepting
//! every connection. The timed part sends prebuilt 64-byte data segments; the application reads
//! what its Readable events announce, and the stack's ACKs go to a sink. Virtual time moves 1 µs
//! per segment, so delayed ACKs and other timers run as they would. Two traffic patterns:
//!
//! - spread: each segment goes to a connection chosen at random among all N (`ns_per_segment_N`);
//! - one active: every segment goes to one connection while the other N - 1 sit idle
//!   (`ns_per_segment_one_active_N`), which isolates the stack's tables from the CPU caches.
//!
//! The flood sends 1,000,000 SYNs from random addresses and ports at 100,000 per second of
//! virtual time; a real utcp client connects to the same listener two seconds in. The figures are
//! the peak bytes live during the flood and whether the client reached ESTABLISHED (and was
//! accepted) while the flood was still going.
//!
//! The benchmark prints figures; nothing here asserts a speed.
//!
//! Must not depend on: the link, the Pair (this drives one stack by hand).

use crate::bench::median;
use crate::netsim::SplitMix64;
use serde::Serialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant as WallInstant;
use utcp::host::{Bounds, Device, Host, Quiet};
use utcp::tcp::SeqNum;
use utcp::time::{Duration, Instant};
use utcp::wire::{self, ChecksumMode, IpRepr, TcpFlags, TcpOptions, TcpRepr, Timestamp, Transport};
use utcp::{Config, Event, ListenerHandle, RecvError, SocketHandle, Stack, State};

// ---------------------------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------------------------

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

/// The system allocator, counting the bytes live on each thread (allocated there and not freed
/// there yet) and their peak. Install it with `#[global_allocator]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

fn count(delta: i64) {
    // `try_with`: during thread teardown the counters may be gone; those bytes go uncounted.
    let _ = LIVE.try_with(|live| {
        let v = live.get() + delta;
        live.set(v);
        let _ = PEAK.try_with(|peak| {
            if v > peak.get() {
                peak.set(v);
            }
        });
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds as it does for `System`; the counting touches only const-initialised
// thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract for `layout`, which `System` needs.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds `new_size`'s rules.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

#[cfg(test)]
#[global_allocator]
static TEST_ALLOC: CountingAlloc = CountingAlloc;

/// Bytes live on this thread as [`CountingAlloc`] counts them.
pub fn live_bytes() -> i64 {
    LIVE.with(Cell::get)
}

/// Starts a new peak from what is live now; [`peak_bytes`] reads it.
pub fn reset_peak() {
    let now = live_bytes();
    PEAK.with(|p| p.set(now));
}

/// The most bytes live on this thread since [`reset_peak`].
pub fn peak_bytes() -> i64 {
    PEAK.with(Cell::get)
}

/// Whether [`CountingAlloc`] is the global allocator (a boxed value shows up in the count).
pub fn counting_installed() -> bool {
    let before = live_bytes();
    let b = std::hint::black_box(Box::new([0u8; 4096]));
    let during = live_bytes();
    drop(b);
    during - before >= 4096
}

// ---------------------------------------------------------------------------------------------
// Hand-made peers
// ---------------------------------------------------------------------------------------------

/// The server's address and port.
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
/// Payload of every timed data segment.
const PAYLOAD: [u8; 64] = [0x5a; 64];

/// One hand-made peer's view of its connection.
#[derive(Debug, Clone, Copy)]
struct Peer {
    addr: SocketAddr,
    /// The peer's next sequence number.
    snd_nxt: u32,
    /// What the peer acknowledges: the server's ISN + 1.
    rcv_nxt: u32,
    /// The server's last timestamp, echoed.
    tsecr: u32,
}

/// Peer `i`'s address: 10.128.0.0/9, ports 10000..60000.
fn peer_addr(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a80_0000u32 + (i / 50_000) as u32 + 1);
    SocketAddr::new(IpAddr::V4(ip), 10_000 + (i % 50_000) as u16)
}

/// A datagram from `src` to the server carrying `tcp`.
fn datagram(src: SocketAddr, dst: SocketAddr, tcp: TcpRepr<'_>) -> Vec<u8> {
    let ip = IpRepr {
        src: src.ip(),
        dst: dst.ip(),
        protocol: wire::IPPROTO_TCP,
        hop_limit: 64,
        ecn: 0,
        payload_len: 0,
    };
    let t = Transport::Tcp(tcp);
    let mut buf = vec![0; wire::datagram_len(&ip, &t)];
    let n = wire::emit_datagram(&ip, &t, &mut buf).expect("the buffer is sized for it");
    buf.truncate(n);
    buf
}

/// A SYN as Linux sends it: MSS 1460, SACK permitted, timestamps, window scale 7.
fn syn(src: SocketAddr, seq: u32, tsval: u32) -> Vec<u8> {
    let options = TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some(Timestamp { tsval, tsecr: 0 }),
        ..TcpOptions::default()
    };
    datagram(
        src,
        SERVER,
        TcpRepr {
            src_port: src.port(),
            dst_port: SERVER.port(),
            seq: SeqNum(seq),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options,
            payload: &[],
        },
    )
}

/// An ACK from `peer`, with `payload`, timestamped `tsval`.
fn ack(peer: &Peer, tsval: u32, payload: &[u8]) -> Vec<u8> {
    let options =
        TcpOptions { timestamp: Some(Timestamp { tsval, tsecr: peer.tsecr }), ..TcpOptions::default() };
    let flags = if payload.is_empty() { TcpFlags::ACK } else { TcpFlags::ACK | TcpFlags::PSH };
    datagram(
        peer.addr,
        SERVER,
        TcpRepr {
            src_port: peer.addr.port(),
            dst_port: SERVER.port(),
            seq: SeqNum(peer.snd_nxt),
            ack: SeqNum(peer.rcv_nxt),
            flags,
            window: 502,
            urgent: 0,
            options,
            payload,
        },
    )
}

/// A device that keeps only the last datagram the stack sent, in a buffer it reuses.
#[derive(Default)]
struct Last {
    datagram: Vec<u8>,
    count: u64,
}

impl Device for Last {
    fn transmit(&mut self, _now: Instant, datagram: &[u8]) {
        self.datagram.clear();
        self.datagram.extend_from_slice(datagram);
        self.count += 1;
    }
}

/// A server stack with `n` established, accepted connections from hand-made peers.
struct Server {
    host: Host,
    listener: ListenerHandle,
    peers: Vec<Peer>,
    handles: Vec<SocketHandle>,
    now: Instant,
    /// The next timestamp value every peer uses (one clock for all of them is enough for PAWS).
    tsval: u32,
    rbuf: Vec<u8>,
}

/// The configuration of the scale server: small buffers, so 100,000 connections with their
/// rings allocated fit in memory (what the figures say is per-connection state, not buffer size).
pub fn scale_config(buffer: usize) -> Config {
    let mut c = Config::default().with_address(SERVER.ip());
    c.isn_secret = [7; 16];
    c.tcp.send_buffer = buffer;
    c.tcp.recv_buffer = buffer;
    c
}

impl Server {
    fn new(buffer: usize) -> Result<Server, String> {
        let now = Instant::from_micros(1_000_000);
        let mut host = Host::new(Stack::new(scale_config(buffer)), now, Bounds::default());
        let listener = host.stack_mut().listen(now, SERVER, 65535).map_err(|e| format!("listen: {e:?}"))?;
        Ok(Server {
            host,
            listener,
            peers: Vec::new(),
            handles: Vec::new(),
            now,
            tsval: 1,
            rbuf: vec![0; 4096],
        })
    }

    /// Opens `n` more connections, one handshake at a time, each accepted by the application.
    fn open(&mut self, n: usize) -> Result<(), String> {
        let mut out = Last::default();
        out.datagram.reserve(2048);
        for _ in 0..n {
            let i = self.peers.len();
            let addr = peer_addr(i);
            let isn = (i as u32).wrapping_mul(2_654_435_761);
            self.tsval += 1;
            self.host.receive(self.now, &syn(addr, isn, self.tsval), &mut Quiet);
            self.host.transmit(&mut out, &mut Quiet).map_err(|e| e.to_string())?;
            let (iss, tsecr) = {
                let d = wire::parse_datagram(&out.datagram, ChecksumMode::Verify)
                    .map_err(|e| format!("peer {i}: the SYN-ACK does not parse: {e}"))?;
                let Transport::Tcp(t) = d.transport else { return Err(format!("peer {i}: no SYN-ACK")) };
                if t.flags != TcpFlags::SYN | TcpFlags::ACK {
                    return Err(format!("peer {i}: expected a SYN-ACK, got flags {:?}", t.flags));
                }
                (t.seq.raw(), t.options.timestamp.map_or(0, |ts| ts.tsval))
            };
            let peer = Peer { addr, snd_nxt: isn.wrapping_add(1), rcv_nxt: iss.wrapping_add(1), tsecr };
            self.tsval += 1;
            self.host.receive(self.now, &ack(&peer, self.tsval, &[]), &mut Quiet);
            self.host.transmit(&mut out, &mut Quiet).map_err(|e| e.to_string())?;
            let h = self
                .host
                .stack_mut()
                .accept(self.now, self.listener)
                .map_err(|e| format!("peer {i}: accept: {e:?}"))?;
            self.peers.push(peer);
            self.handles.push(h);
            self.host.report_events(&mut Quiet);
        }
        Ok(())
    }

    /// The next data segment from peer `c` (its sequence number moves on).
    fn data_from(&mut self, c: usize) -> Vec<u8> {
        self.tsval += 1;
        let d = ack(&self.peers[c], self.tsval, &PAYLOAD);
        self.peers[c].snd_nxt = self.peers[c].snd_nxt.wrapping_add(PAYLOAD.len() as u32);
        d
    }

    /// Lets a second of virtual time pass, untimed: every delayed ACK due goes out, so the next
    /// timed run starts with idle connections.
    fn settle(&mut self) -> Result<(), String> {
        let mut sink = Last::default();
        self.now += Duration::from_secs(1);
        self.host.advance(self.now).map_err(|e| e.to_string())?;
        self.host.drain(&mut sink, &mut Quiet).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Feeds `segments` one per microsecond, the application reading what each makes readable;
    /// returns the wall-clock nanoseconds per segment and the bytes the application read.
    fn run(&mut self, segments: &[Vec<u8>]) -> Result<(f64, u64), String> {
        let mut sink = Last::default();
        sink.datagram.reserve(2048);
        let mut read = 0u64;
        let start = WallInstant::now();
        for s in segments {
            self.now += Duration::from_micros(1);
            self.host.receive(self.now, s, &mut Quiet);
            self.host.advance(self.now).map_err(|e| e.to_string())?;
            while let Some(ev) = self.host.stack_mut().poll_event() {
                if let Event::Readable(h) = ev {
                    loop {
                        match self.host.stack_mut().recv(self.now, h, &mut self.rbuf) {
                            Ok(0) | Err(RecvError::WouldBlock) => break,
                            Ok(k) => read += k as u64,
                            Err(e) => return Err(format!("recv: {e:?}")),
                        }
                    }
                }
            }
            self.host.transmit(&mut sink, &mut Quiet).map_err(|e| e.to_string())?;
        }
        let ns = start.elapsed().as_nanos() as f64 / segments.len().max(1) as f64;
        Ok((ns, read))
    }
}

// ---------------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------------

/// What `utcp bench scale` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScaleSettings {
    /// Connection counts whose cost per segment is measured.
    pub counts: [usize; 3],
    /// Timed segments per count and round.
    pub segments: usize,
    /// Send and receive buffer of every connection, bytes.
    pub buffer: usize,
    /// SYNs in the flood.
    pub flood_syns: usize,
    /// Connections the buffer memory is measured on.
    pub buffer_sample: usize,
}

impl Default for ScaleSettings {
    fn default() -> Self {
        ScaleSettings {
            counts: [1, 1_000, 100_000],
            segments: 200_000,
            buffer: 4096,
            flood_syns: 1_000_000,
            buffer_sample: 1_000,
        }
    }
}

/// The cost per segment at one connection count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountFigures {
    /// Connections in the stack.
    pub connections: usize,
    /// Median ns per segment, segments spread at random over all connections.
    pub ns_per_segment: f64,
    /// Median ns per segment, every segment to one connection, the rest idle.
    pub ns_per_segment_one_active: f64,
    /// Every round's spread figure.
    pub rounds: Vec<f64>,
    /// Every round's one-active figure.
    pub rounds_one_active: Vec<f64>,
}

/// What the SYN flood showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloodFigures {
    /// SYNs sent.
    pub syns: usize,
    /// Most bytes live during the flood, above what was live before it.
    pub peak_bytes: i64,
    /// The legitimate client reached ESTABLISHED and was accepted while the flood went on.
    pub client_connected: bool,
    /// Seconds of virtual time from the client's connect call to ESTABLISHED.
    pub client_connect_seconds: Option<f64>,
    /// Connections the server held at the end (half-open ones included).
    pub server_connections_at_end: usize,
    /// Datagrams the server sent during the flood (SYN-ACKs, mostly).
    pub server_datagrams: u64,
}

/// The result of `utcp bench scale`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleReport {
    /// The settings.
    pub settings: ScaleSettings,
    /// How memory was counted.
    pub memory_counted_by: &'static str,
    /// Bytes per idle established connection, its buffers not allocated (they never carried data).
    pub bytes_per_connection: f64,
    /// Bytes the send and receive rings add per connection once each carried data.
    pub buffer_bytes_per_connection: f64,
    /// Median ns per segment with 1 connection (spread traffic).
    pub ns_per_segment_1: f64,
    /// Median ns per segment with 1,000 connections (spread traffic).
    pub ns_per_segment_1000: f64,
    /// Median ns per segment with 100,000 connections (spread traffic).
    pub ns_per_segment_100000: f64,
    /// Median ns per segment with 100,000 connections, one of them active.
    pub ns_per_segment_one_active_100000: f64,
    /// `ns_per_segment_100000 / ns_per_segment_1`.
    pub ratio_100000_to_1: f64,
    /// `ns_per_segment_one_active_100000 / ns_per_segment_1`.
    pub ratio_one_active_100000_to_1: f64,
    /// Figures per connection count.
    pub counts: Vec<CountFigures>,
    /// Peak bytes during the SYN flood.
    pub syn_flood_peak_bytes: i64,
    /// The legitimate client connected during the flood.
    pub syn_flood_client_connected: bool,
    /// The flood's figures.
    pub flood: FloodFigures,
}

/// Measures memory per idle connection on a stack of `n` of them, and the buffer rings on a sample.
fn memory(settings: &ScaleSettings, n: usize) -> Result<(f64, f64), String> {
    let mut server = Server::new(settings.buffer)?;
    server.peers.reserve(n);
    server.handles.reserve(n);
    let before = live_bytes();
    server.open(n)?;
    let idle = (live_bytes() - before) as f64 / n.max(1) as f64;
    // One segment in and one byte out on each connection of the sample allocate its two rings.
    let sample = settings.buffer_sample.min(n).max(1);
    let segments: Vec<Vec<u8>> = (0..sample).map(|c| server.data_from(c)).collect();
    let before = live_bytes();
    server.run(&segments)?;
    for &h in &server.handles[..sample] {
        server.host.stack_mut().send(server.now, h, b"x").map_err(|e| format!("send: {e:?}"))?;
    }
    let buffers = (live_bytes() - before) as f64 / sample as f64;
    drop(segments);
    Ok((idle, buffers))
}

/// Median ns per segment at `n` connections, spread and one-active, over `rounds` rounds.
fn cost(settings: &ScaleSettings, n: usize, rounds: usize) -> Result<CountFigures, String> {
    let mut server = Server::new(settings.buffer)?;
    server.open(n)?;
    let mut rng = SplitMix64::new(n as u64 ^ 0x5ca1e);
    // Warm-up: one segment to every connection, so each has its rings before the timing.
    let warm: Vec<Vec<u8>> = (0..n).map(|c| server.data_from(c)).collect();
    server.run(&warm)?;
    drop(warm);
    server.settle()?;
    let (mut spread, mut one) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let segs: Vec<Vec<u8>> =
            (0..settings.segments).map(|_| server.data_from((rng.next_u64() % n as u64) as usize)).collect();
        let (ns, read) = server.run(&segs)?;
        if read != (segs.len() * PAYLOAD.len()) as u64 {
            return Err(format!("{n} connections: the application read {read} bytes of {}", segs.len() * 64));
        }
        spread.push(ns);
        server.settle()?;
        let active = (rng.next_u64() % n as u64) as usize;
        let segs: Vec<Vec<u8>> = (0..settings.segments).map(|_| server.data_from(active)).collect();
        let (ns, read) = server.run(&segs)?;
        if read != (segs.len() * PAYLOAD.len()) as u64 {
            return Err(format!("{n} connections, one active: read {read} bytes of {}", segs.len() * 64));
        }
        one.push(ns);
        server.settle()?;
    }
    for (i, &h) in server.handles.iter().enumerate() {
        if server.host.stack().state(h) != Some(State::Established) {
            return Err(format!("{n} connections: connection {i} left ESTABLISHED"));
        }
    }
    Ok(CountFigures {
        connections: n,
        ns_per_segment: median(spread.clone()).unwrap_or(0.0),
        ns_per_segment_one_active: median(one.clone()).unwrap_or(0.0),
        rounds: spread,
        rounds_one_active: one,
    })
}

/// The legitimate client's address.
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 7, 7));

/// Sends `syns` SYNs from random sources at a listener, 10 µs apart, with a utcp client
/// connecting to the same listener 2 s in; reports the peak memory and whether the client got in.
pub fn syn_flood(syns: usize) -> Result<FloodFigures, String> {
    let start = Instant::from_micros(1_000_000);
    let mut server = Host::new(Stack::new(scale_config(64 * 1024)), start, Bounds::default());
    let listener = server.stack_mut().listen(start, SERVER, 128).map_err(|e| format!("listen: {e:?}"))?;
    let mut cc = Config::default().with_address(CLIENT);
    cc.isn_secret = [9; 16];
    let mut client = Host::new(Stack::new(cc), start, Bounds::default());
    let mut rng = SplitMix64::new(0xf100d);

    /// Where the server's datagrams go: to the client if addressed to it, else nowhere.
    struct Route {
        to_client: Vec<Vec<u8>>,
        sent: u64,
    }
    impl Device for Route {
        fn transmit(&mut self, _now: Instant, d: &[u8]) {
            self.sent += 1;
            let dst_is_client = d.len() >= 20 && d[0] >> 4 == 4 && d[16..20] == [192, 168, 7, 7];
            if dst_is_client {
                self.to_client.push(d.to_vec());
            }
        }
    }
    /// The client's datagrams, all for the server.
    #[derive(Default)]
    struct Collect(Vec<Vec<u8>>);
    impl Device for Collect {
        fn transmit(&mut self, _now: Instant, d: &[u8]) {
            self.0.push(d.to_vec());
        }
    }

    let mut route = Route { to_client: Vec::new(), sent: 0 };
    let mut from_client = Collect::default();
    let connect_at = 200_000.min(syns / 5);
    let (mut conn, mut connected_at, mut accepted) = (None, None, false);
    let mut syn_buf = Vec::with_capacity(128);
    // The counters start here: what the stacks hold before the flood is not the flood's.
    server.report_events(&mut Quiet);
    reset_peak();
    let base = live_bytes();
    for i in 0..syns {
        let now = start + Duration::from_micros(10 * i as u64);
        let r = rng.next_u64();
        let src = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(0x6440_0000u32 | (r as u32 & 0x003f_ffff))),
            1024 + ((r >> 32) as u16 % 64_000),
        );
        syn_buf.clear();
        syn_buf.extend_from_slice(&syn(src, (r >> 16) as u32, r as u32));
        server.receive(now, &syn_buf, &mut Quiet);
        server.advance(now).map_err(|e| e.to_string())?;
        if i == connect_at {
            client.set_now(now);
            conn =
                Some(client.stack_mut().connect(now, None, SERVER).map_err(|e| format!("connect: {e:?}"))?);
        }
        client.advance(now).map_err(|e| e.to_string())?;
        client.drain(&mut from_client, &mut Quiet).map_err(|e| e.to_string())?;
        for d in from_client.0.drain(..) {
            server.receive(now, &d, &mut Quiet);
        }
        server.transmit(&mut route, &mut Quiet).map_err(|e| e.to_string())?;
        for d in route.to_client.drain(..) {
            client.receive(now, &d, &mut Quiet);
        }
        client.drain(&mut from_client, &mut Quiet).map_err(|e| e.to_string())?;
        for d in from_client.0.drain(..) {
            server.receive(now, &d, &mut Quiet);
        }
        server.transmit(&mut route, &mut Quiet).map_err(|e| e.to_string())?;
        route.to_client.clear();
        server.report_events(&mut Quiet);
        while let Ok(h) = server.stack_mut().accept(now, listener) {
            accepted |= server.stack().info(h).is_some_and(|info| info.remote.ip() == CLIENT);
        }
        if let Some(c) = conn {
            if connected_at.is_none() && client.stack().state(c) == Some(State::Established) {
                connected_at = Some(now);
            }
        }
    }
    let peak_bytes = peak_bytes() - base;
    let connect_time = start + Duration::from_micros(10 * connect_at as u64);
    Ok(FloodFigures {
        syns,
        peak_bytes,
        client_connected: connected_at.is_some() && accepted,
        client_connect_seconds: connected_at.map(|t| (t - connect_time).total_micros() as f64 / 1e6),
        server_connections_at_end: server.stack().connection_count(),
        server_datagrams: route.sent,
    })
}

/// Runs the whole benchmark; `progress` hears a line after each part.
pub fn run_scale(
    settings: ScaleSettings,
    rounds: usize,
    mut progress: impl FnMut(&str),
) -> Result<ScaleReport, String> {
    if !counting_installed() {
        return Err("the counting allocator is not the global allocator of this program".into());
    }
    let largest = settings.counts.iter().copied().max().unwrap_or(1);
    let (bytes_per_connection, buffer_bytes_per_connection) = memory(&settings, largest)?;
    progress(&format!(
        "memory: {bytes_per_connection:.0} bytes per idle connection ({largest} connections), \
         {buffer_bytes_per_connection:.0} more with buffers"
    ));
    let mut counts = Vec::new();
    for &n in &settings.counts {
        let f = cost(&settings, n, rounds)?;
        progress(&format!(
            "{n} connections: {:.0} ns per segment spread, {:.0} one active (rounds {:?} / {:?})",
            f.ns_per_segment, f.ns_per_segment_one_active, f.rounds, f.rounds_one_active
        ));
        counts.push(f);
    }
    let flood = syn_flood(settings.flood_syns)?;
    progress(&format!(
        "SYN flood: {} SYNs, peak {} bytes, client connected: {}",
        flood.syns, flood.peak_bytes, flood.client_connected
    ));
    let at = |n: usize, one: bool| {
        counts.iter().find(|f| f.connections == n).map_or(0.0, |f| {
            if one {
                f.ns_per_segment_one_active
            } else {
                f.ns_per_segment
            }
        })
    };
    let (c0, c1, c2) = (settings.counts[0], settings.counts[1], settings.counts[2]);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Ok(ScaleReport {
        settings,
        memory_counted_by: "a counting global allocator (bytes live on the driving thread)",
        bytes_per_connection,
        buffer_bytes_per_connection,
        ns_per_segment_1: at(c0, false),
        ns_per_segment_1000: at(c1, false),
        ns_per_segment_100000: at(c2, false),
        ns_per_segment_one_active_100000: at(c2, true),
        ratio_100000_to_1: ratio(at(c2, false), at(c0, false)),
        ratio_one_active_100000_to_1: ratio(at(c2, true), at(c0, false)),
        counts,
        syn_flood_peak_bytes: flood.peak_bytes,
        syn_flood_client_connected: flood.client_connected,
        flood,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counting_allocator_counts_this_thread() {
        assert!(counting_installed());
        let before = live_bytes();
        let v = vec![0u8; 10_000];
        assert!(live_bytes() - before >= 10_000);
        drop(v);
        assert!(live_bytes() - before < 10_000);
    }

    #[test]
    fn hand_made_peers_complete_handshakes_and_their_data_is_read() {
        let mut s = Server::new(4096).unwrap();
        s.open(50).unwrap();
        assert_eq!(s.host.stack().connection_count(), 50);
        let segs: Vec<Vec<u8>> = (0..200).map(|i| s.data_from(i % 50)).collect();
        let (_, read) = s.run(&segs).unwrap();
        assert_eq!(read, 200 * 64);
        assert!(s.handles.iter().all(|&h| s.host.stack().state(h) == Some(State::Established)));
        assert_eq!(s.host.stack().stats().checksum_failures, 0);
    }

    #[test]
    fn small_scale_report_has_the_keys_and_sane_figures() {
        let settings = ScaleSettings {
            counts: [1, 10, 100],
            segments: 500,
            buffer: 4096,
            flood_syns: 50_000,
            buffer_sample: 10,
        };
        let report = run_scale(settings, 1, |_| {}).unwrap();
        // An idle connection costs something, and less than its buffers would.
        assert!(report.bytes_per_connection > 100.0, "{}", report.bytes_per_connection);
        assert!(report.buffer_bytes_per_connection >= 4096.0, "{}", report.buffer_bytes_per_connection);
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "bytes_per_connection",
            "buffer_bytes_per_connection",
            "ns_per_segment_1",
            "ns_per_segment_1000",
            "ns_per_segment_100000",
            "syn_flood_peak_bytes",
        ] {
            assert!(json[key].is_number(), "{key} in {json}");
        }
        assert!(json["syn_flood_client_connected"].is_boolean());
    }

    // RFC 4987 §3.6: a listener whose SYN queue is full still lets a legitimate client in.
    #[test]
    fn a_client_connects_through_a_syn_flood_in_bounded_memory() {
        let flood = syn_flood(100_000).unwrap();
        assert!(flood.client_connected, "{flood:?}");
        // The SYN backlog bounds the half-open connections, and with them the memory.
        assert!(flood.server_connections_at_end <= 128 + 1, "{flood:?}");
        assert!(flood.peak_bytes < 64 << 20, "{flood:?}");
    }
}
