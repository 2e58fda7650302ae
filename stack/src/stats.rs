//! The stack's counters: packets and segments in and out, retransmissions, and drops by reason.
//!
//! Shared by the stack and its connections; must not depend on either (`crate::stack`,
//! `crate::tcp`).

use core::fmt;

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
    /// Tail loss probes sent (RFC 8985 §7).
    pub tail_loss_probes: u64,
    /// Retransmission timeouts F-RTO found spurious (RFC 5682), their window restored.
    pub spurious_timeouts: u64,
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
    /// Dropped packets and segments by reason.
    pub drops: DropCounts,
}

impl Stats {
    /// The number of drops counted under `reason` (0 if none).
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops.get(reason)
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.total()
    }

    /// Counts one drop.
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.drops.count(reason);
    }
}

/// Why a packet or segment was dropped: the key of [`Stats::drops`].
///
/// Variants are declared in the order of their names ([`DropReason::as_str`]), so that counters
/// indexed by the enum come out sorted by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// A SYN found the listener's accept queue beyond its backlog (the peer retries).
    AcceptQueueFull,
    /// An ACK outside `[SND.UNA - MAX.SND.WND, SND.NXT]` (RFC 5961 §5.2; a challenge ACK).
    AckOutOfRange,
    /// An ACK reached a listener (RFC 9293 §3.10.7.2 second; answered with a RST).
    AckToListener,
    /// An ACK of something never sent, in SYN-SENT or SYN-RECEIVED (RFC 9293 §3.10.7.3-4;
    /// answered with a RST).
    BadAck,
    /// The IP, TCP or ICMP checksum is wrong (also counted in `Stats::checksum_failures`).
    BadChecksum,
    /// A length field is impossible (below the header, beyond the buffer).
    BadLength,
    /// A TCP option has an impossible length or overruns the option space.
    BadOption,
    /// The IP version nibble is neither 4 nor 6.
    BadVersion,
    /// A queued datagram did not fit the buffer given to `poll_transmit`.
    BufferTooSmall,
    /// A segment reached a connection already CLOSED.
    Closed,
    /// New data after the application closed (RFC 1122 §4.2.2.13; answered with a RST).
    DataAfterClose,
    /// Data beyond the peer's FIN (RFC 9293 §3.10.7.4 seventh).
    DataAfterFin,
    /// A segment the connection meant to send could not be written.
    EmitFailed,
    /// An IP fragment: fragments are not reassembled.
    Fragment,
    /// The IPv4 IHL or the TCP data offset is below 5 words.
    HeaderLen,
    /// An ICMP echo reply or a message type the stack does not handle.
    IcmpIgnored,
    /// A packet-too-big not below the current path MTU (RFC 1191 §3, RFC 8201 §4).
    IcmpMtuNotLower,
    /// A packet-too-big below the floor (552 for IPv4, RFC 8201 §4's 1280 for IPv6).
    IcmpMtuTooSmall,
    /// An ICMP error quoting a segment of no connection.
    IcmpNoConnection,
    /// An ICMP error quoting a datagram that is not TCP.
    IcmpNotTcp,
    /// A parameter problem, counted and otherwise ignored (RFC 1122 §4.2.3.9).
    IcmpParamProblem,
    /// An ICMP error quoting a sequence number outside SND.UNA..SND.MAX (RFC 5927 §4.1).
    IcmpSeqOutOfWindow,
    /// A time exceeded, counted and otherwise ignored (RFC 1122 §4.2.3.9).
    IcmpTimeExceeded,
    /// A destination unreachable, counted and otherwise ignored (RFC 1122 §4.2.3.9, RFC
    /// 5927 §4).
    IcmpUnreachable,
    /// IPv4 and IPv6 addresses mixed in one datagram.
    MixedFamilies,
    /// A segment without ACK on a synchronized connection (RFC 9293 §3.10.7.4 fifth).
    NoAck,
    /// A segment for no connection and no listener (CLOSED, RFC 9293 §3.10.7.1; answered
    /// with a RST unless it is one).
    NoSocket,
    /// A segment in SYN-SENT with neither SYN nor RST (RFC 9293 §3.10.7.3 fifth).
    NoSyn,
    /// A segment without SYN, ACK or RST reached a listener (RFC 9293 §3.10.7.2).
    NoSynToListener,
    /// The destination address is not one of the stack's.
    NotLocal,
    /// More TCP options than fit in 40 bytes.
    OptionsTooLong,
    /// A RST or echo reply the stack generated found its outgoing queue full.
    OutboxFull,
    /// A timestamp older than TS.Recent (PAWS, RFC 7323 §5.3).
    Paws,
    /// A TCP segment with source or destination port 0.
    PortZero,
    /// The peer's SYN again in SYN-RECEIVED: the SYN-ACK is sent again.
    RetransmittedSyn,
    /// A RST in TIME-WAIT, ignored (RFC 1337).
    RstInTimeWait,
    /// A RST in the window but not at RCV.NXT (RFC 5961 §3.2; a challenge ACK).
    RstNotExact,
    /// A RST reached a listener (RFC 9293 §3.10.7.2 first).
    RstToListener,
    /// A RST in SYN-SENT without an acceptable ACK (RFC 9293 §3.10.7.3).
    RstWithoutAck,
    /// A SYN in SYN-RECEIVED of a passive open: the SYN-ACK is sent again.
    SynInSynReceived,
    /// A SYN on a synchronized connection (RFC 5961 §4.2; a challenge ACK).
    SynInWindow,
    /// A SYN found the half-open connections at `TcpConfig::syn_backlog`.
    SynQueueFull,
    /// A SYN found no free slot in the connection table.
    TooManyConnections,
    /// The datagram is shorter than a header or a length field says (wire layer).
    Truncated,
    /// Outside the receive window (RFC 9293 §3.10.7.4 first; answered with an ACK).
    Unacceptable,
    /// Neither TCP nor ICMP.
    UnknownProtocol,
    /// An IPv6 extension header that cannot be walked (ESP, unknown).
    UnsupportedExtension,
}

