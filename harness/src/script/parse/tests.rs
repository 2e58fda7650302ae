//! Tests of `parse.rs`.

use super::*;

fn parse(text: &str) -> Script {
    match parse_script("t.pkt", text) {
        Ok(s) => s,
        Err(e) => panic!("unexpected parse error: {e}"),
    }
}

fn parse_err(text: &str) -> ParseError {
    match parse_script("t.pkt", text) {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e,
    }
}

fn one(text: &str) -> Event {
    let mut s = parse(text);
    assert_eq!(s.events.len(), 1, "{text}");
    s.events.remove(0)
}

fn packet(text: &str) -> PacketSpec {
    match one(text).kind {
        EventKind::Packet(p) => p,
        k => panic!("not a packet: {k:?}"),
    }
}

fn call(text: &str) -> CallSpec {
    match one(text).kind {
        EventKind::Call(c) => c,
        k => panic!("not a call: {k:?}"),
    }
}

#[test]
fn design_example_parses() {
    let s = parse(
        "0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0    bind(3, ..., ...) = 0\n\
         +0    listen(3, 1) = 0\n\
         +0    < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>\n\
         +0    > S. 0:0(0) ack 1 <...>\n\
         +.1   < . 1:1(0) ack 1 win 257\n\
         +0    accept(3, ..., ...) = 4\n\
         +0    write(4, ..., 1000) = 1000\n\
         +0    > P. 1:1001(1000) ack 1\n",
    );
    assert_eq!(s.events.len(), 9);
    assert_eq!(s.events[5].time, TimeSpec::Relative(100_000));
    assert_eq!(s.events[5].line, 6);
    assert_eq!(s.options, ScriptOptions::default());
}

#[test]
fn time_forms_map_to_microseconds_exactly() {
    assert_eq!(one("0.100 close(3) = 0").time, TimeSpec::Absolute(100_000));
    assert_eq!(one("1 close(3) = 0").time, TimeSpec::Absolute(1_000_000));
    assert_eq!(one("+0.1 close(3) = 0").time, TimeSpec::Relative(100_000));
    assert_eq!(one("+.1 close(3) = 0").time, TimeSpec::Relative(100_000));
    assert_eq!(one("+.000001 close(3) = 0").time, TimeSpec::Relative(1));
    assert_eq!(one("+1.5000000 close(3) = 0").time, TimeSpec::Relative(1_500_000));
    assert_eq!(one("* close(3) = 0").time, TimeSpec::Any);
    assert_eq!(
        one("0.1~0.2 > . 1:1(0) ack 1").time,
        TimeSpec::Range { lo: 100_000, hi: 200_000, relative: false }
    );
    assert_eq!(
        one("+0.1~+0.25 > . 1:1(0) ack 1").time,
        TimeSpec::Range { lo: 100_000, hi: 250_000, relative: true }
    );
}

#[test]
fn blocking_call_end_time_parses() {
    let e = one("0.1...0.3 read(4, ..., 10) = 10");
    assert_eq!(e.time, TimeSpec::Absolute(100_000));
    assert_eq!(e.end_time, Some((300_000, false)));
    let e = one("+0...+0.2 accept(3, ..., ...) = 4");
    assert_eq!(e.end_time, Some((200_000, true)));
}

#[test]
fn bad_times_are_refused_with_column() {
    let e = parse_err("0.1~+0.2 > . 1:1(0) ack 1");
    assert_eq!((e.line, e.col), (1, 5));
    assert!(e.message.contains("both ends"), "{e}");
    let e = parse_err("0.2~0.1 > . 1:1(0) ack 1");
    assert!(e.message.contains("before its start"), "{e}");
    let e = parse_err("0.0000001 close(3) = 0");
    assert!(e.message.contains("finer than a microsecond"), "{e}");
    let e = parse_err("  x close(3) = 0");
    assert_eq!((e.line, e.col), (1, 3));
    assert!(e.message.contains("expected a time"), "{e}");
}

