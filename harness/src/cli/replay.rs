//! `utcp replay FILE [--flow N] [--as server|client] [--mode strict|adaptive] [--profile NAME]
//! [--transcript] [--plot OUT.svg] [--out FILE.pcapng] [--json] [--emit-script FILE.pkt]
//! [--keep-going]`: plays the recorded peer of each TCP connection (or of `--flow N`) against utcp
//! and compares utcp's answers with the recording.
//!
//! Output: a summary of each connection (completed or why not; matched, differed, missing and
//! extra; the first difference; each kind of note once with a count); with `--transcript` the
//! per-packet transcript of utcp's side after it; with `--json` one object
//! `{ "file": ..., "connections": [...] }`. `--plot` writes a time-sequence graph (SVG).
//! Exit status: 0 when every replayed connection completed and nothing differed beyond the
//! profile, 1 when something differed, 2 when the input could not be read (or `--flow` names no
//! connection, or an output file cannot be written).

use crate::capture::flows::{split, Side};
use crate::capture::CaptureReader;
use crate::plot::{render_svg, replay_chart};
use crate::replay::progress::Progress;
use crate::replay::report::{script, summary, summary_line, to_json, transcript, write_pcapng};
use crate::replay::{replay_flow, Mode, Options, Profile, Replay};
use std::path::PathBuf;
use std::process::ExitCode;

/// Which recorded endpoint utcp plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// The endpoint that answered the SYN.
    Server,
    /// The endpoint that sent the SYN.
    Client,
}

/// How the peer's packets are injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Exactly as recorded, numbers shifted into utcp's space.
    Strict,
    /// Never acknowledging what utcp has not sent.
    Adaptive,
}

/// What counts as equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// Every field, option and byte; time within 1 ms.
    Exact,
    /// Kinds, flags, relative seq/ack, option kinds and data; window, option values and time
    /// (within 500 ms) listed but allowed.
    Linux,
    /// Kinds and data only.
    Loose,
    /// As linux, but pure ACKs are matched by the data they cover, not one for one: a receiver
    /// that acknowledges every second segment and one that batched its ACKs agree where the same
    /// data is acknowledged (ack placement is listed as tolerated).
    Acks,
}

/// Arguments of `utcp replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The capture (pcap or pcapng).
    pub file: PathBuf,
    /// Only this connection (1-based, as `utcp inspect` numbers them).
    #[arg(long, value_name = "N")]
    pub flow: Option<usize>,
    /// The recorded endpoint utcp plays.
    #[arg(long = "as", value_enum, default_value = "server")]
    pub role: RoleArg,
    /// How the peer's packets are injected.
    #[arg(long, value_enum, default_value = "adaptive")]
    pub mode: ModeArg,
    /// What counts as equal.
    #[arg(long, value_enum, default_value = "linux")]
    pub profile: ProfileArg,
    /// Write the replay (both directions, raw IP) here, with a comment on each packet that differs.
    #[arg(long, value_name = "FILE.pcapng")]
    pub out: Option<PathBuf>,
    /// Print one JSON object with a `connections` array instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// After the summary, print every packet: the transcript of utcp's side of each connection,
    /// with a note on each packet that differs.
    #[arg(long)]
    pub transcript: bool,
    /// Draw a time-sequence graph (sequence number against time, recorded endpoint and utcp on
    /// one chart) as SVG here; needs one connection (`--flow N`, or a file with only one).
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
    /// The part of the graph to draw in detail under the overview, in seconds from the first
    /// packet (`1.0:1.05`); without it the part where the data moved.
    #[arg(long, value_name = "FROM:TO", requires = "plot", value_parser = crate::plot::parse_window)]
    pub plot_window: Option<(f64, f64)>,
    /// Write a packetdrill-dialect script that reproduces the replay (needs one connection:
    /// `--flow N`, or a file with only one).
    #[arg(long, value_name = "FILE.pkt")]
    pub emit_script: Option<PathBuf>,
    /// Use the records read before damage instead of refusing the file.
    #[arg(long)]
    pub keep_going: bool,
}

