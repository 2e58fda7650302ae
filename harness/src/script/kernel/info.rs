//! The kernel's `struct tcp_info` (linux/tcp.h) read from the bytes `getsockopt(TCP_INFO)` wrote:
//! the `tcpi_*` fields scripts name, by their offsets. A field past what the kernel wrote (an
//! older kernel's shorter struct) is absent.
//!
//! Must not depend on: anything but the bytes.

/// Byte fields: name and offset.
const U8: &[(&str, usize)] = &[
    ("tcpi_state", 0),
    ("tcpi_ca_state", 1),
    ("tcpi_retransmits", 2),
    ("tcpi_probes", 3),
    ("tcpi_backoff", 4),
    ("tcpi_options", 5),
];

/// 32-bit fields: name and offset.
const U32: &[(&str, usize)] = &[
    ("tcpi_rto", 8),
    ("tcpi_ato", 12),
    ("tcpi_snd_mss", 16),
    ("tcpi_rcv_mss", 20),
    ("tcpi_unacked", 24),
    ("tcpi_sacked", 28),
    ("tcpi_lost", 32),
    ("tcpi_retrans", 36),
    ("tcpi_fackets", 40),
    ("tcpi_last_data_sent", 44),
    ("tcpi_last_ack_sent", 48),
    ("tcpi_last_data_recv", 52),
    ("tcpi_last_ack_recv", 56),
    ("tcpi_pmtu", 60),
    ("tcpi_rcv_ssthresh", 64),
    ("tcpi_rtt", 68),
    ("tcpi_rttvar", 72),
    ("tcpi_snd_ssthresh", 76),
    ("tcpi_snd_cwnd", 80),
    ("tcpi_advmss", 84),
    ("tcpi_reordering", 88),
    ("tcpi_rcv_rtt", 92),
    ("tcpi_rcv_space", 96),
    ("tcpi_total_retrans", 100),
    ("tcpi_segs_out", 136),
    ("tcpi_segs_in", 140),
    ("tcpi_notsent_bytes", 144),
    ("tcpi_min_rtt", 148),
    ("tcpi_data_segs_in", 152),
    ("tcpi_data_segs_out", 156),
    ("tcpi_delivered", 192),
    ("tcpi_delivered_ce", 196),
    ("tcpi_dsack_dups", 216),
    ("tcpi_reord_seen", 220),
    ("tcpi_rcv_ooopack", 224),
    ("tcpi_snd_wnd", 228),
    ("tcpi_rcv_wnd", 232),
    ("tcpi_rehash", 236),
];

/// 64-bit fields: name and offset.
const U64: &[(&str, usize)] = &[
    ("tcpi_pacing_rate", 104),
    ("tcpi_max_pacing_rate", 112),
    ("tcpi_bytes_acked", 120),
    ("tcpi_bytes_received", 128),
    ("tcpi_delivery_rate", 160),
    ("tcpi_busy_time", 168),
    ("tcpi_rwnd_limited", 176),
    ("tcpi_sndbuf_limited", 184),
    ("tcpi_bytes_sent", 200),
    ("tcpi_bytes_retrans", 208),
];

/// The field `name` of a `struct tcp_info` in `b`.
pub fn field(b: &[u8], name: &str) -> Option<i64> {
    let bytes = |off: usize, n: usize| b.get(off..off + n);
    match name {
        "tcpi_snd_wscale" => return bytes(6, 1).map(|x| i64::from(x[0] & 0xf)),
        "tcpi_rcv_wscale" => return bytes(6, 1).map(|x| i64::from(x[0] >> 4)),
        "tcpi_delivery_rate_app_limited" => return bytes(7, 1).map(|x| i64::from(x[0] & 1)),
        "tcpi_fastopen_client_fail" => return bytes(7, 1).map(|x| i64::from((x[0] >> 1) & 3)),
        _ => {}
    }
    if let Some((_, off)) = U8.iter().find(|(n, _)| *n == name) {
        return bytes(*off, 1).map(|x| i64::from(x[0]));
    }
    if let Some((_, off)) = U32.iter().find(|(n, _)| *n == name) {
        return bytes(*off, 4).map(|x| i64::from(u32::from_ne_bytes([x[0], x[1], x[2], x[3]])));
    }
    if let Some((_, off)) = U64.iter().find(|(n, _)| *n == name) {
        return bytes(*off, 8).and_then(|x| x.try_into().ok()).map(|x| u64::from_ne_bytes(x) as i64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// linux/tcp.h: the offsets of `struct tcp_info` as libc lays the same struct out.
    #[test]
    fn offsets_agree_with_the_c_struct() {
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        info.tcpi_state = 1;
        info.tcpi_ca_state = 3;
        info.tcpi_rto = 201_000;
        info.tcpi_snd_cwnd = 10;
        info.tcpi_total_retrans = 7;
        info.tcpi_rtt = 1234;
        info.tcpi_snd_ssthresh = 9;
        info.tcpi_advmss = 1448;
        // SAFETY: a plain C struct read as its bytes.
        let b = unsafe {
            std::slice::from_raw_parts(&info as *const _ as *const u8, std::mem::size_of::<libc::tcp_info>())
        };
        assert_eq!(field(b, "tcpi_state"), Some(1));
        assert_eq!(field(b, "tcpi_ca_state"), Some(3));
        assert_eq!(field(b, "tcpi_rto"), Some(201_000));
        assert_eq!(field(b, "tcpi_snd_cwnd"), Some(10));
        assert_eq!(field(b, "tcpi_total_retrans"), Some(7));
        assert_eq!(field(b, "tcpi_rtt"), Some(1234));
        assert_eq!(field(b, "tcpi_snd_ssthresh"), Some(9));
        assert_eq!(field(b, "tcpi_advmss"), Some(1448));
        assert_eq!(field(&b[..8], "tcpi_rto"), None, "a shorter struct lacks the field");
        assert_eq!(field(b, "tcpi_no_such_field"), None);
    }
}
