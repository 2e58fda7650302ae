//! Listeners: `listen`, `unlisten`, `accept`, the accept and SYN queues, and segments that
//! reach a listening socket (RFC 9293 §3.10.7.2).
//!
//! Must not depend on: clocks, I/O, threads, OS randomness.

use super::{cookie, fastopen, Event, Listener, ListenerHandle, SocketHandle, Stack, INDEX_MASK};
use crate::socket::{AcceptError, ListenError, SetOptionError, SocketOption, SocketOptions, UnlistenError};
use crate::stats::DropReason;
use crate::tcp::conn::{mss_for_mtu, Connection, FourTuple, Outcome};
use crate::tcp::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::{self, IpRepr, TcpFlags, TcpOptions, TcpRepr, Transport, IPPROTO_TCP};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

impl Stack {
    pub(super) fn find_listener(&self, local: SocketAddr) -> Option<u32> {
        if let Some(&l) = self.listener_by_addr.get(&local) {
            return Some(l);
        }
        let any: IpAddr =
            if local.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
        self.listener_by_addr.get(&SocketAddr::new(any, local.port())).copied()
    }

    /// RFC 9293 §3.10.7.2: LISTEN.
    pub(super) fn listen_segment(&mut self, now: Instant, lidx: u32, tuple: FourTuple, seg: &TcpRepr<'_>) {
        self.stats.segments_in += 1;
        let f = seg.flags;
        if f.rst() {
            self.count_drop(DropReason::RstToListener);
            return;
        }
        let ip = IpRepr {
            src: tuple.remote.ip(),
            dst: tuple.local.ip(),
            protocol: IPPROTO_TCP,
            hop_limit: 64,
            ecn: 0,
            payload_len: 0,
        };
        if f.ack() {
            if !f.syn() && self.accept_cookie(now, lidx, tuple, seg) {
                return;
            }
            // Any acknowledgment is bad if it arrives on a connection still in LISTEN.
            self.count_drop(DropReason::AckToListener);
            self.reset_for(&ip, seg);
            return;
        }
        if !f.syn() {
            self.count_drop(DropReason::NoSynToListener);
            return;
        }
        let Some(listener) = self.listeners[lidx as usize].as_ref() else { return };
        // Like Linux (sk_acceptq_is_full), the queue is full only beyond the backlog.
        if listener.accept_queue.len() > listener.backlog {
            // Like Linux: a full accept queue drops the SYN; the peer retries.
            self.count_drop(DropReason::AcceptQueueFull);
            return;
        }
        if listener.half_open >= self.config.tcp.syn_backlog {
            // A SYN flood must not grow memory without bound: RFC 4987 §3.6, answer with a SYN
            // cookie and keep no state.
            self.send_cookie(now, lidx, tuple, seg);
            return;
        }
        let options = listener.options;
        // RFC 7413 §4.2: a Fast Open listener (TCP_FASTOPEN, or every listener with Linux's
        // 0x400) answers the cookie option, and takes the data of a SYN with a valid cookie.
        let queue = match options.fast_open_queue {
            0 if self.config.tcp.fast_open.server_all_listeners => listener.backlog,
            q => q,
        };
        let key = options.fast_open_key.unwrap_or(self.config.fast_open_key);
        let valid = fastopen::cookie(&key, tuple.remote.ip(), tuple.local.ip());
        let fo = fastopen::server_decision(
            self.config.tcp.fast_open,
            queue,
            seg.options.fast_open,
            !seg.payload.is_empty(),
            valid,
        );
        let opening = self.opening(now, tuple, options);
        let conn = Connection::accept_syn_fast_open(&opening, seg, fo.accept_data, fo.reply);
        if let Some(l) = self.listeners[lidx as usize].as_mut() {
            l.half_open += 1;
        }
        let Some(idx) = self.insert(conn) else {
            self.count_drop(DropReason::TooManyConnections);
            return;
        };
        // Orphaned until `accept` hands it out.
        let slot = &mut self.slots[idx as usize];
        slot.listener = Some(lidx);
        slot.orphaned = true;
        // RFC 7413 §4.2.2: a connection opened by a valid cookie goes to `accept` at once.
        self.after_conn(idx, Outcome { accepted: fo.accept_data, ..Outcome::default() });
    }

