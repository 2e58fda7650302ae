//! `kernel::KernelNet`, the namespace and TUN device the Linux backends of scripts and replay put
//! the kernel's TCP behind: a datagram written into the device reaches a socket listening in the
//! namespace, and the kernel's answer comes back out of the device.
//!
//! Needs root (namespaces, TUN devices): without it the test prints why and passes, unless
//! `UTCP_LIVE_TESTS=require`, where it fails. Every address exists only inside the namespace the
//! test creates; every wait is bounded.

mod netns;

use netns::live_or_skip;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::time::{Duration, Instant};
use utcp_harness::kernel::KernelNet;
use utcp_harness::script::ast::flag;
use utcp_harness::script::packet::Segment;

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// RFC 9293 §3.5: a SYN to a listening socket is answered by a SYN-ACK that acknowledges it; the
/// kernel's answer leaves through the device to the routed remote address.
#[test]
fn syn_written_into_the_device_is_answered_by_the_kernels_syn_ack() {
    if !live_or_skip("syn_written_into_the_device_is_answered_by_the_kernels_syn_ack", &[]) {
        return;
    }
    let net = KernelNet::create("smoke", LOCAL, REMOTE, 1500).expect("namespace");
    assert_eq!(net.sysctl("net.ipv4.tcp_sack").as_deref(), Ok("1"));
    net.set_sysctl("net.ipv4.tcp_timestamps", "0").expect("a per-namespace sysctl");
    assert_eq!(net.sysctl("net.ipv4.tcp_timestamps").as_deref(), Ok("0"));
    let listener = net
        .netns()
        .within("listen", || TcpListener::bind((LOCAL, 8080)).map_err(|e| e.to_string()))
        .expect("a listening socket in the namespace");
    let syn = Segment {
        src: SocketAddrV4::new(REMOTE, 47_000).into(),
        dst: SocketAddrV4::new(LOCAL, 8080).into(),
        flags: flag::SYN,
        seq: 1000,
        ack: 0,
        win: 65_535,
        urg: 0,
        options: vec![utcp_harness::script::ast::TcpOptionSpec::Mss(1460)],
        payload_len: 0,
        ecn: 0,
    };
    net.send(&syn.to_datagram().expect("a datagram")).expect("written");
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = loop {
        let d = net.recv(deadline).expect("read").expect("an answer within 5 s");
        if let Ok(s) = Segment::parse(&d) {
            break s;
        }
    };
    assert_eq!(answer.flags, flag::SYN | flag::ACK);
    assert_eq!(answer.ack, 1001);
    assert_eq!(answer.src, SocketAddrV4::new(LOCAL, 8080).into());
    assert_eq!(answer.dst, SocketAddrV4::new(REMOTE, 47_000).into());
    drop(listener);
}

/// A global sysctl is not visible inside the namespace and is refused, not written on the host.
#[test]
fn a_sysctl_that_is_not_per_namespace_is_refused() {
    if !live_or_skip("a_sysctl_that_is_not_per_namespace_is_refused", &[]) {
        return;
    }
    let net = KernelNet::create("global", LOCAL, REMOTE, 1500).expect("namespace");
    let before = std::fs::read_to_string("/proc/sys/net/core/rmem_max").ok();
    let r = net.set_sysctl("net.core.rmem_max", "12345");
    assert!(r.is_err(), "{r:?}");
    assert_eq!(std::fs::read_to_string("/proc/sys/net/core/rmem_max").ok(), before);
    assert!(net.set_sysctl("kernel.panic", "0").is_err());
}
