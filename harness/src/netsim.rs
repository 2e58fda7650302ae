//! A seeded impairment link: one direction of a simulated path on virtual time.
//!
//! A datagram given to [`Link::send`] may be lost, dropped at a full queue, delayed (fixed delay,
//! jitter, serialisation at a rate limit), held back so that it arrives out of order, duplicated, or
//! have one bit flipped anywhere in it. Everything random comes from the link's own small PRNG
//! ([`SplitMix64`]) seeded by the caller, so a run is reproduced exactly by its seed and settings.
//!
//! Must not depend on: clocks (time comes in as `utcp::time::Instant`), OS randomness, the stack.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use utcp::host::Device;
use utcp::time::{Duration, Instant};

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, well-mixed generator for simulations.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `len` bytes of the stream (little-endian words), e.g. a test's reproducible payload.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (0 never, 1 always).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }

    /// A uniform integer in `[0, n)`; `n` must not be 0.
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the bias is below 2^-32 for the sizes used here.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let bytes = self.next_u64().to_le_bytes();
            let n = rest.len();
            rest.copy_from_slice(&bytes[..n]);
        }
    }
}

/// What a link does to the datagrams sent through it. The default is a perfect, instant link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is held back by `reorder_delay` (and so overtaken).
    pub reorder: f64,
    /// Extra delay of a held-back datagram.
    pub reorder_delay: Duration,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that one random bit of a datagram is flipped.
    pub corrupt: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]`; datagrams stay in order unless held back.
    pub jitter: Duration,
    /// Rate limit in bytes per second (serialisation delay); `None` is unlimited.
    pub rate: Option<u64>,
    /// Datagrams waiting for serialisation before new ones are dropped (drop-tail); `None` is
    /// unbounded. Only meaningful with a rate limit.
    pub queue_limit: Option<usize>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(5),
            duplicate: 0.0,
            corrupt: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate: None,
            queue_limit: None,
        }
    }
}

impl fmt::Display for LinkConfig {
    /// A short description naming only what differs from a perfect link, e.g.
    /// `loss 5% delay 10ms reorder 2%/5ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let pct = |p: f64| format!("{}%", (p * 1000.0).round() / 10.0);
        let ms = |d: Duration| format!("{}ms", d.total_micros() as f64 / 1000.0);
        if self.loss > 0.0 {
            parts.push(format!("loss {}", pct(self.loss)));
        }
        if self.reorder > 0.0 {
            parts.push(format!("reorder {}/{}", pct(self.reorder), ms(self.reorder_delay)));
        }
        if self.duplicate > 0.0 {
            parts.push(format!("duplicate {}", pct(self.duplicate)));
        }
        if self.corrupt > 0.0 {
            parts.push(format!("corrupt {}", pct(self.corrupt)));
        }
        if self.delay > Duration::ZERO {
            parts.push(format!("delay {}", ms(self.delay)));
        }
        if self.jitter > Duration::ZERO {
            parts.push(format!("jitter {}", ms(self.jitter)));
        }
        if let Some(rate) = self.rate {
            parts.push(format!("rate {}Mbit/s", rate as f64 * 8.0 / 1e6));
        }
        if let Some(limit) = self.queue_limit {
            parts.push(format!("queue {limit}"));
        }
        if parts.is_empty() {
            f.write_str("perfect")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

/// What a link did, counted per datagram.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStats {
    /// Datagrams given to `send`.
    pub sent: u64,
    /// Datagrams handed out by `poll_deliver` (duplicates included).
    pub delivered: u64,
    /// Bytes handed out by `poll_deliver`.
    pub bytes_delivered: u64,
    /// Datagrams lost at random.
    pub lost: u64,
    /// Datagrams dropped because the queue was full.
    pub queue_drops: u64,
    /// Datagrams held back to arrive out of order.
    pub reordered: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams with a bit flipped.
    pub corrupted: u64,
}

/// A datagram on its way, ordered by arrival time and then by the order it was scheduled in.
#[derive(Debug)]
struct InFlight {
    at: Instant,
    order: u64,
    data: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// One direction of a simulated path. Feed it with [`Link::send`], and take datagrams out with
/// [`Link::poll_deliver`] once [`Link::next_delivery`] has come.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    rng: SplitMix64,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    /// When each datagram still being serialised leaves the sender (for the queue limit).
    departures: VecDeque<Instant>,
    /// When the transmitter is free again (rate limit).
    tx_free: Instant,
    /// Latest arrival time of an in-order datagram: later in-order ones never arrive before it.
    last_in_order: Instant,
    order: u64,
    stats: LinkStats,
}

