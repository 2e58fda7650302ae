//! `utcp bench loss`: goodput under random loss, utcp against Linux through the same link.
//!
//! Per loss rate (0, 0.1, 1, 2, 5 % by default) and seed, in one run:
//! - **utcp**: the selftest ([`selftest::run`], one way, CUBIC, ssthresh from the flight as the
//!   RFCs say: [`selftest::Reduction::Flight`]), two utcp stacks over the seeded link
//!   on virtual time; goodput = bytes × 8 / `data_seconds` (from the connect call to the last
//!   byte read). It is deterministic and does not depend on the machine's load.
//! - **Linux**: a kernel TCP client in namespace A sending the same bytes to a kernel TCP server
//!   in namespace B through `utcp link` ([`crate::link`]) with the same [`LinkConfig`] (the
//!   selftest's: 10 ms each way, 1000 Mbit/s, unbounded queue, the loss) and the links seeded as
//!   the selftest's for the same seed; goodput timed the same way, from the client's connect
//!   call to the server's read of the last byte, on the wall clock. Fresh namespaces for every
//!   run, so no TCP metrics are remembered from one to the next.
//!
//! The link runs in real time in user space and can limit the Linux figure. So the bench also
//! measures what the relay sustains: Linux through a perfect `utcp link` (no delay, rate, or
//! loss), and Linux over a veth pair (offloads off, so the kernel does the same per-datagram
//! work as through TUN). Each row says what share of the data datagrams left the relay more than
//! 1 ms after they were due: a loaded machine delays the relay's wake-ups (and the relay's thread
//! also carries the receiving kernel's TCP work, which runs inside its writes to the TUN device),
//! which lengthens the path's delay. A Linux figure is marked link-limited when it comes near the
//! relay's ceiling, when the kernel dropped datagrams at a TUN device because the relay did not
//! read them in time, or when more than 10 % of the data datagrams were late.
//!
//! Must not depend on: terminals or argument parsing (that is `cli::bench_loss`).

use crate::bench::median;
use crate::bench_live::{kernel_server, timed_transfer, Transfer};
use crate::link::realtime::Running;
use crate::link::tun::{Namespaces, ADDR_B};
use crate::link::{Lateness, Relay, RelayStats};
use crate::netns::Netns;
use crate::netsim::LinkConfig;
use crate::selftest::{self, Settings};
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The loss rates measured by default, percent.
pub const LOSSES: [f64; 5] = [0.0, 0.1, 1.0, 2.0, 5.0];
/// The server's port in namespace B.
const PORT: u16 = 5201;
/// The relay's ceiling and the veth figure move at least this much, so slow start does not
/// dominate them.
const CEILING_BYTES: u64 = 64 << 20;
/// A Linux figure at or above this share of the relay's ceiling is limited by the relay.
const NEAR_CEILING: f64 = 0.8;
/// A Linux run with more than this share of its data datagrams over 1 ms late is limited by the
/// relay's timing.
const LATE_LIMIT: f64 = 0.10;

/// What the bench runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossSettings {
    /// Bytes moved per run, utcp and Linux alike.
    pub bytes: u64,
    /// Seeds; every loss rate runs once per seed, and the figures are medians over them.
    pub seeds: Vec<u64>,
    /// Loss rates, percent.
    pub losses: Vec<f64>,
    /// The kernel's congestion control for the Linux runs (set on the client's socket with
    /// `TCP_CONGESTION`), or `None` for the namespaces' default (the host's, on most kernels).
    pub linux_congestion_control: Option<String>,
}

impl LossSettings {
    fn selftest(&self, loss_pct: f64, seed: u64) -> Settings {
        Settings { bytes: self.bytes, one_way: true, loss: loss_pct / 100.0, seed, ..Settings::default() }
    }
}

/// One Linux transfer through the relay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinuxRun {
    /// Goodput, Mbit/s.
    pub mbps: f64,
    /// Seconds from the connect call to the last byte read.
    pub seconds: f64,
    /// Data datagrams (A to B): sent into the link, lost, dropped at its queue, delivered.
    pub sent: u64,
    /// Lost at random, A to B.
    pub lost: u64,
    /// Dropped at the link's queue, A to B.
    pub queue_drops: u64,
    /// Delivered to B.
    pub delivered: u64,
    /// How late the data datagrams left the relay.
    pub lateness: Lateness,
    /// Share of the data datagrams that left the relay more than 1 ms after they were due.
    pub late_share: f64,
    /// Datagrams the kernel dropped at A's and B's TUN device because the relay had not read
    /// them yet.
    pub device_drops: [u64; 2],
}