#[test]
fn flags_parse_in_packetdrill_notation() {
    for (text, flags) in [
        ("S", flag::SYN),
        ("S.", flag::SYN | flag::ACK),
        ("F.", flag::FIN | flag::ACK),
        ("P.", flag::PSH | flag::ACK),
        ("R", flag::RST),
        ("R.", flag::RST | flag::ACK),
        (".", flag::ACK),
        ("FP.", flag::FIN | flag::PSH | flag::ACK),
        ("SEW", flag::SYN | flag::ECE | flag::CWR),
        ("U.", flag::URG | flag::ACK),
    ] {
        let p = packet(&format!("0 < {text} 0:0(0) win 100"));
        assert_eq!(p.flags, flags, "{text}");
        assert_eq!(format_flags(p.flags).chars().count(), text.len(), "{text}");
    }
}

#[test]
fn packet_fields_parse() {
    let p = packet("+0 > P. 1:1001(1000) ack 7 win 229 urg 3");
    assert_eq!(p.direction, Direction::Outbound);
    assert_eq!((p.seq, p.len, p.ack, p.win, p.urg), (1, 1000, Some(7), Some(229), Some(3)));
    assert_eq!(p.options, None);
    let p = packet("+0 < S 0:0(0) win 100 port 40001");
    assert_eq!(p.peer_port, Some(40001));
    let e = parse_err("0 < S 0:0(0) port 0");
    assert!(e.message.contains("port 0"), "{e}");
    let p = packet("+0 < . 1:1(0) win 0 ack 1");
    assert_eq!((p.ack, p.win), (Some(1), Some(0)));
    assert_eq!(p.direction, Direction::Inbound);
}

#[test]
fn options_parse_in_order() {
    let p = packet("0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7,sack 1:2 3:4,eol>");
    assert_eq!(
        p.options,
        Some(OptionsSpec::List(vec![
            TcpOptionSpec::Mss(1460),
            TcpOptionSpec::SackOk,
            TcpOptionSpec::Timestamp { val: 100, ecr: 0 },
            TcpOptionSpec::Nop,
            TcpOptionSpec::WScale(7),
            TcpOptionSpec::Sack(vec![(1, 2), (3, 4)]),
            TcpOptionSpec::Eol,
        ]))
    );
    assert_eq!(packet("0 > S. 0:0(0) ack 1 <...>").options, Some(OptionsSpec::Any));
    assert_eq!(packet("0 > S. 0:0(0) ack 1 < ... >").options, Some(OptionsSpec::Any));
}

#[test]
fn bad_packets_name_the_column_and_what_was_expected() {
    let e = parse_err("0 < S 0:0(1) win 1");
    assert!(e.message.contains("does not match"), "{e}");
    assert_eq!(e.col, 11);
    let e = parse_err("0 < X 0:0(0)");
    assert_eq!(e.col, 5);
    assert!(e.message.contains("expected TCP flags"), "{e}");
    let e = parse_err("0 < S 0 0(0)");
    assert!(e.message.contains("`:`"), "{e}");
    let e = parse_err("0 < S 0:0(0) win 70000");
    assert!(e.message.contains("16 bits"), "{e}");
    let e = parse_err("0 < S 0:0(0) window 7");
    assert!(e.message.contains("`ack N`, `win N`"), "{e}");
    assert_eq!(e.col, 14);
    let e = parse_err("0 < S 0:0(0) <mss 1460,fastopen>");
    assert_eq!(e.feature.as_deref(), Some("TCP option `fastopen`"));
    let e = parse_err("0 < S 0:0(0) <mss 1460,FO 1234abc>");
    assert!(e.message.contains("odd number of digits"), "{e}");
    let e = parse_err("0 < S 0:0(0) <mss 1460 sackOK>");
    assert!(e.message.contains("`,` or `>`"), "{e}");
    let e = parse_err("0 < S 0:0(0) <mss>");
    assert!(e.message.contains("an MSS value"), "{e}");
    let e = parse_err("0 < S 0:0(0) <TS 1 ecr 2>");
    assert!(e.message.contains("`val`"), "{e}");
    let e = parse_err("0 < S 0:0(0) ack 1 ack 2");
    assert!(e.message.contains("twice"), "{e}");
    let e = parse_err("0 < S 0:0(0) <wscale 300>");
    assert!(e.message.contains("byte"), "{e}");
    let e = parse_err("0 < udp (1000)");
    assert_eq!(e.feature.as_deref(), Some("UDP packet lines"));
    let e = parse_err("0 > icmp unreachable port_unreachable");
    assert_eq!(e.feature.as_deref(), Some("outbound ICMP lines (`> icmp`)"));
    let e = parse_err("0 < icmp redirect");
    assert_eq!(e.feature.as_deref(), Some("ICMP type redirect"));
    let e = parse_err("0 < [tos 0x4] S 0:0(0)");
    assert_eq!(e.feature.as_deref(), Some("IP header fields (`[tos 0x4]`)"));
    let e = parse_err("0 < S");
    assert!(e.message.contains("end of line"), "{e}");
}

