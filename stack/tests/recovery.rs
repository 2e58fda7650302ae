//! Loss recovery, exact segments in and out on virtual time: SACK-based recovery (RFC 6675) with
//! PRR (RFC 6937), RACK-TLP (RFC 8985) and F-RTO (RFC 5682), in the Linux profile.

mod common;

use common::*;
use utcp::wire::{SackBlocks, TcpOptions};
use utcp::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// ESTABLISHED with a peer that offered SACK and window scale (no timestamps): MSS 1460, its
/// window 512 << 7 = 64 KiB.
fn sack_established() -> T {
    sack_established_with(config())
}

/// The same with another configuration.
fn sack_established_with(config: utcp::Config) -> T {
    let mut t = T::listening(config);
    t.send(In { opts: TcpOptions { timestamp: None, ..SYN.opts }, ..SYN });
    t.out();
    // A 20 ms round trip: SRTT 20 ms, the RTO its 200 ms floor (Linux's), a probe timeout of
    // 2 SRTT + 2 ms.
    t.advance(ms(20));
    t.send(In { win: 512, ..ACK });
    t.accept();
    t.events();
    t
}

/// The peer's ACK of `ack` with SACK blocks (offsets from our ISN, as `In::ack`).
fn sack(ack: u32, blocks: &[(u32, u32)]) -> In {
    let b: Vec<_> = blocks.iter().map(|&(l, r)| (utcp::tcp::SeqNum(l), utcp::tcp::SeqNum(r))).collect();
    In { ack, win: 512, opts: TcpOptions { sack: SackBlocks::from_slice(&b), ..NO_OPTS }, ..ACK }
}

fn segment(n: u32) -> String {
    let start = 1 + 1460 * n;
    format!(". {}:{}(1460) ack 1 win 1024", start, start + 1460)
}

/// The RFC profile: SACK recovery by the DupThresh rule, no RACK, no tail loss probe.
fn rfc_profile() -> utcp::Config {
    let mut c = utcp::Config::default().with_address(LOCAL);
    c.isn_secret = [42; 16];
    c
}

/// Segment `n` as the RFC profile sends it (its 256 KiB buffer at wscale 3: win 32768).
fn rfc_segment(n: u32) -> String {
    let start = 1 + 1460 * n;
    format!(". {}:{}(1460) ack 1 win 32768", start, start + 1460)
}

#[test]
fn rfc6675_recovery_resends_only_the_holes_the_sack_blocks_show() {
    let mut t = sack_established();
    t.write(t.sock(), &vec![7u8; 10 * 1460]).unwrap();
    // RFC 6928: an initial window of ten segments.
    assert_eq!(t.out().len(), 10);
    t.advance(ms(20));
    t.send(sack(1461, &[]));
    // Segments 3, 4 and 5 arrive, 2 is missing. RFC 8985 §6.2: with fewer than three segments
    // SACKed the reordering window is a quarter of the minimum RTT: no retransmission yet.
    t.send(sack(1461, &[(2921, 4381)]));
    assert_eq!(t.out(), Vec::<String>::new());
    t.send(sack(1461, &[(2921, 5841)]));
    t.send(sack(1461, &[(2921, 7301)]));
    // Three SACKed: no reordering window; segment 2 was sent before them and is lost. PRR
    // (RFC 6937) lets the fast retransmission out at once.
    assert_eq!(t.out(), [segment(1)]);
    assert_eq!(t.s().stats().fast_retransmits, 1);
    // Segment 7 is missing too: resent, and nothing the peer SACKed goes again.
    t.send(sack(1461, &[(2921, 8761), (10221, 14601)]));
    assert_eq!(t.out(), [segment(6)]);
    t.send(sack(8761, &[(10221, 14601)]));
    t.send(sack(14601, &[]));
    assert_eq!(t.out(), Vec::<String>::new());
    assert_eq!(t.s().stats().retransmissions, 2);
    assert_eq!(t.s().stats().timeouts, 0);
}

#[test]
fn rfc8985_reordering_window_delays_the_loss_decision_by_a_quarter_rtt() {
    let mut t = sack_established();
    t.write(t.sock(), &vec![7u8; 4 * 1460]).unwrap();
    assert_eq!(t.out().len(), 4);
    t.advance(ms(20));
    t.send(sack(1461, &[]));
    t.send(sack(1461, &[(2921, 4381)]));
    // RACK.rtt 20 ms, reordering window 20/4 = 5 ms: segment 2 is lost 5 ms after the SACK.
    assert_eq!(t.advance_out(ms(10)), [format!("+5ms {}", segment(1))]);
}

