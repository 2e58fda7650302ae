//! The stack: local addresses, demultiplexing, listeners and backlog, ICMP echo, socket calls,
//! events and counters.
//!
//! Polling order, once per wake-up of the driver:
//! 1. feed every received datagram to [`Stack::handle_packet`];
//! 2. if `now >= poll_timeout()`, call [`Stack::handle_timeout`];
//! 3. make socket calls (`send`, `recv`, `accept`, ...), draining [`Stack::poll_event`];
//! 4. call [`Stack::poll_transmit`] until it returns `None`, sending each datagram;
//! 5. sleep until [`Stack::poll_timeout`] or the next packet.
//!
//! Must not depend on: clocks, I/O, threads, OS randomness.

use crate::config::Config;
use crate::tcp::{CloseReason, State};
use crate::time::{Duration, Instant};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A connection, as returned by [`Stack::connect`] and [`Stack::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle(pub(crate) u32);

/// A listening socket, as returned by [`Stack::listen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerHandle(pub(crate) u32);

impl fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}", self.0)
    }
}

impl fmt::Display for ListenerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener#{}", self.0)
    }
}

/// Something the application may want to act on, from [`Stack::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A connection opened with `connect` reached ESTABLISHED.
    Connected(SocketHandle),
    /// A listener has at least one established connection waiting in `accept`.
    Acceptable(ListenerHandle),
    /// Data, or the end of the peer's stream, can be read.
    Readable(SocketHandle),
    /// The send buffer has room again after a `send` was refused with `WouldBlock`.
    Writable(SocketHandle),
    /// The connection is over; the handle stays valid until `close` or `abort`.
    Closed(SocketHandle, CloseReason),
}

/// Per-socket options (setsockopt). Given to `listen` they are inherited by accepted connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// TCP_NODELAY: disable Nagle's algorithm.
    pub nodelay: bool,
    /// SO_KEEPALIVE with the idle time before the first probe; `None` is off.
    pub keepalive: Option<Duration>,
    /// SO_RCVBUF in bytes (decides the window scale on the SYN).
    pub recv_buffer: usize,
    /// SO_SNDBUF in bytes.
    pub send_buffer: usize,
    /// TCP_MAXSEG: an upper bound on the MSS advertised and used; `None` derives it from the MTU.
    pub max_segment: Option<u16>,
}

/// One socket option, for [`Stack::set_option`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOption {
    /// TCP_NODELAY.
    NoDelay(bool),
    /// SO_KEEPALIVE with its idle time.
    KeepAlive(Option<Duration>),
    /// SO_RCVBUF.
    RecvBuffer(usize),
    /// SO_SNDBUF.
    SendBuffer(usize),
    /// TCP_MAXSEG.
    MaxSegment(u16),
}

/// Why `listen` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenError {
    /// The address is not one of the stack's (and not unspecified).
    AddressNotLocal,
    /// Something already listens on that address and port.
    AddressInUse,
    /// Port 0 cannot be listened on.
    InvalidPort,
}

/// Why `accept` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// No established connection is waiting (EAGAIN).
    WouldBlock,
    /// The handle does not name a listener.
    InvalidHandle,
}

/// Why `connect` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// The given local address is not one of the stack's.
    AddressNotLocal,
    /// The stack has no address of the remote's family.
    NoRoute,
    /// The remote address or port is unspecified.
    InvalidRemote,
    /// The 4-tuple is already in use.
    AddressInUse,
    /// No ephemeral port is free.
    PortsExhausted,
}

/// Why `send` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The send buffer is full (EAGAIN); an [`Event::Writable`] follows when it drains.
    WouldBlock,
    /// The connection is not yet established (SYN-SENT or SYN-RECEIVED).
    NotConnected,
    /// This side has shut down writing, or the connection closed (EPIPE).
    Closed,
    /// The peer reset the connection (ECONNRESET).
    Reset,
    /// The connection timed out (ETIMEDOUT).
    TimedOut,
    /// The handle does not name a connection.
    InvalidHandle,
}

/// Why `recv` failed. End of stream is `Ok(0)`, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing to read yet (EAGAIN).
    WouldBlock,
    /// The connection is not yet established.
    NotConnected,
    /// The peer reset the connection (ECONNRESET).
    Reset,
    /// The connection attempt was refused (ECONNREFUSED).
    Refused,
    /// The connection timed out (ETIMEDOUT).
    TimedOut,
    /// The handle does not name a connection.
    InvalidHandle,
}