impl Args {
    /// The replay options the arguments ask for.
    pub fn options(&self) -> Options {
        Options {
            role: match self.role {
                RoleArg::Server => Side::Server,
                RoleArg::Client => Side::Client,
            },
            mode: match self.mode {
                ModeArg::Strict => Mode::Strict,
                ModeArg::Adaptive => Mode::Adaptive,
            },
            profile: match self.profile {
                ProfileArg::Exact => Profile::Exact,
                ProfileArg::Linux => Profile::Linux,
                ProfileArg::Loose => Profile::Loose,
                ProfileArg::Acks => Profile::Acks,
            },
            ..Options::default()
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Text for stdout.
    pub stdout: String,
    /// The exit status: 0 all completed and equal, 1 something differed.
    pub status: u8,
    /// The replays.
    pub replays: Vec<Replay>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match replay(&args) {
        Ok(o) => {
            // A closed pipe (`| head`) is not an error of the replay.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), o.stdout.as_bytes());
            ExitCode::from(o.status)
        }
        Err(msg) => {
            eprintln!("utcp replay: {msg}");
            ExitCode::from(2)
        }
    }
}

/// The whole of `utcp replay` for `args` (files written), or the message for unusable input.
pub fn replay(args: &Args) -> Result<Outcome, String> {
    let reader = CaptureReader::open(&args.file).map_err(|e| e.to_string())?;
    let all = reader.read_all(args.keep_going).map_err(|e| e.to_string())?;
    if let Some(e) = &all.error {
        eprintln!("utcp replay: warning: {e}; using the {} records before it", all.records.len());
    }
    let flows = split(&all.records);
    let name = args.file.display().to_string();
    let chosen: Vec<usize> = match args.flow {
        Some(n) if n == 0 || n > flows.flows.len() => {
            return Err(format!("{name}: no flow {n} (the file has {} TCP connections)", flows.flows.len()));
        }
        Some(n) => vec![n - 1],
        None => (0..flows.flows.len()).collect(),
    };
    for (flag, given) in [("--emit-script", args.emit_script.is_some()), ("--plot", args.plot.is_some())] {
        if given && chosen.len() != 1 {
            return Err(format!(
                "{flag} needs one connection; {name} has {}: choose one with --flow N",
                chosen.len()
            ));
        }
    }
    let opts = args.options();
    let total: u64 = chosen.iter().map(|&i| flows.flows[i].packets.len() as u64).sum();
    let progress = Progress::new(total, "packets");
    let mut replays = Vec::new();
    for &i in &chosen {
        let flow = &flows.flows[i];
        progress.set_message(format!("flow {}", flow.index));
        tracing::debug!(flow = flow.index, packets = flow.packets.len(), "replaying");
        let r = replay_flow(flow, &opts);
        tracing::info!(flow = flow.index, summary = %summary_line(&r), "replayed");
        progress.inc(flow.packets.len() as u64);
        replays.push(r);
    }
    progress.finish();
    if let Some(out) = &args.out {
        write_pcapng(out, &replays).map_err(|e| e.to_string())?;
    }
    if let Some(path) = &args.emit_script {
        if let [r] = replays.as_slice() {
            std::fs::write(path, script(r, &name))
                .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        }
    }
    if let Some(path) = &args.plot {
        if let [r] = replays.as_slice() {
            let file = args.file.file_name().map_or(name.clone(), |f| f.to_string_lossy().into_owned());
            let chart = crate::plot::Chart { window: args.plot_window, ..replay_chart(r, &file) };
            let svg = render_svg(&chart)?;
            std::fs::write(path, svg).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        }
    }
    let mut stdout = String::new();
    if args.json {
        stdout.push_str(&to_json(&name, &replays).to_string());
        stdout.push('\n');
    } else {
        stdout.push_str(&text_report(args, &name, &replays));
    }
    let status = if replays.iter().all(Replay::ok) { 0 } else { 1 };
    Ok(Outcome { stdout, status, replays })
}

/// The text output: a heading, each connection's summary, then (with `--transcript`) each
/// connection's transcript, or a line saying how to get them.
fn text_report(args: &Args, name: &str, replays: &[Replay]) -> String {
    let mut out = String::new();
    if replays.is_empty() {
        out.push_str(&format!("{name}: no TCP connection to replay\n"));
        return out;
    }
    let opts = args.options();
    let n = replays.len();
    out.push_str(&format!(
        "{name}: {n} TCP {} replayed, utcp as {} ({} mode, {} profile)\n",
        if n == 1 { "connection" } else { "connections" },
        crate::replay::report::role_name(opts.role),
        opts.mode.name(),
        opts.profile.name()
    ));
    for r in replays {
        out.push_str(&summary(r));
    }
    if args.transcript {
        for r in replays {
            out.push('\n');
            out.push_str(&transcript(r));
        }
    } else {
        let flow = if n == 1 { "" } else { "--flow N " };
        out.push_str(&format!(
            "(every packet: --transcript; a time-sequence graph: {flow}--plot OUT.svg; for Wireshark: --out OUT.pcapng)\n"
        ));
    }
    out
}
