//! `utcp bench replay`: packets per second through read, parse, stack and compare (the capture
//! streamed as `utcp replay` streams it), the most connections held open at once, with the same
//! file read by `tshark -r FILE -q` in the same run as a reference, and the process's peak RSS.
//!
//! Must not depend on: terminals beyond stderr's round lines.

use crate::bench::median;
use crate::capture::flows::{Finishing, FlowStream, Side};
use crate::cli::replay::RoleArg;
use crate::replay::{replay_flow, Options};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant as WallClock;

/// Arguments of `utcp bench replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The capture to replay (pcap or pcapng).
    file: PathBuf,
    /// The recorded endpoint utcp plays.
    #[arg(long = "as", value_enum, default_value_t = RoleArg::Server)]
    role: RoleArg,
    /// Rounds; each replays every connection of the file once and runs tshark once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// One round of utcp's replay of the whole file.
struct Round {
    packets: u64,
    connections: usize,
    /// The most connections held open at once while streaming the file.
    peak_open_flows: usize,
    seconds: f64,
}

/// Streams the file as `utcp replay` does and replays each connection once it is finished.
fn replay_round(file: &Path, opts: &Options) -> Result<Round, String> {
    let start = WallClock::now();
    let finishing = Finishing { close_grace: opts.tail, ..Finishing::default() };
    let mut stream = FlowStream::open(file, finishing).map_err(|e| e.to_string())?;
    let mut sink = 0usize;
    while let Some(flow) = stream.next_flow() {
        let r = replay_flow(&flow.map_err(|e| e.to_string())?, opts);
        sink = sink.wrapping_add(usize::from(r.ok()));
    }
    std::hint::black_box(sink);
    let s = stream.stats();
    Ok(Round {
        packets: s.records,
        connections: s.connections,
        peak_open_flows: s.peak_open_flows,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Seconds tshark takes to read the file, or why it could not.
fn tshark_round(file: &Path) -> Result<f64, String> {
    let start = WallClock::now();
    let status = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("tshark could not run ({e}); is it installed?"))?;
    if !status.success() {
        return Err(format!("tshark -r {} -q failed: {status}", file.display()));
    }
    Ok(start.elapsed().as_secs_f64())
}

/// The process's peak resident set (VmHWM) in bytes, where /proc tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Runs `utcp bench replay`.
pub fn run(a: ReplayArgs) -> ExitCode {
    let opts = Options { role: a.role.into(), ..Options::default() };
    let terminal = std::io::stderr().is_terminal();
    let talk = terminal || !a.json;
    let mut utcp = Vec::new();
    let mut tshark = Vec::new();
    let mut tshark_missing: Option<String> = None;
    let (mut packets, mut connections, mut peak_open_flows) = (0, 0, 0);
    for round in 1..=a.rounds {
        let r = match replay_round(&a.file, &opts) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("utcp bench replay: {e}");
                return ExitCode::from(2);
            }
        };
        (packets, connections) = (r.packets, r.connections);
        peak_open_flows = peak_open_flows.max(r.peak_open_flows);
        if talk {
            eprintln!(
                "round {round}: utcp   {:>12.0} packets/s  ({:.3} s)",
                r.packets as f64 / r.seconds,
                r.seconds
            );
        }
        utcp.push(r.seconds);
        if tshark_missing.is_none() {
            match tshark_round(&a.file) {
                Ok(s) => {
                    if talk {
                        eprintln!("round {round}: tshark {:>12.0} packets/s  ({s:.3} s)", packets as f64 / s);
                    }
                    tshark.push(s);
                }
                Err(e) => tshark_missing = Some(e),
            }
        }
    }
    let seconds = median(utcp).expect("at least one round");
    let tshark_seconds = median(tshark);
    let pps = packets as f64 / seconds;
    let tshark_pps = tshark_seconds.map(|s| packets as f64 / s);
    let rss = peak_rss_bytes();
    if a.json {
        let v = serde_json::json!({
            "file": a.file.display().to_string(),
            "role": if opts.role == Side::Server { "server" } else { "client" },
            "rounds": a.rounds,
            "packets": packets,
            "connections": connections,
            "peak_open_flows": peak_open_flows,
            "seconds": seconds,
            "packets_per_second": pps,
            "tshark_seconds": tshark_seconds,
            "tshark_packets_per_second": tshark_pps,
            "tshark_skipped": tshark_missing,
            "peak_rss_bytes": rss,
        });
        println!("{v}");
        return ExitCode::SUCCESS;
    }
    println!(
        "replay of {} as {}, {packets} packets in {connections} connections ({peak_open_flows} open at \
         most), {} rounds (median)",
        a.file.display(),
        if opts.role == Side::Server { "server" } else { "client" },
        a.rounds
    );
    println!("  {:<8} {:>14} {:>10}", "reader", "packets/s", "seconds");
    println!("  {:<8} {:>14.0} {:>10.3}", "utcp", pps, seconds);
    match (tshark_pps, tshark_seconds, &tshark_missing) {
        (Some(p), Some(s), _) => println!("  {:<8} {:>14.0} {:>10.3}  (tshark -r FILE -q)", "tshark", p, s),
        (_, _, Some(why)) => println!("  tshark   skipped: {why}"),
        _ => println!("  tshark   skipped"),
    }
    match rss {
        Some(b) => println!("  peak RSS {:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        None => println!("  peak RSS unknown (no /proc/self/status)"),
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_round_counts_every_packet_and_connection_of_the_file() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures/bulk-2mb-ipv4.pcap");
        let r = replay_round(&file, &Options::default()).expect("the corpus capture replays");
        assert_eq!((r.packets, r.connections, r.peak_open_flows), (1721, 1, 1));
    }
}
