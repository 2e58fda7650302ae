//! The socket layer as an application sees it: the errno and `io::ErrorKind` of every error,
//! `poll(2)` readiness state by state, and socket calls that use the `now` they are given.

mod common;

use common::*;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use utcp::wire::TcpFlags;
use utcp::{
    AbortError, AcceptError, CloseError, CloseReason, ConnectError, Duration, Errno, ListenError, Readiness,
    RecvError, SendError, SetOptionError, ShutdownError, SocketOption, State, UnlistenError,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const NOT_READY: Readiness = Readiness { readable: false, writable: false, error: false, hangup: false };

// =============================================================================================
// Errors: errno, message, io::Error

/// Checks an error's errno, that its message is lower-case text, and that its `io::Error` has
/// the errno's number (on Linux) and `kind`.
#[track_caller]
fn check<E>(err: E, errno: Errno, kind: Option<ErrorKind>)
where
    E: std::error::Error + Copy + Into<io::Error>,
    E: HasErrno,
{
    assert_eq!(err.errno(), Some(errno), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.is_empty() && msg.chars().next().unwrap().is_lowercase(), "{err:?}: {msg:?}");
    let io: io::Error = err.into();
    if cfg!(target_os = "linux") {
        assert_eq!(io.raw_os_error(), Some(errno.code()), "{err:?}");
        assert_eq!(io.kind(), io::Error::from_raw_os_error(errno.code()).kind(), "{err:?}");
    }
    if let Some(kind) = kind {
        assert_eq!(io.kind(), kind, "{err:?}");
        assert_eq!(errno.kind(), kind, "{errno}");
    }
}

/// The `errno` method every error enum has, for [`check`].
trait HasErrno: std::fmt::Debug {
    fn errno(&self) -> Option<Errno>;
}

macro_rules! has_errno {
    ($($t:ty),*) => {$(impl HasErrno for $t { fn errno(&self) -> Option<Errno> { <$t>::errno(self) } })*};
}
has_errno!(
    ListenError,
    UnlistenError,
    AcceptError,
    ConnectError,
    SendError,
    RecvError,
    ShutdownError,
    CloseError,
    AbortError,
    SetOptionError
);

#[test]
fn errno_numbers_and_names_are_linuxs() {
    assert_eq!(Errno::EAGAIN.name(), "EAGAIN");
    assert_eq!(Errno::EAGAIN.code(), 11);
    let table = Errno::ALL.iter().map(|e| format!("{e} {}", e.code())).collect::<Vec<_>>().join(", ");
    assert_eq!(
        table,
        "EBADF 9, EAGAIN 11, EFAULT 14, EINVAL 22, EPIPE 32, EMSGSIZE 90, EOPNOTSUPP 95, EADDRINUSE 98, EADDRNOTAVAIL 99, \
         ENETUNREACH 101, ECONNABORTED 103, ECONNRESET 104, EISCONN 106, ENOTCONN 107, \
         ETIMEDOUT 110, ECONNREFUSED 111, EALREADY 114, EINPROGRESS 115"
    );
}

#[test]
fn errno_kind_is_what_std_gives_on_linux() {
    for &e in Errno::ALL {
        if cfg!(target_os = "linux") && e.kind() != ErrorKind::Other {
            assert_eq!(io::Error::from_raw_os_error(e.code()).kind(), e.kind(), "{e}");
        }
    }
}

#[test]
fn listen_errors_map_to_linux_errnos() {
    check(ListenError::AddressNotLocal, Errno::EADDRNOTAVAIL, Some(ErrorKind::AddrNotAvailable));
    check(ListenError::AddressInUse, Errno::EADDRINUSE, Some(ErrorKind::AddrInUse));
    check(ListenError::InvalidPort, Errno::EINVAL, Some(ErrorKind::InvalidInput));
    assert_eq!(ListenError::ALL.len(), 3);
}

#[test]
fn unlisten_errors_map_to_linux_errnos() {
    check(UnlistenError::InvalidHandle, Errno::EBADF, None);
    assert_eq!(UnlistenError::ALL.len(), 1);
}

#[test]
fn accept_errors_map_to_linux_errnos() {
    check(AcceptError::WouldBlock, Errno::EAGAIN, Some(ErrorKind::WouldBlock));
    check(AcceptError::InvalidHandle, Errno::EINVAL, Some(ErrorKind::InvalidInput));
    assert_eq!(AcceptError::ALL.len(), 2);
}

#[test]
fn connect_errors_map_to_linux_errnos() {
    check(ConnectError::AddressNotLocal, Errno::EADDRNOTAVAIL, Some(ErrorKind::AddrNotAvailable));
    check(ConnectError::NoRoute, Errno::ENETUNREACH, Some(ErrorKind::NetworkUnreachable));
    check(ConnectError::InvalidRemote, Errno::EINVAL, Some(ErrorKind::InvalidInput));
    check(ConnectError::AddressInUse, Errno::EADDRINUSE, Some(ErrorKind::AddrInUse));
    check(ConnectError::PortsExhausted, Errno::EADDRNOTAVAIL, Some(ErrorKind::AddrNotAvailable));
    check(ConnectError::FastOpenDisabled, Errno::EOPNOTSUPP, Some(ErrorKind::Unsupported));
    assert_eq!(ConnectError::ALL.len(), 6);
}

#[test]
fn send_errors_map_to_linux_errnos() {
    check(SendError::WouldBlock, Errno::EAGAIN, Some(ErrorKind::WouldBlock));
    check(SendError::NotConnected, Errno::EAGAIN, Some(ErrorKind::WouldBlock));
    check(SendError::Closed, Errno::EPIPE, Some(ErrorKind::BrokenPipe));
    check(SendError::Reset, Errno::ECONNRESET, Some(ErrorKind::ConnectionReset));
    check(SendError::Refused, Errno::ECONNREFUSED, Some(ErrorKind::ConnectionRefused));
    check(SendError::TimedOut, Errno::ETIMEDOUT, Some(ErrorKind::TimedOut));
    check(SendError::InvalidHandle, Errno::EBADF, None);
    assert_eq!(SendError::ALL.len(), 7);
    assert_eq!(SendError::WouldBlock.to_string(), "send buffer full, would block");
}

#[test]
fn recv_errors_map_to_linux_errnos() {
    check(RecvError::WouldBlock, Errno::EAGAIN, Some(ErrorKind::WouldBlock));
    check(RecvError::NotConnected, Errno::EAGAIN, Some(ErrorKind::WouldBlock));
    check(RecvError::Reset, Errno::ECONNRESET, Some(ErrorKind::ConnectionReset));
    check(RecvError::Refused, Errno::ECONNREFUSED, Some(ErrorKind::ConnectionRefused));
    check(RecvError::TimedOut, Errno::ETIMEDOUT, Some(ErrorKind::TimedOut));
    check(RecvError::InvalidHandle, Errno::EBADF, None);
    assert_eq!(RecvError::ALL.len(), 6);
}

#[test]
fn shutdown_close_abort_and_set_option_errors_map_to_linux_errnos() {
    check(ShutdownError::InvalidHandle, Errno::EBADF, None);
    check(ShutdownError::NotConnected, Errno::ENOTCONN, Some(ErrorKind::NotConnected));
    check(CloseError::InvalidHandle, Errno::EBADF, None);
    check(AbortError::InvalidHandle, Errno::EBADF, None);
    check(SetOptionError::InvalidHandle, Errno::EBADF, None);
    assert_eq!(ShutdownError::ALL.len() + CloseError::ALL.len(), 3);
    assert_eq!(AbortError::ALL.len() + SetOptionError::ALL.len(), 2);
}

#[test]
fn close_reasons_map_to_the_errno_a_later_call_reports() {
    assert_eq!(CloseReason::Normal.errno(), None);
    let table = [
        (CloseReason::Reset, Errno::ECONNRESET, ErrorKind::ConnectionReset),
        (CloseReason::Refused, Errno::ECONNREFUSED, ErrorKind::ConnectionRefused),
        (CloseReason::TimedOut, Errno::ETIMEDOUT, ErrorKind::TimedOut),
        (CloseReason::Aborted, Errno::ECONNABORTED, ErrorKind::ConnectionAborted),
    ];
    for (reason, errno, kind) in table {
        assert_eq!(reason.errno(), Some(errno), "{reason}");
        let io: io::Error = reason.into();
        assert_eq!(io.kind(), kind, "{reason}");
        if cfg!(target_os = "linux") {
            assert_eq!(io.raw_os_error(), Some(errno.code()), "{reason}");
        }
    }
    let io: io::Error = CloseReason::Normal.into();
    assert_eq!((io.kind(), io.raw_os_error()), (ErrorKind::Other, None));
}

#[test]
fn calls_on_a_closed_handle_fail_with_ebadf() {
    let mut t = T::established(config());
    let h = t.sock();
    t.abort(h).unwrap();
    assert_eq!(t.close(h), Err(CloseError::InvalidHandle));
    assert_eq!(t.abort(h), Err(AbortError::InvalidHandle));
    assert_eq!(t.shutdown(h), Err(ShutdownError::InvalidHandle));
    let opt = utcp::SocketOption::NoDelay(true);
    assert_eq!(t.set_option(h, opt), Err(SetOptionError::InvalidHandle));
    assert_eq!(t.s().readiness(h), None);
    assert_eq!(t.s().send_capacity(h), None);
    let l = t.listener.unwrap();
    t.unlisten(l).unwrap();
    assert_eq!(t.unlisten(l), Err(UnlistenError::InvalidHandle));
    assert_eq!(t.s().pending_connections(l), None);
}

#[test]
fn an_io_error_reads_like_std_nets() {
    // What an application built on std::io sees from a refused write.
    let e: io::Error = SendError::Closed.into();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    let e: io::Error = RecvError::WouldBlock.into();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
}

// =============================================================================================
// Readiness: LISTEN

#[test]
fn listener_counts_connections_waiting_for_accept() {
    // RFC 9293 §3.10.7.2: a SYN in LISTEN makes a SYN-RECEIVED connection; only the final ACK
    // (ESTABLISHED) puts it in the accept queue.
    let mut t = T::listening(config());
    let l = t.listener.unwrap();
    assert_eq!(t.s().pending_connections(l), Some(0));
    t.send(BARE_SYN);
    t.out();
    assert_eq!(t.s().pending_connections(l), Some(0), "half-open is not acceptable");
    t.send(ACK);
    assert_eq!(t.s().pending_connections(l), Some(1));
    t.accept();
    assert_eq!(t.s().pending_connections(l), Some(0));
    assert_eq!(t.accept_on(l), Err(AcceptError::WouldBlock));
}

#[test]
fn listener_option_set_after_listen_bounds_the_syn_ack_mss() {
    // Linux: TCP_MAXSEG on a listening socket is inherited by the connections it accepts, so the
    // SYN-ACK advertises at most that MSS (RFC 9293 §3.7.1: the MSS option says what we receive).
    let mut t = T::listening(config());
    let l = t.listener.unwrap();
    assert_eq!(t.set_listener_option(l, SocketOption::MaxSegment(536)), Ok(()));
    t.send(BARE_SYN);
    let out = t.out();
    assert!(out[0].contains("mss 536"), "{out:?}");
    t.unlisten(l).unwrap();
    assert_eq!(t.set_listener_option(l, SocketOption::NoDelay(true)), Err(SetOptionError::InvalidHandle));
}

// =============================================================================================
// Readiness: SYN-SENT

#[test]
fn syn_sent_is_neither_readable_nor_writable() {
    let mut t = T::connecting(config());
    t.out();
    let h = t.sock();
    assert_eq!(t.s().state(h), Some(State::SynSent));
    assert_eq!(t.s().readiness(h), Some(NOT_READY));
    assert_eq!(t.write(h, b"x"), Err(SendError::NotConnected));
}

#[test]
fn refused_connect_is_readable_writable_error_and_hangup() {
    // RFC 9293 §3.10.7.3: a RST acknowledging our SYN in SYN-SENT: "the user should be warned
    // with 'error: connection reset'"; Linux reports ECONNREFUSED.
    let mut t = T::connecting(config());
    t.out();
    t.send(In { flags: TcpFlags::RST | TcpFlags::ACK, seq: 0, ack: 1, ..ACK });
    let h = t.sock();
    let all = Readiness { readable: true, writable: true, error: true, hangup: true };
    assert_eq!(t.s().readiness(h), Some(all));
    assert_eq!(t.take_error(h), Some(CloseReason::Refused));
    assert_eq!(t.s().readiness(h), Some(Readiness { error: false, ..all }), "SO_ERROR clears it");
}

// =============================================================================================
// Readiness: ESTABLISHED and after

/// TCP_NOTSENT_LOWAT (Linux's tcp_stream_memory_free; no RFC): a write takes what the windows
/// send at once plus the mark, in whole segments; the socket is writable only while fewer than
/// half the mark's bytes are unsent, and a write with the mark reached would block.
#[test]
fn notsent_lowat_bounds_what_a_write_queues_beyond_what_goes_out_at_once() {
    let mut t = T::established(config());
    let h = t.sock();
    t.set_option(h, SocketOption::NotSentLowat(Some(1000))).unwrap();
    // The peer sent no MSS option: 536-byte segments, an initial window of ten of them.
    let data = vec![7u8; 100_000];
    assert_eq!(t.write(h, &data), Ok(6432), "5360 for the window, 1000 past it rounded up to 1072");
    assert_eq!(t.out().len(), 10);
    assert_eq!(t.s().readiness(h).map(|r| r.writable), Some(false), "1072 unsent, not fewer than 500");
    assert_eq!(t.write(h, &data), Err(SendError::WouldBlock));
    // Without the mark, the send buffer alone limits the write.
    t.set_option(h, SocketOption::NotSentLowat(None)).unwrap();
    assert_eq!(t.s().readiness(h).map(|r| r.writable), Some(true));
    assert!(t.write(h, &data).unwrap() > 6432);
}

#[test]
fn established_is_writable_and_readable_once_data_arrives() {
    let mut t = T::established(config());
    let h = t.sock();
    let writable = Readiness { writable: true, ..NOT_READY };
    assert_eq!(t.s().readiness(h), Some(writable));
    t.send(In { flags: TcpFlags::PSH | TcpFlags::ACK, data: b"hello", ..ACK });
    assert_eq!(t.s().readiness(h), Some(Readiness { readable: true, ..writable }));
    let mut buf = [0u8; 8];
    assert_eq!(t.read(h, &mut buf), Ok(5));
    assert_eq!(t.s().readiness(h), Some(writable));
}

#[test]
fn peer_fin_makes_close_wait_readable_with_end_of_stream() {
    // RFC 9293 §3.10.7.4 eighth: a FIN "signal[s] the user 'connection closing'": POLLIN, and
    // recv returns 0; CLOSE-WAIT can still send, so POLLOUT stays.
    let mut t = T::established(config());
    let h = t.sock();
    t.send(In { flags: TcpFlags::FIN | TcpFlags::ACK, ..ACK });
    assert_eq!(t.s().state(h), Some(State::CloseWait));
    assert_eq!(t.s().readiness(h), Some(Readiness { readable: true, writable: true, ..NOT_READY }));
    let mut buf = [0u8; 8];
    assert_eq!(t.read(h, &mut buf), Ok(0));
    // Both directions finished (LAST-ACK): POLLHUP, and a write fails at once (POLLOUT).
    t.shutdown(h).unwrap();
    assert_eq!(t.s().state(h), Some(State::LastAck));
    let hup = Readiness { readable: true, writable: true, error: false, hangup: true };
    assert_eq!(t.s().readiness(h), Some(hup));
    assert_eq!(t.write(h, b"x"), Err(SendError::Closed));
}

#[test]
fn rst_makes_the_socket_readable_with_error_and_hangup() {
    // RFC 9293 §3.10.7.4 second (RFC 5961 §3.2: exactly at RCV.NXT): the connection is reset,
    // "any outstanding RECEIVEs and SEND should receive 'reset' responses".
    let mut t = T::established(config());
    let h = t.sock();
    t.send(In { flags: TcpFlags::RST, ..ACK });
    let all = Readiness { readable: true, writable: true, error: true, hangup: true };
    assert_eq!(t.s().readiness(h), Some(all));
    let mut buf = [0u8; 4];
    let err = t.read(h, &mut buf).unwrap_err();
    assert_eq!(err, RecvError::Reset);
    assert_eq!(io::Error::from(err).kind(), ErrorKind::ConnectionReset);
    // Like Linux (sock_error clears sk_err), the reset is reported once; after it the socket is
    // shut down both ways: writes get EPIPE, reads the end of the stream.
    assert_eq!(t.write(h, b"x"), Err(SendError::Closed));
    assert_eq!(t.read(h, &mut buf), Ok(0));
    assert!(!t.s().readiness(h).unwrap().error);
}

#[test]
fn reset_is_reported_once_to_whichever_call_comes_first() {
    let mut t = T::established(config());
    let h = t.sock();
    t.send(In { flags: TcpFlags::RST, ..ACK });
    assert_eq!(t.write(h, b"x"), Err(SendError::Reset));
    let mut buf = [0u8; 4];
    assert_eq!(t.read(h, &mut buf), Ok(0));
    assert_eq!(t.take_error(h), None);
}

#[test]
fn full_send_buffer_is_not_writable_until_acknowledged() {
    let mut c = config();
    c.tcp.send_buffer = 1000;
    // A buffer that does not grow with the congestion window.
    c.tcp.send_buffer_max = 0;
    let mut t = T::established(c);
    let h = t.sock();
    assert_eq!(t.s().send_capacity(h), Some(1000));
    assert_eq!(t.write(h, &[0; 400]), Ok(400));
    assert_eq!(t.s().send_capacity(h), Some(600));
    assert_eq!(t.write(h, &[0; 1500]), Ok(600));
    assert_eq!(t.s().send_capacity(h), Some(0));
    assert_eq!(t.s().readiness(h), Some(NOT_READY));
    assert_eq!(t.write(h, b"x"), Err(SendError::WouldBlock));
    t.out();
    // RFC 9293 §3.10.7.4 fifth: an ACK of new data removes it from the retransmission queue.
    t.send(In { ack: 537, ..ACK });
    assert_eq!(t.s().send_capacity(h), Some(536));
    assert_eq!(t.s().readiness(h), Some(Readiness { writable: true, ..NOT_READY }));
}

// =============================================================================================
// close takes `now`

#[test]
fn orphan_in_fin_wait_2_is_dropped_fin_timeout_after_the_close_call() {
    // RFC 9293 §3.10.4 leaves FIN-WAIT-2 unbounded; Linux drops a connection with no handle
    // after tcp_fin_timeout (TcpConfig::fin_timeout), counted from the close call.
    let mut t = T::established(config());
    let timeout = t.s().config().tcp.fin_timeout;
    let h = t.sock();
    t.shutdown(h).unwrap();
    t.out();
    t.send(In { ack: 2, ..ACK });
    assert_eq!(t.s().state(h), Some(State::FinWait2));
    // Time passes with no input at all: only the `now` given to close can tell the stack.
    t.advance(Duration::from_secs(5));
    let closed_at = t.now();
    t.close(h).unwrap();
    assert_eq!(t.s().poll_timeout(), Some(closed_at + timeout));
    t.advance(timeout - ms(1));
    assert_eq!(t.s().connection_count(), 1, "still there just before the timeout");
    t.advance(ms(1));
    assert_eq!(t.now(), closed_at + timeout);
    t.out();
    assert_eq!(t.s().connection_count(), 0, "gone at the timeout");
}

// =============================================================================================
// IPv4-mapped IPv6 addresses

/// `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2) for an IPv4 address and port.
fn mapped(ip: IpAddr, port: u16) -> SocketAddr {
    let IpAddr::V4(v4) = ip else { panic!("{ip} is not IPv4") };
    SocketAddr::new(v4.to_ipv6_mapped().into(), port)
}

#[test]
fn a_listener_on_a_v4_mapped_address_takes_ipv4_syns() {
    // RFC 3493 §3.7: an IPv6 socket given an IPv4-mapped address talks IPv4 to that address, as a
    // dual-stack socket does; the wire carries IPv4 and the stack's own IPv4 address.
    let mut t = T::new(config());
    let l = t.listen(mapped(LOCAL, LOCAL_PORT), 8).expect("the mapped form of a local address is local");
    t.send(BARE_SYN);
    assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
    t.send(ACK);
    let h = t.accept_on(l).expect("the IPv4 connection is accepted");
    let info = t.s().info(h).unwrap();
    assert_eq!(info.local, SocketAddr::new(LOCAL, LOCAL_PORT));
    assert_eq!(info.remote, SocketAddr::new(REMOTE, REMOTE_PORT));
    // The same address in either form is one listener's.
    assert_eq!(t.listen(SocketAddr::new(LOCAL, LOCAL_PORT), 8), Err(ListenError::AddressInUse));
}

#[test]
fn connect_to_a_v4_mapped_address_opens_an_ipv4_connection() {
    // RFC 3493 §3.7: connecting an IPv6 socket to ::ffff:a.b.c.d sends IPv4 SYNs to a.b.c.d.
    let mut t = T::new(config());
    let now = t.now();
    let local = mapped(LOCAL, LOCAL_PORT);
    let h = t.stack().connect(now, Some(local), mapped(REMOTE, REMOTE_PORT)).expect("connects");
    let raw = t.out_raw();
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0][0] >> 4, 4, "an IPv4 datagram");
    assert_eq!(raw[0][16..20], [192, 0, 2, 1], "to the IPv4 address");
    assert_eq!(t.s().info(h).unwrap().remote, SocketAddr::new(REMOTE, REMOTE_PORT));
    // Without a local address the stack picks its IPv4 one, as for an IPv4 remote.
    let now = t.now();
    let h2 = t.stack().connect(now, None, mapped(REMOTE, REMOTE_PORT + 1)).expect("connects");
    assert_eq!(t.s().info(h2).unwrap().local.ip(), LOCAL);
}

#[test]
fn a_v4_mapped_address_that_is_not_the_stacks_is_not_local() {
    let mut t = T::new(config());
    let other: IpAddr = std::net::Ipv4Addr::new(192, 168, 0, 99).into();
    assert_eq!(t.listen(mapped(other, LOCAL_PORT), 8), Err(ListenError::AddressNotLocal));
    let now = t.now();
    let r = t.stack().connect(now, Some(mapped(other, LOCAL_PORT)), mapped(REMOTE, REMOTE_PORT));
    assert_eq!(r.err(), Some(ConnectError::AddressNotLocal));
}
