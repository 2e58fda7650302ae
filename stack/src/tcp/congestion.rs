//! Congestion control behind a small trait: NewReno (RFC 5681, RFC 6582) and CUBIC (RFC 9438),
//! both with slow start by byte counting as Linux does it (RFC 3465: the window grows by what
//! each ACK acknowledges) and HyStart++ (RFC 9406), and RFC 6928's initial window.
//!
//! The controllers decide how the window grows and what a congestion event leaves
//! (`ssthresh`); during fast recovery the connection drives the window itself with Proportional
//! Rate Reduction (RFC 6937) through [`Controller::set_cwnd`].
//!
//! Must not depend on: clocks (times are given), I/O, anything in the crate but `seq` and `time`.

use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};

/// What one ACK tells the controller, outside recovery.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckInfo {
    pub(crate) now: Instant,
    /// Bytes newly acknowledged.
    pub(crate) acked: u32,
    pub(crate) mss: u32,
    /// The round-trip sample this ACK gave, if any.
    pub(crate) rtt: Option<Duration>,
    /// SEG.ACK and SND.MAX, for HyStart++'s rounds.
    pub(crate) ack: SeqNum,
    pub(crate) snd_max: SeqNum,
    /// The window limited the sender before this ACK (Linux's `tcp_is_cwnd_limited`): an
    /// application- or receiver-limited sender does not grow its window (RFC 7661's spirit).
    pub(crate) cwnd_limited: bool,
}

/// What a congestion controller is told, and what it decides.
pub(crate) trait Controller: core::fmt::Debug + Send {
    /// The congestion window in bytes.
    fn cwnd(&self) -> u32;
    /// The slow-start threshold in bytes.
    fn ssthresh(&self) -> u32;
    /// New data was acknowledged outside recovery.
    fn on_ack(&mut self, a: &AckInfo);
    /// A loss episode begins (fast recovery, or a loss a tail loss probe repaired) with `flight`
    /// bytes outstanding: sets `ssthresh`; the window follows through `set_cwnd`.
    fn on_congestion(&mut self, now: Instant, flight: u32, mss: u32);
    /// The window PRR (RFC 6937) computed during recovery.
    fn set_cwnd(&mut self, cwnd: u32);
    /// Recovery ended: the window is `ssthresh` (RFC 6937 §3.1, RFC 6582 §3.2 (3)).
    fn on_recovery_end(&mut self, now: Instant);
    /// The retransmission timer expired with `flight` bytes outstanding (RFC 5681 §3.1 (4)).
    fn on_timeout(&mut self, now: Instant, flight: u32, mss: u32);
    /// A reduction turned out to be spurious (F-RTO, RFC 5682 §3): back to the window and
    /// threshold from before it.
    fn undo(&mut self, cwnd: u32, ssthresh: u32);
}

/// RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600)), generalised to `iw_segments`.
fn initial_window(iw_segments: u32, mss: u32) -> u32 {
    (iw_segments * mss).min((2 * mss).max(iw_segments * 1460)).max(mss)
}

/// Slow start by byte counting with HyStart++ (RFC 9406), shared by the controllers.
#[derive(Debug, Clone)]
struct SlowStart {
    /// The end of the current round: SND.MAX when it began (RFC 9406 §4.2 `windowEnd`).
    window_end: Option<SeqNum>,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_samples: u32,
    /// In Conservative Slow Start: the baseline RTT and the rounds spent there.
    css: Option<(Duration, u32)>,
}

/// RFC 9406 §4.3 constants.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const N_RTT_SAMPLE: u32 = 8;
const CSS_GROWTH_DIVISOR: u32 = 4;
const CSS_ROUNDS: u32 = 5;

/// What slow start decided for one ACK.
enum SlowStartStep {
    /// Grow the window by this many bytes.
    Grow(u32),
    /// Leave slow start: ssthresh = cwnd.
    Exit,
}

