//! Configuration of a [`Stack`](crate::Stack): addresses, MTU, buffers, the ISN secret and the TCP
//! knobs. `Config::default()` follows the RFCs' recommendations; `Config::linux_like()` sets the
//! knobs the way Linux does, so captures and scripts taken from Linux compare field by field.

use crate::time::Duration;
use std::net::IpAddr;

/// Which congestion controller new connections use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CongestionKind {
    /// RFC 5681 slow start, congestion avoidance, fast retransmit and fast recovery, with
    /// NewReno's partial ACKs (RFC 6582) when SACK is off.
    Reno,
    /// CUBIC (RFC 9438), Linux's default since 2.6.19.
    Cubic,
    /// No congestion control: the window is the peer's window (for tests and benchmarks only).
    None,
}

/// TCP knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Nagle's algorithm (RFC 896) on new connections; `TCP_NODELAY` turns it off per socket.
    pub nagle: bool,
    /// Delayed-ACK timer (RFC 1122 §4.2.3.2, at most 500 ms); `None` acknowledges every segment.
    pub delayed_ack: Option<Duration>,
    /// Initial retransmission timeout (RFC 6298 §2.1: 1 s).
    pub initial_rto: Duration,
    /// Lower bound of the RTO (RFC 6298 §2.4: 1 s; Linux uses 200 ms).
    pub min_rto: Duration,
    /// The RTO as Linux computes it (`tcp_set_rto`): SRTT + max(4·RTTVAR, `min_rto`), the
    /// minimum a floor of the variance term, instead of RFC 6298 (2.3)-(2.4)'s
    /// max(SRTT + 4·RTTVAR, `min_rto`). The two agree until the variance term falls below the
    /// minimum (RTTs under about 100 ms); then Linux's is later by up to SRTT.
    pub linux_rto: bool,
    /// RTT samples from when the newly acknowledged data was sent, in microseconds, as Linux
    /// takes them (`tcp_clean_rtx_queue`), the timestamp echo only when what was acknowledged
    /// had been retransmitted; off, the echo of RFC 7323 §4.1 (in `ts_hz` ticks) whenever
    /// timestamps are on. Karn's rule (RFC 6298 §3) holds either way.
    pub rtt_from_send_times: bool,
    /// Upper bound of the RTO (RFC 6298 §2.5: at least 60 s).
    pub max_rto: Duration,
    /// Retransmissions of a SYN before the connection attempt fails.
    pub syn_retries: u32,
    /// Retransmissions of data or FIN before the connection is aborted (RFC 1122 §4.2.3.5 R2).
    pub max_retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts twice this (RFC 9293 §3.4.2).
    pub msl: Duration,
    /// How long a closed connection (no handle left) may sit in FIN-WAIT-2 waiting for the peer's
    /// FIN before it is dropped (Linux's net.ipv4.tcp_fin_timeout, 60 s; RFC 9293 sets no limit).
    pub fin_timeout: Duration,
    /// Congestion controller.
    pub congestion: CongestionKind,
    /// A congestion event sets ssthresh from the congestion window, as Linux's controllers do
    /// (`tcp_reno_ssthresh`, `cubictcp_recalc_ssthresh`: cwnd/2, cwnd × 0.7), not from the
    /// flight size (RFC 5681 §3.1 (4), RFC 9438 §4.6). They differ when the application kept
    /// less than a window in flight; Linux keeps such a window from growing instead
    /// (`tcp_is_cwnd_limited`).
    pub ssthresh_from_cwnd: bool,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_window: u32,
    /// Offer and accept SACK (RFC 2018); with it, recovery follows the SACK scoreboard
    /// (RFC 6675).
    pub sack: bool,
    /// RACK loss detection (RFC 8985 §6): a segment is lost when one sent after it was delivered
    /// and a reordering window has passed, which also finds lost retransmissions. Off: RFC 6675's
    /// DupThresh rule (`IsLost`). Linux's `tcp_recovery` bit 1, on by default there.
    pub rack: bool,
    /// RFC 6675 §4 NextSeg (3) in SACK recovery: when nothing deemed lost is left to resend and
    /// no new data may go, one segment from the first hole below the highest SACK that is not
    /// yet deemed lost (nor being resent), if the window has room, so that holes with too
    /// little SACKed above them for `IsLost` are repaired without a timeout. Only without
    /// `rack`: RACK's reordering window and tail loss probe decide on such holes by time.
    /// Linux has no such rule since RACK took over its loss detection: `tcp_xmit_retransmit_queue`
    /// resends only segments marked lost (older kernels' "forward retransmission",
    /// `tcp_can_forward_retransmit`, was this rule).
    pub forward_retransmit: bool,
    /// Tail loss probes (RFC 8985 §7): a probe two round trips after the last send, so a loss at
    /// the end of a flight is repaired without waiting for the RTO. Needs SACK. Linux's
    /// `tcp_early_retrans` = 3, its default.
    pub tail_loss_probe: bool,
    /// F-RTO (RFC 5682): after a timeout, two new segments first; if the ACKs that follow
    /// acknowledge data that was never retransmitted, the timeout was spurious and the window is
    /// restored. Linux's `tcp_frto`, on by default there.
    pub frto: bool,
    /// Pace data segments at a rate of cwnd / SRTT (twice that in slow start, 1.2 times in
    /// congestion avoidance, Linux's `tcp_pacing_ss_ratio` and `tcp_pacing_ca_ratio`) instead of
    /// sending each window as a burst. Off in both profiles (Linux paces only with the fq qdisc
    /// or BBR).
    pub pacing: bool,
    /// PSH on the last segment of each burst (when the windows leave no room for another full
    /// segment), as Linux marks the end of each transmission, besides the segment that empties
    /// the send buffer (RFC 9293 §3.9.1 leaves the choice to the implementation).
    pub push_each_burst: bool,
    /// Offer and accept timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Offer and accept window scaling (RFC 7323 §2).
    pub window_scale: bool,
    /// Receive buffer per connection, bytes.
    pub recv_buffer: usize,
    /// Send buffer per connection, bytes.
    pub send_buffer: usize,
    /// Receive-buffer autotuning limit (Linux's `tcp_rmem[2]`): the buffer grows from
    /// `recv_buffer` towards this as the application drains more per round trip (Linux's
    /// dynamic right-sizing), and the window scale is chosen to advertise it. At most
    /// `recv_buffer` (the default is 0): no autotuning. A socket whose receive buffer was set
    /// (`SO_RCVBUF`) is not autotuned, as in Linux.
    pub recv_buffer_max: usize,
    /// Send-buffer growth limit (Linux's `tcp_wmem[2]`): the buffer grows to twice the
    /// congestion window, up to this. At most `send_buffer` (the default is 0): no growth.
    pub send_buffer_max: usize,
    /// Half-open connections a listener keeps before dropping new SYNs.
    pub syn_backlog: usize,
    /// Keepalive idle time before the first probe (RFC 1122 §4.2.3.6); `None` is off (the default).
    pub keepalive: Option<Duration>,
    /// Interval between keepalive probes.
    pub keepalive_interval: Duration,
    /// Unanswered keepalive probes before the connection is dropped.
    pub keepalive_probes: u32,
    /// Challenge ACKs allowed per second across the stack (RFC 5961 §7).
    pub challenge_ack_limit: u32,
    /// Timestamp clock rate in ticks per second (RFC 7323 §5.4: 1 ms to 1 s per tick).
    pub ts_hz: u32,
    /// RFC 1337: ignore RST in TIME-WAIT.
    pub rfc1337: bool,
    /// Segments acknowledged at once at the start of a connection, before delayed ACKs begin, as
    /// Linux's quick-ACK mode does (at most 16); none by default. An interactive connection (one
    /// that answers data with data) leaves quick-ACK mode.
    pub quickack: u32,
    /// Keep data that arrives on a SYN and deliver it once established (RFC 9293 §3.10.7.2);
    /// Linux, without TCP Fast Open, discards it and lets the peer send it again.
    pub accept_syn_data: bool,
    /// TCP Fast Open (RFC 7413), client and server; Linux's `net.ipv4.tcp_fastopen`.
    pub fast_open: FastOpenConfig,
    /// Explicit Congestion Notification (RFC 3168): which handshakes turn it on; Linux's
    /// `net.ipv4.tcp_ecn`.
    pub ecn: EcnMode,
    /// The unsent-bytes mark of sockets that set no TCP_NOTSENT_LOWAT
    /// ([`SocketOptions::notsent_lowat`](crate::SocketOptions::notsent_lowat)); `None` is no
    /// mark, Linux's `net.ipv4.tcp_notsent_lowat` default of 4294967295.
    pub notsent_lowat: Option<u32>,
}

