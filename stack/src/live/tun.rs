//! The TUN device (through the `tun-tap` crate: TUN mode, no packet-information header, so
//! every read and write is one bare IP datagram) and its optional set-up with the `ip` command.
//!
//! Set-up uses iproute2's `ip` rather than a netlink crate: it is on every Linux machine that
//! has network namespaces, its errors are the ones administrators know, and the maintained
//! netlink crates (rtnetlink) bring an async runtime the driver does not otherwise need.

use super::gso::{layout, Batch, GsoStats, PLAIN, VNET_F_NEEDS_CSUM, VNET_HDR_LEN};
use crate::host::Device;
use crate::time::Instant;
use std::io::{self, IoSlice};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::Command;

/// A TUN device carrying IP datagrams: bare ones (the `tun-tap` crate), or, with offloads,
/// each behind a virtio-net header so the kernel can hand over whole TSO/GSO super-segments
/// (up to 64 KiB of one TCP connection in one read) with a partial checksum.
///
/// With offloads it also sends super-segments: consecutive full-sized segments of one
/// connection that the stack sends in one drain go out as one write (a TSO super-segment), which
/// the driver completes at the end of every drain.
#[derive(Debug)]
pub struct Tun {
    dev: Dev,
    /// Datagrams the device refused (counted, dropped: TCP retransmits).
    pub(crate) write_errors: u64,
}

#[derive(Debug)]
enum Dev {
    Plain(tun_tap::Iface),
    Offload {
        fd: OwnedFd,
        name: String,
        /// Segments held back for a super-segment.
        batch: Batch,
        /// Whether to send super-segments: until the kernel refuses one.
        tso: bool,
    },
}

/// One datagram read from the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Its length.
    pub(crate) len: usize,
    /// The device vouches for its checksums (a partial checksum from the local kernel).
    pub(crate) vouched: bool,
}

fn open_error(name: &str, e: io::Error) -> io::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => " (creating a TUN device needs root or CAP_NET_ADMIN)",
        Some(libc::ENOENT) | Some(libc::ENODEV) => " (/dev/net/tun is missing: load the tun module)",
        Some(libc::EBUSY) => " (the device is in use by another process)",
        Some(libc::EINVAL) => " (the device exists with other flags: delete it or pick another name)",
        _ => "",
    };
    io::Error::new(e.kind(), format!("cannot open TUN device {name:?}: {e}{hint}"))
}

impl Tun {
    /// Opens (creating if needed) the TUN device `name`; an empty name lets the kernel choose.
    pub fn open(name: &str) -> io::Result<Tun> {
        let iface =
            tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun).map_err(|e| open_error(name, e))?;
        iface.set_non_blocking()?;
        Ok(Tun { dev: Dev::Plain(iface), write_errors: 0 })
    }

    /// Opens the device with offloads: the kernel sends TCP super-segments of up to 64 KiB
    /// with partial checksums, which the stack takes as vouched for. `tun-tap` cannot set
    /// `IFF_VNET_HDR`, so this opens `/dev/net/tun` itself.
    pub fn open_offload(name: &str) -> io::Result<Tun> {
        let (fd, name) = super::sys::open_tun_offload(name).map_err(|e| open_error(name, e))?;
        Ok(Tun { dev: Dev::Offload { fd, name, batch: Batch::default(), tso: true }, write_errors: 0 })
    }

    /// The device's name (as the kernel chose it when none was given).
    pub fn name(&self) -> &str {
        match &self.dev {
            Dev::Plain(i) => i.name(),
            Dev::Offload { name, .. } => name,
        }
    }

    /// The super-segments sent so far (all zero on a device without offloads).
    pub fn gso_stats(&self) -> GsoStats {
        match &self.dev {
            Dev::Plain(_) => GsoStats::default(),
            Dev::Offload { batch, .. } => batch.stats,
        }
    }

    /// Writes the segments held back for a super-segment. The driver calls it after every drain.
    pub(crate) fn flush(&mut self) {
        let Dev::Offload { fd, batch, tso, .. } = &mut self.dev else { return };
        let (fd, before) = (fd.as_raw_fd(), self.write_errors);
        if let Err(e) = batch.flush(&mut self.write_errors, |iov| super::sys::writev(fd, iov)) {
            // The segments went out one by one; stop making super-segments only if the kernel
            // took those, so that it was the super-segment it refused, not the device.
            if self.write_errors == before {
                *tso = false;
                tracing::warn!(
                    error = %e,
                    "the TUN device refused a TSO super-segment; sending single segments from now on"
                );
            }
        }
    }

    /// Whether the device carries offloaded super-segments.
    pub fn offload(&self) -> bool {
        matches!(self.dev, Dev::Offload { .. })
    }

    /// Reads one datagram without blocking; `Ok(None)` when none is waiting.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let r = match &self.dev {
            Dev::Plain(i) => i.recv(buf).map(|len| Received { len, vouched: false }),
            Dev::Offload { fd, .. } => {
                let mut hdr = [0u8; VNET_HDR_LEN];
                super::sys::readv2(fd.as_raw_fd(), &mut hdr, buf).map(|n| Received {
                    len: n.saturating_sub(VNET_HDR_LEN),
                    vouched: hdr[0] & VNET_F_NEEDS_CSUM != 0,
                })
            }
        };
        match r {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        match &self.dev {
            Dev::Plain(i) => i.as_raw_fd(),
            Dev::Offload { fd, .. } => fd.as_raw_fd(),
        }
    }
}

