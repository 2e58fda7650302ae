//! The wire layer against real bytes, every error kind, and proptest round trips.
//!
//! Real packets are hex copied from public captures under /work/shared/captures (named at each
//! constant); the capture files themselves are not copied.

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use utcp::tcp::seq::SeqNum;
use utcp::wire::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// suricata-syn-retransmit-with-ts.pcap frame 1 (after Ethernet+VLAN), with the 4 trailing frame bytes.
const SYN_V4: &str = "45 00 00 3c d7 3a 40 00 40 06 58 0f 0a 26 fb 92 0a 26 fb 93 82 5c 00 50 9c 9d e9 48
    00 00 00 00 a0 02 72 10 7e 47 00 00 02 04 05 b4 04 02 08 0a 05 31 3e 72 00 00 00 00 01 03 03 07
    da b7 ec 04";

/// suricata-http-ipv6.pcap frame 1 (after the 4-byte NULL header): a macOS SYN over ::1.
const SYN_V6: &str = "60 00 c5 7a 00 2c 06 40 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 01 d9 a5 1f 40 11 b0 c5 40 00 00 00 00 b0 02 ff ff 00 34 00 00
    02 04 3f c4 01 03 03 05 01 01 08 0a 2d f1 18 d2 00 00 00 00 04 02 00 00";

/// suricata-tcp-empty-sack.pcap frame 24: an ACK carrying a SACK option with no blocks.
const EMPTY_SACK_V4: &str = "45 00 00 2c e5 c0 40 00 f0 06 8f cc 11 ad 42 b3 c0 a8 00 36 01 bb c1 62
    eb 4e 1a 02 df 10 2c 40 60 10 ff 5f b1 6f 00 00 01 01 05 02";

/// suricata-tcp-empty-sack.pcap frame 25: one SACK block.
const ONE_SACK_V4: &str = "45 00 00 34 e5 c1 40 00 f0 06 8f c3 11 ad 42 b3 c0 a8 00 36 01 bb c1 62
    eb 4e 1a 02 df 10 2c 40 80 10 ff 5f 73 83 00 00 01 01 05 0a df 10 2e a0 df 10 31 1a";

