//! The applications `utcp live` serves (echo, discard, chargen, a static-file HTTP server) and
//! the `nc`-like pump, written against two small traits so they run on any byte stream.
//!
//! Nothing here may depend on `utcp::live` or on the core: the traits are implemented for
//! `std::net` below, and `utcp::live` implements them for its own sockets. The tests run every
//! application over 127.0.0.1.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

pub mod http;
pub mod nc;
pub mod simple;

pub use http::HttpRoot;

/// A connected byte stream the apps can use: std::net::TcpStream, utcp::live::TcpStream.
pub trait Conn: io::Read + io::Write + Send + 'static {
    /// A second handle on the same connection, so one thread can read while another writes.
    fn try_clone_conn(&self) -> io::Result<Self>
    where
        Self: Sized;
    /// Send FIN: no more writes on this connection, reads still work.
    fn shutdown_write(&self) -> io::Result<()>;
    /// The address of the other end.
    fn peer(&self) -> io::Result<SocketAddr>;
}

/// Something that accepts connections.
pub trait Accept: Send + Sync + 'static {
    /// The connections it hands out.
    type Stream: Conn;
    /// Block until a connection arrives; an error after [`Stop::request`] ends [`serve`].
    fn accept_conn(&self) -> io::Result<(Self::Stream, SocketAddr)>;
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

/// A shared listener accepts too, so the caller can keep a handle and close it to end [`serve`].
impl<A: Accept> Accept for Arc<A> {
    type Stream = A::Stream;

    fn accept_conn(&self) -> io::Result<(A::Stream, SocketAddr)> {
        (**self).accept_conn()
    }
}

/// Bytes one application moved on one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes read from the peer.
    pub read: u64,
    /// Bytes written to the peer.
    pub written: u64,
}

/// What [`serve`] runs on each connection.
#[derive(Clone, Debug)]
pub enum App {
    /// RFC 862: everything read is written back.
    Echo,
    /// RFC 863: everything read is dropped.
    Discard,
    /// RFC 864: the rotating 72-column pattern, until the peer goes away.
    Chargen,
    /// Static files from one directory over HTTP/1.1.
    Http(HttpRoot),
}

impl App {
    /// A short name for logs and thread names.
    pub fn name(&self) -> &'static str {
        match self {
            App::Echo => "echo",
            App::Discard => "discard",
            App::Chargen => "chargen",
            App::Http(_) => "http",
        }
    }

    /// Run the application on one connection until it is done with it.
    pub fn run<C: Conn>(&self, conn: &mut C) -> io::Result<Transfer> {
        match self {
            App::Echo => simple::echo(conn),
            App::Discard => simple::discard(conn),
            App::Chargen => simple::chargen(conn),
            App::Http(root) => http::serve_http(conn, root),
        }
    }
}

/// Asks [`serve`] to return; cloned handles share one flag.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A handle that has not been requested yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Ask the accept loop to return at its next accept, whether that accept succeeds or fails.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Stop::request`] has been called on any clone.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What [`serve`] did before it returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Connections handed to a handler thread.
    pub accepted: u64,
    /// Connections accepted and closed at once because `max_connections` handlers were live.
    pub refused: u64,
}

