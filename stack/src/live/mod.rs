//! The live driver: the stack on a Linux TUN device, with the kernel (or anything routed through
//! the device) as its peer, and blocking [`TcpListener`]/[`TcpStream`] shaped like `std::net`.
//!
//! This is the [`Host`] drain loop of every other driver with a real clock and a [`Tun`] behind
//! it. One event-loop thread sleeps in `poll(2)` until a datagram arrives, the stack's next
//! timeout, or an application thread wakes it (an `eventfd`); then it runs the timers due and
//! sends what they produce, reads every waiting datagram (up to a batch), and drains what the
//! stack sends. Socket calls from application threads run under the same lock, after the timers
//! due (and their output) like a wake-up, and drain at once, so a `write` goes out without
//! waiting for the loop; they wake the loop only when they moved the next timeout earlier. Timers
//! always act before what comes later, as in a replay, which runs them at their deadlines.
//!
//! The only place in the crate with a real clock (`std::time::Instant`) and OS randomness.
//!
//! # Privileges
//!
//! Creating and configuring a TUN device needs CAP_NET_ADMIN in the network namespace it is made
//! in. Without root, two ways work:
//! - a user namespace with a network namespace of its own, `unshare -rn utcp live ...`: the user
//!   is root in there, the device and its addresses exist only in there (checked on Linux 6.18 as
//!   user `nobody`: ping and an echo over the device worked). It needs unprivileged user
//!   namespaces and a `/dev/net/tun` the user may open (mode 0666; where it is 0600, as on the
//!   machine of that check, root must open it up first);
//! - a persistent device made once by root for the user, `ip tuntap add dev utcp0 mode tun user
//!   NAME` plus its addresses: opening a device one owns needs no capability, so `utcp live` runs
//!   without `--configure` (checked: a process running as `nobody` served echo on such a device).

mod gso;
mod net;
mod sys;
mod tun;

pub use gso::GsoStats;
pub use net::{TcpListener, TcpStream};
pub use tun::{default_host_address, DeviceSetup, Tun};

use crate::host::{Bounds, Host, Observer};
use crate::stack::{Event, SocketHandle, Stack};
use crate::time::Instant;
use crate::Config;
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, SystemTime};

/// Datagrams read from the device in one wake-up before the stack's output is drained (and so
/// at most one ACK per this many segments of a bulk transfer). Measured with `utcp bench live
/// --only utcp,kernel --rounds 5` at MTU 1500 without offloads, alternating builds: 64 gave utcp
/// 6.71-6.96 Gbit/s (ratio to the kernel over veth 0.97-1.14), 128 gave 7.22-9.85 (1.19-1.61),
/// 256 no more than 128 (7.69-9.68).
const BATCH: usize = 128;

/// Which way a datagram crossed the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the device into utcp.
    In,
    /// From utcp out to the device.
    Out,
}

/// An application's call on a connection, as [`Tap::call`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A write of `asked` bytes took `taken` (more than 0).
    Write {
        /// Bytes offered.
        asked: usize,
        /// Bytes the stack took.
        taken: usize,
    },
    /// A read returned this many bytes (more than 0).
    Read(usize),
    /// `shutdown(Write)`.
    Shutdown,
    /// The last handle of the connection went: closed (a FIN, or a RST over unread data).
    Close,
}

/// Sees every datagram crossing the device, and the applications' calls, with the wall-clock
/// time (for a capture file that a replay can follow call by call).
pub trait Tap: Send {
    /// One datagram.
    fn packet(&mut self, at: SystemTime, dir: Direction, datagram: &[u8]);

    /// A call by the application on the connection `local` - `remote`, seen after what the stack
    /// sent before it and before what it makes the stack send.
    fn call(&mut self, at: SystemTime, local: SocketAddr, remote: SocketAddr, call: Call) {
        let _ = (at, local, remote, call);
    }

    /// The driver ran the stack's timers that were due (at least one), all at `at`; seen after
    /// what the stack sent before and before what the timers made it send.
    fn timers(&mut self, at: SystemTime) {
        let _ = at;
    }
}

