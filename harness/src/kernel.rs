//! The Linux kernel's TCP as the stack under test (DESIGN.md "Linux beside utcp"): a network
//! namespace of this process's own, `utcp-kern-<pid>-<tag>`, with one TUN device `tun0` that
//! carries the kernel's side of the local address and a route for the remote address into the
//! device. What the kernel sends to the remote address is read from the device; what the remote
//! "sends" is written into it. Sockets opened on a thread that joined the namespace (see
//! [`KernelNet::netns`] and [`crate::netns::Netns::spawn`]) are the kernel's endpoints.
//!
//! Network safety (DESIGN.md): both addresses exist only in that namespace; nothing is configured
//! in the caller's namespace; sysctls are written only under `/proc/sys/net/` from a thread inside
//! the namespace, where only the per-namespace ones exist; dropping [`KernelNet`] deletes the
//! namespace and the device (a SIGKILLed run's namespace is swept by the next run).
//!
//! The device has no vnet header, so the kernel neither sends nor accepts super-segments: every
//! datagram is wire-sized, as packetdrill's `ethtool -K tun0 tso off gso off` arranges.
//!
//! Must not depend on: the stack, scripts, replay.

use crate::netns::{sweep_stale, Netns};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Prefix of the namespaces' names; the pid and a tag follow.
pub const NS_PREFIX: &str = "utcp-kern-";
/// The TUN device in the namespace (packetdrill's name for its own).
pub const DEVICE: &str = "tun0";
/// The largest datagram read from the device.
const MAX_DATAGRAM: usize = 65_536;

/// A namespace with a TUN device between the kernel's TCP and the caller.
#[derive(Debug)]
pub struct KernelNet {
    // Declared before `ns`: the device is closed before its namespace is deleted.
    tun: tun_tap::Iface,
    ns: Netns,
    local: Ipv4Addr,
    remote: Ipv4Addr,
}

impl KernelNet {
    /// Creates `utcp-kern-<pid>-<tag>`, `tun0` in it with `mtu` and `local`/32, a route for
    /// `remote`/32 into the device, and returns it. Namespaces of earlier runs whose process is
    /// gone are deleted first.
    pub fn create(tag: &str, local: Ipv4Addr, remote: Ipv4Addr, mtu: usize) -> Result<KernelNet, String> {
        if local == remote {
            return Err(format!("the local and remote addresses are the same ({local})"));
        }
        sweep_stale(NS_PREFIX);
        let ns = Netns::create(NS_PREFIX, tag)?;
        let tun = ns.within("open-tun", move || {
            let iface = tun_tap::Iface::without_packet_info(DEVICE, tun_tap::Mode::Tun)
                .map_err(|e| format!("cannot open TUN device {DEVICE}: {e}"))?;
            iface.set_non_blocking().map_err(|e| format!("{DEVICE}: non-blocking: {e}"))?;
            Ok(iface)
        })?;
        // No IPv6 link-local address: the kernel sends no solicitations of its own.
        let _ = ns.ip(&["link", "set", "dev", DEVICE, "addrgenmode", "none"]);
        ns.ip(&["link", "set", "dev", DEVICE, "mtu", &mtu.to_string()])?;
        ns.ip(&["addr", "add", &format!("{local}/32"), "dev", DEVICE])?;
        ns.ip(&["link", "set", "dev", DEVICE, "up"])?;
        ns.ip(&["route", "add", &format!("{remote}/32"), "dev", DEVICE])?;
        tracing::debug!(ns = ns.name(), %local, %remote, mtu, "kernel namespace set up");
        Ok(KernelNet { tun, ns, local, remote })
    }

    /// The namespace: threads that open the kernel's sockets join it with [`Netns::spawn`].
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The kernel's address.
    pub fn local(&self) -> Ipv4Addr {
        self.local
    }

    /// The remote address routed into the device.
    pub fn remote(&self) -> Ipv4Addr {
        self.remote
    }

    /// Sets `key` (dotted, `net.ipv4.tcp_sack`) to `value` in this namespace only. Only keys
    /// under `net.` are written, from a thread inside the namespace, where `/proc/sys/net` shows
    /// only what is per namespace: a key that is global (or unknown) is not there and is refused
    /// with a message that says so.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<(), String> {
        let path = sysctl_path(key)?;
        let value = format!("{}\n", value.trim());
        let key = key.to_string();
        self.ns.within("sysctl", move || match std::fs::write(&path, value.as_bytes()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("sysctl {key} is not per network namespace here (not set on the host)"))
            }
            Err(e) => Err(format!("sysctl {key}={}: {e}", value.trim())),
        })
    }

    /// `key`'s value in this namespace.
    pub fn sysctl(&self, key: &str) -> Result<String, String> {
        let path = sysctl_path(key)?;
        let key = key.to_string();
        self.ns.within("sysctl", move || {
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("sysctl {key}: {e}"))
        })
    }

    /// Writes one IPv4 datagram into the device, as if the remote had sent it.
    pub fn send(&self, datagram: &[u8]) -> Result<(), String> {
        self.tun.send(datagram).map(|_| ()).map_err(|e| format!("{DEVICE}: write: {e}"))
    }

    /// The next datagram the kernel sent into the device, waiting until `deadline` at most
    /// (`None` when nothing came by then).
    pub fn recv(&self, deadline: Instant) -> Result<Option<Vec<u8>>, String> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match self.tun.recv(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{DEVICE}: read: {e}")),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // ppoll rather than poll: a timeout in nanoseconds, not whole milliseconds.
            let wait = (deadline - now).min(std::time::Duration::from_secs(3600));
            let ts = libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos().into(),
            };
            let mut pfd = libc::pollfd { fd: self.tun.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd and a timespec we own, for a descriptor this struct keeps open;
            // no signal mask.
            let r = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!("{DEVICE}: poll: {e}"));
                }
            }
        }
    }
}

/// `/proc/sys/net/...` for a dotted key under `net.`; any other key is refused.
fn sysctl_path(key: &str) -> Result<std::path::PathBuf, String> {
    let ok = key.starts_with("net.")
        && key
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !ok {
        return Err(format!("sysctl {key}: only keys under net. are set, inside the namespace"));
    }
    Ok(std::path::Path::new("/proc/sys").join(key.replace('.', "/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_net_keys_map_to_proc_sys() {
        assert_eq!(
            sysctl_path("net.ipv4.tcp_sack").unwrap(),
            std::path::PathBuf::from("/proc/sys/net/ipv4/tcp_sack")
        );
        assert!(sysctl_path("kernel.panic").is_err());
        assert!(sysctl_path("net.ipv4/../../kernel/panic").is_err());
        assert!(sysctl_path("net..x").is_err());
    }
}
