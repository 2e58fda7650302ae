//! Blocking sockets on a [`Live`] stack, shaped like `std::net`: [`TcpListener`] and
//! [`TcpStream`], with `std::io::Read`/`Write` (also on `&TcpStream`), usable from several
//! threads. A blocked call waits on the driver's condition variable, which the event loop
//! notifies whenever the stack reports an event; every wait is bounded by the socket's timeout
//! when one is set.

use super::{Call, Live, Shared};
use crate::stack::{ListenerHandle, SocketHandle};
use crate::tcp::State;
use crate::SocketOption;
use crate::{AcceptError, RecvError, SendError};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

pub(super) fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the live driver has stopped")
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "the socket's timeout passed")
}

fn deadline(timeout: Option<Duration>) -> Option<StdInstant> {
    timeout.map(|t| StdInstant::now() + t)
}

fn first_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address given"))
}

/// A listening socket on a live stack, like `std::net::TcpListener`.
pub struct TcpListener {
    shared: Arc<Shared>,
    handle: ListenerHandle,
    local: SocketAddr,
    closed: AtomicBool,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener").field("local", &self.local).finish()
    }
}

impl TcpListener {
    /// Listens on `addr` (one of the stack's addresses, or unspecified) with a backlog of 128.
    pub fn bind(live: &Live, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let local = first_addr(addr)?;
        let shared = live.shared().clone();
        let handle = shared.call(|stack, now| stack.listen(now, local, 128)).map_err(io::Error::from)?;
        Ok(TcpListener { shared, handle, local, closed: AtomicBool::new(false) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Waits for the next established connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, peer) = self.shared.block(None, timed_out, |stack, now| {
            if self.closed.load(Ordering::Relaxed) {
                return Some(Err(io::Error::new(io::ErrorKind::NotConnected, "the listener was closed")));
            }
            match stack.accept(now, self.handle) {
                Ok(socket) => Some(stack.info(socket).map(|i| (socket, i.remote)).ok_or_else(stopped)),
                Err(AcceptError::WouldBlock) => None,
                Err(e) => Some(Err(e.into())),
            }
        })?;
        self.shared.register(socket);
        Ok((TcpStream::new(self.shared.clone(), socket), peer))
    }

    /// Stops listening and wakes every thread blocked in `accept` (which then fails).
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            self.shared.call(|stack, now| {
                let _ = stack.unlisten(now, self.handle);
            });
            self.shared.changed.notify_all();
        }
    }

    /// An iterator over incoming connections, like `std::net::TcpListener::incoming`.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.close();
    }
}

/// The state behind one connection, shared by clones of a [`TcpStream`]; closing happens when
/// the last clone goes.
struct StreamState {
    shared: Arc<Shared>,
    handle: SocketHandle,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    read_shut: AtomicBool,
    nodelay: AtomicBool,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // RFC 9293 §3.6 and §3.10.4: closing sends a FIN after the queued data, or a RST when
        // unread data is discarded (the core decides which).
        let h = self.handle;
        self.shared.unregister(h);
        self.shared.call_on(
            h,
            |stack, now| {
                let _ = stack.close(now, h);
            },
            |_| Some(Call::Close),
        );
    }
}

/// A connection on a live stack, like `std::net::TcpStream`.
#[derive(Clone)]
pub struct TcpStream {
    state: Arc<StreamState>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream").field("socket", &self.state.handle).finish()
    }
}

impl TcpStream {
    fn new(shared: Arc<Shared>, handle: SocketHandle) -> TcpStream {
        let nodelay = shared.lock().host.stack().default_options().nodelay;
        TcpStream {
            state: Arc::new(StreamState {
                shared,
                handle,
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
                read_shut: AtomicBool::new(false),
                nodelay: AtomicBool::new(nodelay),
            }),
        }
    }

    /// Opens a connection to `addr` and waits until it is established (or refused, or the SYN
    /// retransmissions time out).
    pub fn connect(live: &Live, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(live, first_addr(addr)?, None)
    }

    /// Like [`TcpStream::connect`], giving up after `timeout`.
    pub fn connect_timeout(live: &Live, addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        Self::connect_inner(live, *addr, Some(timeout))
    }

