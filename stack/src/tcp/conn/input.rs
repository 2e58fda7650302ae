//! Segment arrival, by state (RFC 9293 §3.10.7): SYN-SENT (§3.10.7.3) and every state from
//! SYN-RECEIVED on (§3.10.7.4), with PAWS (RFC 7323 §5), RFC 5961's checks, the ACK processing of
//! RFC 5681/6582/6675 and the receiving of text and FIN.
//!
//! Must not depend on: clocks, I/O, `crate::stack`.

use super::recovery::AckSummary;
use super::{ticks_to_duration, Connection, Ctx};
use crate::config::TcpConfig;
use crate::stats::DropReason;
use crate::tcp::congestion::Phase;
use crate::tcp::scoreboard::Delivered;
use crate::tcp::seq::SeqNum;
use crate::tcp::timer::Timer;
use crate::tcp::{CloseReason, State};
use crate::time::{Duration, Instant};
use crate::wire::{TcpFlags, TcpRepr};

/// At most this many duplicate ACKs are owed at once (one per out-of-order segment).
const MAX_ACKS_OWED: u8 = 64;

impl Connection {
    /// Processes one segment addressed to this connection.
    pub(crate) fn on_segment(&mut self, now: Instant, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        ctx.stats.segments_in += 1;
        match self.state {
            State::Closed | State::Listen => ctx.drop(DropReason::Closed),
            State::SynSent => self.on_segment_syn_sent(now, seg, ctx),
            _ => self.on_segment_synchronized(now, seg, ctx),
        }
    }