/// One seed at one loss rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossRun {
    /// The seed (data, links, ISN secrets).
    pub seed: u64,
    /// utcp's goodput on virtual time, Mbit/s (`None` when the selftest failed).
    pub utcp_mbps: Option<f64>,
    /// utcp's sender: retransmission timeouts.
    pub utcp_timeouts: u64,
    /// utcp's sender: retransmitted segments.
    pub utcp_retransmissions: u64,
    /// Linux through the relay.
    pub linux: LinuxRun,
}

/// One loss rate: medians over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossRow {
    /// Loss of each direction, as a fraction (as `utcp selftest --json` gives it).
    pub loss: f64,
    /// The same, percent.
    pub loss_pct: f64,
    /// utcp's median goodput, Mbit/s.
    pub utcp_mbps: Option<f64>,
    /// Linux's median goodput through the relay, Mbit/s.
    pub linux_mbps: Option<f64>,
    /// `utcp_mbps / linux_mbps`.
    pub ratio: Option<f64>,
    /// The Linux figure may be limited by the relay rather than by TCP (see the module docs).
    pub link_limited: bool,
    /// The largest share, over the seeds, of data datagrams that left the relay over 1 ms late.
    pub late_share: f64,
    /// Every seed's figures.
    pub runs: Vec<LossRun>,
}

/// What the relay itself sustains.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ceiling {
    /// Bytes each of the two transfers moved.
    pub bytes: u64,
    /// Linux through a perfect `utcp link` (no delay, no rate limit, no loss), Mbit/s: the most
    /// the relay forwards.
    pub relay_mbps: f64,
    /// Linux over a veth pair (offloads off), Mbit/s: the same kernels without the relay.
    pub veth_mbps: f64,
    /// The kernel dropped datagrams at a TUN device during the relay's run.
    pub relay_device_drops: [u64; 2],
}

/// The result of `utcp bench loss`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossReport {
    /// What ran.
    pub settings: LossSettings,
    /// The link of every row but the loss, as selftest prints it.
    pub link: String,
    /// The Linux client's congestion control, as its socket reported it.
    pub linux_congestion_control: Option<String>,
    /// One row per loss rate.
    pub rows: Vec<LossRow>,
    /// What the relay sustains.
    pub ceiling: Ceiling,
    /// Set when some Linux figure is limited by the relay.
    pub note: Option<String>,
}

/// Runs the bench, calling `progress` with a line after every measurement. Needs root.
pub fn run_loss(settings: &LossSettings, mut progress: impl FnMut(&str)) -> Result<LossReport, String> {
    crate::netns::catch_signals();
    let link = settings.selftest(0.0, 1).link();
    let cc = settings.linux_congestion_control.as_deref();
    let ceiling = measure_ceiling(cc, &mut progress)?;
    let mut congestion = None;
    let mut rows = Vec::new();
    for &loss_pct in &settings.losses {
        let mut runs = Vec::new();
        for &seed in &settings.seeds {
            let st = settings.selftest(loss_pct, seed);
            let outcome = selftest::run(&st, |_| {});
            let utcp_mbps = outcome.ok().then(|| outcome.virtual_mbps()).flatten();
            let (utcp_timeouts, utcp_retransmissions) =
                outcome.result.as_ref().map_or((0, 0), |r| (r.stats_a.timeouts, r.stats_a.retransmissions));
            if utcp_mbps.is_none() {
                progress(&format!("loss {loss_pct}% seed {seed}: the utcp selftest failed"));
            }
            let (linux, used) = linux_through_link(&st.link(), seed, settings.bytes, cc)?;
            congestion = congestion.or(used);
            progress(&format!(
                "loss {loss_pct}% seed {seed}: utcp {} Mbit/s, linux {:.1} Mbit/s ({} of {} data datagrams \
                 lost, {:.1} % late by over 1 ms, {} dropped at the TUN devices)",
                utcp_mbps.map_or("-".into(), |v| format!("{v:.1}")),
                linux.mbps,
                linux.lost,
                linux.sent,
                linux.late_share * 100.0,
                linux.device_drops[0] + linux.device_drops[1],
            ));
            runs.push(LossRun { seed, utcp_mbps, utcp_timeouts, utcp_retransmissions, linux });
        }
        let utcp_mbps = median(runs.iter().filter_map(|r| r.utcp_mbps).collect());
        let linux_mbps = median(runs.iter().map(|r| r.linux.mbps).collect());
        let ratio = match (utcp_mbps, linux_mbps) {
            (Some(u), Some(l)) if l > 0.0 => Some(u / l),
            _ => None,
        };
        let late_share = runs.iter().map(|r| r.linux.late_share).fold(0.0, f64::max);
        let link_limited = runs.iter().any(|r| r.linux.device_drops != [0, 0])
            || late_share > LATE_LIMIT
            || linux_mbps.is_some_and(|l| l >= NEAR_CEILING * ceiling.relay_mbps);
        rows.push(LossRow {
            loss: loss_pct / 100.0,
            loss_pct,
            utcp_mbps,
            linux_mbps,
            ratio,
            link_limited,
            late_share,
            runs,
        });
    }
    let limited: Vec<String> =
        rows.iter().filter(|r| r.link_limited).map(|r| format!("{}%", r.loss_pct)).collect();
    let note = (!limited.is_empty()).then(|| {
        format!(
            "the relay may limit the Linux figure at loss {}: it forwards at most {:.0} Mbit/s here \
             (Linux over veth: {:.0} Mbit/s), and there the Linux figure came near that, or the kernel \
             dropped datagrams at a TUN device because the relay had not read them yet, or over 10 % of \
             the data datagrams left the relay more than 1 ms late (a longer path delay)",
            limited.join(", "),
            ceiling.relay_mbps,
            ceiling.veth_mbps
        )
    });
    Ok(LossReport {
        settings: settings.clone(),
        link: link.to_string(),
        linux_congestion_control: congestion,
        rows,
        ceiling,
        note,
    })
}