/// How long the loop waits after a failed accept (say, out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accept connections and run `app` on each in its own thread, until `stop` is requested.
///
/// At most `max_connections` handlers run at once; a connection beyond that is accepted and
/// closed at once (the loop never waits, so a slow handler cannot stall accepting). The loop
/// checks `stop` after every accept: to end it, request `stop`, then close the listener (through
/// a shared `Arc`) or connect to it once. Handlers still running are left to finish on their own.
pub fn serve<L: Accept>(listener: L, app: App, stop: &Stop, max_connections: usize) -> Served {
    let app = Arc::new(app);
    let live = Arc::new(AtomicUsize::new(0));
    let mut served = Served::default();
    loop {
        let accepted = listener.accept_conn();
        if stop.is_requested() {
            tracing::info!(app = app.name(), ?served, "accept loop stopped");
            return served;
        }
        let (conn, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(app = app.name(), %error, "accept failed");
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        if live.load(Ordering::SeqCst) >= max_connections {
            served.refused += 1;
            tracing::info!(app = app.name(), %peer, max_connections, "refused: handlers full");
            drop(conn);
            continue;
        }
        let slot = LiveSlot::take(&live);
        let handler_app = Arc::clone(&app);
        let spawned = thread::Builder::new().name(app.name().into()).spawn(move || {
            let _slot = slot;
            handle(conn, peer, &handler_app);
        });
        match spawned {
            Ok(_) => served.accepted += 1,
            Err(error) => tracing::warn!(app = app.name(), %peer, %error, "no handler thread"),
        }
    }
}

/// One live handler, counted while this value exists.
struct LiveSlot(Arc<AtomicUsize>);

impl LiveSlot {
    fn take(live: &Arc<AtomicUsize>) -> LiveSlot {
        live.fetch_add(1, Ordering::SeqCst);
        LiveSlot(Arc::clone(live))
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handle<C: Conn>(mut conn: C, peer: SocketAddr, app: &App) {
    tracing::info!(app = app.name(), %peer, "connection opened");
    match app.run(&mut conn) {
        Ok(Transfer { read, written }) => {
            tracing::info!(app = app.name(), %peer, read, written, "connection closed")
        }
        Err(error) => tracing::warn!(app = app.name(), %peer, %error, "connection failed"),
    }
}

/// Fixtures shared by the apps' tests: loopback sockets with bounded waits, seeded data.
#[cfg(test)]
pub(crate) mod testing {
    use super::{serve, App, Served, Stop};
    use sha2::{Digest, Sha256};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::thread::JoinHandle;
    use std::time::Duration;

    /// Every read and write in a test gives up after this long.
    pub const WAIT: Duration = Duration::from_secs(10);

    /// A `serve` loop on 127.0.0.1 on a port of its own, stopped and joined on drop.
    pub struct Server {
        pub addr: SocketAddr,
        stop: Stop,
        loop_thread: Option<JoinHandle<Served>>,
    }

    impl Server {
        pub fn start(app: App, max_connections: usize) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            let addr = listener.local_addr().unwrap();
            let stop = Stop::new();
            let loop_stop = stop.clone();
            let loop_thread = std::thread::spawn(move || serve(listener, app, &loop_stop, max_connections));
            Server { addr, stop, loop_thread: Some(loop_thread) }
        }

        pub fn connect(&self) -> TcpStream {
            connect(self.addr)
        }

        /// Request stop, wake the accept with one connection, and return what the loop did.
        pub fn stop(mut self) -> Served {
            self.shut()
        }

        fn shut(&mut self) -> Served {
            self.stop.request();
            let _ = TcpStream::connect(self.addr);
            self.loop_thread.take().map(|t| t.join().expect("serve panicked")).unwrap_or_default()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if self.loop_thread.is_some() {
                self.shut();
            }
        }
    }

    /// A loopback connection whose reads and writes give up after [`WAIT`].
    pub fn connect(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        stream
    }

    /// `len` bytes from a splitmix64 generator seeded with `seed`.
    pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
        crate::netsim::SplitMix64::new(seed).bytes(len)
    }

    pub fn sha256(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Server, WAIT};
    use super::App;
    use std::io::{Read, Write};
    use std::time::Instant;

    #[test]
    fn serve_returns_after_stop_and_counts_connections() {
        let server = Server::start(App::Echo, 8);
        for _ in 0..3 {
            // A round trip proves the loop accepted this one before stop is requested.
            let mut conn = server.connect();
            conn.write_all(b"x").unwrap();
            let mut echoed = [0u8; 1];
            conn.read_exact(&mut echoed).unwrap();
        }
        let served = server.stop();
        assert_eq!(served.accepted, 3);
        assert_eq!(served.refused, 0);
    }

    #[test]
    fn serve_closes_connections_beyond_max_at_once() {
        let server = Server::start(App::Echo, 1);
        let mut first = server.connect();
        first.write_all(b"ping").unwrap();
        let mut echoed = [0u8; 4];
        first.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"ping");

        // The only handler is busy with `first`: the next connection is closed unread.
        let mut second = server.connect();
        let mut rest = Vec::new();
        second.read_to_end(&mut rest).expect("refused connection ends with FIN, not a timeout");
        assert!(rest.is_empty());

        // Once `first` ends its handler frees the slot; a later connection is echoed again.
        drop(first);
        let deadline = Instant::now() + WAIT;
        loop {
            let mut third = server.connect();
            let mut got = [0u8; 4];
            if third.write_all(b"pong").is_ok() && third.read_exact(&mut got).is_ok() {
                assert_eq!(&got, b"pong");
                break;
            }
            assert!(Instant::now() < deadline, "the handler slot never came back");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let served = server.stop();
        assert!(served.refused >= 1, "{served:?}");
    }
}