    /// RFC 4987 §3.6: the SYN-ACK of a full SYN queue, its ISN a cookie, its only option the MSS.
    fn send_cookie(&mut self, now: Instant, lidx: u32, tuple: FourTuple, seg: &TcpRepr<'_>) {
        let Some(listener) = self.listeners[lidx as usize].as_mut() else { return };
        listener.cookies_until = Some(now + Duration::from_micros(2 * cookie::PERIOD_MICROS));
        let peer_mss = seg.options.mss.unwrap_or(if tuple.remote.is_ipv4() { 536 } else { 1220 });
        let iss = cookie::make(&self.config.isn_secret, now, tuple, seg.seq, peer_mss);
        let mut our_mss = mss_for_mtu(self.config.mtu, tuple.remote);
        if let Some(m) = listener.options.max_segment {
            our_mss = our_mss.min(m.max(64));
        }
        let syn_ack = TcpRepr {
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            seq: iss,
            ack: seg.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            // No window scale in a cookie SYN-ACK, so the window is the unscaled field.
            window: self.config.tcp.recv_buffer.min(65535) as u16,
            urgent: 0,
            options: TcpOptions { mss: Some(our_mss), ..TcpOptions::default() },
            payload: &[],
        };
        let ip = IpRepr {
            src: tuple.local.ip(),
            dst: tuple.remote.ip(),
            protocol: IPPROTO_TCP,
            hop_limit: self.config.hop_limit,
            ecn: 0,
            payload_len: 0,
        };
        let t = Transport::Tcp(syn_ack);
        let mut buf = vec![0; wire::datagram_len(&ip, &t)];
        if wire::emit_datagram(&ip, &t, &mut buf).is_ok() && self.push_outbox(buf) {
            self.cookies.sent += 1;
            self.stats.segments_out += 1;
        }
    }

    /// RFC 4987 §3.6: an ACK that reached the listener and carries a good cookie becomes a
    /// connection, as if its SYN had been queued: SYN-RECEIVED from the SYN the cookie stands
    /// for, then this ACK. Returns false (nothing done) when it is no cookie of ours.
    fn accept_cookie(&mut self, now: Instant, lidx: u32, tuple: FourTuple, seg: &TcpRepr<'_>) -> bool {
        let Some(listener) = self.listeners[lidx as usize].as_ref() else { return false };
        if listener.cookies_until.is_none_or(|until| now > until) {
            return false;
        }
        // Like Linux: a full accept queue drops the ACK; the peer retransmits it.
        if listener.accept_queue.len() > listener.backlog {
            return false;
        }
        let options = listener.options;
        let Some(mss) = cookie::check(&self.config.isn_secret, now, tuple, seg.seq, seg.ack) else {
            return false;
        };
        // The SYN the cookie stands for: its sequence number, the MSS it carried, no other options.
        let syn = TcpRepr {
            src_port: seg.src_port,
            dst_port: seg.dst_port,
            seq: seg.seq - 1,
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: seg.window,
            urgent: 0,
            options: TcpOptions { mss: Some(mss), ..TcpOptions::default() },
            payload: &[],
        };
        let mut opening = self.opening(now, tuple, options);
        opening.iss = SeqNum(seg.ack.raw().wrapping_sub(1));
        let conn = Connection::accept_syn(&opening, &syn);
        let Some(idx) = self.insert(conn) else {
            self.count_drop(DropReason::TooManyConnections);
            return true;
        };
        if let Some(l) = self.listeners[lidx as usize].as_mut() {
            l.half_open += 1;
        }
        let slot = &mut self.slots[idx as usize];
        slot.listener = Some(lidx);
        slot.orphaned = true;
        self.cookies.accepted += 1;
        self.with_conn(idx, |conn, ctx| {
            // The SYN-ACK already went out, statelessly: the connection makes it again, into
            // nothing, so that SND.NXT is past the SYN as the peer's ACK says.
            let _ = conn.poll_transmit(now, ctx);
            conn.on_segment(now, seg, ctx);
        });
        true
    }

    /// Listens on `local` (an address of the stack's, or unspecified for all of one family).
    pub fn listen(
        &mut self,
        now: Instant,
        local: SocketAddr,
        backlog: usize,
    ) -> Result<ListenerHandle, ListenError> {
        self.listen_with(now, local, backlog, self.default_options())
    }