impl DropReason {
    /// How many reasons there are.
    pub const COUNT: usize = Self::ALL.len();

    /// Every reason, sorted by name.
    pub const ALL: [DropReason; 47] = [
        DropReason::AcceptQueueFull,
        DropReason::AckOutOfRange,
        DropReason::AckToListener,
        DropReason::BadAck,
        DropReason::BadChecksum,
        DropReason::BadLength,
        DropReason::BadOption,
        DropReason::BadVersion,
        DropReason::BufferTooSmall,
        DropReason::Closed,
        DropReason::DataAfterClose,
        DropReason::DataAfterFin,
        DropReason::EmitFailed,
        DropReason::Fragment,
        DropReason::HeaderLen,
        DropReason::IcmpIgnored,
        DropReason::IcmpMtuNotLower,
        DropReason::IcmpMtuTooSmall,
        DropReason::IcmpNoConnection,
        DropReason::IcmpNotTcp,
        DropReason::IcmpParamProblem,
        DropReason::IcmpSeqOutOfWindow,
        DropReason::IcmpTimeExceeded,
        DropReason::IcmpUnreachable,
        DropReason::MixedFamilies,
        DropReason::NoAck,
        DropReason::NoSocket,
        DropReason::NoSyn,
        DropReason::NoSynToListener,
        DropReason::NotLocal,
        DropReason::OptionsTooLong,
        DropReason::OutboxFull,
        DropReason::Paws,
        DropReason::PortZero,
        DropReason::RetransmittedSyn,
        DropReason::RstInTimeWait,
        DropReason::RstNotExact,
        DropReason::RstToListener,
        DropReason::RstWithoutAck,
        DropReason::SynInSynReceived,
        DropReason::SynInWindow,
        DropReason::SynQueueFull,
        DropReason::TooManyConnections,
        DropReason::Truncated,
        DropReason::Unacceptable,
        DropReason::UnknownProtocol,
        DropReason::UnsupportedExtension,
    ];