impl Tun {
    /// Writes one datagram behind a zero virtio-net header: no segmentation, checksums complete.
    fn write_plain(&self, datagram: &[u8]) -> io::Result<usize> {
        match &self.dev {
            Dev::Plain(i) => i.send(datagram),
            Dev::Offload { fd, .. } => {
                super::sys::writev(fd.as_raw_fd(), &[IoSlice::new(&PLAIN), IoSlice::new(datagram)])
            }
        }
    }
}

impl Device for Tun {
    fn transmit(&mut self, _now: Instant, datagram: &[u8]) {
        let r = match &mut self.dev {
            Dev::Plain(i) => i.send(datagram),
            Dev::Offload { batch, tso: true, .. } => match layout(datagram) {
                Some(l) if batch.take(datagram, &l) => return,
                Some(l) => {
                    self.flush();
                    match &mut self.dev {
                        // Still batching (the flush may have found the kernel refusing them).
                        Dev::Offload { batch, tso: true, .. } => {
                            batch.start(datagram, &l);
                            return;
                        }
                        _ => self.write_plain(datagram),
                    }
                }
                None => {
                    self.flush();
                    self.write_plain(datagram)
                }
            },
            Dev::Offload { .. } => self.write_plain(datagram),
        };
        if let Err(e) = r {
            self.write_errors += 1;
            tracing::debug!(error = %e, len = datagram.len(), "TUN write failed; datagram dropped");
        }
    }
}

/// How to bring the device up: its MTU and the kernel side's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSetup {
    /// The device MTU (the stack's MTU should be the same).
    pub mtu: usize,
    /// Addresses given to the kernel's side of the device, with their prefix lengths.
    pub host_addresses: Vec<(IpAddr, u8)>,
}

impl DeviceSetup {
    /// Sets the MTU, adds the addresses and brings the link up, with `ip`.
    pub fn apply(&self, device: &str) -> io::Result<()> {
        ip(&["link", "set", "dev", device, "mtu", &self.mtu.to_string()])?;
        for (addr, prefix) in &self.host_addresses {
            let cidr = format!("{addr}/{prefix}");
            if addr.is_ipv6() {
                // No duplicate address detection: the address is usable at once.
                ip(&["-6", "addr", "add", &cidr, "dev", device, "nodad"])?;
            } else {
                ip(&["addr", "add", &cidr, "dev", device])?;
            }
        }
        ip(&["link", "set", "dev", device, "up"])
    }
}

/// Runs `ip ARGS`; an error quotes the command and what it printed, and names the privilege.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        io::Error::new(e.kind(), format!("cannot run `ip` (iproute2) to configure the device: {e}"))
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hint = if stderr.contains("Operation not permitted") {
        " (configuring a device needs root or CAP_NET_ADMIN)"
    } else {
        ""
    };
    let kind = if hint.is_empty() { io::ErrorKind::Other } else { io::ErrorKind::PermissionDenied };
    Err(io::Error::new(kind, format!("`ip {}` failed: {}{hint}", args.join(" "), stderr.trim())))
}

/// The kernel side's address for utcp's `addr/prefix` when none is given: the first host
/// address of the prefix that is not utcp's. `None` when the prefix has no other host address.
pub fn default_host_address(addr: IpAddr, prefix: u8) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(a) => {
            if prefix > 30 {
                return None;
            }
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            let net = u32::from(a) & mask;
            let first = net + 1;
            let pick = if first == u32::from(a) { first + 1 } else { first };
            Some(IpAddr::V4(pick.into()))
        }
        IpAddr::V6(a) => {
            if prefix > 126 {
                return None;
            }
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            let net = u128::from(a) & mask;
            let first = net + 1;
            let pick = if first == u128::from(a) { first + 1 } else { first };
            Some(IpAddr::V6(pick.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::default_host_address;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn host_address_is_the_first_of_the_prefix_that_is_not_utcps() {
        assert_eq!(default_host_address(ip("10.7.0.2"), 24), Some(ip("10.7.0.1")));
        assert_eq!(default_host_address(ip("10.7.0.1"), 24), Some(ip("10.7.0.2")));
        assert_eq!(default_host_address(ip("10.7.3.9"), 16), Some(ip("10.7.0.1")));
        assert_eq!(default_host_address(ip("fd00:7::2"), 64), Some(ip("fd00:7::1")));
        assert_eq!(default_host_address(ip("fd00:7::1"), 64), Some(ip("fd00:7::2")));
    }

    #[test]
    fn host_address_needs_room_in_the_prefix() {
        assert_eq!(default_host_address(ip("10.7.0.1"), 31), None);
        assert_eq!(default_host_address(ip("10.7.0.1"), 32), None);
        assert_eq!(default_host_address(ip("10.7.0.1"), 30), Some(ip("10.7.0.2")));
        assert_eq!(default_host_address(ip("fd00::1"), 127), None);
    }
}
