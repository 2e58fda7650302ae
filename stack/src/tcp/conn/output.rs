//! What to send: the next segment ([`Connection::poll_transmit`]), the window to advertise, the
//! options, Nagle and SWS avoidance, persist probes and the retransmission timer's start.
//!
//! Must not depend on: clocks, I/O, `crate::stack`.

use super::{Connection, Ctx};
use crate::config::EcnMode;
use crate::tcp::congestion::Phase;
use crate::tcp::seq::SeqNum;
use crate::tcp::timer::Timer;
use crate::tcp::State;
use crate::time::{Duration, Instant};
use crate::wire::{SackBlocks, TcpFlags, TcpOptions, Timestamp, UnknownOptions};

/// A segment to send, without its payload bytes (which stay in the send buffer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutSegment {
    pub(crate) seq: SeqNum,
    pub(crate) ack: SeqNum,
    pub(crate) flags: TcpFlags,
    pub(crate) window: u16,
    pub(crate) options: TcpOptions<'static>,
    /// Offset of the payload in the send buffer.
    pub(crate) payload_offset: usize,
    pub(crate) payload_len: usize,
    /// Send it ECN-capable, ECT(0) (RFC 3168 §6.1.2: new data on an ECN connection only).
    pub(crate) ect: bool,
}

impl Connection {
    /// The window field to advertise now, updating the advertised right edge (RFC 7323 §2.3,
    /// RFC 1122 §4.2.3.3 receiver SWS avoidance, never shrinking the window).
    fn window_to_advertise(&mut self) -> u16 {
        let nxt = self.rcv_nxt();
        let free = self.recv_buf.window() as u32;
        let edge_now = nxt + free as usize;
        let threshold = (self.recv_buf.capacity() as u32 / 2).min(u32::from(self.our_mss));
        let right = if self.rcv_adv > nxt
            && edge_now > self.rcv_adv
            && (edge_now - self.rcv_adv) < threshold as usize
        {
            // Receiver SWS avoidance: do not move the edge by less than min(buffer/2, MSS).
            self.rcv_adv
        } else {
            edge_now.max(self.rcv_adv)
        };
        let avail = if right > nxt { (right - nxt) as u32 } else { 0 };
        let field = (avail >> self.rcv_wscale).min(65535);
        let edge = nxt + ((field as usize) << self.rcv_wscale);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        field as u16
    }

    fn syn_window(&mut self) -> u16 {
        // RFC 7323 §2.2: the window in a SYN or SYN-ACK is not scaled.
        let w = self.recv_buf.window().min(65535);
        if self.state == State::SynReceived {
            self.rcv_adv = self.rcv_adv.max(self.rcv_nxt() + w);
        }
        w as u16
    }

    /// Whether a window update is worth an ACK of its own (RFC 9293 §3.8.6.2.2, RFC 1122
    /// §4.2.3.3): after the application read, when the window still offered has fallen below two
    /// segments (the peer is about to stall) and reading opened at least one more segment. A
    /// larger offered window needs no update: the ACKs of the data it lets in carry the new one.
    fn window_update_due(&self) -> bool {
        if !self.read_since_ack
            || !matches!(self.state, State::Established | State::FinWait1 | State::FinWait2)
            || self.fin_rcvd
        {
            return false;
        }
        let nxt = self.rcv_nxt();
        let offered = if self.rcv_adv > nxt { self.rcv_adv - nxt } else { 0 };
        let max = 65535usize << self.rcv_wscale;
        let possible = ((self.recv_buf.window() >> self.rcv_wscale) << self.rcv_wscale).min(max);
        let mss = usize::from(self.our_mss);
        offered < 2 * mss && possible >= offered + mss
    }

