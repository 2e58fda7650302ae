//! The real-time loop: a [`Relay`] on the wall clock between two datagram devices (the two TUN
//! devices of `utcp link`, or in tests any pair of non-blocking datagram sockets).
//!
//! One thread sleeps in `ppoll(2)` until a device is readable, the relay's next delivery is due,
//! or [`MAX_SLEEP`] passes (so a stop request is seen promptly); then it reads every waiting
//! datagram (each stamped with the clock when read, which is when it entered the link), and
//! writes every datagram that has become due to the device at its other end. No busy loop: with
//! nothing on the link it wakes every [`MAX_SLEEP`]. `ppoll` rather than `poll` for its
//! nanosecond timeout (at 1 Gbit/s a 1500-byte datagram takes 12 µs to serialise), and the
//! thread's timer slack is set to 1 ns so the kernel does not defer its wake-ups by the default
//! 50 µs.
//!
//! Must not depend on: namespaces or TUN devices by name (that is `tun`), the stack.

use super::{End, Relay, WallClock};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The longest the loop sleeps without looking at its stop flag.
pub const MAX_SLEEP: std::time::Duration = std::time::Duration::from_millis(50);
/// Datagrams read from one device in one wake-up before due datagrams are written again.
const BATCH: usize = 256;
/// Largest datagram read (a TUN device without offloads hands over at most its MTU).
const BUF: usize = 65_536;

/// A non-blocking device that carries whole datagrams, one per read or write.
pub trait Port: AsRawFd + Send {
    /// Reads one datagram; `WouldBlock` when none is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one datagram.
    fn send(&mut self, datagram: &[u8]) -> io::Result<usize>;
}

impl Port for tun_tap::Iface {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        tun_tap::Iface::recv(self, buf)
    }
    fn send(&mut self, datagram: &[u8]) -> io::Result<usize> {
        tun_tap::Iface::send(self, datagram)
    }
}

impl Port for UnixDatagram {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        UnixDatagram::recv(self, buf)
    }
    fn send(&mut self, datagram: &[u8]) -> io::Result<usize> {
        UnixDatagram::send(self, datagram)
    }
}

/// What the loop itself did (the link's own counters are in [`Relay::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LoopStats {
    /// Times `ppoll` returned.
    pub wakeups: u64,
    /// Datagrams read from A's device and from B's.
    pub read: [u64; 2],
    /// Writes to A's device and to B's that failed (the datagram is dropped; TCP recovers).
    pub write_errors: [u64; 2],
    /// Seconds the loop ran.
    pub seconds: f64,
}

/// Runs `relay` between `a` and `b` on `clock` until `stop` is set: datagrams read from `a`
/// enter the link at [`End::A`] and are written to `b` when due, and the other way round.
/// Returns on `stop` or on a read or poll error (a failed write is counted and dropped).
pub fn run(
    relay: &mut Relay,
    a: &mut dyn Port,
    b: &mut dyn Port,
    clock: WallClock,
    stop: &AtomicBool,
) -> io::Result<LoopStats> {
    set_timer_slack_ns(1);
    let started = std::time::Instant::now();
    let mut stats = LoopStats::default();
    let mut buf = vec![0u8; BUF];
    let ports: [&mut dyn Port; 2] = [a, b];
    loop {
        let now = clock.now();
        while let Some((to, datagram)) = relay.poll_deliver(now) {
            if let Err(e) = ports[to.index()].send(&datagram) {
                stats.write_errors[to.index()] += 1;
                tracing::debug!(error = %e, ?to, len = datagram.len(), "write failed; datagram dropped");
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let sleep = super::sleep_for(now, relay.poll_timeout(), MAX_SLEEP);
        let readable = ppoll2(ports[0].as_raw_fd(), ports[1].as_raw_fd(), sleep)?;
        stats.wakeups += 1;
        for from in [End::A, End::B] {
            if !readable[from.index()] {
                continue;
            }
            for _ in 0..BATCH {
                match ports[from.index()].recv(&mut buf) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{from:?}'s device closed"),
                        ))
                    }
                    Ok(n) => {
                        stats.read[from.index()] += 1;
                        relay.handle_datagram(clock.now(), from, buf[..n].to_vec());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io::Error::new(e.kind(), format!("read from {from:?}: {e}"))),
                }
            }
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// The relay on a thread of its own; [`Running::stop`] ends it and gives back what it did.
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<io::Result<(Relay, LoopStats)>>>,
}

/// What a stopped relay hands back.
#[derive(Debug)]
pub struct Finished {
    /// The relay, with its counters.
    pub relay: Relay,
    /// The loop's own counters.
    pub stats: LoopStats,
}