fn tcp_of(d: Datagram<'_>) -> TcpRepr<'_> {
    match d.transport {
        Transport::Tcp(t) => t,
        other => panic!("not TCP: {other:?}"),
    }
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

// ---------------------------------------------------------------------------------------------
// Real packets
// ---------------------------------------------------------------------------------------------

#[test]
fn linux_syn_v4_parses_with_checksums_and_ignores_trailer() {
    let bytes = hex(SYN_V4);
    let d = parse_datagram(&bytes, ChecksumMode::Verify).unwrap();
    assert_eq!(d.ip.src, v4([10, 38, 251, 146]));
    assert_eq!(d.ip.dst, v4([10, 38, 251, 147]));
    assert_eq!(d.ip.hop_limit, 64);
    assert_eq!(d.ip.payload_len, 40);
    let t = tcp_of(d);
    assert_eq!((t.src_port, t.dst_port), (33372, 80));
    assert_eq!(t.seq, SeqNum(0x9c9de948));
    assert_eq!(t.flags, TcpFlags::SYN);
    assert_eq!(t.window, 29200);
    assert_eq!(t.options.mss, Some(1460));
    assert!(t.options.sack_permitted);
    assert_eq!(t.options.timestamp, Some(Timestamp { tsval: 87113330, tsecr: 0 }));
    assert_eq!(t.options.window_scale, Some(7));
    assert!(t.options.sack.is_none() && t.options.unknown.is_empty());
    assert!(t.payload.is_empty());
}

#[test]
fn linux_syn_v4_reemits_byte_for_byte_options() {
    // The Linux SYN layout is `mss, sackOK, TS, nop, wscale`: our emit must reproduce the option area.
    let bytes = hex(SYN_V4);
    let d = parse_datagram(&bytes, ChecksumMode::Verify).unwrap();
    let mut out = [0u8; 128];
    let n = emit_datagram(&d.ip, &d.transport, &mut out).unwrap();
    assert_eq!(n, 60);
    // TCP header including options and checksum is identical (IP id differs: we send 0).
    assert_eq!(&out[20..60], &bytes[20..60]);
}

#[test]
fn macos_syn_v6_parses() {
    let bytes = hex(SYN_V6);
    let d = parse_datagram(&bytes, ChecksumMode::Ignore).unwrap();
    assert_eq!(d.ip.src, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(d.ip.protocol, IPPROTO_TCP);
    assert_eq!(d.ip.payload_len, 44);
    let t = tcp_of(d);
    assert_eq!((t.src_port, t.dst_port), (55717, 8000));
    assert_eq!(t.options.mss, Some(16324));
    assert_eq!(t.options.window_scale, Some(5));
    assert_eq!(t.options.timestamp, Some(Timestamp { tsval: 770775250, tsecr: 0 }));
    assert!(t.options.sack_permitted);
}

#[test]
fn macos_syn_v6_loopback_checksum_is_offloaded_and_caught() {
    // macOS leaves loopback checksums unfilled: Verify must refuse it and say where.
    let bytes = hex(SYN_V6);
    let e = parse_datagram(&bytes, ChecksumMode::Verify).unwrap_err();
    assert_eq!(e.layer, Layer::Tcp);
    assert_eq!(e.offset, 40 + 16);
    assert!(matches!(e.kind, WireErrorKind::BadChecksum { found: 0x0034, .. }), "{e}");
}

#[test]
fn empty_sack_option_parses_as_no_blocks() {
    let bytes = hex(EMPTY_SACK_V4);
    let t = tcp_of(parse_datagram(&bytes, ChecksumMode::Verify).unwrap());
    assert_eq!(t.options.sack, Some(SackBlocks::default()));
}

#[test]
fn one_sack_block_parses() {
    let bytes = hex(ONE_SACK_V4);
    let t = tcp_of(parse_datagram(&bytes, ChecksumMode::Verify).unwrap());
    let sack = t.options.sack.unwrap();
    assert_eq!(sack.as_slice(), &[(SeqNum(0xdf102ea0), SeqNum(0xdf10311a))]);
}

// ---------------------------------------------------------------------------------------------
// Emit layouts
// ---------------------------------------------------------------------------------------------

fn ip4() -> IpRepr {
    IpRepr {
        src: v4([10, 0, 0, 1]),
        dst: v4([10, 0, 0, 2]),
        protocol: IPPROTO_TCP,
        hop_limit: 64,
        ecn: 0,
        payload_len: 0,
    }
}

fn ip6() -> IpRepr {
    IpRepr {
        src: IpAddr::V6("2001:db8::1".parse().unwrap()),
        dst: IpAddr::V6("2001:db8::2".parse().unwrap()),
        protocol: IPPROTO_TCP,
        hop_limit: 64,
        ecn: 0,
        payload_len: 0,
    }
}

const SEG: TcpRepr<'static> = TcpRepr {
    src_port: 1000,
    dst_port: 80,
    seq: SeqNum(1),
    ack: SeqNum(0),
    flags: TcpFlags::ACK,
    window: 100,
    urgent: 0,
    options: TcpOptions {
        mss: None,
        window_scale: None,
        sack_permitted: false,
        timestamp: None,
        sack: None,
        fast_open: None,
        unknown: UnknownOptions::EMPTY,
    },
    payload: &[],
};

fn option_area(t: &TcpRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; t.buffer_len()];
    t.emit(&ip4(), &mut buf).unwrap();
    assert_eq!(usize::from(buf[12] >> 4) * 4, t.header_len(), "data offset agrees with header_len");
    buf[20..t.header_len()].to_vec()
}

#[test]
fn syn_without_timestamps_uses_linux_layout() {
    let t = TcpRepr {
        flags: TcpFlags::SYN,
        options: TcpOptions { mss: Some(1460), sack_permitted: true, window_scale: Some(7), ..SEG.options },
        ..SEG
    };
    assert_eq!(option_area(&t), hex("02 04 05 b4 01 01 04 02 01 03 03 07"));
}

#[test]
fn data_segment_with_timestamps_and_sack_uses_linux_layout() {
    let t = TcpRepr {
        options: TcpOptions {
            timestamp: Some(Timestamp { tsval: 1, tsecr: 2 }),
            sack: SackBlocks::from_slice(&[(SeqNum(10), SeqNum(20))]),
            ..SEG.options
        },
        ..SEG
    };
    assert_eq!(
        option_area(&t),
        hex("01 01 08 0a 00 00 00 01 00 00 00 02 01 01 05 0a 00 00 00 0a 00 00 00 14")
    );
}

fn fast_open(cookie: &[u8], experimental: bool) -> Option<FastOpen> {
    Some(FastOpen { cookie: FastOpenCookie::from_slice(cookie).unwrap(), experimental })
}

/// Parses the segment `t` emits back.
fn reparsed(t: &TcpRepr<'_>) -> TcpOptions<'static> {
    let mut buf = vec![0u8; t.buffer_len()];
    t.emit(&ip4(), &mut buf).unwrap();
    let leaked: &'static [u8] = Box::leak(buf.into_boxed_slice());
    TcpRepr::parse(&ip4(), leaked, ChecksumMode::Verify).unwrap().options
}

// RFC 7413 §4.1.1: kind 34, length 2 + cookie; Linux pads it to four bytes with NOPs, after the
// other options of a SYN. A request is the option with no cookie.
#[test]
fn rfc7413_4_1_1_fast_open_option_linux_layout_and_round_trip() {
    let syn = |fo| TcpRepr {
        flags: TcpFlags::SYN,
        options: TcpOptions { mss: Some(1460), window_scale: Some(8), fast_open: fo, ..SEG.options },
        ..SEG
    };
    let request = syn(fast_open(&[], false));
    assert_eq!(option_area(&request), hex("02 04 05 b4 01 03 03 08 22 02 01 01"));
    assert_eq!(reparsed(&request).fast_open, fast_open(&[], false));
    let cookie = syn(fast_open(&[0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb], false));
    assert_eq!(option_area(&cookie), hex("02 04 05 b4 01 03 03 08 22 0a 30 21 b9 d8 89 01 7e eb 01 01"));
    assert_eq!(reparsed(&cookie), cookie.options);
    // The experimental form: kind 254, length 4 + cookie, magic 0xF989 (RFC 6994).
    let exp = syn(fast_open(&[1, 2, 3, 4], true));
    assert_eq!(option_area(&exp), hex("02 04 05 b4 01 03 03 08 fe 08 f9 89 01 02 03 04"));
    assert_eq!(reparsed(&exp), exp.options);
}

#[test]
fn fast_open_cookie_longer_than_16_bytes_is_an_unknown_option() {
    let raw = [34u8, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
    let opts: Vec<_> = TcpOption::iter_raw(&raw).collect::<Result<_, _>>().unwrap();
    assert_eq!(opts, [TcpOption::Unknown { kind: 34, data: &raw[2..] }]);
    let other_experiment = [254u8, 6, 0x12, 0x34, 0, 0];
    let opts: Vec<_> = TcpOption::iter_raw(&other_experiment).collect::<Result<_, _>>().unwrap();
    assert_eq!(opts, [TcpOption::Unknown { kind: 254, data: &other_experiment[2..] }]);
}

#[test]
fn options_that_do_not_fit_aligned_are_packed() {
    // TS (12 aligned) + 3 SACK blocks (28 aligned) = 40 fits aligned; with SACK-permitted added
    // on top aligned needs 40 too (sackOK replaces the NOPs), with window scale 44: packed 39 -> 40.
    let t = TcpRepr {
        options: TcpOptions {
            timestamp: Some(Timestamp { tsval: 1, tsecr: 2 }),
            window_scale: Some(3),
            sack: SackBlocks::from_slice(&[(SeqNum(1), SeqNum(2)); 3]),
            ..SEG.options
        },
        ..SEG
    };
    let area = option_area(&t);
    assert_eq!(area.len(), 40);
    assert_eq!(&area[..13], &hex("08 0a 00 00 00 01 00 00 00 02 03 03 03")[..]);
    assert_eq!(area[39], 0, "padded with EOL");
}

#[test]
fn too_many_options_is_options_too_long() {
    let t = TcpRepr {
        options: TcpOptions {
            timestamp: Some(Timestamp { tsval: 1, tsecr: 2 }),
            sack: SackBlocks::from_slice(&[(SeqNum(1), SeqNum(2)); 4]),
            ..SEG.options
        },
        ..SEG
    };
    let mut buf = [0u8; 200];
    let e = t.emit(&ip4(), &mut buf).unwrap_err();
    assert_eq!(e.kind, WireErrorKind::OptionsTooLong(44));
}

#[test]
fn ipv4_emit_sets_df_id_zero_and_valid_checksum() {
    let mut buf = [0u8; 20];
    ip4().emit(20, &mut buf).unwrap();
    assert_eq!(&buf[..10], &hex("45 00 00 28 00 00 40 00 40 06")[..]);
    assert_eq!(internet_checksum(0, &buf), 0xffff);
}

#[test]
fn ns_ece_cwr_flags_round_trip() {
    let t = TcpRepr { flags: TcpFlags::NS | TcpFlags::CWR | TcpFlags::ECE | TcpFlags::SYN, ..SEG };
    let mut buf = [0u8; 20];
    t.emit(&ip4(), &mut buf).unwrap();
    assert_eq!(buf[12] & 1, 1);
    assert_eq!(buf[13], 0xc2);
    assert_eq!(TcpRepr::parse(&ip4(), &buf, ChecksumMode::Verify).unwrap().flags, t.flags);
}

#[test]
fn icmpv6_echo_checksum_covers_pseudo_header() {
    let ip = IpRepr { protocol: IPPROTO_ICMPV6, ..ip6() };
    let echo = IcmpRepr::EchoRequest { ident: 7, seq_no: 1, data: b"ping" };
    let mut buf = [0u8; 12];
    echo.emit(&ip, &mut buf).unwrap();
    assert_eq!(buf[0], 128);
    assert_eq!(IcmpRepr::parse(&ip, &buf, ChecksumMode::Verify).unwrap(), echo);
    // The same bytes under other addresses fail the check.
    let other = IpRepr { dst: IpAddr::V6("2001:db8::3".parse().unwrap()), ..ip };
    let e = IcmpRepr::parse(&other, &buf, ChecksumMode::Verify).unwrap_err();
    assert!(matches!(e.kind, WireErrorKind::BadChecksum { .. }));
}

#[test]
fn icmpv4_echo_reply_known_bytes() {
    let ip = IpRepr { protocol: IPPROTO_ICMP, ..ip4() };
    let echo = IcmpRepr::EchoReply { ident: 0x1234, seq_no: 1, data: &[] };
    let mut buf = [0u8; 8];
    echo.emit(&ip, &mut buf).unwrap();
    // 0000 + 1234 + 0001 = 1235, complemented edcb.
    assert_eq!(buf, [0, 0, 0xed, 0xca, 0x12, 0x34, 0, 1]);
}

/// The first `keep` bytes of the datagram `seg` sent from `from` (an ICMP error's quote).
fn quoted(from: &IpRepr, seg: &TcpRepr<'_>, keep: usize) -> Vec<u8> {
    let ip = IpRepr { protocol: IPPROTO_TCP, ..*from };
    let t = Transport::Tcp(*seg);
    let mut buf = vec![0u8; datagram_len(&ip, &t)];
    emit_datagram(&ip, &t, &mut buf).unwrap();
    buf.truncate(keep);
    buf
}

/// `ip` turned round: the message goes back to the quoted datagram's sender.
fn back(ip: &IpRepr, protocol: u8) -> IpRepr {
    IpRepr { src: ip.dst, dst: ip.src, protocol, ..*ip }
}

#[test]
fn rfc1191_frag_needed_parses_mtu_and_quote() {
    // RFC 1191 §4: type 3 code 4, unused = 0 (16 bits), Next-Hop MTU (16 bits), then the quoted
    // IP header and 64 bits of its data.
    let q = quoted(&ip4(), &SEG, 28);
    let mut msg = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
    msg.extend_from_slice(&q);
    let c = !internet_checksum(0, &msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    let ip = back(&ip4(), IPPROTO_ICMP);
    let r = IcmpRepr::parse(&ip, &msg, ChecksumMode::Verify).unwrap();
    let IcmpRepr::PacketTooBig { mtu, quote } = r else { panic!("{r:?}") };
    assert_eq!(mtu, 1400);
    assert_eq!((quote.src, quote.dst, quote.protocol), (ip4().src, ip4().dst, IPPROTO_TCP));
    assert_eq!((quote.src_port, quote.dst_port, quote.seq), (1000, 80, SeqNum(1)));
    assert_eq!(r.quote(), Some(&quote));
    let mut again = vec![0u8; r.buffer_len()];
    r.emit(&ip, &mut again).unwrap();
    assert_eq!(again, msg);
}

#[test]
fn icmpv6_packet_too_big_checksum_covers_pseudo_header() {
    // RFC 4443 §3.2: type 2, MTU in bytes 4..8; §2.3: the checksum covers a pseudo-header.
    let q = quoted(&ip6(), &SEG, 60);
    let ip = back(&ip6(), IPPROTO_ICMPV6);
    let ptb = IcmpRepr::PacketTooBig { mtu: 1280, quote: Quote::parse(&q, false).unwrap() };
    let mut buf = vec![0u8; ptb.buffer_len()];
    ptb.emit(&ip, &mut buf).unwrap();
    assert_eq!(&buf[..2], [2, 0]);
    assert_eq!(&buf[4..8], 1280u32.to_be_bytes());
    assert_eq!(IcmpRepr::parse(&ip, &buf, ChecksumMode::Verify).unwrap(), ptb);
    let other = IpRepr { dst: IpAddr::V6("2001:db8::3".parse().unwrap()), ..ip };
    let e = IcmpRepr::parse(&other, &buf, ChecksumMode::Verify).unwrap_err();
    assert!(matches!(e.kind, WireErrorKind::BadChecksum { .. }));
}

/// Whether a parsed message is the expected variant.
type IsKind = fn(&IcmpRepr<'_>) -> bool;

#[test]
fn icmp_error_types_of_each_family() {
    // RFC 792 types 3, 11, 12; RFC 4443 types 1-4. Bytes: type, code, then header bytes 4..8.
    let cases: [(IpRepr, [u8; 6], IsKind); 7] = [
        (ip4(), [3, 3, 0, 0, 0, 0], |r| matches!(r, IcmpRepr::DestUnreachable { code: 3, .. })),
        (ip4(), [11, 0, 0, 0, 0, 0], |r| matches!(r, IcmpRepr::TimeExceeded { code: 0, .. })),
        (ip4(), [12, 0, 9, 0, 0, 0], |r| matches!(r, IcmpRepr::ParamProblem { pointer: 9, .. })),
        (ip6(), [1, 4, 0, 0, 0, 0], |r| matches!(r, IcmpRepr::DestUnreachable { code: 4, .. })),
        (ip6(), [2, 0, 0, 0, 5, 0], |r| matches!(r, IcmpRepr::PacketTooBig { mtu: 1280, .. })),
        (ip6(), [3, 1, 0, 0, 0, 0], |r| matches!(r, IcmpRepr::TimeExceeded { code: 1, .. })),
        (ip6(), [4, 0, 0, 0, 0, 40], |r| matches!(r, IcmpRepr::ParamProblem { pointer: 40, .. })),
    ];
    for (from, [t, code, b4, b5, b6, b7], is) in cases {
        let ip = back(&from, if from.src.is_ipv4() { IPPROTO_ICMP } else { IPPROTO_ICMPV6 });
        let mut msg = vec![t, code, 0, 0, b4, b5, b6, b7];
        msg.extend_from_slice(&quoted(&from, &SEG, 100));
        let r = IcmpRepr::parse(&ip, &msg, ChecksumMode::Ignore).unwrap();
        assert!(is(&r), "type {t}: {r:?}");
        assert_eq!(r.quote().map(|q| q.seq), Some(SeqNum(1)));
    }
}

#[test]
fn icmpv6_error_quote_walks_extension_headers() {
    // RFC 8200 §4.1: the quoted datagram's transport header follows its extension headers.
    let mut q = quoted(&ip6(), &SEG, 60);
    q[6] = 0; // hop-by-hop options, 16 bytes, then TCP
    q.splice(40..40, [IPPROTO_TCP, 1, 1, 4, 0, 0, 0, 0, 1, 6, 0, 0, 0, 0, 0, 0]);
    let quote = Quote::parse(&q, false).unwrap();
    assert_eq!((quote.protocol, quote.src_port, quote.seq), (IPPROTO_TCP, 1000, SeqNum(1)));
    // Cut inside the extension header, or after it: a length error counted from the quoted IP
    // header, asking for the extension header and 8 transport bytes.
    for cut in [50, 60] {
        let e = Quote::parse(&q[..cut], false).unwrap_err();
        assert_eq!(
            (e.layer, e.kind),
            (Layer::IcmpQuote, WireErrorKind::Truncated { required: 64, len: cut })
        );
    }
}

#[test]
fn icmp_error_with_short_quote_is_a_length_error_at_the_quote() {
    // RFC 792: the quote is the IP header and 64 bits of data; fewer is refused.
    let ip = back(&ip4(), IPPROTO_ICMP);
    let mut msg = vec![3, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&quoted(&ip4(), &SEG, 27));
    let e = parse_err(&ip, &msg);
    assert_eq!(
        (e.layer, e.offset, e.kind),
        (Layer::IcmpQuote, 8, WireErrorKind::Truncated { required: 28, len: 27 })
    );
    // Behind IP, the offset is from the start of the datagram.
    let t = Transport::Other(&msg);
    let mut d = vec![0u8; datagram_len(&ip, &t)];
    emit_datagram(&ip, &t, &mut d).unwrap();
    let e = parse_datagram(&d, ChecksumMode::Ignore).unwrap_err();
    assert_eq!((e.layer, e.offset), (Layer::IcmpQuote, 28));
}

#[test]
fn icmp_error_quoting_the_other_family_is_a_bad_version() {
    let ip = back(&ip4(), IPPROTO_ICMP);
    let mut msg = vec![11, 0, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&quoted(&ip6(), &SEG, 48));
    let e = parse_err(&ip, &msg);
    assert_eq!((e.layer, e.offset, e.kind), (Layer::IcmpQuote, 8, WireErrorKind::BadVersion(6)));
}

#[test]
fn icmp_error_emit_refuses_values_too_large_for_icmpv4() {
    let q = quoted(&ip4(), &SEG, 28);
    let quote = Quote::parse(&q, true).unwrap();
    let ip = back(&ip4(), IPPROTO_ICMP);
    let mut buf = [0u8; 36];
    let e = IcmpRepr::PacketTooBig { mtu: 70000, quote }.emit(&ip, &mut buf).unwrap_err();
    assert_eq!((e.offset, e.kind), (6, WireErrorKind::BadLength(70000)));
    let e = IcmpRepr::ParamProblem { code: 0, pointer: 256, quote }.emit(&ip, &mut buf).unwrap_err();
    assert_eq!((e.offset, e.kind), (4, WireErrorKind::BadLength(256)));
}

fn parse_err(ip: &IpRepr, msg: &[u8]) -> WireError {
    IcmpRepr::parse(ip, msg, ChecksumMode::Ignore).unwrap_err()
}

// ---------------------------------------------------------------------------------------------
// Every error kind
// ---------------------------------------------------------------------------------------------

fn syn_v4() -> Vec<u8> {
    hex(SYN_V4)[..60].to_vec()
}

/// Recomputes the IPv4 header and TCP checksums of a 20-byte-header IPv4 datagram after edits.
fn fix_checksums(b: &mut [u8]) {
    b[10] = 0;
    b[11] = 0;
    let c = !internet_checksum(0, &b[..20]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    let len = b.len() - 20;
    b[36] = 0;
    b[37] = 0;
    let ps = pseudo_header_sum(v4([b[12], b[13], b[14], b[15]]), v4([b[16], b[17], b[18], b[19]]), 6, len);
    let c = !internet_checksum(ps, &b[20..]);
    b[36..38].copy_from_slice(&c.to_be_bytes());
}

fn err_of(b: &[u8]) -> WireError {
    parse_datagram(b, ChecksumMode::Verify).unwrap_err()
}

#[test]
fn empty_input_is_truncated() {
    let e = err_of(&[]);
    assert_eq!((e.layer, e.kind), (Layer::Ip, WireErrorKind::Truncated { required: 1, len: 0 }));
}

#[test]
fn version_5_is_bad_version() {
    let mut b = syn_v4();
    b[0] = 0x55;
    assert_eq!(err_of(&b).kind, WireErrorKind::BadVersion(5));
}

#[test]
fn ipv4_ihl_4_is_header_len_too_small() {
    let mut b = syn_v4();
    b[0] = 0x44;
    let e = err_of(&b);
    assert_eq!((e.layer, e.kind), (Layer::Ipv4, WireErrorKind::HeaderLenTooSmall(4)));
}

#[test]
fn ipv4_total_length_beyond_buffer_is_bad_length() {
    let mut b = syn_v4();
    b[3] = 61;
    let e = err_of(&b);
    assert_eq!((e.layer, e.offset, e.kind), (Layer::Ipv4, 2, WireErrorKind::BadLength(61)));
    b[3] = 19;
    assert_eq!(err_of(&b).kind, WireErrorKind::BadLength(19));
}

#[test]
fn ipv4_more_fragments_is_fragment() {
    let mut b = syn_v4();
    b[6] = 0x20;
    let e = err_of(&b);
    assert_eq!(
        (e.layer, e.offset, e.kind),
        (Layer::Ipv4, 6, WireErrorKind::Fragment { offset: 0, more: true })
    );
    b[6] = 0x40;
    b[7] = 3;
    assert_eq!(err_of(&b).kind, WireErrorKind::Fragment { offset: 3, more: false });
}

#[test]
fn ipv4_bad_header_checksum_names_both_values() {
    let mut b = syn_v4();
    b[11] ^= 1;
    let e = err_of(&b);
    assert_eq!((e.layer, e.offset), (Layer::Ipv4, 10));
    assert_eq!(e.kind, WireErrorKind::BadChecksum { found: 0x580e, computed: 0x580f });
    assert!(parse_datagram(&b, ChecksumMode::Ignore).is_ok());
}

#[test]
fn ipv4_options_are_skipped() {
    let b = syn_v4();
    let mut with = Vec::new();
    with.push(0x46);
    with.extend_from_slice(&b[1..20]);
    with.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
    with.extend_from_slice(&b[20..]);
    with[3] = 64;
    with[10] = 0;
    with[11] = 0;
    let c = !internet_checksum(0, &with[..24]);
    with[10..12].copy_from_slice(&c.to_be_bytes());
    let d = parse_datagram(&with, ChecksumMode::Verify).unwrap();
    assert_eq!(d, parse_datagram(&b, ChecksumMode::Verify).unwrap());
}

#[test]
fn tcp_data_offset_4_is_header_len_too_small() {
    let mut b = syn_v4();
    b[32] = 0x42;
    fix_checksums(&mut b);
    let e = err_of(&b);
    assert_eq!((e.layer, e.offset, e.kind), (Layer::Tcp, 32, WireErrorKind::HeaderLenTooSmall(4)));
}

#[test]
fn tcp_data_offset_beyond_segment_is_truncated() {
    let mut b = syn_v4();
    b[32] = 0xf2;
    fix_checksums(&mut b);
    let e = err_of(&b);
    assert_eq!((e.layer, e.kind), (Layer::Tcp, WireErrorKind::Truncated { required: 60, len: 40 }));
}

#[test]
fn tcp_bad_checksum_is_refused_and_located() {
    let mut b = syn_v4();
    b[50] ^= 0xff; // inside the TS value
    let e = err_of(&b);
    assert_eq!((e.layer, e.offset), (Layer::Tcp, 36));
    assert!(matches!(e.kind, WireErrorKind::BadChecksum { found: 0x7e47, .. }));
}

#[test]
fn mss_with_length_3_is_bad_option_length() {
    let mut b = syn_v4();
    b[41] = 3;
    fix_checksums(&mut b);
    let e = err_of(&b);
    assert_eq!(
        (e.layer, e.offset, e.kind),
        (Layer::TcpOption, 40, WireErrorKind::BadOptionLength { kind: 2, len: 3 })
    );
}

#[test]
fn option_length_below_2_and_overrun_are_bad_option_length() {
    for (len, at) in [(0u8, 40usize), (1, 40), (41, 40)] {
        let mut b = syn_v4();
        b[40] = 99; // unknown kind
        b[41] = len;
        fix_checksums(&mut b);
        let e = err_of(&b);
        assert_eq!(
            (e.layer, e.offset, e.kind),
            (Layer::TcpOption, at, WireErrorKind::BadOptionLength { kind: 99, len })
        );
    }
}

#[test]
fn sack_with_length_11_is_bad_option_length() {
    let opts = [1, 1, 5, 11, 0, 0, 0, 0, 0, 0, 0, 0];
    let e: Vec<_> = TcpOption::iter_raw(&opts).collect();
    assert_eq!(e.last().unwrap().unwrap_err().kind, WireErrorKind::BadOptionLength { kind: 5, len: 11 });
}

#[test]
fn eol_ends_the_list_and_unknown_options_are_kept() {
    let opts = [1, 30, 4, 0xaa, 0xbb, 0, 2, 1];
    let parsed: Vec<_> = TcpOption::iter_raw(&opts).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        parsed,
        [TcpOption::Nop, TcpOption::Unknown { kind: 30, data: &[0xaa, 0xbb] }, TcpOption::Eol]
    );
    let u = UnknownOptions::from_raw(&opts);
    assert_eq!(u.iter().collect::<Vec<_>>(), [(30u8, &[0xaau8, 0xbb][..])]);
    assert_eq!(u.wire_len(), 4);
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let b = hex(SYN_V6);
    // Insert hop-by-hop (8 bytes, PadN) and destination options (8 bytes) before TCP.
    let mut v = b[..40].to_vec();
    v[6] = 0;
    v.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    v.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    v.extend_from_slice(&b[40..]);
    v[5] = 44 + 16;
    let d = parse_datagram(&v, ChecksumMode::Ignore).unwrap();
    assert_eq!(d, parse_datagram(&b, ChecksumMode::Ignore).unwrap());
    // An error behind the extension headers is located datagram-relative.
    let mut w = v.clone();
    w[56 + 12] = 0x40;
    assert_eq!(err_of(&w).offset, 56 + 12);
}

#[test]
fn ipv6_fragment_header_is_fragment_unless_atomic() {
    let b = hex(SYN_V6);
    let mut v = b[..40].to_vec();
    v[6] = 44;
    v.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 1]);
    v.extend_from_slice(&b[40..]);
    v[5] = 44 + 8;
    assert!(parse_datagram(&v, ChecksumMode::Ignore).is_ok(), "atomic fragment is processed");
    v[43] = 0x09; // offset 1, M set
    let e = parse_datagram(&v, ChecksumMode::Ignore).unwrap_err();
    assert_eq!(
        (e.layer, e.offset, e.kind),
        (Layer::Ipv6Ext, 42, WireErrorKind::Fragment { offset: 1, more: true })
    );
}

#[test]
fn ipv6_esp_is_unsupported_and_payload_length_checked() {
    let mut v = hex(SYN_V6);
    v[6] = 50;
    assert_eq!(err_of(&v).kind, WireErrorKind::UnsupportedExtension(50));
    let mut v = hex(SYN_V6);
    v[5] = 45;
    let e = err_of(&v);
    assert_eq!((e.layer, e.offset, e.kind), (Layer::Ipv6, 4, WireErrorKind::BadLength(45)));
    let v = hex(SYN_V6);
    assert!(matches!(err_of(&v[..39]).kind, WireErrorKind::Truncated { required: 40, len: 39 }));
}

#[test]
fn ipv6_no_next_header_is_other() {
    let mut v = hex(SYN_V6)[..40].to_vec();
    v[5] = 0;
    v[6] = 59;
    let d = parse_datagram(&v, ChecksumMode::Verify).unwrap();
    assert_eq!(d.transport, Transport::Other(&[]));
}

#[test]
fn icmp_shorter_than_8_is_truncated() {
    let ip = IpRepr { protocol: IPPROTO_ICMP, ..ip4() };
    let e = IcmpRepr::parse(&ip, &[8, 0, 0, 0], ChecksumMode::Ignore).unwrap_err();
    assert_eq!((e.layer, e.kind), (Layer::Icmpv4, WireErrorKind::Truncated { required: 8, len: 4 }));
}

#[test]
fn emit_errors_mixed_families_and_short_buffer() {
    let ip = IpRepr { dst: ip6().dst, ..ip4() };
    let mut buf = [0u8; 100];
    assert_eq!(ip.emit(0, &mut buf).unwrap_err().kind, WireErrorKind::MixedFamilies);
    assert_eq!(SEG.emit(&ip, &mut buf).unwrap_err().kind, WireErrorKind::MixedFamilies);
    let e = emit_datagram(&ip4(), &Transport::Tcp(SEG), &mut buf[..39]).unwrap_err();
    assert_eq!(e.kind, WireErrorKind::Truncated { required: 40, len: 39 });
    let e = ip4().emit(65516, &mut buf).unwrap_err();
    assert_eq!(e.kind, WireErrorKind::BadLength(65536));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn arb_ip() -> impl Strategy<Value = IpRepr> {
    prop_oneof![
        // The ECN field (RFC 3168 §5) is kept both ways; the DSCP bits are not.
        (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u8>(), 0u8..4).prop_map(|(s, d, h, e)| IpRepr {
            src: v4(s),
            dst: v4(d),
            protocol: 0,
            hop_limit: h,
            ecn: e,
            payload_len: 0
        }),
        (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u8>(), 0u8..4).prop_map(|(s, d, h, e)| IpRepr {
            src: IpAddr::V6(Ipv6Addr::from(s)),
            dst: IpAddr::V6(Ipv6Addr::from(d)),
            protocol: 0,
            hop_limit: h,
            ecn: e,
            payload_len: 0
        }),
    ]
}

fn arb_seq() -> impl Strategy<Value = SeqNum> {
    any::<u32>().prop_map(SeqNum)
}

/// Unknown options encoded as a raw area (kinds that are not interpreted, total within 40 bytes).
fn arb_unknown() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            prop_oneof![Just(6u8), Just(19), Just(28), Just(30), Just(253), 9u8..=255],
            prop::collection::vec(any::<u8>(), 0..6),
        ),
        0..3,
    )
    .prop_map(|opts| {
        let mut raw = Vec::new();
        for (k, d) in opts {
            // 34 and 254 (with its magic) are Fast Open's, an option of their own.
            if matches!(k, 0..=5 | 8 | 34 | 254) {
                continue;
            }
            raw.push(k);
            raw.push(d.len() as u8 + 2);
            raw.extend_from_slice(&d);
        }
        raw
    })
}

type OptParts = (
    Option<u16>,
    Option<u8>,
    bool,
    Option<(u32, u32)>,
    Option<Vec<(SeqNum, SeqNum)>>,
    Vec<u8>,
    Option<(Vec<u8>, bool)>,
);

fn arb_option_parts() -> impl Strategy<Value = OptParts> {
    (
        any::<Option<u16>>(),
        any::<Option<u8>>(),
        any::<bool>(),
        any::<Option<(u32, u32)>>(),
        prop::option::of(prop::collection::vec((arb_seq(), arb_seq()), 0..=4)),
        arb_unknown(),
        prop::option::of((prop::collection::vec(any::<u8>(), 0..=16), any::<bool>())),
    )
}

fn build_options<'a>(p: &'a OptParts) -> TcpOptions<'a> {
    TcpOptions {
        mss: p.0,
        window_scale: p.1,
        sack_permitted: p.2,
        timestamp: p.3.map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
        sack: p.4.as_ref().map(|b| SackBlocks::from_slice(b).unwrap()),
        fast_open: p.6.as_ref().map(|(c, experimental)| FastOpen {
            cookie: FastOpenCookie::from_slice(c).unwrap(),
            experimental: *experimental,
        }),
        unknown: UnknownOptions::from_raw(&p.5),
    }
}