    fn options_for(&self, now: Instant, hz: u32, syn: bool) -> TcpOptions<'static> {
        let mut o = TcpOptions { unknown: UnknownOptions::EMPTY, ..TcpOptions::default() };
        if self.ts_enabled {
            o.timestamp = Some(Timestamp { tsval: self.ts_now(now, hz), tsecr: self.ts_recent });
        }
        if syn {
            o.mss = Some(self.our_mss);
            if self.ws_enabled {
                o.window_scale = Some(self.rcv_wscale);
            }
            o.sack_permitted = self.sack_enabled;
            if self.state == State::SynSent {
                // The SYN's TSecr is zero (RFC 7323 §3.2).
                if let Some(ts) = o.timestamp.as_mut() {
                    ts.tsecr = 0;
                }
            }
        } else if self.sack_enabled && (self.recv_buf.has_holes() || self.dsack.is_some()) {
            // RFC 2018 §4: report the most recent block first; as many as fit. RFC 2883: a
            // D-SACK block for a duplicate goes before them.
            let max = if self.ts_enabled { 3 } else { 4 };
            let mut blocks = SackBlocks::default();
            if let Some(d) = self.dsack {
                blocks.push(d);
            }
            let base = self.irs.0.wrapping_add(1);
            for (s, e) in self.recv_buf.sack_intervals().take(max - blocks.len()) {
                blocks.push((SeqNum(base.wrapping_add(s as u32)), SeqNum(base.wrapping_add(e as u32))));
            }
            o.sack = Some(blocks);
        }
        o
    }

    /// The next segment to send, if any. The caller writes it with the payload
    /// `send_buffer_slice(payload_offset, payload_len)`.
    pub(crate) fn poll_transmit(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        let mut seg = self.next_segment(now, ctx)?;
        // RFC 3168 §6.1.3: after a CE mark, ECE on every segment until a CWR arrives.
        if self.ecn.ok && self.ecn.demand_cwr && !seg.flags.syn() && !seg.flags.rst() {
            seg.flags |= TcpFlags::ECE;
        }
        Some(seg)
    }

    fn next_segment(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        let hz = ctx.cfg.ts_hz;
        if let Some((seq, ack)) = self.pending_rst.take() {
            ctx.stats.resets_out += 1;
            let flags = if ack.is_some() { TcpFlags::RST | TcpFlags::ACK } else { TcpFlags::RST };
            // RFC 7323 §3.2: "TSopt SHOULD be sent in an <RST> segment" once negotiated, as
            // Linux does in the reset a connection sends (an abort, a close with unread data).
            let mut options = TcpOptions::default();
            if self.ts_enabled && ack.is_some() {
                options.timestamp = Some(Timestamp { tsval: self.ts_now(now, hz), tsecr: self.ts_recent });
            }
            return Some(OutSegment {
                seq,
                ack: ack.unwrap_or(SeqNum(0)),
                flags,
                window: 0,
                options,
                payload_offset: 0,
                payload_len: 0,
                ect: false,
            });
        }
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                let syn_ack = self.state == State::SynReceived;
                let first = self.snd_max == self.iss;
                if !first {
                    ctx.stats.retransmissions += 1;
                } else {
                    // RFC 6298 §2: the handshake gives the first RTT measurement.
                    self.rtt_probe = Some((self.iss, now));
                }
                // RFC 7413 §4.1.3: the first SYN of a Fast Open client carries its data; a
                // retransmitted SYN carries neither data nor the option (Linux).
                let syn_data = if first && !syn_ack { self.fast_open.syn_data } else { 0 };
                self.snd_nxt = self.iss + 1 + syn_data;
                self.snd_max = self.snd_max.max(self.snd_nxt);
                if self.timers.get(Timer::Retransmit).is_none() {
                    self.timers.set(Timer::Retransmit, now + self.rtt.rto());
                }
                let ack = if syn_ack { self.rcv_nxt() } else { SeqNum(0) };
                if syn_ack {
                    self.last_ack_sent = ack;
                    self.ack_now = false;
                }
                let mut flags = TcpFlags::SYN;
                if syn_ack {
                    flags |= TcpFlags::ACK;
                    // RFC 3168 §6.1.1: the ECN-setup SYN-ACK.
                    if self.ecn.ok {
                        flags |= TcpFlags::ECE;
                    }
                } else if first && ctx.cfg.ecn == EcnMode::On {
                    // The ECN-setup SYN; as Linux (tcp_ecn_fallback), a retransmitted SYN is a
                    // plain one, in case ECN-setup SYNs are what gets dropped.
                    self.ecn.asked = true;
                    flags |= TcpFlags::ECE | TcpFlags::CWR;
                } else if !first {
                    self.ecn.asked = false;
                }
                let mut options = self.options_for(now, hz, true);
                if first {
                    options.fast_open =
                        if syn_ack { self.fast_open.reply } else { self.fast_open.syn_option };
                }
                Some(OutSegment {
                    seq: self.iss,
                    ack,
                    flags,
                    window: self.syn_window(),
                    options,
                    payload_offset: 0,
                    payload_len: syn_data,
                    ect: false,
                })
            }
            State::SynSent => None,
            // RFC 7413 §4.2.2: a Fast Open server may send data before the handshake completes.
            State::SynReceived if self.fast_open.child => self.poll_transmit_synchronized(now, ctx),
            State::SynReceived => {
                if self.ack_now {
                    self.ack_now = false;
                    return Some(self.pure_ack(now, hz, self.snd_max));
                }
                None
            }
            _ => self.poll_transmit_synchronized(now, ctx),
        }
    }

    /// An ACK without data. Callers pass SND.MAX (the highest sequence number sent), not a
    /// SND.NXT that a retransmission timeout rewound: the peer may already hold everything up to
    /// SND.MAX, and an ACK from behind its RCV.NXT would be unacceptable and answered with an
    /// ACK of its own, and so on forever.
    fn pure_ack(&mut self, now: Instant, hz: u32, seq: SeqNum) -> OutSegment {
        let ack = self.rcv_nxt();
        let window = self.window_to_advertise();
        let options = self.options_for(now, hz, false);
        self.last_ack_sent = ack;
        self.ack_now = false;
        self.read_since_ack = false;
        self.dsack = None;
        self.acks_owed = self.acks_owed.saturating_sub(1);
        self.unacked_segments = 0;
        self.timers.stop(Timer::DelayedAck);
        OutSegment {
            seq,
            ack,
            flags: TcpFlags::ACK,
            window,
            options,
            payload_offset: 0,
            payload_len: 0,
            ect: false,
        }
    }

    fn poll_transmit_synchronized(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        let hz = ctx.cfg.ts_hz;
        if self.state == State::TimeWait {
            if self.ack_now {
                return Some(self.pure_ack(now, hz, self.snd_max));
            }
            return None;
        }
        if let Some(seg) = self.poll_data(now, ctx) {
            return Some(seg);
        }
        if self.keepalive_probe_now {
            self.keepalive_probe_now = false;
            // RFC 1122 §4.2.3.6: a probe with SEG.SEQ = SND.NXT - 1 and no data.
            return Some(self.pure_ack(now, hz, self.snd_nxt - 1));
        }
        if self.ack_now || self.acks_owed > 0 || self.window_update_due() {
            return Some(self.pure_ack(now, hz, self.snd_max));
        }
        // Arm the keepalive timer while idle (RFC 1122 §4.2.3.6, off by default).
        if let Some(idle) = self.options.keepalive {
            if self.timers.get(Timer::Keepalive).is_none()
                && matches!(self.state, State::Established | State::CloseWait)
            {
                self.timers.set(Timer::Keepalive, self.last_activity + idle);
            }
        }
        None
    }

    /// A data and/or FIN segment, a retransmission, or a window probe.
    fn poll_data(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        let hz = ctx.cfg.ts_hz;
        // A Fast Open child sends in SYN-RECEIVED (RFC 7413 §4.2.2).
        let fast_open_child = self.fast_open.child && self.state == State::SynReceived;
        if !(self.syn_acked() || fast_open_child) {
            return None;
        }
        let data_start = self.data_start();
        let mss = self.payload_limit();

        let sent_off = self.snd_nxt.max(data_start) - data_start;
        let unsent = self.send_buf.len().saturating_sub(sent_off);
        let fin_unsent = self.fin_queued
            && (self.fin_seq.is_none() || self.snd_nxt <= self.fin_seq.unwrap_or(self.snd_nxt));
        let in_flight = self.pipe() as usize;
        let wnd_end = self.snd_una + self.snd_wnd as usize;
        if let Some(at) = self.pace.filter(|&at| at > now) {
            // Pacing: the next data segment waits for its time.
            if unsent > 0 || fin_unsent || self.tlp.due || self.board.any_lost() {
                self.timers.set(Timer::Pace, at);
            }
            return None;
        }

        // A tail loss probe (RFC 8985 §7.3): new data if the peer's window allows, else the last
        // segment again; outside the congestion window.
        if self.tlp.due {
            self.tlp.due = false;
            let room = if wnd_end > self.snd_nxt { wnd_end - self.snd_nxt } else { 0 };
            let new_len = self.within_record(self.snd_nxt, unsent.min(mss).min(room));
            let probe = if new_len > 0 {
                self.tlp.retrans = false;
                Some(self.data_segment(now, hz, self.snd_nxt, new_len, false, false))
            } else if let Some(last) = self.board.last() {
                self.tlp.retrans = true;
                Some(self.resend(now, last, mss, true, ctx))
            } else {
                None
            };
            if probe.is_some() {
                ctx.stats.tail_loss_probes += 1;
                self.tlp.end = Some(self.snd_max);
                // §7.3: the RTO runs from the probe.
                self.timers.set(Timer::Retransmit, now + self.rtt.rto());
                return probe;
            }
        }

        // RFC 6675 §5 NextSeg (1): the first segment deemed lost, under the congestion window
        // (PRR sets it during recovery), and within the peer's window unless it is SND.UNA's.
        // F-RTO's step 2 (b) sends new data first (RFC 5682 §2.1).
        let lost = if self.frto.new_segments > 0 && unsent > 0 { None } else { self.board.next_lost() };
        if let Some((start, end)) = lost {
            let cwnd = self.cc.cwnd().max(self.snd_mss) as usize;
            if in_flight < cwnd && (start == self.snd_una || start < wnd_end) {
                return Some(self.resend(now, (start, end), mss, false, ctx));
            }
        }
        // RFC 3042 (Limited Transmit): the first two duplicate ACKs each let one new segment out.
        let limited = if self.recovery.phase == Phase::Open && self.recovery.dup_acks < 3 {
            self.recovery.dup_acks * self.snd_mss
        } else {
            0
        };
        let cwnd = self.cc.cwnd().max(self.snd_mss).saturating_add(limited);
        let rwnd_room = if wnd_end > self.snd_nxt { wnd_end - self.snd_nxt } else { 0 };
        // RFC 5682 §2.1 (2b): F-RTO's two new segments go whatever the window after the timeout.
        let frto_room = usize::from(self.frto.new_segments) * self.snd_mss as usize;
        let usable = (cwnd as usize).saturating_sub(in_flight).max(frto_room).min(rwnd_room);
        let len = self.within_record(self.snd_nxt, unsent.min(mss).min(usable));
        // A short segment that ends a record with more queued behind it goes whatever Nagle
        // says: Linux's tcp_write_xmit pushes every buffer but the last (TCP_NAGLE_PUSH).
        let ends_record = len > 0 && len < unsent && self.record_ends_at(self.snd_nxt + len);

        let mut probe = false;
        if self.probe_now {
            self.probe_now = false;
            probe = true;
            if unsent > 0 && len == 0 && self.snd_wnd == 0 {
                // Zero-window probe (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17), as Linux sends it:
                // an ACK carrying SEG.SEQ = SND.UNA - 1, which the peer must answer with its window.
                self.arm_persist(now, unsent);
                return Some(self.pure_ack(now, hz, self.snd_una - 1));
            }
        }

        let all_queued = len == unsent;
        let can_fin = fin_unsent && all_queued;
        // Rules (1) and (2) found nothing to send, yet the window has room (SACK recovery by
        // RFC 6675's own loss detection).
        let nothing_else = len == 0
            && !can_fin
            && self.recovery.phase == Phase::Recovery
            && self.sack_enabled
            && !ctx.cfg.rack
            && in_flight < self.cc.cwnd() as usize;
        if nothing_else && ctx.cfg.forward_retransmit {
            //= https://www.rfc-editor.org/rfc/rfc6675#section-4
            //# (3) If the conditions for rules (1) and (2) fail, but there exists
            //#     an unSACKed sequence number 'S3' that meets the criteria for
            //#     detecting loss given in steps (1.a) and (1.b) above
            //#     (specifically excluding step (1.c)), then one segment of up to
            //#     SMSS octets starting with S3 SHOULD be returned.
            // The first hole below the highest SACK not being resent, lost or not; within the
            // peer's window as for rule (1). Its retransmission counts in the pipe on top of the
            // original (not deemed lost), so the next one waits for PRR to allow it. With RACK
            // (RFC 8985) such a hole is decided by time (its reordering window), as in Linux.
            if let Some((start, end)) = self.board.next_below_highest_sack() {
                if start == self.snd_una || start < wnd_end {
                    return Some(self.resend(now, (start, end), mss, false, ctx));
                }
            }
        }
        if nothing_else && !self.recovery.rescued {
            // RFC 6675 §4 NextSeg (4), the rescue retransmission: nothing lost to resend and no
            // new data, yet the window has room: once per recovery, the end of the highest
            // segment not SACKed, so that a lost tail is repaired without a timeout. With RACK
            // (RFC 8985) time finds a lost tail instead, as in Linux, which has no rescue.
            if let Some(highest) = self.board.rescue_candidate() {
                self.recovery.rescued = true;
                return Some(self.resend(now, highest, mss, true, ctx));
            }
        }
        if len == 0 && !can_fin {
            self.arm_persist(now, unsent);
            return None;
        }
        if len > 0 && len < mss {
            // RFC 896 (Nagle) and RFC 1122 §4.2.3.4 sender SWS avoidance: a short segment goes
            // only when it empties the queue and nothing is in flight (or Nagle is off), or
            // when it is at least half the largest window the peer offered.
            // Minshall's refinement, as Linux does: hold only while a small segment is unacked.
            let small_unacked = self.last_small_end > self.snd_una;
            // TCP_CORK and MSG_MORE hold a short segment whatever Nagle says, unless TCP_NODELAY
            // was just set (Linux's tcp_nagle_test: TCP_NAGLE_PUSH, then the FIN, then the cork).
            let corked = (self.options.cork || self.more_hold) && !self.push_once;
            let nagle_ok = all_queued
                && (self.push_once
                    || can_fin
                    || (!corked
                        && (in_flight == 0
                            || (!self.more_coming && (self.options.nodelay || !small_unacked)))));
            let half_window = len * 2 >= self.max_snd_wnd as usize && self.max_snd_wnd > 0 && !corked;
            // With nothing in flight no ACK will come to release a held runt: send it.
            let window_limited_idle = !all_queued && in_flight == 0;
            if !(nagle_ok || half_window || window_limited_idle || probe || ends_record) {
                if corked && in_flight == 0 {
                    // Linux's tcp_check_probe_timer: with nothing in flight the probe timer
                    // sends a corked runt after an RTO (tcp_write_wakeup), PSH and all.
                    self.arm_probe0(now);
                }
                self.arm_persist(now, unsent);
                return None;
            }
        }
        let seq = self.snd_nxt;
        self.frto.new_segments = self.frto.new_segments.saturating_sub(1);
        // Not in recovery or limited transmit, where Linux sends pieces of a larger queued
        // buffer whose PSH stays with its tail.
        let burst_end = ctx.cfg.push_each_burst
            && len > 0
            && usable - len < mss
            && self.recovery.phase == Phase::Open
            && self.recovery.dup_acks == 0;
        // Linux's forced_push: PSH once more than half the largest window the peer offered has
        // been sent since the last PSH.
        let forced_push = ctx.cfg.push_each_burst
            && len > 0
            && (seq + len - self.pushed_seq) as u64 > u64::from(self.max_snd_wnd / 2)
            && seq + len > self.pushed_seq;
        Some(self.data_segment(now, hz, seq, len, can_fin, burst_end || forced_push || probe))
    }

    /// Sends the scoreboard's `[start, end)` again: at most `mss` payload bytes from its start,
    /// or from its end (a tail loss probe, a rescue); a FIN in it goes with its last byte.
    fn resend(
        &mut self,
        now: Instant,
        (start, end): (SeqNum, SeqNum),
        mss: usize,
        from_end: bool,
        ctx: &mut Ctx<'_>,
    ) -> OutSegment {
        let has_fin = self.fin_seq.is_some_and(|f| f + 1 == end);
        let data_end = if has_fin { end - 1 } else { end };
        // Not across the end of a record (MSG_EOR), as Linux collapses only buffers without one
        // (tcp_skb_can_collapse).
        let len = (data_end - start).min(mss);
        let len =
            if from_end { self.within_record_back(data_end, len) } else { self.within_record(start, len) };
        let seq = if from_end { data_end - len } else { start };
        let fin = has_fin && seq + len == data_end;
        ctx.stats.retransmissions += 1;
        self.data_segment(now, ctx.cfg.ts_hz, seq, len, fin, false)
    }

    /// Payload bytes that fit in the next segment: the MSS less the SACK option it will carry
    /// (RFC 6691: options come out of the MSS; the timestamp option is already counted).
    fn payload_limit(&self) -> usize {
        let mut limit = self.snd_mss as usize;
        if self.sack_enabled && (self.recv_buf.has_holes() || self.dsack.is_some()) {
            let max = if self.ts_enabled { 3 } else { 4 };
            let blocks =
                (usize::from(self.dsack.is_some()) + self.recv_buf.sack_intervals().count()).min(max);
            limit = limit.saturating_sub(4 + 8 * blocks);
        }
        limit.max(1)
    }

    /// The probe timer for data held by TCP_CORK or MSG_MORE with nothing in flight: Linux's
    /// `tcp_probe0_base`, the RTO and at least 200 ms (TCP_RTO_MIN).
    fn arm_probe0(&mut self, now: Instant) {
        if self.timers.get(Timer::Persist).is_none() && self.timers.get(Timer::Retransmit).is_none() {
            let base = self.rtt.rto().max(Duration::from_millis(200));
            self.timers.set(Timer::Persist, now + base);
        }
    }

    fn arm_persist(&mut self, now: Instant, unsent: usize) {
        // RFC 9293 §3.8.6.1: with data waiting, a zero window and no retransmission timer
        // running, the persist timer makes sure a window update is not waited for forever. Not
        // "nothing in flight": after a timeout rewinds SND.NXT into a zero window, an
        // unacknowledged probe byte is in flight with no timer left to resend it.
        if unsent > 0
            && self.snd_wnd == 0
            && self.timers.get(Timer::Retransmit).is_none()
            && self.timers.get(Timer::Persist).is_none()
        {
            let rto = self.rtt.rto();
            let mut when = rto.saturating_mul(1 << self.persist_backoff.min(10)).min(Duration::from_secs(60));
            // Linux's tcp_clamp_probe0_to_user_timeout: no later than TCP_USER_TIMEOUT's end.
            if let (Some(limit), Some(since)) = (self.options.user_timeout, self.persist_stamp) {
                let left = limit.saturating_sub(now.saturating_duration_since(since));
                when = when.min(left.max(Duration::from_millis(2)));
            }
            self.timers.set(Timer::Persist, now + when);
        }
    }

    fn data_segment(
        &mut self,
        now: Instant,
        hz: u32,
        seq: SeqNum,
        len: usize,
        fin: bool,
        // The last segment of a burst (`TcpConfig::push_each_burst`): PSH.
        burst_end: bool,
    ) -> OutSegment {
        // Where the payload starts in the send buffer, which begins at SND.UNA (after the SYN).
        let off = seq - self.data_start();
        let end = seq + len + usize::from(fin);
        let new_data = end > self.snd_max;
        if fin {
            self.fin_seq = Some(seq + len);
        }
        // Not for SYN data sent again after the SYN-ACK: Linux retransmits it, and a
        // retransmission is no small segment for Nagle's (Minshall's) test.
        let syn_data_again = self.fast_open.resend_until.is_some_and(|end| seq + len <= end);
        if len < self.snd_mss as usize && !syn_data_again {
            self.last_small_end = self.last_small_end.max(seq + len);
        }
        if seq == self.snd_nxt {
            self.snd_nxt = end;
        }
        if new_data && len > 0 {
            // Data sent soon after data arrived: an interactive connection, whose ACKs ride on
            // the replies (Linux's "pingpong" mode ends quick ACKs).
            if let Some(ato) = self.delayed_ack {
                if now.saturating_duration_since(self.last_data_rcvd) < ato
                    && self.last_data_rcvd != Instant::ZERO
                {
                    self.pingpong = true;
                }
            }
        }
        if end > seq {
            if new_data {
                self.board.on_send(seq, end, now);
            } else {
                if self.retrans_stamp.is_none() {
                    self.retrans_stamp = Some(now);
                }
                self.board.on_retransmit(seq, end, now);
            }
        }
        if matches!(self.recovery.phase, Phase::Recovery | Phase::Cwr) {
            self.recovery.prr_out += (end - seq) as u64;
        }
        if new_data {
            let data_end = seq + len;
            let allowed = self.snd_una + (self.snd_wnd as usize).max(1);
            if len > 0 && data_end > allowed && self.window_violation.is_none() {
                self.window_violation = Some(format!(
                    "sent {}..{} beyond the peer's window edge {} (SND.UNA {}, SND.WND {})",
                    seq, data_end, allowed, self.snd_una, self.snd_wnd
                ));
            }
            if !self.ts_enabled && self.rtt_probe.is_none() && seq >= self.snd_max {
                self.rtt_probe = Some((seq, now));
            }
            self.snd_max = end;
        } else if let Some((probe, _)) = self.rtt_probe {
            // Karn: a retransmission covering the timed segment spoils the measurement.
            if probe >= seq && probe < end {
                self.rtt_probe = None;
            }
        }
        // RFC 6298 (5.1): start the timer if it is not running.
        if self.timers.get(Timer::Retransmit).is_none() {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        if new_data {
            self.arm_tlp(now);
        }
        if let (Some(at), Some(srtt)) = (self.pace, self.rtt.srtt()) {
            // Linux's rate: cwnd / SRTT, twice that in slow start, 1.2 times after.
            let cwnd = u64::from(self.cc.cwnd());
            let ratio = if self.cc.cwnd() < self.cc.ssthresh() { 200 } else { 120 };
            let bytes_per_s = (cwnd * 1_000_000 * ratio / 100 / srtt.total_micros().max(1)).max(1);
            let wire = (len + 40) as u64;
            self.pace = Some(at.max(now) + Duration::from_micros(wire * 1_000_000 / bytes_per_s));
        }
        let data_end_off = self.send_buf.len();
        let mut flags = TcpFlags::ACK;
        let buffer_end = off + len == data_end_off && !self.tail_more;
        if len > 0 && (buffer_end || burst_end || self.record_ends_at(seq + len)) {
            flags |= TcpFlags::PSH;
            self.pushed_seq = self.pushed_seq.max(seq + len);
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        let ack = self.rcv_nxt();
        let window = self.window_to_advertise();
        self.last_ack_sent = ack;
        self.ack_now = false;
        self.unacked_segments = 0;
        self.timers.stop(Timer::DelayedAck);
        let options = self.options_for(now, hz, false);
        self.dsack = None;
        // RFC 3168 §6.1.2 and §6.1.5: new data is ECT(0), retransmissions and probes are not;
        // the first new data after a reduction for an ECE carries CWR.
        let ect = self.ecn.ok && new_data && len > 0;
        if ect && self.ecn.queue_cwr {
            self.ecn.queue_cwr = false;
            flags |= TcpFlags::CWR;
        }
        OutSegment { seq, ack, flags, window, options, payload_offset: off, payload_len: len, ect }
    }

    /// The payload bytes of a segment from `poll_transmit`.
    pub(crate) fn send_buffer_slice(&mut self, offset: usize, len: usize) -> &[u8] {
        self.send_buf.slice(offset, len)
    }
}