/// Why `shutdown`, `close`, `abort` or `set_option` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseError {
    /// The handle does not name a connection.
    InvalidHandle,
    /// The connection is not in a state where that call means anything (ENOTCONN).
    NotConnected,
}

/// Counters, readable at any time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// IP datagrams given to `handle_packet`.
    pub packets_in: u64,
    /// IP datagrams returned by `poll_transmit`.
    pub packets_out: u64,
    /// TCP segments accepted for processing.
    pub segments_in: u64,
    /// TCP segments sent.
    pub segments_out: u64,
    /// Segments retransmitted (RTO, fast retransmit, SYN and FIN retransmissions).
    pub retransmissions: u64,
    /// Retransmission timeouts that fired.
    pub timeouts: u64,
    /// Fast retransmits (three duplicate ACKs).
    pub fast_retransmits: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the rate limit.
    pub challenge_acks_suppressed: u64,
    /// RSTs sent.
    pub resets_out: u64,
    /// RSTs accepted.
    pub resets_in: u64,
    /// Checksum failures (also counted in `drops`).
    pub checksum_failures: u64,
    /// Connections established.
    pub connections_established: u64,
    /// ICMP echo requests answered.
    pub echo_replies: u64,
    /// Dropped packets and segments by reason, sorted by reason name.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
}

impl Stats {
    /// The number of drops counted under `reason` (0 if none).
    pub fn dropped(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// A broken connection invariant, found by [`Stack::check_invariants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantViolation {
    /// The connection, or `None` for a stack-wide invariant.
    pub socket: Option<SocketHandle>,
    /// What does not hold, with the values.
    pub what: String,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.socket {
            Some(s) => write!(f, "{s}: {}", self.what),
            None => write!(f, "stack: {}", self.what),
        }
    }
}

/// A snapshot of one connection's variables, for tests, reports and invariant checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// RFC 9293 state.
    pub state: State,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Initial send sequence number.
    pub iss: u32,
    /// Initial receive sequence number (0 until known).
    pub irs: u32,
    /// SND.UNA.
    pub snd_una: u32,
    /// SND.NXT.
    pub snd_nxt: u32,
    /// The peer's window, scaled, in bytes.
    pub snd_wnd: u32,
    /// RCV.NXT.
    pub rcv_nxt: u32,
    /// The window last advertised, scaled, in bytes.
    pub rcv_wnd: u32,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow-start threshold in bytes.
    pub ssthresh: u32,
    /// Effective send MSS.
    pub mss: u16,
    /// Smoothed RTT, if measured.
    pub srtt: Option<Duration>,
    /// Current RTO.
    pub rto: Duration,
    /// Bytes queued for sending (unsent and unacknowledged).
    pub send_queue: usize,
    /// Bytes ready for the application to read.
    pub recv_queue: usize,
}

/// The sans-IO TCP/IP stack.
pub struct Stack {
    _config: Config,
}

impl Stack {
    /// A stack with the given configuration and no sockets.
    pub fn new(config: Config) -> Self {
        Stack { _config: config }
    }