impl SlowStart {
    fn new() -> Self {
        SlowStart {
            window_end: None,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_samples: 0,
            css: None,
        }
    }

    fn on_ack(&mut self, a: &AckInfo) -> SlowStartStep {
        // RFC 9406 §4.2: a new round starts when the ACK passes windowEnd.
        let round_ended = self.window_end.is_none_or(|end| a.ack >= end);
        if round_ended {
            self.window_end = Some(a.snd_max);
            self.last_round_min_rtt = self.current_round_min_rtt;
            self.current_round_min_rtt = None;
            self.rtt_samples = 0;
            if let Some((_, rounds)) = self.css.as_mut() {
                *rounds += 1;
                if *rounds >= CSS_ROUNDS {
                    // §4.2: CSS_ROUNDS rounds of CSS without a return to slow start: leave.
                    self.css = None;
                    return SlowStartStep::Exit;
                }
            }
        }
        // The round's minimum from its first N_RTT_SAMPLE samples only, as Linux's HyStart
        // samples delay (RFC 9406 §4.2 takes the whole round; with ACK-clocked slow-start bursts
        // the later samples of a round fall back to the base RTT once its burst has drained, and
        // would end CSS as "spurious" every round).
        if let Some(rtt) = a.rtt.filter(|_| self.rtt_samples < N_RTT_SAMPLE) {
            self.current_round_min_rtt = Some(self.current_round_min_rtt.map_or(rtt, |m| m.min(rtt)));
            self.rtt_samples += 1;
        }
        let (Some(cur), Some(last)) = (self.current_round_min_rtt, self.last_round_min_rtt) else {
            return self.grow(a);
        };
        match self.css {
            None if self.rtt_samples >= N_RTT_SAMPLE => {
                let eta = Duration::from_micros(
                    (last.total_micros() / 8)
                        .clamp(MIN_RTT_THRESH.total_micros(), MAX_RTT_THRESH.total_micros()),
                );
                if cur >= last + eta {
                    // §4.2: the delay rose; enter Conservative Slow Start.
                    self.css = Some((cur, 0));
                }
            }
            Some((baseline, _)) if self.rtt_samples >= N_RTT_SAMPLE && cur < baseline => {
                // §4.2: the rise was spurious; back to slow start.
                self.css = None;
            }
            _ => {}
        }
        self.grow(a)
    }

    /// Slow start's step for one ACK while cwnd < ssthresh (growth, or leaving slow start);
    /// false when the sender is past slow start.
    fn slow_start(&mut self, cwnd: &mut u32, ssthresh: &mut u32, a: &AckInfo) -> bool {
        if *cwnd >= *ssthresh {
            return false;
        }
        match self.on_ack(a) {
            SlowStartStep::Grow(n) => *cwnd = cwnd.saturating_add(n).min((*ssthresh).max(*cwnd)),
            SlowStartStep::Exit => *ssthresh = *cwnd,
        }
        true
    }

    fn grow(&self, a: &AckInfo) -> SlowStartStep {
        // RFC 3465 byte counting as Linux does it (`tcp_slow_start`: cwnd += packets acked);
        // RFC 9406 §4.2: a quarter of that in CSS.
        let divisor = if self.css.is_some() { CSS_GROWTH_DIVISOR } else { 1 };
        SlowStartStep::Grow(a.acked / divisor)
    }
}

/// RFC 5681 Reno with NewReno partial ACKs (the partial-ACK retransmissions are the
/// connection's), slow start with HyStart++.
#[derive(Debug, Clone)]
pub(crate) struct Reno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    bytes_acked: u32,
    ss: SlowStart,
}

impl Reno {
    pub(crate) fn new(iw_segments: u32, mss: u32) -> Self {
        Reno {
            cwnd: initial_window(iw_segments, mss),
            ssthresh: u32::MAX,
            bytes_acked: 0,
            ss: SlowStart::new(),
        }
    }
}

