//! IPv4 and IPv6 TCP datagrams for the executor: built from a packet line, parsed back from what the stack
//! sent, and shown in packetdrill notation.
//!
//! Built by hand rather than through the core's wire module so that a script tests the core's
//! parser and emitter instead of sharing them. Must not depend on: the stack's internals, clocks.

use super::ast::TcpOptionSpec;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One TCP segment with absolute numbers, as built or as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Source address and port (both addresses of one family, which is the datagram's).
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Flag bits (`ast::flag`).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with ACK).
    pub ack: u32,
    /// Window field, raw.
    pub win: u16,
    /// Urgent pointer, raw.
    pub urg: u16,
    /// Options in wire order (`Sack` blocks and `Timestamp` values absolute).
    pub options: Vec<TcpOptionSpec>,
    /// Payload length.
    pub payload_len: u32,
    /// The IP header's ECN field (RFC 3168 §5: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE; the low two
    /// bits of IPv6's traffic class).
    pub ecn: u8,
}

fn checksum(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The IP header for `upper` bytes of protocol `protocol` from `src` to `dst`: IPv4 (TTL 64, DF
/// set, its checksum filled in) or IPv6 (hop limit 64), with `ecn` in the ECN field.
fn ip_header(src: IpAddr, dst: IpAddr, protocol: u8, upper: usize, ecn: u8) -> Result<Vec<u8>, String> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = 20 + upper;
            if total > 65535 {
                return Err(format!("datagram of {total} bytes is too long"));
            }
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[1] = ecn & 3;
            h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            h[6] = 0x40; // DF
            h[8] = 64;
            h[9] = protocol;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let ck = fold(checksum(0, &h));
            h[10..12].copy_from_slice(&ck.to_be_bytes());
            Ok(h)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            if upper > 65535 {
                return Err(format!("IPv6 payload of {upper} bytes is too long"));
            }
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[1] = (ecn & 3) << 4;
            h[4..6].copy_from_slice(&(upper as u16).to_be_bytes());
            h[6] = protocol;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            Ok(h)
        }
        _ => Err(format!("{src} and {dst} are of two families")),
    }
}