#[test]
fn rfc8985_a_dsack_widens_the_reordering_window_by_a_quarter_rtt() {
    let mut t = sack_established();
    t.write(t.sock(), &vec![7u8; 4 * 1460]).unwrap();
    assert_eq!(t.out().len(), 4);
    t.advance(ms(20));
    // The ACK of the first segment carries a D-SACK (RFC 2883: its first block is below the
    // cumulative ACK): the peer got that segment twice. §6.2 step 4: the reordering window
    // grows to two quarters of the minimum RTT.
    t.send(sack(1461, &[(1, 1461)]));
    t.send(sack(1461, &[(2921, 4381)]));
    // RACK.rtt 20 ms, reordering window 2 × 20/4 = 10 ms (5 ms without the D-SACK).
    assert_eq!(t.advance_out(ms(20)), [format!("+10ms {}", segment(1))]);
}

#[test]
fn rfc8985_a_lost_fast_retransmission_is_found_when_later_data_is_sacked() {
    let mut t = sack_established();
    t.write(t.sock(), &vec![7u8; 8 * 1460]).unwrap();
    assert_eq!(t.out().len(), 8);
    t.advance(ms(20));
    t.send(sack(1461, &[]));
    t.send(sack(1461, &[(2921, 7301)]));
    assert_eq!(t.out(), [segment(1)]);
    // The retransmission is lost as well. The rest of the first flight is SACKed; PRR releases
    // new data, and the retransmission is not deemed lost: nothing sent after it was delivered.
    t.write(t.sock(), &vec![7u8; 4 * 1460]).unwrap();
    t.advance(ms(20));
    t.send(sack(1461, &[(2921, 11681)]));
    let out = t.out();
    assert!(!out.is_empty() && !out.contains(&segment(1)), "{out:?}");
    // A round trip later that new data is SACKed: it was sent after the retransmission, so the
    // retransmission is lost (RFC 8985 §6.2) and goes again, with no timeout.
    t.advance(ms(20));
    t.send(sack(1461, &[(2921, 1 + 1460 * (8 + out.len() as u32))]));
    let again = t.out();
    assert!(again.contains(&segment(1)), "{again:?}");
    assert_eq!(t.s().stats().timeouts, 0);
}

#[test]
fn rfc8985_tail_loss_probe_resends_the_last_segment_before_the_rto() {
    let mut t = sack_established();
    t.write(t.sock(), &vec![7u8; 3 * 1460]).unwrap();
    assert_eq!(t.out().len(), 3);
    t.advance(ms(20));
    // The first segment is acknowledged; the last two are lost and nothing comes back.
    t.send(sack(1461, &[]));
    let srtt = t.s().info(t.sock()).unwrap().srtt.unwrap();
    // RFC 8985 §7.2: PTO = 2 SRTT (+ 2 ms, Linux's floor), well before the 200 ms RTO.
    assert_eq!(srtt, ms(20));
    let pto = 42;
    let out = t.advance_out(ms(100));
    assert_eq!(out, [format!("+{pto}ms {}", segment(2).replacen('.', "P.", 1))]);
    assert_eq!(t.s().stats().tail_loss_probes, 1);
    // The probe's ACK covers everything without a D-SACK: a loss was repaired (§7.4), and the
    // window is reduced as for any loss.
    let cwnd = t.s().info(t.sock()).unwrap().cwnd;
    t.send(sack(4381, &[]));
    assert!(t.s().info(t.sock()).unwrap().cwnd < cwnd);
    assert_eq!(t.s().stats().timeouts, 0);
}