/// When a connection uses ECN (RFC 3168 §6.1.1): the values of Linux's `net.ipv4.tcp_ecn`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EcnMode {
    /// 0: never; an ECN-setup SYN is answered as a plain one.
    #[default]
    Off,
    /// 1: ask for it on our SYNs and accept it on the peer's.
    On,
    /// 2 (Linux's default): accept it when the peer's SYN asks, never ask.
    Passive,
}

impl EcnMode {
    /// From the value of `net.ipv4.tcp_ecn`; `None` for a value utcp lacks (3 and up: AccECN).
    pub fn from_linux(value: u64) -> Option<Self> {
        match value {
            0 => Some(EcnMode::Off),
            1 => Some(EcnMode::On),
            2 => Some(EcnMode::Passive),
            _ => None,
        }
    }
}

/// TCP Fast Open (RFC 7413): which sides are on and how cookies are asked for. The bits of
/// Linux's `net.ipv4.tcp_fastopen` (Documentation/networking/ip-sysctl.rst) map one to one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastOpenConfig {
    /// Bit 0x1: connections opened with data ([`Stack::connect_fast_open`](crate::Stack::connect_fast_open))
    /// ask for a cookie and send data on the SYN once one is cached.
    pub client: bool,
    /// Bit 0x2: listeners with a Fast Open queue accept data on a SYN with a valid cookie.
    pub server: bool,
    /// Bit 0x4: the client sends data on the SYN without a cookie.
    pub client_no_cookie: bool,
    /// Bit 0x200: the server accepts data on a SYN without a cookie.
    pub server_no_cookie: bool,
    /// Bit 0x400: every listener has a Fast Open queue as long as its backlog, without the
    /// `TCP_FASTOPEN` socket option.
    pub server_all_listeners: bool,
}