    /// RFC 9293 §3.10.7.3: SYN-SENT.
    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        let TcpRepr {
            // The stack demultiplexed on the ports: they are this connection's.
            src_port: _,
            dst_port: _,
            seq,
            ack,
            flags: f,
            // The SYN's window is taken by `take_syn` (RFC 7323 §2.2: never scaled).
            window: _,
            // Read by `take_syn` and the RTT sample.
            options: _,
            payload,
            // The urgent pointer is never read (RFC 9293 §3.8.5; RFC 6093 §6 discourages the
            // mechanism): urgent bytes reach the application in line, as ordinary data.
            urgent: _,
        } = *seg;
        // First: check the ACK bit.
        if f.ack() && (ack <= self.iss || ack > self.snd_max) {
            if !f.rst() {
                self.pending_rst = Some((ack, None));
            }
            ctx.drop(DropReason::BadAck);
            return;
        }
        let ack_ok = f.ack() && self.snd_una <= ack && ack <= self.snd_max;
        // Second: the RST bit.
        if f.rst() {
            if ack_ok {
                ctx.stats.resets_in += 1;
                self.close_now(CloseReason::Refused, &mut ctx.outcome);
            } else {
                ctx.drop(DropReason::RstWithoutAck);
            }
            return;
        }
        // Fourth: the SYN bit.
        if !f.syn() {
            ctx.drop(DropReason::NoSyn);
            return;
        }
        self.take_syn(seg, ctx.cfg);
        self.last_activity = now;
        if ack_ok {
            // Our SYN is acknowledged: ESTABLISHED.
            self.on_rtt_sample_syn(now, seg, ctx.cfg);
            if self.fast_open.active {
                self.on_fast_open_syn_ack(seg, ctx);
            }
            self.delivered += 1;
            self.snd_una = ack;
            self.snd_wl2 = ack;
            self.timers.stop(Timer::Retransmit);
            self.retries = 0;
            self.rtt.reset_backoff();
            self.establish(&mut ctx.outcome);
            if self.write_waiting && payload.is_empty() && !f.fin() {
                // Linux (tcp_rcv_synsent_state_process): with a writer waiting, the ACK is
                // delayed (TCP_DELACK_MAX) so that the first data segment carries it.
                self.write_waiting = false;
                self.timers.set(Timer::DelayedAck, now + Duration::from_millis(200));
                // Linux starts its delayed-ACK engine here (tcp_enter_quickack_mode), with the
                // SYN-ACK as the last data received: the data sent at once makes the connection
                // interactive, and its ACKs wait for replies.
                self.last_data_rcvd = now;
            } else {
                self.ack_now = true;
            }
            if !payload.is_empty() {
                self.accept_text(now, seq + 1, payload, ctx);
            }
            if f.fin() {
                self.accept_fin(now, seq + 1 + payload.len(), ctx);
            }
        } else {
            // Simultaneous open (RFC 9293 §3.5 figure 7): SYN-RECEIVED, resend our SYN with ACK.
            self.state = State::SynReceived;
            self.snd_nxt = self.iss;
            self.timers.stop(Timer::Retransmit);
        }
        // Our SYN offered an unscaled window (RFC 7323 §2.2); the peer may use it at once.
        self.rcv_adv = self.rcv_nxt() + self.recv_buf.window().min(65535);
    }

    /// RFC 7413 §4.1.3: the SYN-ACK of a Fast Open client's SYN. The data it acknowledges is
    /// delivered; what it does not is sent again at once, as new data (Linux's
    /// `tcp_rcv_fastopen_synack`: the server did not take it, or took only part); what it says
    /// of the server goes to the cache: the MSS, and a cookie if one was asked for.
    fn on_fast_open_syn_ack(&mut self, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        let data_start = self.iss + 1;
        let acked = if seg.ack > data_start { seg.ack - data_start } else { 0 };
        self.send_buf.consume(acked.min(self.send_buf.len()));
        if self.snd_max > seg.ack {
            self.fast_open.resend_until = Some(self.snd_max);
            self.snd_max = seg.ack;
            self.snd_nxt = seg.ack;
        }
        let fo = self.fast_open;
        self.fast_open.syn_data_acked = fo.syn_data > 0 && acked >= fo.syn_data;
        // An unsolicited cookie is not cached; only a cookie of a valid length is.
        let cookie = fo.syn_option.and(seg.options.fast_open).filter(|c| c.cookie.is_valid());
        // Linux: a request that got no cookie is made in the other form next time.
        let try_exp = match fo.syn_option {
            Some(o) if cookie.is_none() && self.retries == 0 && fo.syn_data == 0 => {
                if o.experimental {
                    2
                } else {
                    1
                }
            }
            _ => 0,
        };
        ctx.outcome.fast_open_learned =
            Some(crate::stack::FastOpenLearned { mss: seg.options.mss.unwrap_or(0), cookie, try_exp });
    }

    fn on_rtt_sample_syn(&mut self, now: Instant, seg: &TcpRepr<'_>, cfg: &TcpConfig) {
        if self.retries > 0 {
            return; // Karn: the SYN was retransmitted.
        }
        // Linux (tcp_clean_rtx_queue on the SYN): the microseconds since the SYN was sent.
        if cfg.rtt_from_send_times {
            if let Some((_, sent)) = self.rtt_probe.take() {
                self.rtt.sample(now - sent);
                return;
            }
        }
        if let (true, Some(ts)) = (self.ts_enabled, seg.options.timestamp) {
            if ts.tsecr != 0 {
                let ticks = self.ts_now(now, cfg.ts_hz).wrapping_sub(ts.tsecr);
                self.rtt.sample(ticks_to_duration(ticks, cfg.ts_hz));
                return;
            }
        }
        if let Some((_, sent)) = self.rtt_probe.take() {
            self.rtt.sample(now - sent);
        }
    }

    /// RFC 9293 §3.10.7.4: every state from SYN-RECEIVED on.
    fn on_segment_synchronized(&mut self, now: Instant, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        let TcpRepr {
            // The stack demultiplexed on the ports: they are this connection's.
            src_port: _,
            dst_port: _,
            seq,
            ack,
            flags: f,
            window,
            options,
            payload,
            // The urgent pointer is never read (RFC 9293 §3.8.5; RFC 6093 §6 discourages the
            // mechanism): urgent bytes reach the application in line, as ordinary data.
            urgent: _,
        } = *seg;
        let rcv_nxt = self.rcv_nxt();

        // RFC 7323 §5.3 R1: PAWS, before the sequence check.
        if self.ts_enabled && !f.rst() {
            if let Some(ts) = options.timestamp {
                if (ts.tsval.wrapping_sub(self.ts_recent) as i32) < 0 {
                    ctx.drop(DropReason::Paws);
                    self.ack_now = true;
                    return;
                }
            }
        }

        // First: is the segment acceptable (the four cases)?
        let seg_len = seg.segment_len();
        let wnd = self.rcv_wnd();
        let acceptable = match (seg_len, wnd) {
            (0, 0) => seq == rcv_nxt,
            (0, _) => seq.in_range(rcv_nxt, rcv_nxt + wnd as usize),
            (_, 0) => false,
            (_, _) => {
                seq.in_range(rcv_nxt, rcv_nxt + wnd as usize)
                    || (seq + (seg_len - 1)).in_range(rcv_nxt, rcv_nxt + wnd as usize)
            }
        };
        // RFC 9293 §3.10.7.4: with a zero window, still process ACK, RST and URG of a segment at
        // RCV.NXT (its text is then dropped below).
        let zero_window_at_edge = wnd == 0 && seq == rcv_nxt;
        if !acceptable && !zero_window_at_edge {
            if self.state == State::SynReceived && f.syn() && f.ack() && seq == self.irs && !self.passive {
                // Simultaneous open (RFC 9293 §3.5 figure 7): the peer's SYN-ACK carries its SYN
                // again; take the SYN as already seen and process the rest. The SYN is a
                // duplicate: acknowledged at once, reported as a D-SACK block (RFC 2883 §4), as
                // Linux's tcp_data_queue does for a segment wholly below RCV.NXT.
                self.ack_now = true;
                if self.sack_enabled {
                    self.dsack = Some((seq, seq + 1));
                }
                let mut rest = *seg;
                rest.seq = seq + 1;
                rest.flags = TcpFlags(f.0 & !TcpFlags::SYN.0);
                return self.on_segment_synchronized(now, &rest, ctx);
            }
            if self.state == State::SynReceived && f.syn() && !f.ack() && seq == self.irs {
                // A retransmitted SYN: our SYN-ACK was lost; send it again, echoing the latest
                // timestamp (RFC 7323 §4.3: the SYN-ACK echoes the SYN it answers).
                if let (true, Some(ts)) = (self.ts_enabled, options.timestamp) {
                    self.ts_recent = ts.tsval;
                }
                self.snd_nxt = self.iss;
                ctx.drop(DropReason::RetransmittedSyn);
                return;
            }
            if !f.rst() {
                self.ack_now = true;
                if self.sack_enabled && !payload.is_empty() && seq < rcv_nxt {
                    // RFC 2883 §4: report the duplicate range as the first SACK block.
                    let end = (seq + payload.len()).min(rcv_nxt);
                    self.dsack = Some((seq, end));
                }
                if self.state == State::TimeWait && f.fin() {
                    // §3.10.7.4 eighth, TIME-WAIT: a retransmitted FIN restarts the 2 MSL timer.
                    self.timers.set(Timer::Close, now + ctx.cfg.msl.saturating_mul(2));
                }
            }
            ctx.drop(DropReason::Unacceptable);
            return;
        }

        // Second: the RST bit (RFC 5961 §3.2).
        if f.rst() {
            if seq != rcv_nxt {
                // In the window but not exact: challenge ACK.
                self.challenge_ack(now, ctx);
                ctx.drop(DropReason::RstNotExact);
                return;
            }
            ctx.stats.resets_in += 1;
            match self.state {
                State::SynReceived if self.passive => {
                    // Return to LISTEN: this half-open connection just goes away.
                    self.close_now(CloseReason::Reset, &mut ctx.outcome);
                }
                State::SynReceived => self.close_now(CloseReason::Refused, &mut ctx.outcome),
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.close_now(CloseReason::Reset, &mut ctx.outcome)
                }
                State::TimeWait if ctx.cfg.rfc1337 => {
                    // RFC 1337: ignore RST in TIME-WAIT, the peer's ACK may still be in flight.
                    ctx.drop(DropReason::RstInTimeWait);
                }
                _ => self.close_now(CloseReason::Normal, &mut ctx.outcome),
            }
            return;
        }

        // Fourth: the SYN bit (RFC 5961 §4.2: challenge ACK, whatever its sequence number).
        if f.syn() {
            if self.state == State::SynReceived && self.passive {
                ctx.drop(DropReason::SynInSynReceived);
                self.snd_nxt = self.iss;
                return;
            }
            self.challenge_ack(now, ctx);
            ctx.drop(DropReason::SynInWindow);
            return;
        }

        // Fifth: the ACK field.
        if !f.ack() {
            ctx.drop(DropReason::NoAck);
            return;
        }
        self.last_activity = now;
        self.keepalive_probes = 0;
        if self.state == State::SynReceived {
            if self.snd_una < ack && ack <= self.snd_max {
                // The SYN is acknowledged here; data the ACK covers as well (sent on our SYN in
                // a simultaneous Fast Open, or by a Fast Open server in SYN-RECEIVED) is taken
                // off the send buffer with the rest of the ACK below, in process_ack.
                self.snd_una = self.iss + 1;
                self.snd_nxt = self.snd_nxt.max(ack);
                if self.retries > 0 {
                    // RFC 5681 §3.1: the SYN-ACK was retransmitted, so the initial window is one
                    // segment.
                    self.cc = super::new_controller(ctx.cfg.congestion, 1, self.snd_mss);
                }
                self.timers.stop(Timer::Retransmit);
                self.rtt.reset_backoff();
                // RFC 7323 §2.2: windows after the SYN are scaled.
                self.snd_wnd = u32::from(window) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seq;
                self.snd_wl2 = ack;
                let probe = self.rtt_probe.take();
                match (self.ts_enabled, options.timestamp, probe) {
                    // Linux (tcp_synack_rtt_meas): the microseconds since the SYN-ACK was sent,
                    // when it was not retransmitted; the TS echo only when it was.
                    (_, _, Some((_, sent))) if ctx.cfg.rtt_from_send_times && self.retries == 0 => {
                        self.rtt.sample(now - sent)
                    }
                    (true, Some(ts), _) if ts.tsecr != 0 => {
                        let ticks = self.ts_now(now, ctx.cfg.ts_hz).wrapping_sub(ts.tsecr);
                        self.rtt.sample(ticks_to_duration(ticks, ctx.cfg.ts_hz));
                    }
                    // Karn: only when the SYN-ACK was not retransmitted.
                    (_, _, Some((_, sent))) if self.retries == 0 => self.rtt.sample(now - sent),
                    _ => {}
                }
                self.retries = 0;
                self.delivered += 1;
                self.establish(&mut ctx.outcome);
            } else {
                // <SEQ=SEG.ACK><CTL=RST>
                self.pending_rst = Some((ack, None));
                ctx.drop(DropReason::BadAck);
                return;
            }
        }

        // RFC 5961 §5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
        let lower = self.snd_una - self.max_snd_wnd.max(1) as usize;
        if ack > self.snd_max || ack < lower {
            self.challenge_ack(now, ctx);
            ctx.drop(DropReason::AckOutOfRange);
            return;
        }

        self.update_ts_recent(seg);
        if !payload.is_empty() {
            self.rcv_rtt_measure(now, seg, ctx.cfg.ts_hz);
        }
        self.process_ack(now, seg, ctx);
        if self.state == State::Closed {
            return;
        }

        match self.state {
            State::FinWait1 if self.fin_acked() => {
                self.state = State::FinWait2;
                if self.app_closed {
                    self.timers.set(Timer::Close, now + ctx.cfg.fin_timeout);
                }
            }
            State::Closing if self.fin_acked() => self.enter_time_wait(now, ctx.cfg),
            State::LastAck if self.fin_acked() => {
                self.close_now(CloseReason::Normal, &mut ctx.outcome);
                return;
            }
            _ => {}
        }

        // Seventh: segment text. RFC 3168 §6.1.3: a CWR on data ends the ECE echo, and is
        // acknowledged at once (the sender's window may be down to one segment; Linux's
        // tcp_ecn_accept_cwr).
        if self.ecn.ok && f.contains(TcpFlags::CWR) && !payload.is_empty() {
            self.ecn.demand_cwr = false;
            self.ack_now = true;
        }
        if !payload.is_empty() {
            if self.app_closed && matches!(self.state, State::FinWait1 | State::FinWait2) {
                // RFC 1122 §4.2.2.13: new data after CLOSE is answered with a RST.
                // Linux answers as a closed socket would: <SEQ=SEG.ACK><CTL=RST>.
                self.pending_rst = Some((ack, None));
                ctx.drop(DropReason::DataAfterClose);
                self.close_now(CloseReason::Aborted, &mut ctx.outcome);
                return;
            }
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    self.measure_rcv_mss(seg);
                    self.accept_text(now, seq, payload, ctx);
                }
                _ => {
                    // The peer's FIN was already received: RFC 9293 says ignore the text.
                    ctx.drop(DropReason::DataAfterFin);
                }
            }
        }

        // Eighth: the FIN bit.
        if f.fin() {
            self.accept_fin(now, seq + payload.len(), ctx);
        }
    }

    fn update_ts_recent(&mut self, seg: &TcpRepr<'_>) {
        // RFC 7323 §4.3 (2): TS.Recent <- SEG.TSval if SEG.TSval >= TS.Recent and
        // SEG.SEQ <= Last.ACK.sent.
        if let (true, Some(ts)) = (self.ts_enabled, seg.options.timestamp) {
            if (ts.tsval.wrapping_sub(self.ts_recent) as i32) >= 0 && seg.seq <= self.last_ack_sent {
                self.ts_recent = ts.tsval;
            }
        }
    }

    /// The receiver's round-trip estimate from the echo of our timestamp in the peer's data
    /// (Linux's `tcp_rcv_rtt_measure_ts`), smoothed by 1/8, for receive-buffer autotuning.
    fn rcv_rtt_measure(&mut self, now: Instant, seg: &TcpRepr<'_>, hz: u32) {
        let Some(ts) = seg.options.timestamp.filter(|ts| self.ts_enabled && ts.tsecr != 0) else {
            return;
        };
        let ticks = self.ts_now(now, hz).wrapping_sub(ts.tsecr);
        if (ticks as i32) < 0 {
            return;
        }
        let sample = ticks_to_duration(ticks, hz).max(Duration::from_micros(1));
        self.rcv_rtt = Some(match self.rcv_rtt {
            None => sample,
            Some(r) => Duration::from_micros((r.total_micros() * 7 + sample.total_micros()) / 8),
        });
    }

    fn challenge_ack(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        // RFC 5961 §7: rate-limit challenge ACKs.
        if ctx.challenge.allow(now, ctx.cfg.challenge_ack_limit) {
            ctx.stats.challenge_acks += 1;
            self.ack_now = true;
        } else {
            ctx.stats.challenge_acks_suppressed += 1;
        }
    }

    /// RFC 9293 §3.10.7.4 fifth, ESTABLISHED and later: SND.UNA, the window, RTT, congestion.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr<'_>, ctx: &mut Ctx<'_>) {
        let TcpRepr {
            // The stack demultiplexed on the ports: they are this connection's.
            src_port: _,
            dst_port: _,
            seq,
            ack,
            flags,
            window: wnd_field,
            options,
            payload,
            // The urgent pointer is never read (RFC 9293 §3.8.5; RFC 6093 §6 discourages the
            // mechanism): urgent bytes reach the application in line, as ordinary data.
            urgent: _,
        } = *seg;
        let window = u32::from(wnd_field) << self.snd_wscale;
        // Linux sends from an ACK with the socket's own Nagle setting: MSG_MORE held only the
        // push at the end of its write.
        self.more_hold = false;
        let prior_una = self.snd_una;
        let prior_pipe = self.pipe();
        let mut delivered = Delivered::default();
        let mut rtt = None;
        if ack > self.snd_una {
            // How much of that is data (the SYN and FIN occupy a number each).
            let data_start = self.data_start();
            let data_end = data_start + self.send_buf.len();
            let data_acked = if ack > data_start { (ack.min(data_end) - data_start) as u32 } else { 0 };
            self.send_buf.consume(data_acked as usize);
            self.snd_una = ack;
            // MSG_EOR records wholly acknowledged go with their bytes.
            let done = self.records.partition_point(|&end| end <= ack);
            self.records.drain(..done);
            if self.snd_nxt < ack {
                self.snd_nxt = ack;
            }
            self.board.on_ack(ack, &mut delivered);
            self.retries = 0;
            self.persist_backoff = 0;
            self.persist_stamp = None;
            // RTT: from send times (Linux), timestamps (RFC 7323 §4.1) or the timed segment
            // (RFC 6298 §3); never from retransmitted data (Karn).
            let sent = delivered
                .first_acked_xmit
                .filter(|_| ctx.cfg.rtt_from_send_times && !delivered.acked_retransmitted);
            match (self.ts_enabled, options.timestamp, sent) {
                // Linux (tcp_clean_rtx_queue): SRTT from the oldest data acknowledged, congestion
                // control from the newest.
                (_, _, Some(first)) => {
                    self.rtt.sample(now.saturating_duration_since(first));
                    let last = delivered.last_acked_xmit.unwrap_or(first);
                    rtt = Some(now.saturating_duration_since(last));
                    self.rtt_probe = None;
                }
                // Karn's rule carried over to timestamps: an echo of a transmission older than the
                // last timeout says how long the lost ACK took to be repaired, not the path's RTT.
                (true, Some(ts), None)
                    if ts.tsecr != 0 && (ts.tsecr.wrapping_sub(self.rto_tsval) as i32) >= 0 =>
                {
                    let ticks = self.ts_now(now, ctx.cfg.ts_hz).wrapping_sub(ts.tsecr);
                    if (ticks as i32) >= 0 {
                        let sample = ticks_to_duration(ticks, ctx.cfg.ts_hz);
                        self.rtt.sample(sample);
                        rtt = Some(sample);
                    }
                }
                _ => {
                    if let Some((probe, sent)) = self.rtt_probe {
                        if ack > probe {
                            self.rtt.sample(now - sent);
                            rtt = Some(now - sent);
                            self.rtt_probe = None;
                        }
                    }
                }
            }
            self.rtt.reset_backoff();
        }
        let dsack = self.take_sack(seg, &mut delivered);
        let newly = u64::from(delivered.sacked) + u64::from(delivered.acked_unsacked);
        let mss = u64::from(self.snd_mss.max(1));
        self.delivered = self.delivered.saturating_add(newly.div_ceil(mss) as u32);
        // RFC 5681 §2: a duplicate acknowledgment.
        let dup_ack = ack == prior_una
            && payload.is_empty()
            && !flags.syn()
            && !flags.fin()
            && window == self.snd_wnd
            && self.snd_max > self.snd_una;
        if ack > prior_una {
            self.recovery.dup_acks = 0;
        } else if dup_ack {
            self.recovery.dup_acks += 1;
        }
        // Loss detection, recovery and the congestion window (RFC 8985, 6675, 6937, 6582).
        // RFC 3168 §6.1.2: the receiver saw congestion.
        let ece = self.ecn.ok && seg.flags.contains(TcpFlags::ECE);
        let summary = AckSummary { prior_una, prior_pipe, delivered, dup_ack, dsack, rtt, ece };
        self.recover_on_ack(now, seg, &summary, ctx);
        // Linux's tcp_try_to_open: back in the open phase with nothing retransmitted in flight,
        // TCP_USER_TIMEOUT's clock stops.
        if self.recovery.phase == Phase::Open && self.board.retrans_bytes() == 0 {
            self.retrans_stamp = None;
        }
        if ack > prior_una {
            self.snd_buf_expand(&mut ctx.outcome);
            // RFC 6298 (5.2)/(5.3): stop the timer when all is acknowledged, else restart it.
            if self.snd_una == self.snd_max {
                self.timers.stop(Timer::Retransmit);
                self.timers.stop(Timer::Reorder);
            } else {
                self.timers.set(Timer::Retransmit, now + self.rtt.rto());
            }
            self.arm_tlp(now);
            if self.want_writable && self.writable(ctx.cfg.notsent_lowat) {
                self.want_writable = false;
                ctx.outcome.writable = true;
            }
        }
        // Window update (RFC 9293 §3.10.7.4: SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
        // SND.WL2 =< SEG.ACK)).
        if self.snd_wl1 < seq || (self.snd_wl1 == seq && self.snd_wl2 <= ack) {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
            if window > 0 {
                self.timers.stop(Timer::Persist);
                self.persist_backoff = 0;
                self.persist_stamp = None;
            }
        }
    }

    /// Stores segment text and decides when to acknowledge it (RFC 9293 §3.10.7.4 seventh,
    /// RFC 5681 §4.2, RFC 1122 §4.2.3.2).
    fn accept_text(&mut self, now: Instant, seq: SeqNum, payload: &[u8], ctx: &mut Ctx<'_>) {
        // RFC 3168 §6.1.3: Congestion Experienced on data is echoed with ECE until CWR; as
        // Linux (tcp_ecn_check_ce), the first mark also acknowledges the next two segments at
        // once, the sender's window being about to shrink.
        if self.ecn.ok && ctx.ce && !self.ecn.demand_cwr {
            self.ecn.demand_cwr = true;
            self.pingpong = false;
            self.quickacks = self.quickacks.max(2);
        }
        let rcv_nxt = self.rcv_nxt();
        let next_off = self.recv_buf.next_offset();
        // Trim what was already received; the rest lands at its stream offset.
        let (off, skip) = if seq < rcv_nxt {
            (next_off, (rcv_nxt - seq).min(payload.len()))
        } else {
            (next_off + (seq - rcv_nxt) as u64, 0)
        };
        let had_holes = self.recv_buf.has_holes();
        let in_order = seq <= rcv_nxt;
        let delivered = self.recv_buf.insert(off, &payload[skip..]);
        if delivered > 0 {
            ctx.outcome.readable = true;
        }
        if let Some(fin_off) = self.fin_pending_at {
            if fin_off == self.recv_buf.next_offset() {
                self.fin_pending_at = None;
                self.consume_fin(now, ctx);
            }
        }
        if !in_order || had_holes || delivered < payload.len() - skip {
            // Out of order, filling a hole, or beyond the window: acknowledge at once, one ACK
            // for each such segment even when several arrive before the next poll (RFC 5681 §4.2:
            // the duplicate ACKs drive the sender's fast retransmit).
            self.ack_now = true;
            self.acks_owed = self.acks_owed.saturating_add(1).min(MAX_ACKS_OWED);
            return;
        }
        self.last_data_rcvd = now;
        if self.quickacks > 0 && !self.pingpong {
            // Linux's quick-ACK mode at the start of a connection: every segment at once.
            self.quickacks -= 1;
            self.ack_now = true;
            return;
        }
        // A super-segment from a device with receive offload (GRO, TSO on TUN) counts as the
        // full-sized segments it carries, as Linux counts a GRO packet.
        let full = (self.our_mss as usize).saturating_sub(if self.ts_enabled { 12 } else { 0 }).max(1);
        self.unacked_segments = self.unacked_segments.saturating_add((payload.len() / full) as u32);
        match ctx.cfg.delayed_ack {
            // RFC 1122 §4.2.3.2: ACK at least every second full-sized segment.
            Some(_) if self.unacked_segments < 2 => {
                if self.timers.get(Timer::DelayedAck).is_none() {
                    let delay = ctx.cfg.delayed_ack.unwrap_or(Duration::ZERO);
                    self.timers.set(Timer::DelayedAck, now + delay);
                }
            }
            _ => self.ack_now = true,
        }
    }

    /// The FIN at stream position `seq` (RFC 9293 §3.10.7.4 eighth).
    fn accept_fin(&mut self, now: Instant, seq: SeqNum, ctx: &mut Ctx<'_>) {
        if self.fin_rcvd {
            self.ack_now = true;
            if self.state == State::TimeWait {
                self.timers.set(Timer::Close, now + ctx.cfg.msl.saturating_mul(2));
            }
            return;
        }
        let rcv_nxt = self.rcv_nxt();
        let off = (self.recv_buf.next_offset() as i64 + i64::from(seq.diff(rcv_nxt))).max(0) as u64;
        if off == self.recv_buf.next_offset() {
            self.consume_fin(now, ctx);
        } else if off > self.recv_buf.next_offset() {
            // The FIN came ahead of missing data: remember it, acknowledge what we have.
            self.fin_pending_at = Some(off);
            self.ack_now = true;
        }
    }

    fn consume_fin(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        self.fin_rcvd = true;
        ctx.outcome.readable = true;
        match self.state {
            State::SynReceived | State::Established => {
                self.state = State::CloseWait;
                self.pingpong = true;
                // Like Linux, the ACK of a FIN that only half-closes is delayed so that the
                // application's reply or its own FIN can carry it (RFC 1122 §4.2.3.2).
                match ctx.cfg.delayed_ack {
                    Some(delay) => {
                        if self.timers.get(Timer::DelayedAck).is_none() {
                            self.timers.set(Timer::DelayedAck, now + delay);
                        }
                    }
                    None => self.ack_now = true,
                }
                return;
            }
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now, ctx.cfg);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now, ctx.cfg),
            _ => {}
        }
        self.ack_now = true;
    }
}
