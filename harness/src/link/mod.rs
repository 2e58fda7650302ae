//! `utcp link`: the seeded impairment link of the selftest ([`crate::netsim::Link`], configured by
//! the same [`LinkConfig`]) run in real time between two TUN devices, so that the kernel's own
//! TCP on one side talks to the kernel's TCP on the other through exactly the loss, delay, rate,
//! queue and reordering that utcp's selftest simulates: a user-space netem.
//!
//! The module is in three parts:
//! - here, [`Relay`]: both directions of the link, sans-IO. Datagrams go in with
//!   [`Relay::handle_datagram`] at the time they were read, come out with [`Relay::poll_deliver`]
//!   once due, and [`Relay::poll_timeout`] says when the next one is; it also measures how late
//!   each datagram was handed out, which tells whether the real-time loop kept up. With no I/O
//!   and no clock it is tested on exact times.
//! - [`realtime`] (Linux): the loop that drives a `Relay` on the wall clock between two datagram
//!   devices, sleeping in `ppoll(2)` until a device is readable or the next delivery is due.
//! - [`tun`] (Linux): the two network namespaces with a TUN device each, the addresses and
//!   routes in them, and their removal on every exit path.
//!
//! Must not depend on: the stack, terminals or argument parsing (that is `cli::link`).

#[cfg(target_os = "linux")]
pub mod realtime;
#[cfg(target_os = "linux")]
pub mod tun;

use crate::netsim::{Link, LinkConfig, LinkStats, SplitMix64};
use serde::Serialize;
use utcp::time::{Duration, Instant};

/// One end of the link: namespace A's device or namespace B's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum End {
    /// Namespace A's side.
    A,
    /// Namespace B's side.
    B,
}

impl End {
    /// The end a datagram entering here leaves from.
    pub fn other(self) -> End {
        match self {
            End::A => End::B,
            End::B => End::A,
        }
    }

    /// 0 for A, 1 for B, to index a pair.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How late datagrams were handed out compared with when the link said they were due: the
/// real-time loop's scheduling error (zero on virtual time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Lateness {
    /// Datagrams handed out.
    pub deliveries: u64,
    /// Sum of their lateness, microseconds.
    pub total_us: u64,
    /// The largest lateness, microseconds.
    pub max_us: u64,
    /// Datagrams handed out more than [`Lateness::LATE`] after they were due.
    pub late: u64,
}

impl Lateness {
    /// A datagram handed out later than this after it was due counts as late.
    pub const LATE: Duration = Duration::from_millis(1);

    fn record(&mut self, late: Duration) {
        let us = late.total_micros();
        self.deliveries += 1;
        self.total_us += us;
        self.max_us = self.max_us.max(us);
        if late > Self::LATE {
            self.late += 1;
        }
    }

    /// Mean lateness, microseconds (0 with no deliveries).
    pub fn mean_us(&self) -> f64 {
        if self.deliveries == 0 {
            0.0
        } else {
            self.total_us as f64 / self.deliveries as f64
        }
    }
}

/// What one direction of the link did: the link's own counters and the delivery lateness.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirectionStats {
    /// The seeded link's counters (sent, lost, queue drops, delivered, ...).
    #[serde(flatten)]
    pub link: LinkStats,
    /// How late its datagrams were handed out.
    pub lateness: Lateness,
}

/// What both directions did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// From A's device to B's.
    pub a_to_b: DirectionStats,
    /// From B's device to A's.
    pub b_to_a: DirectionStats,
}

/// Both directions of the seeded impairment link, on whatever clock the caller passes in.
#[derive(Debug)]
pub struct Relay {
    a_to_b: Link,
    b_to_a: Link,
    lateness: [Lateness; 2],
}

/// The seeds of the two directions for a selftest seed: what `Pair::with_links` gives its links
/// (it draws the two stacks' 16-byte ISN secrets from the same generator first), so that
/// `utcp link --seed S` runs the links of `utcp selftest --seed S`.
pub fn link_seeds(seed: u64) -> (u64, u64) {
    let mut rng = SplitMix64::new(seed);
    let mut secrets = [0u8; 32];
    rng.fill(&mut secrets);
    (rng.next_u64(), rng.next_u64())
}

impl Relay {
    /// Both directions configured by `config`, seeded as the selftest's links for `seed`.
    pub fn new(config: &LinkConfig, seed: u64) -> Relay {
        let (s1, s2) = link_seeds(seed);
        Relay {
            a_to_b: Link::new(config.clone(), s1),
            b_to_a: Link::new(config.clone(), s2),
            lateness: [Lateness::default(); 2],
        }
    }

    /// The settings (the same both ways).
    pub fn config(&self) -> &LinkConfig {
        self.a_to_b.config()
    }

    /// A datagram read from `from`'s device at `now`; it leaves from the other end when due.
    pub fn handle_datagram(&mut self, now: Instant, from: End, datagram: Vec<u8>) {
        match from {
            End::A => self.a_to_b.send(now, datagram),
            End::B => self.b_to_a.send(now, datagram),
        }
    }