#[test]
fn rfc5682_frto_finds_a_spurious_timeout_and_restores_the_window() {
    let mut t = T::established(config());
    t.write(t.sock(), &vec![7u8; 4 * 536]).unwrap();
    assert_eq!(t.out().len(), 4);
    let cwnd = t.s().info(t.sock()).unwrap().cwnd;
    // The ACKs are late: the RTO (200 ms) resends the first segment (RFC 5682 §2.1 (1)).
    assert_eq!(t.advance_out(ms(200)), ["+200ms . 1:537(536) ack 1 win 65535"]);
    t.write(t.sock(), &vec![7u8; 4 * 536]).unwrap();
    // (2b) the first late ACK acknowledges new data: two new segments, not retransmissions.
    t.send(In { ack: 537, ..ACK });
    assert_eq!(t.out(), [". 2145:2681(536) ack 1 win 65535", ". 2681:3217(536) ack 1 win 65535"]);
    // (3b) the next acknowledges data that was never retransmitted: the timeout was spurious.
    t.send(In { ack: 1073, ..ACK });
    assert_eq!(t.s().stats().spurious_timeouts, 1);
    assert!(t.s().info(t.sock()).unwrap().cwnd >= cwnd);
    // Nothing below SND.MAX goes again; the rest of the new data follows.
    let out = t.out();
    assert!(out.iter().all(|s| !s.contains(" 1073:") && !s.contains(" 1609:")), "{out:?}");
    assert_eq!(t.s().stats().retransmissions, 1);
}

#[test]
fn rfc5682_frto_falls_back_to_conventional_recovery_on_a_duplicate_ack() {
    let mut t = T::established(config());
    t.write(t.sock(), &vec![7u8; 4 * 536]).unwrap();
    t.out();
    t.advance_out(ms(200));
    t.write(t.sock(), &vec![7u8; 4 * 536]).unwrap();
    t.send(In { ack: 537, ..ACK });
    assert_eq!(t.out().len(), 2);
    // (3a) a duplicate ACK: the timeout was real; what is unacknowledged is resent in order.
    t.send(In { ack: 537, ..ACK });
    let out = t.out();
    assert_eq!(out.first().map(String::as_str), Some(". 537:1073(536) ack 1 win 65535"), "{out:?}");
    assert_eq!(t.s().stats().spurious_timeouts, 0);
}

#[test]
fn pacing_spreads_a_window_over_the_round_trip() {
    // TcpConfig::pacing: cwnd / SRTT, twice that in slow start (Linux's tcp_pacing_ss_ratio).
    let mut c = config();
    c.tcp.pacing = true;
    let mut t = sack_established_with(c);
    t.write(t.sock(), &vec![7u8; 4 * 1460]).unwrap();
    // 14 600 bytes of window over 20 ms, doubled: 1.46 MB/s, so one 1500-byte datagram every
    // 1.03 ms instead of four at once.
    assert_eq!(t.out(), [segment(0)]);
    let out = t.advance_out(ms(10));
    assert_eq!(
        out,
        [
            format!("+1ms {}", segment(1)),
            format!("+2ms {}", segment(2)),
            format!("+3ms {}", segment(3).replacen('.', "P.", 1)),
        ]
    );
}

#[test]
fn rfc6675_rescue_retransmission_sends_the_highest_unsacked_segment_once() {
    let mut t = sack_established_with(rfc_profile());
    t.write(t.sock(), &vec![7u8; 6 * 1460]).unwrap();
    assert_eq!(t.out().len(), 6);
    // Segment 2 lost, 3 to 5 SACKed, the last (6) lost as well: IsLost marks only 2.
    t.send(sack(1461, &[(2921, 4381)]));
    t.send(sack(1461, &[(2921, 5841)]));
    t.send(sack(1461, &[(2921, 7301)]));
    // The fast retransmission, then (NextSeg (4)) the rescue of the tail, once. (The RFC
    // profile's 256 KiB buffer at wscale 3: win 32768.)
    assert_eq!(t.out(), [". 1461:2921(1460) ack 1 win 32768", "P. 7301:8761(1460) ack 1 win 32768"]);
    t.send(sack(1461, &[(2921, 7301)]));
    assert_eq!(t.out(), Vec::<String>::new());
    t.send(sack(8761, &[]));
    assert_eq!(t.s().stats().timeouts, 0);
    assert_eq!(t.s().stats().retransmissions, 2);
}

