//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use crate::time::Duration;

/// SRTT, RTTVAR and the RTO with its exponential backoff.
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
    /// How many times the RTO was doubled since the last new acknowledgment.
    backoff: u32,
    /// `TcpConfig::linux_rto`: SRTT + max(4·RTTVAR, min_rto).
    linux: bool,
}

/// RFC 6298 (2.4) clock granularity G; we keep microseconds, so 1 ms is generous.
const GRANULARITY: Duration = Duration::from_millis(1);

impl RttEstimator {
    /// RFC 6298 (2.1): until a measurement is made, RTO = initial RTO.
    pub(crate) fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial_rto,
            min_rto,
            max_rto,
            backoff: 0,
            linux: false,
        }
    }

    /// The RTO as Linux computes it (`TcpConfig::linux_rto`).
    pub(crate) fn linux_rto(self, linux: bool) -> Self {
        RttEstimator { linux, ..self }
    }

    /// Feeds one RTT measurement.
    pub(crate) fn sample(&mut self, r: Duration) {
        match self.srtt {
            // RFC 6298 (2.2): first measurement.
            None => {
                self.srtt = Some(r);
                self.rttvar = Duration::from_micros(r.total_micros() / 2);
            }
            // RFC 6298 (2.3): RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'.
            Some(srtt) => {
                let s = srtt.total_micros() as i64;
                let err = (s - r.total_micros() as i64).unsigned_abs();
                self.rttvar = Duration::from_micros((3 * self.rttvar.total_micros() + err) / 4);
                self.srtt = Some(Duration::from_micros((7 * srtt.total_micros() + r.total_micros()) / 8));
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        // RFC 6298 (2.3): RTO <- SRTT + max(G, K*RTTVAR), K = 4; (2.4) at least min_rto; (2.5) a
        // maximum. Linux (tcp_set_rto) floors the variance term instead: SRTT + max(K*RTTVAR,
        // min_rto).
        let var = GRANULARITY.max(self.rttvar.saturating_mul(4));
        let rto = if self.linux { srtt + var.max(self.min_rto) } else { (srtt + var).max(self.min_rto) };
        self.rto = rto.min(self.max_rto);
        self.backoff = 0;
    }

    /// RFC 6298 (5.5): the RTO doubles at each expiry, up to the maximum.
    pub(crate) fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// Clears the backoff after new data is acknowledged (RFC 6298 (5.7) keeps the doubled value
    /// until a new sample arrives; Karn's algorithm takes the next sample from new data).
    pub(crate) fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// The current timeout including backoff.
    pub(crate) fn rto(&self) -> Duration {
        let shift = self.backoff.min(20);
        self.rto.saturating_mul(1 << shift).min(self.max_rto)
    }

    /// The smoothed RTT, if any measurement was made.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(Duration::from_secs(1), Duration::from_millis(200), Duration::from_secs(60))
    }

    #[test]
    fn rfc6298_first_sample_sets_srtt_and_half_rttvar() {
        let mut e = est();
        e.sample(Duration::from_millis(100));
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        // RTO = 100 + 4 * 50 = 300 ms (2.2).
        assert_eq!(e.rto(), Duration::from_millis(300));
    }

    #[test]
    fn rfc6298_rto_is_clamped_to_minimum() {
        let mut e = est();
        e.sample(Duration::from_millis(1));
        assert_eq!(e.rto(), Duration::from_millis(200));
    }

    #[test]
    fn rfc6298_backoff_doubles_up_to_maximum() {
        let mut e = est();
        e.back_off();
        assert_eq!(e.rto(), Duration::from_secs(2));
        for _ in 0..10 {
            e.back_off();
        }
        assert_eq!(e.rto(), Duration::from_secs(60));
    }

    #[test]
    fn linux_rto_floors_the_variance_term_not_the_sum() {
        // 10 ms RTT: RFC 6298 gives max(10 + 20, 200) = 200 ms, Linux 10 + max(20, 200) = 210.
        let mut e = est();
        e.sample(Duration::from_millis(10));
        assert_eq!(e.rto(), Duration::from_millis(200));
        let mut l = est().linux_rto(true);
        l.sample(Duration::from_millis(10));
        assert_eq!(l.rto(), Duration::from_millis(210));
        // 100 ms: both 300 ms, the variance term (200 ms) being at the minimum.
        let mut l = est().linux_rto(true);
        l.sample(Duration::from_millis(100));
        assert_eq!(l.rto(), Duration::from_millis(300));
    }

    #[test]
    fn rfc6298_later_samples_smooth() {
        let mut e = est();
        e.sample(Duration::from_millis(100));
        e.sample(Duration::from_millis(200));
        // RTTVAR = 3/4*50 + 1/4*100 = 62.5 ms; SRTT = 7/8*100 + 1/8*200 = 112.5 ms.
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(112_500 + 250_000));
    }
}