    /// When the next datagram is due at either end; call [`Relay::poll_deliver`] then.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.a_to_b.next_delivery(), self.b_to_a.next_delivery()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram due by `now` and the end it leaves from, the earliest due first (A to
    /// B first on a tie). Call until `None` whenever time has moved.
    #[must_use]
    pub fn poll_deliver(&mut self, now: Instant) -> Option<(End, Vec<u8>)> {
        let due_ab = self.a_to_b.next_delivery().filter(|&t| t <= now);
        let due_ba = self.b_to_a.next_delivery().filter(|&t| t <= now);
        let (to, due) = match (due_ab, due_ba) {
            (Some(a), Some(b)) if b < a => (End::A, b),
            (Some(a), _) => (End::B, a),
            (None, Some(b)) => (End::A, b),
            (None, None) => return None,
        };
        let link = match to {
            End::B => &mut self.a_to_b,
            End::A => &mut self.b_to_a,
        };
        let datagram = link.poll_deliver(now)?;
        self.lateness[to.other().index()].record(now - due);
        Some((to, datagram))
    }

    /// Datagrams on their way, both directions.
    pub fn in_flight(&self) -> usize {
        self.a_to_b.in_flight() + self.b_to_a.in_flight()
    }

    /// What the link did so far.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            a_to_b: DirectionStats { link: self.a_to_b.stats().clone(), lateness: self.lateness[0] },
            b_to_a: DirectionStats { link: self.b_to_a.stats().clone(), lateness: self.lateness[1] },
        }
    }
}

/// How long a real-time loop at `now` may sleep: until `deadline`, at most `cap`, never
/// negative. Rounded up to the microsecond the link's clock counts in, so a sleep never ends
/// just before a delivery is due.
pub fn sleep_for(now: Instant, deadline: Option<Instant>, cap: std::time::Duration) -> std::time::Duration {
    match deadline {
        None => cap,
        Some(t) if t <= now => std::time::Duration::ZERO,
        Some(t) => std::time::Duration::from_micros((t - now).total_micros()).min(cap),
    }
}

/// The wall clock as the link's microsecond [`Instant`]: time since an epoch taken at start.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    epoch: std::time::Instant,
}

impl WallClock {
    /// A clock whose zero is now.
    pub fn start() -> WallClock {
        WallClock { epoch: std::time::Instant::now() }
    }

    /// Now, on the link's clock.
    pub fn now(&self) -> Instant {
        self.at(std::time::Instant::now())
    }

