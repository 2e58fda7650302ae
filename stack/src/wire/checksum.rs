//! The Internet checksum (RFC 1071) and the TCP/ICMPv6 pseudo-headers (RFC 9293 §3.1, RFC 8200 §8.1).
//!
//! Sums are taken over big-endian 64-bit words with their carries counted, and folded at the end
//! (RFC 1071 §2 (B), "parallel summation"), so no carry is lost and no allocation happens.

use std::net::IpAddr;

/// Folds a 64-bit ones'-complement accumulator to 16 bits.
#[inline]
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The unfolded sum of `data` taken as big-endian 16-bit words (an odd last byte is padded with zero).
///
/// Adds whole big-endian 64-bit words and counts the carries out: since 2^16 = 1 modulo 0xffff, a
/// carry out of bit 63 is worth 1, and the 64-bit sum reduces by adding its halves (RFC 1071 §2 (B)).
/// Two accumulators let consecutive additions run in parallel.
#[inline]
fn sum_words(data: &[u8]) -> u64 {
    let (mut a, mut b, mut carries) = (0u64, 0u64, 0u64);
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        let (x, y) = c.split_at(8);
        let (s, o) = a.overflowing_add(u64::from_be_bytes(x.try_into().unwrap_or_default()));
        a = s;
        carries += u64::from(o);
        let (s, o) = b.overflowing_add(u64::from_be_bytes(y.try_into().unwrap_or_default()));
        b = s;
        carries += u64::from(o);
    }
    let mut acc = (a >> 32) + (a & 0xffff_ffff) + (b >> 32) + (b & 0xffff_ffff) + carries;
    let mut rest = chunks.remainder();
    while rest.len() >= 4 {
        acc += u64::from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        acc += u64::from(b) << 8;
    }
    acc
}

/// The ones'-complement sum of `data` folded to 16 bits, added to `initial` (not complemented).
///
/// Sums of pieces chain: `internet_checksum(internet_checksum(0, a) as u32, b)` equals the sum of
/// `a` followed by `b` when `a` has an even length.
pub fn internet_checksum(initial: u32, data: &[u8]) -> u16 {
    fold(u64::from(initial) + sum_words(data))
}

/// The unfolded sum of the pseudo-header for a transport of `len` bytes and protocol `protocol`.
///
/// IPv4 (RFC 9293 §3.1): source, destination, zero, protocol, 16-bit length. IPv6 (RFC 8200 §8.1):
/// source, destination, 32-bit length, three zero bytes, next header.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u32 {
    let addr_sum = |a: IpAddr| -> u64 {
        match a {
            IpAddr::V4(a) => sum_words(&a.octets()),
            IpAddr::V6(a) => sum_words(&a.octets()),
        }
    };
    let len_sum = if src.is_ipv4() {
        (len as u64) & 0xffff
    } else {
        let l = len as u64 & 0xffff_ffff;
        (l >> 16) + (l & 0xffff)
    };
    u32::from(fold(addr_sum(src) + addr_sum(dst) + u64::from(protocol) + len_sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    // RFC 1071 §3 worked example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
    #[test]
    fn rfc1071_example_sum() {
        assert_eq!(internet_checksum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet_checksum(0, &[0x12, 0x34, 0x56]), 0x6834);
        assert_eq!(internet_checksum(0, &[0xff]), 0xff00);
    }

    #[test]
    fn chained_sums_equal_whole_sum() {
        let data: Vec<u8> = (0u8..=250).map(|b| b.wrapping_mul(37)).collect();
        for split in (0..data.len()).step_by(2) {
            let a = internet_checksum(0, &data[..split]);
            assert_eq!(internet_checksum(u32::from(a), &data[split..]), internet_checksum(0, &data));
        }
    }

    fn naive(initial: u32, data: &[u8]) -> u16 {
        let mut sum = u64::from(initial);
        for w in data.chunks(2) {
            sum += u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn carries_out_of_64_bit_words_are_kept() {
        for n in [16, 32, 1000, 65535] {
            assert_eq!(internet_checksum(0, &vec![0xff; n]), naive(0, &vec![0xff; n]), "length {n}");
        }
        assert_eq!(internet_checksum(0, &[0xff; 64]), 0xffff);
    }

    proptest::proptest! {
        #[test]
        fn sum_matches_naive_on_any_bytes(initial in proptest::prelude::any::<u32>(), data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            proptest::prop_assert_eq!(internet_checksum(initial, &data), naive(initial, &data));
        }
    }

    #[test]
    fn sum_matches_naive_16_bit_words() {
        let data: Vec<u8> = (0u32..999).map(|b| (b * 7919 % 251) as u8).collect();
        for n in 0..data.len() {
            let mut naive: u32 = 0xabcd;
            for w in data[..n].chunks(2) {
                naive += u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
            }
            while naive > 0xffff {
                naive = (naive & 0xffff) + (naive >> 16);
            }
            assert_eq!(internet_checksum(0xabcd, &data[..n]), naive as u16, "length {n}");
        }
    }

    // A known IPv4 header (Wikipedia's example): checksum 0xb861.
    #[test]
    fn ipv4_header_known_answer() {
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(!internet_checksum(0, &h), 0xb861);
    }

    #[test]
    fn pseudo_header_v4() {
        let s = pseudo_header_sum(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            6,
            20,
        );
        // 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 20
        assert_eq!(s, 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 20);
    }
}
