//! Loss detection and recovery: RACK-TLP (RFC 8985), SACK-based recovery (RFC 6675) with
//! Proportional Rate Reduction (RFC 6937), the duplicate-ACK threshold and NewReno's partial
//! ACKs (RFC 5681, RFC 6582) when SACK is off, and what a timeout leaves to resend.
//!
//! Must not depend on: clocks, I/O, `crate::stack`.

use super::{Connection, Ctx};
use crate::config::TcpConfig;
use crate::tcp::congestion::{AckInfo, Phase};
use crate::tcp::scoreboard::Delivered;
use crate::tcp::seq::SeqNum;
use crate::tcp::timer::Timer;
use crate::time::{Duration, Instant};
use crate::wire::TcpRepr;

/// RFC 8985 §6.1: the newest delivered transmission and the RTT it gave.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rack {
    /// `RACK.xmit_ts` and `RACK.end_seq`; `None` until something was delivered.
    pub(crate) newest: Option<(Instant, SeqNum)>,
    /// `RACK.rtt`: the RTT of that transmission.
    pub(crate) rtt: Duration,
    /// `RACK.min_RTT`.
    pub(crate) min_rtt: Option<Duration>,
    /// `RACK.reord`: the connection has seen reordering (or a D-SACK).
    pub(crate) reordering_seen: bool,
    /// `RACK.reo_wnd_mult` (§6.2 step 4): the reordering window in quarters of the minimum RTT,
    /// one more per round trip that saw a D-SACK.
    pub(crate) reo_wnd_mult: u32,
    /// `RACK.reo_wnd_persist`: recoveries without a D-SACK before the multiplier is 1 again.
    pub(crate) reo_wnd_persist: u8,
    /// `RACK.dsack_round`: SND.NXT when a D-SACK last grew the window; its round lasts until
    /// that is acknowledged.
    pub(crate) dsack_round: Option<SeqNum>,
}

/// §6.2 step 4: the recoveries a grown reordering window outlasts.
const REO_WND_PERSIST: u8 = 16;

impl Default for Rack {
    fn default() -> Self {
        Rack {
            newest: None,
            rtt: Duration::ZERO,
            min_rtt: None,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
        }
    }
}

/// RFC 8985 §7: the tail loss probe.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tlp {
    /// `TcpConfig::tail_loss_probe`.
    pub(crate) enabled: bool,
    /// The probe is due: the next `poll_transmit` sends it.
    pub(crate) due: bool,
    /// `TLP.end_seq`: SND.MAX when the probe went out, while its episode lasts.
    pub(crate) end: Option<SeqNum>,
    /// The probe was a retransmission (`TLP.is_retrans`).
    pub(crate) retrans: bool,
}

/// Where F-RTO is (RFC 5682 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrtoStep {
    /// Step 2: waiting for the first ACK after the timeout's retransmission.
    FirstAck,
    /// Step 3: two new segments went out; waiting for the ACK that tells.
    SecondAck,
}

/// F-RTO's state (RFC 5682).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Frto {
    /// `TcpConfig::frto`.
    pub(crate) enabled: bool,
    pub(crate) step: Option<FrtoStep>,
    /// The window and threshold before the timeout, restored if it was spurious.
    pub(crate) prior: (u32, u32),
    /// New segments step 2 (b) may still send outside the congestion window.
    pub(crate) new_segments: u8,
}

/// RFC 8985 §7.2: the worst-case delayed-ACK time added to a lone segment's probe timeout.
const WC_DEL_ACK: Duration = Duration::from_millis(200);

/// Linux's TCP_TIMEOUT_MIN (2 jiffies at 1000 Hz), added to every probe timeout.
const PTO_MIN_EXTRA: Duration = Duration::from_millis(2);

/// What an ACK said, for the recovery step.
pub(super) struct AckSummary {
    pub(super) prior_una: SeqNum,
    /// The pipe before the ACK, for the window-limited test.
    pub(super) prior_pipe: u32,
    pub(super) delivered: Delivered,
    pub(super) dup_ack: bool,
    /// The ACK carried a D-SACK block (RFC 2883).
    pub(super) dsack: bool,
    pub(super) rtt: Option<Duration>,
    /// The ACK carried ECE on an ECN connection (RFC 3168 §6.1.2).
    pub(super) ece: bool,
}