impl FastOpenConfig {
    /// From the value of Linux's `net.ipv4.tcp_fastopen`; `Err` names the bits utcp lacks.
    pub fn from_linux_bits(bits: u64) -> Result<Self, u64> {
        // 0x1, 0x2, 0x4, 0x200, 0x400; the upper 16 bits were once the queue length of 0x400.
        let unknown = bits & 0xffff & !0x607;
        if unknown != 0 {
            return Err(unknown);
        }
        Ok(FastOpenConfig {
            client: bits & 0x1 != 0,
            server: bits & 0x2 != 0,
            client_no_cookie: bits & 0x4 != 0,
            server_no_cookie: bits & 0x200 != 0,
            server_all_listeners: bits & 0x400 != 0,
        })
    }
}

/// The whole configuration of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Local addresses, v4 and v6; packets to other addresses are dropped and counted.
    pub addresses: Vec<IpAddr>,
    /// The link MTU: the largest IP datagram sent; the advertised MSS is derived from it.
    pub mtu: usize,
    /// Key for ISNs (RFC 6528) and SYN cookies; the caller supplies it so replay is deterministic.
    pub isn_secret: [u8; 16],
    /// Key of the TCP Fast Open server's cookies (RFC 7413 §4.1.2), as Linux's
    /// `net.ipv4.tcp_fastopen_key` holds it (the four words little-endian); supplied by the
    /// caller like `isn_secret`. A listener may have its own (`TCP_FASTOPEN_KEY`).
    pub fast_open_key: [u8; 16],
    /// TTL / hop limit of outgoing packets.
    pub hop_limit: u8,
    /// Checksum offload: TCP checksums are neither verified on input nor computed on output
    /// (a device or an in-memory link that guarantees integrity). Off by default.
    pub checksum_offload: bool,
    /// TCP knobs.
    pub tcp: TcpConfig,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            nagle: true,
            delayed_ack: Some(Duration::from_millis(200)),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_secs(1),
            linux_rto: false,
            rtt_from_send_times: false,
            max_rto: Duration::from_secs(60),
            syn_retries: 6,
            max_retries: 15,
            msl: Duration::from_secs(30),
            fin_timeout: Duration::from_secs(60),
            congestion: CongestionKind::Reno,
            ssthresh_from_cwnd: false,
            initial_window: 10,
            sack: true,
            rack: false,
            forward_retransmit: true,
            tail_loss_probe: false,
            frto: false,
            pacing: false,
            push_each_burst: false,
            timestamps: true,
            window_scale: true,
            recv_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
            recv_buffer_max: 0,
            send_buffer_max: 0,
            syn_backlog: 128,
            keepalive: None,
            keepalive_interval: Duration::from_secs(75),
            keepalive_probes: 9,
            challenge_ack_limit: 1000,
            ts_hz: 1000,
            rfc1337: true,
            accept_syn_data: true,
            quickack: 0,
            fast_open: FastOpenConfig::default(),
            ecn: EcnMode::Off,
            notsent_lowat: None,
        }
    }
}