    /// One IP datagram in. Bad input is dropped and counted, never a panic.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        let _ = (now, packet);
        todo!()
    }

    /// Writes the next datagram to send into `buf` (at least the MTU long) and returns its
    /// length, or `None` when there is nothing to send now. Call until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let _ = (now, buf);
        todo!()
    }

    /// The next datagram to send as an owned buffer; see [`Stack::poll_transmit`].
    #[must_use]
    pub fn poll_transmit_vec(&mut self, now: Instant) -> Option<Vec<u8>> {
        let mut buf = vec![0; self._config.mtu.max(1280)];
        let n = self.poll_transmit(now, &mut buf)?;
        buf.truncate(n);
        Some(buf)
    }

    /// When `handle_timeout` must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// Runs the timers due at `now` (retransmission, delayed ACK, persist, keepalive, TIME-WAIT).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// The next event for the application, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// Listens on `local` (an address of the stack's, or unspecified for all of one family).
    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> Result<ListenerHandle, ListenError> {
        self.listen_with(local, backlog, self.default_options())
    }

    /// Listens with socket options that accepted connections inherit.
    pub fn listen_with(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        options: SocketOptions,
    ) -> Result<ListenerHandle, ListenError> {
        let _ = (local, backlog, options);
        todo!()
    }

    /// Stops listening; half-open and unaccepted connections are reset.
    pub fn unlisten(&mut self, listener: ListenerHandle) -> Result<(), AcceptError> {
        let _ = listener;
        todo!()
    }

    /// Takes the oldest established connection from the listener's accept queue.
    pub fn accept(&mut self, listener: ListenerHandle) -> Result<SocketHandle, AcceptError> {
        let _ = listener;
        todo!()
    }

    /// Opens a connection to `remote`; the SYN goes out on the next `poll_transmit`.
    /// `local` picks the address and port (port 0 or `None` for an ephemeral one).
    pub fn connect(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<SocketHandle, ConnectError> {
        self.connect_with(now, local, remote, self.default_options())
    }

    /// Opens a connection with socket options.
    pub fn connect_with(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        options: SocketOptions,
    ) -> Result<SocketHandle, ConnectError> {
        let _ = (now, local, remote, options);
        todo!()
    }

    /// Queues bytes for sending; returns how many were taken (possibly fewer than given).
    pub fn send(&mut self, socket: SocketHandle, data: &[u8]) -> Result<usize, SendError> {
        let _ = (socket, data);
        todo!()
    }

    /// Reads received bytes; `Ok(0)` means the peer finished sending and everything was read.
    pub fn recv(&mut self, socket: SocketHandle, buf: &mut [u8]) -> Result<usize, RecvError> {
        let _ = (socket, buf);
        todo!()
    }

    /// Shuts down the sending direction: a FIN follows the queued data (half-close).
    pub fn shutdown(&mut self, socket: SocketHandle) -> Result<(), CloseError> {
        let _ = socket;
        todo!()
    }

    /// Closes the socket: the handle becomes invalid at once, the connection finishes sending and
    /// closes gracefully (a RST instead when unread data is discarded, RFC 9293 §3.10.4 / RFC 2525).
    pub fn close(&mut self, socket: SocketHandle) -> Result<(), CloseError> {
        let _ = socket;
        todo!()
    }

    /// Aborts the connection with a RST (SO_LINGER 0); the handle becomes invalid.
    pub fn abort(&mut self, socket: SocketHandle) -> Result<(), CloseError> {
        let _ = socket;
        todo!()
    }

    /// Sets one socket option on a connection.
    pub fn set_option(&mut self, socket: SocketHandle, option: SocketOption) -> Result<(), CloseError> {
        let _ = (socket, option);
        todo!()
    }

    /// The socket options new sockets get from the configuration.
    pub fn default_options(&self) -> SocketOptions {
        let tcp = &self._config.tcp;
        SocketOptions {
            nodelay: !tcp.nagle,
            keepalive: tcp.keepalive,
            recv_buffer: tcp.recv_buffer,
            send_buffer: tcp.send_buffer,
            max_segment: None,
        }
    }

    /// The connection's state, or `None` for an invalid handle.
    pub fn state(&self, socket: SocketHandle) -> Option<State> {
        let _ = socket;
        todo!()
    }

    /// A snapshot of the connection's variables.
    pub fn info(&self, socket: SocketHandle) -> Option<ConnectionInfo> {
        let _ = socket;
        todo!()
    }

    /// The pending error of a connection (SO_ERROR), cleared by reading it.
    pub fn take_error(&mut self, socket: SocketHandle) -> Option<CloseReason> {
        let _ = socket;
        todo!()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        todo!()
    }

    /// Connections the stack still holds any state for (including TIME-WAIT and half-open ones).
    pub fn connection_count(&self) -> usize {
        todo!()
    }

    /// Checks the invariants of every connection (SND.UNA <= SND.NXT, nothing sent beyond the
    /// peer's window, nothing acknowledged that did not arrive, buffers within bounds, ...).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        todo!()
    }

    /// The configuration the stack was made with.
    pub fn config(&self) -> &Config {
        &self._config
    }

    /// The stack's local addresses.
    pub fn addresses(&self) -> &[IpAddr] {
        &self._config.addresses
    }
}
