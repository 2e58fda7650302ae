//! `utcp bench live`: a kernel TCP client sends `bytes` to three discard servers in turn, in the
//! same process run, the order alternating round by round: utcp on a TUN device, smoltcp 0.12 on
//! a TUN device, and the kernel itself over a veth pair. The figures are goodput in Gbit/s, timed
//! from the client's connect call to the server reading end of file (every byte arrived).
//!
//! Namespaces. Everything runs inside four network namespaces this module creates with
//! `ip netns add utcp-bench-<pid>-<n>` and removes again through a guard (`Netns`) whose `Drop`
//! runs `ip netns del`, on success, error and panic alike (SIGINT and SIGTERM set a flag that
//! every wait checks, so Ctrl-C unwinds through the same guards). Configuration uses
//! `ip -n NAME ...` (and `ip netns exec NAME ethtool ...`, which has no `-n`); the servers and the
//! client run on threads that entered a namespace with `setns(2)`, which is per thread, so one
//! process holds all the contenders and the timing needs no inter-process protocol. A TUN device
//! opened on such a thread lives in that namespace, and so do the sockets it makes.
//!
//! | namespace | holds                                   | addresses                         |
//! |-----------|-----------------------------------------|-----------------------------------|
//! | `-1`      | TUN `utcp0`, utcp and the kernel client | kernel 10.201.1.1, utcp 10.201.1.2 |
//! | `-2`      | TUN `smol0`, smoltcp and the client     | kernel 10.201.2.1, smoltcp 10.201.2.2 |
//! | `-3`      | veth `vs0`, the kernel server           | 10.201.3.2                        |
//! | `-4`      | veth `vc0`, the kernel client           | 10.201.3.1                        |
//!
//! Every prefix is a /24 that exists only in there; nothing is configured in the caller's
//! namespace and nothing is sent anywhere else. Every wait is bounded: a transfer that makes no
//! progress for [`STALL_LIMIT`] fails with a message saying how far it got.
//!
//! Offloads. A TUN device without `IFF_VNET_HDR` gets fully segmented, checksummed datagrams from
//! the kernel and hands it the same, so the kernel does segmentation and checksums in software for
//! utcp and smoltcp (and both compute and verify their own checksums). The veth pair therefore
//! runs by default with `tso gso gro tx rx` off, so the kernel peer does the same work;
//! `veth_offloads: true` leaves veth's defaults on (the kernel's best case).
//!
//! Must not depend on: the Pair, the link, anything with virtual time; only this module and
//! `utcp::live` touch namespaces and devices.

use crate::bench::{median, pattern};
use crate::netns::{catch_signals, congestion_control, join, sweep_stale, Netns};
pub use crate::netns::{interrupted, privileged};
use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A transfer that moves no byte for this long fails.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);
/// How long a server may take to be listening.
const SETUP_LIMIT: Duration = Duration::from_secs(30);
/// The client's connect timeout.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// Bytes per `write` of the client and per `read` of every server.
const CHUNK: usize = 128 * 1024;
/// The discard servers' port.
const PORT: u16 = 5201;
/// The TUN device smoltcp attaches to (created persistent by `ip tuntap`, with the MTU set
/// before smoltcp reads it).
const SMOL_DEVICE: &str = "smol0";

/// What every run moves and over what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LiveSettings {
    /// MTU of both TUN devices and of the veth pair, bytes.
    pub mtu: usize,
    /// Bytes the kernel client sends to each contender per round.
    pub bytes: u64,
    /// Send and receive buffer of the utcp and smoltcp sockets, bytes (the kernel keeps its own
    /// defaults, `net.ipv4.tcp_rmem` of a fresh namespace).
    pub buffer: usize,
    /// The veth pair keeps its segmentation and checksum offloads (default: all off, like TUN).
    pub veth_offloads: bool,
    /// utcp's TUN device is opened with offloads (virtio-net header, TSO/GSO super-segments and
    /// partial checksums both ways); compare with `veth_offloads`.
    pub tun_offloads: bool,
    /// The other way (iperf3's `-R`): every server sends `bytes` to the kernel client, which
    /// reads them, so that the sending paths are measured (utcp's super-segments with
    /// `tun_offloads`).
    pub reverse: bool,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            mtu: 1500,
            bytes: 1 << 30,
            buffer: 256 * 1024,
            veth_offloads: false,
            tun_offloads: false,
            reverse: false,
        }
    }
}

