//! Bulk-transfer benchmark: two in-memory utcp stacks against two smoltcp 0.12 sockets doing the
//! same work in the same process run, alternating round by round.
//!
//! Both sides move `bytes` from a client to a server over a loss-free in-memory path with the same
//! MTU and socket buffers, copying the data in (`send`/`send_slice`) and out (`recv`/`recv_slice`)
//! once, and are timed on the wall clock from the connect call to the last byte read. The figures
//! are goodput in Gbit/s. The benchmark prints figures; nothing here asserts a speed.
//!
//! The same run measures the memory-copy ceiling: the same bytes copied twice, in segments of
//! the MSS the MTU gives (1460 bytes at MTU 1500), into a ring of the socket buffer's size and out
//! of it again (`memcpy_bulk`), which is the least any stack with a send and a receive buffer
//! does per byte.
//!
//! smoltcp's loopback does not compute or verify checksums (its capabilities say "ignored"), so by
//! default utcp runs with `Config::checksum_offload` too and both do the same work; with
//! `checksums: true` both compute and verify every checksum (utcp's TCP checksums; smoltcp, its
//! loopback's capabilities set to compute and verify, its IPv4 and TCP checksums), as each must
//! on a TUN device.
//!
//! Must not depend on: the link, the Pair, anything with virtual time (this is wall-clock work).

use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant as WallInstant;
use utcp::host::{Bounds, Device, Host, Quiet};
use utcp::time::Instant;
use utcp::{Config, RecvError, SendError, Stack};

/// What one bulk transfer moves and over what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BulkSettings {
    /// Largest IP datagram, bytes.
    pub mtu: usize,
    /// Bytes moved from client to server.
    pub bytes: u64,
    /// Send and receive buffer of every socket, bytes.
    pub buffer: usize,
    /// Both stacks compute and verify checksums (by default neither does, as smoltcp's loopback).
    pub checksums: bool,
}

impl Default for BulkSettings {
    fn default() -> Self {
        BulkSettings { mtu: 1500, bytes: 1 << 30, buffer: 256 * 1024, checksums: false }
    }
}

/// The two implementations being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Contender {
    /// This crate's stack.
    Utcp,
    /// smoltcp 0.12.
    Smoltcp,
    /// Two memory copies per byte, into a ring and out again: the ceiling.
    Memcpy,
}

impl std::fmt::Display for Contender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Contender::Utcp => "utcp",
            Contender::Smoltcp => "smoltcp",
            Contender::Memcpy => "memcpy",
        })
    }
}

/// One timed transfer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Run {
    /// Bytes the server read.
    pub bytes: u64,
    /// Wall-clock seconds from connect to the last byte read.
    pub seconds: f64,
}

impl Run {
    /// Goodput in Gbit/s.
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds / 1e9
    }
}

/// The figures of one round (one run of each contender that took part).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Round {
    /// Round number from 1.
    pub round: usize,
    /// utcp's goodput, Gbit/s.
    pub utcp_gbps: Option<f64>,
    /// smoltcp's goodput, Gbit/s.
    pub smoltcp_gbps: Option<f64>,
    /// The memory-copy ceiling, Gbit/s.
    pub memcpy_gbps: Option<f64>,
}

/// The result of `utcp bench bulk`: medians over the rounds and every round's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulkReport {
    /// The settings every run used.
    pub settings: BulkSettings,
    /// Median goodput of utcp over the rounds, Gbit/s.
    pub utcp_gbps: Option<f64>,
    /// Median goodput of smoltcp over the rounds, Gbit/s.
    pub smoltcp_gbps: Option<f64>,
    /// Median rate of the memory-copy ceiling (two copies per byte at the MSS), Gbit/s.
    pub memcpy_gbps: Option<f64>,
    /// `utcp_gbps / smoltcp_gbps`.
    pub ratio: Option<f64>,
    /// `utcp_gbps / memcpy_gbps`: how close utcp comes to the ceiling.
    pub ratio_memcpy: Option<f64>,
    /// Per-round figures.
    pub rounds: Vec<Round>,
}

