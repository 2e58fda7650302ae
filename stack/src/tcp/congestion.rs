//! Congestion control behind a small trait: RFC 5681 with the RFC 6582 (NewReno) partial-ACK rule
//! as the first controller, and RFC 6928's initial window.
//!
//! SACK-based recovery (RFC 6675) and CUBIC (RFC 9438) come later; they implement the same trait.

use crate::tcp::seq::SeqNum;

/// What a congestion controller is told, and what it decides.
pub(crate) trait Controller: core::fmt::Debug + Send {
    /// The congestion window in bytes.
    fn cwnd(&self) -> u32;
    /// The slow-start threshold in bytes.
    fn ssthresh(&self) -> u32;
    /// New data was acknowledged (`acked` bytes), outside fast recovery.
    fn on_ack(&mut self, acked: u32, mss: u32);
    /// The third duplicate ACK: enter fast recovery with `flight` bytes outstanding.
    fn on_fast_retransmit(&mut self, flight: u32, mss: u32);
    /// A further duplicate ACK during fast recovery.
    fn on_dup_ack_in_recovery(&mut self, mss: u32);
    /// A partial ACK during fast recovery (RFC 6582 §3.2 step 3).
    fn on_partial_ack(&mut self, acked: u32, mss: u32);
    /// Recovery ended with a full ACK (RFC 6582 §3.2 step 3, full acknowledgment).
    fn on_recovery_end(&mut self, flight: u32, mss: u32);
    /// The retransmission timer expired with `flight` bytes outstanding (RFC 5681 §3.1 (4)).
    fn on_timeout(&mut self, flight: u32, mss: u32);
}

/// RFC 5681 Reno with NewReno partial ACKs.
#[derive(Debug, Clone)]
pub(crate) struct Reno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    bytes_acked: u32,
}

impl Reno {
    /// RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600)), generalised to `iw_segments`.
    pub(crate) fn new(iw_segments: u32, mss: u32) -> Self {
        let iw = (iw_segments * mss).min((2 * mss).max(iw_segments * 1460));
        Reno { cwnd: iw.max(mss), ssthresh: u32::MAX, bytes_acked: 0 }
    }
}

impl Controller for Reno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, mss: u32) {
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 (2): slow start grows cwnd by at most SMSS per ACK (RFC 3465 L=1).
            self.cwnd = self.cwnd.saturating_add(acked.min(mss));
        } else {
            // RFC 5681 §3.1 (3): congestion avoidance, about one SMSS per RTT (byte counting).
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_fast_retransmit(&mut self, flight: u32, mss: u32) {
        // RFC 5681 §3.2 (4)-(5): ssthresh = max(FlightSize/2, 2*SMSS); cwnd = ssthresh + 3*SMSS.
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = self.ssthresh + 3 * mss;
    }

    fn on_dup_ack_in_recovery(&mut self, mss: u32) {
        // RFC 5681 §3.2 (6): inflate by SMSS for each further duplicate.
        self.cwnd = self.cwnd.saturating_add(mss);
    }

    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        // RFC 6582 §3.2 (3): deflate by the amount acknowledged, then add back SMSS if >= SMSS.
        self.cwnd = self.cwnd.saturating_sub(acked);
        if acked >= mss {
            self.cwnd = self.cwnd.saturating_add(mss);
        }
        self.cwnd = self.cwnd.max(mss);
    }

    fn on_recovery_end(&mut self, flight: u32, mss: u32) {
        // RFC 6582 §3.2 (3) full acknowledgment: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
        self.cwnd = self.ssthresh.min(flight.max(mss) + mss);
        self.bytes_acked = 0;
    }

    fn on_timeout(&mut self, flight: u32, mss: u32) {
        // RFC 5681 §3.1 (4) and (5): ssthresh = max(FlightSize/2, 2*SMSS); cwnd = 1 SMSS (LW).
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.bytes_acked = 0;
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
    fn on_ack(&mut self, _: u32, _: u32) {}
    fn on_fast_retransmit(&mut self, _: u32, _: u32) {}
    fn on_dup_ack_in_recovery(&mut self, _: u32) {}
    fn on_partial_ack(&mut self, _: u32, _: u32) {}
    fn on_recovery_end(&mut self, _: u32, _: u32) {}
    fn on_timeout(&mut self, _: u32, _: u32) {}
}

/// Fast-recovery bookkeeping shared by every controller (RFC 5681 §3.2, RFC 6582).
#[derive(Debug, Clone, Default)]
pub(crate) struct Recovery {
    /// Duplicate ACKs in a row.
    pub(crate) dup_acks: u32,
    /// `Some(recover)` while in fast recovery: SND.NXT when it began (RFC 6582 §3.2 (2)).
    pub(crate) recover: Option<SeqNum>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6928_initial_window_is_ten_segments_for_1460() {
        assert_eq!(Reno::new(10, 1460).cwnd(), 14600);
        assert_eq!(Reno::new(10, 1448).cwnd(), 14480);
    }

    #[test]
    fn rfc5681_slow_start_then_avoidance() {
        let mut r = Reno::new(10, 1000);
        r.on_ack(1000, 1000);
        assert_eq!(r.cwnd(), 11_000);
        r.on_timeout(20_000, 1000);
        assert_eq!((r.cwnd(), r.ssthresh()), (1000, 10_000));
        r.on_fast_retransmit(8000, 1000);
        assert_eq!((r.cwnd(), r.ssthresh()), (7000, 4000));
        r.on_recovery_end(4000, 1000);
        assert_eq!(r.cwnd(), 4000);
        // Congestion avoidance: a whole window of ACKs grows cwnd by one MSS.
        for _ in 0..4 {
            r.on_ack(1000, 1000);
        }
        assert_eq!(r.cwnd(), 5000);
    }
}
