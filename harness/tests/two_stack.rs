//! Two stacks over the seeded impairment link: every byte arrives once, in order, with equal
//! SHA-256, and both ends end with no connection state (CLOSED after TIME-WAIT), across a matrix
//! of loss, reordering, duplication, bit-flip corruption, delay and rate limits.
//!
//! Each setting runs with three seeds. Every failure names the seed and the link setting that
//! reproduce it; `UTCP_SEED=<n>` runs the matrix with that one seed.

use utcp::time::Duration;
use utcp::Config;
use utcp_harness::netsim::LinkConfig;
use utcp_harness::pair::{Limits, Pair};
use utcp_harness::transfer::{run_transfer, TransferReport, TransferSpec};

const MIB: u64 = 1 << 20;

fn seeds() -> Vec<u64> {
    match std::env::var("UTCP_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => vec![0x5EED_0001, 0x5EED_0002, 0x5EED_0003],
    }
}

/// The stacks' configuration: defaults, with a short MSL so TIME-WAIT ends soon in virtual time,
/// and Linux's 200 ms minimum RTO (RFC 6298 (2.4) recommends 1 s, a SHOULD): at 20 % loss each
/// way Reno spends most of its time in retransmission timeouts, and with 1 s each the 16 MiB
/// transfer needs more than the hour of virtual time the limits allow.
fn config() -> Config {
    let mut c = Config::default();
    c.tcp.msl = Duration::from_secs(1);
    c.tcp.min_rto = Duration::from_millis(200);
    c
}

/// The base path: 10 ms each way at 100 Mbit/s. The rate spaces arrivals out as a real link
/// does, so a receiver sees (and acknowledges) segments one at a time rather than in flights.
fn path() -> LinkConfig {
    LinkConfig { delay: Duration::from_millis(10), rate: Some(12_500_000), ..LinkConfig::default() }
}

/// Runs the transfer with every seed of [`seeds`]; returns the report of the last.
#[track_caller]
fn transfer(link: LinkConfig, a_to_b: u64, b_to_a: u64) -> TransferReport {
    let mut last = None;
    for seed in seeds() {
        last = Some(transfer_seeded(seed, link.clone(), a_to_b, b_to_a));
    }
    last.expect("at least one seed")
}

#[track_caller]
fn transfer_seeded(seed: u64, link: LinkConfig, a_to_b: u64, b_to_a: u64) -> TransferReport {
    let setting = format!("seed {seed}, link [{link}], {a_to_b} bytes A->B, {b_to_a} bytes B->A");
    let mut pair = Pair::with_links(&config(), &link, seed);
    let report =
        run_transfer(&mut pair, TransferSpec::bulk(seed, a_to_b, b_to_a), &Limits::default(), 0, |_| {})
            .unwrap_or_else(|e| panic!("{setting}: {e}\nreproduce with UTCP_SEED={seed}"));
    assert!(report.data_ok, "{setting}: data differs: {:?}", report.mismatches);
    assert_eq!(report.received_by_b, a_to_b, "{setting}: bytes B read");
    assert_eq!(report.received_by_a, b_to_a, "{setting}: bytes A read");
    assert_eq!(pair.a.stack().connection_count(), 0, "{setting}: A holds connection state");
    assert_eq!(pair.b.stack().connection_count(), 0, "{setting}: B holds connection state");
    let lost = report.link_a_to_b.lost + report.link_b_to_a.lost;
    let retransmitted = report.stats_a.retransmissions + report.stats_b.retransmissions;
    if lost > 0 {
        assert!(retransmitted > 0, "{setting}: {lost} datagrams lost but nothing retransmitted");
    }
    let corrupted = report.link_a_to_b.corrupted + report.link_b_to_a.corrupted;
    let dropped = report.stats_a.total_drops() + report.stats_b.total_drops();
    assert!(
        dropped >= corrupted,
        "{setting}: {corrupted} datagrams had a bit flipped but only {dropped} were dropped"
    );
    if corrupted > 0 {
        let failures = report.stats_a.checksum_failures + report.stats_b.checksum_failures;
        assert!(failures > 0, "{setting}: {corrupted} corrupted datagrams, no checksum failure counted");
    }
    report
}

macro_rules! matrix {
    ($($name:ident: $link:expr;)*) => {
        mod each_way_1mib {
            use super::*;
            $( #[test] fn $name() { transfer($link, MIB, MIB); } )*
        }
        mod one_way_16mib {
            use super::*;
            $( #[test] fn $name() { transfer($link, 16 * MIB, 0); } )*
        }
    };
}

matrix! {
    loss_0: path();
    loss_1: LinkConfig { loss: 0.01, ..path() };
    loss_5: LinkConfig { loss: 0.05, ..path() };
    loss_10: LinkConfig { loss: 0.10, ..path() };
    loss_20: LinkConfig { loss: 0.20, ..path() };
    reordering: LinkConfig { reorder: 0.05, reorder_delay: Duration::from_millis(3), ..path() };
    duplication: LinkConfig { duplicate: 0.05, ..path() };
    bit_flips: LinkConfig { corrupt: 0.05, ..path() };
    long_delay_with_jitter: LinkConfig {
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(20),
        ..path()
    };
    rate_limit_with_drop_tail_queue: LinkConfig { rate: Some(10_000_000), queue_limit: Some(32), ..path() };
    everything_at_once: LinkConfig {
        loss: 0.02,
        reorder: 0.02,
        duplicate: 0.02,
        corrupt: 0.01,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        rate: Some(20_000_000),
        queue_limit: Some(64),
        ..LinkConfig::default()
    };
}

/// Determinism holds whether or not the transfer succeeds, so this compares the whole outcome.
#[test]
fn same_seed_same_run() {
    let link = LinkConfig { loss: 0.05, reorder: 0.02, duplicate: 0.02, corrupt: 0.01, ..path() };
    let run = || {
        let mut pair = Pair::with_links(&config(), &link, 77);
        let spec = TransferSpec::bulk(77, 256 * 1024, 256 * 1024);
        let result = run_transfer(&mut pair, spec, &Limits::default(), 0, |_| {});
        let outcome = result.map(|r| (r.data_ok, r.sha256_a_to_b, r.sha256_b_to_a, r.virtual_time));
        (
            outcome,
            pair.steps,
            pair.now(),
            pair.a.stack().stats().clone(),
            pair.b.stack().stats().clone(),
            pair.a_to_b.stats().clone(),
        )
    };
    let (first, second) = (run(), run());
    assert_eq!(first, second);
    assert!(first.1 > 10, "the run should have taken some steps");
}

#[test]
fn empty_transfer_still_opens_and_closes() {
    let report = transfer(path(), 0, 0);
    assert_eq!(report.stats_a.connections_established, 1);
    assert_eq!(report.stats_b.connections_established, 1);
}
