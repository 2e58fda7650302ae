//! A connection's timers: one optional deadline per kind, the next wake-up their minimum, in the
//! manner of quinn-proto's `TimerTable`.
//!
//! Must not depend on: clocks (deadlines are given), anything else in the crate but `time`.

use crate::time::Instant;

/// The kinds of timer a connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Retransmission (RFC 6298), also of the SYN and the FIN.
    Retransmit = 0,
    /// The delayed ACK (RFC 1122 §4.2.3.2).
    DelayedAck = 1,
    /// The zero-window probe (RFC 9293 §3.8.6.1).
    Persist = 2,
    /// Keepalive probes (RFC 1122 §4.2.3.6).
    Keepalive = 3,
    /// TIME-WAIT's 2×MSL, or the FIN-WAIT-2 limit of an orphaned connection.
    Close = 4,
    /// RACK's reordering window (RFC 8985 §6.2 step 5): segments not yet deemed lost.
    Reorder = 5,
    /// The tail loss probe (RFC 8985 §7.2).
    Probe = 6,
    /// The next paced transmission (`TcpConfig::pacing`).
    Pace = 7,
}

impl Timer {
    /// Every kind, in the order expired timers are run.
    /// The probe goes before the RTO: one due at the RTO's time is sent instead (RFC 8985 §7.2).
    pub(crate) const ALL: [Timer; 8] = [
        Timer::Probe,
        Timer::Retransmit,
        Timer::Reorder,
        Timer::Pace,
        Timer::DelayedAck,
        Timer::Persist,
        Timer::Keepalive,
        Timer::Close,
    ];
}

/// One deadline per [`Timer`], `None` when that timer is stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Starts (or restarts) `timer` to expire at `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    /// Stops `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    /// Stops every timer.
    pub(crate) fn stop_all(&mut self) {
        self.data = [None; Timer::ALL.len()];
    }

    /// When `timer` expires, if it runs.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.data[timer as usize]
    }

    /// Stops `timer` and says so if it was due at `now`; a timer not yet due keeps running.
    pub(crate) fn expire(&mut self, timer: Timer, now: Instant) -> bool {
        match self.data[timer as usize] {
            Some(at) if at <= now => {
                self.data[timer as usize] = None;
                true
            }
            _ => false,
        }
    }

    /// The earliest deadline of any running timer.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_timeout_is_the_earliest_running_timer() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::Keepalive, Instant::from_micros(30));
        t.set(Timer::Retransmit, Instant::from_micros(20));
        assert_eq!(t.next_timeout(), Some(Instant::from_micros(20)));
        t.stop(Timer::Retransmit);
        assert_eq!(t.next_timeout(), Some(Instant::from_micros(30)));
        assert_eq!(t.get(Timer::Keepalive), Some(Instant::from_micros(30)));
        assert_eq!(t.get(Timer::Retransmit), None);
        t.stop_all();
        assert_eq!(t.next_timeout(), None);
    }

    #[test]
    fn expire_stops_only_a_due_timer() {
        let mut t = TimerTable::default();
        t.set(Timer::DelayedAck, Instant::from_micros(10));
        assert!(!t.expire(Timer::DelayedAck, Instant::from_micros(9)));
        assert!(t.get(Timer::DelayedAck).is_some());
        assert!(t.expire(Timer::DelayedAck, Instant::from_micros(10)));
        assert_eq!(t.get(Timer::DelayedAck), None);
        assert!(!t.expire(Timer::Close, Instant::from_micros(10)));
    }
}