impl Connection {
    /// SND.MAX - SND.UNA.
    pub(super) fn outstanding(&self) -> u32 {
        (self.snd_max - self.snd_una) as u32
    }

    /// RFC 6675 `pipe`. Without SACK, in recovery, each duplicate ACK counts one segment as
    /// delivered (RFC 6937 §3, as Linux's `tcp_add_reno_sack`), so the window can move.
    pub(super) fn pipe(&self) -> u32 {
        let pipe = self.board.pipe(self.outstanding());
        if !self.sack_enabled && self.recovery.phase != Phase::Open {
            pipe.saturating_sub(self.recovery.dup_credit)
        } else {
            pipe
        }
    }

    /// The SACK blocks of an ACK, applied to the scoreboard; says whether the first was a
    /// D-SACK (RFC 2883 §4: below the cumulative ACK, or inside the second block).
    pub(super) fn take_sack(&mut self, seg: &TcpRepr<'_>, d: &mut Delivered) -> bool {
        let Some(blocks) = seg.options.sack.filter(|_| self.sack_enabled) else { return false };
        let b = blocks.as_slice();
        let dsack = match b {
            [(_, r), ..] if *r <= seg.ack => true,
            [(l, r), (l2, r2), ..] => l >= l2 && r <= r2,
            _ => false,
        };
        self.board.on_sack(b, self.snd_una, self.snd_max, d);
        dsack
    }