/// What [`Live::open`] needs.
pub struct LiveConfig {
    /// The TUN device's name; empty lets the kernel choose (`tun0`, ...).
    pub device: String,
    /// The stack: its addresses are utcp's own. A zero ISN secret is replaced by 16 random bytes.
    pub stack: Config,
    /// Bring the device up with these settings, or leave it as it is.
    pub setup: Option<DeviceSetup>,
    /// Sees every datagram crossing the device.
    pub tap: Option<Box<dyn Tap>>,
    /// Open the device with offloads ([`Tun::open_offload`]): the kernel hands over TCP
    /// super-segments of up to 64 KiB with partial checksums, one read each. A tap then sees
    /// those super-segments, whose checksum fields hold only the pseudo-header sum.
    pub offload: bool,
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("device", &self.device)
            .field("stack", &self.stack)
            .field("setup", &self.setup)
            .field("tap", &self.tap.is_some())
            .field("offload", &self.offload)
            .finish()
    }
}

/// Counters of the driver itself (the stack's are [`Live::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Times the event loop woke from `poll(2)`.
    pub wakeups: u64,
    /// Datagrams read from the device.
    pub datagrams_in: u64,
    /// Datagrams written to the device.
    pub datagrams_out: u64,
    /// Datagrams the device refused.
    pub write_errors: u64,
    /// Super-segments written on a device with offloads, the segments they carried and those
    /// the device refused (see [`Tun`]); `datagrams_out` counts the segments one by one.
    pub gso: GsoStats,
}

/// The state shared by the event loop and the application threads, under one lock.
struct Inner {
    host: Host,
    tun: Tun,
    tap: Option<Box<dyn Tap>>,
    /// The wall-clock time of the stack's time zero: a tapped datagram's time is this plus the
    /// stack's time, so a capture carries exactly the clock the stack saw (and a strict replay
    /// meets timers and datagrams in the same order). A whole millisecond.
    wall_epoch: SystemTime,
    /// The deadline the event loop sleeps until (None: no timeout).
    loop_deadline: Option<Instant>,
    /// Sockets handed to the application and not yet closed, for [`Live::shutdown`].
    open: HashSet<SocketHandle>,
    stats: DriverStats,
}

/// The observer of the live host: taps datagrams and notes whether anything happened that a
/// blocked application thread may wait for.
struct LiveObserver<'a> {
    tap: &'a mut Option<Box<dyn Tap>>,
    /// `Inner::wall_epoch`. Every datagram handled in one turn carries the turn's time, so a
    /// capture shows the batches (and a strict replay can process them as one).
    wall_epoch: SystemTime,
    events: bool,
    out: u64,
}

impl Observer for LiveObserver<'_> {
    fn packet_in(&mut self, now: Instant, datagram: &[u8]) {
        if let Some(t) = self.tap.as_mut() {
            t.packet(wall_clock(self.wall_epoch, now), Direction::In, datagram);
        }
    }
    fn packet_out(&mut self, now: Instant, datagram: &[u8]) {
        self.out += 1;
        if let Some(t) = self.tap.as_mut() {
            t.packet(wall_clock(self.wall_epoch, now), Direction::Out, datagram);
        }
    }
    fn event(&mut self, _now: Instant, event: Event) {
        tracing::trace!(?event, "event");
        self.events = true;
    }
}

/// `t` rounded down to a whole millisecond since the Unix epoch.
fn whole_millisecond(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    t - StdDuration::from_nanos(u64::from(since.subsec_nanos() % 1_000_000))
}

/// The wall-clock time of the stack's instant `now`.
fn wall_clock(epoch: SystemTime, now: Instant) -> SystemTime {
    epoch + StdDuration::from_micros(now.total_micros())
}

impl Inner {
    /// Runs the timers due by `now`, at `now`; a tap sees that some ran.
    fn run_timers(&mut self, now: Instant) {
        match self.host.advance_counting(now) {
            Ok(0) => {}
            Ok(_) => {
                if let Some(t) = self.tap.as_mut() {
                    t.timers(wall_clock(self.wall_epoch, now));
                }
            }
            Err(e) => tracing::error!(error = %e, "stack runaway while running timers"),
        }
    }

