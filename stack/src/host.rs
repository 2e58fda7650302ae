//! The one driver: a [`Stack`] with its clock position and one set of runaway bounds.
//!
//! Everything that runs a stack runs it through a [`Host`]: the two-stack pair, replay, scripts,
//! the fuzz runner and the live TUN driver differ only in where datagrams come from and go to (a
//! [`Device`]) and which clock moves (virtual time, or `std::time::Instant` in `live/`). A host
//! injects datagrams ([`Host::receive`]), runs due timers ([`Host::advance`]), lets socket calls
//! happen at its current time ([`Host::now`]), and drains what the stack sends and reports
//! ([`Host::drain`]), telling one [`Observer`] about packets in and out, events and notes.
//!
//! A virtual-time driver that must see the stack at each timer's own deadline (replay, scripts,
//! the fuzz runner) steps timer by timer with [`Host::timers_until`] instead of [`Host::advance`].
//!
//! The loop every driver runs is the polling order written on [`Stack`]:
//!
//! ```text
//! loop {
//!     wait until a datagram arrives, host.poll_timeout() passes, or the application calls;
//!     for each datagram: host.receive(now, datagram, obs);
//!     host.advance(now)?;
//!     socket calls at host.now();
//!     host.drain(device, obs)?;
//! }
//! ```
//!
//! Must not depend on: clocks, I/O, threads, OS randomness (a [`Device`] brings the I/O).

use crate::stack::{Event, Stack};
use crate::time::Instant;
use std::collections::VecDeque;
use std::fmt;

/// Where the datagrams a stack sends go: a link to another host, a TUN device, a comparison.
pub trait Device {
    /// Sends one IP datagram at `now`. A device that cannot take it drops it (TCP retransmits).
    fn transmit(&mut self, now: Instant, datagram: &[u8]);
}

/// Someone watching a host: a transcript, a capture file, a fuzz invariant check.
pub trait Observer {
    /// A datagram given to the stack at `now`.
    fn packet_in(&mut self, _now: Instant, _datagram: &[u8]) {}
    /// A datagram the stack sent at `now`, before the device takes it.
    fn packet_out(&mut self, _now: Instant, _datagram: &[u8]) {}
    /// An event the stack reported at `now`.
    fn event(&mut self, _now: Instant, _event: Event) {}
    /// Something the driver did or saw at `now` that is not a packet: a socket call, a clock move.
    fn note(&mut self, _now: Instant, _text: fmt::Arguments<'_>) {}
}

/// A device that keeps what the stack sends, in order, for the driver to take and look at.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    /// The datagrams sent and not taken yet, with the time each was sent.
    pub sent: VecDeque<(Instant, Vec<u8>)>,
}

impl Device for Outbox {
    fn transmit(&mut self, now: Instant, datagram: &[u8]) {
        self.sent.push_back((now, datagram.to_vec()));
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// Bounds that turn a stack that never settles into an error instead of a hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Datagrams one [`Host::drain`] may send.
    pub max_datagrams_per_drain: usize,
    /// Timer runs one [`Host::advance`] may make.
    pub max_timer_runs_per_advance: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { max_datagrams_per_drain: 1 << 20, max_timer_runs_per_advance: 1 << 16 }
    }
}

/// A bound of [`Bounds`] was crossed: the stack kept sending or its timers kept firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runaway {
    /// The host's time when it happened.
    pub at: Instant,
    /// Which bound.
    pub what: RunawayKind,
    /// The bound's value.
    pub limit: usize,
}

/// Which bound a [`Runaway`] crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunawayKind {
    /// More datagrams in one drain than `max_datagrams_per_drain`.
    Datagrams,
    /// More timer runs in one advance than `max_timer_runs_per_advance`.
    TimerRuns,
}

impl fmt::Display for Runaway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.what {
            RunawayKind::Datagrams => {
                write!(f, "at {}: more than {} datagrams sent in one drain", self.at, self.limit)
            }
            RunawayKind::TimerRuns => {
                write!(f, "at {}: more than {} timer runs in one advance", self.at, self.limit)
            }
        }
    }
}

impl std::error::Error for Runaway {}

/// A stack, the time it has reached, and the buffer datagrams are emitted into.
pub struct Host {
    stack: Stack,
    now: Instant,
    bounds: Bounds,
    buf: Vec<u8>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host").field("stack", &self.stack).field("now", &self.now).finish()
    }
}

impl Host {
    /// A host for `stack`, starting at `now`.
    pub fn new(stack: Stack, now: Instant, bounds: Bounds) -> Self {
        let mtu = stack.config().mtu.max(1280);
        Host { stack, now, bounds, buf: vec![0; mtu] }
    }

    /// The time the host has reached: socket calls are made at this time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock forward to `now` (never backward) without running anything.
    pub fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// The stack, to read.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The stack, for socket calls (at [`Host::now`]).
    pub fn stack_mut(&mut self) -> &mut Stack {
        &mut self.stack
    }