/// The pseudo-header sum of TCP's and ICMPv6's checksums (RFC 9293 §3.1, RFC 8200 §8.1).
fn pseudo_sum(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u32 {
    let sum = checksum(checksum(0, &octets(src)), &octets(dst));
    sum + u32::from(protocol) + (len as u32 >> 16) + (len as u32 & 0xffff)
}

/// An ICMP error from `src` to `dst`: ICMPv4 (RFC 792) between IPv4 addresses, ICMPv6 (RFC 4443,
/// its checksum over the pseudo-header) between IPv6 ones. `word` is the four bytes after the
/// checksum (the next-hop MTU of "fragmentation needed" in its low half, or ICMPv6's MTU);
/// `quoted` the start of the datagram that caused it.
pub fn icmp_datagram(
    src: IpAddr,
    dst: IpAddr,
    icmp_type: u8,
    code: u8,
    word: [u8; 4],
    quoted: &[u8],
) -> Result<Vec<u8>, String> {
    let mut icmp = vec![icmp_type, code, 0, 0];
    icmp.extend_from_slice(&word);
    icmp.extend_from_slice(quoted);
    let (protocol, sum) = if src.is_ipv6() { (58, pseudo_sum(src, dst, 58, icmp.len())) } else { (1, 0) };
    let ck = fold(checksum(sum, &icmp));
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut d = ip_header(src, dst, protocol, icmp.len(), 0)?;
    d.extend_from_slice(&icmp);
    Ok(d)
}

fn encode_options(options: &[TcpOptionSpec]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in options {
        match o {
            TcpOptionSpec::Eol => out.push(0),
            TcpOptionSpec::Nop => out.push(1),
            TcpOptionSpec::Mss(m) => {
                out.extend_from_slice(&[2, 4]);
                out.extend_from_slice(&m.to_be_bytes());
            }
            TcpOptionSpec::WScale(w) => out.extend_from_slice(&[3, 3, *w]),
            TcpOptionSpec::SackOk => out.extend_from_slice(&[4, 2]),
            TcpOptionSpec::Sack(blocks) => {
                out.extend_from_slice(&[5, 2 + 8 * blocks.len() as u8]);
                for (a, b) in blocks {
                    out.extend_from_slice(&a.to_be_bytes());
                    out.extend_from_slice(&b.to_be_bytes());
                }
            }
            TcpOptionSpec::Timestamp { val, ecr } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr.to_be_bytes());
            }
            TcpOptionSpec::FastOpen { cookie, exp: false } => {
                out.extend_from_slice(&[34, (2 + cookie.len()).min(255) as u8]);
                out.extend_from_slice(cookie);
            }
            TcpOptionSpec::FastOpen { cookie, exp: true } => {
                out.extend_from_slice(&[254, (4 + cookie.len()).min(255) as u8, 0xf9, 0x89]);
                out.extend_from_slice(cookie);
            }
        }
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

impl Segment {
    /// The datagram (IPv4 with TTL 64 and DF set, or IPv6 with hop limit 64; zero payload
    /// bytes), with correct checksums.
    ///
    /// Fails when the options do not fit in 40 bytes or the addresses are of two families.
    pub fn to_datagram(&self) -> Result<Vec<u8>, String> {
        let opts = encode_options(&self.options);
        if opts.len() > 40 {
            return Err(format!("options take {} bytes, more than the 40 that fit", opts.len()));
        }
        let tcp_len = 20 + opts.len() + self.payload_len as usize;
        let (src, dst) = (self.src.ip(), self.dst.ip());
        let mut d = ip_header(src, dst, 6, tcp_len, self.ecn)?;
        let ip_len = d.len();
        d.resize(ip_len + tcp_len, 0);
        let t = &mut d[ip_len..];
        t[0..2].copy_from_slice(&self.src.port().to_be_bytes());
        t[2..4].copy_from_slice(&self.dst.port().to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        t[12] = (((20 + opts.len()) / 4) as u8) << 4;
        t[13] = self.flags;
        t[14..16].copy_from_slice(&self.win.to_be_bytes());
        t[18..20].copy_from_slice(&self.urg.to_be_bytes());
        t[20..20 + opts.len()].copy_from_slice(&opts);
        let ck = fold(checksum(pseudo_sum(src, dst, 6, tcp_len), t));
        t[16..18].copy_from_slice(&ck.to_be_bytes());
        Ok(d)
    }

    /// Parses an IPv4 or IPv6 datagram carrying TCP (IPv6 without extension headers); the
    /// error says what was wrong.
    pub fn parse(d: &[u8]) -> Result<Segment, String> {
        let (src_ip, dst_ip, ecn, t): (IpAddr, IpAddr, u8, &[u8]) = match d.first().map(|b| b >> 4) {
            Some(4) => {
                if d.len() < 20 {
                    return Err(format!("datagram of {} bytes is shorter than an IPv4 header", d.len()));
                }
                let ihl = usize::from(d[0] & 0xf) * 4;
                let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
                if ihl < 20 || total < ihl || total > d.len() {
                    return Err(format!(
                        "bad IPv4 lengths: header {ihl}, total {total}, datagram {}",
                        d.len()
                    ));
                }
                if d[9] != 6 {
                    return Err(format!("IP protocol {} is not TCP", d[9]));
                }
                let src = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
                let dst = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
                (src.into(), dst.into(), d[1] & 3, &d[ihl..total])
            }
            Some(6) => {
                if d.len() < 40 {
                    return Err(format!("datagram of {} bytes is shorter than an IPv6 header", d.len()));
                }
                let payload = usize::from(u16::from_be_bytes([d[4], d[5]]));
                if 40 + payload > d.len() {
                    return Err(format!("IPv6 payload length {payload} with a datagram of {}", d.len()));
                }
                if d[6] != 6 {
                    return Err(format!("IPv6 next header {} is not TCP", d[6]));
                }
                let addr = |b: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16]));
                let traffic_class = (d[0] & 0xf) << 4 | d[1] >> 4;
                (addr(&d[8..24]).into(), addr(&d[24..40]).into(), traffic_class & 3, &d[40..40 + payload])
            }
            Some(v) => return Err(format!("IP version {v} is neither 4 nor 6")),
            None => return Err("an empty datagram".into()),
        };
        if t.len() < 20 {
            return Err(format!("TCP segment of {} bytes is shorter than its header", t.len()));
        }
        let doff = usize::from(t[12] >> 4) * 4;
        if doff < 20 || doff > t.len() {
            return Err(format!("TCP data offset {doff} with a segment of {} bytes", t.len()));
        }
        let mut options = Vec::new();
        let raw = &t[20..doff];
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                0 => {
                    options.push(TcpOptionSpec::Eol);
                    break;
                }
                1 => {
                    options.push(TcpOptionSpec::Nop);
                    i += 1;
                }
                kind => {
                    let len =
                        usize::from(*raw.get(i + 1).ok_or(format!("option kind {kind} without a length"))?);
                    if len < 2 || i + len > raw.len() {
                        return Err(format!("option kind {kind} with impossible length {len}"));
                    }
                    let b = &raw[i + 2..i + len];
                    let be32 = |x: &[u8]| u32::from_be_bytes([x[0], x[1], x[2], x[3]]);
                    options.push(match (kind, len) {
                        (2, 4) => TcpOptionSpec::Mss(u16::from_be_bytes([b[0], b[1]])),
                        (3, 3) => TcpOptionSpec::WScale(b[0]),
                        (4, 2) => TcpOptionSpec::SackOk,
                        (5, l) if (l - 2) % 8 == 0 => TcpOptionSpec::Sack(
                            b.chunks_exact(8).map(|c| (be32(&c[..4]), be32(&c[4..]))).collect(),
                        ),
                        (8, 10) => TcpOptionSpec::Timestamp { val: be32(&b[..4]), ecr: be32(&b[4..]) },
                        (34, _) => TcpOptionSpec::FastOpen { cookie: b.to_vec(), exp: false },
                        (254, _) if b.starts_with(&[0xf9, 0x89]) => {
                            TcpOptionSpec::FastOpen { cookie: b[2..].to_vec(), exp: true }
                        }
                        _ => return Err(format!("option kind {kind} length {len} is not one scripts know")),
                    });
                    i += len;
                }
            }
        }
        Ok(Segment {
            src: SocketAddr::new(src_ip, u16::from_be_bytes([t[0], t[1]])),
            dst: SocketAddr::new(dst_ip, u16::from_be_bytes([t[2], t[3]])),
            flags: t[13],
            seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            win: u16::from_be_bytes([t[14], t[15]]),
            urg: u16::from_be_bytes([t[18], t[19]]),
            options,
            payload_len: (t.len() - doff) as u32,
            ecn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ast::flag;

    fn sample() -> Segment {
        Segment {
            src: "192.0.2.1:47000".parse().unwrap(),
            dst: "192.168.0.1:8080".parse().unwrap(),
            flags: flag::SYN,
            seq: 1_000_000_000,
            ack: 0,
            win: 65535,
            urg: 0,
            options: vec![
                TcpOptionSpec::Mss(1460),
                TcpOptionSpec::SackOk,
                TcpOptionSpec::Timestamp { val: 7, ecr: 0 },
                TcpOptionSpec::Nop,
                TcpOptionSpec::WScale(7),
                TcpOptionSpec::FastOpen { cookie: vec![0xab; 8], exp: false },
                TcpOptionSpec::Nop,
                TcpOptionSpec::Nop,
                TcpOptionSpec::FastOpen { cookie: vec![], exp: true },
            ],
            payload_len: 3,
            ecn: 2,
        }
    }

    #[test]
    fn built_datagram_parses_back_to_the_same_segment() {
        let s = sample();
        let d = s.to_datagram().unwrap();
        assert_eq!(d.len(), 20 + 20 + 20 + 12 + 4 + 3);
        assert_eq!(Segment::parse(&d).unwrap(), s);
    }

    #[test]
    fn built_datagram_has_valid_checksums() {
        let d = sample().to_datagram().unwrap();
        assert_eq!(fold(checksum(0, &d[..20])), 0);
        let mut sum = checksum(0, &d[12..20]);
        sum += 6 + (d.len() - 20) as u32;
        assert_eq!(fold(checksum(sum, &d[20..])), 0);
    }

    #[test]
    fn truncated_datagrams_are_errors_not_panics() {
        let d = sample().to_datagram().unwrap();
        for n in 0..d.len() {
            let mut t = d[..n].to_vec();
            if n >= 4 {
                t[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            }
            let _ = Segment::parse(&t);
        }
        assert!(Segment::parse(&d[..10]).is_err());
    }

    fn sample_v6() -> Segment {
        Segment {
            src: "[fd3d:fa7b:d17d::1]:47000".parse().unwrap(),
            dst: "[fd3d:a0b:17d6::1]:8080".parse().unwrap(),
            ..sample()
        }
    }

    #[test]
    fn an_ipv6_datagram_parses_back_to_the_same_segment() {
        let s = sample_v6();
        let d = s.to_datagram().unwrap();
        assert_eq!(d.len(), 40 + 20 + 20 + 12 + 4 + 3);
        assert_eq!(d[0] >> 4, 6);
        assert_eq!(Segment::parse(&d).unwrap(), s);
    }

    /// RFC 8200 §8.1: TCP over IPv6 sums a pseudo-header of both addresses, the upper-layer
    /// length and next header 6; checked with etherparse's own checksum, not ours.
    #[test]
    fn an_ipv6_datagram_has_the_tcp_checksum_etherparse_computes() {
        let d = sample_v6().to_datagram().unwrap();
        let p = etherparse::SlicedPacket::from_ip(&d).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6: {:?}", p.net) };
        assert_eq!(ip.header().hop_limit(), 64);
        assert_eq!(ip.header().traffic_class() & 3, 2, "the ECN field");
        let Some(etherparse::TransportSlice::Tcp(tcp)) = &p.transport else { panic!("not TCP") };
        let (src, dst) = (ip.header().source(), ip.header().destination());
        assert_eq!(tcp.checksum(), tcp.calc_checksum_ipv6(src, dst).unwrap());
    }

    /// RFC 4443 §2.3: ICMPv6's checksum covers the IPv6 pseudo-header (next header 58); RFC
    /// 8201 §4: Packet Too Big carries its MTU in the 32-bit word after it.
    #[test]
    fn an_icmpv6_packet_too_big_is_valid_for_etherparse() {
        let quoted = sample_v6().to_datagram().unwrap();
        let (src, dst): (IpAddr, IpAddr) = ("fd00::99".parse().unwrap(), "fd3d:a0b:17d6::1".parse().unwrap());
        let d = icmp_datagram(src, dst, 2, 0, 1280u32.to_be_bytes(), &quoted[..48]).unwrap();
        let p = etherparse::SlicedPacket::from_ip(&d).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
        assert_eq!(ip.header().next_header(), etherparse::IpNumber::IPV6_ICMP);
        let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
        assert!(icmp.is_checksum_valid(ip.header().source(), ip.header().destination()));
        assert_eq!(icmp.icmp_type(), etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 });
        assert_eq!(icmp.payload(), &quoted[..48]);
    }

    /// RFC 792: ICMPv4's checksum covers the ICMP message alone.
    #[test]
    fn an_icmpv4_frag_needed_is_valid_for_etherparse() {
        let quoted = sample().to_datagram().unwrap();
        let (src, dst): (IpAddr, IpAddr) = ("10.0.0.9".parse().unwrap(), "192.168.0.1".parse().unwrap());
        let d = icmp_datagram(src, dst, 3, 4, [0, 0, 0x04, 0xb0], &quoted[..28]).unwrap();
        let p = etherparse::SlicedPacket::from_ip(&d).unwrap();
        let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!("not ICMP") };
        assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(icmp.payload()));
        assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1200 }
            )
        );
    }

    #[test]
    fn addresses_of_two_families_are_an_error() {
        let s = Segment { dst: "[fd00::1]:80".parse().unwrap(), ..sample() };
        assert!(s.to_datagram().unwrap_err().contains("two families"));
    }
}