impl TcpConfig {
    /// The knobs as Linux sets them by default (net.ipv4.tcp_* defaults, 6.x kernels).
    pub fn linux_like() -> Self {
        TcpConfig {
            delayed_ack: Some(Duration::from_millis(40)),
            min_rto: Duration::from_millis(200),
            linux_rto: true,
            rtt_from_send_times: true,
            max_rto: Duration::from_secs(120),
            syn_retries: 6,
            max_retries: 15,
            msl: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(75),
            accept_syn_data: false,
            quickack: 16,
            // net.ipv4.tcp_fastopen = 1: the client side only.
            fast_open: FastOpenConfig { client: true, ..FastOpenConfig::default() },
            // net.ipv4.tcp_ecn = 2.
            ecn: EcnMode::Passive,
            rack: true,
            forward_retransmit: false,
            tail_loss_probe: true,
            frto: true,
            push_each_burst: true,
            congestion: CongestionKind::Cubic,
            ssthresh_from_cwnd: true,
            // net.ipv4.tcp_rmem = 4096 131072 6291456, tcp_wmem = 4096 16384 4194304 (the send
            // buffer starts larger here: the in-memory peers write in big chunks).
            recv_buffer: 128 * 1024,
            recv_buffer_max: 6 * 1024 * 1024,
            send_buffer_max: 4 * 1024 * 1024,
            ..TcpConfig::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addresses: Vec::new(),
            mtu: 1500,
            isn_secret: [0; 16],
            fast_open_key: [0; 16],
            hop_limit: 64,
            checksum_offload: false,
            tcp: TcpConfig::default(),
        }
    }
}

impl Config {
    /// A configuration with Linux's defaults for the TCP knobs.
    pub fn linux_like() -> Self {
        Config { tcp: TcpConfig::linux_like(), ..Config::default() }
    }

    /// Adds a local address.
    pub fn with_address(mut self, addr: IpAddr) -> Self {
        self.addresses.push(addr);
        self
    }
}