impl Link {
    /// A link doing what `config` says, with its randomness drawn from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Link {
            config,
            rng: SplitMix64::new(seed),
            in_flight: BinaryHeap::new(),
            departures: VecDeque::new(),
            tx_free: Instant::ZERO,
            last_in_order: Instant::ZERO,
            order: 0,
            stats: LinkStats::default(),
        }
    }

    /// A perfect link: no loss, no delay.
    pub fn perfect() -> Self {
        Link::new(LinkConfig::default(), 0)
    }

    /// The settings.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// What the link did so far.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Datagrams on their way.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Puts a datagram on the link at `now`.
    pub fn send(&mut self, now: Instant, mut packet: Vec<u8>) {
        self.stats.sent += 1;
        if self.rng.chance(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        // Drop-tail: datagrams whose serialisation has not finished by `now` are the queue.
        while self.departures.front().is_some_and(|&t| t <= now) {
            self.departures.pop_front();
        }
        if self.config.queue_limit.is_some_and(|limit| self.departures.len() >= limit) {
            self.stats.queue_drops += 1;
            return;
        }
        let departure = match self.config.rate {
            Some(rate) if rate > 0 => {
                let start = self.tx_free.max(now);
                let micros = (packet.len() as u64 * 1_000_000).div_ceil(rate);
                self.tx_free = start + Duration::from_micros(micros);
                self.departures.push_back(self.tx_free);
                self.tx_free
            }
            _ => now,
        };
        let copy = if self.rng.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            Some(packet.clone())
        } else {
            None
        };
        self.corrupt(&mut packet);
        self.schedule(departure, packet);
        if let Some(mut copy) = copy {
            self.corrupt(&mut copy);
            self.schedule(departure, copy);
        }
    }

    /// Flips one random bit with the configured probability.
    fn corrupt(&mut self, packet: &mut [u8]) {
        if !packet.is_empty() && self.rng.chance(self.config.corrupt) {
            let bit = self.rng.below(packet.len() as u64 * 8);
            packet[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
        }
    }

    /// Gives a datagram its arrival time and queues it.
    fn schedule(&mut self, departure: Instant, data: Vec<u8>) {
        let mut at = departure + self.config.delay;
        if self.config.jitter > Duration::ZERO {
            at += Duration::from_micros(self.rng.below(self.config.jitter.total_micros() + 1));
        }
        if self.rng.chance(self.config.reorder) {
            self.stats.reordered += 1;
            at += self.config.reorder_delay;
        } else {
            at = at.max(self.last_in_order);
            self.last_in_order = at;
        }
        self.order += 1;
        self.in_flight.push(Reverse(InFlight { at, order: self.order, data }));
    }

    /// When the next datagram arrives, if one is on its way.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse(p)| p.at)
    }

    /// The next datagram that has arrived by `now`, in arrival order.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_delivery()? > now {
            return None;
        }
        let Reverse(p) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        self.stats.bytes_delivered += p.data.len() as u64;
        Some(p.data)
    }
}

