//! `utcp live`: utcp on a TUN device serving echo, discard, chargen or a static HTTP directory,
//! or connecting out like `nc`, with the kernel on the other side of the device as its peer.

use crate::apps::{self, Accept, App, Conn, HttpRoot, Stop};
use crate::capture::calls::AppCall;
use crate::capture::{CaptureError, CaptureWriter, Format};
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use utcp::live::{
    default_host_address, Call, DeviceSetup, Direction, Live, LiveConfig, Tap, TcpListener, TcpStream,
};
use utcp::Config;

/// How long Ctrl-C waits for the connections to finish their closing handshakes.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Arguments of `utcp live`.
///
/// Needs root or CAP_NET_ADMIN (to create the TUN device and, with --configure, to configure
/// it). Run it inside a network namespace of its own, for example:
///
///   ip netns add demo
///   ip netns exec demo utcp live --addr 10.9.0.2/24 --configure http 8080 ./site
///   ip netns exec demo curl http://10.9.0.2:8080/
///   ip netns del demo
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The TUN device's name (created if missing; empty lets the kernel choose).
    #[arg(long, default_value = "utcp0")]
    tun: String,
    /// utcp's own address with its prefix length, IPv4 or IPv6 (repeatable).
    #[arg(long = "addr", value_name = "ADDR/PREFIX", required = true, value_parser = parse_cidr)]
    addrs: Vec<(IpAddr, u8)>,
    /// Bring the device up with the MTU and give the kernel's side an address in each prefix
    /// (the first that is not utcp's, unless --host-addr names one), through the `ip` command.
    #[arg(long)]
    configure: bool,
    /// The kernel side's address for --configure (repeatable, one per family).
    #[arg(long = "host-addr", value_name = "ADDR", requires = "configure")]
    host_addrs: Vec<IpAddr>,
    /// The device's and the stack's MTU.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(1280..))]
    mtu: u16,
    /// Record every datagram crossing the device (pcap, or pcapng for a .pcapng name). A pcapng
    /// recording also holds the application's calls (writes, reads, shutdowns and closes), which
    /// `utcp replay --mode strict` then makes as they were made.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Open the device with offloads: the kernel hands over TCP super-segments of up to 64 KiB
    /// with partial checksums, one read each (a --pcap recording then holds those), and utcp
    /// sends its own (TSO: full-sized segments of one connection sent together go in one write;
    /// a recording holds them as the single segments they stand for).
    #[arg(long)]
    offload: bool,
    /// At most this many connections served at once; more are accepted and closed.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// What to run.
    #[command(subcommand)]
    app: AppArgs,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum AppArgs {
    /// RFC 862: every byte received is sent back.
    Echo {
        /// The port to listen on.
        port: u16,
    },
    /// RFC 863: every byte received is dropped.
    Discard {
        /// The port to listen on.
        port: u16,
    },
    /// RFC 864: the rotating character pattern, until the peer closes.
    Chargen {
        /// The port to listen on.
        port: u16,
    },
    /// Static files from DIR over HTTP/1.1 (GET, HEAD, keep-alive); never a file outside DIR.
    Http {
        /// The port to listen on.
        port: u16,
        /// The directory served.
        dir: PathBuf,
    },
    /// Connect to HOST:PORT: stdin goes to the connection, the connection to stdout (like nc).
    Connect {
        /// The remote address and port.
        target: SocketAddr,
    },
}

fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = s.split_once('/').ok_or_else(|| format!("{s:?}: expected ADDR/PREFIX"))?;
    let addr: IpAddr = a.parse().map_err(|e| format!("{a:?}: {e}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = p.parse().map_err(|e| format!("{p:?}: {e}"))?;
    if prefix > max {
        return Err(format!("prefix /{prefix} is longer than {max}"));
    }
    Ok((addr, prefix))
}

/// Records the datagrams crossing the device into a capture file.
struct PcapTap {
    writer: Option<CaptureWriter<BufWriter<File>>>,
    failed: bool,
}

impl PcapTap {
    fn outcome(&mut self, r: Result<(), CaptureError>) {
        if let Err(e) = r {
            if !self.failed {
                tracing::error!(error = %e, "writing the capture failed; recording stops");
                self.failed = true;
            }
        }
    }
}

/// The capture's time of `at`.
fn capture_time(at: SystemTime) -> utcp::Instant {
    utcp::Instant::from_micros(at.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64)
}

impl Tap for PcapTap {
    fn packet(&mut self, at: SystemTime, _dir: Direction, datagram: &[u8]) {
        let Some(w) = self.writer.as_mut() else { return };
        let r = w.write(capture_time(at), datagram, None);
        self.outcome(r);
    }

    fn call(&mut self, at: SystemTime, local: SocketAddr, remote: SocketAddr, call: Call) {
        let Some(w) = self.writer.as_mut() else { return };
        let call = match call {
            Call::Write { asked, taken } => AppCall::Write { asked, taken },
            Call::Read(n) => AppCall::Read(n),
            Call::Shutdown => AppCall::Shutdown,
            Call::Close => AppCall::Close,
        };
        let r = w.write_call(capture_time(at), local, remote, call);
        self.outcome(r);
    }

    fn timers(&mut self, at: SystemTime) {
        let Some(w) = self.writer.as_mut() else { return };
        let r = w.write_timers(capture_time(at));
        self.outcome(r);
    }
}

impl Drop for PcapTap {
    fn drop(&mut self) {
        // Flush what is buffered and say so if that fails (a BufWriter's own drop would not).
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.finish() {
                tracing::error!(error = %e, "flushing the capture failed");
            }
        }
    }
}