impl Running {
    /// Starts `relay` between `a` and `b` on a new thread, its clock starting now.
    pub fn start<P: Port + 'static, Q: Port + 'static>(
        mut relay: Relay,
        mut a: P,
        mut b: Q,
    ) -> io::Result<Running> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new().name("utcp-link".into()).spawn(move || {
            let stats = run(&mut relay, &mut a, &mut b, WallClock::start(), &flag)?;
            Ok((relay, stats))
        })?;
        Ok(Running { stop, handle: Some(handle) })
    }

    /// Whether the loop ended by itself (an error).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops the loop (within [`MAX_SLEEP`]) and returns the relay and the loop's counters.
    pub fn stop(mut self) -> Result<Finished, String> {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().ok_or("the link was already stopped")?;
        match handle.join() {
            Ok(Ok((relay, stats))) => Ok(Finished { relay, stats }),
            Ok(Err(e)) => Err(format!("the link stopped: {e}")),
            Err(p) => Err(format!("the link panicked: {}", crate::panic_message(p.as_ref()))),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Sleeps in `ppoll(2)` until `a` or `b` is readable or `timeout` passes; returns which are. An
/// interrupted call (EINTR) returns as a timeout.
fn ppoll2(a: RawFd, b: RawFd, timeout: std::time::Duration) -> io::Result<[bool; 2]> {
    let mut fds = [
        libc::pollfd { fd: a, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: b, events: libc::POLLIN, revents: 0 },
    ];
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `fds` is a live array of two pollfd structs with its length passed with it, `ts` a
    // live timespec, and a null signal mask leaves the mask as it is.
    let n = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok([false; 2]) } else { Err(e) };
    }
    let ready = |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
    Ok([ready(&fds[0]), ready(&fds[1])])
}

/// Sets this thread's timer slack (how much the kernel may defer its timed wake-ups).
fn set_timer_slack_ns(ns: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes its value by value and affects only the calling thread.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netsim::LinkConfig;
    use std::time::{Duration, Instant};
    use utcp::time::Duration as LinkDuration;

    /// A datagram socket pair: the device end (for the loop) and the host end (for the test).
    fn device() -> (UnixDatagram, UnixDatagram) {
        let (dev, host) = UnixDatagram::pair().expect("socketpair");
        dev.set_nonblocking(true).expect("non-blocking");
        host.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        (dev, host)
    }

    /// Receives up to `n` datagrams on `host`, each waited for at most the read timeout.
    fn receive(host: &UnixDatagram, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while got.len() < n {
            match host.recv(&mut buf) {
                Ok(len) => got.push(buf[..len].to_vec()),
                Err(_) => break,
            }
        }
        got
    }

    #[test]
    fn the_loop_carries_datagrams_both_ways_in_order_and_stops_when_asked() {
        let (dev_a, host_a) = device();
        let (dev_b, host_b) = device();
        let config = LinkConfig { delay: LinkDuration::from_millis(2), ..LinkConfig::default() };
        let running = Running::start(Relay::new(&config, 1), dev_a, dev_b).expect("start");
        for i in 0..50u8 {
            host_a.send(&[i; 100]).unwrap();
            host_b.send(&[i; 60]).unwrap();
        }
        let at_b = receive(&host_b, 50);
        let at_a = receive(&host_a, 50);
        let begin = Instant::now();
        let finished = running.stop().expect("stops cleanly");
        assert!(begin.elapsed() < Duration::from_secs(5), "stop took {:?}", begin.elapsed());
        assert_eq!(at_b, (0..50u8).map(|i| vec![i; 100]).collect::<Vec<_>>());
        assert_eq!(at_a, (0..50u8).map(|i| vec![i; 60]).collect::<Vec<_>>());
        let s = finished.relay.stats();
        assert_eq!((s.a_to_b.link.sent, s.a_to_b.link.delivered), (50, 50));
        assert_eq!((s.b_to_a.link.sent, s.b_to_a.link.delivered), (50, 50));
        assert_eq!(finished.stats.read, [50, 50]);
        assert_eq!(finished.stats.write_errors, [0, 0]);
    }

    #[test]
    fn the_loop_loses_what_the_seeded_link_loses() {
        let (dev_a, host_a) = device();
        let (dev_b, host_b) = device();
        host_b.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let config = LinkConfig { loss: 0.25, ..LinkConfig::default() };
        let running = Running::start(Relay::new(&config, 9), dev_a, dev_b).expect("start");
        for i in 0..200u8 {
            host_a.send(&[i; 40]).unwrap();
        }
        // Losses depend only on the order of the datagrams, not on timing.
        let mut expected = Relay::new(&config, 9);
        for i in 0..200u8 {
            expected.handle_datagram(utcp::Instant::ZERO, End::A, vec![i; 40]);
        }
        let want: Vec<Vec<u8>> =
            std::iter::from_fn(|| expected.poll_deliver(utcp::Instant::ZERO)).map(|(_, d)| d).collect();
        let got = receive(&host_b, want.len());
        let finished = running.stop().expect("stops cleanly");
        assert_eq!(got, want);
        assert_eq!(finished.relay.stats().a_to_b.link, expected.stats().a_to_b.link);
        assert!(finished.relay.stats().a_to_b.link.lost > 20);
        drop(host_a);
    }
}