#[derive(Debug, Clone)]
struct TcpParts {
    ports: (u16, u16),
    seq: SeqNum,
    ack: SeqNum,
    flags: u16,
    window: u16,
    urgent: u16,
    options: OptParts,
    payload: Vec<u8>,
}

fn arb_tcp() -> impl Strategy<Value = TcpParts> {
    (
        any::<(u16, u16)>(),
        arb_seq(),
        arb_seq(),
        0u16..0x200,
        any::<u16>(),
        any::<u16>(),
        arb_option_parts(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(ports, seq, ack, flags, window, urgent, options, payload)| TcpParts {
            ports,
            seq,
            ack,
            flags,
            window,
            urgent,
            options,
            payload,
        })
}

fn build_tcp(p: &TcpParts) -> TcpRepr<'_> {
    TcpRepr {
        src_port: p.ports.0,
        dst_port: p.ports.1,
        seq: p.seq,
        ack: p.ack,
        flags: TcpFlags(p.flags),
        window: p.window,
        urgent: p.urgent,
        options: build_options(&p.options),
        payload: &p.payload,
    }
}

#[derive(Debug, Clone)]
enum IcmpParts {
    Request(u16, u16, Vec<u8>),
    Reply(u16, u16, Vec<u8>),
    Other(u8, u8, Vec<u8>),
}