    /// Listens with socket options that accepted connections inherit.
    pub fn listen_with(
        &mut self,
        now: Instant,
        local: SocketAddr,
        backlog: usize,
        options: SocketOptions,
    ) -> Result<ListenerHandle, ListenError> {
        let _ = now;
        let local = super::calls::unmapped(local);
        if local.port() == 0 {
            return Err(ListenError::InvalidPort);
        }
        if !local.ip().is_unspecified() && !self.is_local(local.ip()) {
            return Err(ListenError::AddressNotLocal);
        }
        if self.listener_by_addr.contains_key(&local) {
            return Err(ListenError::AddressInUse);
        }
        let listener = Listener {
            local,
            backlog: backlog.clamp(1, 65535),
            options,
            accept_queue: VecDeque::new(),
            half_open: 0,
            cookies_until: None,
        };
        let idx = match self.listeners.iter().position(Option::is_none) {
            Some(i) => {
                self.listeners[i] = Some(listener);
                i
            }
            None => {
                self.listeners.push(Some(listener));
                self.listeners.len() - 1
            }
        } as u32;
        self.listener_by_addr.insert(local, idx);
        Ok(ListenerHandle(idx))
    }

    /// Stops listening; half-open and unaccepted connections are reset.
    pub fn unlisten(&mut self, now: Instant, listener: ListenerHandle) -> Result<(), UnlistenError> {
        let _ = now;
        let l = self
            .listeners
            .get_mut(listener.0 as usize)
            .and_then(Option::take)
            .ok_or(UnlistenError::InvalidHandle)?;
        self.listener_by_addr.remove(&l.local);
        let owned: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].listener == Some(listener.0))
            .collect();
        for idx in owned {
            let slot = &mut self.slots[idx as usize];
            slot.listener = None;
            slot.orphaned = true;
            slot.queued = false;
            if let Some(c) = slot.conn.as_deref_mut() {
                let outcome = c.abort();
                self.after_conn(idx, outcome);
            }
        }
        Ok(())
    }

    /// Takes the oldest established connection from the listener's accept queue.
    pub fn accept(&mut self, now: Instant, listener: ListenerHandle) -> Result<SocketHandle, AcceptError> {
        let _ = now;
        let l = self
            .listeners
            .get_mut(listener.0 as usize)
            .and_then(|l| l.as_mut())
            .ok_or(AcceptError::InvalidHandle)?;
        let handle = l.accept_queue.pop_front().ok_or(AcceptError::WouldBlock)?;
        let idx = handle.0 & INDEX_MASK;
        let slot = &mut self.slots[idx as usize];
        slot.listener = None;
        slot.queued = false;
        let mut news = (false, None);
        if let Some(c) = slot.conn.as_deref() {
            // The application holds the handle now.
            slot.orphaned = false;
            news = (c.readable() > 0 || c.read_closed(), c.close_reason);
        }
        // Anything that happened before accept is news to the application now.
        if news.0 {
            self.push_event(Event::Readable(handle));
        }
        if let Some(reason) = news.1 {
            self.push_event(Event::Closed(handle, reason));
        }
        Ok(handle)
    }

    /// Sets one socket option on a listener: connections it accepts from now on inherit it (as
    /// `setsockopt` on a listening socket does on Linux, `TCP_MAXSEG` then bounding the MSS of
    /// the SYN-ACK).
    pub fn set_listener_option(
        &mut self,
        now: Instant,
        listener: ListenerHandle,
        option: SocketOption,
    ) -> Result<(), SetOptionError> {
        let _ = now;
        let l = self
            .listeners
            .get_mut(listener.0 as usize)
            .and_then(|l| l.as_mut())
            .ok_or(SetOptionError::InvalidHandle)?;
        option.apply(&mut l.options);
        Ok(())
    }

    /// Established connections waiting in the listener's accept queue; `None` for an invalid
    /// handle.
    pub fn pending_connections(&self, listener: ListenerHandle) -> Option<usize> {
        self.listeners.get(listener.0 as usize)?.as_ref().map(|l| l.accept_queue.len())
    }
}
