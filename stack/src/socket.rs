//! The socket layer's types: one error enum per socket call, the Linux errno each error stands for
//! ([`Errno`]), the `poll(2)` readiness of a connection ([`Readiness`]) and the socket options.
//!
//! Every error converts into [`std::io::Error`]; on Linux through
//! [`std::io::Error::from_raw_os_error`], so `kind()` and `raw_os_error()` are what `std::net`
//! would give for the same situation.
//!
//! Must not depend on: the stack's internals (this module only describes; `stack.rs` decides).

use crate::tcp::CloseReason;
use crate::time::Duration;
use std::fmt;
use std::io;

// ----------------------------------------------------------------------------------------------
// Errno

/// A Linux errno: its number and its name, as `errno(3)` and packetdrill scripts spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno {
    code: i32,
    name: &'static str,
}

macro_rules! errnos {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $kind:ident;)*) => {
        impl Errno {
            $(
                $(#[$doc])*
                pub const $name: Errno = Errno { code: $code, name: stringify!($name) };
            )*

            /// Every errno this module names, in ascending order of number.
            pub const ALL: &'static [Errno] = &[$(Errno::$name),*];

            /// The [`io::ErrorKind`] `std` gives this errno on Linux (`Other` where `std` has no
            /// stable kind for it); used to build an [`io::Error`] on other systems.
            pub fn kind(self) -> io::ErrorKind {
                match self.code {
                    $($code => io::ErrorKind::$kind,)*
                    _ => io::ErrorKind::Other,
                }
            }
        }
    };
}

errnos! {
    /// Bad file descriptor: the handle names no socket.
    EBADF = 9, Other;
    /// Resource temporarily unavailable: the call would block (also EWOULDBLOCK).
    EAGAIN = 11, WouldBlock;
    /// Bad address: a call was given a buffer it cannot use (a NULL pointer).
    EFAULT = 14, Other;
    /// Invalid argument.
    EINVAL = 22, InvalidInput;
    /// Broken pipe: writing after the write side was shut down or the connection closed.
    EPIPE = 32, BrokenPipe;
    /// Message too long.
    EMSGSIZE = 90, Other;
    /// Operation not supported: `MSG_FASTOPEN` with the client side of TCP Fast Open off.
    EOPNOTSUPP = 95, Unsupported;
    /// Address already in use.
    EADDRINUSE = 98, AddrInUse;
    /// Cannot assign requested address.
    EADDRNOTAVAIL = 99, AddrNotAvailable;
    /// Network is unreachable.
    ENETUNREACH = 101, NetworkUnreachable;
    /// Software caused connection abort.
    ECONNABORTED = 103, ConnectionAborted;
    /// Connection reset by peer.
    ECONNRESET = 104, ConnectionReset;
    /// Transport endpoint is already connected.
    EISCONN = 106, Other;
    /// Transport endpoint is not connected.
    ENOTCONN = 107, NotConnected;
    /// Connection timed out.
    ETIMEDOUT = 110, TimedOut;
    /// Connection refused.
    ECONNREFUSED = 111, ConnectionRefused;
    /// Operation already in progress.
    EALREADY = 114, Other;
    /// Operation now in progress.
    EINPROGRESS = 115, Other;
}

impl Errno {
    /// The errno number on Linux (`EAGAIN` is 11).
    pub const fn code(self) -> i32 {
        self.code
    }

    /// The errno's name (`"EAGAIN"`).
    pub const fn name(self) -> &'static str {
        self.name
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// An [`io::Error`] for an error with an optional errno: on Linux the OS error itself, as
/// `std::net` would return it; elsewhere, or without an errno, `err` with the matching kind.
fn io_error<E>(errno: Option<Errno>, err: E) -> io::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    match errno {
        #[cfg(target_os = "linux")]
        Some(e) => io::Error::from_raw_os_error(e.code()),
        #[cfg(not(target_os = "linux"))]
        Some(e) => io::Error::new(e.kind(), err),
        None => io::Error::other(err),
    }
}

impl CloseReason {
    /// The error a socket call reports once the connection ended this way; `None` for a normal
    /// close.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            CloseReason::Normal => None,
            CloseReason::Reset => Some(Errno::ECONNRESET),
            CloseReason::Refused => Some(Errno::ECONNREFUSED),
            CloseReason::TimedOut => Some(Errno::ETIMEDOUT),
            CloseReason::Aborted => Some(Errno::ECONNABORTED),
        }
    }
}

impl std::error::Error for CloseReason {}

impl From<CloseReason> for io::Error {
    fn from(reason: CloseReason) -> io::Error {
        io_error(reason.errno(), reason)
    }
}

// ----------------------------------------------------------------------------------------------
// One error enum per call

