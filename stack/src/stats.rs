//! The stack's counters: packets and segments in and out, retransmissions, and drops by reason.
//!
//! Shared by the stack and its connections; must not depend on either (`crate::stack`,
//! `crate::tcp`).

/// Counters, readable at any time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// IP datagrams given to `handle_packet`.
    pub packets_in: u64,
    /// IP datagrams returned by `poll_transmit`.
    pub packets_out: u64,
    /// TCP segments accepted for processing.
    pub segments_in: u64,
    /// TCP segments sent.
    pub segments_out: u64,
    /// Segments retransmitted (RTO, fast retransmit, SYN and FIN retransmissions).
    pub retransmissions: u64,
    /// Retransmission timeouts that fired.
    pub timeouts: u64,
    /// Fast retransmits (three duplicate ACKs).
    pub fast_retransmits: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the rate limit.
    pub challenge_acks_suppressed: u64,
    /// RSTs sent.
    pub resets_out: u64,
    /// RSTs accepted.
    pub resets_in: u64,
    /// Checksum failures (also counted in `drops`).
    pub checksum_failures: u64,
    /// Connections established.
    pub connections_established: u64,
    /// ICMP echo requests answered.
    pub echo_replies: u64,
    /// ICMP error messages received (destination unreachable, packet too big, time exceeded,
    /// parameter problem), whatever became of them.
    pub icmp_errors_in: u64,
    /// Path MTU decreases taken from fragmentation-needed / packet-too-big messages (RFC 1191,
    /// RFC 8201).
    pub pmtu_updates: u64,
    /// Dropped packets and segments by reason, sorted by reason name.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
}

impl Stats {
    /// The number of drops counted under `reason` (0 if none).
    pub fn dropped(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}