/// Runs `rounds` rounds, alternating the contenders (which goes first alternates too), calling
/// `progress` after every run.
pub fn run_bulk(
    settings: BulkSettings,
    rounds: usize,
    contenders: &[Contender],
    mut progress: impl FnMut(usize, Contender, &Run),
) -> Result<BulkReport, String> {
    let mut figures = Vec::new();
    for round in 1..=rounds {
        let mut r = Round { round, utcp_gbps: None, smoltcp_gbps: None, memcpy_gbps: None };
        let mut order = contenders.to_vec();
        if round % 2 == 0 {
            order.reverse();
        }
        for contender in order {
            let run = match contender {
                Contender::Utcp => utcp_bulk(settings),
                Contender::Smoltcp => smoltcp_bulk(settings),
                Contender::Memcpy => Ok(memcpy_bulk(settings)),
            }
            .map_err(|e| format!("{contender}, round {round}: {e}"))?;
            progress(round, contender, &run);
            match contender {
                Contender::Utcp => r.utcp_gbps = Some(run.gbps()),
                Contender::Smoltcp => r.smoltcp_gbps = Some(run.gbps()),
                Contender::Memcpy => r.memcpy_gbps = Some(run.gbps()),
            }
        }
        figures.push(r);
    }
    let utcp_gbps = median(figures.iter().filter_map(|r| r.utcp_gbps).collect());
    let smoltcp_gbps = median(figures.iter().filter_map(|r| r.smoltcp_gbps).collect());
    let memcpy_gbps = median(figures.iter().filter_map(|r| r.memcpy_gbps).collect());
    let ratio_of = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(u), Some(s)) if s > 0.0 => Some(u / s),
        _ => None,
    };
    Ok(BulkReport {
        settings,
        utcp_gbps,
        smoltcp_gbps,
        memcpy_gbps,
        ratio: ratio_of(utcp_gbps, smoltcp_gbps),
        ratio_memcpy: ratio_of(utcp_gbps, memcpy_gbps),
        rounds: figures,
    })
}

pub(crate) fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 })
}

/// Polls without progress after which a run is declared stuck.
const STALL_LIMIT: u64 = 1_000_000;

/// Counts polling rounds without progress, for both contenders' loops.
#[derive(Default)]
struct Stall {
    idle: u64,
}

impl Stall {
    /// One round: `progressed` resets the count; more than [`STALL_LIMIT`] idle rounds in a row
    /// end the run with an error saying how far it got.
    fn round(&mut self, progressed: bool, received: u64, total: u64) -> Result<(), String> {
        if progressed {
            self.idle = 0;
        } else {
            self.idle += 1;
            if self.idle > STALL_LIMIT {
                return Err(format!("stuck after {received} of {total} bytes"));
            }
        }
        Ok(())
    }
}

/// The payload written by both contenders: a fixed pattern, so neither pays for generating it.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// The memory-copy ceiling
// ---------------------------------------------------------------------------------------------

/// The TCP payload of one full-sized IPv4 segment at `mtu` (20 bytes of IP and 20 of TCP header;
/// the timestamps both stacks send take 12 more, which the ceiling does not subtract).
pub fn mss_for(mtu: usize) -> usize {
    mtu.saturating_sub(40).max(1)
}

