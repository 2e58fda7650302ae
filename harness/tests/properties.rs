//! Properties over generated inputs (strategies in `utcp_harness::gen`):
//! - segments: emit then parse gives the same value; a datagram damaged in any one field is
//!   refused by the parser and dropped by a stack without an answer;
//! - random segment sequences to a listening stack and to an established connection, aimed at
//!   every RFC 9293 state: no panic, the connection invariants after every step, every datagram
//!   sent parses, memory bounded (the checks of the stack fuzz targets, `run_stack`);
//! - a model test: two stacks on a perfect in-memory wire driven by random socket calls, checked
//!   against a reference model of the two byte streams and of the states RFC 9293 allows; and the
//!   same calls over a randomly impaired link, where the streams must still arrive whole.
//!
//! Case counts are modest so the file runs in about a second with the test profile; set
//! PROPTEST_CASES (e.g. 30000) for a deeper search, and UTCP_MODEL_TRACE=1 to print every datagram
//! of a failing model case.

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp::host::{Bounds, Host, Observer};
use utcp::wire::{parse_datagram, ChecksumMode, Transport};
use utcp::{Config, Duration, Instant, RecvError, SendError, SocketHandle, Stack, State};
use utcp_harness::fuzzing::{run_stack, Quiet, StackInput, StackTarget};
use utcp_harness::gen::{self, Call, Side};
use utcp_harness::netsim::{Link, LinkConfig};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn generated_segments_round_trip(s in gen::segment()) {
        let bytes = s.to_bytes();
        let d = parse_datagram(&bytes, ChecksumMode::Verify).expect("a generated segment parses");
        prop_assert_eq!(d.ip.src, s.src);
        prop_assert_eq!(d.ip.dst, s.dst);
        let Transport::Tcp(tcp) = d.transport else { panic!("not TCP: {:?}", d.transport) };
        prop_assert_eq!(tcp, s.tcp());
    }

    #[test]
    fn a_datagram_damaged_in_one_field_is_refused((s, damage, bytes) in gen::invalid_datagram()) {
        prop_assert!(
            parse_datagram(&bytes, ChecksumMode::Verify).is_err(),
            "{damage:?} accepted: {s:?}"
        );
        // A stack owning the destination drops it, counts it, and answers nothing.
        let mut stack = Stack::new(Config::default().with_address(s.dst));
        let _ = stack.listen(Instant::from_secs(1), SocketAddr::new(s.dst, s.dst_port.max(1)), 4);
        stack.handle_packet(Instant::from_secs(1), &bytes);
        prop_assert_eq!(stack.stats().total_drops(), 1, "{:?} not counted as a drop", damage);
        prop_assert!(stack.poll_transmit_vec(Instant::from_secs(1)).is_none(), "{damage:?} answered");
    }

    #[test]
    fn segment_sequences_to_a_listening_stack_keep_the_invariants(
        input in gen::aimed_input(StackTarget::Listen, 40)
    ) {
        run_stack(StackTarget::Listen, &input, &mut Quiet);
    }

    #[test]
    fn segment_sequences_to_an_established_connection_keep_the_invariants(
        input in gen::aimed_input(StackTarget::Established, 40)
    ) {
        run_stack(StackTarget::Established, &input, &mut Quiet);
    }

    #[test]
    fn two_stacks_agree_with_the_stream_and_state_model(
        calls in proptest::collection::vec(gen::call(), 1..60),
        small in any::<bool>(),
    ) {
        model_test(&calls, small, None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..config() })]

    #[test]
    fn streams_arrive_whole_over_an_impaired_link(
        calls in proptest::collection::vec(gen::call(), 1..40),
        small in any::<bool>(),
        link in gen::link_config(),
        seed in any::<u64>(),
    ) {
        model_test(&calls, small, Some((link, seed)));
    }
}

