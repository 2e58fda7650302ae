//! The system calls the live driver needs beyond what `std` and `tun-tap` give: `poll(2)` on the
//! device and a wake-up `eventfd(2)`, and 16 bytes of OS randomness for the ISN secret.
//!
//! Every `unsafe` block here is one system call on file descriptors this module owns.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An `eventfd(2)` that application threads write to wake the event loop out of `poll(2)`.
#[derive(Debug)]
pub(crate) struct WakeFd(OwnedFd);

impl WakeFd {
    pub(crate) fn new() -> io::Result<WakeFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(WakeFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the next (or current) `poll` return.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd. A full counter (EAGAIN)
        // means a wake-up is already pending, which is all we want.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears pending wake-ups.
    pub(crate) fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own non-blocking eventfd.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

impl AsRawFd for WakeFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Sleeps in `poll(2)` until `device` or `wake` is readable or `timeout_ms` passes (-1: no
/// timeout); returns whether `wake` was readable. An interrupted call (EINTR) returns as a
/// timeout.
pub(crate) fn poll2(device: RawFd, wake: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut fds = [
        libc::pollfd { fd: device, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: wake, events: libc::POLLIN, revents: 0 },
    ];
    // SAFETY: `fds` is a live array of two pollfd structs and its length is passed with it.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(fds[1].revents & libc::POLLIN != 0)
}

/// 16 bytes from the OS's random source, for the ISN secret (RFC 6528 §3).
pub(crate) fn random_secret() -> io::Result<[u8; 16]> {
    let mut secret = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut secret)?;
    Ok(secret)
}
