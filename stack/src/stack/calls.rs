//! Socket calls on connections: `connect`, `send`, `recv`, `shutdown`, `close`, `abort`,
//! `set_option`, `readiness`.
//!
//! Every call takes `now`, the driver's current time: the stack keeps no clock of its own.
//! Calls whose effect does not depend on the time today ignore it (`let _ = now`), so that one
//! that comes to depend on it does not change the API.
//!
//! Must not depend on: clocks, I/O, threads, OS randomness.

use super::{SocketHandle, Stack, EPHEMERAL, INDEX_MASK};
use crate::socket::{
    AbortError, CloseError, ConnectError, Readiness, RecvError, SendError, SendFlags, SetOptionError,
    ShutdownError, SocketOption, SocketOptions,
};
use crate::tcp::conn::{mss_for_mtu, Connection, FourTuple, Outcome};
use crate::tcp::{CloseReason, State};
use crate::time::Instant;
use crate::wire::{FastOpen, FastOpenCookie};
use std::net::{IpAddr, SocketAddr};

impl Stack {
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
        let (local, remote) = (local.map(unmapped), unmapped(remote));
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(ConnectError::InvalidRemote);
        }
        let local_ip = match local.map(|l| l.ip()) {
            Some(ip) if !ip.is_unspecified() => {
                if !self.is_local(ip) {
                    return Err(ConnectError::AddressNotLocal);
                }
                ip
            }
            _ => *self
                .config
                .addresses
                .iter()
                .find(|a| a.is_ipv4() == remote.is_ipv4())
                .ok_or(ConnectError::NoRoute)?,
        };
        if local_ip.is_ipv4() != remote.is_ipv4() {
            return Err(ConnectError::NoRoute);
        }
        let port = match local.map(|l| l.port()) {
            Some(p) if p != 0 => p,
            _ => self.ephemeral_port(local_ip, remote).ok_or(ConnectError::PortsExhausted)?,
        };
        let tuple = FourTuple { local: SocketAddr::new(local_ip, port), remote };
        if self.by_tuple.contains_key(&tuple) {
            return Err(ConnectError::AddressInUse);
        }
        let conn = Connection::connect(&self.opening(now, tuple, options));
        let idx = self.insert(conn).ok_or(ConnectError::PortsExhausted)?;
        self.after_conn(idx, Outcome::default());
        Ok(self.handle_of(idx))
    }

    /// Opens a connection with TCP Fast Open (RFC 7413 §4.1), as Linux's `sendto(MSG_FASTOPEN)`
    /// and `TCP_FASTOPEN_CONNECT`'s first write: with a cookie cached for the server, the SYN
    /// carries it and as much of `data` as fits (the MSS cached, or ours, less 40 bytes of
    /// option room, as Linux reserves); without one, the SYN asks for a cookie and carries no
    /// data. Returns the connection and how many bytes of `data` the SYN carries (they are in
    /// its send buffer); the rest is for `send` once connected.
    pub fn connect_fast_open(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        options: SocketOptions,
        data: &[u8],
    ) -> Result<(SocketHandle, usize), ConnectError> {
        let fo = self.config.tcp.fast_open;
        if !fo.client {
            return Err(ConnectError::FastOpenDisabled);
        }
        let (local, remote) = (local.map(unmapped), unmapped(remote));
        let entry = self.fast_open_cache.get(remote.ip());
        let (option, with_data) = if fo.client_no_cookie {
            // Linux's TFO_CLIENT_NO_COOKIE: data on the SYN, no option.
            (None, true)
        } else if entry.cookie.cookie.is_valid() {
            (Some(entry.cookie), true)
        } else {
            // RFC 7413 §4.1.1: a cookie request is the option with no cookie.
            let experimental = entry.try_exp == 1;
            (Some(FastOpen { cookie: FastOpenCookie::REQUEST, experimental }), false)
        };
        let handle = self.connect_with(now, local, remote, options)?;
        let idx = handle.0 & INDEX_MASK;
        let path_mss = mss_for_mtu(self.config.mtu, remote);
        let Some(conn) = self.slots[idx as usize].conn.as_deref_mut() else { return Ok((handle, 0)) };
        let mut mss = if entry.mss > 0 { entry.mss } else { conn.our_mss() };
        if let Some(user) = options.max_segment {
            mss = mss.min(user);
        }
        // Linux (tcp_send_syn_data): MAX_TCP_OPTION_SPACE is kept free for middleboxes that add
        // options to SYNs.
        let space = if with_data { usize::from(mss.min(path_mss)).saturating_sub(40) } else { 0 };
        let n = conn.start_fast_open(option, data, space);
        Ok((handle, n))
    }

    /// The application blocks in a write until the connection in SYN-SENT is established (a
    /// blocking `send` that got [`SendError::NotConnected`]): the ACK of the SYN-ACK is then
    /// delayed so that the data carries it, as Linux does for a socket with a writer waiting.
    pub fn wait_to_send(&mut self, now: Instant, socket: SocketHandle) {
        let _ = now;
        if let Some((_, conn)) = self.conn_mut(socket) {
            if conn.state == State::SynSent {
                conn.write_waiting = true;
            }
        }
    }

    /// Whether a Fast Open connect to `server` would put data on its SYN now (a cookie is
    /// cached, or the client needs none); what `TCP_FASTOPEN_CONNECT` decides `connect` by.
    pub fn fast_open_ready(&self, server: IpAddr) -> bool {
        let fo = self.config.tcp.fast_open;
        fo.client
            && (fo.client_no_cookie
                || self.fast_open_cache.get(server.to_canonical()).cookie.cookie.is_valid())
    }

    /// Forgets every cached Fast Open cookie and MSS (as `ip tcp_metrics flush` does).
    pub fn flush_fast_open_cache(&mut self) {
        self.fast_open_cache.clear();
    }

    fn ephemeral_port(&mut self, local: IpAddr, remote: SocketAddr) -> Option<u16> {
        let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL.end() { *EPHEMERAL.start() } else { port + 1 };
            let tuple = FourTuple { local: SocketAddr::new(local, port), remote };
            if !self.by_tuple.contains_key(&tuple) && !self.listener_by_addr.contains_key(&tuple.local) {
                return Some(port);
            }
        }
        None
    }

    fn conn_mut(&mut self, socket: SocketHandle) -> Option<(u32, &mut Connection)> {
        let idx = self.index_of(socket)?;
        let slot = &mut self.slots[idx as usize];
        if slot.orphaned {
            return None;
        }
        Some((idx, slot.conn.as_deref_mut()?))
    }

    fn conn_ref(&self, socket: SocketHandle) -> Option<&Connection> {
        let idx = self.index_of(socket)?;
        let slot = &self.slots[idx as usize];
        slot.conn.as_deref().filter(|_| !slot.orphaned)
    }

    /// Queues bytes for sending; returns how many were taken (possibly fewer than given).
    pub fn send(&mut self, now: Instant, socket: SocketHandle, data: &[u8]) -> Result<usize, SendError> {
        self.send_with(now, socket, data, SendFlags::default())
    }

    /// [`send`](Self::send) with `send(2)`'s flags.
    pub fn send_with(
        &mut self,
        now: Instant,
        socket: SocketHandle,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<usize, SendError> {
        let _ = now;
        let default_lowat = self.config.tcp.notsent_lowat;
        let (idx, conn) = self.conn_mut(socket).ok_or(SendError::InvalidHandle)?;
        match conn.state {
            // RFC 7413 §4.2.2: a Fast Open server may send before the handshake completes.
            State::SynReceived if conn.fast_open.child => {}
            State::SynSent | State::SynReceived => return Err(SendError::NotConnected),
            // The error is reported once, as Linux's sock_error clears sk_err (and SO_ERROR
            // reads the same error); later writes find the connection closed: EPIPE.
            State::Closed => {
                return Err(match conn.error_pending.take() {
                    Some(CloseReason::Reset) => SendError::Reset,
                    Some(CloseReason::Refused) => SendError::Refused,
                    Some(CloseReason::TimedOut) => SendError::TimedOut,
                    _ => SendError::Closed,
                })
            }
            _ if conn.write_closed() => return Err(SendError::Closed),
            _ => {}
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = conn.send(data, flags.more, flags.eor, default_lowat);
        if n == 0 {
            return Err(SendError::WouldBlock);
        }
        self.after_conn(idx, Outcome::default());
        Ok(n)
    }

    /// Reads received bytes; `Ok(0)` means the peer finished sending and everything was read.
    pub fn recv(&mut self, now: Instant, socket: SocketHandle, buf: &mut [u8]) -> Result<usize, RecvError> {
        let (idx, conn) = self.conn_mut(socket).ok_or(RecvError::InvalidHandle)?;
        if conn.readable() > 0 {
            let n = conn.recv(now, buf);
            self.after_conn(idx, Outcome::default());
            return Ok(n);
        }
        if conn.read_closed() {
            return Ok(0);
        }
        match conn.state {
            State::SynSent | State::SynReceived => Err(RecvError::NotConnected),
            // Reported once (Linux's sock_error); then the end of the stream, as Linux's
            // tcp_done shuts the socket down both ways.
            State::Closed => match conn.error_pending.take() {
                Some(CloseReason::Reset) => Err(RecvError::Reset),
                Some(CloseReason::Refused) => Err(RecvError::Refused),
                Some(CloseReason::TimedOut) => Err(RecvError::TimedOut),
                _ => Ok(0),
            },
            _ => Err(RecvError::WouldBlock),
        }
    }

    /// Shuts down the sending direction: a FIN follows the queued data (half-close).
    pub fn shutdown(&mut self, now: Instant, socket: SocketHandle) -> Result<(), ShutdownError> {
        let _ = now;
        let (idx, conn) = self.conn_mut(socket).ok_or(ShutdownError::InvalidHandle)?;
        if matches!(conn.state, State::Closed | State::Listen) {
            return Err(ShutdownError::NotConnected);
        }
        let outcome = conn.shutdown();
        self.after_conn(idx, outcome);
        Ok(())
    }

    /// Closes the socket: the handle becomes invalid at once, the connection finishes sending and
    /// closes gracefully (a RST instead when unread data is discarded, RFC 9293 §3.10.4 / RFC 2525).
    pub fn close(&mut self, now: Instant, socket: SocketHandle) -> Result<(), CloseError> {
        let fin_timeout = self.config.tcp.fin_timeout;
        let (idx, conn) = self.conn_mut(socket).ok_or(CloseError::InvalidHandle)?;
        let outcome = if conn.readable() > 0 {
            // RFC 2525 §2.17: closing with unread data resets the connection.
            conn.abort()
        } else {
            conn.shutdown()
        };
        conn.orphan(now, fin_timeout);
        self.slots[idx as usize].orphaned = true;
        self.after_conn(idx, outcome);
        self.after_transmit(idx);
        Ok(())
    }

    /// Aborts the connection with a RST (SO_LINGER 0); the handle becomes invalid.
    pub fn abort(&mut self, now: Instant, socket: SocketHandle) -> Result<(), AbortError> {
        let _ = now;
        let (idx, conn) = self.conn_mut(socket).ok_or(AbortError::InvalidHandle)?;
        let outcome = conn.abort();
        self.slots[idx as usize].orphaned = true;
        self.after_conn(idx, outcome);
        self.after_transmit(idx);
        Ok(())
    }

    /// Sets one socket option on a connection.
    pub fn set_option(
        &mut self,
        now: Instant,
        socket: SocketHandle,
        option: SocketOption,
    ) -> Result<(), SetOptionError> {
        let _ = now;
        let (idx, conn) = self.conn_mut(socket).ok_or(SetOptionError::InvalidHandle)?;
        let mut o = conn.options;
        option.apply(&mut o);
        conn.set_options(o);
        if matches!(option, SocketOption::NoDelay(true)) || (option == SocketOption::Cork(false) && o.nodelay)
        {
            conn.push_pending();
        }
        self.after_conn(idx, Outcome::default());
        Ok(())
    }

    /// What `poll(2)` would report for the connection now (see [`Readiness`] for the rules);
    /// `None` for an invalid handle.
    pub fn readiness(&self, socket: SocketHandle) -> Option<Readiness> {
        let conn = self.conn_ref(socket)?;
        let closed = conn.state == State::Closed;
        let write_done = closed || conn.write_closed();
        let open = matches!(conn.state, State::Established | State::CloseWait)
            || (conn.state == State::SynReceived && conn.fast_open.child);
        let can_send = open && conn.writable(self.config.tcp.notsent_lowat);
        Some(Readiness {
            readable: conn.readable() > 0 || conn.read_closed() || closed,
            writable: can_send || write_done,
            error: conn.error_pending.is_some(),
            hangup: closed || (conn.read_closed() && write_done),
        })
    }

    /// Bytes the send buffer can take now; `None` for an invalid handle.
    pub fn send_capacity(&self, socket: SocketHandle) -> Option<usize> {
        self.conn_ref(socket).map(|c| c.send_capacity(self.config.tcp.notsent_lowat))
    }
}

/// The address a socket call means: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, RFC 4291
/// §2.5.5.2) is the IPv4 address, as an IPv6 socket of a dual stack talks IPv4 to it (RFC 3493
/// §3.7). Connections and listeners keep the IPv4 form.
pub(super) fn unmapped(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}
