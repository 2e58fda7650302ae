//! Tests of the script executor.

use super::*;
use crate::script::parse_script;

fn run_text(text: &str) -> Outcome {
    run(&parse_script("t.pkt", text).expect("parses"))
}

#[test]
fn calls_without_the_stack_pass_when_results_match() {
    let o = run_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4\n\
         +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n\
         +0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n\
         +0 setsockopt(3, SOL_TCP, TCP_NODELAY, [1], 4) = 0\n\
         +0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)\n\
         +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
         +0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)\n\
         +0 close(3) = 0\n\
         +0 close(3) = -1 EBADF (Bad file descriptor)\n\
         +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    assert_eq!(o.transcript.len(), 11);
}

#[test]
fn wrong_result_fails_at_its_line_with_what_came_instead() {
    let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(4) = 0\n");
    let f = o.failure.expect("fails");
    assert_eq!(f.line, 2);
    assert_eq!(f.expected, "+0 close(4) = 0");
    assert_eq!(f.got, "close(4) = -1 EBADF");
}

#[test]
fn unsupported_requests_are_failures_with_line_numbers() {
    let o = run_text("0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3\n");
    assert_eq!(o.failure.as_ref().map(|f| f.line), Some(1));
    let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 fcntl(3, F_SETFL, O_APPEND) = 0\n");
    let f = o.failure.expect("fails");
    assert_eq!(f.line, 2);
    assert!(f.got.contains("O_APPEND"), "{f}");
    let o = run_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_SOCKET, SO_LINGER, [1], 4) = 0\n",
    );
    assert_eq!(o.failure.map(|f| f.line), Some(2));
    let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 write(3, ..., 10) = 10\n");
    assert_eq!(o.failure.map(|f| f.got), Some("write(3, ..., 10) = -1 EPIPE".to_string()));
}

#[test]
fn getsockopt_so_error_on_fresh_socket_is_zero() {
    let o = run_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n\
         +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0\n",
    );
    let f = o.failure.expect("second getsockopt fails");
    assert_eq!(f.line, 3);
}

#[test]
fn script_times_map_to_exact_microseconds() {
    let o = run_text("0.000001 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+1.5 close(3) = 0\n");
    assert_eq!(o.failure, None);
    assert!(o.transcript[1].starts_with("1.500001 close(3)"), "{:?}", o.transcript);
}

// The stack answers a SYN to a closed port with RST|ACK at once (RFC 9293 §3.10.7.1): a
// stable behaviour to test the matching rules against.

