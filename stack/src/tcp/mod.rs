//! One TCP connection: sequence numbers, states, sending, receiving, RTT, timers, congestion.

pub(crate) mod buffers;
pub(crate) mod congestion;
pub(crate) mod conn;
pub(crate) mod isn;
pub(crate) mod rtt;
pub(crate) mod scoreboard;
pub mod seq;
pub(crate) mod timer;

pub use seq::SeqNum;

use core::fmt;

/// The states of RFC 9293 §3.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection.
    Closed,
    /// Waiting for a connection request.
    Listen,
    /// A SYN was sent; waiting for a matching SYN.
    SynSent,
    /// A SYN was received and answered; waiting for the acknowledgment.
    SynReceived,
    /// Data flows both ways.
    Established,
    /// This side closed first; waiting for the FIN to be acknowledged or a FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer closed; waiting for the local close.
    CloseWait,
    /// Both closed at once; waiting for the acknowledgment of our FIN.
    Closing,
    /// The peer closed first and we have closed; waiting for the last acknowledgment.
    LastAck,
    /// Waiting 2×MSL so that the peer got our ACK of its FIN.
    TimeWait,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        })
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Both sides closed and the closing handshake completed.
    Normal,
    /// The peer sent a RST on an established connection (ECONNRESET).
    Reset,
    /// The peer answered our SYN with a RST (ECONNREFUSED).
    Refused,
    /// Retransmissions or keepalive probes went unanswered (ETIMEDOUT).
    TimedOut,
    /// This side aborted the connection.
    Aborted,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::Normal => "closed",
            CloseReason::Reset => "reset by peer",
            CloseReason::Refused => "refused",
            CloseReason::TimedOut => "timed out",
            CloseReason::Aborted => "aborted",
        })
    }
}
