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
    /// Where loss recovery is (Linux's `tcpi_ca_state`).
    pub ca_state: CaState,
    /// Bytes SACKed above SND.UNA (Linux's `tcpi_sacked` counts segments).
    pub sacked_bytes: u32,
    /// Bytes deemed lost and not SACKed (`tcpi_lost`).
    pub lost_bytes: u32,
    /// Bytes of retransmissions in flight (`tcpi_retrans`).
    pub retrans_bytes: u32,
    /// How much reordering the connection has seen, in segments (Linux's `tp->reordering`,
    /// `tcpi_reordering`): 3 at first, raised to the distance in segments below the highest
    /// SACK at which a segment never retransmitted was delivered, up to 300.
    pub reordering: u32,
    /// The estimate of the peer's segment size from what it sent (Linux's `icsk_ack.rcv_mss`,
    /// `tcpi_rcv_mss`): 536 or less at first, then the largest data segment, at most the MSS
    /// this side advertised.
    pub rcv_mss: u32,
    /// Data on the SYN was acknowledged by the SYN-ACK (client), or accepted from the SYN
    /// (server): TCP Fast Open worked (Linux's `TCPI_OPT_SYN_DATA`).
    pub syn_data_acked: bool,
    /// Segments delivered to the peer (acknowledged or SACKed), the SYN counted as one
    /// (Linux's `tcpi_delivered`).
    pub delivered: u32,
}

/// The loss-recovery states Linux reports in `tcpi_ca_state` (`enum tcp_ca_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaState {
    /// Nothing unusual (TCP_CA_Open, 0).
    Open,
    /// Duplicate ACKs or SACKs seen, no loss decided yet (TCP_CA_Disorder, 1).
    Disorder,
    /// Reducing the window for an ECN echo (RFC 3168 §6.1.2), no loss (TCP_CA_CWR, 2).
    Cwr,
    /// Fast recovery (TCP_CA_Recovery, 3).
    Recovery,
    /// After a retransmission timeout (TCP_CA_Loss, 4).
    Loss,
}

impl CaState {
    /// Linux's number for the state.
    pub fn linux_value(self) -> u8 {
        match self {
            CaState::Open => 0,
            CaState::Disorder => 1,
            CaState::Cwr => 2,
            CaState::Recovery => 3,
            CaState::Loss => 4,
        }
    }
}
