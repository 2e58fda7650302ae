//! Congestion control and loss recovery through a simulated network, in the manner of smoltcp's
//! `tests/netsim.rs`: two stacks behind a seeded link with a bottleneck rate, a drop-tail queue,
//! latency and random loss (the same link in both directions). One table per question, pinned by
//! insta: goodput, retransmissions and timeouts per controller × loss × bandwidth-delay product;
//! the shares of two and four connections crossing one bottleneck (Jain's fairness index).
//!
//! Everything runs on virtual time from fixed seeds, so a figure changes only when the stack's
//! behaviour does: a changed snapshot is a changed behaviour, to be read and explained.

use std::fmt::Write as _;
use utcp::config::CongestionKind;
use utcp::time::Duration;
use utcp::Config;
use utcp_harness::netsim::LinkConfig;
use utcp_harness::pair::{Limits, Pair};
use utcp_harness::transfer::{run_transfer, TransferReport, TransferSpec};

/// A bottleneck of `mbps` with `delay_ms` one way, a queue of one bandwidth-delay product
/// (at least 16 datagrams) and `loss` in both directions.
fn link(mbps: u64, delay_ms: u64, loss: f64) -> LinkConfig {
    let rate = mbps * 1_000_000 / 8;
    let bdp = rate * 2 * delay_ms / 1000;
    LinkConfig {
        loss,
        delay: Duration::from_millis(delay_ms),
        rate: Some(rate),
        queue_limit: Some((bdp as usize / 1500).max(16)),
        ..LinkConfig::default()
    }
}

fn config(cc: CongestionKind) -> Config {
    let mut c = Config::linux_like();
    c.tcp.congestion = cc;
    c.tcp.msl = Duration::from_secs(1);
    c
}

fn transfer(
    cc: CongestionKind,
    link: &LinkConfig,
    connections: usize,
    bytes: u64,
    seed: u64,
) -> TransferReport {
    let mut pair = Pair::with_links(&config(cc), link, seed);
    let spec = TransferSpec { connections, concurrency: connections, ..TransferSpec::bulk(seed, bytes, 0) };
    let limits = Limits { check_every: 256, ..Limits::default() };
    let r = run_transfer(&mut pair, spec, &limits, u64::MAX, |_| {})
        .unwrap_or_else(|e| panic!("{cc:?} through {link}: {e}"));
    assert!(r.data_ok, "{cc:?} through {link}: {:?}", r.mismatches);
    r
}

fn goodput_mbps(r: &TransferReport, bytes: u64) -> f64 {
    bytes as f64 * 8.0 / (r.data_time.total_micros() as f64 / 1e6) / 1e6
}

/// RFC 5681, 6675, 6937, 8985, 9438: each controller moves the data intact through every
/// impairment, at most a few timeouts per loss episode, goodput recorded.
#[test]
fn goodput_retransmissions_and_timeouts_per_controller_loss_and_bdp() {
    const BYTES: u64 = 4 << 20;
    let mut table = String::from("controller | link | loss | goodput Mbit/s | retransmissions | RTOs\n");
    for cc in [CongestionKind::Reno, CongestionKind::Cubic] {
        for (mbps, delay) in [(10, 10), (100, 20)] {
            for loss in [0.0, 0.01, 0.05] {
                let l = link(mbps, delay, loss);
                let r = transfer(cc, &l, 1, BYTES, 1);
                let g = goodput_mbps(&r, BYTES);
                // No faster than the bottleneck: the figures come from the simulated link.
                assert!(g <= mbps as f64, "{cc:?} {l}: {g} Mbit/s");
                if loss == 0.0 {
                    // Without random loss, only the queue drops; recovery never waits for a timeout.
                    assert_eq!(r.stats_a.timeouts, 0, "{cc:?} {l}");
                }
                writeln!(
                    table,
                    "{cc:?} | {mbps} Mbit/s x {} ms RTT | {}% | {g:.1} | {} | {}",
                    2 * delay,
                    loss * 100.0,
                    r.stats_a.retransmissions,
                    r.stats_a.timeouts
                )
                .unwrap();
            }
        }
    }
    insta::assert_snapshot!(table);
}

/// Connections that start together through one bottleneck share it (RFC 5681 §3's AIMD and
/// RFC 9438 §5.6's convergence): Jain's index of what each had delivered when the first one
/// finished.
#[test]
fn connections_sharing_one_bottleneck_get_fair_shares() {
    const BYTES: u64 = 2 << 20;
    let mut table =
        String::from("controller | connections | Jain's index | shares (MiB when the first finished)\n");
    for cc in [CongestionKind::Reno, CongestionKind::Cubic] {
        for n in [2, 4] {
            let r = transfer(cc, &link(100, 10, 0.0), n, BYTES, 7);
            let jain = r.jain_index().expect("several connections");
            assert!(jain > 0.8, "{cc:?} with {n}: Jain {jain:.3}, shares {:?}", r.shares_at_first_done);
            let shares: Vec<String> =
                r.shares_at_first_done.iter().map(|&(_, b)| format!("{:.2}", b as f64 / 1048576.0)).collect();
            writeln!(table, "{cc:?} | {n} | {jain:.3} | {}", shares.join(" ")).unwrap();
        }
    }
    insta::assert_snapshot!(table);
}