/// A host sending into a link puts each datagram on it.
impl Device for Link {
    fn transmit(&mut self, now: Instant, datagram: &[u8]) {
        self.send(now, datagram.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(i: u32) -> Vec<u8> {
        let mut p = i.to_be_bytes().to_vec();
        p.resize(100, 0xAA);
        p
    }

    fn number(p: &[u8]) -> u32 {
        u32::from_be_bytes(p[..4].try_into().unwrap())
    }

    /// Sends `n` numbered datagrams 100 µs apart and collects what arrives, with arrival times.
    fn run(config: LinkConfig, seed: u64, n: u32) -> (Vec<(Instant, Vec<u8>)>, LinkStats) {
        let mut link = Link::new(config, seed);
        let mut out = Vec::new();
        let mut now = Instant::ZERO;
        for i in 0..n {
            link.send(now, numbered(i));
            now += Duration::from_micros(100);
            while let Some(p) = link.poll_deliver(now) {
                out.push((now, p));
            }
        }
        while let Some(t) = link.next_delivery() {
            now = now.max(t);
            while let Some(p) = link.poll_deliver(now) {
                out.push((now, p));
            }
        }
        (out, link.stats().clone())
    }

    fn mixed() -> LinkConfig {
        LinkConfig {
            loss: 0.05,
            reorder: 0.05,
            duplicate: 0.05,
            corrupt: 0.05,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(2),
            rate: Some(1_000_000),
            queue_limit: Some(50),
            ..LinkConfig::default()
        }
    }

    #[test]
    fn same_seed_same_deliveries() {
        let a = run(mixed(), 42, 2_000);
        let b = run(mixed(), 42, 2_000);
        assert_eq!(a, b);
        let c = run(mixed(), 43, 2_000);
        assert_ne!(a.0, c.0, "a different seed should change what happens");
    }

    #[test]
    fn perfect_link_delivers_everything_at_once_in_order() {
        let mut link = Link::perfect();
        let t = Instant::from_millis(3);
        for i in 0..10 {
            link.send(t, numbered(i));
        }
        assert_eq!(link.next_delivery(), Some(t));
        let got: Vec<u32> = std::iter::from_fn(|| link.poll_deliver(t)).map(|p| number(&p)).collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert_eq!(link.next_delivery(), None);
    }

    #[test]
    fn loss_rate_is_close_to_configured_probability() {
        let (out, stats) = run(LinkConfig { loss: 0.10, ..LinkConfig::default() }, 7, 10_000);
        assert!((800..=1200).contains(&stats.lost), "lost {} of 10000 at 10%", stats.lost);
        assert_eq!(out.len() as u64, 10_000 - stats.lost);
    }

    #[test]
    fn without_reordering_order_is_preserved_even_with_jitter() {
        let config = LinkConfig {
            loss: 0.1,
            duplicate: 0.1,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(3),
            ..LinkConfig::default()
        };
        let (out, stats) = run(config, 3, 5_000);
        assert!(stats.duplicated > 0);
        let numbers: Vec<u32> = out.iter().map(|(_, p)| number(p)).collect();
        assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "out of order: {numbers:?}");
    }

    #[test]
    fn reordering_delivers_some_datagrams_late() {
        let config =
            LinkConfig { reorder: 0.1, reorder_delay: Duration::from_millis(1), ..LinkConfig::default() };
        let (out, stats) = run(config, 5, 5_000);
        assert_eq!(out.len(), 5_000, "reordering must not lose anything");
        assert!((400..=600).contains(&stats.reordered), "reordered {}", stats.reordered);
        let numbers: Vec<u32> = out.iter().map(|(_, p)| number(p)).collect();
        let inversions = numbers.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(inversions > 100, "only {inversions} inversions");
        let mut sorted = numbers.clone();
        sorted.sort();
        assert_eq!(sorted, (0..5_000).collect::<Vec<_>>());
    }

    #[test]
    fn duplication_delivers_extra_identical_copies() {
        let (out, stats) = run(LinkConfig { duplicate: 0.2, ..LinkConfig::default() }, 9, 5_000);
        assert!((800..=1200).contains(&stats.duplicated), "duplicated {}", stats.duplicated);
        assert_eq!(out.len() as u64, 5_000 + stats.duplicated);
        assert_eq!(stats.delivered, out.len() as u64);
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let (out, stats) = run(LinkConfig { corrupt: 1.0, ..LinkConfig::default() }, 11, 1_000);
        assert_eq!(stats.corrupted, 1_000);
        for (i, (_, p)) in out.iter().enumerate() {
            let original = numbered(i as u32);
            let flipped: u32 = p.iter().zip(&original).map(|(a, b)| (a ^ b).count_ones()).sum();
            assert_eq!(flipped, 1, "datagram {i}");
        }
    }

    #[test]
    fn delay_and_rate_set_arrival_time() {
        // 1000 bytes at 1 MB/s take 1 ms to serialise; then 10 ms of delay.
        let mut link = Link::new(
            LinkConfig { delay: Duration::from_millis(10), rate: Some(1_000_000), ..LinkConfig::default() },
            1,
        );
        link.send(Instant::ZERO, vec![0; 1000]);
        link.send(Instant::ZERO, vec![0; 1000]);
        assert_eq!(link.next_delivery(), Some(Instant::from_millis(11)));
        assert_eq!(link.poll_deliver(Instant::from_micros(10_999)), None);
        assert!(link.poll_deliver(Instant::from_millis(11)).is_some());
        assert_eq!(link.next_delivery(), Some(Instant::from_millis(12)));
    }

    #[test]
    fn full_queue_drops_instead_of_growing() {
        let mut link =
            Link::new(LinkConfig { rate: Some(1_000), queue_limit: Some(3), ..LinkConfig::default() }, 1);
        for _ in 0..10 {
            link.send(Instant::ZERO, vec![0; 100]);
        }
        assert_eq!(link.stats().queue_drops, 7);
        assert_eq!(link.in_flight(), 3);
        // Once the first datagram has been serialised (100 ms at 1000 B/s) there is room again.
        link.send(Instant::from_millis(100), vec![0; 100]);
        assert_eq!(link.stats().queue_drops, 7);
        assert_eq!(link.in_flight(), 4);
    }

    #[test]
    fn config_display_names_only_the_impairments() {
        assert_eq!(LinkConfig::default().to_string(), "perfect");
        let c = LinkConfig { loss: 0.05, delay: Duration::from_millis(10), ..LinkConfig::default() };
        assert_eq!(c.to_string(), "loss 5% delay 10ms");
    }
}