/// The three servers being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LiveContender {
    /// utcp on a TUN device.
    Utcp,
    /// smoltcp 0.12 on a TUN device.
    Smoltcp,
    /// The kernel over a veth pair.
    Kernel,
}

impl std::fmt::Display for LiveContender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            LiveContender::Utcp => "utcp",
            LiveContender::Smoltcp => "smoltcp",
            LiveContender::Kernel => "kernel",
        })
    }
}

/// One timed transfer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LiveRun {
    /// Bytes the server read.
    pub bytes: u64,
    /// Seconds from the client's connect call to the server's end of file.
    pub seconds: f64,
}

impl LiveRun {
    /// Goodput in Gbit/s.
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds / 1e9
    }
}

/// The figures of one round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveRound {
    /// Round number from 1.
    pub round: usize,
    /// The order the contenders ran in.
    pub order: Vec<LiveContender>,
    /// utcp's goodput, Gbit/s.
    pub utcp_gbps: Option<f64>,
    /// smoltcp's goodput, Gbit/s.
    pub smoltcp_gbps: Option<f64>,
    /// The kernel's goodput over veth, Gbit/s.
    pub kernel_gbps: Option<f64>,
}

/// The result of `utcp bench live`: medians over the rounds and every round's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveReport {
    /// The settings every run used.
    pub settings: LiveSettings,
    /// Median goodput of utcp, Gbit/s.
    pub utcp_gbps: Option<f64>,
    /// Median goodput of smoltcp, Gbit/s.
    pub smoltcp_gbps: Option<f64>,
    /// Median goodput of the kernel over veth, Gbit/s.
    pub kernel_gbps: Option<f64>,
    /// `utcp_gbps / kernel_gbps`.
    pub ratio: Option<f64>,
    /// `utcp_gbps / smoltcp_gbps`.
    pub ratio_smoltcp: Option<f64>,
    /// Per-round figures.
    pub rounds: Vec<LiveRound>,
}

/// Runs `rounds` rounds of `contenders` (the order reversed every other round), calling
/// `progress` after every run. Sets up the namespaces first and removes them before returning.
pub fn run_live(
    settings: LiveSettings,
    rounds: usize,
    contenders: &[LiveContender],
    mut progress: impl FnMut(usize, LiveContender, &LiveRun),
) -> Result<LiveReport, String> {
    catch_signals();
    sweep_stale(NS_PREFIX);
    let env = Env::set_up(&settings)?;
    let mut figures = Vec::new();
    for round in 1..=rounds {
        let mut order = contenders.to_vec();
        if round % 2 == 0 {
            order.reverse();
        }
        let mut r =
            LiveRound { round, order: order.clone(), utcp_gbps: None, smoltcp_gbps: None, kernel_gbps: None };
        for who in order {
            let run = env.run(who, &settings).map_err(|e| format!("{who}, round {round}: {e}"))?;
            progress(round, who, &run);
            let slot = match who {
                LiveContender::Utcp => &mut r.utcp_gbps,
                LiveContender::Smoltcp => &mut r.smoltcp_gbps,
                LiveContender::Kernel => &mut r.kernel_gbps,
            };
            *slot = Some(run.gbps());
        }
        figures.push(r);
    }
    drop(env);
    let med = |f: fn(&LiveRound) -> Option<f64>| median(figures.iter().filter_map(f).collect());
    let utcp_gbps = med(|r| r.utcp_gbps);
    let smoltcp_gbps = med(|r| r.smoltcp_gbps);
    let kernel_gbps = med(|r| r.kernel_gbps);
    let over = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    Ok(LiveReport {
        settings,
        utcp_gbps,
        smoltcp_gbps,
        kernel_gbps,
        ratio: over(utcp_gbps, kernel_gbps),
        ratio_smoltcp: over(utcp_gbps, smoltcp_gbps),
        rounds: figures,
    })
}