    /// After the scoreboard took an ACK: RACK's update, loss detection, the recovery phases and
    /// the window (RFC 8985 §6.2, RFC 6675 §5, RFC 6937, RFC 6582).
    pub(super) fn recover_on_ack(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        a: &AckSummary,
        ctx: &mut Ctx<'_>,
    ) {
        let mss = self.snd_mss;
        let advanced = self.snd_una > a.prior_una;
        let grew = self.rack_update(now, &a.delivered, a.dsack);
        // Linux's tcp_check_sack_reordering: the reordering metric, in segments, only grows.
        let distance = a.delivered.reorder_distance;
        if mss > 0 && distance > self.reordering.saturating_mul(mss) {
            self.reordering = distance.div_ceil(mss).min(super::REORDERING_MAX);
        }
        // TLP's end (RFC 8985 §7.4): a probe that was a retransmission and is acknowledged
        // without a D-SACK repaired a real loss, which calls for a congestion response.
        if let Some(end) = self.tlp.end {
            if self.snd_una >= end || (a.dsack && self.tlp.retrans) {
                if self.tlp.retrans && !a.dsack && self.recovery.phase == Phase::Open {
                    let basis = self.reduction_basis(self.outstanding().max(mss), ctx.cfg);
                    self.cc.on_congestion(now, basis, mss);
                    self.cc.on_recovery_end(now);
                }
                self.tlp.end = None;
            }
        }

        self.frto_on_ack(advanced, &a.delivered, ctx);

        // Loss detection.
        if self.sack_enabled && ctx.cfg.rack {
            self.rack_detect(now);
            // RFC 8985 §6.2 with a zero reordering window once DupThresh segments are SACKed
            // covers this too; DupThresh duplicate ACKs without SACK blocks (a peer that SACKs
            // nothing useful) still mark SND.UNA's segment.
            if self.recovery.phase == Phase::Open && self.recovery.dup_acks >= 3 {
                self.board.mark_first_lost();
            }
        } else if self.sack_enabled {
            // RFC 6675 §4 IsLost: more than (DupThresh - 1) * SMSS SACKed above a segment;
            // RFC 6675 §5: or DupThresh duplicate ACKs for SND.UNA's.
            self.board.mark_lost_by_dupthresh(2 * mss);
            if self.recovery.phase == Phase::Open && self.recovery.dup_acks >= 3 {
                self.board.mark_first_lost();
            }
        } else if self.recovery.phase == Phase::Open && self.recovery.dup_acks == 3 && a.dup_ack {
            // RFC 5681 §3.2 (2): the third duplicate ACK.
            self.board.mark_first_lost();
        } else if self.recovery.phase == Phase::Recovery && advanced && self.snd_una < self.recovery.recover {
            // RFC 6582 §3.2 (3): a partial ACK; the next segment is lost too.
            self.board.mark_first_lost();
        }

        // What this ACK delivered (RFC 6937 DeliveredData).
        let delivered = if self.sack_enabled {
            a.delivered.acked_unsacked + a.delivered.sacked
        } else if a.dup_ack {
            self.recovery.dup_credit += mss;
            mss
        } else if advanced {
            let acked = (self.snd_una - a.prior_una) as u32;
            let credit = self.recovery.dup_credit.min(acked);
            self.recovery.dup_credit -= credit;
            acked - credit
        } else {
            0
        };

        // The phases.
        let mut exited = false;
        // A reduction for ECE lasts until something above its point is acknowledged: the CWR
        // went out with the first new data there (Linux's TCP_CA_CWR, held for "CWR bit to
        // reach receiver").
        let past = match self.recovery.phase {
            Phase::Cwr => self.snd_una > self.recovery.recover,
            _ => self.snd_una >= self.recovery.recover,
        };
        if self.recovery.phase != Phase::Open && advanced && past {
            // RFC 6675 §5 / RFC 6582 §3.2 (3): recovery ends when RecoveryPoint is acknowledged.
            if matches!(self.recovery.phase, Phase::Recovery | Phase::Cwr) {
                self.cc.on_recovery_end(now);
            }
            // RFC 8985 §6.2 step 4: a recovery ends (fast or after a timeout), on an ACK whose
            // D-SACK did not grow the window; after 16 such, the window is back to one step.
            if matches!(self.recovery.phase, Phase::Recovery | Phase::Loss) && !grew {
                self.rack.reo_wnd_persist = self.rack.reo_wnd_persist.saturating_sub(1);
                if self.rack.reo_wnd_persist == 0 {
                    self.rack.reo_wnd_mult = 1;
                }
            }
            self.recovery.phase = Phase::Open;
            self.recovery.dup_credit = 0;
            exited = true;
        }
        match self.recovery.phase {
            Phase::Open if self.board.any_lost() => {
                self.enter_recovery(now, a.prior_pipe.max(self.outstanding()), ctx);
                self.prr_update(delivered);
            }
            // RFC 3168 §6.1.2: at most once per window of data, as for a loss, but nothing is
            // resent.
            Phase::Open if a.ece && !exited => {
                self.enter_cwr(now, a.prior_pipe.max(self.outstanding()), ctx.cfg);
                self.prr_update(delivered);
            }
            Phase::Open if advanced && !exited => self.grow_window(now, seg, a),
            Phase::Open => {}
            Phase::Cwr if self.board.any_lost() => {
                // A loss during the reduction: recovery, without reducing again (Linux's
                // tcp_enter_recovery in a window reduction).
                self.recovery.phase = Phase::Recovery;
                self.recovery.recover = self.snd_max;
                ctx.stats.fast_retransmits += 1;
                self.prr_update(delivered);
            }
            Phase::Recovery | Phase::Cwr => self.prr_update(delivered),
            // After a timeout, slow start regrows the window while the lost data is resent.
            Phase::Loss if advanced => self.grow_window(now, seg, a),
            Phase::Loss => {}
        }
    }

    /// F-RTO's steps 2 and 3 (RFC 5682 §2.1; with SACK, §4: "data that was not retransmitted"
    /// may be SACKed rather than acknowledged).
    fn frto_on_ack(&mut self, advanced: bool, d: &Delivered, ctx: &mut Ctx<'_>) {
        let Some(step) = self.frto.step else { return };
        match step {
            FrtoStep::FirstAck if advanced && self.snd_una < self.recovery.recover && self.unsent() > 0 => {
                // (2b) New data acknowledged, not all of it: two new segments before deciding.
                self.frto.step = Some(FrtoStep::SecondAck);
                self.frto.new_segments = 2;
            }
            FrtoStep::SecondAck if d.original => {
                // (3b) Data never retransmitted was delivered: the timeout was spurious. The
                // response (RFC 5682 §3, RFC 4015): the window from before it.
                let (cwnd, ssthresh) = self.frto.prior;
                self.cc.undo(cwnd, ssthresh);
                self.board.clear_lost();
                self.recovery.phase = Phase::Open;
                self.frto.step = None;
                ctx.stats.spurious_timeouts += 1;
            }
            _ => {
                // (2a), (3a): a duplicate ACK, all acknowledged, or nothing new to send: the
                // conventional recovery after a timeout, everything not SACKed resent (marked
                // lost at the timeout).
                self.frto.step = None;
                self.frto.new_segments = 0;
            }
        }
    }

