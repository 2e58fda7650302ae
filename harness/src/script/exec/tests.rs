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
fn unexpected_packet_before_an_event_fails() {
    let f = run_text("0 < S 0:0(0) win 65535\n+.1 < S 0:0(0) win 65535\n").failure.expect("fails");
    assert_eq!(f.line, 2);
    assert!(f.got.contains("the stack sent `> R. 0:0(0) ack 1 win 0` at 0.000000 first"), "{f}");
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
