//! A snapshot of one connection's variables ([`ConnectionInfo`]), as the stack reports it.
//!
//! Filled in by the connection, handed out by the stack; must not depend on either's internals.

use crate::tcp::State;
use crate::time::Duration;
use std::net::SocketAddr;

/// A snapshot of one connection's variables, for tests, reports and invariant checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// RFC 9293 state.
    pub state: State,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Initial send sequence number.
    pub iss: u32,
    /// Initial receive sequence number (0 until known).
    pub irs: u32,
    /// SND.UNA.
    pub snd_una: u32,
    /// SND.NXT.
    pub snd_nxt: u32,
    /// The peer's window, scaled, in bytes.
    pub snd_wnd: u32,
    /// RCV.NXT.
    pub rcv_nxt: u32,
    /// The window last advertised, scaled, in bytes.
    pub rcv_wnd: u32,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow-start threshold in bytes.
    pub ssthresh: u32,
    /// Effective send MSS.
    pub mss: u16,
    /// The MSS this side advertised (Linux's `tcpi_advmss`).
    pub adv_mss: u16,
    /// Whether timestamps (RFC 7323 §3) were negotiated.
    pub timestamps: bool,
    /// Whether SACK (RFC 2018) was negotiated.
    pub sack: bool,
    /// The window scale shifts, the peer's and ours, when window scaling (RFC 7323 §2) was
    /// negotiated.
    pub window_scale: Option<(u8, u8)>,
    /// Smoothed RTT, if measured.
    pub srtt: Option<Duration>,
    /// Current RTO.
    pub rto: Duration,
    /// Bytes queued for sending (unsent and unacknowledged).
    pub send_queue: usize,
    /// Bytes ready for the application to read.
    pub recv_queue: usize,
}
