//! State-machine tests: exact segments in, exact segments out, on virtual time, grouped by state.
//! Each test names the behaviour and cites the RFC section that fixes it.

mod common;

use common::*;
use std::net::SocketAddr;
use utcp::wire::{TcpFlags, TcpOptions, Timestamp};
use utcp::{CloseReason, DropReason, Duration, Event, RecvError, SendError, SocketOption, State};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// =============================================================================================
// CLOSED (RFC 9293 §3.10.7.1)

#[test]
fn closed_port_answers_syn_with_rst_ack() {
    let mut t = T::new(config());
    t.send(SYN);
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    assert_eq!(t.out(), ["R. 0:0(0) ack 1 win 0"]);
    assert_eq!(t.s().stats().resets_out, 1);
}

#[test]
fn closed_port_answers_ack_with_rst_at_its_ack() {
    let mut t = T::new(config());
    t.send(In { ack: 4242, ..ACK });
    // <SEQ=SEG.ACK><CTL=RST>
    assert_eq!(t.out(), ["R 4242:4242(0) win 0"]);
}

#[test]
fn closed_port_ignores_rst() {
    let mut t = T::new(config());
    t.send(In { flags: TcpFlags::RST, ..ACK });
    assert!(t.out().is_empty());
}

// =============================================================================================
// LISTEN (RFC 9293 §3.10.7.2)

#[test]
fn listen_answers_syn_with_syn_ack_carrying_negotiated_options() {
    let mut t = T::listening(config());
    t.send(SYN);
    // RFC 7323 §2.2: the window of a SYN-ACK is not scaled. RFC 7323 §2.3: the shift lets the
    // largest buffer autotuning may reach be advertised: 6 MiB (Linux's tcp_rmem[2]) needs 7.
    assert_eq!(
        t.out(),
        ["S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 2576011877 ecr 100,nop,wscale 7>"]
    );
}

#[test]
fn listen_answers_bare_syn_without_options_it_did_not_get() {
    // RFC 7323 §2.2, §3.2 and RFC 2018 §2: scale, timestamps and SACK only when both offer them.
    let mut t = T::listening(config());
    t.send(BARE_SYN);
    assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
}

#[test]
fn listen_answers_ack_with_rst() {
    let mut t = T::listening(config());
    t.send(In { ack: 77, ..ACK });
    assert_eq!(t.out(), ["R 77:77(0) win 0"]);
}

#[test]
fn listen_ignores_rst_and_bare_segments() {
    let mut t = T::listening(config());
    t.send(In { flags: TcpFlags::RST, ..ACK });
    t.send(In { flags: TcpFlags::NONE, ..ACK });
    assert!(t.out().is_empty());
    assert_eq!(t.s().connection_count(), 0);
}

// RFC 4987 §3.6: a full SYN queue keeps no more state; new SYNs get a SYN cookie instead, whose
// SYN-ACK offers only the MSS (what a cookie cannot carry, it does not offer).
#[test]
fn listen_with_full_syn_queue_answers_with_syn_cookies() {
    let mut c = config();
    c.tcp.syn_backlog = 4;
    let mut t = T::listening(c);
    for port in 0..10 {
        t.send(In { src_port: 30000 + port, ..SYN });
    }
    let out = t.out_raw();
    assert_eq!(out.len(), 10);
    assert_eq!(t.s().connection_count(), 4);
    assert_eq!(t.s().syn_cookies(), utcp::SynCookies { sent: 6, accepted: 0 });
    assert_eq!(t.s().stats().dropped(DropReason::SynQueueFull), 0);
    let cookie_syn_acks = out
        .iter()
        .filter(|p| {
            t.iss = None;
            t.format(p) == "S. 0:0(0) ack 1 win 65535 <mss 1460>"
        })
        .count();
    assert_eq!(cookie_syn_acks, 6);
}

/// A listener with a SYN queue of one, filled by another peer; then the test peer's SYN gets a
/// cookie SYN-ACK, whose ISN becomes the fixture's ISS.
fn cookie_sent() -> T {
    let mut c = config();
    c.tcp.syn_backlog = 1;
    let mut t = T::listening(c);
    t.send(In { src_port: 30000, ..SYN });
    t.out();
    t.iss = None;
    t.send(SYN);
    assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
    assert_eq!(t.s().connection_count(), 1);
    t
}

