//! Two [`Host`]s joined by two impairment [`Link`]s on virtual time, in the style of
//! quinn-proto's test `Pair`.
//!
//! [`Pair::step`] jumps to the earliest wake-up (a stack timer or a datagram arriving) and
//! processes it; [`Pair::drive`] steps until both sides are idle. The application that moves
//! data across it is in [`crate::transfer`].
//!
//! Must not depend on: wall clocks, OS randomness, terminals (selftest and tests add those).

use crate::netsim::{Link, LinkConfig, SplitMix64};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use utcp::host::{Bounds, Host, Observer, Quiet};
use utcp::time::{Duration, Instant};
use utcp::{Config, Stack};

/// Address of stack A in a [`Pair`] built by [`Pair::with_links`].
pub const ADDR_A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// Address of stack B in a [`Pair`] built by [`Pair::with_links`].
pub const ADDR_B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// Which stack of the pair: A is the client (it connects), B the server (it listens).
pub use crate::side::Side;

/// Why driving the pair stopped before it was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairError {
    /// Virtual time of the failure.
    pub at: Instant,
    /// Steps taken until then.
    pub step: u64,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {} (step {}): {}", self.at, self.step, self.what)
    }
}

impl std::error::Error for PairError {}

/// Bounds on a run, so a stack that never settles fails instead of hanging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Virtual time after which the run fails.
    pub max_time: Duration,
    /// Steps after which the run fails.
    pub max_steps: u64,
    /// Check both stacks' invariants every this many steps (0: never).
    pub check_every: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_time: Duration::from_secs(3600), max_steps: 20_000_000, check_every: 1 }
    }
}

/// A callback seeing every datagram a stack sends: the time, the sender and the bytes.
pub type Trace = Box<dyn FnMut(Instant, Side, &[u8])>;

/// Two hosts, two links, one virtual clock: each host's [`utcp::host::Device`] is the link to the other.
pub struct Pair {
    /// The connecting host.
    pub a: Host,
    /// The listening host.
    pub b: Host,
    /// The link carrying A's datagrams to B.
    pub a_to_b: Link,
    /// The link carrying B's datagrams to A.
    pub b_to_a: Link,
    /// Steps taken.
    pub steps: u64,
    /// Invariants are checked every this many steps (0: never).
    pub check_every: u64,
    /// Called with every datagram a stack sends, before the link sees it (for transcripts).
    pub trace: Option<Trace>,
}

/// The [`Observer`] of one side of a pair: hands what it sends to the pair's [`Trace`].
struct Tracer<'t> {
    side: Side,
    trace: &'t mut Option<Trace>,
}

impl Observer for Tracer<'_> {
    fn packet_out(&mut self, now: Instant, datagram: &[u8]) {
        if let Some(trace) = self.trace {
            trace(now, self.side, datagram);
        }
    }
}

impl Pair {
    /// A pair of the given stacks and links, at time zero.
    pub fn new(a: Config, b: Config, a_to_b: Link, b_to_a: Link) -> Self {
        Pair {
            a: Host::new(Stack::new(a), Instant::ZERO, Bounds::default()),
            b: Host::new(Stack::new(b), Instant::ZERO, Bounds::default()),
            a_to_b,
            b_to_a,
            steps: 0,
            check_every: 1,
            trace: None,
        }
    }

    /// A pair with addresses [`ADDR_A`] and [`ADDR_B`], `base` as both stacks' configuration
    /// (ISN secrets derived from `seed`), and the same link settings both ways, seeded from `seed`.
    pub fn with_links(base: &Config, link: &LinkConfig, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut config = |addr| {
            let mut c = base.clone();
            c.addresses = vec![addr];
            let mut secret = [0u8; 16];
            rng.fill(&mut secret);
            c.isn_secret = secret;
            c
        };
        let (a, b) = (config(ADDR_A), config(ADDR_B));
        let (s1, s2) = (rng.next_u64(), rng.next_u64());
        Pair::new(a, b, Link::new(link.clone(), s1), Link::new(link.clone(), s2))
    }