/// Prefix of every namespace the bench creates; the pid follows, so a sweep can tell whose it is.
const NS_PREFIX: &str = "utcp-bench-";

// ---------------------------------------------------------------------------------------------
// The environment and one run
// ---------------------------------------------------------------------------------------------

const UTCP_KERNEL: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 1);
const UTCP_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 2);
const SMOL_KERNEL: Ipv4Addr = Ipv4Addr::new(10, 201, 2, 1);
const SMOL_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 2, 2);
const VETH_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 201, 3, 1);
const VETH_SERVER: Ipv4Addr = Ipv4Addr::new(10, 201, 3, 2);
const PREFIX: u8 = 24;

/// The four namespaces with their devices (utcp's TUN device is made per run by `Live::open`).
struct Env {
    utcp: Netns,
    smoltcp: Netns,
    server: Netns,
    client: Netns,
}

impl Env {
    fn set_up(s: &LiveSettings) -> Result<Env, String> {
        let env = Env {
            utcp: Netns::create(NS_PREFIX, "1")?,
            smoltcp: Netns::create(NS_PREFIX, "2")?,
            server: Netns::create(NS_PREFIX, "3")?,
            client: Netns::create(NS_PREFIX, "4")?,
        };
        let mtu = s.mtu.to_string();
        let smol = &env.smoltcp;
        smol.ip(&["tuntap", "add", "dev", SMOL_DEVICE, "mode", "tun"])?;
        smol.ip(&["link", "set", "dev", SMOL_DEVICE, "mtu", &mtu])?;
        smol.ip(&["addr", "add", &format!("{SMOL_KERNEL}/{PREFIX}"), "dev", SMOL_DEVICE])?;
        smol.ip(&["link", "set", "dev", SMOL_DEVICE, "up"])?;

        let client_ns = env.client.name();
        env.server.ip(&[
            "link", "add", "vs0", "mtu", &mtu, "type", "veth", "peer", "name", "vc0", "netns", client_ns,
            "mtu", &mtu,
        ])?;
        for (ns, dev, addr) in [(&env.server, "vs0", VETH_SERVER), (&env.client, "vc0", VETH_CLIENT)] {
            ns.ip(&["addr", "add", &format!("{addr}/{PREFIX}"), "dev", dev])?;
            if !s.veth_offloads {
                ns.exec(&[
                    "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off",
                ])?;
            }
            ns.ip(&["link", "set", "dev", dev, "up"])?;
        }
        tracing::info!(
            namespaces = ?[env.utcp.name(), env.smoltcp.name(), env.server.name(), env.client.name()],
            mtu = s.mtu,
            veth_offloads = s.veth_offloads,
            "bench live set up"
        );
        Ok(env)
    }

    /// One timed transfer from a kernel client to `who`.
    fn run(&self, who: LiveContender, s: &LiveSettings) -> Result<LiveRun, String> {
        let (client_ns, target) = match who {
            LiveContender::Utcp => (&self.utcp, UTCP_ADDR),
            LiveContender::Smoltcp => (&self.smoltcp, SMOL_ADDR),
            LiveContender::Kernel => (&self.client, VETH_SERVER),
        };
        let s2 = *s;
        if s.reverse {
            let (start, served) =
                timed_download(client_ns, SocketAddrV4::new(target, PORT), s.bytes, |ready, w| match who {
                    LiveContender::Utcp => self.utcp.spawn("utcp-source", move || utcp_source(s2, ready, w)),
                    LiveContender::Smoltcp => {
                        self.smoltcp.spawn("smoltcp-source", move || smoltcp_source(s2, ready, w))
                    }
                    LiveContender::Kernel => {
                        let addr = SocketAddrV4::new(VETH_SERVER, PORT);
                        self.server.spawn("kernel-source", move || kernel_source(addr, s2.bytes, ready, w))
                    }
                })?;
            return Ok(LiveRun { bytes: served.bytes, seconds: (served.eof - start).as_secs_f64() });
        }
        let Transfer { served, start, .. } = timed_transfer(
            client_ns,
            SocketAddrV4::new(target, PORT),
            s.bytes,
            None,
            |ready, w| match who {
                LiveContender::Utcp => self.utcp.spawn("utcp-server", move || utcp_server(s2, ready, w)),
                LiveContender::Smoltcp => {
                    self.smoltcp.spawn("smoltcp-server", move || smoltcp_server(s2, ready, w))
                }
                LiveContender::Kernel => {
                    let addr = SocketAddrV4::new(VETH_SERVER, PORT);
                    self.server.spawn("kernel-server", move || kernel_server(addr, ready, w))
                }
            },
        )?;
        Ok(LiveRun { bytes: served.bytes, seconds: (served.eof - start).as_secs_f64() })
    }
}