/// Copies `settings.bytes` twice, in segments of [`mss_for`] the MTU: from the application's
/// chunk into a ring of `settings.buffer` bytes (what `send` does) and out of the ring into the
/// reader's buffer (what `recv` does), a segment at a time as a stack would. The result is the
/// rate at which the bytes got through both copies.
pub fn memcpy_bulk(settings: BulkSettings) -> Run {
    let seg = mss_for(settings.mtu);
    let chunk = pattern(64 * 1024);
    let mut ring = vec![0u8; settings.buffer.max(seg)];
    let mut out = vec![0u8; 64 * 1024];
    let (mut moved, mut wpos, mut rpos, mut cpos, mut opos) = (0u64, 0usize, 0usize, 0usize, 0usize);
    let mut check = 0u64;
    let start = WallInstant::now();
    while moved < settings.bytes {
        let n = ((settings.bytes - moved) as usize).min(seg);
        // In: from the chunk into the ring, wrapping at either end.
        let mut left = n;
        while left > 0 {
            let k = left.min(ring.len() - wpos).min(chunk.len() - cpos);
            ring[wpos..wpos + k].copy_from_slice(&chunk[cpos..cpos + k]);
            wpos = (wpos + k) % ring.len();
            cpos = (cpos + k) % chunk.len();
            left -= k;
        }
        // Out: from the ring into the reader's buffer.
        let mut left = n;
        while left > 0 {
            let k = left.min(ring.len() - rpos).min(out.len() - opos);
            out[opos..opos + k].copy_from_slice(&ring[rpos..rpos + k]);
            rpos = (rpos + k) % ring.len();
            opos = (opos + k) % out.len();
            left -= k;
        }
        // Keep the copies from being optimised away.
        check = check.wrapping_add(u64::from(std::hint::black_box(&out)[opos.saturating_sub(1)]));
        moved += n as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(check);
    Run { bytes: moved, seconds }
}

// ---------------------------------------------------------------------------------------------
// utcp
// ---------------------------------------------------------------------------------------------

/// A device that hands every datagram straight to the peer host's `receive`: no queue, no copy
/// beyond the one `poll_transmit` writes into the sending host's buffer.
struct Wire<'a>(&'a mut Host);

impl Device for Wire<'_> {
    fn transmit(&mut self, now: Instant, datagram: &[u8]) {
        self.0.receive(now, datagram, &mut Quiet);
    }
}

/// Moves `settings.bytes` from a client stack to a server stack, each on a [`Host`], wired back
/// to back in memory: each datagram is written by `poll_transmit` into the sending host's
/// buffer and handed straight to the other host's `receive` (the `Wire` device).
pub fn utcp_bulk(settings: BulkSettings) -> Result<Run, String> {
    let client_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let server_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let config = |addr, secret| {
        let mut c = Config::default().with_address(addr);
        c.mtu = settings.mtu;
        c.checksum_offload = !settings.checksums;
        c.isn_secret = [secret; 16];
        c.tcp.send_buffer = settings.buffer;
        c.tcp.recv_buffer = settings.buffer;
        c
    };
    let chunk = pattern(64 * 1024);
    let mut rbuf = vec![0u8; 64 * 1024];

    let start = WallInstant::now();
    let clock = || Instant::from_micros(start.elapsed().as_micros() as u64);
    let mut client = Host::new(Stack::new(config(client_ip, 1)), clock(), Bounds::default());
    let mut server = Host::new(Stack::new(config(server_ip, 2)), clock(), Bounds::default());
    let server_addr = SocketAddr::new(server_ip, 5001);
    let listener =
        server.stack_mut().listen(clock(), server_addr, 16).map_err(|e| format!("listen: {e:?}"))?;
    let conn =
        client.stack_mut().connect(clock(), None, server_addr).map_err(|e| format!("connect: {e:?}"))?;
    let mut accepted = None;
    let (mut sent, mut received, mut shut) = (0u64, 0u64, false);
    let mut stall = Stall::default();
    while received < settings.bytes {
        let now = clock();
        let before = (sent, received);
        client.advance(now).map_err(|e| format!("client: {e}"))?;
        server.advance(now).map_err(|e| format!("server: {e}"))?;
        // Application: write as much as fits, read everything that arrived.
        let c = client.stack_mut();
        while sent < settings.bytes {
            let n = (settings.bytes - sent).min(chunk.len() as u64) as usize;
            match c.send(now, conn, &chunk[..n]) {
                Ok(0) => break,
                Ok(k) => sent += k as u64,
                Err(SendError::WouldBlock | SendError::NotConnected) => break,
                Err(e) => return Err(format!("send after {sent} bytes: {e:?}")),
            }
        }
        if sent == settings.bytes && !shut {
            c.shutdown(now, conn).map_err(|e| format!("shutdown: {e:?}"))?;
            shut = true;
        }
        client.report_events(&mut Quiet);
        server.report_events(&mut Quiet);
        let s = server.stack_mut();
        if accepted.is_none() {
            accepted = s.accept(now, listener).ok();
        }
        if let Some(a) = accepted {
            loop {
                match s.recv(now, a, &mut rbuf) {
                    Ok(0) => break,
                    Ok(k) => received += k as u64,
                    Err(RecvError::WouldBlock) => break,
                    Err(e) => return Err(format!("recv after {received} bytes: {e:?}")),
                }
            }
        }
        // Wire: each host's output straight into the other.
        let mut moved =
            client.transmit(&mut Wire(&mut server), &mut Quiet).map_err(|e| format!("client: {e}"))?;
        moved += server.transmit(&mut Wire(&mut client), &mut Quiet).map_err(|e| format!("server: {e}"))?;
        stall.round(moved > 0 || before != (sent, received), received, settings.bytes)?;
    }
    Ok(Run { bytes: received, seconds: start.elapsed().as_secs_f64() })
}

