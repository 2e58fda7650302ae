//! The TUN device (through the `tun-tap` crate: TUN mode, no packet-information header, so
//! every read and write is one bare IP datagram) and its optional set-up with the `ip` command.
//!
//! Set-up uses iproute2's `ip` rather than a netlink crate: it is on every Linux machine that
//! has network namespaces, its errors are the ones administrators know, and the maintained
//! netlink crates (rtnetlink) bring an async runtime the driver does not otherwise need.

use crate::host::Device;
use crate::time::Instant;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::process::Command;

/// A TUN device carrying bare IP datagrams.
#[derive(Debug)]
pub struct Tun {
    iface: tun_tap::Iface,
    /// Datagrams the device refused (counted, dropped: TCP retransmits).
    pub(crate) write_errors: u64,
}

impl Tun {
    /// Opens (creating if needed) the TUN device `name`; an empty name lets the kernel choose.
    pub fn open(name: &str) -> io::Result<Tun> {
        let iface = tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun).map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => {
                    " (creating a TUN device needs root or CAP_NET_ADMIN)"
                }
                Some(libc::ENOENT) | Some(libc::ENODEV) => " (/dev/net/tun is missing: load the tun module)",
                Some(libc::EBUSY) => " (the device is in use by another process)",
                _ => "",
            };
            io::Error::new(e.kind(), format!("cannot open TUN device {name:?}: {e}{hint}"))
        })?;
        iface.set_non_blocking()?;
        Ok(Tun { iface, write_errors: 0 })
    }

    /// The device's name (as the kernel chose it when none was given).
    pub fn name(&self) -> &str {
        self.iface.name()
    }

    /// Reads one datagram without blocking; `Ok(None)` when none is waiting.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.iface.recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }
}

impl Device for Tun {
    fn transmit(&mut self, _now: Instant, datagram: &[u8]) {
        if let Err(e) = self.iface.send(datagram) {
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
