//! Initial sequence numbers (RFC 6528) and per-connection timestamp offsets, from a keyed hash.
//!
//! ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a 4-microsecond clock and F
//! SipHash-2-4 keyed with the secret from `Config` (RFC 6528 §3). The secret comes from the caller,
//! so replays and scripts are deterministic.

use crate::time::Instant;
use std::net::{IpAddr, SocketAddr};

/// SipHash-2-4 of `data` under a 128-bit key.
pub(crate) fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().unwrap_or_default());
    let k1 = u64::from_le_bytes(key[8..].try_into().unwrap_or_default());
    let mut v =
        [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let m = u64::from_le_bytes(c.try_into().unwrap_or_default());
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut last = (data.len() as u64 & 0xff) << 56;
    for (i, b) in rest.iter().enumerate() {
        last |= u64::from(*b) << (8 * i);
    }
    v[3] ^= last;
    round(&mut v);
    round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn tuple_bytes(tag: u8, local: SocketAddr, remote: SocketAddr) -> ([u8; 38], usize) {
    let mut buf = [0u8; 38];
    let mut n = 0;
    buf[n] = tag;
    n += 1;
    for addr in [local, remote] {
        match addr.ip() {
            IpAddr::V4(a) => {
                buf[n..n + 4].copy_from_slice(&a.octets());
                n += 4;
            }
            IpAddr::V6(a) => {
                buf[n..n + 16].copy_from_slice(&a.octets());
                n += 16;
            }
        }
        buf[n..n + 2].copy_from_slice(&addr.port().to_be_bytes());
        n += 2;
    }
    (buf, n)
}

/// RFC 6528 §3: the ISN for a connection between `local` and `remote` at `now`.
pub(crate) fn initial_sequence_number(
    secret: &[u8; 16],
    local: SocketAddr,
    remote: SocketAddr,
    now: Instant,
) -> u32 {
    let (buf, n) = tuple_bytes(0, local, remote);
    let f = siphash24(secret, &buf[..n]) as u32;
    // M: a timer that ticks every 4 microseconds (RFC 6528 §3, RFC 9293 §3.4.1).
    let m = (now.total_micros() / 4) as u32;
    f.wrapping_add(m)
}

/// A per-connection offset for TSval, so timestamps do not reveal uptime (RFC 7323 §7.1).
pub(crate) fn timestamp_offset(secret: &[u8; 16], local: SocketAddr, remote: SocketAddr) -> u32 {
    let (buf, n) = tuple_bytes(1, local, remote);
    siphash24(secret, &buf[..n]) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_matches_reference_vector() {
        // The SipHash paper's test vector: key 00..0f, message 00..0e.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(&key, &msg), 0xa129ca6149be45e5);
    }

    #[test]
    fn rfc6528_isn_depends_on_tuple_key_and_clock() {
        let a: SocketAddr = "192.168.0.1:80".parse().unwrap();
        let b: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let c: SocketAddr = "192.0.2.1:40001".parse().unwrap();
        let t = Instant::from_secs(1);
        let k = [7u8; 16];
        assert_eq!(initial_sequence_number(&k, a, b, t), initial_sequence_number(&k, a, b, t));
        assert_ne!(initial_sequence_number(&k, a, b, t), initial_sequence_number(&k, a, c, t));
        assert_ne!(initial_sequence_number(&k, a, b, t), initial_sequence_number(&[8; 16], a, b, t));
        let later = initial_sequence_number(&k, a, b, t + crate::time::Duration::from_micros(400));
        assert_eq!(later.wrapping_sub(initial_sequence_number(&k, a, b, t)), 100);
    }
}