/// Eight segments sent, nothing more queued (NextSeg (2) has no new data to offer), and
/// segments 0, 4 and 6 lost: 1 to 3 SACKed, more than 2 SMSS above segment 0, which IsLost marks
/// and NextSeg (1) resends; then segment 5 SACKed, which PRR's window (ssthresh 5840, half the
/// flight) has no room for. The peer's ACK SACKing segment 7 is next.
fn recovery_with_holes_not_deemed_lost(config: utcp::Config) -> T {
    let mut t = sack_established_with(config);
    t.write(t.sock(), &vec![7u8; 8 * 1460]).unwrap();
    assert_eq!(t.out().len(), 8);
    t.advance(ms(20));
    t.send(sack(1, &[(1461, 2921)]));
    t.send(sack(1, &[(1461, 4381)]));
    t.send(sack(1, &[(1461, 5841)]));
    assert_eq!(t.out(), [rfc_segment(0)]);
    t.send(sack(1, &[(1461, 5841), (7301, 8761)]));
    assert_eq!(t.out(), Vec::<String>::new());
    t
}

/// SACK blocks once segment 7 is SACKed too.
const HOLES_4_AND_6: [(u32, u32); 3] = [(1461, 5841), (7301, 8761), (10221, 11681)];

//= https://www.rfc-editor.org/rfc/rfc6675#section-4
//# (3) If the conditions for rules (1) and (2) fail, but there exists
//#     an unSACKed sequence number 'S3' that meets the criteria for
//#     detecting loss given in steps (1.a) and (1.b) above
//#     (specifically excluding step (1.c)), then one segment of up to
//#     SMSS octets starting with S3 SHOULD be returned.
#[test]
fn rfc6675_nextseg_rule3_resends_a_hole_below_the_highest_sack_not_yet_deemed_lost() {
    let mut t = recovery_with_holes_not_deemed_lost(rfc_profile());
    // Segment 7 SACKed: room for one segment. Segment 4 has only two SACKed above it and
    // segment 6 one: IsLost (1.c) holds for neither, so rule (1) has nothing and rule (2) no
    // data. Rule (3): one SMSS from the lowest hole below the highest SACK (segment 4), not the
    // rescue of rule (4).
    t.send(sack(1, &HOLES_4_AND_6));
    assert_eq!(t.out(), [rfc_segment(4)]);
    // A duplicate ACK delivers nothing: PRR lets nothing out, and the next hole waits.
    t.send(sack(1, &HOLES_4_AND_6));
    assert_eq!(t.out(), Vec::<String>::new());
    // Segment 0's retransmission arrives (a partial ACK): room for one more, and rule (3) takes
    // the next hole above the last it resent (HighRxt, 1.a), segment 6.
    t.send(sack(5841, &HOLES_4_AND_6[1..]));
    assert_eq!(t.out(), [rfc_segment(6)]);
    // Both holes are repaired within the recovery, without a timeout.
    t.send(sack(11681, &[]));
    assert_eq!(t.out(), Vec::<String>::new());
    assert_eq!(t.s().stats().retransmissions, 3);
    assert_eq!(t.s().stats().timeouts, 0);
}

#[test]
fn without_forward_retransmit_a_hole_not_deemed_lost_waits_for_the_timeout_as_in_linux() {
    // TcpConfig::forward_retransmit off, as in the Linux profile: only what IsLost marks is
    // resent, and the window's room goes to the rescue of rule (4), the highest hole.
    let mut c = rfc_profile();
    c.tcp.forward_retransmit = false;
    let mut t = recovery_with_holes_not_deemed_lost(c);
    t.send(sack(1, &HOLES_4_AND_6));
    assert_eq!(t.out(), [rfc_segment(6)]);
    t.send(sack(5841, &HOLES_4_AND_6[1..]));
    assert_eq!(t.out(), Vec::<String>::new());
    // Segment 4 goes again only when the retransmission timer expires, 1 s (RFC 6298 (2.4))
    // after the partial ACK restarted it (5.3).
    assert_eq!(t.advance_out(ms(1000)), [format!("+1000ms {}", rfc_segment(4))]);
    assert_eq!(t.s().stats().timeouts, 1);
}