/// Declares a socket call's error enum with `Display` (the message), `std::error::Error`,
/// `errno()` and `From<_> for io::Error`, from one line per variant.
macro_rules! socket_error {
    (
        $(#[$doc:meta])*
        pub enum $name:ident {
            $($(#[$vdoc:meta])* $variant:ident => $errno:ident, $msg:literal;)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// The errno Linux gives in this situation.
            pub fn errno(&self) -> Option<Errno> {
                match self {
                    $($name::$variant => Some(Errno::$errno),)*
                }
            }

            /// Every variant, for tables and tests.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($name::$variant => $msg,)*
                })
            }
        }

        impl std::error::Error for $name {}

        impl From<$name> for io::Error {
            fn from(err: $name) -> io::Error {
                io_error(err.errno(), err)
            }
        }
    };
}

socket_error! {
    /// Why [`Stack::listen`](crate::Stack::listen) failed.
    pub enum ListenError {
        /// The address is not one of the stack's (and not unspecified): EADDRNOTAVAIL, as
        /// Linux's `bind` gives.
        AddressNotLocal => EADDRNOTAVAIL, "address not local";
        /// Something already listens on that address and port: EADDRINUSE.
        AddressInUse => EADDRINUSE, "address in use";
        /// Port 0 cannot be listened on (utcp picks no port for a listener): EINVAL.
        InvalidPort => EINVAL, "cannot listen on port 0";
    }
}

socket_error! {
    /// Why [`Stack::unlisten`](crate::Stack::unlisten) failed.
    pub enum UnlistenError {
        /// The handle does not name a listener (already unlistened): EBADF, as `close` of a
        /// closed descriptor.
        InvalidHandle => EBADF, "invalid listener handle";
    }
}

socket_error! {
    /// Why [`Stack::accept`](crate::Stack::accept) failed.
    pub enum AcceptError {
        /// No established connection is waiting: EAGAIN, as a non-blocking `accept`.
        WouldBlock => EAGAIN, "no connection waiting, would block";
        /// The handle does not name a listener: EINVAL, as Linux's `accept` on a socket that is
        /// not listening.
        InvalidHandle => EINVAL, "invalid listener handle";
    }
}

socket_error! {
    /// Why [`Stack::connect`](crate::Stack::connect) failed.
    pub enum ConnectError {
        /// The given local address is not one of the stack's: EADDRNOTAVAIL.
        AddressNotLocal => EADDRNOTAVAIL, "local address not available";
        /// The stack has no address of the remote's family: ENETUNREACH.
        NoRoute => ENETUNREACH, "network unreachable";
        /// The remote address or port is unspecified: EINVAL.
        InvalidRemote => EINVAL, "invalid remote address";
        /// The 4-tuple is already in use: EADDRINUSE.
        AddressInUse => EADDRINUSE, "address in use";
        /// No ephemeral port is free: EADDRNOTAVAIL, as Linux's `connect` when the ephemeral
        /// range is exhausted.
        PortsExhausted => EADDRNOTAVAIL, "no ephemeral port free";
        /// A Fast Open connect with the client side of TCP Fast Open off
        /// (`FastOpenConfig::client`): EOPNOTSUPP, as Linux's `sendto(MSG_FASTOPEN)`.
        FastOpenDisabled => EOPNOTSUPP, "fast open is off on the client side";
    }
}

socket_error! {
    /// Why [`Stack::send`](crate::Stack::send) failed.
    pub enum SendError {
        /// The send buffer is full: EAGAIN; an [`Event::Writable`](crate::Event::Writable)
        /// follows when it drains.
        WouldBlock => EAGAIN, "send buffer full, would block";
        /// The connection is not yet established (SYN-SENT or SYN-RECEIVED): EAGAIN, as a
        /// non-blocking `send` on Linux, which waits for the handshake (`sk_stream_wait_connect`).
        NotConnected => EAGAIN, "connection not yet established, would block";
        /// This side has shut down writing, or the connection closed: EPIPE.
        Closed => EPIPE, "write side closed";
        /// The peer reset the connection: ECONNRESET.
        Reset => ECONNRESET, "connection reset by peer";
        /// The peer refused the connection (a RST in SYN-SENT): ECONNREFUSED.
        Refused => ECONNREFUSED, "connection refused";
        /// The connection timed out: ETIMEDOUT.
        TimedOut => ETIMEDOUT, "connection timed out";
        /// The handle does not name a connection: EBADF.
        InvalidHandle => EBADF, "invalid socket handle";
    }
}

