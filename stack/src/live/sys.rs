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

/// `struct ifreq` as TUNSETIFF reads it: the name and the flags (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens `/dev/net/tun` as a TUN device `name` with a virtio-net header on every datagram and
/// checksum and segmentation offload on (`IFF_VNET_HDR`, `TUNSETOFFLOAD` with `TUN_F_CSUM |
/// TUN_F_TSO4 | TUN_F_TSO6`, or the largest part of that the kernel takes), non-blocking.
/// Returns the descriptor and the device's name.
pub(crate) fn open_tun_offload(name: &str) -> io::Result<(OwnedFd, String)> {
    let file = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    let fd = OwnedFd::from(file);
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: 0, _pad: [0; 22] };
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("device name {name:?} is too long")));
    }
    req.name[..bytes.len()].copy_from_slice(bytes);
    req.flags = (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `req` is laid out as.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // What the device may hand over, the most first: a kernel that refuses a set (EINVAL) may
    // take a smaller one. Writing super-segments needs none of these (only IFF_VNET_HDR).
    let sets = [
        ("checksum, TSO4, TSO6", libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6),
        ("checksum, TSO4", libc::TUN_F_CSUM | libc::TUN_F_TSO4),
        ("checksum", libc::TUN_F_CSUM),
    ];
    let mut refused = None;
    for (what, offloads) in sets {
        // SAFETY: TUNSETOFFLOAD takes its flags by value.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, offloads as libc::c_ulong) } == 0 {
            if refused.is_some() {
                tracing::warn!(offloads = what, "the TUN device took only these receive offloads");
            }
            refused = None;
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
        refused = Some(e);
    }
    if let Some(e) = refused {
        return Err(e);
    }
    let mut nonblock: libc::c_int = 1;
    // SAFETY: FIONBIO reads one int.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONBIO, &mut nonblock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = req.name.iter().position(|&b| b == 0).unwrap_or(req.name.len());
    Ok((fd, String::from_utf8_lossy(&req.name[..end]).into_owned()))
}

/// Reads one datagram into `hdr` and `buf` with one `readv(2)`; the byte count includes `hdr`.
pub(crate) fn readv2(fd: RawFd, hdr: &mut [u8], buf: &mut [u8]) -> io::Result<usize> {
    let iov = [
        libc::iovec { iov_base: hdr.as_mut_ptr().cast(), iov_len: hdr.len() },
        libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() },
    ];
    // SAFETY: both iovecs point into live, writable buffers of the lengths given.
    let n = unsafe { libc::readv(fd, iov.as_ptr(), 2) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Writes `iov`, in order, as one datagram with one `writev(2)`.
pub(crate) fn writev(fd: RawFd, iov: &[std::io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix (std's guarantee), so
    // `iov` is a live array of `iov.len()` iovecs over buffers that outlive the call; writev
    // only reads them.
    let n = unsafe { libc::writev(fd, iov.as_ptr().cast(), iov.len() as libc::c_int) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