    /// Drains the stack into the device; true when an event happened.
    fn drain(&mut self) -> bool {
        let Inner { host, tun, tap, wall_epoch, stats, .. } = self;
        let mut obs = LiveObserver { tap, wall_epoch: *wall_epoch, events: false, out: 0 };
        if let Err(e) = host.drain(tun, &mut obs) {
            tracing::error!(error = %e, "stack runaway while draining");
        }
        tun.flush();
        stats.datagrams_out += obs.out;
        stats.write_errors = tun.write_errors;
        stats.gso = tun.gso_stats();
        obs.events
    }
}

/// A socket call the tap sees: the socket, and what its result `R` says the application did.
type Tapped<'a, R> = Option<(SocketHandle, &'a dyn Fn(&R) -> Option<Call>)>;

/// Shared between [`Live`], its event loop and every socket.
struct Shared {
    inner: Mutex<Inner>,
    /// Notified whenever the stack reported an event: blocked calls check again.
    changed: Condvar,
    /// Threads waiting on `changed` (counted under the lock): a notification with nobody waiting
    /// would still cost a futex system call per turn.
    waiters: AtomicUsize,
    wake: sys::WakeFd,
    epoch: std::time::Instant,
    stop: AtomicBool,
}

impl Shared {
    /// The stack's time now: microseconds since the driver started.
    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another thread while it held the lock leaves the stack as consistent as
        // any single call leaves it; keep serving rather than poison every socket.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a socket call on the stack at the current time, sends what it produced at once, and
    /// wakes the event loop if the stack's next timeout moved earlier than the loop's.
    fn call<R>(&self, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        let mut g = self.lock();
        self.call_locked(&mut g, f)
    }

    fn call_locked<R>(&self, g: &mut MutexGuard<'_, Inner>, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        self.call_tapped(g, None, f)
    }

    /// [`Shared::call`] on `socket`; the tap sees the call that `call` makes of the result.
    fn call_on<R>(
        &self,
        socket: SocketHandle,
        f: impl FnOnce(&mut Stack, Instant) -> R,
        call: impl Fn(&R) -> Option<Call>,
    ) -> R {
        let mut g = self.lock();
        self.call_tapped(&mut g, Some((socket, &call)), f)
    }

    /// Runs `f` as [`Shared::call_locked`] does; a tap sees the call `tapped` makes of the
    /// result on its socket, before what the call sent.
    fn call_tapped<R>(
        &self,
        g: &mut MutexGuard<'_, Inner>,
        tapped: Tapped<'_, R>,
        f: impl FnOnce(&mut Stack, Instant) -> R,
    ) -> R {
        let now = self.now();
        // Timers the event loop has not run yet run first, and what they send goes out before
        // the call acts: a replay runs them before the call too (where the capture records the
        // run, or at their deadlines), and a tail loss probe due before a write resends old data
        // rather than the new.
        g.run_timers(now);
        let mut events = g.drain();
        // The ends are looked up before the call: a close may release the socket.
        let ends = tapped
            .filter(|_| g.tap.is_some())
            .and_then(|(s, what)| g.host.stack().info(s).map(|i| (i.local, i.remote, what)));
        let r = f(g.host.stack_mut(), now);
        if let Some((local, remote, what)) = ends {
            if let Some(call) = what(&r) {
                let at = wall_clock(g.wall_epoch, now);
                if let Some(t) = g.tap.as_mut() {
                    t.call(at, local, remote, call);
                }
            }
        }
        events |= g.drain();
        if events {
            self.notify();
        }
        let next = g.host.poll_timeout();
        if let Some(t) = next {
            if g.loop_deadline.is_none_or(|d| t < d) {
                g.loop_deadline = Some(t);
                self.wake.wake();
            }
        }
        r
    }