socket_error! {
    /// Why [`Stack::recv`](crate::Stack::recv) failed. End of stream is `Ok(0)`, not an error.
    pub enum RecvError {
        /// Nothing to read yet: EAGAIN.
        WouldBlock => EAGAIN, "nothing to read, would block";
        /// The connection is not yet established: EAGAIN, as a non-blocking `recv` in SYN-SENT
        /// on Linux.
        NotConnected => EAGAIN, "connection not yet established, would block";
        /// The peer reset the connection: ECONNRESET.
        Reset => ECONNRESET, "connection reset by peer";
        /// The connection attempt was refused: ECONNREFUSED.
        Refused => ECONNREFUSED, "connection refused";
        /// The connection timed out: ETIMEDOUT.
        TimedOut => ETIMEDOUT, "connection timed out";
        /// The handle does not name a connection: EBADF.
        InvalidHandle => EBADF, "invalid socket handle";
    }
}

socket_error! {
    /// Why [`Stack::shutdown`](crate::Stack::shutdown) failed.
    pub enum ShutdownError {
        /// The handle does not name a connection: EBADF.
        InvalidHandle => EBADF, "invalid socket handle";
        /// The connection is CLOSED: ENOTCONN, as Linux's `shutdown` on an unconnected socket.
        NotConnected => ENOTCONN, "socket not connected";
    }
}

socket_error! {
    /// Why [`Stack::close`](crate::Stack::close) failed.
    pub enum CloseError {
        /// The handle does not name a connection (closed already): EBADF.
        InvalidHandle => EBADF, "invalid socket handle";
    }
}

socket_error! {
    /// Why [`Stack::abort`](crate::Stack::abort) failed.
    pub enum AbortError {
        /// The handle does not name a connection (closed already): EBADF.
        InvalidHandle => EBADF, "invalid socket handle";
    }
}

socket_error! {
    /// Why [`Stack::set_option`](crate::Stack::set_option) failed.
    pub enum SetOptionError {
        /// The handle does not name a connection: EBADF, as `setsockopt` on a closed descriptor.
        InvalidHandle => EBADF, "invalid socket handle";
    }
}

// ----------------------------------------------------------------------------------------------
// Readiness

/// What `poll(2)` would report for a connection now, from [`Stack::readiness`](crate::Stack::readiness).
/// The rules are Linux's `tcp_poll`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Readiness {
    /// POLLIN: `recv` returns at once: data to read, the end of the stream (`Ok(0)`), or an
    /// error of a connection that is CLOSED.
    pub readable: bool,
    /// POLLOUT: ESTABLISHED or CLOSE-WAIT with room in the send buffer, or the write side is
    /// finished (shut down or CLOSED), so that `send` returns at once with an error.
    pub writable: bool,
    /// POLLERR: an error is pending (what `SO_ERROR` reads and clears, see
    /// [`Stack::take_error`](crate::Stack::take_error)).
    pub error: bool,
    /// POLLHUP: both directions are finished (our FIN queued and the peer's received), or the
    /// connection is CLOSED.
    pub hangup: bool,
}

// ----------------------------------------------------------------------------------------------
// Options

/// Per-socket options (setsockopt). Given to `listen` they are inherited by accepted connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// TCP_NODELAY: disable Nagle's algorithm.
    pub nodelay: bool,
    /// SO_KEEPALIVE with the idle time before the first probe; `None` is off.
    pub keepalive: Option<Duration>,
    /// SO_RCVBUF in bytes: the receive buffer a connection starts with.
    pub recv_buffer: usize,
    /// SO_SNDBUF in bytes: the send buffer a connection starts with.
    pub send_buffer: usize,
    /// How far autotuning may grow the receive buffer (`TcpConfig::recv_buffer_max`); the window
    /// scale on the SYN is chosen to advertise it. Setting SO_RCVBUF sets both, which turns
    /// autotuning off for the socket, as in Linux.
    pub recv_buffer_max: usize,
    /// How far the send buffer may grow with the congestion window (`TcpConfig::send_buffer_max`);
    /// setting SO_SNDBUF sets both.
    pub send_buffer_max: usize,
    /// TCP_MAXSEG: an upper bound on the MSS advertised and used; `None` derives it from the MTU.
    pub max_segment: Option<u16>,
    /// TCP_FASTOPEN on a listener: how many connections opened by data on a SYN may wait for
    /// their handshake to complete (RFC 7413 §5.1); 0 is no Fast Open on this listener.
    pub fast_open_queue: usize,
    /// TCP_FASTOPEN_CONNECT: `connect` sends no SYN when a cookie is cached; the first write
    /// opens the connection with its data on the SYN (kept by the socket layer above the core).
    pub fast_open_connect: bool,
    /// TCP_FASTOPEN_KEY on a listener: its own key for Fast Open cookies instead of
    /// `Config::fast_open_key`.
    pub fast_open_key: Option<[u8; 16]>,
    /// TCP_SYNCNT: retransmissions of the SYN before the attempt fails, instead of
    /// `TcpConfig::syn_retries`.
    pub syn_retries: Option<u32>,
    /// TCP_CORK: short segments wait for more data until the option is cleared (or the probe
    /// timer sends them when nothing is in flight, as in Linux); stronger than TCP_NODELAY.
    pub cork: bool,
    /// TCP_USER_TIMEOUT (RFC 5482 §1, RFC 9293 §3.10.1 "USER TIMEOUT"): how long data may go
    /// unacknowledged, counted as Linux does from the first retransmission, or behind a zero
    /// window from the first window probe, before the connection is aborted with ETIMEDOUT. It
    /// replaces the retransmission count (`TcpConfig::max_retries`) of a synchronized connection
    /// and the keepalive probe count. `None` keeps those.
    pub user_timeout: Option<Duration>,
    /// TCP_NOTSENT_LOWAT: at most about this many bytes queued and not yet sent; a write takes
    /// no more once that many wait (it takes whole segments, so it may pass the mark by less
    /// than one), and the socket polls writable only while fewer than half that many wait, as
    /// in Linux. `None` uses `TcpConfig::notsent_lowat`.
    pub notsent_lowat: Option<u32>,
}