// ---------------------------------------------------------------------------------------------
// smoltcp
// ---------------------------------------------------------------------------------------------

mod smol {
    use smoltcp::phy::{ChecksumCapabilities, Device, DeviceCapabilities, Loopback, Medium};
    use smoltcp::time::Instant;

    /// smoltcp's in-memory IP loopback with its MTU capped, and checksums computed and verified
    /// if asked (smoltcp's own loopback ignores them).
    pub struct CappedLoopback {
        pub inner: Loopback,
        pub mtu: usize,
        pub checksums: bool,
    }

    impl Device for CappedLoopback {
        type RxToken<'a> = <Loopback as Device>::RxToken<'a>;
        type TxToken<'a> = <Loopback as Device>::TxToken<'a>;

        fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            self.inner.receive(t)
        }

        fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
            self.inner.transmit(t)
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut caps = self.inner.capabilities();
            caps.max_transmission_unit = self.mtu;
            if self.checksums {
                // Checksum::Both for every protocol: compute on transmit, verify on receive.
                caps.checksum = ChecksumCapabilities::default();
            }
            caps
        }
    }

    pub fn loopback(mtu: usize, checksums: bool) -> CappedLoopback {
        CappedLoopback { inner: Loopback::new(Medium::Ip), mtu, checksums }
    }
}

/// Moves `settings.bytes` between two smoltcp TCP sockets on one interface over smoltcp's
/// in-memory loopback (`Medium::Ip`), the MTU capped to `settings.mtu`, as smoltcp's own
/// `loopback_benchmark` example does.
pub fn smoltcp_bulk(settings: BulkSettings) -> Result<Run, String> {
    use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant as SmolInstant;
    use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

    let mut device = smol::loopback(settings.mtu, settings.checksums);
    let start = WallInstant::now();
    let clock = || SmolInstant::from_micros(start.elapsed().as_micros() as i64);
    let mut iface = Interface::new(IfaceConfig::new(HardwareAddress::Ip), &mut device, clock());
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).expect("one address fits");
    });
    let socket = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; settings.buffer]),
            tcp::SocketBuffer::new(vec![0; settings.buffer]),
        )
    };
    let mut storage: [_; 2] = Default::default();
    let mut sockets = SocketSet::new(&mut storage[..]);
    let server = sockets.add(socket());
    let client = sockets.add(socket());
    sockets.get_mut::<tcp::Socket>(server).listen(5001).map_err(|e| format!("listen: {e}"))?;
    sockets
        .get_mut::<tcp::Socket>(client)
        .connect(iface.context(), (IpAddress::v4(127, 0, 0, 1), 5001), 49152)
        .map_err(|e| format!("connect: {e}"))?;

    let chunk = pattern(64 * 1024);
    let mut rbuf = vec![0u8; 64 * 1024];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut stall = Stall::default();
    while received < settings.bytes {
        let before = (sent, received);
        let polled = iface.poll(clock(), &mut device, &mut sockets);
        let s = sockets.get_mut::<tcp::Socket>(server);
        while s.can_recv() {
            match s.recv_slice(&mut rbuf) {
                Ok(0) => break,
                Ok(k) => received += k as u64,
                Err(e) => return Err(format!("recv after {received} bytes: {e}")),
            }
        }
        let c = sockets.get_mut::<tcp::Socket>(client);
        while sent < settings.bytes && c.can_send() {
            let n = (settings.bytes - sent).min(chunk.len() as u64) as usize;
            match c.send_slice(&chunk[..n]) {
                Ok(0) => break,
                Ok(k) => sent += k as u64,
                Err(e) => return Err(format!("send after {sent} bytes: {e}")),
            }
        }
        let changed = polled == smoltcp::iface::PollResult::SocketStateChanged;
        stall.round(changed || before != (sent, received), received, settings.bytes)?;
    }
    Ok(Run { bytes: received, seconds: start.elapsed().as_secs_f64() })
}