    /// Waits until the stack reports an event or `deadline` passes; false on timeout.
    fn wait<'a>(
        &'a self,
        g: MutexGuard<'a, Inner>,
        deadline: Option<std::time::Instant>,
    ) -> (MutexGuard<'a, Inner>, bool) {
        if self.stop.load(Ordering::Relaxed) {
            return (g, false);
        }
        let left = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return (g, false);
                }
                Some(left)
            }
        };
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let r = match left {
            None => (self.changed.wait(g).unwrap_or_else(|p| p.into_inner()), true),
            Some(left) => {
                let (g, r) = self.changed.wait_timeout(g, left).unwrap_or_else(|p| p.into_inner());
                (g, !r.timed_out())
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// Wakes every blocked call, if any waits. Waiters count themselves while holding the lock,
    /// and every state change happens under it, so a waiter either sees the change before it
    /// sleeps or is counted here.
    fn notify(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_all();
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn register(&self, socket: SocketHandle) {
        self.lock().open.insert(socket);
    }

    fn unregister(&self, socket: SocketHandle) {
        self.lock().open.remove(&socket);
    }

    /// Makes `attempt` on the stack at the current time until it gives a result, waiting for the
    /// stack's events in between, at most until `deadline` (then `timed_out()`).
    fn block<T>(
        &self,
        deadline: Option<std::time::Instant>,
        timed_out: impl Fn() -> io::Error,
        attempt: impl FnMut(&mut Stack, Instant) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        self.block_tapped(deadline, timed_out, None, attempt)
    }

    /// [`Shared::block`], the tap seeing the call `tapped` makes of the result.
    fn block_tapped<T>(
        &self,
        deadline: Option<std::time::Instant>,
        timed_out: impl Fn() -> io::Error,
        tapped: Tapped<'_, Option<io::Result<T>>>,
        mut attempt: impl FnMut(&mut Stack, Instant) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        let mut g = self.lock();
        loop {
            if let Some(r) = self.call_tapped(&mut g, tapped, &mut attempt) {
                return r;
            }
            if self.stopped() {
                return Err(net::stopped());
            }
            let (ng, woke) = self.wait(g, deadline);
            g = ng;
            if !woke && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(timed_out());
            }
        }
    }

    /// One pass of the event loop after `poll(2)` returned.
    fn turn(&self, buf: &mut [u8]) -> io::Result<()> {
        let mut g = self.lock();
        let now = self.now();
        g.stats.wakeups += 1;
        // Timers first, and what they send goes out before the datagrams are read: a replay
        // runs a timer at its deadline and sends its output then, before the datagrams that the
        // recording stamps with this later wake-up. Without this drain, ACKs read in the same
        // wake-up could cancel a tail loss probe that was due, and a strict replay of the
        // recording would send a probe the recording lacks.
        g.run_timers(now);
        let mut events = g.drain();
        for _ in 0..BATCH {
            let Some(r) = g.tun.recv(buf)? else { break };
            g.stats.datagrams_in += 1;
            let Inner { host, tap, wall_epoch, .. } = &mut *g;
            let mut obs = LiveObserver { tap, wall_epoch: *wall_epoch, events: false, out: 0 };
            if r.vouched {
                host.receive_unchecked(now, &buf[..r.len], &mut obs);
            } else {
                host.receive(now, &buf[..r.len], &mut obs);
            }
        }
        events |= g.drain();
        g.loop_deadline = g.host.poll_timeout();
        drop(g);
        if events {
            self.notify();
        }
        Ok(())
    }

    /// The event loop: until [`Live`] is dropped.
    fn run(self: Arc<Self>) {
        let mut buf = vec![0u8; 65536];
        let device = self.lock().tun.as_raw_fd();
        let wake = self.wake.as_raw_fd();
        while !self.stopped() {
            let timeout_ms = {
                let g = self.lock();
                match g.loop_deadline {
                    None => -1,
                    Some(t) => {
                        let now = self.now();
                        let us = t.saturating_duration_since(now).total_micros();
                        // Round up: waking a little late is fine, waking early spins.
                        us.div_ceil(1000).min(i32::MAX as u64) as i32
                    }
                }
            };
            match sys::poll2(device, wake, timeout_ms) {
                Ok(woken) => {
                    if woken {
                        self.wake.clear();
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "poll failed; event loop stops");
                    break;
                }
            }
            if self.stopped() {
                break;
            }
            if let Err(e) = self.turn(&mut buf) {
                tracing::error!(error = %e, "reading the TUN device failed; event loop stops");
                break;
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        self.changed.notify_all();
    }
}

/// utcp running on a TUN device: the event-loop thread and the stack it drives. Sockets made
/// from it ([`TcpListener::bind`], [`TcpStream::connect`]) work until it is dropped.
pub struct Live {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    device: String,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("device", &self.device).finish()
    }
}

impl Live {
    /// Opens the device, sets it up if asked, and starts the event loop.
    pub fn open(mut config: LiveConfig) -> io::Result<Live> {
        if config.stack.addresses.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "utcp needs at least one address"));
        }
        if config.stack.isn_secret == [0; 16] {
            config.stack.isn_secret = sys::random_secret()?;
        }
        let tun =
            if config.offload { Tun::open_offload(&config.device)? } else { Tun::open(&config.device)? };
        let device = tun.name().to_string();
        if let Some(setup) = &config.setup {
            setup.apply(&device)?;
        }
        tracing::info!(device, addresses = ?config.stack.addresses, mtu = config.stack.mtu, "utcp live");
        // The stack's clock and the capture's wall clock start together, at a whole millisecond
        // of the wall clock (less than 1 ms early), so that the stack's millisecond clocks (TS
        // values, whole-tick RTT samples) tick where the capture's do: a replay, whose clock is
        // the capture's, then sees the same ticks.
        let (epoch, wall_epoch) = (std::time::Instant::now(), whole_millisecond(SystemTime::now()));
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                host: Host::new(Stack::new(config.stack), Instant::ZERO, Bounds::default()),
                tun,
                tap: config.tap,
                wall_epoch,
                loop_deadline: None,
                open: HashSet::new(),
                stats: DriverStats::default(),
            }),
            changed: Condvar::new(),
            waiters: AtomicUsize::new(0),
            wake: sys::WakeFd::new()?,
            epoch,
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("utcp-live".into()).spawn(move || s.run())?;
        Ok(Live { shared, thread: Some(thread), device })
    }

    /// The TUN device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The stack's counters now.
    pub fn stats(&self) -> crate::Stats {
        self.shared.lock().host.stack().stats().clone()
    }

    /// The driver's counters now.
    pub fn driver_stats(&self) -> DriverStats {
        self.shared.lock().stats
    }

    /// Connections the stack still holds state for (TIME-WAIT included).
    pub fn connection_count(&self) -> usize {
        self.shared.lock().host.stack().connection_count()
    }

    /// Shuts down writing on every open socket (a FIN after the queued data) and waits, at most
    /// `timeout`, until every connection has sent its FIN and had it acknowledged or is gone.
    /// Returns the number of connections still not finished.
    pub fn shutdown(&self, timeout: StdDuration) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = self.shared.lock();
        let open: Vec<SocketHandle> = g.open.iter().copied().collect();
        self.shared.call_locked(&mut g, |stack, now| {
            for s in &open {
                let _ = stack.shutdown(now, *s);
            }
        });
        loop {
            let left = open
                .iter()
                .filter(|s| {
                    use crate::tcp::State::*;
                    matches!(
                        g.host.stack().state(**s),
                        Some(Established | CloseWait | FinWait1 | Closing | LastAck | SynSent | SynReceived)
                    )
                })
                .count();
            if left == 0 {
                return 0;
            }
            let (ng, woke) = self.shared.wait(g, Some(deadline));
            g = ng;
            if !woke && std::time::Instant::now() >= deadline {
                return left;
            }
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.wake();
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Sockets may outlive the driver (held by other threads); the tap must not: a capture
        // file is complete once `Live` is gone.
        let tap = self.shared.lock().tap.take();
        drop(tap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capture_clock_starts_at_a_whole_millisecond_less_than_one_early() {
        let t = SystemTime::UNIX_EPOCH + StdDuration::new(1_796_311_715, 240_719_123);
        let w = whole_millisecond(t);
        assert_eq!(
            w.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            StdDuration::new(1_796_311_715, 240_000_000)
        );
        assert_eq!(whole_millisecond(w), w);
    }
}