/// A thread of a timed transfer, ending with its result or why it failed.
pub(crate) type Worker<T> = JoinHandle<Result<T, String>>;

/// A server thread of a timed transfer.
pub(crate) type ServerThread = Worker<Served>;

/// What a timed transfer saw.
pub(crate) struct Transfer {
    /// What the server read, and when.
    pub(crate) served: Served,
    /// When the client started connecting.
    pub(crate) start: Instant,
    /// The client's congestion control.
    pub(crate) congestion_control: String,
}

/// One timed transfer: `server` starts a server thread (given the channel on which it says it
/// listens, and the run's [`Watch`]), then a kernel client in `client_ns` sends `bytes` to
/// `target`, with congestion control `cc` (or the namespace's default). Fails unless the server
/// read exactly `bytes`.
pub(crate) fn timed_transfer(
    client_ns: &Netns,
    target: SocketAddrV4,
    bytes: u64,
    cc: Option<&str>,
    server: impl FnOnce(mpsc::Sender<Unblock>, Watch) -> Result<ServerThread, String>,
) -> Result<Transfer, String> {
    let (server, unblock, watch) = start_server(server)?;
    let (w, cc) = (watch.clone(), cc.map(str::to_string));
    let target = SocketAddr::V4(target);
    let client = client_ns.spawn("kernel-client", move || kernel_client(target, bytes, cc, w))?;
    match supervise(&watch, bytes, server, client) {
        Ok((served, (start, congestion_control))) => {
            if served.bytes != bytes {
                return Err(format!("the server read {} of {bytes} bytes", served.bytes));
            }
            Ok(Transfer { served, start, congestion_control })
        }
        Err(e) => {
            watch.abort.store(true, Ordering::Relaxed);
            unblock();
            Err(e)
        }
    }
}

/// Starts `server` and waits until it listens; returns its thread, how to unblock it, and the
/// run's [`Watch`].
fn start_server<T>(
    server: impl FnOnce(mpsc::Sender<Unblock>, Watch) -> Result<Worker<T>, String>,
) -> Result<(Worker<T>, Unblock, Watch), String> {
    if interrupted() {
        return Err("interrupted".into());
    }
    let watch = Watch::default();
    let (ready_tx, ready_rx) = mpsc::channel::<Unblock>();
    let server = server(ready_tx, watch.clone())?;
    match ready_rx.recv_timeout(SETUP_LIMIT) {
        Ok(unblock) => Ok((server, unblock, watch)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(join(server, "server").err().unwrap_or_else(|| "server ended early".into()))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            watch.abort.store(true, Ordering::Relaxed);
            Err(format!("server not listening after {} s", SETUP_LIMIT.as_secs()))
        }
    }
}

/// One timed transfer the other way: `server` starts a thread that sends `bytes` to the client
/// it accepts, shuts down writing and waits for the client's end of file; a kernel client in
/// `client_ns` connects to `target` and reads to end of file. Returns when the client started
/// connecting and what it read; fails unless it read exactly `bytes`.
fn timed_download(
    client_ns: &Netns,
    target: SocketAddrV4,
    bytes: u64,
    server: impl FnOnce(mpsc::Sender<Unblock>, Watch) -> Result<Worker<()>, String>,
) -> Result<(Instant, Served), String> {
    let (server, unblock, watch) = start_server(server)?;
    let w = watch.clone();
    let target = SocketAddr::V4(target);
    let client = client_ns.spawn("kernel-reader", move || kernel_reader(target, w))?;
    match supervise(&watch, bytes, client, server) {
        Ok(((start, served), ())) if served.bytes == bytes => Ok((start, served)),
        Ok(((_, served), ())) => Err(format!("the client read {} of {bytes} bytes", served.bytes)),
        Err(e) => {
            watch.abort.store(true, Ordering::Relaxed);
            unblock();
            Err(e)
        }
    }
}