    /// A wall-clock instant on the link's clock (zero before the epoch).
    pub fn at(&self, t: std::time::Instant) -> Instant {
        let us = t.saturating_duration_since(self.epoch).as_micros();
        Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::Pair;

    fn datagram(tag: u8, len: usize) -> Vec<u8> {
        let mut d = vec![0xAB; len];
        d[0] = tag;
        d
    }

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    /// Everything `relay` hands out at exactly `now`: (end, first byte) in order.
    fn out_at(relay: &mut Relay, now: Instant) -> Vec<(End, u8)> {
        std::iter::from_fn(|| relay.poll_deliver(now)).map(|(end, d)| (end, d[0])).collect()
    }

    #[test]
    fn each_direction_delivers_after_the_delay_at_the_other_end() {
        let config = LinkConfig { delay: Duration::from_millis(10), ..LinkConfig::default() };
        let mut relay = Relay::new(&config, 1);
        relay.handle_datagram(ms(0), End::A, datagram(1, 100));
        relay.handle_datagram(ms(1), End::B, datagram(2, 100));
        assert_eq!(relay.poll_timeout(), Some(ms(10)));
        assert_eq!(out_at(&mut relay, ms(10) - Duration::from_micros(1)), vec![]);
        assert_eq!(out_at(&mut relay, ms(10)), vec![(End::B, 1)]);
        assert_eq!(relay.poll_timeout(), Some(ms(11)));
        assert_eq!(out_at(&mut relay, ms(11)), vec![(End::A, 2)]);
        assert_eq!(relay.poll_timeout(), None);
        let s = relay.stats();
        assert_eq!((s.a_to_b.link.delivered, s.b_to_a.link.delivered), (1, 1));
        assert_eq!(s.a_to_b.lateness, Lateness { deliveries: 1, total_us: 0, max_us: 0, late: 0 });
    }

    #[test]
    fn a_late_poll_hands_out_both_directions_in_due_order_and_counts_the_lateness() {
        let config = LinkConfig { delay: Duration::from_millis(10), ..LinkConfig::default() };
        let mut relay = Relay::new(&config, 1);
        relay.handle_datagram(ms(2), End::B, datagram(1, 60));
        relay.handle_datagram(ms(3), End::A, datagram(2, 60));
        relay.handle_datagram(ms(4), End::B, datagram(3, 60));
        // The loop wakes 3 ms after the first was due.
        assert_eq!(out_at(&mut relay, ms(15)), vec![(End::A, 1), (End::B, 2), (End::A, 3)]);
        let s = relay.stats();
        assert_eq!(s.b_to_a.lateness, Lateness { deliveries: 2, total_us: 4_000, max_us: 3_000, late: 1 });
        assert_eq!(s.a_to_b.lateness, Lateness { deliveries: 1, total_us: 2_000, max_us: 2_000, late: 1 });
        assert_eq!(s.b_to_a.lateness.mean_us(), 2_000.0);
    }

    #[test]
    fn the_rate_serialises_and_a_full_queue_drops_the_tail() {
        // 1000-byte datagrams at 1 MB/s take 1 ms each; two may wait.
        let config = LinkConfig {
            delay: Duration::from_millis(5),
            rate: Some(1_000_000),
            queue_limit: Some(2),
            ..LinkConfig::default()
        };
        let mut relay = Relay::new(&config, 1);
        for tag in 1..=4 {
            relay.handle_datagram(ms(0), End::A, datagram(tag, 1000));
        }
        assert_eq!(out_at(&mut relay, ms(5)), vec![]);
        assert_eq!(out_at(&mut relay, ms(6)), vec![(End::B, 1)]);
        assert_eq!(out_at(&mut relay, ms(7)), vec![(End::B, 2)]);
        assert_eq!(relay.poll_timeout(), None);
        // By 8 ms both have left the queue, so the next one fits and leaves at once.
        relay.handle_datagram(ms(8), End::A, datagram(5, 1000));
        assert_eq!(out_at(&mut relay, ms(14)), vec![(End::B, 5)]);
        let s = relay.stats().a_to_b.link;
        assert_eq!((s.sent, s.queue_drops, s.delivered, s.bytes_delivered), (5, 2, 3, 3000));
    }

    #[test]
    fn a_reordered_datagram_is_overtaken() {
        let config = LinkConfig {
            delay: Duration::from_millis(10),
            reorder: 1.0,
            reorder_delay: Duration::from_millis(5),
            ..LinkConfig::default()
        };
        let mut relay = Relay::new(&config, 1);
        relay.handle_datagram(ms(0), End::A, datagram(1, 100));
        assert_eq!(relay.poll_timeout(), Some(ms(15)));
        assert_eq!(relay.stats().a_to_b.link.reordered, 1);
    }

    #[test]
    fn losses_are_those_of_the_selftest_links_for_the_same_seed() {
        let config = LinkConfig { loss: 0.3, delay: Duration::from_millis(1), ..LinkConfig::default() };
        let pair = Pair::with_links(&utcp::Config::default(), &config, 7);
        let (mut ab, mut ba) = (pair.a_to_b, pair.b_to_a);
        let mut relay = Relay::new(&config, 7);
        let mut expected = Vec::new();
        for i in 0..200u8 {
            let now = Instant::from_micros(u64::from(i) * 10);
            ab.send(now, datagram(i, 40));
            ba.send(now, datagram(i, 40));
            relay.handle_datagram(now, End::A, datagram(i, 40));
            relay.handle_datagram(now, End::B, datagram(i, 40));
        }
        let end = ms(10);
        while let Some(d) = ab.poll_deliver(end) {
            expected.push((End::B, d[0]));
        }
        let mut got = out_at(&mut relay, end);
        while let Some(d) = ba.poll_deliver(end) {
            expected.push((End::A, d[0]));
        }
        got.sort_by_key(|&(end, tag)| (end == End::A, tag));
        assert_eq!(got, expected);
        assert_eq!(relay.stats().a_to_b.link, *ab.stats());
        assert_eq!(relay.stats().b_to_a.link, *ba.stats());
        assert!(ab.stats().lost > 20 && ba.stats().lost > 20, "30 % of 200 should be lost");
    }

    #[test]
    fn sleep_is_until_the_next_delivery_and_capped() {
        let cap = std::time::Duration::from_millis(50);
        assert_eq!(sleep_for(ms(5), None, cap), cap);
        assert_eq!(sleep_for(ms(5), Some(ms(4)), cap), std::time::Duration::ZERO);
        assert_eq!(sleep_for(ms(5), Some(ms(5)), cap), std::time::Duration::ZERO);
        let t = ms(5) + Duration::from_micros(1_234);
        assert_eq!(sleep_for(ms(5), Some(t), cap), std::time::Duration::from_micros(1_234));
        assert_eq!(sleep_for(ms(5), Some(ms(500)), cap), cap);
    }

    #[test]
    fn the_wall_clock_counts_microseconds_from_its_start() {
        let clock = WallClock::start();
        let later = clock.epoch + std::time::Duration::from_micros(2_500);
        assert_eq!(clock.at(later), Instant::from_micros(2_500));
        assert_eq!(clock.at(clock.epoch), Instant::ZERO);
        assert!(clock.now() >= Instant::ZERO);
    }
}
