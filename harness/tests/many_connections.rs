//! 10,000 connections opened, used (a few bytes each way) and closed in one Stack pair; afterwards
//! neither stack holds any connection state.

use utcp::time::Duration;
use utcp::Config;
use utcp_harness::netsim::LinkConfig;
use utcp_harness::pair::{Limits, Pair};
use utcp_harness::transfer::{run_transfer, TransferSpec};

#[test]
fn ten_thousand_connections_leave_no_state_behind() {
    let seed = 0x10_000;
    let mut config = Config::default();
    config.tcp.msl = Duration::from_secs(1);
    config.tcp.syn_backlog = 1024;
    let link = LinkConfig { delay: Duration::from_millis(1), ..LinkConfig::default() };
    let mut pair = Pair::with_links(&config, &link, seed);
    let spec = TransferSpec {
        seed,
        connections: 10_000,
        concurrency: 500,
        bytes_a_to_b: 20,
        bytes_b_to_a: 30,
        port: 80,
        first_local_port: 20_000,
    };
    let limits = Limits { check_every: 97, ..Limits::default() };
    let report = run_transfer(&mut pair, spec, &limits, 0, |_| {})
        .unwrap_or_else(|e| panic!("seed {seed}, link [{link}]: {e}"));
    assert!(report.data_ok, "seed {seed}: {:?}", &report.mismatches[..report.mismatches.len().min(10)]);
    assert_eq!(report.received_by_b, 10_000 * 20);
    assert_eq!(report.received_by_a, 10_000 * 30);
    assert_eq!(report.stats_a.connections_established, 10_000);
    assert_eq!(report.stats_b.connections_established, 10_000);
    assert_eq!(pair.a.stack().connection_count(), 0);
    assert_eq!(pair.b.stack().connection_count(), 0);
}
