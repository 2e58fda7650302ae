//! `utcp selftest`: two in-memory stacks through the seeded impairment link; exit 0 when the data
//! arrived identical both ways, 1 otherwise.

use crate::bench::parse_size;
use crate::selftest::{self, Reduction, Settings};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::process::ExitCode;
use utcp::config::CongestionKind;

/// Arguments of `utcp selftest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bytes moved in each direction (suffixes K, M, G are powers of 1024).
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    bytes: u64,
    /// Move data from A to B only (B only acknowledges).
    #[arg(long)]
    one_way: bool,
    /// Loss of each link direction, in percent (0 to 100).
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    loss: f64,
    /// Seed of the data, the links and the ISN secrets; the same seed repeats the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The congestion controller both stacks run (the Linux profile's default is CUBIC).
    #[arg(long, value_enum, default_value_t = Congestion::Cubic)]
    congestion: Congestion,
    /// What a congestion event reduces the window from: `flight`, the flight size (RFC 5681
    /// §3.1, RFC 9438 §4.6; utcp's own recovery), or `window`, the congestion window, as Linux
    /// does (then both stacks run exactly `Config::linux_like()`).
    #[arg(long, value_enum, default_value_t = ReductionArg::Flight)]
    reduction: ReductionArg,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

/// `--reduction`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ReductionArg {
    /// ssthresh from the flight size (RFC 5681 §3.1 (4), RFC 9438 §4.6).
    Flight,
    /// ssthresh from the congestion window (Linux).
    Window,
}

/// `--congestion`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Congestion {
    /// RFC 5681 / RFC 6582.
    Reno,
    /// RFC 9438.
    Cubic,
}

pub(crate) fn parse_percent(text: &str) -> Result<f64, String> {
    let v: f64 =
        text.trim().trim_end_matches('%').parse().map_err(|_| format!("{text:?}: expected a percentage"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{text:?}: a percentage is between 0 and 100"))
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let congestion = match args.congestion {
        Congestion::Reno => CongestionKind::Reno,
        Congestion::Cubic => CongestionKind::Cubic,
    };
    let settings = Settings {
        bytes: args.bytes,
        one_way: args.one_way,
        loss: args.loss / 100.0,
        seed: args.seed,
        congestion,
        reduction: match args.reduction {
            ReductionArg::Flight => Reduction::Flight,
            ReductionArg::Window => Reduction::Window,
        },
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(
            Some(if settings.one_way { settings.bytes } else { 2 * settings.bytes }),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let outcome = selftest::run(&settings, |p| {
        bar.set_position(p.received);
        bar.set_message(format!("virtual time {:.1} s", p.now.total_micros() as f64 / 1e6));
    });
    bar.finish_and_clear();

    if args.json {
        println!("{}", outcome.to_json());
    } else {
        print_summary(&outcome);
    }
    if outcome.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_summary(o: &selftest::Outcome) {
    let s = &o.settings;
    let how = if s.one_way { "A->B only" } else { "each way" };
    println!("utcp selftest: {} bytes {how}, link [{}] both ways, seed {}", s.bytes, s.link(), s.seed);
    let r = match &o.result {
        Ok(r) => r,
        Err(e) => {
            println!("FAILED {e}");
            println!("reproduce: {}", reproduce(s));
            return;
        }
    };
    println!("  A->B  {:>12} bytes read by B, sha256 {}", r.received_by_b, r.sha256_a_to_b);
    println!("  B->A  {:>12} bytes read by A, sha256 {}", r.received_by_a, r.sha256_b_to_a);
    println!(
        "  virtual time  {:.3} s to the last byte, {:.3} s until no state is left; goodput {:.1} Mbit/s {}",
        r.data_time.total_micros() as f64 / 1e6,
        r.virtual_time.total_micros() as f64 / 1e6,
        o.virtual_mbps().unwrap_or(0.0),
        if s.one_way { "A->B" } else { "each way" }
    );
    println!(
        "  wall clock    {:.3} s, {:.1} Mbit/s processed ({} steps)",
        o.wall.as_secs_f64(),
        o.wall_mbps(),
        r.steps
    );
    for (name, st) in [("A", &r.stats_a), ("B", &r.stats_b)] {
        println!(
            "  stack {name}  segments out {}, retransmissions {} (timeouts {}, fast retransmits {}), \
             checksum failures {}, drops {}",
            st.segments_out,
            st.retransmissions,
            st.timeouts,
            st.fast_retransmits,
            st.checksum_failures,
            st.total_drops()
        );
    }
    for (name, l) in [("A->B", &r.link_a_to_b), ("B->A", &r.link_b_to_a)] {
        println!("  link {name}  sent {}, lost {}, delivered {}", l.sent, l.lost, l.delivered);
    }
    if o.ok() {
        println!("OK: the data arrived identical both ways and both stacks hold no connection state");
    } else {
        println!("FAILED: the data differs: {:?}", r.mismatches);
        println!("reproduce: {}", reproduce(s));
    }
}

fn reproduce(s: &Settings) -> String {
    let one_way = if s.one_way { " --one-way" } else { "" };
    format!(
        "utcp selftest --bytes {} --loss {} --seed {} --reduction {}{one_way}",
        s.bytes,
        s.loss * 100.0,
        s.seed,
        s.reduction.as_str()
    )
}
