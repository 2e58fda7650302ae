//! `utcp bench bulk`: utcp against smoltcp, bulk transfer between two in-memory stacks.
//! `utcp bench parse`: utcp's parser against etherparse's slicing on the corpus datagrams.
//! `utcp bench scale`: memory per connection, cost per segment at scale, SYN flood.
//! `utcp bench replay`: packets per second through replay, tshark beside it ([`crate::cli::bench_replay`]).
//! `utcp bench live`: a kernel client sending to utcp and smoltcp on TUN and to the kernel over veth.

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
    /// Datagrams parsed per second: utcp's parser against etherparse's slicing, on the datagrams
    /// of the project's captures.
    Parse(ParseArgs),
    /// Memory per idle connection, cost per segment with 1, 1,000 and 100,000 connections, and a
    /// SYN flood at a listener.
    Scale(ScaleArgs),
    /// Packets per second through read, parse, stack and compare on one capture, with
    /// `tshark -r FILE -q` on the same file as a reference, and the peak RSS.
    Replay(crate::cli::bench_replay::ReplayArgs),
    /// A kernel client sending to utcp on TUN, smoltcp on TUN and the kernel over veth, in
    /// namespaces of its own (needs root); Gbit/s and ratios.
    #[cfg(target_os = "linux")]
    Live(LiveArgs),
    /// Goodput per loss rate: utcp over the simulated link against Linux through `utcp link`
    /// with the same settings (needs root); Mbit/s and the ratio.
    #[cfg(target_os = "linux")]
    Loss(crate::cli::bench_loss::LossArgs),
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
    /// Make both stacks compute and verify checksums, as on a TUN device (by default neither
    /// does: smoltcp's loopback skips them and utcp uses checksum offload).
    #[arg(long)]
    checksums: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Run only one contender (for measuring or profiling it alone).
    #[arg(long, hide = true)]
    only: Option<Only>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Only {
    Utcp,
    Smoltcp,
    Memcpy,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match args.what {
        Bench::Bulk(a) => bulk(a),
        Bench::Parse(a) => parse(a),
        Bench::Scale(a) => scale(a),
        Bench::Replay(a) => crate::cli::bench_replay::run(a),
        #[cfg(target_os = "linux")]
        Bench::Live(a) => live::run(a),
        #[cfg(target_os = "linux")]
        Bench::Loss(a) => crate::cli::bench_loss::run(a),
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
        None => &[Contender::Utcp, Contender::Smoltcp, Contender::Memcpy],
        Some(Only::Utcp) => &[Contender::Utcp],
        Some(Only::Smoltcp) => &[Contender::Smoltcp],
        Some(Only::Memcpy) => &[Contender::Memcpy],
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
            "bulk transfer, MTU {}, {} bytes, {} KiB buffers, checksums {}, {} rounds (median)",
            settings.mtu,
            settings.bytes,
            settings.buffer / 1024,
            if settings.checksums { "on" } else { "off" },
            report.rounds.len()
        );
        println!("  utcp     {:>8} Gbit/s", show(report.utcp_gbps));
        println!("  smoltcp  {:>8} Gbit/s", show(report.smoltcp_gbps));
        println!(
            "  memcpy   {:>8} Gbit/s  (ceiling: two copies per byte, {}-byte segments, through a ring)",
            show(report.memcpy_gbps),
            bench::mss_for(settings.mtu)
        );
        println!("  ratio    {:>8} (utcp/smoltcp)", show(report.ratio));
        println!("  ceiling  {:>8} (utcp/memcpy)", show(report.ratio_memcpy));
    }
    ExitCode::SUCCESS
}