#[test]
fn calls_parse_with_results_and_errno() {
    let c = call("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3");
    assert_eq!(c.name, "socket");
    assert_eq!(
        c.args,
        vec![Expr::Ellipsis, Expr::Symbol("SOCK_STREAM".into()), Expr::Symbol("IPPROTO_TCP".into())]
    );
    assert_eq!(c.result, Expr::Int(3));
    let c = call("+0 read(4, ..., 100) = -1 EAGAIN (Resource temporarily unavailable)");
    assert_eq!(c.result, Expr::Int(-1));
    assert_eq!(c.errno.as_deref(), Some("EAGAIN"));
    let c = call("+0 connect(3, ..., ...) = -1 EINPROGRESS");
    assert_eq!(c.errno.as_deref(), Some("EINPROGRESS"));
    let c = call("+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0");
    assert_eq!(
        c.args[2],
        Expr::BitOr(vec![Expr::Symbol("O_RDWR".into()), Expr::Symbol("O_NONBLOCK".into())])
    );
    let c = call("+0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)");
    assert_eq!(c.result, Expr::Int(0x802));
    let c = call("+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0");
    assert_eq!(
        c.args[3],
        Expr::Struct(vec![("onoff".into(), Expr::Int(1)), ("linger".into(), Expr::Int(0))])
    );
    let c = call("+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0");
    assert_eq!(c.args[3], Expr::Array(vec![Expr::Symbol("ECONNREFUSED".into())]));
    assert_eq!(c.args[4], Expr::Array(vec![Expr::Int(4)]));
    let c = call("+0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1");
    assert_eq!(c.name, "poll");
    let c = call("+0 close(3)=0");
    assert_eq!(c.args, vec![Expr::Int(3)]);
    let c = call("+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, \"reno\", 4) = 0");
    assert_eq!(c.args[3], Expr::Str("reno".into()));
}

#[test]
fn bad_calls_are_refused() {
    assert_eq!(call("0 writev(3, ..., 2) = 10").name, "writev");
    let e = parse_err("0 close(3)");
    assert!(e.message.contains("`=`"), "{e}");
    let e = parse_err("0 close(3 = 0");
    assert!(e.message.contains("`,` or `)`"), "{e}");
    let e = parse_err("0 close(3) = 0 EBADF");
    assert!(e.message.contains("only expected with a result of -1"), "{e}");
    let e = parse_err("0 close(3) = -1 EBADF (Bad file");
    assert!(e.message.contains("unclosed"), "{e}");
    let e = parse_err("0 close(3) = 0 extra");
    assert!(e.message.contains("end of line"), "{e}");
    let e = parse_err("0 read(3, ..., 0xZ) = 0");
    assert!(e.message.contains("hex digits"), "{e}");
}

