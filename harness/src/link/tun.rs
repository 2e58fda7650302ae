//! The two network namespaces of `utcp link`, each with one TUN device whose other end is the
//! relay: `utcp-link-<pid>-a` holds `link-a` with 10.77.0.1/24, `utcp-link-<pid>-b` holds
//! `link-b` with 10.77.0.2/24. The prefix's connected route sends each namespace's traffic for the
//! other's address into its TUN device, so the kernel's TCP in A reaches the kernel's TCP in B
//! only through the relay.
//!
//! Network safety (DESIGN.md): the addresses exist only in these two namespaces, nothing is
//! configured in the caller's namespace, and dropping [`Namespaces`] deletes both (on success,
//! error and panic alike; after a SIGKILL the next run sweeps them). A TUN device is created in
//! the namespace of the thread that opens it, so each is opened on a thread that joined its
//! namespace with `setns(2)`; the descriptor then works from any thread.
//!
//! Must not depend on: the relay's timing (that is `realtime`), the stack.

use crate::netns::{sweep_stale, Netns};
use std::net::Ipv4Addr;

/// Prefix of the namespaces' names; the pid and a tag follow.
pub const NS_PREFIX: &str = "utcp-link-";
/// Namespace A's address (on `link-a`).
pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// Namespace B's address (on `link-b`).
pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The prefix length of both addresses.
pub const PREFIX: u8 = 24;
/// The TUN device in namespace A.
pub const DEVICE_A: &str = "link-a";
/// The TUN device in namespace B.
pub const DEVICE_B: &str = "link-b";
/// Datagrams the kernel may queue on each TUN device for the relay to read (the device's
/// `txqueuelen`, the size of its ring; the kernel's default is 500). When the ring is full the
/// kernel drops, which [`Namespaces::device_drops`] counts: a sign that the relay fell behind.
pub const DEVICE_QUEUE: u32 = 1000;

/// The two namespaces; dropping this deletes them and with them the devices.
#[derive(Debug)]
pub struct Namespaces {
    /// Namespace A (address [`ADDR_A`]).
    pub a: Netns,
    /// Namespace B (address [`ADDR_B`]).
    pub b: Netns,
}

/// The relay's ends of the two TUN devices, non-blocking.
#[derive(Debug)]
pub struct Devices {
    /// `link-a`, in namespace A.
    pub a: tun_tap::Iface,
    /// `link-b`, in namespace B.
    pub b: tun_tap::Iface,
}

impl Namespaces {
    /// Creates both namespaces (`utcp-link-<pid>-<tag>a` and `...b`), a TUN device in each with
    /// `mtu`, its address and its route, and returns the devices for the relay. Namespaces left by
    /// earlier runs whose process is gone are deleted first.
    pub fn create(tag: &str, mtu: usize) -> Result<(Namespaces, Devices), String> {
        sweep_stale(NS_PREFIX);
        let ns = Namespaces {
            a: Netns::create(NS_PREFIX, &format!("{tag}a"))?,
            b: Netns::create(NS_PREFIX, &format!("{tag}b"))?,
        };
        let a = open_tun(&ns.a, DEVICE_A, ADDR_A, mtu)?;
        let b = open_tun(&ns.b, DEVICE_B, ADDR_B, mtu)?;
        tracing::info!(a = ns.a.name(), b = ns.b.name(), mtu, "link namespaces set up");
        Ok((ns, Devices { a, b }))
    }

    /// Datagrams each namespace's kernel dropped because its TUN device's ring was full (the
    /// relay did not read fast enough): A's and B's `tx_dropped`.
    pub fn device_drops(&self) -> [u64; 2] {
        let drops = |ns: &Netns, dev: &str| -> u64 {
            let Ok(text) = ns.ip_output(&["-s", "-j", "link", "show", "dev", dev]) else { return 0 };
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            v[0]["stats64"]["tx"]["dropped"].as_u64().unwrap_or(0)
        };
        [drops(&self.a, DEVICE_A), drops(&self.b, DEVICE_B)]
    }

    /// A sysctl's value in namespace A (both are fresh namespaces with the same defaults), e.g.
    /// `net.ipv4.tcp_congestion_control`.
    pub fn sysctl(&self, key: &str) -> Option<String> {
        let path = sysctl_path(key);
        self.a
            .within("sysctl", move || std::fs::read_to_string(&path).map_err(|e| e.to_string()))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

/// `/proc/sys/...` for a dotted sysctl name; the network ones are per namespace, resolved by the
/// namespace of the thread that opens the file.
fn sysctl_path(key: &str) -> std::path::PathBuf {
    std::path::Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// Opens the TUN device `name` in `ns` (on a thread inside it), then gives it its MTU, queue
/// length and address and brings it up. IPv6 address generation is off, so the kernel sends no
/// router or neighbour solicitations of its own through the link.
fn open_tun(ns: &Netns, name: &'static str, addr: Ipv4Addr, mtu: usize) -> Result<tun_tap::Iface, String> {
    let iface = ns.within("open-tun", move || {
        let iface = tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun)
            .map_err(|e| format!("cannot open TUN device {name}: {e}"))?;
        iface.set_non_blocking().map_err(|e| format!("{name}: non-blocking: {e}"))?;
        Ok(iface)
    })?;
    let _ = ns.ip(&["link", "set", "dev", name, "addrgenmode", "none"]);
    let (mtu, queue) = (mtu.to_string(), DEVICE_QUEUE.to_string());
    ns.ip(&["link", "set", "dev", name, "mtu", &mtu, "txqueuelen", &queue])?;
    ns.ip(&["addr", "add", &format!("{addr}/{PREFIX}"), "dev", name])?;
    ns.ip(&["link", "set", "dev", name, "up"])?;
    Ok(iface)
}