#[derive(Debug, clap::Args)]
struct ParseArgs {
    /// Directory whose .pcap and .pcapng files make the mix (default: the project's captures).
    #[arg(long)]
    captures: Option<std::path::PathBuf>,
    /// Datagrams each parser parses per round.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    datagrams: u64,
    /// Rounds; each runs every parser once, the order reversed every other round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

fn parse(a: ParseArgs) -> ExitCode {
    use crate::bench_parse;
    let dir = a.captures.clone().unwrap_or_else(bench_parse::default_captures);
    let mix = match bench_parse::load_mix(&dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("utcp bench parse: {e}");
            return ExitCode::from(2);
        }
    };
    let terminal = std::io::stderr().is_terminal();
    let report = bench_parse::run_parse(&mix, a.datagrams, a.rounds as usize, |round, who, run| {
        if terminal || !a.json {
            eprintln!(
                "round {round}: {:<18} {:>12.0} datagrams/s  ({:.3} s)",
                who.name(),
                run.per_second(),
                run.seconds
            );
        }
    });
    if a.json {
        println!("{}", serde_json::to_string(&report).expect("the report serialises"));
        return ExitCode::SUCCESS;
    }
    println!(
        "parse, {} datagrams ({} bytes) from {} captures, {} per round, {} rounds (median)",
        report.mix_datagrams,
        report.mix_bytes,
        report.captures.len(),
        report.datagrams_per_round,
        a.rounds
    );
    println!("  {:<18} {:>14} {:>10}", "parser", "datagrams/s", "accepted");
    for p in &report.parsers {
        println!("  {:<18} {:>14.0} {:>10}", p.parser.name(), p.per_second, p.accepted);
    }
    println!("  ratio utcp/etherparse_sliced {:.2}", report.ratio);
    ExitCode::SUCCESS
}

#[derive(Debug, clap::Args)]
struct ScaleArgs {
    /// Timed segments per connection count and round.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    segments: u64,
    /// Rounds of the timed segments per connection count.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// SYNs in the flood.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    syns: u64,
    /// Send and receive buffer of every connection.
    #[arg(long, default_value = "4K", value_parser = bench::parse_size)]
    buffer: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

fn scale(a: ScaleArgs) -> ExitCode {
    use crate::bench_scale::{self, ScaleSettings};
    let settings = ScaleSettings {
        segments: a.segments as usize,
        buffer: a.buffer as usize,
        flood_syns: a.syns as usize,
        ..ScaleSettings::default()
    };
    let terminal = std::io::stderr().is_terminal();
    let report = bench_scale::run_scale(settings, a.rounds as usize, |line| {
        if terminal || !a.json {
            eprintln!("{line}");
        }
    });
    let r = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("utcp bench scale: {e}");
            return ExitCode::from(1);
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&r).expect("the report serialises"));
        return ExitCode::SUCCESS;
    }
    println!(
        "scale, {} KiB buffers, {} segments of 64 bytes per count and round, {} rounds (median)",
        r.settings.buffer / 1024,
        r.settings.segments,
        a.rounds,
    );
    println!("  memory counted by {}", r.memory_counted_by);
    println!("  bytes per idle connection      {:>10.0}", r.bytes_per_connection);
    println!("  buffer bytes per connection    {:>10.0}  (rings, once used)", r.buffer_bytes_per_connection);
    println!("  {:<12} {:>14} {:>14}", "connections", "ns/seg spread", "ns/seg 1 active");
    for c in &r.counts {
        println!("  {:<12} {:>14.0} {:>14.0}", c.connections, c.ns_per_segment, c.ns_per_segment_one_active);
    }
    println!(
        "  ratio 100000/1 {:.2} spread, {:.2} one active",
        r.ratio_100000_to_1, r.ratio_one_active_100000_to_1
    );
    println!(
        "  SYN flood: {} SYNs, peak {} bytes, {} connections held at the end, client connected: {}{}",
        r.flood.syns,
        r.flood.peak_bytes,
        r.flood.server_connections_at_end,
        r.syn_flood_client_connected,
        r.flood.client_connect_seconds.map_or_else(String::new, |s| format!(" after {s:.3} s"))
    );
    ExitCode::SUCCESS
}