impl Controller for Reno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, a: &AckInfo) {
        if !a.cwnd_limited {
            return;
        }
        if self.ss.slow_start(&mut self.cwnd, &mut self.ssthresh, a) {
            return;
        }
        // RFC 5681 §3.1 (3): congestion avoidance, about one SMSS per RTT (byte counting).
        self.bytes_acked = self.bytes_acked.saturating_add(a.acked);
        if self.bytes_acked >= self.cwnd {
            self.bytes_acked -= self.cwnd;
            self.cwnd = self.cwnd.saturating_add(a.mss);
        }
    }

    fn on_congestion(&mut self, _: Instant, flight: u32, mss: u32) {
        // RFC 5681 §3.2 (4) / RFC 6582 §3.2 (2): ssthresh = max(FlightSize/2, 2*SMSS).
        self.ssthresh = (flight / 2).max(2 * mss);
        self.bytes_acked = 0;
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd;
    }

    fn on_recovery_end(&mut self, _: Instant) {
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    fn on_timeout(&mut self, _: Instant, flight: u32, mss: u32) {
        // RFC 5681 §3.1 (4) and (5): ssthresh = max(FlightSize/2, 2*SMSS); cwnd = 1 SMSS (LW).
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.bytes_acked = 0;
        self.ss = SlowStart::new();
    }

    fn undo(&mut self, cwnd: u32, ssthresh: u32) {
        self.cwnd = cwnd;
        self.ssthresh = ssthresh;
        self.bytes_acked = 0;
    }
}

/// CUBIC (RFC 9438) with fast convergence and the Reno-friendly region, slow start with
/// HyStart++.
#[derive(Debug, Clone)]
pub(crate) struct Cubic {
    cwnd: u32,
    ssthresh: u32,
    /// W_max in bytes: the window before the last reduction (§4.2).
    w_max: f64,
    /// The start of the current congestion-avoidance epoch, with K (seconds) and the window at
    /// its start (§4.2).
    epoch: Option<(Instant, f64)>,
    /// The Reno-friendly estimate W_est in bytes (§4.3).
    w_est: f64,
    /// Bytes acknowledged not yet turned into window growth.
    pending: f64,
    /// The smallest RTT seen, for the cubic target's `t + RTT`.
    min_rtt: Option<Duration>,
    ss: SlowStart,
}

/// RFC 9438 §5: C = 0.4 (segments / s³), β_cubic = 0.7.
const CUBIC_C: f64 = 0.4;
const CUBIC_BETA: f64 = 0.7;

impl Cubic {
    pub(crate) fn new(iw_segments: u32, mss: u32) -> Self {
        Cubic {
            cwnd: initial_window(iw_segments, mss),
            ssthresh: u32::MAX,
            w_max: 0.0,
            epoch: None,
            w_est: 0.0,
            pending: 0.0,
            min_rtt: None,
            ss: SlowStart::new(),
        }
    }

    /// §4.7 fast convergence and §4.6 the multiplicative decrease, from the flight size
    /// (§4.6: "ssthresh = flight_size × β_cubic").
    fn reduce(&mut self, flight: u32, mss: u32) {
        let cwnd = f64::from(self.cwnd);
        self.w_max = if cwnd < self.w_max { cwnd * (1.0 + CUBIC_BETA) / 2.0 } else { cwnd };
        self.ssthresh = ((f64::from(flight) * CUBIC_BETA) as u32).max(2 * mss);
        self.epoch = None;
        self.pending = 0.0;
    }
}