#[test]
fn each_aimed_prefix_reaches_its_state() {
    for target in [StackTarget::Listen, StackTarget::Established] {
        for state in gen::aimable_states(target) {
            let input = StackInput { setup: Default::default(), steps: gen::steps_to(target, state) };
            let out = run_stack(target, &input, &mut Quiet);
            let got = out.states.first().copied().flatten();
            match state {
                // A listener alone, or a half-open connection not yet accepted: no socket.
                State::Listen | State::SynReceived => {
                    assert!(out.states.is_empty(), "{target:?} {state}: {out:?}");
                    assert_eq!(
                        out.connections,
                        usize::from(state == State::SynReceived),
                        "{target:?} {state}"
                    );
                }
                _ => assert_eq!(got, Some(state), "{target:?} aimed at {state}"),
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The model test.

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// What the model knows of one side: the bytes its application wrote and read, and its calls.
#[derive(Default, Debug)]
struct SideModel {
    written: Vec<u8>,
    read: Vec<u8>,
    shut: bool,
    /// When `shutdown` was called.
    shut_at: Option<Instant>,
    eof: bool,
}

/// Two hosts on a wire (perfect: no loss, no delay, unless impaired) and the model of both sides.
struct World {
    hosts: [Host; 2],
    /// Client to server, server to client.
    links: [Link; 2],
    impaired: bool,
    socks: [SocketHandle; 2],
    model: [SideModel; 2],
    now: Instant,
}

fn idx(s: Side) -> usize {
    match s {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// The byte at `offset` of a side's stream.
fn stream_byte(side: usize, offset: usize) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(offset / 251).wrapping_add(side * 101)) as u8
}

impl World {
    fn new(small: bool, impairment: Option<(LinkConfig, u64)>) -> World {
        let cfg = |addr, secret| {
            let mut c = Config::default().with_address(addr);
            c.isn_secret = [secret; 16];
            c.tcp.msl = Duration::from_secs(1);
            if small {
                c.tcp.send_buffer = 4096;
                c.tcp.recv_buffer = 4096;
            }
            c
        };
        let now = Instant::from_secs(1);
        let host = |c| Host::new(Stack::new(c), now, Bounds::default());
        let mut hosts = [host(cfg(CLIENT, 1)), host(cfg(SERVER, 2))];
        let l = hosts[1].stack_mut().listen(now, SocketAddr::new(SERVER, 80), 4).unwrap();
        let c = hosts[0].stack_mut().connect(now, None, SocketAddr::new(SERVER, 80)).unwrap();
        let links = match &impairment {
            Some((cfg, seed)) => [Link::new(cfg.clone(), *seed), Link::new(cfg.clone(), seed ^ 0x9e37)],
            None => [Link::perfect(), Link::perfect()],
        };
        let impaired = impairment.is_some();
        let mut w = World { hosts, links, impaired, socks: [c, c], model: Default::default(), now };
        w.pump();
        // Over a lossy link the handshake may need SYN and SYN-ACK retransmissions (backing off
        // to a minute): wait up to 20 minutes of virtual time.
        let mut accepted = w.hosts[1].stack_mut().accept(w.now, l);
        for _ in 0..12_000 {
            if accepted.is_ok() {
                break;
            }
            w.advance(Duration::from_millis(100));
            accepted = w.hosts[1].stack_mut().accept(w.now, l);
        }
        let s = accepted.expect("the handshake completes");
        w.socks[1] = s;
        assert_eq!(w.state(0), Some(State::Established));
        assert_eq!(w.state(1), Some(State::Established));
        w
    }

    fn state(&self, side: usize) -> Option<State> {
        self.hosts[side].stack().state(self.socks[side])
    }

    /// Delivers everything both stacks send at the current instant until both are quiet.
    fn pump(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            for from in 0..2 {
                let (host, link) = (&mut self.hosts[from], &mut self.links[from]);
                host.set_now(self.now);
                moved |= host.transmit(link, &mut Trace(from)).expect("the host's bounds") > 0;
                while let Some(p) = self.links[from].poll_deliver(self.now) {
                    self.hosts[1 - from].receive(self.now, &p, &mut Quiet);
                    moved = true;
                }
            }
            for host in &mut self.hosts {
                host.report_events(&mut Quiet);
            }
            if !moved {
                return;
            }
        }
        panic!("the two stacks never go quiet at {}", self.now);
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let timers = self.hosts.iter().filter_map(Host::poll_timeout);
            let next = timers.chain(self.links.iter().filter_map(Link::next_delivery)).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for host in &mut self.hosts {
                        host.advance(self.now).expect("the host's bounds");
                    }
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
        self.pump();
    }

    fn call(&mut self, call: Call) {
        match call {
            Call::Send(s, n) => {
                let i = idx(s);
                let at = self.model[i].written.len();
                let data: Vec<u8> = (at..at + usize::from(n)).map(|o| stream_byte(i, o)).collect();
                match self.hosts[i].stack_mut().send(self.now, self.socks[i], &data) {
                    Ok(k) => {
                        assert!(!self.model[i].shut, "send after shutdown accepted");
                        assert!(k <= data.len());
                        self.model[i].written.extend_from_slice(&data[..k]);
                    }
                    Err(SendError::Closed) => {
                        assert!(self.model[i].shut, "send refused as closed before shutdown")
                    }
                    Err(SendError::WouldBlock) => {}
                    Err(e) => panic!("send on side {i}: {e:?}"),
                }
            }
            Call::Recv(s, n) => self.recv(idx(s), usize::from(n)),
            Call::Shutdown(s) => {
                let i = idx(s);
                let r = self.hosts[i].stack_mut().shutdown(self.now, self.socks[i]);
                assert!(r.is_ok() || self.model[i].shut, "shutdown on side {i}: {r:?}");
                self.model[i].shut = true;
                self.model[i].shut_at.get_or_insert(self.now);
            }
            Call::Advance(ms) => self.advance(Duration::from_millis(u64::from(ms))),
        }
        self.pump();
        self.check();
    }

    fn recv(&mut self, i: usize, max: usize) {
        let mut buf = vec![0; max];
        match self.hosts[i].stack_mut().recv(self.now, self.socks[i], &mut buf) {
            Ok(0) => {
                let peer = &self.model[1 - i];
                assert!(peer.shut, "side {i} read end of stream but the peer never shut down");
                assert_eq!(
                    self.model[i].read.len(),
                    peer.written.len(),
                    "side {i}: end of stream before all bytes"
                );
                self.model[i].eof = true;
            }
            Ok(n) => {
                assert!(!self.model[i].eof, "side {i} read data after end of stream");
                self.model[i].read.extend_from_slice(&buf[..n]);
            }
            Err(RecvError::WouldBlock) => {}
            Err(e) => panic!("recv on side {i}: {e:?}"),
        }
    }

    /// What the model asserts after every call.
    fn check(&self) {
        for i in 0..2 {
            let (me, peer) = (&self.model[i], &self.model[1 - i]);
            // Bytes read are the bytes the peer wrote, in order, none twice, none invented.
            assert!(
                peer.written.starts_with(&me.read),
                "side {i} read {} bytes that are not a prefix of the {} the peer wrote",
                me.read.len(),
                peer.written.len()
            );
            if let Err(v) = self.hosts[i].stack().check_invariants() {
                panic!("side {i}: {v}");
            }
            if self.impaired {
                continue; // states lag behind the calls when segments are lost or late
            }
            let st = self.state(i).expect("the handle stays valid until close");
            // RFC 9293 §3.3.2: which states each side can be in, given the calls made.
            let allowed: &[State] = match (me.shut, peer.shut) {
                (false, false) => &[State::Established],
                (false, true) => &[State::Established, State::CloseWait],
                (true, false) => &[State::FinWait1, State::FinWait2],
                (true, true) => &[
                    State::FinWait1,
                    State::FinWait2,
                    State::Closing,
                    State::LastAck,
                    State::TimeWait,
                    State::Closed,
                    State::CloseWait,
                    State::Established,
                ],
            };
            assert!(
                allowed.contains(&st),
                "side {i} in {st} with shut {} / peer shut {}",
                me.shut,
                peer.shut
            );
            if let Err(v) = self.hosts[i].stack().check_invariants() {
                panic!("side {i}: {v}");
            }
        }
    }

    /// Reads everything, shuts both sides down, lets time pass: both streams must arrive whole
    /// and in order, and both connections end (TIME-WAIT and CLOSED, then both CLOSED).
    fn finish(&mut self) {
        for round in 0..10_000 {
            for i in 0..2 {
                self.recv(i, 65536);
                if self.model[i].read.len() == self.model[1 - i].written.len() && !self.model[i].shut {
                    self.hosts[i].stack_mut().shutdown(self.now, self.socks[i]).unwrap();
                    self.model[i].shut = true;
                    self.model[i].shut_at = Some(self.now);
                }
            }
            self.pump();
            self.check();
            if self.model.iter().all(|m| m.eof) {
                break;
            }
            assert!(
                round < 9_999,
                "the streams never finish:\n{:?}\n{:?}\ntimers {:?} {:?}",
                self.hosts[0].stack().info(self.socks[0]),
                self.hosts[1].stack().info(self.socks[1]),
                self.hosts[0].stack().poll_timeout(),
                self.hosts[1].stack().poll_timeout()
            );
            self.advance(Duration::from_millis(200));
        }
        for i in 0..2 {
            assert_eq!(self.model[i].read, self.model[1 - i].written, "side {i}'s stream differs");
        }
        if self.impaired {
            // Lost FINs and ACKs are retransmitted: both ends get to CLOSED in the end.
            self.advance(Duration::from_secs(1200));
            assert_eq!([self.state(0), self.state(1)], [Some(State::Closed); 2], "long after both FINs");
            return;
        }
        // Let ACKs of the FINs go out. TIME-WAIT began no earlier than the second shutdown: short
        // of 2*MSL after it, one side (or both) still waits there.
        self.advance(Duration::from_millis(500));
        let states = [self.state(0).unwrap(), self.state(1).unwrap()];
        let second_fin = self.model.iter().filter_map(|m| m.shut_at).max().unwrap();
        assert!(
            states.iter().all(|s| matches!(s, State::TimeWait | State::Closed)),
            "after both FINs: {states:?}"
        );
        if self.now < second_fin + Duration::from_secs(2) {
            assert!(
                states.contains(&State::TimeWait),
                "no TIME-WAIT within 2*MSL of the last FIN: {states:?}"
            );
        }
        self.advance(Duration::from_secs(5));
        assert_eq!([self.state(0), self.state(1)], [Some(State::Closed); 2], "after 2*MSL");
        for i in 0..2 {
            self.hosts[i].stack_mut().close(self.now, self.socks[i]).unwrap();
        }
        self.pump();
        assert_eq!(
            [self.hosts[0].stack().connection_count(), self.hosts[1].stack().connection_count()],
            [0, 0]
        );
    }
}

/// The observer of side `.0`: traces what it sends.
struct Trace(usize);

impl Observer for Trace {
    fn packet_out(&mut self, now: Instant, datagram: &[u8]) {
        trace(now, self.0, datagram);
    }
}

/// With `UTCP_MODEL_TRACE` set, prints every datagram a side sends (to rerun a failing case).
fn trace(now: Instant, from: usize, p: &[u8]) {
    if std::env::var_os("UTCP_MODEL_TRACE").is_none() {
        return;
    }
    let mut line = format!("{now} {} ", ["client", "server"][from]);
    match parse_datagram(p, ChecksumMode::Verify) {
        Ok(d) => match d.transport {
            Transport::Tcp(t) => utcp_harness::transcript::format_segment(
                &mut line,
                utcp_harness::transcript::Direction::Out,
                &t,
                None,
                Default::default(),
            ),
            other => line += &format!("{other:?}"),
        },
        Err(e) => line += &e.to_string(),
    }
    eprintln!("{line}");
}

fn model_test(calls: &[Call], small: bool, impairment: Option<(LinkConfig, u64)>) {
    let mut w = World::new(small, impairment);
    for &c in calls {
        w.call(c);
    }
    w.finish();
}