#[cfg(target_os = "linux")]
#[derive(Debug, clap::Args)]
struct LiveArgs {
    /// MTU of the TUN devices and the veth pair, bytes.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(576..))]
    mtu: u16,
    /// Bytes each contender receives (or, with --reverse, sends) per round (suffixes K, M, G are
    /// powers of 1024).
    #[arg(long, default_value = "1G", value_parser = bench::parse_size)]
    bytes: u64,
    /// Rounds; each runs every contender once, the order reversed every other round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Send and receive buffers of the utcp and smoltcp sockets (the kernel keeps its own).
    #[arg(long, default_value = "256K", value_parser = bench::parse_size)]
    buffer: u64,
    /// Keep the veth pair's segmentation and checksum offloads (default: off, as on TUN).
    #[arg(long)]
    veth_offloads: bool,
    /// Open utcp's TUN device with offloads (TSO/GSO super-segments and partial checksums both
    /// ways); compare with --veth-offloads.
    #[arg(long)]
    tun_offloads: bool,
    /// Both: utcp's TUN device with offloads against the kernel over veth with its own.
    #[arg(long)]
    offload: bool,
    /// The other way, as iperf3's -R: every server sends --bytes to the kernel client, so the
    /// sending paths are measured (utcp's TSO super-segments with offloads).
    #[arg(long)]
    reverse: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Run only these contenders (for measuring or profiling one alone).
    #[arg(long, hide = true, value_delimiter = ',')]
    only: Vec<crate::bench_live::LiveContender>,
}

#[cfg(target_os = "linux")]
mod live {
    use super::LiveArgs;
    use crate::bench_live::{self, LiveContender, LiveSettings};
    use std::io::IsTerminal;
    use std::process::ExitCode;

    pub(super) fn run(a: LiveArgs) -> ExitCode {
        if !bench_live::privileged() {
            eprintln!(
                "utcp bench live: needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network \
                 namespaces and TUN devices"
            );
            return ExitCode::from(2);
        }
        let settings = LiveSettings {
            mtu: a.mtu as usize,
            bytes: a.bytes,
            veth_offloads: a.veth_offloads || a.offload,
            tun_offloads: a.tun_offloads || a.offload,
            reverse: a.reverse,
            buffer: a.buffer as usize,
        };
        let contenders = if a.only.is_empty() {
            vec![LiveContender::Utcp, LiveContender::Smoltcp, LiveContender::Kernel]
        } else {
            a.only.clone()
        };
        let terminal = std::io::stderr().is_terminal();
        let report = bench_live::run_live(settings, a.rounds as usize, &contenders, |round, who, run| {
            if terminal || !a.json {
                eprintln!("round {round}: {who:<8} {:>8.2} Gbit/s  ({:.3} s)", run.gbps(), run.seconds);
            }
        });
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                eprintln!("utcp bench live: {e}");
                return ExitCode::from(if bench_live::interrupted() { 130 } else { 1 });
            }
        };
        if a.json {
            println!("{}", serde_json::to_string(&report).expect("the report serialises"));
            return ExitCode::SUCCESS;
        }
        let show = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        println!(
            "live transfer {} a kernel client, MTU {}, {} bytes, {} KiB buffers, veth offloads {}, \
             utcp TUN offloads {}",
            if settings.reverse { "to" } else { "from" },
            settings.mtu,
            settings.bytes,
            settings.buffer / 1024,
            if settings.veth_offloads { "on" } else { "off" },
            if settings.tun_offloads { "on" } else { "off" }
        );
        println!("  {:<8} {:>8} {:>8} {:>8}", "round", "utcp", "smoltcp", "kernel");
        for r in &report.rounds {
            println!(
                "  {:<8} {:>8} {:>8} {:>8}",
                r.round,
                show(r.utcp_gbps),
                show(r.smoltcp_gbps),
                show(r.kernel_gbps)
            );
        }
        println!(
            "  {:<8} {:>8} {:>8} {:>8}  Gbit/s",
            "median",
            show(report.utcp_gbps),
            show(report.smoltcp_gbps),
            show(report.kernel_gbps)
        );
        println!("  ratio utcp/kernel  {}", show(report.ratio));
        println!("  ratio utcp/smoltcp {}", show(report.ratio_smoltcp));
        ExitCode::SUCCESS
    }
}