    /// The virtual time now (both hosts have reached it).
    pub fn now(&self) -> Instant {
        self.a.now()
    }

    /// One of the two hosts.
    pub fn host(&mut self, side: Side) -> &mut Host {
        match side {
            Side::Client => &mut self.a,
            Side::Server => &mut self.b,
        }
    }

    /// One of the two stacks, for socket calls at [`Pair::now`].
    pub fn stack(&mut self, side: Side) -> &mut Stack {
        self.host(side).stack_mut()
    }

    /// Moves everything both stacks want to send onto the links (their events stay queued for
    /// the application).
    pub fn transmit(&mut self) -> Result<(), PairError> {
        let mut obs = Tracer { side: Side::Client, trace: &mut self.trace };
        let sent = self.a.transmit(&mut self.a_to_b, &mut obs);
        sent.map_err(|r| PairError { at: r.at, step: self.steps, what: format!("A: {r}") })?;
        let mut obs = Tracer { side: Side::Server, trace: &mut self.trace };
        let sent = self.b.transmit(&mut self.b_to_a, &mut obs);
        sent.map_err(|r| PairError { at: r.at, step: self.steps, what: format!("B: {r}") })?;
        Ok(())
    }

    /// The earliest time something happens: a stack timer or a datagram arriving.
    pub fn next_wakeup(&self) -> Option<Instant> {
        [
            self.a.poll_timeout(),
            self.b.poll_timeout(),
            self.a_to_b.next_delivery(),
            self.b_to_a.next_delivery(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Flushes both stacks' output, then jumps to the next wake-up and processes it: datagrams
    /// that have arrived are handed to their stack, then due timers run. Returns `false` when
    /// nothing is scheduled (both idle). Checks invariants every `check_every` steps.
    pub fn step(&mut self) -> Result<bool, PairError> {
        self.transmit()?;
        let Some(next) = self.next_wakeup() else {
            return Ok(false);
        };
        let now = self.now().max(next);
        self.a.set_now(now);
        self.b.set_now(now);
        self.steps += 1;
        while let Some(p) = self.a_to_b.poll_deliver(now) {
            self.b.receive(now, &p, &mut Quiet);
        }
        while let Some(p) = self.b_to_a.poll_deliver(now) {
            self.a.receive(now, &p, &mut Quiet);
        }
        for side in [Side::Client, Side::Server] {
            // One run at most: a stack handles every timer due by `now` in one timeout.
            let advanced = self.host(side).advance(now);
            advanced.map_err(|r| self.error(format!("{side}: {r}")))?;
        }
        if self.check_every > 0 && self.steps % self.check_every == 0 {
            self.check_invariants()?;
        }
        Ok(true)
    }

    /// Checks both stacks' invariants now.
    pub fn check_invariants(&self) -> Result<(), PairError> {
        for (side, host) in [(Side::Client, &self.a), (Side::Server, &self.b)] {
            let checked = host.stack().check_invariants();
            checked.map_err(|v| self.error(format!("invariant broken on {side}: {v}")))?;
        }
        Ok(())
    }

    /// Steps until both sides are idle, or fails when `limits` are exceeded.
    pub fn drive(&mut self, limits: &Limits) -> Result<(), PairError> {
        while self.step()? {
            self.check_limits(limits)?;
        }
        Ok(())
    }

    /// Fails when the virtual time or the step count exceeds `limits`.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), PairError> {
        if self.now() > Instant::ZERO + limits.max_time {
            return Err(self.error(format!("virtual time limit {} exceeded", limits.max_time)));
        }
        if self.steps > limits.max_steps {
            return Err(self.error(format!("step limit {} exceeded", limits.max_steps)));
        }
        Ok(())
    }

    /// An error stamped with the current time and step.
    pub fn error(&self, what: impl Into<String>) -> PairError {
        PairError { at: self.now(), step: self.steps, what: what.into() }
    }
}