    fn connect_inner(live: &Live, remote: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let shared = live.shared().clone();
        let until = deadline(timeout);
        let socket = shared.call(|stack, now| stack.connect(now, None, remote)).map_err(io::Error::from)?;
        shared.register(socket);
        // From here on the stream owns the socket: an early return closes it.
        let stream = TcpStream::new(shared.clone(), socket);
        let connect_timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connection timed out");
        shared.block(until, connect_timed_out, |stack, _now| match stack.state(socket) {
            Some(State::SynSent | State::SynReceived) => None,
            Some(State::Closed) | None => Some(Err(match stack.take_error(socket) {
                Some(r) => r.into(),
                None => io::Error::from(io::ErrorKind::ConnectionRefused),
            })),
            Some(_) => Some(Ok(())),
        })?;
        Ok(stream)
    }

    fn handle(&self) -> SocketHandle {
        self.state.handle
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.state.shared
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared().lock().host.stack().info(self.handle()).map(|i| i.remote).ok_or_else(stopped)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared().lock().host.stack().info(self.handle()).map(|i| i.local).ok_or_else(stopped)
    }

    /// Shuts down reading (reads return 0 from now on), writing (a FIN after the queued data),
    /// or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.state.read_shut.store(true, Ordering::Relaxed);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let h = self.handle();
            let call = |r: &Result<(), _>| r.is_ok().then_some(Call::Shutdown);
            self.shared().call_on(h, |stack, now| stack.shutdown(now, h), call).map_err(io::Error::from)?;
        }
        self.shared().changed.notify_all();
        Ok(())
    }

    /// Sets the read timeout (`None`: wait for ever); a zero duration is refused, as in std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "zero timeout"));
        }
        *self.state.read_timeout.lock().unwrap_or_else(|p| p.into_inner()) = timeout;
        Ok(())
    }

    /// Sets the write timeout (`None`: wait for ever); a zero duration is refused, as in std.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "zero timeout"));
        }
        *self.state.write_timeout.lock().unwrap_or_else(|p| p.into_inner()) = timeout;
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(*self.state.read_timeout.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(*self.state.write_timeout.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// TCP_NODELAY: turns Nagle's algorithm (RFC 896) off or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let h = self.handle();
        self.shared()
            .call(|stack, now| stack.set_option(now, h, SocketOption::NoDelay(nodelay)))
            .map_err(io::Error::from)?;
        self.state.nodelay.store(nodelay, Ordering::Relaxed);
        Ok(())
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.state.nodelay.load(Ordering::Relaxed))
    }

    /// Another handle to the same connection; the connection closes when the last one drops.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(self.clone())
    }

    /// The pending error (SO_ERROR), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let h = self.handle();
        Ok(self.shared().lock().host.stack_mut().take_error(h).map(io::Error::from))
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        let shut = &self.state.read_shut;
        if buf.is_empty() || shut.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let until = deadline(*self.state.read_timeout.lock().unwrap_or_else(|p| p.into_inner()));
        let h = self.handle();
        let call = |r: &Option<io::Result<usize>>| match r {
            Some(Ok(n)) if *n > 0 => Some(Call::Read(*n)),
            _ => None,
        };
        self.shared().block_tapped(until, timed_out, Some((h, &call)), |stack, now| {
            match stack.recv(now, h, buf) {
                Ok(n) => Some(Ok(n)),
                Err(RecvError::WouldBlock | RecvError::NotConnected) if shut.load(Ordering::Relaxed) => {
                    Some(Ok(0))
                }
                Err(RecvError::WouldBlock | RecvError::NotConnected) => None,
                Err(e) => Some(Err(e.into())),
            }
        })
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let until = deadline(*self.state.write_timeout.lock().unwrap_or_else(|p| p.into_inner()));
        let h = self.handle();
        let call = |r: &Option<io::Result<usize>>| match r {
            Some(Ok(n)) if *n > 0 => Some(Call::Write { asked: buf.len(), taken: *n }),
            _ => None,
        };
        self.shared().block_tapped(until, timed_out, Some((h, &call)), |stack, now| {
            match stack.send(now, h, buf) {
                Ok(n) => Some(Ok(n)),
                Err(SendError::WouldBlock | SendError::NotConnected) => None,
                Err(e) => Some(Err(e.into())),
            }
        })
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