/// What a server sends once it listens: how to wake it from a blocking accept if the run fails.
pub(crate) type Unblock = Box<dyn FnOnce() + Send>;

/// Shared by a run's threads: bytes the server has read, and the flag that ends them.
#[derive(Clone, Default)]
pub(crate) struct Watch {
    received: Arc<AtomicU64>,
    abort: Arc<AtomicBool>,
}

impl Watch {
    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || interrupted()
    }

    /// The error of a thread that stopped because [`Watch::aborted`].
    fn stopped(&self) -> String {
        if interrupted() { "interrupted" } else { "aborted" }.into()
    }
}

/// What a server saw: every byte, when the last one was read, and when the end of file came.
pub(crate) struct Served {
    /// Bytes read.
    pub(crate) bytes: u64,
    /// When the read that brought the last byte returned.
    pub(crate) last: Instant,
    /// When the end of file was read.
    pub(crate) eof: Instant,
}

/// Waits for the thread `end` (whose finishing ends the transfer: the reader) and then for
/// `other`: fails on the first error of either, when no byte arrives for [`STALL_LIMIT`], or on
/// Ctrl-C. Returns both results.
fn supervise<E, O>(watch: &Watch, total: u64, end: Worker<E>, other: Worker<O>) -> Result<(E, O), String> {
    let mut other = Some(other);
    let mut other_result = None;
    let (mut seen, mut since) = (0, Instant::now());
    loop {
        if other.as_ref().is_some_and(|c| c.is_finished()) {
            other_result = Some(join(other.take().expect("checked above"), "the other side")?);
        }
        if end.is_finished() {
            let ended = join(end, "the reader")?;
            // The reader's end of file comes after the writer's last write, so the writer has
            // finished or is about to (a server waits for its client's close).
            let other = match (other_result, other) {
                (Some(r), _) => r,
                (None, Some(c)) => {
                    let deadline = Instant::now() + STALL_LIMIT;
                    while !c.is_finished() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    if !c.is_finished() {
                        return Err(format!(
                            "the writer did not finish {} s after the reader",
                            STALL_LIMIT.as_secs()
                        ));
                    }
                    join(c, "the other side")?
                }
                (None, None) => unreachable!("a joined thread set its result"),
            };
            return Ok((ended, other));
        }
        if interrupted() {
            return Err("interrupted".into());
        }
        let now_seen = watch.received.load(Ordering::Relaxed);
        if now_seen != seen {
            (seen, since) = (now_seen, Instant::now());
        } else if since.elapsed() > STALL_LIMIT {
            return Err(format!("no progress for {} s after {seen} of {total} bytes", STALL_LIMIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `stream` until end of file, counting into `watch`; a read timeout only checks whether
/// the run was aborted.
fn discard(mut stream: impl Read, watch: &Watch) -> Result<Served, String> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut last = Instant::now();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(Served { bytes: total, last, eof: Instant::now() }),
            Ok(n) => {
                last = Instant::now();
                total += n as u64;
                watch.received.store(total, Ordering::Relaxed);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if watch.aborted() {
                    return Err(watch.stopped());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read after {total} bytes: {e}")),
        }
    }
}

/// The kernel client: connects, writes `bytes` of a fixed pattern, shuts down writing. Returns
/// when it started connecting.
fn kernel_client(
    target: SocketAddr,
    bytes: u64,
    cc: Option<String>,
    watch: Watch,
) -> Result<(Instant, String), String> {
    let chunk = pattern(CHUNK);
    let start = Instant::now();
    let mut stream = std::net::TcpStream::connect_timeout(&target, CONNECT_LIMIT)
        .map_err(|e| format!("kernel client: connect to {target}: {e}"))?;
    stream.set_write_timeout(Some(STALL_LIMIT)).map_err(|e| e.to_string())?;
    // Before the first byte, so the whole transfer runs under it.
    if let Some(name) = &cc {
        set_congestion_control(&stream, name)
            .map_err(|e| format!("kernel client: congestion control {name}: {e}"))?;
    }
    let used =
        congestion_control(stream.as_raw_fd()).map_err(|e| format!("kernel client: TCP_CONGESTION: {e}"))?;
    let mut sent = 0u64;
    while sent < bytes {
        if watch.aborted() {
            return Err(watch.stopped());
        }
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        match stream.write(&chunk[..n]) {
            Ok(k) => sent += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("kernel client: write after {sent} bytes: {e}")),
        }
    }
    stream.shutdown(Shutdown::Write).map_err(|e| format!("kernel client: shutdown: {e}"))?;
    Ok((start, used))
}

/// The kernel client of a download: connects and reads to end of file (then closes). Returns
/// when it started connecting and what it read.
fn kernel_reader(target: SocketAddr, watch: Watch) -> Result<(Instant, Served), String> {
    let start = Instant::now();
    let stream = std::net::TcpStream::connect_timeout(&target, CONNECT_LIMIT)
        .map_err(|e| format!("kernel client: connect to {target}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    Ok((start, discard(stream, &watch)?))
}

/// A download's server side on an accepted `stream`: writes `bytes` of the pattern, shuts down
/// writing (`shutdown`), then reads until the client's end of file.
fn source<S>(
    stream: S,
    bytes: u64,
    watch: &Watch,
    shutdown: impl FnOnce(&S) -> io::Result<()>,
) -> Result<(), String>
where
    for<'a> &'a S: Read + Write,
{
    let chunk = pattern(CHUNK);
    let mut sent = 0u64;
    while sent < bytes {
        if watch.aborted() {
            return Err(watch.stopped());
        }
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        match (&stream).write(&chunk[..n]) {
            Ok(k) => sent += k as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("write after {sent} bytes: {e}")),
        }
    }
    shutdown(&stream).map_err(|e| format!("shutdown: {e}"))?;
    let mut buf = [0u8; 1024];
    loop {
        match (&stream).read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err("the client sent data".into()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                if watch.aborted() {
                    return Err(watch.stopped());
                }
            }
            Err(e) => return Err(format!("read after the data: {e}")),
        }
    }
}

/// Sets a socket's congestion control (`TCP_CONGESTION`). Algorithms outside
/// `net.ipv4.tcp_allowed_congestion_control` need CAP_NET_ADMIN.
fn set_congestion_control(stream: &std::net::TcpStream, name: &str) -> io::Result<()> {
    // SAFETY: the option value is `name`'s bytes with their length; the descriptor is open.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------------------------
// The servers
// ---------------------------------------------------------------------------------------------

/// utcp on a fresh TUN device `utcp0` (`Live::open` in this thread's namespace) with a listener
/// on the bench's port.
fn utcp_listen(s: LiveSettings) -> Result<(utcp::live::Live, Arc<utcp::live::TcpListener>), String> {
    use utcp::live::{DeviceSetup, Live, LiveConfig, TcpListener};
    let mut stack = utcp::Config::linux_like().with_address(UTCP_ADDR.into());
    stack.mtu = s.mtu;
    stack.tcp.recv_buffer = s.buffer;
    stack.tcp.send_buffer = s.buffer;
    let live = Live::open(LiveConfig {
        device: "utcp0".into(),
        stack,
        setup: Some(DeviceSetup { mtu: s.mtu, host_addresses: vec![(UTCP_KERNEL.into(), PREFIX)] }),
        tap: None,
        offload: s.tun_offloads,
    })
    .map_err(|e| format!("utcp: {e}"))?;
    let listener =
        Arc::new(TcpListener::bind(&live, (UTCP_ADDR, PORT)).map_err(|e| format!("utcp: bind: {e}"))?);
    Ok((live, listener))
}

/// utcp as the discard server: one connection read to end of file.
fn utcp_server(s: LiveSettings, ready: mpsc::Sender<Unblock>, watch: Watch) -> Result<Served, String> {
    let (live, listener) = utcp_listen(s)?;
    let l = listener.clone();
    let _ = ready.send(Box::new(move || l.close()));
    let (stream, _) = listener.accept().map_err(|e| format!("utcp: accept: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    let served = discard(&stream, &watch);
    tracing::debug!(driver = ?live.driver_stats(), stack = ?live.stats(), "utcp driver");
    served
}

/// smoltcp on the persistent TUN device `smol0`: an interface with its address and one TCP
/// socket listening on the bench's port.
struct Smol {
    device: smoltcp::phy::TunTapInterface,
    fd: std::os::fd::RawFd,
    iface: smoltcp::iface::Interface,
    sockets: smoltcp::iface::SocketSet<'static>,
    handle: smoltcp::iface::SocketHandle,
    epoch: Instant,
}

impl Smol {
    fn open(s: &LiveSettings) -> Result<Smol, String> {
        use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
        use smoltcp::phy::{Medium, TunTapInterface};
        use smoltcp::socket::tcp;
        use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

        let mut device = TunTapInterface::new(SMOL_DEVICE, Medium::Ip)
            .map_err(|e| format!("smoltcp: open {SMOL_DEVICE}: {e}"))?;
        let fd = device.as_raw_fd();
        let epoch = Instant::now();
        let now = smoltcp::time::Instant::from_micros(0);
        let mut iface = Interface::new(IfaceConfig::new(HardwareAddress::Ip), &mut device, now);
        iface.update_ip_addrs(|addrs| {
            let [a, b, c, d] = SMOL_ADDR.octets();
            addrs.push(IpCidr::new(IpAddress::v4(a, b, c, d), PREFIX)).expect("one address fits");
        });
        let mut sockets = SocketSet::new(vec![]);
        let handle = sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; s.buffer]),
            tcp::SocketBuffer::new(vec![0; s.buffer]),
        ));
        sockets.get_mut::<tcp::Socket>(handle).listen(PORT).map_err(|e| format!("smoltcp: listen: {e}"))?;
        Ok(Smol { device, fd, iface, sockets, handle, epoch })
    }

    /// smoltcp's clock: microseconds since the interface was made.
    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    /// Unless the run was aborted, waits on the device until smoltcp's next timeout (polled at
    /// `now`), at most 100 ms, as smoltcp's examples do.
    fn wait(&mut self, now: smoltcp::time::Instant, watch: &Watch) -> Result<(), String> {
        use smoltcp::time::Duration as SmolDuration;
        if watch.aborted() {
            return Err(watch.stopped());
        }
        let delay = self
            .iface
            .poll_delay(now, &self.sockets)
            .map_or(SmolDuration::from_millis(100), |d| d.min(SmolDuration::from_millis(100)));
        smoltcp::phy::wait(self.fd, Some(delay)).map_err(|e| format!("smoltcp: wait: {e}"))
    }
}

/// smoltcp as the discard server, with the loop of its examples: poll, read the socket dry,
/// wait on the device.
fn smoltcp_server(s: LiveSettings, ready: mpsc::Sender<Unblock>, watch: Watch) -> Result<Served, String> {
    use smoltcp::socket::tcp;

    let mut smol = Smol::open(&s)?;
    let _ = ready.send(Box::new(|| {}));
    let mut buf = vec![0u8; CHUNK];
    let (mut total, mut connected) = (0u64, false);
    loop {
        let now = smol.now();
        smol.iface.poll(now, &mut smol.device, &mut smol.sockets);
        let socket = smol.sockets.get_mut::<tcp::Socket>(smol.handle);
        while socket.can_recv() {
            match socket.recv_slice(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) => return Err(format!("smoltcp: recv after {total} bytes: {e}")),
            }
        }
        watch.received.store(total, Ordering::Relaxed);
        match socket.state() {
            tcp::State::Listen | tcp::State::SynReceived => {}
            tcp::State::Established => connected = true,
            tcp::State::CloseWait if !socket.can_recv() => {
                return Ok(Served { bytes: total, last: Instant::now(), eof: Instant::now() });
            }
            tcp::State::Closed if connected => {
                return Err(format!("smoltcp: connection closed after {total} bytes"));
            }
            _ => {}
        }
        smol.wait(now, &watch)?;
    }
}

/// A kernel listener on `addr` in the calling thread's namespace, and the one connection it
/// accepts (waiting for it only while the run is not aborted).
fn kernel_accept(
    addr: SocketAddrV4,
    ready: mpsc::Sender<Unblock>,
    watch: &Watch,
) -> Result<std::net::TcpStream, String> {
    let addr = SocketAddr::V4(addr);
    let listener = std::net::TcpListener::bind(addr).map_err(|e| format!("kernel: bind {addr}: {e}"))?;
    let _ = ready.send(Box::new(|| {}));
    // Accept only once the listener is readable, checking for an abort every 100 ms.
    while !readable(listener.as_raw_fd(), 100).map_err(|e| format!("kernel: poll: {e}"))? {
        if watch.aborted() {
            return Err(watch.stopped());
        }
    }
    let (stream, _) = listener.accept().map_err(|e| format!("kernel: accept: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// The kernel's own discard server on `addr`, in the calling thread's namespace.
pub(crate) fn kernel_server(
    addr: SocketAddrV4,
    ready: mpsc::Sender<Unblock>,
    watch: Watch,
) -> Result<Served, String> {
    let stream = kernel_accept(addr, ready, &watch)?;
    discard(stream, &watch)
}

/// utcp on a fresh TUN device `utcp0` as the source of a download.
fn utcp_source(s: LiveSettings, ready: mpsc::Sender<Unblock>, watch: Watch) -> Result<(), String> {
    let (live, listener) = utcp_listen(s)?;
    let l = listener.clone();
    let _ = ready.send(Box::new(move || l.close()));
    let (stream, _) = listener.accept().map_err(|e| format!("utcp: accept: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    let r =
        source(stream, s.bytes, &watch, |st| st.shutdown(Shutdown::Write)).map_err(|e| format!("utcp: {e}"));
    tracing::debug!(driver = ?live.driver_stats(), stack = ?live.stats(), "utcp driver");
    r
}

/// smoltcp on `smol0` as the source of a download: writes `bytes`, closes, and finishes once the
/// client's FIN is in (TIME-WAIT).
fn smoltcp_source(s: LiveSettings, ready: mpsc::Sender<Unblock>, watch: Watch) -> Result<(), String> {
    use smoltcp::socket::tcp;

    let mut smol = Smol::open(&s)?;
    let _ = ready.send(Box::new(|| {}));
    let chunk = pattern(CHUNK);
    let (mut sent, mut connected, mut closed) = (0u64, false, false);
    loop {
        let now = smol.now();
        smol.iface.poll(now, &mut smol.device, &mut smol.sockets);
        let socket = smol.sockets.get_mut::<tcp::Socket>(smol.handle);
        while socket.can_send() && sent < s.bytes {
            let n = (s.bytes - sent).min(CHUNK as u64) as usize;
            match socket.send_slice(&chunk[..n]) {
                Ok(0) => break,
                Ok(k) => sent += k as u64,
                Err(e) => return Err(format!("smoltcp: send after {sent} bytes: {e}")),
            }
        }
        if sent == s.bytes && !closed && connected {
            socket.close();
            closed = true;
        }
        match socket.state() {
            tcp::State::Established => connected = true,
            tcp::State::TimeWait => return Ok(()),
            tcp::State::Closed if connected => {
                return if closed {
                    Ok(())
                } else {
                    Err(format!("smoltcp: connection closed after {sent} bytes"))
                };
            }
            _ => {}
        }
        smol.wait(now, &watch)?;
    }
}

/// The kernel's own server on `addr` as the source of a download.
fn kernel_source(
    addr: SocketAddrV4,
    bytes: u64,
    ready: mpsc::Sender<Unblock>,
    watch: Watch,
) -> Result<(), String> {
    let stream = kernel_accept(addr, ready, &watch)?;
    stream.set_write_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    source(stream, bytes, &watch, |st| st.shutdown(Shutdown::Write)).map_err(|e| format!("kernel: {e}"))
}

/// Waits at most `timeout_ms` for `fd` to be readable.
fn readable(fd: std::os::fd::RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one live pollfd struct, its count passed with it.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    Ok(n > 0)
}
