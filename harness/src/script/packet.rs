//! IPv4/TCP datagrams for the executor: built from a packet line, parsed back from what the stack
//! sent, and shown in packetdrill notation.
//!
//! Built by hand rather than through the core's wire module so that a script tests the core's
//! parser and emitter instead of sharing them. Must not depend on: the stack's internals, clocks.

use super::ast::TcpOptionSpec;
use std::net::{Ipv4Addr, SocketAddrV4};

/// One TCP segment with absolute numbers, as built or as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
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
    /// The IP header's ECN field (RFC 3168 §5: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE).
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

/// The Internet checksum (RFC 1071) of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(checksum(0, data))
}

/// An IPv4 datagram (TTL 64, DF set) carrying `payload` of protocol `protocol`.
pub fn ipv4_datagram(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut d = vec![0u8; 20];
    d[0] = 0x45;
    d[2..4].copy_from_slice(&(total.min(65535) as u16).to_be_bytes());
    d[6] = 0x40;
    d[8] = 64;
    d[9] = protocol;
    d[12..16].copy_from_slice(&src.octets());
    d[16..20].copy_from_slice(&dst.octets());
    let ck = fold(checksum(0, &d));
    d[10..12].copy_from_slice(&ck.to_be_bytes());
    d.extend_from_slice(payload);
    d
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
    /// The IPv4 datagram (TTL 64, DF set, zero payload bytes), with correct checksums.
    ///
    /// Fails when the options do not fit in 40 bytes.
    pub fn to_datagram(&self) -> Result<Vec<u8>, String> {
        let opts = encode_options(&self.options);
        if opts.len() > 40 {
            return Err(format!("options take {} bytes, more than the 40 that fit", opts.len()));
        }
        let tcp_len = 20 + opts.len() + self.payload_len as usize;
        let total = 20 + tcp_len;
        if total > 65535 {
            return Err(format!("datagram of {total} bytes is too long"));
        }
        let mut d = vec![0u8; total];
        d[0] = 0x45;
        d[1] = self.ecn & 3;
        d[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        d[6] = 0x40; // DF
        d[8] = 64;
        d[9] = 6;
        d[12..16].copy_from_slice(&self.src.ip().octets());
        d[16..20].copy_from_slice(&self.dst.ip().octets());
        let ipck = fold(checksum(0, &d[..20]));
        d[10..12].copy_from_slice(&ipck.to_be_bytes());
        let t = &mut d[20..];
        t[0..2].copy_from_slice(&self.src.port().to_be_bytes());
        t[2..4].copy_from_slice(&self.dst.port().to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        t[12] = (((20 + opts.len()) / 4) as u8) << 4;
        t[13] = self.flags;
        t[14..16].copy_from_slice(&self.win.to_be_bytes());
        t[18..20].copy_from_slice(&self.urg.to_be_bytes());
        t[20..20 + opts.len()].copy_from_slice(&opts);
        let mut sum = checksum(0, &self.src.ip().octets());
        sum = checksum(sum, &self.dst.ip().octets());
        sum += 6 + tcp_len as u32;
        let ck = fold(checksum(sum, t));
        t[16..18].copy_from_slice(&ck.to_be_bytes());
        Ok(d)
    }

    /// Parses an IPv4 datagram carrying TCP; the error says what was wrong.
    pub fn parse(d: &[u8]) -> Result<Segment, String> {
        if d.len() < 20 {
            return Err(format!("datagram of {} bytes is shorter than an IPv4 header", d.len()));
        }
        if d[0] >> 4 != 4 {
            return Err(format!("IP version {} (only IPv4 is scripted)", d[0] >> 4));
        }
        let ihl = usize::from(d[0] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
        if ihl < 20 || total < ihl || total > d.len() {
            return Err(format!("bad IPv4 lengths: header {ihl}, total {total}, datagram {}", d.len()));
        }
        if d[9] != 6 {
            return Err(format!("IP protocol {} is not TCP", d[9]));
        }
        let src_ip = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
        let dst_ip = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
        let t = &d[ihl..total];
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
            src: SocketAddrV4::new(src_ip, u16::from_be_bytes([t[0], t[1]])),
            dst: SocketAddrV4::new(dst_ip, u16::from_be_bytes([t[2], t[3]])),
            flags: t[13],
            seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            win: u16::from_be_bytes([t[14], t[15]]),
            urg: u16::from_be_bytes([t[18], t[19]]),
            options,
            payload_len: (t.len() - doff) as u32,
            ecn: d[1] & 3,
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
}