#[test]
fn comments_are_blanked_and_columns_kept() {
    let s = parse(
        "// header comment\n\
         /* a block\n   across lines */ 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // trailing\n\
         +0 /* inline */ close(3) = 0\n",
    );
    assert_eq!(s.events.len(), 2);
    assert_eq!(s.events[0].line, 3);
    assert_eq!(s.events[1].line, 4);
    let e = parse_err("/* x */ 0 close(3) = 0 extra");
    assert_eq!((e.line, e.col), (1, 24));
    let e = parse_err("0 close(3) = 0\n/* never closed\n");
    assert_eq!((e.line, e.col), (2, 1));
    assert!(e.message.contains("unterminated"), "{e}");
}

#[test]
fn python_blocks_and_shell_lines_become_events_or_refusals_naming_what_they_hold() {
    let s = parse(
        "`../common/defaults.sh\nsysctl -q net.ipv4.tcp_sack=0`\n0 close(3) = 0\n\
         +0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd // floor\n  }%\n",
    );
    assert_eq!(s.events.len(), 3);
    assert_eq!((s.events[0].line, s.events[0].time), (1, TimeSpec::Relative(0)));
    assert!(matches!(&s.events[0].kind, EventKind::Shell(c) if c.len() == 2), "{:?}", s.events[0]);
    assert_eq!(s.events[2].line, 4);
    assert!(matches!(&s.events[2].kind, EventKind::Python(a) if a.len() == 1), "{:?}", s.events[2]);
    let e = parse_err("0 close(3) = 0\n+0 %{ print(tcpi_rto) }%\n");
    assert_eq!((e.line, e.col), (2, 4));
    assert_eq!(
        e.feature.as_deref(),
        Some("Python statement `print(tcpi_rto)` (only `assert` on tcpi_* fields)")
    );
    assert!(e.to_string().starts_with("t.pkt:2:4: refused: Python statement"), "{e}");
    let e = parse_err("0 `tc qdisc add dev tun0 root fq`\n");
    assert_eq!((e.line, e.col), (1, 3));
    assert_eq!(e.feature.as_deref(), Some("shell command `tc qdisc add dev tun0 root fq`"));
    let e = parse_err("0 `sysctl -q net.ipv4.tcp_sack=0\n");
    assert!(e.message.contains("unterminated shell line"), "{e}");
    assert_eq!(e.feature, None);
}

#[test]
fn calls_may_span_lines_and_structs_hold_positional_and_argument_fields() {
    let s = parse("0 poll([{fd=3, events=POLLIN,\n          revents=0}],\n 1, 0) = 0\n+0 close(3) = 0\n");
    assert_eq!(s.events.len(), 2);
    assert_eq!(s.events[1].line, 4);
    let c = call("+0 sendmsg(4, {msg_name(...)=..., msg_iov(2)=[{..., 10}, {..., 5}], msg_flags=0}, 0) = 15");
    let Expr::Struct(fields) = &c.args[1] else { panic!("{c:?}") };
    assert_eq!(fields[0].0, "msg_name(...)");
    assert_eq!(fields[1].0, "msg_iov(2)");
    assert_eq!(
        fields[1].1,
        Expr::Array(vec![
            Expr::Struct(vec![(String::new(), Expr::Ellipsis), (String::new(), Expr::Int(10))]),
            Expr::Struct(vec![(String::new(), Expr::Ellipsis), (String::new(), Expr::Int(5))]),
        ])
    );
}

#[test]
fn a_packet_line_without_flags_is_written_dash() {
    assert_eq!(packet("0 < - 1:1001(1000) win 20000").flags, 0);
}

