//! `utcp bench loss`: per loss rate, utcp's selftest goodput against Linux through `utcp link`
//! with the same link; the table and the ratio utcp/linux, or one JSON object.

use crate::bench::parse_size;
use crate::bench_loss::{self, LossReport, LossSettings};
use crate::netns::{interrupted, privileged};
use std::io::IsTerminal;
use std::process::ExitCode;

/// Arguments of `utcp bench loss`.
#[derive(Debug, clap::Args)]
pub struct LossArgs {
    /// Bytes per transfer, utcp and Linux alike (suffixes K, M, G are powers of 1024).
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    bytes: u64,
    /// Seeds (comma-separated); each loss rate runs once per seed, the figures are medians.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    seeds: Vec<u64>,
    /// Loss rates in percent (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,0.1,1,2,5", value_parser = crate::cli::selftest::parse_percent)]
    losses: Vec<f64>,
    /// The kernel's congestion control for the Linux runs: cubic (Linux's built-in default, the
    /// one `Config::linux_like()` models), another the kernel has (bbr, reno), or `system` for
    /// whatever the namespaces inherit.
    #[arg(long, default_value = "cubic")]
    linux_cc: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs `utcp bench loss`.
pub fn run(a: LossArgs) -> ExitCode {
    if !privileged() {
        eprintln!(
            "utcp bench loss: needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) for the namespaces and TUN \
             devices of `utcp link`"
        );
        return ExitCode::from(2);
    }
    if a.bytes == 0 {
        eprintln!("utcp bench loss: --bytes must be positive");
        return ExitCode::from(2);
    }
    let linux_congestion_control = (a.linux_cc != "system").then_some(a.linux_cc);
    let settings =
        LossSettings { bytes: a.bytes, seeds: a.seeds, losses: a.losses, linux_congestion_control };
    let chatty = std::io::stderr().is_terminal() || !a.json;
    let report = bench_loss::run_loss(&settings, |line| {
        if chatty {
            eprintln!("{line}");
        }
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("utcp bench loss: {e}");
            return ExitCode::from(if interrupted() { 130 } else { 1 });
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&report).expect("the report serialises"));
    } else {
        print!("{}", table(&report));
    }
    ExitCode::SUCCESS
}

/// The report as a table a person reads.
fn table(r: &LossReport) -> String {
    let show = |x: Option<f64>, prec: usize| x.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"));
    let s = &r.settings;
    let seeds: Vec<String> = s.seeds.iter().map(u64::to_string).collect();
    let mut out = format!(
        "goodput under loss, {} bytes one way, link [{}] each way, seeds {} (median); Linux {} through utcp link\n",
        s.bytes,
        r.link,
        seeds.join(","),
        r.linux_congestion_control.as_deref().unwrap_or("(unknown congestion control)")
    );
    out +=
        &format!("  {:>6}  {:>10}  {:>11}  {:>6}  {:>12}\n", "loss", "utcp", "linux", "ratio", "utcp RTOs");
    for row in &r.rows {
        let rtos: Vec<String> = row.runs.iter().map(|x| x.utcp_timeouts.to_string()).collect();
        out += &format!(
            "  {:>5}%  {:>10}  {:>11}  {:>6}  {:>10}  {:>8.1}%{}\n",
            row.loss_pct,
            show(row.utcp_mbps, 1),
            show(row.linux_mbps, 1),
            show(row.ratio, 2),
            rtos.join(","),
            row.late_share * 100.0,
            if row.link_limited { "  (link-limited)" } else { "" }
        );
    }
    out += "  Mbit/s; ratio = utcp/linux; late>1ms: data datagrams the relay handed out over 1 ms late\n";
    out += &format!(
        "  the relay forwards up to {:.0} Mbit/s (Linux through a perfect utcp link, {} bytes); \
         Linux over veth {:.0} Mbit/s\n",
        r.ceiling.relay_mbps, r.ceiling.bytes, r.ceiling.veth_mbps
    );
    if let Some(note) = &r.note {
        out += &format!("  note: {note}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_loss::{Ceiling, LinuxRun, LossRow, LossRun, LOSSES};
    use crate::link::Lateness;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: LossArgs,
    }

    #[test]
    fn the_default_loss_rates_are_the_bench_ones() {
        let a = Cli::try_parse_from(["loss"]).unwrap().args;
        assert_eq!(a.losses, LOSSES);
        assert_eq!((a.bytes, a.seeds.as_slice(), a.linux_cc.as_str()), (16 << 20, &[1][..], "cubic"));
        let a = Cli::try_parse_from(["loss", "--losses", "0.5,3", "--seeds", "4,5"]).unwrap().args;
        assert_eq!((a.losses, a.seeds), (vec![0.5, 3.0], vec![4, 5]));
        assert!(Cli::try_parse_from(["loss", "--losses", "200"]).is_err());
    }

    fn row(loss_pct: f64, utcp: f64, linux: f64, link_limited: bool) -> LossRow {
        let linux_run = LinuxRun {
            mbps: linux,
            seconds: 1.0,
            sent: 100,
            lost: 1,
            queue_drops: 0,
            delivered: 99,
            lateness: Lateness::default(),
            late_share: 0.02,
            device_drops: [0, 0],
        };
        LossRow {
            loss: loss_pct / 100.0,
            loss_pct,
            utcp_mbps: Some(utcp),
            linux_mbps: Some(linux),
            ratio: Some(utcp / linux),
            link_limited,
            late_share: 0.02,
            runs: vec![LossRun {
                seed: 1,
                utcp_mbps: Some(utcp),
                utcp_timeouts: 2,
                utcp_retransmissions: 9,
                linux: linux_run,
            }],
        }
    }

    #[test]
    fn the_table_shows_each_rate_the_ratio_and_which_figures_the_relay_limits() {
        let report = LossReport {
            settings: LossSettings {
                bytes: 1 << 20,
                seeds: vec![1],
                losses: vec![0.0, 5.0],
                linux_congestion_control: Some("cubic".into()),
            },
            link: "delay 10ms rate 1000Mbit/s".into(),
            linux_congestion_control: Some("cubic".into()),
            rows: vec![row(0.0, 900.0, 800.0, true), row(5.0, 2.0, 1.6, false)],
            ceiling: Ceiling {
                bytes: 64 << 20,
                relay_mbps: 850.0,
                veth_mbps: 3000.0,
                relay_device_drops: [0, 0],
            },
            note: Some("the relay may limit the Linux figure at loss 0%".into()),
        };
        let t = table(&report);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("1048576 bytes") && lines[0].contains("Linux cubic"), "{t}");
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>()[..5],
            ["0%", "900.0", "800.0", "1.12", "2"]
        );
        assert!(lines[2].ends_with("(link-limited)"), "{t}");
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["5%", "2.0", "1.6", "1.25", "2", "2.0%"]
        );
        assert!(t.contains("up to 850 Mbit/s") && t.contains("veth 3000 Mbit/s"), "{t}");
        assert!(t.contains("note: the relay may limit"), "{t}");
    }
}