    /// The stable name printed in reports, JSON output and snapshots (`"bad_checksum"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::AcceptQueueFull => "accept_queue_full",
            DropReason::AckOutOfRange => "ack_out_of_range",
            DropReason::AckToListener => "ack_to_listener",
            DropReason::BadAck => "bad_ack",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::BadLength => "bad_length",
            DropReason::BadOption => "bad_option",
            DropReason::BadVersion => "bad_version",
            DropReason::BufferTooSmall => "buffer_too_small",
            DropReason::Closed => "closed",
            DropReason::DataAfterClose => "data_after_close",
            DropReason::DataAfterFin => "data_after_fin",
            DropReason::EmitFailed => "emit_failed",
            DropReason::Fragment => "fragment",
            DropReason::HeaderLen => "header_len",
            DropReason::IcmpIgnored => "icmp_ignored",
            DropReason::IcmpMtuNotLower => "icmp_mtu_not_lower",
            DropReason::IcmpMtuTooSmall => "icmp_mtu_too_small",
            DropReason::IcmpNoConnection => "icmp_no_connection",
            DropReason::IcmpNotTcp => "icmp_not_tcp",
            DropReason::IcmpParamProblem => "icmp_param_problem",
            DropReason::IcmpSeqOutOfWindow => "icmp_seq_out_of_window",
            DropReason::IcmpTimeExceeded => "icmp_time_exceeded",
            DropReason::IcmpUnreachable => "icmp_unreachable",
            DropReason::MixedFamilies => "mixed_families",
            DropReason::NoAck => "no_ack",
            DropReason::NoSocket => "no_socket",
            DropReason::NoSyn => "no_syn",
            DropReason::NoSynToListener => "no_syn_to_listener",
            DropReason::NotLocal => "not_local",
            DropReason::OptionsTooLong => "options_too_long",
            DropReason::OutboxFull => "outbox_full",
            DropReason::Paws => "paws",
            DropReason::PortZero => "port_zero",
            DropReason::RetransmittedSyn => "retransmitted_syn",
            DropReason::RstInTimeWait => "rst_in_time_wait",
            DropReason::RstNotExact => "rst_not_exact",
            DropReason::RstToListener => "rst_to_listener",
            DropReason::RstWithoutAck => "rst_without_ack",
            DropReason::SynInSynReceived => "syn_in_syn_received",
            DropReason::SynInWindow => "syn_in_window",
            DropReason::SynQueueFull => "syn_queue_full",
            DropReason::TooManyConnections => "too_many_connections",
            DropReason::Truncated => "truncated",
            DropReason::Unacceptable => "unacceptable",
            DropReason::UnknownProtocol => "unknown_protocol",
            DropReason::UnsupportedExtension => "unsupported_extension",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Drop counters, one per [`DropReason`], in a fixed array indexed by the reason.
#[derive(Clone, PartialEq, Eq)]
pub struct DropCounts([u64; DropReason::COUNT]);

impl Default for DropCounts {
    fn default() -> Self {
        DropCounts([0; DropReason::COUNT])
    }
}

impl DropCounts {
    /// The drops counted under `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize]
    }

    /// Every reason counted at least once with its count, sorted by the reason's name.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.0[r as usize])).filter(|&(_, n)| n > 0)
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn count(&mut self, reason: DropReason) {
        self.0[reason as usize] += 1;
    }
}

/// Like the map it replaced: `{"bad_checksum": 1, ...}`, non-zero counts only.
impl fmt::Debug for DropCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter().map(|(r, n)| (r.as_str(), n))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_declared_in_name_order_and_indexed_by_position() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r}");
        }
        for w in DropReason::ALL.windows(2) {
            assert!(w[0].as_str() < w[1].as_str(), "{} before {}", w[0], w[1]);
        }
    }

    #[test]
    fn drop_counts_iterate_non_zero_by_name() {
        let mut s = Stats::default();
        s.count_drop(DropReason::Unacceptable);
        s.count_drop(DropReason::BadChecksum);
        s.count_drop(DropReason::Unacceptable);
        let got: Vec<_> = s.drops.iter().map(|(r, n)| (r.as_str(), n)).collect();
        assert_eq!(got, [("bad_checksum", 1), ("unacceptable", 2)]);
        assert_eq!(s.dropped(DropReason::Unacceptable), 2);
        assert_eq!(s.dropped(DropReason::Paws), 0);
        assert_eq!(s.total_drops(), 3);
        assert_eq!(format!("{:?}", s.drops), r#"{"bad_checksum": 1, "unacceptable": 2}"#);
    }
}
