//! Two stacks joined by a simple deterministic lossy wire: every byte must arrive once and in
//! order, and both ends must reach CLOSED. The full seeded impairment matrix lives in the harness.
//! Each stack runs in a [`Host`] whose device is its wire to the other.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp::host::{Bounds, Device, Host, Quiet};
use utcp::{Config, Duration, Event, Instant, Stack};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn cfg(addr: IpAddr, secret: u8) -> Config {
    let mut c = Config::default().with_address(addr);
    c.isn_secret = [secret; 16];
    c.tcp.msl = Duration::from_secs(1);
    c
}

/// A tiny xorshift for which packets to drop.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One direction: drops `loss_per_mille` of the datagrams (drawn from the pair's one RNG) and
/// delivers the rest after a fixed delay, in order.
struct Wire<'r> {
    rng: &'r mut Rng,
    loss_per_mille: u64,
    delay: Duration,
    queue: &'r mut VecDeque<(Instant, Vec<u8>)>,
}

impl Device for Wire<'_> {
    fn transmit(&mut self, now: Instant, datagram: &[u8]) {
        if self.rng.next() % 1000 >= self.loss_per_mille {
            self.queue.push_back((now + self.delay, datagram.to_vec()));
        }
    }
}

fn transfer(bytes: usize, loss_per_mille: u64, seed: u64) {
    let mut now = Instant::from_secs(1);
    let mut host_a = Host::new(Stack::new(cfg(A, 1)), now, Bounds::default());
    let mut host_b = Host::new(Stack::new(cfg(B, 2)), now, Bounds::default());
    let l = host_b.stack_mut().listen(now, SocketAddr::new(B, 80), 8).unwrap();
    let ca = host_a.stack_mut().connect(now, None, SocketAddr::new(B, 80)).unwrap();
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::with_capacity(bytes);
    let mut cb = None;
    let mut rng = Rng(seed | 1);
    let delay = Duration::from_millis(5);
    let mut wire_ab: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut wire_ba: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut a_closed = false;
    let mut b_closed = false;
    for step in 0..5_000_000u64 {
        let (a, b) = (host_a.stack_mut(), host_b.stack_mut());
        // Application work.
        if sent < data.len() {
            if let Ok(n) = a.send(now, ca, &data[sent..]) {
                sent += n;
            }
        } else if !a_closed {
            a.close(now, ca).unwrap();
            a_closed = true;
        }
        while let Some(ev) = b.poll_event() {
            if let Event::Acceptable(_) = ev {
                cb = Some(b.accept(now, l).unwrap());
            }
        }
        while a.poll_event().is_some() {}
        if let Some(h) = cb {
            let mut buf = [0u8; 65536];
            loop {
                match b.recv(now, h, &mut buf) {
                    Ok(0) => {
                        if !b_closed {
                            b.close(now, h).unwrap();
                            b_closed = true;
                        }
                        break;
                    }
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
        }
        // Transmit.
        let mut wire = Wire { rng: &mut rng, loss_per_mille, delay, queue: &mut wire_ab };
        host_a.transmit(&mut wire, &mut Quiet).unwrap();
        let mut wire = Wire { rng: &mut rng, loss_per_mille, delay, queue: &mut wire_ba };
        host_b.transmit(&mut wire, &mut Quiet).unwrap();
        let (a, b) = (host_a.stack(), host_b.stack());
        if b_closed && a.connection_count() == 0 && b.connection_count() == 0 {
            assert_eq!(got.len(), data.len());
            assert!(got == data, "data differs");
            a.check_invariants().unwrap();
            return;
        }
        // Next event: a delivery or a timer.
        let next = [
            wire_ab.front().map(|x| x.0),
            wire_ba.front().map(|x| x.0),
            host_a.poll_timeout(),
            host_b.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| panic!("deadlock at step {step}: sent {sent} got {} seed {seed}", got.len()));
        now = now.max(next);
        while wire_ab.front().is_some_and(|x| x.0 <= now) {
            let (_, p) = wire_ab.pop_front().unwrap();
            host_b.receive(now, &p, &mut Quiet);
        }
        while wire_ba.front().is_some_and(|x| x.0 <= now) {
            let (_, p) = wire_ba.pop_front().unwrap();
            host_a.receive(now, &p, &mut Quiet);
        }
        host_a.advance(now).unwrap();
        host_b.advance(now).unwrap();
        host_a.stack().check_invariants().unwrap_or_else(|e| panic!("a: {e} (seed {seed})"));
        host_b.stack().check_invariants().unwrap_or_else(|e| panic!("b: {e} (seed {seed})"));
    }
    panic!(
        "did not finish: sent {sent} got {} a={} b={} seed {seed}",
        got.len(),
        host_a.stack().connection_count(),
        host_b.stack().connection_count()
    );
}

#[test]
fn one_mebibyte_arrives_intact_without_loss() {
    transfer(1 << 20, 0, 1);
}

#[test]
fn one_mebibyte_arrives_intact_with_five_percent_loss() {
    transfer(1 << 20, 50, 2);
}

#[test]
fn one_mebibyte_arrives_intact_with_twenty_percent_loss() {
    transfer(1 << 20, 200, 3);
}