/// Parses a byte count: a number with an optional suffix K, M, G (powers of 1024, with or
/// without a trailing `iB`/`B`), e.g. `1G`, `16MiB`, `65536`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: u64 = number.parse().map_err(|_| format!("{text:?}: expected a number of bytes"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{text:?}: unknown size suffix {suffix:?} (use K, M or G)")),
    };
    number.checked_mul(1 << shift).ok_or_else(|| format!("{text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("256k"), Ok(256 << 10));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn utcp_moves_every_byte_at_mtu_1500() {
        for checksums in [false, true] {
            let run =
                utcp_bulk(BulkSettings { mtu: 1500, bytes: 4 << 20, buffer: 256 * 1024, checksums }).unwrap();
            assert_eq!(run.bytes, 4 << 20);
        }
    }

    #[test]
    fn memcpy_ceiling_moves_every_byte_through_the_ring() {
        for mtu in [1500, 9000] {
            let settings = BulkSettings { mtu, bytes: (4 << 20) + 7, buffer: 256 * 1024, checksums: false };
            let run = memcpy_bulk(settings);
            assert_eq!(run.bytes, (4 << 20) + 7);
            assert!(run.seconds > 0.0);
        }
        assert_eq!(mss_for(1500), 1460);
        assert_eq!(mss_for(9000), 8960);
    }

    #[test]
    fn bulk_report_has_all_three_figures_and_both_ratios() {
        let settings = BulkSettings { mtu: 1500, bytes: 1 << 20, buffer: 256 * 1024, checksums: true };
        let all = [Contender::Utcp, Contender::Smoltcp, Contender::Memcpy];
        let mut seen = Vec::new();
        let report = run_bulk(settings, 2, &all, |round, who, _| seen.push((round, who))).unwrap();
        assert_eq!(seen.len(), 6);
        assert_eq!(report.rounds.len(), 2);
        assert!(report
            .rounds
            .iter()
            .all(|r| r.utcp_gbps.is_some() && r.smoltcp_gbps.is_some() && r.memcpy_gbps.is_some()));
        let json = serde_json::to_value(&report).unwrap();
        for key in ["utcp_gbps", "smoltcp_gbps", "memcpy_gbps", "ratio", "ratio_memcpy", "settings", "rounds"]
        {
            assert!(json.get(key).is_some_and(|v| !v.is_null()), "{key} missing in {json}");
        }
        assert_eq!(json["settings"]["mtu"], 1500);
    }

    #[test]
    fn smoltcp_moves_every_byte_at_mtu_1500() {
        let run =
            smoltcp_bulk(BulkSettings { mtu: 1500, bytes: 4 << 20, buffer: 256 * 1024, checksums: false })
                .unwrap();
        assert_eq!(run.bytes, 4 << 20);
    }
}