impl Conn for TcpStream {
    fn try_clone_conn(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn peer(&self) -> io::Result<SocketAddr> {
        self.peer_addr()
    }
}

impl Accept for TcpListener {
    type Stream = TcpStream;
    fn accept_conn(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept()
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("utcp live: {e}");
            ExitCode::from(2)
        }
    }
}

/// What `utcp live` does once the device is up.
enum Role {
    Serve(App, u16),
    Connect(SocketAddr),
}

fn run_inner(args: Args) -> io::Result<ExitCode> {
    // Before the device exists: a bad DIR is an error without side effects.
    let role = match &args.app {
        AppArgs::Echo { port } => Role::Serve(App::Echo, *port),
        AppArgs::Discard { port } => Role::Serve(App::Discard, *port),
        AppArgs::Chargen { port } => Role::Serve(App::Chargen, *port),
        AppArgs::Http { port, dir } => Role::Serve(App::Http(HttpRoot::new(dir)?), *port),
        AppArgs::Connect { target } => Role::Connect(*target),
    };
    let mut stack = Config::linux_like();
    stack.mtu = usize::from(args.mtu);
    for (addr, _) in &args.addrs {
        stack = stack.with_address(*addr);
    }
    let setup = if args.configure {
        let mut host_addresses = Vec::new();
        for (addr, prefix) in &args.addrs {
            let host = match args.host_addrs.iter().find(|h| h.is_ipv4() == addr.is_ipv4()) {
                Some(h) => *h,
                None => default_host_address(*addr, *prefix).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{addr}/{prefix} leaves no address for the kernel's side; give --host-addr"),
                    )
                })?,
            };
            host_addresses.push((host, *prefix));
        }
        Some(DeviceSetup { mtu: usize::from(args.mtu), host_addresses })
    } else {
        None
    };
    let tap: Option<Box<dyn Tap>> = match &args.pcap {
        Some(path) => {
            let writer = CaptureWriter::create(path, Format::from_path(path)).map_err(io::Error::other)?;
            if !writer.holds_calls() {
                tracing::info!(
                    file = %path.display(),
                    "a pcap file holds the datagrams only; a .pcapng name also records the application's calls"
                );
            }
            Some(Box::new(PcapTap { writer: Some(writer), failed: false }))
        }
        None => None,
    };
    let live = Arc::new(Live::open(LiveConfig {
        device: args.tun.clone(),
        stack,
        setup,
        tap,
        offload: args.offload,
    })?);
    let stop = Stop::new();
    let code = match role {
        Role::Connect(target) => connect(&live, target, &stop)?,
        Role::Serve(app, port) => {
            let mut listeners = Vec::new();
            for (addr, _) in &args.addrs {
                listeners.push(Arc::new(TcpListener::bind(&live, (*addr, port))?));
                eprintln!("utcp live: {} on {}", app.name(), SocketAddr::new(*addr, port));
            }
            eprintln!("utcp live: device {}; Ctrl-C stops", live.device());
            serve_all(listeners, app, &stop, args.max_connections)?;
            ExitCode::SUCCESS
        }
    };
    let left = live.shutdown(CLOSE_WAIT);
    if left > 0 {
        tracing::warn!(left, "connections still closing at exit");
    }
    let (stats, driver) = (live.stats(), live.driver_stats());
    tracing::info!(
        packets_in = stats.packets_in,
        packets_out = stats.packets_out,
        retransmissions = stats.retransmissions,
        drops = stats.total_drops(),
        device_refused = driver.write_errors,
        super_segments = driver.gso.super_segments,
        segments_in_super_segments = driver.gso.segments,
        super_segments_refused = driver.gso.refused,
        "utcp live stopped"
    );
    drop(live);
    Ok(code)
}

/// Serves `app` on every listener until Ctrl-C (or SIGTERM).
fn serve_all(listeners: Vec<Arc<TcpListener>>, app: App, stop: &Stop, max: usize) -> io::Result<()> {
    let on_signal = {
        let stop = stop.clone();
        let listeners = listeners.clone();
        move || {
            stop.request();
            for l in &listeners {
                l.close();
            }
        }
    };
    ctrlc::set_handler(on_signal).map_err(io::Error::other)?;
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            let app = app.clone();
            let stop = stop.clone();
            std::thread::spawn(move || apps::serve(l, app, &stop, max))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// `connect HOST:PORT`: stdin to the connection, the connection to stdout, until both end.
fn connect(live: &Arc<Live>, target: SocketAddr, stop: &Stop) -> io::Result<ExitCode> {
    let stream = TcpStream::connect(live, target)?;
    tracing::info!(%target, "connected");
    let on_signal = {
        let stop = stop.clone();
        let stream = stream.clone();
        move || {
            stop.request();
            let _ = stream.shutdown(Shutdown::Both);
        }
    };
    ctrlc::set_handler(on_signal).map_err(io::Error::other)?;
    let moved = apps::nc::pump(stream, io::stdin(), io::stdout())?;
    tracing::info!(?moved, "connection done");
    Ok(ExitCode::SUCCESS)
}
