//! What the connection does when a timer expires: retransmission (RFC 6298), delayed ACK,
//! persist (RFC 9293 §3.8.6.1), keepalive (RFC 1122 §4.2.3.6) and the close timers.
//!
//! Must not depend on: clocks, I/O, `crate::stack`.

use super::{recovery, Connection, Ctx};
use crate::tcp::congestion::{Phase, Recovery};
use crate::tcp::timer::Timer;
use crate::tcp::{CloseReason, State};
use crate::time::Instant;

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
            Timer::Probe => self.on_probe_timeout(),
            // The next poll sends what pacing held back.
            Timer::Pace => {}
            Timer::DelayedAck => self.ack_now = true,
            Timer::Persist => {
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
        self.retries += 1;
        let limit = match self.state {
            State::SynSent | State::SynReceived => self.options.syn_retries.unwrap_or(ctx.cfg.syn_retries),
            _ => ctx.cfg.max_retries,
        };
        if self.retries > limit {
            // RFC 1122 §4.2.3.5 R2: give up.
            self.close_now(CloseReason::TimedOut, &mut ctx.outcome);
            return;
        }
        // RFC 6298 (5.5)-(5.6): back off and retransmit the earliest unacknowledged segment.
        self.rtt.back_off();
        self.rtt_probe = None;
        self.rto_tsval = self.ts_now(now, ctx.cfg.ts_hz);
        // RFC 5681 §3.1 (4): FlightSize, SND.MAX - SND.UNA.
        let flight = self.outstanding().max(self.snd_mss);
        let prior = (self.cc.cwnd(), self.cc.ssthresh());
        self.cc.on_timeout(now, flight, self.snd_mss);
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
        // RFC 1122 §4.2.3.6: probes until one is answered or the count runs out.
        if self.keepalive_probes >= ctx.cfg.keepalive_probes {
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