    /// Bytes queued and never sent.
    pub(super) fn unsent(&self) -> usize {
        let sent = self.snd_max.max(self.data_start()) - self.data_start();
        self.send_buf.len().saturating_sub(sent)
    }

    fn grow_window(&mut self, now: Instant, seg: &TcpRepr<'_>, a: &AckSummary) {
        let mss = self.snd_mss;
        let cwnd = self.cc.cwnd();
        // Linux's tcp_is_cwnd_limited: in slow start, a flight of at least half the window; in
        // congestion avoidance, a full window.
        let cwnd_limited = if cwnd < self.cc.ssthresh() {
            u64::from(a.prior_pipe) * 2 >= u64::from(cwnd)
        } else {
            u64::from(a.prior_pipe) + u64::from(3 * mss) >= u64::from(cwnd)
        };
        self.cc.on_ack(&AckInfo {
            now,
            acked: (self.snd_una - a.prior_una) as u32,
            mss,
            rtt: a.rtt,
            ack: seg.ack,
            snd_max: self.snd_max,
            cwnd_limited,
        });
    }

    /// RFC 6675 §5 step 4 / RFC 6937: fast recovery begins.
    fn enter_recovery(&mut self, now: Instant, flight: u32, ctx: &mut Ctx<'_>) {
        let mss = self.snd_mss;
        self.recovery.phase = Phase::Recovery;
        self.recovery.recover = self.snd_max;
        self.recovery.prr_delivered = 0;
        self.recovery.prr_out = 0;
        self.recovery.rescued = false;
        self.recovery.recover_fs = flight.max(mss);
        self.cc.on_congestion(now, self.reduction_basis(flight, ctx.cfg), mss);
        self.rtt_probe = None;
        self.tlp.end = None;
        self.tlp.due = false;
        self.timers.stop(Timer::Probe);
        ctx.stats.fast_retransmits += 1;
    }

    /// RFC 3168 §6.1.2: the congestion window is reduced for an ECN echo as for a loss
    /// (RFC 5681's halving, or the controller's own decrease), PRR spreading the reduction
    /// (RFC 6937 §1: "any TCP congestion window reduction"), and the next new data carries CWR.
    fn enter_cwr(&mut self, now: Instant, flight: u32, cfg: &TcpConfig) {
        let mss = self.snd_mss;
        self.recovery.phase = Phase::Cwr;
        self.recovery.recover = self.snd_max;
        self.recovery.prr_delivered = 0;
        self.recovery.prr_out = 0;
        self.recovery.recover_fs = flight.max(mss);
        self.cc.on_congestion(now, self.reduction_basis(flight, cfg), mss);
        self.ecn.queue_cwr = true;
    }

    /// What a congestion event reduces: the flight (RFC 5681 §3.1 (4), RFC 9438 §4.6), or with
    /// `TcpConfig::ssthresh_from_cwnd` the window, as Linux's `tcp_reno_ssthresh` and
    /// `cubictcp_recalc_ssthresh` do.
    pub(super) fn reduction_basis(&self, flight: u32, cfg: &TcpConfig) -> u32 {
        if cfg.ssthresh_from_cwnd {
            self.cc.cwnd().max(self.snd_mss)
        } else {
            flight
        }
    }

    fn prr_update(&mut self, delivered: u32) {
        let pipe = self.pipe();
        let cwnd = self.recovery.prr_cwnd(delivered, pipe, self.cc.ssthresh(), self.snd_mss);
        self.cc.set_cwnd(cwnd);
    }