    /// The host's bounds.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// The next time the stack wants [`Host::advance`] called, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.stack.poll_timeout()
    }

    /// One datagram in at `now` (the clock moves to it first).
    pub fn receive(&mut self, now: Instant, datagram: &[u8], obs: &mut impl Observer) {
        self.set_now(now);
        obs.packet_in(self.now, datagram);
        self.stack.handle_packet(self.now, datagram);
    }

    /// One datagram in at `now` whose checksums the device vouches for
    /// ([`Stack::handle_packet_unchecked`]).
    pub fn receive_unchecked(&mut self, now: Instant, datagram: &[u8], obs: &mut impl Observer) {
        self.set_now(now);
        obs.packet_in(self.now, datagram);
        self.stack.handle_packet_unchecked(self.now, datagram);
    }

    /// Moves the clock to `now` and runs every timer due by then.
    pub fn advance(&mut self, now: Instant) -> Result<(), Runaway> {
        self.advance_counting(now).map(|_| ())
    }

    /// [`Host::advance`], returning how many timers ran (all of them at `now`).
    pub fn advance_counting(&mut self, now: Instant) -> Result<usize, Runaway> {
        self.set_now(now);
        let mut runs = 0;
        while let Some(t) = self.stack.poll_timeout() {
            if t > self.now {
                break;
            }
            runs += 1;
            if runs > self.bounds.max_timer_runs_per_advance {
                return Err(Runaway {
                    at: self.now,
                    what: RunawayKind::TimerRuns,
                    limit: self.bounds.max_timer_runs_per_advance,
                });
            }
            self.stack.handle_timeout(self.now);
        }
        Ok(runs)
    }

    /// Starts running the timers due by `until` one at a time, each at its own deadline; see
    /// [`TimerRuns::run_next`]. The clock does not move until a timer runs.
    pub fn timers_until(&self, until: Instant) -> TimerRuns {
        TimerRuns { until, runs: 0 }
    }

    /// Sends everything the stack has to send now through `device` and reports its events;
    /// returns how many datagrams went out.
    pub fn drain(&mut self, device: &mut impl Device, obs: &mut impl Observer) -> Result<usize, Runaway> {
        let sent = self.transmit(device, obs)?;
        self.report_events(obs);
        Ok(sent)
    }

    /// Sends everything the stack has to send now through `device`, leaving its events queued;
    /// returns how many datagrams went out. [`Host::drain`] is this and [`Host::report_events`].
    pub fn transmit(&mut self, device: &mut impl Device, obs: &mut impl Observer) -> Result<usize, Runaway> {
        let mut sent = 0;
        while let Some(n) = self.stack.poll_transmit(self.now, &mut self.buf) {
            sent += 1;
            if sent > self.bounds.max_datagrams_per_drain {
                return Err(Runaway {
                    at: self.now,
                    what: RunawayKind::Datagrams,
                    limit: self.bounds.max_datagrams_per_drain,
                });
            }
            obs.packet_out(self.now, &self.buf[..n]);
            device.transmit(self.now, &self.buf[..n]);
        }
        Ok(sent)
    }

    /// Tells `obs` every event the stack has queued, in order.
    pub fn report_events(&mut self, obs: &mut impl Observer) {
        while let Some(ev) = self.stack.poll_event() {
            obs.event(self.now, ev);
        }
    }
}

/// Timer runs of one stepwise advance of a [`Host`], counted against
/// [`Bounds::max_timer_runs_per_advance`]; made by [`Host::timers_until`].
///
/// ```text
/// let mut timers = host.timers_until(end);
/// while timers.run_next(&mut host)?.is_some() {
///     host.drain(device, obs)?;   // and whatever the application does at that time
/// }
/// host.set_now(end);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TimerRuns {
    until: Instant,
    runs: usize,
}

impl TimerRuns {
    /// Runs the earliest timer if it is due by the end of this advance: the clock moves to its
    /// deadline (never backward) and the stack handles the timeout there. Returns the time it ran
    /// at, or `None` when no timer is due by then.
    pub fn run_next(&mut self, host: &mut Host) -> Result<Option<Instant>, Runaway> {
        let Some(at) = host.stack.poll_timeout().filter(|&t| t <= self.until) else {
            return Ok(None);
        };
        self.runs += 1;
        if self.runs > host.bounds.max_timer_runs_per_advance {
            return Err(Runaway {
                at: host.now,
                what: RunawayKind::TimerRuns,
                limit: host.bounds.max_timer_runs_per_advance,
            });
        }
        host.set_now(at);
        host.stack.handle_timeout(host.now);
        Ok(Some(host.now))
    }

    /// Timer runs made so far.
    pub fn runs(&self) -> usize {
        self.runs
    }
}