impl Controller for Cubic {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, a: &AckInfo) {
        if let Some(rtt) = a.rtt {
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        if !a.cwnd_limited {
            // §5.8: an application- or receiver-limited sender does not grow the window.
            return;
        }
        if self.ss.slow_start(&mut self.cwnd, &mut self.ssthresh, a) {
            return;
        }
        let mss = f64::from(a.mss);
        let cwnd = f64::from(self.cwnd);
        let (start, k) = *self.epoch.get_or_insert_with(|| {
            // §4.2: a new epoch; K from how far below W_max the window is.
            self.w_est = cwnd;
            let k = if self.w_max > cwnd { ((self.w_max - cwnd) / mss / CUBIC_C).cbrt() } else { 0.0 };
            (a.now, k)
        });
        let w_max = self.w_max.max(cwnd);
        let rtt = self.min_rtt.map_or(0.1, |r| r.total_micros() as f64 / 1e6);
        let t = a.now.saturating_duration_since(start).total_micros() as f64 / 1e6;
        // §4.2: W_cubic(t) = C (t - K)³ + W_max, in segments; the target one RTT ahead,
        // clamped to [cwnd, 1.5 cwnd] (§4.4).
        let w_cubic = |t: f64| (CUBIC_C * (t - k).powi(3)) * mss + w_max;
        let target = w_cubic(t + rtt).clamp(cwnd, 1.5 * cwnd);
        // §4.3: the Reno-friendly window, α = 3(1 - β)/(1 + β) segments per RTT.
        let alpha = 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA);
        self.w_est += alpha * mss * f64::from(a.acked) / cwnd;
        if w_cubic(t) < self.w_est {
            // §4.3: in the Reno-friendly region the window is W_est.
            self.cwnd = self.cwnd.max(self.w_est as u32);
            return;
        }
        // §4.4/§4.5: cwnd grows by (target - cwnd)/cwnd per segment acknowledged.
        self.pending += (target - cwnd).max(0.0) * f64::from(a.acked) / cwnd;
        if self.pending >= 1.0 {
            let inc = self.pending.floor();
            self.pending -= inc;
            self.cwnd = self.cwnd.saturating_add(inc as u32);
        }
    }

    fn on_congestion(&mut self, _: Instant, flight: u32, mss: u32) {
        self.reduce(flight, mss);
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd;
    }

    fn on_recovery_end(&mut self, _: Instant) {
        self.cwnd = self.ssthresh;
    }

    fn on_timeout(&mut self, _: Instant, flight: u32, mss: u32) {
        // §4.8: as a congestion event, then the loss window of one segment.
        self.reduce(flight, mss);
        self.cwnd = mss;
        self.ss = SlowStart::new();
    }

    fn undo(&mut self, cwnd: u32, ssthresh: u32) {
        self.cwnd = cwnd;
        self.ssthresh = ssthresh;
        self.epoch = None;
    }
}

/// No congestion control: the window is unlimited (the peer's window still applies).
#[derive(Debug, Clone)]
pub(crate) struct Unlimited;

impl Controller for Unlimited {
    fn cwnd(&self) -> u32 {
        u32::MAX
    }
    fn ssthresh(&self) -> u32 {
        u32::MAX
    }
    fn on_ack(&mut self, _: &AckInfo) {}
    fn on_congestion(&mut self, _: Instant, _: u32, _: u32) {}
    fn set_cwnd(&mut self, _: u32) {}
    fn on_recovery_end(&mut self, _: Instant) {}
    fn on_timeout(&mut self, _: Instant, _: u32, _: u32) {}
    fn undo(&mut self, _: u32, _: u32) {}
}

/// Where the sender is in loss recovery (Linux's `icsk_ca_state`, reduced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    /// No loss outstanding.
    #[default]
    Open,
    /// Fast recovery (RFC 6675 / RFC 6582) until SND.UNA passes `recover`, the window driven by
    /// PRR (RFC 6937).
    Recovery,
    /// The window is being reduced for an ECN echo (RFC 3168 §6.1.2), by PRR as in recovery,
    /// until something above `recover` is acknowledged (so the CWR has reached the peer); a
    /// loss meanwhile turns it into recovery without a second reduction (Linux's TCP_CA_CWR).
    Cwr,
    /// After a retransmission timeout (or a path-MTU drop) until SND.UNA passes `recover`: what
    /// is lost is resent under slow start, and no further reduction happens.
    Loss,
}

