//! ICMP errors against live connections: path MTU discovery (RFC 1191, RFC 8201) with the checks
//! of RFC 5927, and the errors that are only counted (RFC 1122 §4.2.3.9). Each ICMP message quotes
//! a segment the stack really sent.

mod common;

use common::*;
use std::net::{IpAddr, SocketAddr};
use utcp::wire::{
    self, ChecksumMode, IcmpRepr, IpRepr, Quote, TcpFlags, TcpOptions, TcpRepr, Transport, IPPROTO_ICMP,
    IPPROTO_ICMPV6,
};
use utcp::{Config, DropReason, State};

/// A SYN with only an MSS of 1460: no timestamps, so the send MSS is MTU - 40.
const SYN_MSS: In = In { opts: TcpOptions { mss: Some(1460), ..NO_OPTS }, ..BARE_SYN };

/// A passive connection that agreed on MSS 1460 and no other option: ESTABLISHED.
fn established_1460() -> T {
    let mut t = T::listening(config());
    t.send(SYN_MSS);
    assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
    t.send(ACK);
    t.accept();
    t.events();
    t
}

/// Wraps `quoted` (a datagram the stack sent) in an ICMPv4 or ICMPv6 error from a router.
fn icmp_error(msg: impl FnOnce(Quote<'_>) -> IcmpRepr<'_>, quoted: &[u8]) -> Vec<u8> {
    let d = wire::parse_datagram(quoted, ChecksumMode::Verify).unwrap();
    let v4 = d.ip.src.is_ipv4();
    let router: IpAddr = if v4 { "198.51.100.1".parse().unwrap() } else { "2001:db8:ff::1".parse().unwrap() };
    // RFC 792: the IP header and the first 64 bits of data; RFC 4443: as much as fits.
    let keep = if v4 { 28 } else { quoted.len().min(1232) };
    let icmp = msg(Quote::parse(&quoted[..keep], v4).unwrap());
    let ip = IpRepr {
        src: router,
        dst: d.ip.src,
        protocol: if v4 { IPPROTO_ICMP } else { IPPROTO_ICMPV6 },
        hop_limit: 64,
        ecn: 0,
        payload_len: 0,
    };
    let t = Transport::Icmp(icmp);
    let mut buf = vec![0; wire::datagram_len(&ip, &t)];
    wire::emit_datagram(&ip, &t, &mut buf).unwrap();
    buf
}

fn too_big(mtu: u32) -> impl FnOnce(Quote<'_>) -> IcmpRepr<'_> {
    move |quote| IcmpRepr::PacketTooBig { mtu, quote }
}

/// Sends 3000 bytes and returns the three segments that carried them, as raw datagrams.
fn send_3000(t: &mut T) -> Vec<Vec<u8>> {
    assert_eq!(t.write(t.sock(), &[7u8; 3000]), Ok(3000));
    let raw = t.out_raw();
    let seen: Vec<String> = raw.iter().map(|p| t.format(p)).collect();
    assert_eq!(
        seen,
        [
            ". 1:1461(1460) ack 1 win 65535",
            ". 1461:2921(1460) ack 1 win 65535",
            "P. 2921:3001(80) ack 1 win 65535"
        ]
    );
    raw
}

fn mss(t: &T) -> u16 {
    t.s().info(t.sock()).unwrap().mss
}

// =============================================================================================
// Fragmentation needed (RFC 1191) and the checks of RFC 5927

#[test]
fn rfc1191_frag_needed_lowers_mss_and_retransmits() {
    let mut t = established_1460();
    let sent = send_3000(&mut t);
    let cwnd = t.s().info(t.sock()).unwrap().cwnd;
    t.receive(&icmp_error(too_big(1000), &sent[0]));
    // RFC 1191 §6.3: the MSS follows the new path MTU, 1000 - 20 (IP) - 20 (TCP).
    assert_eq!(mss(&t), 960);
    assert_eq!(t.s().stats().pmtu_updates, 1);
    // RFC 1191 §6.5: "the TCP layer should retransmit" what was too big, at once and at the new
    // size; like Linux (tcp_simple_retransmit) without a congestion response.
    assert_eq!(
        t.out(),
        [
            ". 1:961(960) ack 1 win 65535",
            ". 961:1921(960) ack 1 win 65535",
            ". 1921:2881(960) ack 1 win 65535",
            "P. 2881:3001(120) ack 1 win 65535",
        ]
    );
    assert_eq!(t.s().info(t.sock()).unwrap().cwnd, cwnd);
    assert_eq!(t.s().stats().timeouts, 0);
    // New data after that goes out in segments of the new MSS.
    t.send(In { ack: 3001, ..ACK });
    assert_eq!(t.write(t.sock(), &[8u8; 1500]), Ok(1500));
    assert_eq!(t.out(), [". 3001:3961(960) ack 1 win 65535", "P. 3961:4501(540) ack 1 win 65535"]);
}

#[test]
fn rfc1191_mss_from_mtu_leaves_room_for_timestamps() {
    // RFC 6691 / RFC 7323: the timestamp option comes out of each segment's payload, as it does
    // for the MSS the handshake agreed on.
    let mut t = T::listening(config());
    t.send(In { opts: TcpOptions { window_scale: None, sack_permitted: false, ..SYN.opts }, ..SYN });
    t.out();
    let ts = TcpOptions { mss: None, ..SYN.opts };
    t.send(In { opts: ts, ..ACK });
    t.accept();
    assert_eq!(mss(&t), 1460 - 12);
    assert_eq!(t.write(t.sock(), &[1u8; 100]), Ok(100));
    let sent = t.out_raw();
    t.receive(&icmp_error(too_big(1000), &sent[0]));
    assert_eq!(mss(&t), 1000 - 40 - 12);
}

#[test]
fn rfc1191_frag_needed_at_the_floor_is_taken() {
    // Like Linux (ip_rt_min_pmtu): 552 bytes is the smallest IPv4 path MTU believed.
    let mut t = established_1460();
    let sent = send_3000(&mut t);
    t.receive(&icmp_error(too_big(552), &sent[1]));
    assert_eq!(mss(&t), 512);
}

#[test]
fn rfc1191_frag_needed_below_the_floor_is_ignored() {
    // RFC 5927 §7.2: an attacker's tiny MTU must not cut the connection's segments to nothing.
    // An RFC 1191-less router reports 0. Below 552 (Linux's min_pmtu) nothing changes.
    let mut t = established_1460();
    let sent = send_3000(&mut t);
    for mtu in [0, 68, 551] {
        t.receive(&icmp_error(too_big(mtu), &sent[0]));
    }
    assert_eq!(mss(&t), 1460);
    assert!(t.out().is_empty());
    assert_eq!(t.s().stats().dropped(DropReason::IcmpMtuTooSmall), 3);
    assert_eq!(t.s().stats().pmtu_updates, 0);
}

#[test]
fn rfc1191_frag_needed_not_below_the_path_mtu_is_ignored() {
    // RFC 1191 §6.3: the PMTU is only ever lowered by a Datagram Too Big message.
    let mut t = established_1460();
    let sent = send_3000(&mut t);
    t.receive(&icmp_error(too_big(1500), &sent[0]));
    t.receive(&icmp_error(too_big(1000), &sent[0]));
    t.receive(&icmp_error(too_big(1200), &sent[0]));
    assert_eq!(mss(&t), 960);
    assert_eq!(t.s().stats().dropped(DropReason::IcmpMtuNotLower), 2);
    assert_eq!(t.s().stats().pmtu_updates, 1);
}

#[test]
fn rfc5927_quote_outside_snd_una_snd_nxt_changes_nothing() {
    //= https://www.rfc-editor.org/rfc/rfc5927#section-4.1
    //# TCP SHOULD check that the TCP sequence number contained in the payload of the ICMP error
    //# message is within the range SND.UNA =< SEG.SEQ < SND.NXT.
    let mut t = established_1460();
    let sent = send_3000(&mut t);
    // Everything acknowledged: the first segment's sequence number is now below SND.UNA.
    t.send(In { ack: 3001, ..ACK });
    t.receive(&icmp_error(too_big(1000), &sent[0]));
    // A sequence number beyond anything sent (a blind attacker's guess).
    let mut forged = sent[2].clone();
    forged[24..28].copy_from_slice(&(t.iss.unwrap().wrapping_add(90_000)).to_be_bytes());
    let forged = reencode(&forged);
    t.receive(&icmp_error(too_big(1000), &forged));
    assert_eq!(mss(&t), 1460);
    assert!(t.out().is_empty());
    assert_eq!(t.s().stats().dropped(DropReason::IcmpSeqOutOfWindow), 2);
    assert_eq!(t.s().stats().pmtu_updates, 0);
}

/// Parses and re-emits a datagram so that its checksums are right again after an edit.
fn reencode(p: &[u8]) -> Vec<u8> {
    let d = wire::parse_datagram(p, ChecksumMode::Ignore).unwrap();
    let mut buf = vec![0; wire::datagram_len(&d.ip, &d.transport)];
    wire::emit_datagram(&d.ip, &d.transport, &mut buf).unwrap();
    buf
}

// =============================================================================================
// Packet Too Big (RFC 8201)

fn tcp_of(p: &[u8]) -> TcpRepr<'_> {
    match wire::parse_datagram(p, ChecksumMode::Verify).unwrap().transport {
        Transport::Tcp(t) => t,
        other => panic!("not TCP: {other:?}"),
    }
}

#[test]
fn rfc8201_packet_too_big_lowers_mss_and_retransmits() {
    let mut c = Config::linux_like().with_address(LOCAL6);
    c.isn_secret = [3; 16];
    let mut t = T::new(c);
    let l = t.listen(SocketAddr::new(LOCAL6, 443), 4).unwrap();
    let mss_1440 = TcpOptions { mss: Some(1440), ..NO_OPTS };
    t.receive(&segment_v6(TcpFlags::SYN, 100, 0, mss_1440, &[]));
    let iss = tcp_of(&t.next_raw().unwrap()).seq.0;
    t.receive(&segment_v6(TcpFlags::ACK, 101, iss + 1, NO_OPTS, &[]));
    let h = t.accept_on(l).unwrap();
    assert_eq!(t.s().info(h).unwrap().mss, 1440);
    assert_eq!(t.write(h, &[5u8; 2000]), Ok(2000));
    let first = t.next_raw().unwrap();
    assert_eq!(tcp_of(&first).payload.len(), 1440);
    while t.next_raw().is_some() {}

    // RFC 8201 §4: below the IPv6 minimum link MTU "it must discard it".
    t.receive(&icmp_error(too_big(1279), &first));
    assert_eq!(t.s().info(h).unwrap().mss, 1440);
    assert_eq!(t.s().stats().dropped(DropReason::IcmpMtuTooSmall), 1);

    t.receive(&icmp_error(too_big(1280), &first));
    // RFC 8201 §5.2 / RFC 6691: 1280 - 40 (IPv6) - 20 (TCP).
    assert_eq!(t.s().info(h).unwrap().mss, 1220);
    assert_eq!(t.s().stats().pmtu_updates, 1);
    let again: Vec<(u32, usize)> = t
        .out_raw()
        .into_iter()
        .map(|p| {
            let seg = tcp_of(&p);
            (seg.seq.0.wrapping_sub(iss), seg.payload.len())
        })
        .collect();
    assert_eq!(again, [(1, 1220), (1221, 780)]);
}

// =============================================================================================
// Errors that are counted, not acted on (RFC 1122 §4.2.3.9, RFC 5927 §4)

#[test]
fn rfc1122_port_unreachable_does_not_close_an_established_connection() {
    // RFC 5927 §4 and Linux: hard errors on a synchronized connection are soft errors; the
    // connection goes on until its own timers give up.
    let mut t = established_1460();
    let sent = send_3000(&mut t);
    let port_unreachable = icmp_error(|quote| IcmpRepr::DestUnreachable { code: 3, quote }, &sent[0]);
    t.receive(&port_unreachable);
    assert_eq!(t.s().state(t.sock()), Some(State::Established));
    assert!(t.out().is_empty());
    assert!(t.events().is_empty());
    assert_eq!(t.s().stats().icmp_errors_in, 1);
    assert_eq!(t.s().stats().dropped(DropReason::IcmpUnreachable), 1);
    t.send(In { ack: 3001, ..ACK });
    assert_eq!(t.s().info(t.sock()).unwrap().snd_una, t.iss.unwrap().wrapping_add(3001));
}

#[test]
fn rfc1122_unreachable_in_syn_sent_is_counted_and_the_syn_retried() {
    // RFC 1122 §4.2.3.9: network and host unreachable are soft errors, a TCP "MUST NOT abort".
    // Port unreachable is a hard error that "SHOULD" abort; this stack does not (Linux does).
    let mut t = T::connecting(config());
    let syn = t.out_raw();
    for code in [0, 1, 3] {
        t.receive(&icmp_error(move |quote| IcmpRepr::DestUnreachable { code, quote }, &syn[0]));
    }
    assert_eq!(t.s().state(t.sock()), Some(State::SynSent));
    assert_eq!(t.s().stats().dropped(DropReason::IcmpUnreachable), 3);
    assert_eq!(t.advance_out(utcp::Duration::from_millis(1100)).len(), 1);
}

#[test]
fn time_exceeded_and_parameter_problem_are_counted() {
    let mut t = established_1460();
    let sent = send_3000(&mut t);
    t.receive(&icmp_error(|quote| IcmpRepr::TimeExceeded { code: 0, quote }, &sent[1]));
    t.receive(&icmp_error(|quote| IcmpRepr::ParamProblem { code: 0, pointer: 20, quote }, &sent[2]));
    assert_eq!(t.s().state(t.sock()), Some(State::Established));
    assert!(t.out().is_empty());
    assert_eq!(t.s().stats().icmp_errors_in, 2);
    assert_eq!(t.s().stats().dropped(DropReason::IcmpTimeExceeded), 1);
    assert_eq!(t.s().stats().dropped(DropReason::IcmpParamProblem), 1);
}

#[test]
fn icmp_error_for_no_connection_is_counted() {
    let mut t = established_1460();
    let sent = send_3000(&mut t);
    // The same segment from another local port: no connection has that 4-tuple.
    let mut other = sent[0].clone();
    other[20..22].copy_from_slice(&9999u16.to_be_bytes());
    let other = reencode(&other);
    t.receive(&icmp_error(too_big(1000), &other));
    assert_eq!(mss(&t), 1460);
    assert_eq!(t.s().stats().icmp_errors_in, 1);
    assert_eq!(t.s().stats().dropped(DropReason::IcmpNoConnection), 1);
}

#[test]
fn icmp_echo_still_answered_and_not_counted_as_an_error() {
    let mut t = T::new(config());
    let ip =
        IpRepr { src: REMOTE, dst: LOCAL, protocol: IPPROTO_ICMP, hop_limit: 64, ecn: 0, payload_len: 0 };
    let req = Transport::Icmp(IcmpRepr::EchoRequest { ident: 7, seq_no: 1, data: b"ping" });
    let mut buf = vec![0; wire::datagram_len(&ip, &req)];
    wire::emit_datagram(&ip, &req, &mut buf).unwrap();
    t.receive(&buf);
    let out = t.next_raw().unwrap();
    let d = wire::parse_datagram(&out, ChecksumMode::Verify).unwrap();
    assert_eq!(d.transport, Transport::Icmp(IcmpRepr::EchoReply { ident: 7, seq_no: 1, data: b"ping" }));
    assert_eq!(t.s().stats().echo_replies, 1);
    assert_eq!(t.s().stats().icmp_errors_in, 0);
}

// Linux (tcp_v4_err, tcp_req_err): a host unreachable quoting our SYN-ACK removes the half-open
// connection silently; the ACK that follows finds no connection and is answered with a RST.
#[test]
fn host_unreachable_removes_a_half_open_passive_connection() {
    let mut t = T::listening(config());
    t.send(SYN_MSS);
    let synack = t.out_raw();
    t.receive(&icmp_error(|quote| IcmpRepr::DestUnreachable { code: 1, quote }, &synack[0]));
    assert!(t.out().is_empty());
    assert_eq!(t.s().connection_count(), 0);
    t.send(ACK);
    assert_eq!(t.out(), ["R 1:1(0) win 0"]);
}