/// One Linux transfer of `bytes` from A to B through a fresh `utcp link` running `config`
/// seeded from `seed`, with congestion control `cc` (or the default); also the congestion
/// control the kernel used.
fn linux_through_link(
    config: &LinkConfig,
    seed: u64,
    bytes: u64,
    cc: Option<&str>,
) -> Result<(LinuxRun, Option<String>), String> {
    let (ns, devices) = Namespaces::create("", 1500)?;
    let running = Running::start(Relay::new(config, seed), devices.a, devices.b)
        .map_err(|e| format!("cannot start the relay: {e}"))?;
    let addr = SocketAddrV4::new(ADDR_B, PORT);
    let transfer = timed_transfer(&ns.a, addr, bytes, cc, |ready, w| {
        ns.b.spawn("kernel-server", move || kernel_server(addr, ready, w))
    });
    let device_drops = ns.device_drops();
    let finished = running.stop()?;
    drop(ns);
    let Transfer { served, start, congestion_control } =
        transfer.map_err(|e| format!("Linux through [{config}]: {e}"))?;
    let seconds = (served.last - start).as_secs_f64();
    let stats: RelayStats = finished.relay.stats();
    let data = &stats.a_to_b;
    let late_share = data.lateness.late as f64 / data.lateness.deliveries.max(1) as f64;
    let run = LinuxRun {
        mbps: bytes as f64 * 8.0 / seconds.max(1e-9) / 1e6,
        seconds,
        sent: data.link.sent,
        lost: data.link.lost,
        queue_drops: data.link.queue_drops,
        delivered: data.link.delivered,
        lateness: data.lateness,
        late_share,
        device_drops,
    };
    Ok((run, Some(congestion_control)))
}

/// Linux through a perfect relay, and Linux over veth.
fn measure_ceiling(cc: Option<&str>, progress: &mut impl FnMut(&str)) -> Result<Ceiling, String> {
    let (relay, _) = linux_through_link(&LinkConfig::default(), 1, CEILING_BYTES, cc)?;
    progress(&format!("ceiling: Linux through a perfect utcp link {:.0} Mbit/s", relay.mbps));
    let veth_mbps = linux_over_veth(CEILING_BYTES, cc)?;
    progress(&format!("ceiling: Linux over veth (offloads off) {veth_mbps:.0} Mbit/s"));
    Ok(Ceiling {
        bytes: CEILING_BYTES,
        relay_mbps: relay.mbps,
        veth_mbps,
        relay_device_drops: relay.device_drops,
    })
}

/// Linux to Linux over a veth pair between two namespaces of its own (10.77.1.1 and 10.77.1.2,
/// offloads off), Mbit/s.
fn linux_over_veth(bytes: u64, cc: Option<&str>) -> Result<f64, String> {
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
    let client = Netns::create(crate::link::tun::NS_PREFIX, "vc")?;
    let server = Netns::create(crate::link::tun::NS_PREFIX, "vs")?;
    server.ip(&[
        "link",
        "add",
        "veth-s",
        "type",
        "veth",
        "peer",
        "name",
        "veth-c",
        "netns",
        client.name(),
    ])?;
    for (ns, dev, addr) in [(&server, "veth-s", SERVER), (&client, "veth-c", CLIENT)] {
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev])?;
        ns.exec(&["ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off"])?;
        ns.ip(&["link", "set", "dev", dev, "up"])?;
    }
    let addr = SocketAddrV4::new(SERVER, PORT);
    let Transfer { served, start, .. } = timed_transfer(&client, addr, bytes, cc, |ready, w| {
        server.spawn("kernel-server", move || kernel_server(addr, ready, w))
    })
    .map_err(|e| format!("Linux over veth: {e}"))?;
    Ok(bytes as f64 * 8.0 / (served.last - start).as_secs_f64().max(1e-9) / 1e6)
}