/// Loss-recovery bookkeeping shared by every controller.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recovery {
    pub(crate) phase: Phase,
    /// Duplicate ACKs in a row (RFC 5681 §2).
    pub(crate) dup_acks: u32,
    /// SND.MAX when recovery began (RFC 6582 §3.2 (2), RFC 6675 `RecoveryPoint`).
    pub(crate) recover: SeqNum,
    /// RFC 6937: data delivered to the receiver and sent since recovery began, and the flight
    /// when it began (`RecoverFS`).
    pub(crate) prr_delivered: u64,
    pub(crate) prr_out: u64,
    pub(crate) recover_fs: u32,
    /// Without SACK: bytes credited to duplicate ACKs (RFC 6937 §3: each counts one SMSS
    /// delivered), taken back from the next cumulative ACK.
    pub(crate) dup_credit: u32,
    /// RFC 6675 §4 NextSeg (4): the one rescue retransmission of this recovery was sent.
    pub(crate) rescued: bool,
}

impl Recovery {
    /// RFC 6937 §3.1 (with PRR-SSRB): the window for this ACK, given what it delivered, the
    /// pipe after it, and ssthresh.
    pub(crate) fn prr_cwnd(&mut self, delivered: u32, pipe: u32, ssthresh: u32, mss: u32) -> u32 {
        self.prr_delivered += u64::from(delivered);
        let sndcnt = if pipe > ssthresh {
            // Proportional: send ssthresh/RecoverFS of what was delivered.
            let fs = u64::from(self.recover_fs.max(1));
            let allowed = (self.prr_delivered * u64::from(ssthresh)).div_ceil(fs);
            allowed.saturating_sub(self.prr_out)
        } else {
            // Slow-start reduction bound: catch up towards ssthresh, at most one MSS beyond
            // what was delivered.
            let limit =
                self.prr_delivered.saturating_sub(self.prr_out).max(u64::from(delivered)) + u64::from(mss);
            u64::from(ssthresh - pipe).min(limit)
        };
        // Linux: the fast retransmission itself always goes out.
        let sndcnt = if self.prr_out == 0 { sndcnt.max(u64::from(mss)) } else { sndcnt };
        pipe.saturating_add(sndcnt.min(u64::from(u32::MAX)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(now_ms: u64, acked: u32, rtt_ms: Option<u64>) -> AckInfo {
        AckInfo {
            now: Instant::from_millis(now_ms),
            acked,
            mss: 1000,
            rtt: rtt_ms.map(Duration::from_millis),
            ack: SeqNum(0),
            snd_max: SeqNum(0),
            cwnd_limited: true,
        }
    }

    #[test]
    fn rfc6928_initial_window_is_ten_segments_for_1460() {
        assert_eq!(Reno::new(10, 1460).cwnd(), 14600);
        assert_eq!(Reno::new(10, 1448).cwnd(), 14480);
        assert_eq!(Cubic::new(10, 1448).cwnd(), 14480);
    }

    #[test]
    fn rfc3465_slow_start_counts_bytes_acknowledged_as_linux_does() {
        let mut r = Reno::new(10, 1000);
        // One ACK for two segments (a delayed ACK) grows the window by both.
        r.on_ack(&ack(0, 2000, None));
        assert_eq!(r.cwnd(), 12_000);
        // An application-limited sender does not grow.
        r.on_ack(&AckInfo { cwnd_limited: false, ..ack(1, 2000, None) });
        assert_eq!(r.cwnd(), 12_000);
    }

    #[test]
    fn rfc5681_reno_halves_on_congestion_and_grows_one_mss_per_window_after() {
        let mut r = Reno::new(10, 1000);
        r.on_timeout(Instant::ZERO, 20_000, 1000);
        assert_eq!((r.cwnd(), r.ssthresh()), (1000, 10_000));
        r.on_congestion(Instant::ZERO, 8000, 1000);
        assert_eq!(r.ssthresh(), 4000);
        r.on_recovery_end(Instant::ZERO);
        assert_eq!(r.cwnd(), 4000);
        for _ in 0..4 {
            r.on_ack(&ack(10, 1000, None));
        }
        assert_eq!(r.cwnd(), 5000);
    }

    #[test]
    fn rfc9438_cubic_reduces_to_seventy_percent_and_regrows_towards_w_max() {
        let mut c = Cubic::new(10, 1000);
        c.set_cwnd(100_000);
        c.ssthresh = 50_000;
        c.on_congestion(Instant::ZERO, 100_000, 1000);
        assert_eq!(c.ssthresh(), 70_000);
        c.on_recovery_end(Instant::ZERO);
        assert_eq!(c.cwnd(), 70_000);
        // K = cbrt(30 segments / 0.4) ≈ 4.2 s: after 4.2 s of ACKs the window is back near
        // W_max, and it does not pass it much before K.
        let mut now = 0;
        while now < 4_000 {
            c.on_ack(&ack(now, 1000, Some(20)));
            now += 1;
        }
        assert!(c.cwnd() > 90_000 && c.cwnd() <= 100_500, "cwnd {}", c.cwnd());
        // Fast convergence (§4.7): a second reduction below the old W_max lowers W_max further.
        c.on_congestion(Instant::from_millis(now), 90_000, 1000);
        assert!(c.w_max < f64::from(c.cwnd()), "w_max {} cwnd {}", c.w_max, c.cwnd());
    }

    #[test]
    fn rfc9406_hystart_leaves_slow_start_when_the_round_trip_grows() {
        let mut r = Reno::new(10, 1000);
        let mut seq = 0u32;
        let mut round = |r: &mut Reno, rtt: u64, t: u64| {
            // One round: the ACK passes the previous round's end, then eight samples.
            for i in 0..N_RTT_SAMPLE {
                seq += 1000;
                r.on_ack(&AckInfo {
                    ack: SeqNum(seq),
                    snd_max: SeqNum(seq + 100_000),
                    ..ack(t + u64::from(i), 1000, Some(rtt))
                });
            }
            seq += 100_000;
        };
        round(&mut r, 20, 0);
        round(&mut r, 20, 20);
        assert!(r.ss.css.is_none());
        // 20 ms + max(4 ms, 20/8 ms): a round at 25 ms enters Conservative Slow Start.
        round(&mut r, 25, 40);
        assert!(r.ss.css.is_some());
        let before = r.cwnd();
        round(&mut r, 25, 60);
        assert_eq!(r.cwnd() - before, 8 * 1000 / CSS_GROWTH_DIVISOR);
        for i in 0..CSS_ROUNDS {
            round(&mut r, 25, 80 + 20 * u64::from(i));
        }
        assert_eq!(r.ssthresh(), r.cwnd(), "after CSS_ROUNDS rounds, congestion avoidance");
    }

    #[test]
    fn rfc6937_prr_sends_in_proportion_then_catches_up_to_ssthresh() {
        let mut rec = Recovery { recover_fs: 20_000, ..Recovery::default() };
        // pipe above ssthresh: 10 000 delivered of a 20 000 flight, ssthresh 10 000: 5 000.
        let cwnd = rec.prr_cwnd(10_000, 15_000, 10_000, 1000);
        assert_eq!(cwnd, 15_000 + 5000);
        rec.prr_out += 5000;
        // pipe below ssthresh (more losses): PRR-SSRB sends up to ssthresh - pipe = 4000, as
        // that is less than its limit, prr_delivered - prr_out + MSS = 11 000 - 5000 + 1000.
        let cwnd = rec.prr_cwnd(1000, 6000, 10_000, 1000);
        assert_eq!(cwnd, 10_000);
        // With a smaller lead the limit binds: delivered 500, pipe 2000, prr_out 11 000.
        rec.prr_out = 11_000;
        let cwnd = rec.prr_cwnd(500, 2000, 10_000, 1000);
        assert_eq!(cwnd, 2000 + 500 + 1000);
    }
}