    /// RFC 8985 §6.2 steps 1-3: the newest delivered transmission, its RTT, reordering; and
    /// step 4's growth of the reordering window (true when this ACK grew it).
    fn rack_update(&mut self, now: Instant, d: &Delivered, dsack: bool) -> bool {
        if d.reordering || dsack {
            self.rack.reordering_seen = true;
        }
        // Step 4: the reordering window grows by a step per round trip that sees a D-SACK (a
        // retransmission the peer did not need), and persists for 16 recoveries.
        if self.rack.dsack_round.is_some_and(|r| self.snd_una >= r) {
            self.rack.dsack_round = None;
        }
        let grew = dsack && self.rack.dsack_round.is_none();
        if grew {
            self.rack.dsack_round = Some(self.snd_nxt);
            self.rack.reo_wnd_mult = self.rack.reo_wnd_mult.saturating_add(1);
            self.rack.reo_wnd_persist = REO_WND_PERSIST;
        }
        let Some((xmit, end, retransmitted)) = d.newest else { return grew };
        let rtt = now.saturating_duration_since(xmit);
        // Step 1: a retransmitted segment's RTT is ambiguous; take it only when it cannot be
        // the original's (not shorter than the smallest RTT seen).
        if retransmitted && self.rack.min_rtt.is_none_or(|m| rtt < m) {
            return grew;
        }
        self.rack.rtt = rtt;
        self.rack.min_rtt = Some(self.rack.min_rtt.map_or(rtt, |m| m.min(rtt)));
        let newer = self.rack.newest.is_none_or(|(t, e)| xmit > t || (xmit == t && end > e));
        if newer {
            self.rack.newest = Some((xmit, end));
        }
        grew
    }

    /// RFC 8985 §6.2 steps 4-5: marks what RACK deems lost, and runs the reordering timer for
    /// what is not due yet.
    pub(super) fn rack_detect(&mut self, now: Instant) {
        let Some((xmit, end)) = self.rack.newest else { return };
        let reo_wnd = if !self.rack.reordering_seen
            && (self.recovery.phase != Phase::Open || self.board.sacked_bytes() >= 3 * self.snd_mss)
        {
            Duration::ZERO
        } else {
            let quarter =
                Duration::from_micros(self.rack.min_rtt.unwrap_or(Duration::ZERO).total_micros() / 4);
            let window = quarter.saturating_mul(u64::from(self.rack.reo_wnd_mult));
            self.rtt.srtt().map_or(window, |s| window.min(s))
        };
        let (_, timer) = self.board.rack_detect(now, xmit, end, self.rack.rtt + reo_wnd);
        match timer {
            Some(at) => self.timers.set(Timer::Reorder, at),
            None => self.timers.stop(Timer::Reorder),
        }
    }

    /// The reordering timer expired (RFC 8985 §6.3): what is now overdue is lost.
    pub(super) fn on_reorder_timeout(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        self.rack_detect(now);
        if self.board.any_lost() && self.recovery.phase == Phase::Open {
            self.enter_recovery(now, self.outstanding(), ctx);
            self.prr_update(0);
        }
    }

    /// RFC 8985 §7.2: after new data went out or an ACK advanced, schedule a probe timeout
    /// ahead of the RTO, when outside recovery with SACK on.
    pub(super) fn arm_tlp(&mut self, now: Instant) {
        if !self.sack_enabled
            || !self.tlp.enabled
            || self.recovery.phase != Phase::Open
            || self.tlp.end.is_some()
            || self.snd_una == self.snd_max
            || !self.syn_acked()
        {
            self.timers.stop(Timer::Probe);
            return;
        }
        // §7.2: PTO = 2 SRTT, plus the worst-case delayed ACK for a lone segment; like Linux
        // (tcp_schedule_loss_probe), never less than 2 SRTT + 2 ms (its TCP_TIMEOUT_MIN).
        let pto = match self.rtt.srtt() {
            Some(srtt) => {
                let extra = if self.outstanding() <= self.snd_mss + 1 { WC_DEL_ACK } else { PTO_MIN_EXTRA };
                srtt.saturating_mul(2) + extra
            }
            None => Duration::from_secs(1),
        };
        // §7.2: an RTO due sooner than the PTO sends the probe at the RTO's time instead (Linux's
        // tcp_schedule_loss_probe caps the timeout at the RTO's remaining time likewise).
        let at = match self.timers.get(Timer::Retransmit) {
            Some(rto) => (now + pto).min(rto),
            None => now + pto,
        };
        self.timers.set(Timer::Probe, at);
    }

    /// The probe timeout expired (RFC 8985 §7.3): the next transmission is a probe, and the RTO
    /// (which may be due at the same time, §7.2) runs from now.
    pub(super) fn on_probe_timeout(&mut self, now: Instant) {
        if self.recovery.phase == Phase::Open && self.snd_una != self.snd_max {
            self.tlp.due = true;
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
    }
}