// RFC 4987 §3.6: the ACK of a cookie SYN-ACK rebuilds the connection, which is ESTABLISHED and
// accepted like any other, and keeps the data the ACK carried.
#[test]
fn rfc4987_ack_of_a_syn_cookie_becomes_an_established_connection() {
    let mut t = cookie_sent();
    t.send(In { data: b"hello", flags: TcpFlags::ACK | TcpFlags::PSH, ..ACK });
    assert_eq!(t.events(), [Event::Acceptable(t.listener.unwrap())]);
    let h = t.accept();
    assert_eq!(t.s().state(h), Some(State::Established));
    assert_eq!(t.s().syn_cookies(), utcp::SynCookies { sent: 1, accepted: 1 });
    let mut buf = [0u8; 16];
    assert_eq!(t.read(h, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    // The MSS came back out of the cookie; no window scale, so the peer's window is as sent.
    let info = t.s().info(h).unwrap();
    assert_eq!(info.remote.port(), REMOTE_PORT);
    t.write(h, &[1; 3000]).unwrap();
    let out = t.out();
    assert!(out.iter().any(|l| l.contains("1:1461(1460)")), "{out:?}");
}

#[test]
fn rfc4987_ack_with_a_wrong_cookie_is_answered_by_rst() {
    let mut t = cookie_sent();
    t.send(In { ack: 2, ..ACK });
    // <SEQ=SEG.ACK><CTL=RST>, as for any bad ACK to a listener.
    assert_eq!(t.out(), ["R 2:2(0) win 0"]);
    assert_eq!(t.s().connection_count(), 1);
    assert_eq!(t.s().syn_cookies().accepted, 0);
    assert_eq!(t.s().stats().dropped(DropReason::AckToListener), 1);
}

#[test]
fn rfc4987_a_cookie_expires_after_two_periods() {
    let mut t = cookie_sent();
    t.advance(Duration::from_secs(129));
    t.out();
    t.send(ACK);
    assert_eq!(t.out(), ["R 1:1(0) win 0"], "the old cookie's ACK is reset");
    assert_eq!(t.s().syn_cookies().accepted, 0);
}

// =============================================================================================
// SYN-RECEIVED

#[test]
fn syn_received_becomes_established_on_ack_and_is_accepted() {
    let mut t = T::listening(config());
    t.send(BARE_SYN);
    t.out();
    assert_eq!(t.accept_on(t.listener.unwrap()), Err(utcp::AcceptError::WouldBlock));
    t.send(ACK);
    assert_eq!(t.events(), [Event::Acceptable(t.listener.unwrap())]);
    let h = t.accept();
    assert_eq!(t.s().state(h), Some(State::Established));
}

#[test]
fn syn_received_retransmits_syn_ack_with_backoff() {
    // RFC 6298 (2.1), (5.5): initial RTO 1 s, doubled at each expiry.
    let mut t = T::listening(config());
    t.send(BARE_SYN);
    t.out();
    let out = t.advance_out(ms(3500));
    assert_eq!(
        out,
        ["+1000ms S. 0:0(0) ack 1 win 65535 <mss 1460>", "+3000ms S. 0:0(0) ack 1 win 65535 <mss 1460>"]
    );
}

#[test]
fn syn_received_answers_retransmitted_syn_with_syn_ack() {
    let mut t = T::listening(config());
    t.send(BARE_SYN);
    t.out();
    t.send(BARE_SYN);
    assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
}

#[test]
fn syn_received_answers_bad_ack_with_rst() {
    // RFC 9293 §3.10.7.4 fifth: an unacceptable ACK in SYN-RECEIVED gets <SEQ=SEG.ACK><CTL=RST>.
    let mut t = T::listening(config());
    t.send(BARE_SYN);
    t.out();
    t.send(In { ack: 5000, ..ACK });
    assert_eq!(t.out(), ["R 5000:5000(0) win 0"]);
}

#[test]
fn syn_received_passive_rst_returns_to_listen() {
    // RFC 9293 §3.10.7.4 second: the half-open connection goes away, the listener stays.
    let mut t = T::listening(config());
    t.send(BARE_SYN);
    t.out();
    t.send(In { flags: TcpFlags::RST, ack: 0, ..ACK });
    t.out();
    assert_eq!(t.s().connection_count(), 0);
    t.send(BARE_SYN);
    assert_eq!(t.out().len(), 1);
}

#[test]
fn data_on_the_third_handshake_segment_is_delivered() {
    let mut t = T::listening(config());
    t.send(BARE_SYN);
    t.out();
    t.send(In { flags: TcpFlags::PSH | TcpFlags::ACK, data: b"hello", ..ACK });
    let h = t.accept();
    let mut buf = [0u8; 16];
    assert_eq!(t.read(h, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
}

#[test]
fn linux_like_ignores_data_on_the_syn() {
    // Linux without TCP Fast Open acknowledges only the SYN; the peer sends the data again.
    let mut t = T::listening(config());
    t.send(In { data: b"early", ..BARE_SYN });
    assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
}

#[test]
fn rfc9293_default_keeps_data_on_the_syn() {
    // RFC 9293 §3.10.7.2: text on a SYN is queued and delivered once established.
    let mut c = config();
    c.tcp.accept_syn_data = true;
    let mut t = T::listening(c);
    t.send(In { data: b"early", ..BARE_SYN });
    assert_eq!(t.out(), ["S. 0:0(0) ack 6 win 65535 <mss 1460>"]);
    t.send(In { seq: 6, ..ACK });
    let h = t.accept();
    let mut buf = [0u8; 16];
    assert_eq!(t.read(h, &mut buf), Ok(5));
}

// =============================================================================================
// SYN-SENT (RFC 9293 §3.10.7.3)

#[test]
fn syn_sent_sends_syn_with_every_enabled_option() {
    let mut t = T::connecting(config());
    assert_eq!(t.out(), ["S 0:0(0) win 65535 <mss 1460,sackOK,TS val 2576011877 ecr 0,nop,wscale 7>"]);
}

#[test]
fn syn_sent_completes_on_syn_ack() {
    let mut t = T::connecting(config());
    t.out();
    t.send(In { flags: TcpFlags::SYN | TcpFlags::ACK, ack: 1, ..SYN });
    // The 128 KiB the buffer starts with (Linux's tcp_rmem[1]) at wscale 7.
    assert_eq!(t.out(), [". 1:1(0) ack 1 win 1024 <nop,nop,TS val 2576011877 ecr 100>"]);
    assert_eq!(t.events(), [Event::Connected(t.sock())]);
    assert_eq!(t.s().state(t.sock()), Some(State::Established));
    // RFC 6691 / RFC 7323: the peer's 1460 less 12 bytes of timestamps.
    assert_eq!(t.s().info(t.sock()).unwrap().mss, 1448);
}

#[test]
fn syn_sent_answers_bad_ack_with_rst() {
    let mut t = T::connecting(config());
    t.out();
    t.send(In { flags: TcpFlags::SYN | TcpFlags::ACK, ack: 1000, ..SYN });
    assert_eq!(t.out(), ["R 1000:1000(0) win 0"]);
    assert_eq!(t.s().state(t.sock()), Some(State::SynSent));
}

#[test]
fn syn_sent_rst_with_acceptable_ack_refuses() {
    let mut t = T::connecting(config());
    t.out();
    t.send(In { flags: TcpFlags::RST | TcpFlags::ACK, ack: 1, ..ACK });
    assert_eq!(t.events(), [Event::Closed(t.sock(), CloseReason::Refused)]);
    let mut buf = [0u8; 4];
    assert_eq!(t.read(t.sock(), &mut buf), Err(RecvError::Refused));
    // The read took the error, as Linux's sock_error clears sk_err: SO_ERROR then reads none.
    assert_eq!(t.take_error(t.sock()), None);
}

#[test]
fn syn_sent_rst_without_ack_is_ignored() {
    let mut t = T::connecting(config());
    t.out();
    t.send(In { flags: TcpFlags::RST, ..ACK });
    assert_eq!(t.s().state(t.sock()), Some(State::SynSent));
}

#[test]
fn syn_sent_gives_up_after_syn_retries() {
    let mut c = config();
    c.tcp.syn_retries = 2;
    let mut t = T::connecting(c);
    t.out();
    let out = t.advance_out(Duration::from_secs(10));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(t.events(), [Event::Closed(t.sock(), CloseReason::TimedOut)]);
}

#[test]
fn simultaneous_open_goes_through_syn_received() {
    // RFC 9293 §3.5 figure 7.
    let mut t = T::connecting(config());
    t.out();
    t.send(BARE_SYN);
    assert_eq!(t.s().state(t.sock()), Some(State::SynReceived));
    assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
    t.send(In { flags: TcpFlags::SYN | TcpFlags::ACK, ack: 1, ..BARE_SYN });
    assert_eq!(t.s().state(t.sock()), Some(State::Established));
    assert_eq!(t.events(), [Event::Connected(t.sock())]);
}

// =============================================================================================
// ESTABLISHED: data

/// linux_like() without its quick-ACK start, to pin the delayed-ACK rules themselves.
fn no_quickack() -> utcp::Config {
    let mut c = config();
    c.tcp.quickack = 0;
    c
}

#[test]
fn linux_like_quick_acks_the_first_segments_then_delays() {
    // Linux's quick-ACK mode: the first 16 data segments are acknowledged at once.
    let mut t = T::established(config());
    for k in 0..16u32 {
        t.send(In { seq: 1 + 10 * k, data: b"0123456789", ..ACK });
        assert_eq!(t.out().len(), 1, "segment {k}");
    }
    t.send(In { seq: 161, data: b"0123456789", ..ACK });
    assert!(t.out().is_empty());
    assert_eq!(t.advance_out(ms(100)), ["+40ms . 1:1(0) ack 171 win 65535"]);
}

#[test]
fn quick_acks_end_when_the_connection_turns_interactive() {
    // Data answered with data within the delayed-ACK time: the ACK rides on the reply.
    let mut t = T::established(config());
    t.send(In { flags: TcpFlags::PSH | TcpFlags::ACK, data: b"ping", ..ACK });
    assert_eq!(t.out(), [". 1:1(0) ack 5 win 65535"]);
    t.write(t.sock(), b"pong").unwrap();
    assert_eq!(t.out(), ["P. 1:5(4) ack 5 win 65535"]);
    t.send(In { flags: TcpFlags::PSH | TcpFlags::ACK, seq: 5, ack: 5, data: b"ping", ..ACK });
    assert!(t.out().is_empty(), "the ACK waits for the reply or the timer");
}

#[test]
fn data_is_acknowledged_after_the_delayed_ack_time() {
    // RFC 1122 §4.2.3.2; linux_like() delays 40 ms.
    let mut t = T::established(no_quickack());
    t.send(In { flags: TcpFlags::PSH | TcpFlags::ACK, data: b"abc", ..ACK });
    assert!(t.out().is_empty());
    assert_eq!(t.advance_out(ms(100)), ["+40ms . 1:1(0) ack 4 win 65535"]);
}

#[test]
fn every_second_full_sized_segment_is_acknowledged_at_once() {
    // RFC 5681 §4.2: an ACK at least for every second full-sized segment.
    let mut t = T::established(no_quickack());
    let full = vec![7u8; 1460].leak();
    t.send(In { data: full, ..ACK });
    assert!(t.out().is_empty());
    t.send(In { seq: 1461, data: full, ..ACK });
    assert_eq!(t.out(), [". 1:1(0) ack 2921 win 65535"]);
}

#[test]
fn out_of_order_data_is_acknowledged_at_once_and_hole_fill_too() {
    let mut t = T::established(config());
    t.send(In { seq: 11, data: b"later", ..ACK });
    assert_eq!(t.out(), [". 1:1(0) ack 1 win 65535"]);
    t.send(In { seq: 1, data: b"0123456789", ..ACK });
    assert_eq!(t.out(), [". 1:1(0) ack 16 win 65535"]);
    let mut buf = [0u8; 32];
    assert_eq!(t.read(t.sock(), &mut buf), Ok(15));
    assert_eq!(&buf[..15], b"0123456789later");
}

#[test]
fn sack_blocks_report_out_of_order_data() {
    // RFC 2018 §4: the first block holds the most recently received segment.
    let mut t = T::listening(config());
    t.send(In { opts: TcpOptions { timestamp: None, ..SYN.opts }, ..SYN });
    t.out();
    t.send(In { win: 512, ..ACK });
    t.accept();
    t.send(In { seq: 101, data: b"xxxxxxxxxx", win: 512, ..ACK });
    t.send(In { seq: 201, data: b"yyyyyyyyyy", win: 512, ..ACK });
    let out = t.out();
    assert_eq!(out.last().unwrap(), ". 1:1(0) ack 1 win 1024 <nop,nop,sack 201:211 101:111>");
}

#[test]
fn send_is_bounded_by_the_peers_window_and_mss() {
    let mut t = T::established(config());
    let data = vec![1u8; 3000];
    assert_eq!(t.write(t.sock(), &data), Ok(3000));
    // Peer MSS defaulted to 536 (no option, RFC 9293 §3.7.1); window 65535.
    let out = t.out();
    assert_eq!(out.len(), 6, "{out:?}");
    assert_eq!(out[0], ". 1:537(536) ack 1 win 65535");
    assert_eq!(out[5], "P. 2681:3001(320) ack 1 win 65535");
}

#[test]
fn sender_sws_avoidance_holds_a_window_limited_runt() {
    // RFC 1122 §4.2.3.4 (a MUST): a short segment goes only if it carries all queued data or at
    // least half the largest window offered. Linux would send the 464-byte runt here.
    let mut t = T::established(config());
    t.send(In { win: 1000, ..ACK });
    t.write(t.sock(), &vec![1u8; 3000]).unwrap();
    // Each segment the window lets out ends a burst: PSH, as Linux marks it.
    assert_eq!(t.out(), ["P. 1:537(536) ack 1 win 65535"]);
    t.send(In { ack: 537, win: 1000, ..ACK });
    assert_eq!(t.out(), ["P. 537:1073(536) ack 1 win 65535"]);
    // A window that takes the rest lets it all go.
    t.send(In { ack: 1073, win: 3000, ..ACK });
    assert_eq!(t.out().len(), 4);
}

#[test]
fn nagle_holds_a_small_segment_while_data_is_in_flight() {
    // RFC 896; RFC 1122 §4.2.3.4.
    let mut t = T::established(config());
    t.write(t.sock(), b"a").unwrap();
    assert_eq!(t.out(), ["P. 1:2(1) ack 1 win 65535"]);
    t.write(t.sock(), b"b").unwrap();
    assert!(t.out().is_empty());
    t.send(In { ack: 2, ..ACK });
    assert_eq!(t.out(), ["P. 2:3(1) ack 1 win 65535"]);
}

#[test]
fn nodelay_sends_small_segments_at_once() {
    let mut t = T::established(config());
    t.set_option(t.sock(), SocketOption::NoDelay(true)).unwrap();
    t.write(t.sock(), b"a").unwrap();
    assert_eq!(t.out(), ["P. 1:2(1) ack 1 win 65535"]);
    t.write(t.sock(), b"b").unwrap();
    assert_eq!(t.out(), ["P. 2:3(1) ack 1 win 65535"]);
}

#[test]
fn full_send_buffer_pushes_back() {
    let mut c = config();
    c.tcp.send_buffer = 1000;
    let mut t = T::established(c);
    assert_eq!(t.write(t.sock(), &[0; 1500]), Ok(1000));
    assert_eq!(t.write(t.sock(), &[0; 10]), Err(SendError::WouldBlock));
    t.out();
    t.send(In { ack: 537, ..ACK });
    assert!(t.events().contains(&Event::Writable(t.sock())));
}

// =============================================================================================
// ESTABLISHED: retransmission

#[test]
fn rto_retransmits_with_exponential_backoff() {
    // RFC 6298 (5.4)-(5.6): retransmit the earliest segment, double the RTO. The handshake took
    // no time, so the RTO starts at linux_like()'s minimum of 200 ms (RFC 6298 (2.2), (2.4)).
    let mut t = T::established(config());
    t.write(t.sock(), b"data").unwrap();
    assert_eq!(t.out(), ["P. 1:5(4) ack 1 win 65535"]);
    let out = t.advance_out(ms(3100));
    assert_eq!(
        out,
        [
            "+200ms P. 1:5(4) ack 1 win 65535",
            "+600ms P. 1:5(4) ack 1 win 65535",
            "+1400ms P. 1:5(4) ack 1 win 65535",
            "+3000ms P. 1:5(4) ack 1 win 65535"
        ]
    );
    assert_eq!(t.s().stats().retransmissions, 4);
}

#[test]
fn connection_times_out_after_max_retries() {
    let mut c = config();
    c.tcp.max_retries = 3;
    let mut t = T::established(c);
    t.write(t.sock(), b"data").unwrap();
    t.out();
    t.advance_out(Duration::from_secs(100));
    assert_eq!(t.s().state(t.sock()), Some(State::Closed));
    assert_eq!(t.write(t.sock(), b"x"), Err(SendError::TimedOut));
}

#[test]
fn three_duplicate_acks_trigger_fast_retransmit() {
    // RFC 5681 §3.2.
    let mut t = T::established(config());
    t.write(t.sock(), &vec![9u8; 536 * 6]).unwrap();
    assert_eq!(t.out().len(), 6);
    for _ in 0..2 {
        t.send(In { ack: 537, ..ACK });
    }
    t.send(In { ack: 537, ..ACK });
    assert!(t.out().is_empty(), "first ACK was new, two duplicates so far");
    t.send(In { ack: 537, ..ACK });
    assert_eq!(t.out(), [". 537:1073(536) ack 1 win 65535"]);
    assert_eq!(t.s().stats().fast_retransmits, 1);
}

#[test]
fn zero_window_is_probed_by_the_persist_timer() {
    // RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17: probes with exponential backoff; like Linux, a
    // probe is an ACK with SEG.SEQ = SND.UNA - 1 that the peer must answer with its window.
    let mut t = T::established(config());
    t.send(In { win: 0, ..ACK });
    t.write(t.sock(), b"hello").unwrap();
    assert!(t.out().is_empty());
    let out = t.advance_out(ms(700));
    assert_eq!(out, ["+200ms . 0:0(0) ack 1 win 65535", "+600ms . 0:0(0) ack 1 win 65535"]);
    t.send(In { ack: 1, win: 100, ..ACK });
    assert_eq!(t.out(), ["P. 1:6(5) ack 1 win 65535"]);
}

// =============================================================================================
// ESTABLISHED: RST, SYN and bad ACKs (RFC 5961)

#[test]
fn rst_at_rcv_nxt_resets_the_connection() {
    let mut t = T::established(config());
    t.send(In { flags: TcpFlags::RST, ..ACK });
    assert_eq!(t.events(), [Event::Closed(t.sock(), CloseReason::Reset)]);
    let mut buf = [0u8; 4];
    assert_eq!(t.read(t.sock(), &mut buf), Err(RecvError::Reset));
}

#[test]
fn rfc5961_in_window_rst_gets_challenge_ack() {
    let mut t = T::established(config());
    t.send(In { flags: TcpFlags::RST, seq: 100, ..ACK });
    assert_eq!(t.out(), [". 1:1(0) ack 1 win 65535"]);
    assert_eq!(t.s().state(t.sock()), Some(State::Established));
    assert_eq!(t.s().stats().challenge_acks, 1);
}

#[test]
fn rst_outside_the_window_is_dropped_silently() {
    let mut t = T::established(config());
    t.send(In { flags: TcpFlags::RST, seq: 100_000, ..ACK });
    assert!(t.out().is_empty());
    assert_eq!(t.s().state(t.sock()), Some(State::Established));
}

#[test]
fn rfc5961_syn_in_established_gets_challenge_ack() {
    let mut t = T::established(config());
    t.send(In { seq: 50, ..BARE_SYN });
    assert_eq!(t.out(), [". 1:1(0) ack 1 win 65535"]);
    assert_eq!(t.s().state(t.sock()), Some(State::Established));
}

#[test]
fn rfc5961_ack_beyond_snd_nxt_gets_challenge_ack() {
    let mut t = T::established(config());
    t.send(In { ack: 1000, data: b"zz", ..ACK });
    assert_eq!(t.out(), [". 1:1(0) ack 1 win 65535"]);
    assert_eq!(t.s().stats().dropped(DropReason::AckOutOfRange), 1);
}

#[test]
fn rfc5961_challenge_acks_are_rate_limited() {
    let mut c = config();
    c.tcp.challenge_ack_limit = 2;
    let mut t = T::established(c);
    let mut acks = 0;
    for _ in 0..5 {
        t.send(In { flags: TcpFlags::RST, seq: 100, ..ACK });
        acks += t.out().len();
    }
    assert_eq!(acks, 2);
    assert_eq!(t.s().stats().challenge_acks_suppressed, 3);
}

#[test]
fn unacceptable_segment_is_answered_with_an_ack() {
    // RFC 9293 §3.10.7.4 first: an old duplicate gets <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
    let mut t = T::established(config());
    t.send(In { data: b"abc", ..ACK });
    t.advance(ms(50));
    t.out();
    t.send(In { data: b"abc", ..ACK });
    assert_eq!(t.out(), [". 1:1(0) ack 4 win 65535"]);
    assert_eq!(t.s().stats().dropped(DropReason::Unacceptable), 1);
}

#[test]
fn paws_drops_old_timestamps() {
    // RFC 7323 §5.3 R1.
    let mut t = T::listening(config());
    t.send(SYN);
    t.out();
    let ts = |v| TcpOptions { timestamp: Some(Timestamp { tsval: v, tsecr: 0 }), ..common::NO_OPTS };
    t.send(In { opts: ts(200), ..ACK });
    t.accept();
    t.send(In { opts: ts(300), data: b"new", ..ACK });
    t.send(In { seq: 4, opts: ts(250), data: b"old", ..ACK });
    assert_eq!(t.s().stats().dropped(DropReason::Paws), 1);
    let mut buf = [0u8; 8];
    assert_eq!(t.read(t.sock(), &mut buf), Ok(3));
}

// =============================================================================================
// Closing (RFC 9293 §3.6)

#[test]
fn active_close_walks_fin_wait_1_fin_wait_2_time_wait_closed() {
    let mut c = config();
    c.tcp.msl = Duration::from_secs(1);
    let mut t = T::established(c);
    let h = t.sock();
    t.shutdown(h).unwrap();
    assert_eq!(t.out(), ["F. 1:1(0) ack 1 win 65535"]);
    assert_eq!(t.s().state(h), Some(State::FinWait1));
    t.send(In { ack: 2, ..ACK });
    assert_eq!(t.s().state(h), Some(State::FinWait2));
    t.send(In { flags: TcpFlags::FIN | TcpFlags::ACK, ack: 2, ..ACK });
    assert_eq!(t.out(), [". 2:2(0) ack 2 win 65535"]);
    assert_eq!(t.s().state(h), Some(State::TimeWait));
    t.advance(ms(1999));
    assert_eq!(t.s().state(h), Some(State::TimeWait));
    t.advance(ms(1));
    assert_eq!(t.s().state(h), Some(State::Closed));
    t.close(h).unwrap();
    t.out();
    assert_eq!(t.s().connection_count(), 0);
}

#[test]
fn passive_close_walks_close_wait_last_ack_closed() {
    let mut t = T::established(config());
    let h = t.sock();
    t.send(In { flags: TcpFlags::FIN | TcpFlags::ACK, ..ACK });
    assert_eq!(t.s().state(h), Some(State::CloseWait));
    // Like Linux, the ACK of the FIN waits for the delayed-ACK timer (RFC 1122 §4.2.3.2).
    assert!(t.out().is_empty());
    assert_eq!(t.advance_out(ms(50)), ["+40ms . 1:1(0) ack 2 win 65535"]);
    let mut buf = [0u8; 4];
    assert_eq!(t.read(h, &mut buf), Ok(0));
    t.close(h).unwrap();
    assert_eq!(t.out(), ["F. 1:1(0) ack 2 win 65535"]);
    t.send(In { seq: 2, ack: 2, ..ACK });
    t.out();
    assert_eq!(t.s().connection_count(), 0);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    // RFC 9293 §3.6 figure 13.
    let mut t = T::established(config());
    let h = t.sock();
    t.shutdown(h).unwrap();
    t.out();
    t.send(In { flags: TcpFlags::FIN | TcpFlags::ACK, ..ACK });
    assert_eq!(t.s().state(h), Some(State::Closing));
    assert_eq!(t.out(), [". 2:2(0) ack 2 win 65535"]);
    t.send(In { seq: 2, ack: 2, ..ACK });
    assert_eq!(t.s().state(h), Some(State::TimeWait));
}

#[test]
fn half_close_still_receives_data() {
    let mut t = T::established(config());
    let h = t.sock();
    t.shutdown(h).unwrap();
    t.out();
    t.send(In { ack: 2, ..ACK });
    t.send(In { flags: TcpFlags::PSH | TcpFlags::ACK, data: b"more", ack: 2, ..ACK });
    let mut buf = [0u8; 8];
    assert_eq!(t.read(h, &mut buf), Ok(4));
    assert_eq!(t.write(h, b"x"), Err(SendError::Closed));
}

#[test]
fn time_wait_reacknowledges_a_retransmitted_fin() {
    let mut t = T::established(config());
    let h = t.sock();
    t.shutdown(h).unwrap();
    t.out();
    t.send(In { flags: TcpFlags::FIN | TcpFlags::ACK, ack: 2, ..ACK });
    t.out();
    t.send(In { flags: TcpFlags::FIN | TcpFlags::ACK, ack: 2, ..ACK });
    assert_eq!(t.out(), [". 2:2(0) ack 2 win 65535"]);
    assert_eq!(t.s().state(h), Some(State::TimeWait));
}

#[test]
fn rfc1337_time_wait_ignores_rst() {
    let mut t = T::established(config());
    let h = t.sock();
    t.shutdown(h).unwrap();
    t.out();
    t.send(In { flags: TcpFlags::FIN | TcpFlags::ACK, ack: 2, ..ACK });
    t.out();
    t.send(In { flags: TcpFlags::RST, seq: 2, ..ACK });
    assert_eq!(t.s().state(h), Some(State::TimeWait));
}

#[test]
fn close_with_unread_data_sends_rst() {
    // RFC 2525 §2.17.
    let mut t = T::established(config());
    t.send(In { data: b"unread", ..ACK });
    t.close(t.sock()).unwrap();
    assert_eq!(t.out(), ["R. 1:1(0) ack 7 win 0"]);
    assert_eq!(t.s().connection_count(), 0);
}

#[test]
fn abort_sends_rst_and_forgets_the_connection() {
    let mut t = T::established(config());
    t.abort(t.sock()).unwrap();
    assert_eq!(t.out(), ["R. 1:1(0) ack 1 win 0"]);
    assert_eq!(t.s().connection_count(), 0);
}

#[test]
fn new_syn_reopens_a_connection_in_time_wait() {
    // RFC 9293 §3.10.7.4 (TIME-WAIT) with RFC 6191: a SYN beyond RCV.NXT starts anew.
    let mut t = T::established(config());
    let h = t.sock();
    t.shutdown(h).unwrap();
    t.out();
    t.send(In { flags: TcpFlags::FIN | TcpFlags::ACK, ack: 2, ..ACK });
    t.out();
    t.close(h).unwrap();
    t.iss = None;
    t.send(In { seq: 100_000, ..BARE_SYN });
    let out = t.out();
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("S. 0:0(0) ack 100001"), "{out:?}");
}

// =============================================================================================
// Keepalive (RFC 1122 §4.2.3.6)

#[test]
fn keepalive_probes_then_times_out() {
    let mut c = config();
    c.tcp.keepalive_probes = 2;
    c.tcp.keepalive_interval = Duration::from_secs(10);
    let mut t = T::established(c);
    t.set_option(t.sock(), SocketOption::KeepAlive(Some(Duration::from_secs(60)))).unwrap();
    t.out();
    let out = t.advance_out(Duration::from_secs(100));
    // Two unanswered probes, then (as Linux does) a RST when the third interval passes.
    assert_eq!(
        out,
        [
            "+60000ms . 0:0(0) ack 1 win 65535",
            "+70000ms . 0:0(0) ack 1 win 65535",
            "+80000ms R. 1:1(0) ack 1 win 0"
        ]
    );
    assert_eq!(t.s().state(t.sock()), Some(State::Closed));
}

// =============================================================================================
// Stack: ICMP echo and malformed input

#[test]
fn icmp_echo_request_is_answered() {
    use utcp::wire::{IcmpRepr, IpRepr, Transport};
    let mut t = T::new(config());
    let ip = IpRepr {
        src: REMOTE,
        dst: LOCAL,
        protocol: utcp::wire::IPPROTO_ICMP,
        hop_limit: 64,
        ecn: 0,
        payload_len: 0,
    };
    let req = Transport::Icmp(IcmpRepr::EchoRequest { ident: 7, seq_no: 1, data: b"ping" });
    let mut buf = vec![0; utcp::wire::datagram_len(&ip, &req)];
    utcp::wire::emit_datagram(&ip, &req, &mut buf).unwrap();
    t.receive(&buf);
    let out = t.next_raw().unwrap();
    let d = utcp::wire::parse_datagram(&out, utcp::wire::ChecksumMode::Verify).unwrap();
    assert_eq!(d.ip.dst, REMOTE);
    assert_eq!(d.transport, Transport::Icmp(IcmpRepr::EchoReply { ident: 7, seq_no: 1, data: b"ping" }));
}

#[test]
fn corrupted_segment_is_dropped_and_counted() {
    let mut t = T::listening(config());
    let mut p = t.encode(&SYN);
    let n = p.len();
    p[n - 1] ^= 0x40;
    t.receive(&p);
    assert!(t.out().is_empty());
    assert_eq!(t.s().stats().checksum_failures, 1);
    assert_eq!(t.s().stats().dropped(DropReason::BadChecksum), 1);
}

#[test]
fn packets_to_other_addresses_are_dropped() {
    let mut t = T::new(utcp::Config::linux_like().with_address("10.9.9.9".parse().unwrap()));
    t.listen("0.0.0.0:8080".parse().unwrap(), 1).unwrap();
    t.send(SYN);
    assert!(t.out().is_empty());
    assert_eq!(t.s().stats().dropped(DropReason::NotLocal), 1);
}

#[test]
fn listen_refuses_foreign_address_and_duplicates() {
    let mut t = T::listening(config());
    assert_eq!(t.listen(SocketAddr::new(LOCAL, LOCAL_PORT), 1), Err(utcp::ListenError::AddressInUse));
    assert_eq!(t.listen("10.1.1.1:80".parse().unwrap(), 1), Err(utcp::ListenError::AddressNotLocal));
}

// =============================================================================================
// IPv6

#[test]
fn ipv6_handshake_and_data() {
    use utcp::tcp::SeqNum;
    use utcp::wire::{self, ChecksumMode, TcpFlags, Transport};
    let (local, remote) = (LOCAL6, REMOTE6);
    let mut c = utcp::Config::linux_like().with_address(local);
    c.isn_secret = [3; 16];
    let mut t = T::new(c);
    let l = t.listen(SocketAddr::new(local, 443), 4).unwrap();
    t.receive(&segment_v6(TcpFlags::SYN, 100, 0, NO_OPTS, b""));
    let synack = t.next_raw().unwrap();
    let d = wire::parse_datagram(&synack, ChecksumMode::Verify).unwrap();
    assert_eq!(d.ip.dst, remote);
    let Transport::Tcp(sa) = d.transport else { panic!("not TCP") };
    assert!(sa.flags.syn() && sa.flags.ack());
    assert_eq!(sa.ack, SeqNum(101));
    // RFC 8200 §5 / RFC 6691: the IPv6 MSS is the MTU less 60 bytes of headers.
    assert_eq!(sa.options.mss, Some(1440));
    let iss = sa.seq.0;
    t.receive(&segment_v6(TcpFlags::ACK | TcpFlags::PSH, 101, iss + 1, NO_OPTS, b"over v6"));
    let h = t.accept_on(l).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(t.read(h, &mut buf), Ok(7));
    assert_eq!(&buf[..7], b"over v6");
}

#[test]
fn segment_overlapping_received_data_is_trimmed_not_shifted() {
    // RFC 9293 §3.10.7.4: a segment that starts before RCV.NXT is trimmed to the new bytes.
    let mut t = T::established(config());
    t.send(In { data: b"abcdef", ..ACK });
    t.send(In { seq: 4, data: b"defghi", ..ACK });
    let mut buf = [0u8; 16];
    assert_eq!(t.read(t.sock(), &mut buf), Ok(9));
    assert_eq!(&buf[..9], b"abcdefghi");
}

#[test]
fn each_out_of_order_segment_in_a_batch_gets_its_own_duplicate_ack() {
    // RFC 5681 §4.2: an immediate duplicate ACK for every out-of-order segment.
    let mut t = T::established(config());
    for k in 0..3 {
        t.send(In { seq: 101 + 10 * k, data: b"0123456789", ..ACK });
    }
    assert_eq!(t.out(), [". 1:1(0) ack 1 win 65535"; 3]);
}

#[test]
fn close_in_syn_sent_deletes_the_connection() {
    // RFC 9293 §3.10.4 (CLOSE in SYN-SENT): delete the TCB; nothing is sent.
    let mut t = T::connecting(config());
    t.out();
    t.close(t.sock()).unwrap();
    assert!(t.out().is_empty());
    assert_eq!(t.s().connection_count(), 0);
}

#[test]
fn close_in_syn_received_sends_fin_once_established() {
    // RFC 9293 §3.10.4 (CLOSE in SYN-RECEIVED): queue the FIN until ESTABLISHED, then FIN-WAIT-1.
    let mut t = T::connecting(config());
    t.out();
    t.send(BARE_SYN);
    t.out();
    let h = t.sock();
    t.shutdown(h).unwrap();
    assert_eq!(t.s().state(h), Some(State::SynReceived));
    t.send(ACK);
    assert_eq!(t.s().state(h), Some(State::FinWait1));
    assert_eq!(t.out(), ["F. 1:1(0) ack 1 win 65535"]);
}

#[test]
fn events_do_not_pile_up_for_an_application_that_polls_rarely() {
    let mut t = T::established(config());
    for k in 0..100 {
        t.send(In { seq: 1 + 10 * k, data: b"0123456789", ..ACK });
    }
    assert_eq!(t.events(), [Event::Readable(t.sock())]);
}
