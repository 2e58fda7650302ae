//! What the connection does when a timer expires: retransmission (RFC 6298), delayed ACK,
//! persist (RFC 9293 §3.8.6.1), keepalive (RFC 1122 §4.2.3.6) and the close timers.
//!
//! Must not depend on: clocks, I/O, `crate::stack`.

use super::{recovery, Connection, Ctx};
use crate::tcp::congestion::{Phase, Recovery};
use crate::tcp::timer::Timer;
use crate::tcp::{CloseReason, State};
use crate::time::{Duration, Instant};

impl Connection {
    /// Runs the timers due at `now`.
    pub(crate) fn on_timeout(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        for t in Timer::ALL {
            if self.timers.expire(t, now) {
                self.fire(t, now, ctx);
            }
        }
    }

    fn fire(&mut self, t: Timer, now: Instant, ctx: &mut Ctx<'_>) {
        match t {
            Timer::Retransmit => self.on_rto(now, ctx),
            Timer::Reorder => self.on_reorder_timeout(now, ctx),
            Timer::Probe => self.on_probe_timeout(now),
            // The next poll sends what pacing held back.
            Timer::Pace => {}
            Timer::DelayedAck => self.ack_now = true,
            Timer::Persist => {
                // TCP_USER_TIMEOUT behind a zero window counts from the first expiry (Linux's
                // tcp_probe_timer): probes answered with a zero window do not restart it.
                if let Some(limit) = self.options.user_timeout {
                    match self.persist_stamp {
                        Some(since) if now.saturating_duration_since(since) >= limit => {
                            return self.close_now(CloseReason::TimedOut, &mut ctx.outcome);
                        }
                        Some(_) => {}
                        None => self.persist_stamp = Some(now),
                    }
                }
                // RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17: probe the zero window.
                self.probe_now = true;
                self.persist_backoff = self.persist_backoff.saturating_add(1);
            }
            Timer::Keepalive => self.on_keepalive(now, ctx),
            Timer::Close => match self.state {
                State::TimeWait => self.close_now(CloseReason::Normal, &mut ctx.outcome),
                State::FinWait2 => self.close_now(CloseReason::Normal, &mut ctx.outcome),
                _ => {}
            },
        }
    }

    fn on_rto(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.snd_max {
            return;
        }
        ctx.stats.timeouts += 1;
        let synchronized = !matches!(self.state, State::SynSent | State::SynReceived);
        // Where TCP_USER_TIMEOUT counts from: the first retransmission, as in Linux (the RFCs
        // leave the start open); the one this timeout is about to send, if none went yet.
        let user_timeout = self
            .options
            .user_timeout
            .filter(|_| synchronized)
            .map(|limit| (limit, self.retrans_stamp.unwrap_or(now)));
        let expired = match user_timeout {
            // RFC 5482 §1 / RFC 9293 §3.10.1 USER TIMEOUT: the time, not the count, decides;
            // as in Linux (retransmits_timed_out), only once a timeout has retransmitted.
            Some((limit, since)) => self.retries > 0 && now.saturating_duration_since(since) >= limit,
            None => {
                let limit = if synchronized {
                    ctx.cfg.max_retries
                } else {
                    self.options.syn_retries.unwrap_or(ctx.cfg.syn_retries)
                };
                self.retries >= limit
            }
        };
        self.retries += 1;
        if expired {
            // RFC 1122 §4.2.3.5 R2: give up.
            self.close_now(CloseReason::TimedOut, &mut ctx.outcome);
            return;
        }
        // RFC 6298 (5.5)-(5.6): back off and retransmit the earliest unacknowledged segment.
        self.rtt.back_off();
        if let Some((limit, since)) = user_timeout {
            // Linux's tcp_clamp_rto_to_user_timeout: the next timeout no later than the limit.
            let left = limit.saturating_sub(now.saturating_duration_since(since));
            let rto = self.rtt.rto().min(left.max(Duration::from_millis(1)));
            self.timers.set(Timer::Retransmit, now + rto);
        }
        self.rtt_probe = None;
        self.rto_tsval = self.ts_now(now, ctx.cfg.ts_hz);
        // RFC 5681 §3.1 (4): FlightSize, SND.MAX - SND.UNA; Linux (tcp_enter_loss) the window
        // when no reduction is under way.
        let flight = self.outstanding().max(self.snd_mss);
        let basis =
            if self.recovery.phase == Phase::Open { self.reduction_basis(flight, ctx.cfg) } else { flight };
        let prior = (self.cc.cwnd(), self.cc.ssthresh());
        self.cc.on_timeout(now, basis, self.snd_mss);
        let frto = self.frto.enabled && self.syn_acked() && self.retries == 1 && self.frto.step.is_none();
        self.frto.step = None;
        self.frto.new_segments = 0;
        if frto {
            // RFC 5682 §2.1 (1): the first unacknowledged segment goes again (the window of
            // one segment allows no more); the ACKs that follow say whether the timeout was
            // spurious, and if it was, the loss marks are taken back.
            self.frto.step = Some(recovery::FrtoStep::FirstAck);
            self.frto.prior = prior;
        }
        if self.syn_acked() {
            // RFC 6675 §5.1, RFC 8985 §6.3: everything not SACKed is deemed lost and resent in
            // order under slow start; what the peer SACKed is not sent again.
            self.board.mark_all_lost();
        } else {
            // The SYN goes again.
            self.snd_nxt = self.snd_una;
        }
        self.recovery = Recovery { phase: Phase::Loss, recover: self.snd_max, ..Recovery::default() };
        self.tlp = recovery::Tlp { enabled: self.tlp.enabled, ..recovery::Tlp::default() };
        self.timers.stop(Timer::Reorder);
        self.timers.stop(Timer::Probe);
    }

    fn on_keepalive(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        let Some(idle) = self.options.keepalive else { return };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        let since = now.saturating_duration_since(self.last_activity);
        if since < idle {
            self.timers.set(Timer::Keepalive, self.last_activity + idle);
            return;
        }
        // RFC 1122 §4.2.3.6: probes until one is answered or the count runs out; with
        // TCP_USER_TIMEOUT, until that long has passed since the peer was last heard from
        // and a probe went unanswered (Linux's tcp_keepalive_timer).
        let out_of_probes = match self.options.user_timeout {
            Some(limit) => since >= limit && self.keepalive_probes > 0,
            None => self.keepalive_probes >= ctx.cfg.keepalive_probes,
        };
        if out_of_probes {
            // As Linux does, tell the peer (if it is still there) with a RST.
            self.pending_rst = Some((self.snd_nxt, Some(self.rcv_nxt())));
            self.close_now(CloseReason::TimedOut, &mut ctx.outcome);
            return;
        }
        self.keepalive_probes += 1;
        self.keepalive_probe_now = true;
        self.timers.set(Timer::Keepalive, now + ctx.cfg.keepalive_interval);
    }
}