fn arb_icmp() -> impl Strategy<Value = IcmpParts> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(a, b, d)| IcmpParts::Request(a, b, d)),
        (any::<u16>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(a, b, d)| IcmpParts::Reply(a, b, d)),
        // Not the echo or error types of either family (those parse as such), rest at least the
        // 4 header bytes.
        (
            any::<u8>()
                .prop_filter("not echo or error", |t| !matches!(t, 0 | 8 | 128 | 129 | 1..=4 | 11 | 12)),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 4..40)
        )
            .prop_map(|(t, c, r)| IcmpParts::Other(t, c, r)),
    ]
}

fn build_icmp(p: &IcmpParts) -> IcmpRepr<'_> {
    match p {
        IcmpParts::Request(ident, seq_no, data) => {
            IcmpRepr::EchoRequest { ident: *ident, seq_no: *seq_no, data }
        }
        IcmpParts::Reply(ident, seq_no, data) => IcmpRepr::EchoReply { ident: *ident, seq_no: *seq_no, data },
        IcmpParts::Other(icmp_type, code, rest) => {
            IcmpRepr::Other { icmp_type: *icmp_type, code: *code, rest }
        }
    }
}

/// An error message of kind 0 (unreachable), 1 (too big), 2 (time exceeded) or 3 (parameter
/// problem), with what the family's header fields can hold.
fn icmp_error(v4: bool, kind: u8, code: u8, value: u32, quote: Quote<'_>) -> IcmpRepr<'_> {
    match kind {
        // ICMPv4 code 4 is "fragmentation needed", which parses as PacketTooBig.
        0 => IcmpRepr::DestUnreachable { code: if v4 && code == 4 { 3 } else { code }, quote },
        1 => IcmpRepr::PacketTooBig { mtu: if v4 { value & 0xffff } else { value }, quote },
        2 => IcmpRepr::TimeExceeded { code, quote },
        _ => IcmpRepr::ParamProblem { code, pointer: if v4 { value & 0xff } else { value }, quote },
    }
}

/// Emits the datagram; `None` when the options legitimately do not fit.
fn emit_vec(ip: &IpRepr, t: &Transport<'_>) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; datagram_len(ip, t)];
    match emit_datagram(ip, t, &mut buf) {
        Ok(n) => {
            assert_eq!(n, buf.len());
            Some(buf)
        }
        Err(e) if matches!(e.kind, WireErrorKind::OptionsTooLong(_)) => None,
        Err(e) => panic!("emit failed: {e}"),
    }
}

/// `ip` with the protocol number of `t` and the payload length of an emitted datagram of `len` bytes.
fn with_protocol(ip: IpRepr, t: &Transport<'_>, len: usize) -> IpRepr {
    let protocol = match t {
        Transport::Tcp(_) => IPPROTO_TCP,
        Transport::Icmp(_) if ip.src.is_ipv4() => IPPROTO_ICMP,
        Transport::Icmp(_) => IPPROTO_ICMPV6,
        Transport::Other(_) => 17,
    };
    IpRepr { protocol, payload_len: len.saturating_sub(ip.header_len()), ..ip }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(prop::test_runner::FileFailurePersistence::Direct(
            "tests/wire.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn tcp_emit_then_parse_is_identity(ip in arb_ip(), parts in arb_tcp()) {
        let tcp = build_tcp(&parts);
        let t = Transport::Tcp(tcp);
        let ip = IpRepr { protocol: IPPROTO_TCP, ..ip };
        if let Some(bytes) = emit_vec(&ip, &t) {
            prop_assert_eq!(bytes.len(), ip.header_len() + tcp.header_len() + tcp.payload.len());
            let d = parse_datagram(&bytes, ChecksumMode::Verify).unwrap();
            prop_assert_eq!(d, Datagram { ip: with_protocol(ip, &t, bytes.len()), transport: t });
        } else {
            prop_assert!(tcp.options.sack.is_some() || !tcp.options.unknown.is_empty());
        }
    }

    #[test]
    fn icmp_emit_then_parse_is_identity(ip in arb_ip(), parts in arb_icmp()) {
        let t = Transport::Icmp(build_icmp(&parts));
        let ip = with_protocol(ip, &t, 0);
        let bytes = emit_vec(&ip, &t).unwrap();
        let d = parse_datagram(&bytes, ChecksumMode::Verify).unwrap();
        prop_assert_eq!(d, Datagram { ip: with_protocol(ip, &t, bytes.len()), transport: t });
    }

    #[test]
    fn every_truncated_prefix_is_an_error(ip in arb_ip(), parts in arb_tcp(), icmp in arb_icmp()) {
        let tcp = Transport::Tcp(build_tcp(&parts));
        let icmp = Transport::Icmp(build_icmp(&icmp));
        for t in [tcp, icmp] {
            let ip = with_protocol(ip, &t, 0);
            let Some(bytes) = emit_vec(&ip, &t) else { continue };
            for n in 0..bytes.len() {
                prop_assert!(parse_datagram(&bytes[..n], ChecksumMode::Ignore).is_err(), "prefix {} parsed", n);
            }
            // And the transport alone, cut inside its header, is an error too (TCP has no length
            // field, so cutting only TCP payload still parses: that is the IP layer's check).
            let body = &bytes[ip.header_len()..];
            let header = match t {
                Transport::Tcp(tcp) => tcp.header_len(),
                _ => 8,
            };
            for n in 0..header {
                let r = match t {
                    Transport::Tcp(_) => TcpRepr::parse(&ip, &body[..n], ChecksumMode::Ignore).map(|_| ()),
                    _ => IcmpRepr::parse(&ip, &body[..n], ChecksumMode::Ignore).map(|_| ()),
                };
                prop_assert!(r.is_err(), "transport prefix {} parsed", n);
            }
        }
    }

    #[test]
    fn icmp_error_emit_then_parse_is_identity(
        ip in arb_ip(),
        kind in 0u8..4,
        code in any::<u8>(),
        value in any::<u32>(),
        seg in arb_tcp(),
        keep in 0usize..80,
    ) {
        let v4 = ip.src.is_ipv4();
        let header = if v4 { 20 } else { 40 };
        let q = quoted(&ip, &TcpRepr { options: TcpOptions::default(), ..build_tcp(&seg) }, header + 8 + keep);
        let quote = Quote::parse(&q, v4).unwrap();
        let t = Transport::Icmp(icmp_error(v4, kind, code, value, quote));
        let out = with_protocol(back(&ip, 0), &t, 0);
        let bytes = emit_vec(&out, &t).unwrap();
        let d = parse_datagram(&bytes, ChecksumMode::Verify).unwrap();
        prop_assert_eq!(d, Datagram { ip: with_protocol(out, &t, bytes.len()), transport: t });
    }

    #[test]
    fn every_truncated_icmp_error_is_a_length_error(
        ip in arb_ip(),
        kind in 0u8..4,
        code in any::<u8>(),
        value in any::<u32>(),
        seg in arb_tcp(),
    ) {
        let v4 = ip.src.is_ipv4();
        let header = if v4 { 20 } else { 40 };
        let q = quoted(&ip, &TcpRepr { options: TcpOptions::default(), ..build_tcp(&seg) }, header + 8);
        let quote = Quote::parse(&q, v4).unwrap();
        let t = Transport::Icmp(icmp_error(v4, kind, code, value, quote));
        let out = with_protocol(back(&ip, 0), &t, 0);
        let bytes = emit_vec(&out, &t).unwrap();
        let body = &bytes[out.header_len()..];
        for n in 0..body.len() {
            let e = IcmpRepr::parse(&out, &body[..n], ChecksumMode::Ignore);
            prop_assert!(matches!(e, Err(WireError { kind: WireErrorKind::Truncated { .. }, .. })), "prefix {} gave {:?}", n, e);
        }
        for n in 0..bytes.len() {
            prop_assert!(parse_datagram(&bytes[..n], ChecksumMode::Ignore).is_err(), "prefix {} parsed", n);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_datagram(&bytes, ChecksumMode::Verify);
        let _ = parse_datagram(&bytes, ChecksumMode::Ignore);
        for o in TcpOption::iter_raw(&bytes) {
            let _ = o;
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic_and_reparse(ip in arb_ip(), parts in arb_tcp(), at in any::<prop::sample::Index>(), val in any::<u8>()) {
        let t = Transport::Tcp(build_tcp(&parts));
        let ip = with_protocol(ip, &t, 0);
        let Some(mut bytes) = emit_vec(&ip, &t) else { return Ok(()) };
        let i = at.index(bytes.len());
        bytes[i] = val;
        if let Ok(d) = parse_datagram(&bytes, ChecksumMode::Ignore) {
            let again = emit_vec(&d.ip, &d.transport).expect("a parsed segment always re-emits");
            // The options may be laid out shorter than they came (canonical NOPs, no padding after
            // EOL), so the IP payload length is the one derived value allowed to change.
            let ip = IpRepr { payload_len: again.len() - d.ip.header_len(), ..d.ip };
            prop_assert_eq!(parse_datagram(&again, ChecksumMode::Verify).unwrap(), Datagram { ip, ..d });
        }
    }
}