#[test]
fn matching_outbound_packet_passes() {
    let o = run_text("0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1 win 0\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    assert_eq!(o.transcript[1], "0.000000 > R. 0:0(0) ack 1 win 0");
}

#[test]
fn wrong_ack_is_reported_in_packetdrill_notation() {
    let f = run_text("0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 2\n").failure.expect("fails");
    assert_eq!(f.line, 2);
    assert!(f.got.starts_with("> R. 0:0(0) ack 1 win 0 at 0.000000"), "{f}");
    assert!(f.got.contains("ack 1 instead of 2"), "{f}");
}

#[test]
fn wrong_flags_and_options_are_reported() {
    let f = run_text("0 < S 0:0(0) win 65535\n+0 > R 0:0(0)\n").failure.expect("fails");
    assert!(f.got.contains("flags R. instead of R"), "{f}");
    let f = run_text("0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1 <nop>\n").failure.expect("fails");
    assert!(f.got.contains("options <> instead of <nop>"), "{f}");
}

#[test]
fn packet_outside_tolerance_fails_and_inside_passes() {
    let f = run_text("0 < S 0:0(0) win 65535\n+.1 > R. 0:0(0) ack 1\n").failure.expect("fails");
    assert!(f.got.contains("expected between 0.096000 and 0.104000"), "{f}");
    let o = run_text("--tolerance_usecs=100000\n0 < S 0:0(0) win 65535\n+.1 > R. 0:0(0) ack 1\n");
    assert_eq!(o.failure, None);
    let o = run_text("0 < S 0:0(0) win 65535\n* > R. 0:0(0) ack 1\n");
    assert_eq!(o.failure, None);
}

#[test]
fn timer_wheel_slack_lets_a_packet_come_late_by_an_eighth_of_its_delay() {
    // The SYN-ACK's retransmission comes 1 s after it (the initial RTO); the script says 0.9 s.
    let text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n\
                +0 listen(3, 1) = 0\n+0 < S 0:0(0) win 65535 <mss 1460>\n\
                +0 > S. 0:0(0) ack 1 <mss 1460>\n+.9 > S. 0:0(0) ack 1 <mss 1460>\n";
    let mut script = parse_script("t.pkt", text).expect("parses");
    let f = run(&script).failure.expect("100 ms late is outside the 4 ms tolerance");
    assert!(f.got.contains("no packet by 0.904000"), "{f}");
    // An eighth of 0.9 s more on the late side: up to 1.0165 s.
    script.options.timer_wheel_slack = true;
    assert_eq!(run(&script).failure, None);
    // Never on the early side.
    let early = text.replace("+.9 > S.", "+1.1 > S.");
    let mut script = parse_script("t.pkt", &early).expect("parses");
    script.options.timer_wheel_slack = true;
    let f = run(&script).failure.expect("100 ms early is outside the tolerance");
    assert!(f.got.contains("expected between 1.096000 and 1.241500"), "{f}");
}

// packetdrill (run_packet.c): what the stack sends is queued and taken, oldest first, by the
// next `>` line, whose window the packet's own send time is checked against.

#[test]
fn packet_sent_before_a_call_is_matched_by_the_later_outbound_line() {
    let o = run_text(
        "0 < S 0:0(0) win 65535\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > R. 0:0(0) ack 1 win 0\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn queued_packet_is_checked_against_its_own_send_time() {
    let f = run_text(
        "0 < S 0:0(0) win 65535\n+.5 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > R. 0:0(0) ack 1\n",
    )
    .failure
    .expect("fails");
    assert_eq!(f.line, 3);
    assert!(f.got.contains("at 0.000000 (expected between 0.496000 and 0.504000)"), "{f}");
}

#[test]
fn packet_no_line_matched_before_the_last_line_fails_at_the_end() {
    let f = run_text("0 < S 0:0(0) win 65535\n+.1 < S 0:0(0) win 65535\n").failure.expect("fails");
    assert_eq!(f.line, 2);
    assert!(
        f.got.contains("the stack sent `> R. 0:0(0) ack 1 win 0` at 0.000000 and no `>` line matched it"),
        "{f}"
    );
}

/// A listener on fd 3 and an accepted connection on fd 4 (peer MSS 1000, no other options).
const ESTABLISHED: &str = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
    +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n\
    +0 bind(3, ..., ...) = 0\n\
    +0 listen(3, 1) = 0\n\
    +0 < S 0:0(0) win 65535 <mss 1000>\n\
    +0 > S. 0:0(0) ack 1 <...>\n\
    +.1 < . 1:1(0) ack 1 win 65535\n\
    +0 accept(3, ..., ...) = 4\n";

fn established(rest: &str) -> Outcome {
    run_text(&format!("{ESTABLISHED}{rest}"))
}

#[test]
fn one_outbound_line_covers_consecutive_segments_unless_strict_segments() {
    let body = "+0 write(4, ..., 3000) = 3000\n+0 > P. 1:3001(3000) ack 1\n";
    let o = established(body);
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    assert!(o.transcript.iter().filter(|l| l.contains(" > ")).count() >= 4, "{:?}", o.transcript);
    let f = run_text(&format!("--strict_segments\n{ESTABLISHED}{body}")).failure.expect("fails");
    assert_eq!(f.line, 11);
    assert!(f.got.starts_with("> . 1:1001(1000) ack 1"), "{f}");
}

#[test]
fn merged_segments_must_add_up_to_the_line() {
    let f =
        established("+0 write(4, ..., 1500) = 1500\n+0 > P. 1:3001(3000) ack 1\n").failure.expect("fails");
    assert!(
        f.got.contains("> P. 1:1501(1500) ack 1 win 65535 (merged)")
            && f.got.contains("different sequence range"),
        "{f}"
    );
}

#[test]
fn blocking_call_end_counts_from_the_base_of_its_start() {
    // packetdrill: `+.1...0.3` returns 0.3 s after the time the line was reached, not at 0.3 s.
    let o = established(
        "+.1...0.3 read(4, ..., 10) = 10\n+.2 < P. 1:11(10) ack 1 win 65535\n* > . 1:1(0) ack 11\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let f = established("+.1...0.2 read(4, ..., 10) = 10\n+.2 < P. 1:11(10) ack 1 win 65535\n")
        .failure
        .expect("fails");
    assert!(f.got.contains("the call returned at 0.400000"), "{f}");
}

#[test]
fn syn_ack_with_any_sequence_number_fixes_the_stack_isn() {
    // packetdrill (socket.h, local_seq_script_to_live_offset): the number on the `>` SYN-ACK
    // names the stack's ISN for that SYN only; what follows counts from the ISN, as packets
    // after a SYN do in tcpdump's relative numbers.
    let script = |ack: u32, seq: u32| {
        format!(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
             +0 < S 0:0(0) win 65535 <mss 1000>\n+0 > S. 1234:1234(0) ack 1 <...>\n\
             +.1 < . 1:1(0) ack {ack} win 65535\n+0 accept(3, ..., ...) = 4\n\
             +0 write(4, ..., 10) = 10\n+0 > P. {seq}:{}(10) ack 1\n",
            seq + 10
        )
    };
    let o = run_text(&script(1, 1));
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    // 1235 would acknowledge what the stack never sent: no connection for accept.
    assert!(run_text(&script(1235, 1235)).failure.is_some());
}

/// packetdrill (run_packet.c): each passive open after a `listen` comes from a fresh peer port,
/// and (find_by_script_fd, newest first) a descriptor number still open names the newest socket.
#[test]
fn a_new_listen_takes_a_fresh_peer_port_and_a_held_descriptor_number_names_the_newest() {
    let open =
        "+0 < S 0:0(0) win 65535 <mss 1000>\n+0 > S. 0:0(0) ack 1 <...>\n+.1 < . 1:1(0) ack 1 win 65535\n";
    let listen = "+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n\
                  +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n";
    let o = run_text(&format!(
        "{listen}{open}+0 accept(3, ..., ...) = 4\n+0 close(3) = 0\n{listen}{open}+0 accept(3, ..., ...) = 4\n\
         +0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n"
    ));
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    // Two handshakes: from the first connection's port the second SYN would have met that
    // connection (a challenge ACK, RFC 5961 §4), not the new listener.
    let syn_acks = o.transcript.iter().filter(|l| l.contains(" > S. ")).count();
    assert_eq!(syn_acks, 2, "{:?}", o.transcript);
}

/// packetdrill (map_inbound_packet): a `<` line with the ACK flag and no `ack` acknowledges
/// relative 0, the ISN itself, an old duplicate ACK that the data it carries passes with.
#[test]
fn an_inbound_ack_line_without_an_ack_number_acknowledges_relative_zero() {
    let o = established("+0 < . 1:1001(1000) win 65535\n+0 > . 1:1(0) ack 1001\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn ts_val_is_checked_in_ticks_with_tcp_ts_tick_usecs() {
    let script = |val: u32| {
        format!(
            "--tcp_ts_tick_usecs=1000\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n\
             +0 listen(3, 1) = 0\n+0 < S 0:0(0) win 65535 <mss 1000,TS val 7 ecr 0>\n\
             +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,TS val 100 ecr 7>\n\
             +.1 < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 8 ecr 100>\n+0 accept(3, ..., ...) = 4\n\
             +.9 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1 <nop,nop,TS val {val} ecr 8>\n"
        )
    };
    let o = run_text(&script(1100));
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let f = run_text(&script(1300)).failure.expect("fails");
    assert!(f.got.contains("TS val 1100 instead of 1300"), "{f}");
}

#[test]
fn descriptors_are_numbered_as_the_script_expects() {
    let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 5\n+0 close(5) = 0\n+0 close(3) = -1 EBADF (Bad file descriptor)\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn shut_rd_makes_an_empty_read_return_zero_and_later_data_still_readable() {
    let o = established(
        "+0 shutdown(4, SHUT_RD) = 0\n+0 read(4, ..., 100) = 0\n\
         +0 < P. 1:11(10) ack 1 win 65535\n+0 > . 1:1(0) ack 11\n+0 read(4, ..., 100) = 10\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn send_flags_are_honoured_or_refused_by_name() {
    let o = established("+0 send(4, ..., 10, MSG_DONTWAIT) = 10\n+0 > P. 1:11(10) ack 1\n+0 < . 1:1(0) ack 11 win 65535\n+0 sendto(4, ..., 5, 0, ..., ...) = 5\n+0 > P. 11:16(5) ack 1\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = established("+0 recv(4, ..., 10, MSG_DONTWAIT) = -1 EAGAIN (Resource temporarily unavailable)\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    // Linux: MSG_FASTOPEN on a connected socket is an ordinary send.
    let o = established("+0 sendto(4, ..., 10, MSG_FASTOPEN, ..., ...) = 10\n+0 > P. 1:11(10) ack 1\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = established("+0 send(4, ..., 10, MSG_OOB) = 10\n");
    assert_eq!(o.refused(), Some("the MSG_OOB flag"));
}

/// Linux's TCP_INQ: the TCP_CM_INQ control message counts the bytes left after the read, and
/// comes only on a socket that set the option.
#[test]
fn recvmsg_checks_tcp_cm_inq_against_the_bytes_left_only_with_tcp_inq_set() {
    let recv = |left: i64| {
        format!(
            "+0 recvmsg(4, {{msg_name(...)=..., msg_iov(1)=[{{..., 30}}], msg_flags=0, \
             msg_control=[{{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data={left}}}]}}, 0) = 30\n"
        )
    };
    let data = "+0 < P. 1:101(100) ack 1 win 65535\n+0 > . 1:1(0) ack 101\n";
    let set = "+0 setsockopt(4, SOL_TCP, TCP_INQ, [1], 4) = 0\n";
    let o = established(&format!("{set}{data}{}", recv(70)));
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let f = established(&format!("{set}{data}{}", recv(71))).failure.expect("fails");
    assert_eq!(f.got, "TCP_CM_INQ 70 instead of 71", "{f}");
    let f = established(&format!("{data}{}", recv(70))).failure.expect("fails");
    assert!(f.got.contains("TCP_INQ is not set"), "{f}");
    let o = established(
        "+0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 30}], msg_flags=0, \
         msg_control=[{cmsg_level=SOL_SOCKET, cmsg_type=SCM_TIMESTAMPING, cmsg_data=...}]}, 0) = 30\n",
    );
    assert_eq!(o.refused(), Some("recvmsg control message SOL_SOCKET/SCM_TIMESTAMPING"));
}

#[test]
fn sendmsg_and_recvmsg_add_up_their_iovecs() {
    let o = established(
        "+0 sendmsg(4, {msg_name(...)=..., msg_iov(2)=[{..., 10}, {..., 5}], msg_flags=0}, 0) = 15\n\
         +0 > P. 1:16(15) ack 1\n+0 < P. 1:21(20) ack 16 win 65535\n+0 > . 16:16(0) ack 21\n\
         +0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 100}], msg_flags=0}, 0) = 20\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = established(
        "+0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 100}], msg_flags=0, msg_control=[]}, 0) = 100\n",
    );
    assert_eq!(o.refused(), Some("sendmsg control messages (msg_control)"));
}

#[test]
fn ioctl_reports_the_receive_and_send_queues() {
    let o = established(
        "+0 < P. 1:101(100) ack 1 win 65535\n+0 > . 1:1(0) ack 101\n+0 ioctl(4, SIOCINQ, [100]) = 0\n\
         +0 ioctl(4, FIONREAD, [100]) = 0\n+0 write(4, ..., 10) = 10\n+0 ioctl(4, SIOCOUTQ, [10]) = 0\n\
         +0 > P. 1:11(10) ack 101\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let f = established("+0 ioctl(4, SIOCINQ, [5]) = 0\n").failure.expect("fails");
    assert!(f.got.contains("ioctl SIOCINQ gave [0], expected [5]"), "{f}");
    assert_eq!(established("+0 ioctl(4, SIOCATMARK, [0]) = 0\n").refused(), Some("ioctl SIOCATMARK"));
}

#[test]
fn getsockopt_sndbuf_reports_linuxs_doubled_value() {
    let o = established(
        "+0 setsockopt(4, SOL_SOCKET, SO_SNDBUF, [10000], 4) = 0\n\
         +0 getsockopt(4, SOL_SOCKET, SO_SNDBUF, [20000], [4]) = 0\n\
         +0 setsockopt(4, SOL_SOCKET, SO_RCVBUF, [8000], 4) = 0\n\
         +0 getsockopt(4, SOL_SOCKET, SO_RCVBUF, [16000], [4]) = 0\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn null_buffer_is_efault() {
    let o = established("+0 write(4, NULL, 1000) = -1 EFAULT (Bad address)\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn shell_lines_set_the_configuration_before_the_stack_starts() {
    // defaults.sh's tcp_rmem maximum (15 MiB) gives Linux's window scale 8.
    let syn = "+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
               +0 < S 0:0(0) win 65535 <mss 1000,sackOK,TS val 1 ecr 0,nop,wscale 7>\n";
    let o = run_text(&format!(
        "`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n{syn}\
         +0 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 100 ecr 1,nop,wscale 8>\n"
    ));
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = run_text(&format!(
        "`../common/defaults.sh\nsysctl -q net.ipv4.tcp_timestamps=0`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n{syn}\
         +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>\n"
    ));
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = run_text("`sysctl -q net.ipv4.tcp_ecn=4`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n");
    assert_eq!(o.refused(), Some("AccECN (sysctl net.ipv4.tcp_ecn=4: utcp has RFC 3168 ECN, 0 to 2)"));
    // A TCP knob set after the stack started applies from then on, as a Linux sysctl does.
    let o = run_text("0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1\n+0 `sysctl -q net.ipv4.tcp_sack=0`\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = run_text(
        "0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1\n+0 `sysctl -q net.ipv4.tcp_timestamps=0`\n\
         +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n\
         +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
         +0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0>\n+0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK>\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = run_text("0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1\n+0 `/tmp/sysctl_restore_${PPID}.sh`\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn python_asserts_are_evaluated_on_the_connections_tcp_info() {
    let o = established("+0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%\n+0 %{ assert tcpi_state == 1 and tcpi_snd_mss == 1000 }%\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let f = established("+0 %{ assert tcpi_snd_cwnd == 11, tcpi_snd_cwnd }%\n").failure.expect("fails");
    assert_eq!(f.line, 9);
    assert_eq!(f.got, "the assert does not hold: tcpi_snd_cwnd=10");
    let o = established(
        "+0 %{ assert tcpi_advmss == 1460 and tcpi_options & TCPI_OPT_SACK == 0 and tcpi_options & TCPI_OPT_WSCALE == 0 }%\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = established("+0 %{ assert tcpi_ca_state == TCP_CA_Open and tcpi_lost == 0 }%\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = established("+0 %{ assert tcpi_last_data_recv == 0 }%\n");
    assert_eq!(o.refused(), Some("TCP_INFO field tcpi_last_data_recv"));
}

#[test]
fn missing_packet_fails() {
    let f = run_text("0 < R 0:0(0) win 0\n+0 > R. 0:0(0) ack 1\n").failure.expect("fails");
    assert_eq!(f.got, "no packet by 0.004000");
}

#[test]
fn rst_to_ack_uses_absolute_numbers_before_an_isn_is_known() {
    let o = run_text("0 < . 1:1(0) ack 4242 win 1000\n+0 > R 4242:4242(0)\n");
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn poll_reports_an_idle_listener_as_not_ready() {
    let o = run_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
         +0 poll([{fd=3, events=POLLIN, revents=0}], 1, 0) = 0\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let o = run_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
         +0 poll([{fd=3, events=POLLIN, revents=POLLIN}], 1, 0) = 1\n",
    );
    assert!(o.failure.is_some());
}

#[test]
fn tcp_maxseg_on_a_listener_bounds_the_syn_ack_mss() {
    let o = run_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
         +0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [1100], 4) = 0\n\
         +0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <mss 1100>\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
}

#[test]
fn inbound_data_is_cut_at_the_mss_option() {
    // packetdrill's --mss: a long inbound packet arrives as MSS-sized segments, PSH on the last.
    let o = run_text(&format!(
        "--mss=1000\n{ESTABLISHED}+0 < P. 1:2501(2500) ack 1 win 65535\n* > . 1:1(0) ack 2501\n"
    ));
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let inbound: Vec<&String> =
        o.transcript.iter().filter(|l| l.contains(" < ") && l.contains("ack 1 win")).collect();
    assert!(inbound.iter().any(|l| l.ends_with("< . 1:1001(1000) ack 1 win 65535")), "{inbound:?}");
    assert!(inbound.iter().any(|l| l.ends_with("< P. 2001:2501(500) ack 1 win 65535")), "{inbound:?}");
}

#[test]
fn a_script_asking_for_what_utcp_lacks_is_refused_before_it_runs() {
    // Even though line 2 would fail: the script needs writev, which utcp does not have.
    let o =
        run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(4) = 0\n+0 writev(3, ..., 2) = 10\n");
    assert_eq!(
        o.failure.as_ref().map(|f| (f.line, f.refused.as_deref())),
        Some((3, Some("system call writev")))
    );
    assert!(o.transcript.is_empty());
    let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(4) = 0\n+0 `sysctl -q net.ipv4.tcp_fastopen=0x8`\n");
    assert_eq!(o.refused(), Some("TCP Fast Open (RFC 7413) bits 0x8 (sysctl net.ipv4.tcp_fastopen=0x8)"));
    let o = run_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(4) = 0\n+0 setsockopt(3, SOL_SOCKET, SO_ZEROCOPY, [1], 4) = 0\n");
    assert_eq!(o.refused(), Some("socket option SO_ZEROCOPY"));
    let o = run_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(4) = 0\n+0 send(3, ..., 1, MSG_OOB) = 1\n",
    );
    assert_eq!(o.refused(), Some("the MSG_OOB flag"));
}

#[test]
fn epoll_is_level_triggered_unless_epollet_reports_each_wakeup_once() {
    let o = established(
        "+0 epoll_create(1) = 5\n\
         +0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN|EPOLLOUT, fd=4}) = 0\n\
         +0 epoll_wait(5, {events=EPOLLOUT, fd=4}, 1, 0) = 1\n\
         +0 epoll_wait(5, {events=EPOLLOUT, fd=4}, 1, 0) = 1\n\
         +0 epoll_ctl(5, EPOLL_CTL_MOD, 4, {events=EPOLLIN|EPOLLOUT|EPOLLET, fd=4}) = 0\n\
         +0 epoll_wait(5, {events=EPOLLOUT, fd=4}, 1, 0) = 1\n\
         +0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0\n\
         +0 < P. 1:101(100) ack 1 win 65535\n+0 > . 1:1(0) ack 101\n\
         +0 epoll_wait(5, {events=EPOLLIN|EPOLLOUT, fd=4}, 1, 0) = 1\n\
         +0 read(4, ..., 10) = 10\n\
         +0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0\n\
         +0 epoll_ctl(5, EPOLL_CTL_MOD, 4, {events=EPOLLIN|EPOLLONESHOT, fd=4}) = 0\n\
         +0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1\n\
         +0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0\n\
         +0 close(5) = 0\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let f = established(
        "+0 epoll_create(1) = 5\n+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN, fd=4}) = 0\n\
                         +0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1\n",
    )
    .failure
    .expect("nothing to read");
    assert!(f.got.contains("epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 0"), "{f}");
}

#[test]
fn getsockopt_tcp_info_compares_the_fields_written() {
    let o = established(
        "+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, tcpi_snd_mss=1000, tcpi_rtt=...}, [256]) = 0\n",
    );
    assert_eq!(o.failure, None, "{:?}", o.transcript);
    let f = established("+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_snd_cwnd=9}, [256]) = 0\n")
        .failure
        .expect("fails");
    assert!(f.got.contains("getsockopt TCP_INFO gave tcpi_snd_cwnd=10, expected 9"), "{f}");
    let o = established("+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_last_data_recv=0}, [256]) = 0\n");
    assert_eq!(o.refused(), Some("TCP_INFO field tcpi_last_data_recv"));
}
