//! SYN cookies (RFC 4987 §3.6): when a listener's SYN queue is full, the SYN-ACK's initial
//! sequence number encodes what the connection needs, so a SYN flood costs no memory and a peer
//! that answers with an ACK still gets a connection.
//!
//! The cookie is the classic layout: the top 5 bits are a counter that moves every 64 seconds,
//! the next 3 bits pick the peer's MSS from a table, and the low 24 bits are a keyed hash (from
//! `Config::isn_secret`) of the 4-tuple, the counter and the peer's ISN. A cookie is good for the
//! counter's current and previous value. What a cookie cannot carry (window scale, SACK-permitted,
//! timestamps) the SYN-ACK does not offer, so both ends agree on plain options.
//!
//! Must not depend on: clocks, I/O, threads, OS randomness (time and secret come in).

use crate::tcp::conn::FourTuple;
use crate::tcp::{isn, SeqNum};
use crate::time::Instant;
use std::net::IpAddr;

/// How long one value of the cookie counter lasts, microseconds (64 s, as Linux and RFC 4987).
pub(super) const PERIOD_MICROS: u64 = 64_000_000;

/// The MSS values a cookie can carry (3 bits), ascending.
const MSS_TABLE: [u16; 8] = [536, 1200, 1280, 1360, 1440, 1460, 4036, 8960];

/// The counter at `now`.
fn counter(now: Instant) -> u64 {
    now.total_micros() / PERIOD_MICROS
}

/// The index of the largest table MSS that does not exceed `mss`.
fn mss_index(mss: u16) -> u32 {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32
}

/// The 24-bit keyed hash of the tuple, counter and peer ISN.
fn hash(secret: &[u8; 16], tuple: FourTuple, count: u64, irs: SeqNum) -> u32 {
    let mut buf = [0u8; 64];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        buf[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(b"syncookie");
    for a in [tuple.local, tuple.remote] {
        match a.ip() {
            IpAddr::V4(ip) => put(&ip.octets()),
            IpAddr::V6(ip) => put(&ip.octets()),
        }
        put(&a.port().to_be_bytes());
    }
    put(&count.to_be_bytes());
    put(&irs.raw().to_be_bytes());
    (isn::siphash24(secret, &buf[..n]) & 0x00ff_ffff) as u32
}

/// The cookie for a SYN with sequence number `irs` and MSS option `mss` on `tuple` at `now`:
/// the ISN of a SYN-ACK sent without keeping any state.
pub(super) fn make(secret: &[u8; 16], now: Instant, tuple: FourTuple, irs: SeqNum, mss: u16) -> SeqNum {
    let t = counter(now);
    SeqNum(((t as u32) & 0x1f) << 27 | mss_index(mss) << 24 | hash(secret, tuple, t, irs))
}

/// Checks the ACK of a cookie SYN-ACK: `seg_seq` and `seg_ack` of the peer's ACK. Returns the
/// MSS the cookie carries when it is one this stack made for `tuple` in the current or the
/// previous counter period (RFC 4987 §3.6).
pub(super) fn check(
    secret: &[u8; 16],
    now: Instant,
    tuple: FourTuple,
    seg_seq: SeqNum,
    seg_ack: SeqNum,
) -> Option<u16> {
    let cookie = seg_ack.raw().wrapping_sub(1);
    let irs = SeqNum(seg_seq.raw().wrapping_sub(1));
    let t_now = counter(now);
    (0..2).filter_map(|age| t_now.checked_sub(age)).find_map(|t| {
        let matches =
            cookie >> 27 == (t as u32) & 0x1f && cookie & 0x00ff_ffff == hash(secret, tuple, t, irs);
        matches.then(|| MSS_TABLE[((cookie >> 24) & 0x7) as usize])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 80),
            remote: SocketAddr::new(Ipv4Addr::new(192, 0, 2, 1).into(), port),
        }
    }

    const SECRET: [u8; 16] = [3; 16];

    #[test]
    fn a_cookie_checks_out_for_its_own_tuple_and_isn_only() {
        let now = Instant::from_secs(1000);
        let c = make(&SECRET, now, tuple(4000), SeqNum(77), 1460);
        assert_eq!(check(&SECRET, now, tuple(4000), SeqNum(78), c + 1), Some(1460));
        assert_eq!(check(&SECRET, now, tuple(4001), SeqNum(78), c + 1), None, "another port");
        assert_eq!(check(&SECRET, now, tuple(4000), SeqNum(79), c + 1), None, "another ISN");
        assert_eq!(check(&SECRET, now, tuple(4000), SeqNum(78), c + 2), None, "another cookie");
        assert_eq!(check(&[4; 16], now, tuple(4000), SeqNum(78), c + 1), None, "another secret");
    }

    // RFC 4987 §3.6: the counter bounds a cookie's life: current and previous period only.
    #[test]
    fn a_cookie_lives_for_one_to_two_periods() {
        let t0 = Instant::from_micros(10 * PERIOD_MICROS);
        let c = make(&SECRET, t0, tuple(1), SeqNum(0), 1460);
        let at = |micros: u64| check(&SECRET, Instant::from_micros(micros), tuple(1), SeqNum(1), c + 1);
        assert_eq!(at(10 * PERIOD_MICROS + PERIOD_MICROS - 1), Some(1460));
        assert_eq!(at(11 * PERIOD_MICROS + 5), Some(1460));
        assert_eq!(at(12 * PERIOD_MICROS), None);
    }

    #[test]
    fn the_mss_is_rounded_down_to_the_table() {
        let now = Instant::from_secs(5);
        for (sent, carried) in [(1460, 1460), (1400, 1360), (9000, 8960), (100, 536), (536, 536)] {
            let c = make(&SECRET, now, tuple(9), SeqNum(5), sent);
            assert_eq!(check(&SECRET, now, tuple(9), SeqNum(6), c + 1), Some(carried), "MSS {sent}");
        }
    }
}