impl SocketOptions {
    /// The options a new socket gets from the TCP knobs.
    pub fn from_config(tcp: &crate::config::TcpConfig) -> Self {
        SocketOptions {
            nodelay: !tcp.nagle,
            keepalive: tcp.keepalive,
            recv_buffer: tcp.recv_buffer,
            send_buffer: tcp.send_buffer,
            recv_buffer_max: tcp.recv_buffer_max.max(tcp.recv_buffer),
            send_buffer_max: tcp.send_buffer_max.max(tcp.send_buffer),
            max_segment: None,
            fast_open_queue: 0,
            fast_open_connect: false,
            fast_open_key: None,
            syn_retries: None,
            cork: false,
            user_timeout: None,
            notsent_lowat: None,
        }
    }
}

/// The flags of `send(2)` that change what the stack does, for
/// [`Stack::send_with`](crate::Stack::send_with).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendFlags {
    /// `MSG_MORE`: more data follows, so a short segment at the tail waits for it (until an ACK
    /// arrives, the application writes without it, or the probe timer sends it) and carries no
    /// PSH.
    pub more: bool,
    /// `MSG_EOR` (Linux): the write, once taken whole, ends a record: no segment carries both
    /// its last byte and a later write's first, sent first or again, and the segment that ends
    /// it carries PSH.
    pub eor: bool,
}

/// One socket option, for [`Stack::set_option`](crate::Stack::set_option).
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
    /// TCP_FASTOPEN (the queue length, on a listener).
    FastOpenQueue(usize),
    /// TCP_FASTOPEN_CONNECT.
    FastOpenConnect(bool),
    /// TCP_FASTOPEN_KEY (on a listener).
    FastOpenKey([u8; 16]),
    /// TCP_SYNCNT.
    SynRetries(u32),
    /// TCP_CORK.
    Cork(bool),
    /// TCP_USER_TIMEOUT; `None` (the value 0) turns it off.
    UserTimeout(Option<Duration>),
    /// TCP_NOTSENT_LOWAT; `None` (the value 0) falls back to `TcpConfig::notsent_lowat`.
    NotSentLowat(Option<u32>),
}

impl SocketOption {
    /// Sets this option in `options`.
    pub fn apply(self, options: &mut SocketOptions) {
        match self {
            SocketOption::NoDelay(v) => options.nodelay = v,
            SocketOption::KeepAlive(v) => options.keepalive = v,
            // Setting a buffer fixes it: no autotuning past it (Linux's SOCK_RCVBUF_LOCK).
            SocketOption::RecvBuffer(v) => {
                options.recv_buffer = v;
                options.recv_buffer_max = v;
            }
            SocketOption::SendBuffer(v) => {
                options.send_buffer = v;
                options.send_buffer_max = v;
            }
            SocketOption::MaxSegment(v) => options.max_segment = Some(v),
            SocketOption::FastOpenQueue(v) => options.fast_open_queue = v,
            SocketOption::FastOpenConnect(v) => options.fast_open_connect = v,
            SocketOption::FastOpenKey(k) => options.fast_open_key = Some(k),
            SocketOption::SynRetries(n) => options.syn_retries = Some(n),
            SocketOption::Cork(v) => options.cork = v,
            SocketOption::UserTimeout(v) => options.user_timeout = v,
            SocketOption::NotSentLowat(v) => options.notsent_lowat = v,
        }
    }
}
