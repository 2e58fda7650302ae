//! `utcp bench bulk`: utcp against smoltcp, bulk transfer between two in-memory stacks.

use crate::bench::{self, BulkSettings, Contender};
use std::io::IsTerminal;
use std::process::ExitCode;

/// Arguments of `utcp bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: Bench,
}

#[derive(Debug, clap::Subcommand)]
enum Bench {
    /// Bulk transfer between two in-memory stacks, utcp and smoltcp alternating; Gbit/s and ratio.
    Bulk(BulkArgs),
}

#[derive(Debug, clap::Args)]
struct BulkArgs {
    /// Link MTU in bytes (the largest IP datagram).
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(576..))]
    mtu: u16,
    /// Bytes per transfer (suffixes K, M, G are powers of 1024).
    #[arg(long, default_value = "1G", value_parser = bench::parse_size)]
    bytes: u64,
    /// Socket send and receive buffers.
    #[arg(long, default_value = "256K", value_parser = bench::parse_size)]
    buffer: u64,
    /// Rounds; each runs utcp and smoltcp once, the order alternating.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Make utcp compute and verify TCP checksums (smoltcp's loopback skips them, so by default
    /// utcp uses checksum offload and both do the same work).
    #[arg(long)]
    checksums: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Run only one side (for measuring it alone).
    #[arg(long, hide = true)]
    only: Option<Only>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Only {
    Utcp,
    Smoltcp,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match args.what {
        Bench::Bulk(a) => bulk(a),
    }
}

fn bulk(a: BulkArgs) -> ExitCode {
    let settings = BulkSettings {
        mtu: a.mtu as usize,
        bytes: a.bytes,
        buffer: a.buffer as usize,
        checksums: a.checksums,
    };
    let contenders: &[Contender] = match a.only {
        None => &[Contender::Utcp, Contender::Smoltcp],
        Some(Only::Utcp) => &[Contender::Utcp],
        Some(Only::Smoltcp) => &[Contender::Smoltcp],
    };
    let terminal = std::io::stderr().is_terminal();
    let report = bench::run_bulk(settings, a.rounds as usize, contenders, |round, who, run| {
        if terminal || !a.json {
            eprintln!("round {round}: {who:<8} {:>8.2} Gbit/s  ({:.3} s)", run.gbps(), run.seconds);
        }
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("utcp bench bulk: {e}");
            return ExitCode::from(1);
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&report).expect("the report serialises"));
    } else {
        let show = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        println!(
            "bulk transfer, MTU {}, {} bytes, {} KiB buffers, {} rounds (median)",
            settings.mtu,
            settings.bytes,
            settings.buffer / 1024,
            report.rounds.len()
        );
        println!("  utcp     {:>8} Gbit/s", show(report.utcp_gbps));
        println!("  smoltcp  {:>8} Gbit/s", show(report.smoltcp_gbps));
        println!("  ratio    {:>8} (utcp/smoltcp)", show(report.ratio));
    }
    ExitCode::SUCCESS
}
