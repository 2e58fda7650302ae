//! Traces a two-stack transfer over the impairment link, one line per datagram, for debugging:
//! `cargo run --example trace_transfer -- SEED LOSS_PERCENT BYTES_A_TO_B BYTES_B_TO_A`.

use utcp::time::Duration;
use utcp::wire::{parse_datagram, ChecksumMode, Transport};
use utcp::Config;
use utcp_harness::netsim::LinkConfig;
use utcp_harness::pair::{Limits, Pair};
use utcp_harness::transfer::{run_transfer, TransferSpec};

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let (seed, loss, ab, ba) = (args[0], args[1], args[2], args[3]);
    let mut c = if std::env::var("LINUX").is_ok() { Config::linux_like() } else { Config::default() };
    c.tcp.msl = Duration::from_secs(1);
    c.tcp.timestamps = std::env::var("TS").map(|v| v != "0").unwrap_or(true);
    let link = LinkConfig {
        delay: Duration::from_millis(10),
        rate: Some(12_500_000),
        loss: loss as f64 / 100.0,
        ..LinkConfig::default()
    };
    let mut pair = Pair::with_links(&c, &link, seed);
    let quiet = std::env::var("QUIET").is_ok();
    pair.trace = Some(Box::new(move |t, side, p| {
        if quiet {
            return;
        }
        if let Ok(d) = parse_datagram(p, ChecksumMode::Ignore) {
            if let Transport::Tcp(s) = d.transport {
                println!(
                    "{t} {side:?} {}:{} > {} seq {} ack {} len {} win {} {:?}",
                    d.ip.src,
                    s.src_port,
                    s.dst_port,
                    s.seq,
                    s.ack,
                    s.payload.len(),
                    s.window,
                    s.flags
                );
            }
        }
    }));
    let r = run_transfer(&mut pair, TransferSpec::bulk(seed, ab, ba), &Limits::default(), 0, |_| {});
    println!("{:?}", r.map(|r| r.data_ok));
    println!("A {:?}\nB {:?}", pair.a.stack().stats(), pair.b.stack().stats());
    for s in [&pair.a, &pair.b] {
        for h in 0..4u32 {
            let _ = h;
        }
        let _ = s;
    }
}