#[test]
fn linux_profile_ssthresh_is_seventy_percent_of_the_window_not_of_the_flight() {
    // Linux's cubictcp_recalc_ssthresh: ssthresh = cwnd × β (0.7), however little of the
    // window the application had in flight; RFC 9438 §4.6 (the RFC profile) takes the flight.
    let mut t = sack_established();
    t.write(t.sock(), &vec![7u8; 4 * 1460]).unwrap();
    assert_eq!(t.out().len(), 4);
    // Four segments in a window of ten: the window does not grow (tcp_is_cwnd_limited).
    assert_eq!(t.s().info(t.sock()).unwrap().cwnd, 14_600);
    t.advance(ms(20));
    t.send(sack(1461, &[]));
    t.send(sack(1461, &[(2921, 5841)]));
    assert_eq!(t.advance_out(ms(10)), [format!("+5ms {}", segment(1))]);
    assert_eq!(t.s().info(t.sock()).unwrap().ssthresh, 10_220);
}

#[test]
fn rfc9438_ssthresh_is_seventy_percent_of_the_flight() {
    // §4.6: "ssthresh = flight_size * β_cubic"; three segments were in flight.
    let mut c = config();
    c.tcp.ssthresh_from_cwnd = false;
    let mut t = sack_established_with(c);
    t.write(t.sock(), &vec![7u8; 4 * 1460]).unwrap();
    assert_eq!(t.out().len(), 4);
    t.advance(ms(20));
    t.send(sack(1461, &[]));
    t.send(sack(1461, &[(2921, 5841)]));
    assert_eq!(t.advance_out(ms(10)), [format!("+5ms {}", segment(1))]);
    assert_eq!(t.s().info(t.sock()).unwrap().ssthresh, 3 * 1460 * 7 / 10);
}

/// Our TS val in a segment as `T::out` formats it.
fn ts_val(segment: &str) -> u32 {
    let rest = segment.split("TS val ").nth(1).unwrap_or_else(|| panic!("no TS option: {segment}"));
    rest.split(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{segment}"))
}

/// The Linux profile samples the RTT from when the acknowledged data was sent (Linux's
/// tcp_clean_rtx_queue), to the microsecond; RFC 7323 §4.1's echo counts whole TS ticks (1 ms).
/// Either way Karn's rule holds (RFC 6298 §3); SRTT = 7/8 SRTT + 1/8 R (RFC 6298 (2.3)).
/// Linux's tcp_synack_rtt_meas: the handshake's sample is the time since the SYN-ACK was sent,
/// not the whole TS ticks its echo spans (RFC 7323 §4.1 counts those).
#[test]
fn linux_profile_samples_the_handshake_rtt_from_the_syn_ack_send_time() {
    for (from_send_times, srtt) in [(true, Duration::from_micros(1400)), (false, ms(1))] {
        let mut c = config();
        c.tcp.rtt_from_send_times = from_send_times;
        let mut t = T::listening(c);
        t.send(SYN);
        let syn_ack = t.out().remove(0);
        t.advance(Duration::from_micros(1400));
        let echo = TcpOptions {
            timestamp: Some(utcp::wire::Timestamp { tsval: 101, tsecr: ts_val(&syn_ack) }),
            ..NO_OPTS
        };
        t.send(In { opts: echo, ..ACK });
        t.accept();
        assert_eq!(t.s().info(t.sock()).unwrap().srtt, Some(srtt), "from send times: {from_send_times}");
    }
}

#[test]
fn linux_profile_samples_rtt_from_send_times_not_from_the_timestamp_echo() {
    for (from_send_times, srtt) in [(true, Duration::from_micros(3412)), (false, Duration::from_micros(3375))]
    {
        let mut c = config();
        c.tcp.rtt_from_send_times = from_send_times;
        let mut t = T::listening(c);
        t.send(SYN);
        let syn_ack = t.out().remove(0);
        t.advance(ms(1));
        let echo = |val, ecr| TcpOptions {
            timestamp: Some(utcp::wire::Timestamp { tsval: val, tsecr: ecr }),
            ..NO_OPTS
        };
        t.send(In { opts: echo(101, ts_val(&syn_ack)), ..ACK });
        t.accept();
        // The handshake: a 1 ms sample.
        assert_eq!(t.s().info(t.sock()).unwrap().srtt, Some(ms(1)));
        t.write(t.sock(), &[7u8; 100]).unwrap();
        let data = t.out().remove(0);
        t.advance(Duration::from_micros(20_300));
        t.send(In { ack: 101, opts: echo(102, ts_val(&data)), ..ACK });
        // 20.3 ms from send times; 20 ticks from the echo.
        assert_eq!(t.s().info(t.sock()).unwrap().srtt, Some(srtt), "from send times: {from_send_times}");
    }
}