#[test]
fn header_options_parse() {
    let s = parse("--tolerance_usecs=10000\n--profile=default\n--local_ip=10.0.0.1\n--remote_ip=10.0.0.2\n--mtu=1280\n0 close(3) = 0\n");
    assert_eq!(s.options.tolerance_usecs, 10_000);
    assert_eq!(s.options.profile, Profile::Default);
    assert_eq!(s.options.local_ip, std::net::Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(s.options.remote_ip, std::net::Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(s.options.mtu, Some(1280));
    assert_eq!(parse("--profile=linux\n").options.profile, Profile::Linux);
    let s = parse("--strict_segments\n--tcp_ts_tick_usecs=1000\n--mss=1000\n");
    assert!(s.options.strict_segments);
    assert_eq!(s.options.tcp_ts_tick_usecs, Some(1000));
    assert_eq!(s.options.mss, Some(1000));
}

#[test]
fn bad_header_options_are_refused() {
    let e = parse_err("--tolerance_usecs=ten\n");
    assert!(e.message.contains("microseconds"), "{e}");
    let e = parse_err("--profile=bsd\n");
    assert!(e.message.contains("`linux` or `default`"), "{e}");
    let e = parse_err("--frobnicate=1\n");
    assert_eq!(e.feature.as_deref(), Some("header option --frobnicate"));
    let e = parse_err("--tcp_ts_ecr_scaled\n");
    assert_eq!(e.feature.as_deref(), Some("header option --tcp_ts_ecr_scaled"));
    let e = parse_err("--ip_version=ipv7\n");
    assert!(e.message.contains("ipv4, ipv4-mapped-ipv6 or ipv6"), "{e}");
    let e = parse_err("--local_ip=10.0.0.1.5\n");
    assert!(e.message.contains("an IPv4 or IPv6 address"), "{e}");
    let e = parse_err("--remote_ip=224.0.0.1\n");
    assert!(e.message.contains("not a unicast address"), "{e}");
    let e = parse_err("0 close(3) = 0\n--tolerance_usecs=1\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("before the first event"), "{e}");
    let e = parse_err("--tolerance_usecs\n");
    assert!(e.message.contains("--name=value"), "{e}");
}

#[test]
fn ip_version_ipv6_takes_run_all_addresses_and_mtu_unless_the_script_names_them() {
    let s = parse("--ip_version=ipv6\n0 close(3) = 0\n");
    assert_eq!(s.options.ip_version, IpVersion::V6);
    assert_eq!(s.options.local_ip, "fd3d:a0b:17d6::1".parse::<IpAddr>().unwrap());
    assert_eq!(s.options.remote_ip, "fd3d:fa7b:d17d::1".parse::<IpAddr>().unwrap());
    assert_eq!(s.options.mtu, Some(1520));
    let s = parse("--ip_version=ipv6\n--local_ip=fd00::5\n--mtu=1300\n");
    assert_eq!(s.options.local_ip, "fd00::5".parse::<IpAddr>().unwrap());
    assert_eq!(s.options.remote_ip, "fd3d:fa7b:d17d::1".parse::<IpAddr>().unwrap());
    assert_eq!(s.options.mtu, Some(1300));
    // The mapped version keeps IPv4 on the wire: IPv4 addresses, no MTU of its own.
    let s = parse("--ip_version=ipv4-mapped-ipv6\n");
    assert_eq!(s.options.local_ip, std::net::Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(s.options.mtu, None);
    assert_eq!(s.options.local_socket(8080), "[::ffff:192.168.0.1]:8080".parse().unwrap());
    assert_eq!(s.options.remote_socket(9), "[::ffff:192.0.2.1]:9".parse().unwrap());
}

#[test]
fn a_header_address_of_the_other_family_than_the_wire_is_an_error_on_its_line() {
    let e = parse_err("--tolerance_usecs=1000\n--local_ip=fd::1\n0 close(3) = 0\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("IPv6 address, but the script runs over ipv4"), "{e}");
    let e = parse_err("--ip_version=ipv6\n--remote_ip=10.0.0.2\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("IPv4 address, but the script runs over ipv6"), "{e}");
    // The error names the option that gave the address, not the last address option.
    let e = parse_err("--local_ip=fd::1\n--remote_ip=192.0.2.9\n0 close(3) = 0\n");
    assert_eq!((e.line, e.col), (1, 12), "{e}");
    // Under the mapped version the wire is IPv4: an IPv6 address does not fit it either.
    let e = parse_err("--ip_version=ipv4-mapped-ipv6\n--local_ip=fd::1\n");
    assert!(e.message.contains("runs over ipv4-mapped-ipv6"), "{e}");
}

#[test]
fn parse_script_as_gives_run_all_defaults_that_the_header_overrides() {
    let s = parse_script_as("t.pkt", "0 close(3) = 0\n", IpVersion::V6).unwrap();
    assert_eq!(s.options.ip_version, IpVersion::V6);
    assert!(s.options.local_ip.is_ipv6());
    // A script that says ipv4 runs over IPv4 whatever the command line asked for.
    let s = parse_script_as("t.pkt", "--ip_version=ipv4\n0 close(3) = 0\n", IpVersion::V6).unwrap();
    assert_eq!(s.options.ip_version, IpVersion::V4);
    assert_eq!(s.options.local_ip, std::net::Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(s.options.mtu, None);
    // run_all.py's IPv6 definitions: its cookie, and the IPv6 cmsg names.
    let s = parse_script_as(
        "t.pkt",
        "0 setsockopt(3, CMSG_LEVEL_IP, CMSG_TYPE_RECVERR, [1], 4) = 0\n",
        IpVersion::V6,
    )
    .unwrap();
    let call = format!("{:?}", s.events[0].kind);
    assert!(call.contains("SOL_IPV6") && call.contains("IPV6_RECVERR"), "{call}");
}

#[test]
fn icmpv6_lines_take_rfc_4443_names_and_a_32_bit_mtu() {
    let icmp6 =
        |text: &str| match parse_script_as("t.pkt", text, IpVersion::V6).map(|s| s.events[0].kind.clone()) {
            Ok(EventKind::Icmp(i)) => i,
            other => panic!("not ICMP: {other:?}"),
        };
    // RFC 8201 §4: Packet Too Big, type 2 code 0, its MTU in 32 bits.
    assert_eq!(
        icmp6("0 < icmp packet_too_big mtu 70000 [1:1001(1000)]"),
        IcmpSpec { icmp_type: 2, code: 0, mtu: Some(70_000), quoted: Some((1, 1000)) }
    );
    // RFC 4443 §3.1: Destination Unreachable is type 1, port unreachable code 4.
    assert_eq!(icmp6("0 < icmp unreachable port_unreachable").code, 4);
    assert_eq!(icmp6("0 < icmp unreachable net_unreachable").code, 0);
    assert_eq!(icmp6("0 < icmp time_exceeded exceeded_frag_time").icmp_type, 3);
    assert_eq!(icmp6("0 < icmp time_exceeded exceeded_frag_time").code, 1);
    assert_eq!(icmp6("0 < icmp parameter_problem unknown_option").icmp_type, 4);
    // tcpdump's notation for any other.
    let i = icmp6("0 < icmp type_200 code_7");
    assert_eq!((i.icmp_type, i.code), (200, 7));
    // ICMPv4's names are not ICMPv6's.
    let e = parse_script_as("t.pkt", "0 < icmp unreachable frag_needed\n", IpVersion::V6).unwrap_err();
    assert_eq!(e.feature.as_deref(), Some("ICMPv6 code frag_needed"));
    let e = parse_script_as("t.pkt", "0 < icmp source_quench\n", IpVersion::V6).unwrap_err();
    assert_eq!(e.feature.as_deref(), Some("ICMPv6 type source_quench"));
    // An MTU only where the message carries one.
    let e = parse_script_as("t.pkt", "0 < icmp unreachable port_unreachable mtu 1280\n", IpVersion::V6)
        .unwrap_err();
    assert!(e.message.contains("only valid for packet_too_big"), "{e}");
    let e = parse_err("0 < icmp unreachable host_unreachable mtu 1280\n");
    assert!(e.message.contains("only valid for unreachable frag_needed"), "{e}");
}

#[test]
fn inbound_icmp_lines_parse_type_code_mtu_and_quoted_segment() {
    let icmp = |text: &str| match one(text).kind {
        EventKind::Icmp(i) => i,
        k => panic!("not ICMP: {k:?}"),
    };
    assert_eq!(
        icmp("+.01 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]"),
        IcmpSpec { icmp_type: 3, code: 4, mtu: Some(1200), quoted: Some((1, 1460)) }
    );
    assert_eq!(
        icmp("0 < icmp unreachable [5000:6000(1000)]"),
        IcmpSpec { icmp_type: 3, code: 0, mtu: None, quoted: Some((5000, 1000)) }
    );
    assert_eq!(icmp("0 < icmp time_exceeded").icmp_type, 11);
    assert!(parse_err("0 < icmp unreachable [1:3(1)]").message.contains("does not match"));
}

#[test]
fn fast_open_options_parse_with_and_without_a_cookie() {
    let s = parse_script("t.pkt", "0 < S 0:0(0) <mss 1460,FO,nop,nop,FO 1234abcd,FOEXP,FOEXP 00ff>").unwrap();
    let EventKind::Packet(p) = &s.events[0].kind else { panic!("{s:?}") };
    let fo = |cookie: &[u8], exp| TcpOptionSpec::FastOpen { cookie: cookie.to_vec(), exp };
    assert_eq!(
        p.options,
        Some(OptionsSpec::List(vec![
            TcpOptionSpec::Mss(1460),
            fo(&[], false),
            TcpOptionSpec::Nop,
            TcpOptionSpec::Nop,
            fo(&[0x12, 0x34, 0xab, 0xcd], false),
            fo(&[], true),
            fo(&[0x00, 0xff], true),
        ]))
    );
    assert_eq!(fo(&[0x12, 0xab], true).to_string(), "FOEXP 12ab");
}

// packetdrill's run_all.py defines TFO_COOKIE and CODE for every IPv4 script.
#[test]
fn run_all_defines_are_substituted_as_whole_words() {
    let s = parse_script("t.pkt", "0 < S 0:0(0) <FO TFO_COOKIE>\n+0 < icmp unreachable CODE\n").unwrap();
    let EventKind::Packet(p) = &s.events[0].kind else { panic!("{s:?}") };
    let cookie = vec![0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb];
    assert_eq!(p.options, Some(OptionsSpec::List(vec![TcpOptionSpec::FastOpen { cookie, exp: false }])));
    let EventKind::Icmp(i) = &s.events[1].kind else { panic!("{s:?}") };
    assert_eq!((i.icmp_type, i.code), (3, 1));
    let s = parse_script_with("t.pkt", "0 < S 0:0(0) <FO TFO_COOKIE_X>\n", &[("TFO_COOKIE", "00")]);
    assert!(s.is_err(), "TFO_COOKIE_X is another word");
}

#[test]
fn packetdrill_ecn_brackets_name_the_ip_ecn_field() {
    assert_eq!(packet("0 < [ce] P. 1:1001(1000) ack 1").ecn, Some(EcnSpec::Ce));
    assert_eq!(packet("0 > [ect0] P. 1:1001(1000) ack 1").ecn, Some(EcnSpec::Ect0));
    assert_eq!(packet("0 > [ect01] . 1:1(0) ack 1").ecn, Some(EcnSpec::Ect01));
    assert_eq!(packet("0 > [noecn] SEW 0:0(0)").ecn, Some(EcnSpec::NoEcn));
    assert_eq!(packet("0 > . 1:1(0) ack 1").ecn, None);
    assert!(EcnSpec::Ect01.matches(1) && EcnSpec::Ect01.matches(2) && !EcnSpec::Ect01.matches(3));
    let e = parse_err("0 < [ect01] . 1:1(0) ack 1");
    assert!(e.message.contains("only on `>` lines"), "{e}");
    let e = parse_err("0 < [ce . 1:1(0) ack 1");
    assert!(e.message.contains("without its `]`"), "{e}");
}
