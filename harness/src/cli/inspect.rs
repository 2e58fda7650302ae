//! `utcp inspect FILE [--json] [--transcript] [--flow N] [--plot OUT.svg] [--keep-going]`: the TCP
//! connections of a capture, one row each, as a table or JSON; with `--transcript` the table and
//! then each connection's transcript; `--plot` draws one connection's time-sequence graph (SVG).
//!
//! Exit status: 0 when the file was read (with `--keep-going`, also when it was damaged after some
//! records; the damage is reported), 2 when it could not be read or `--flow` names no connection.

use crate::capture::flows::split;
use crate::capture::CaptureReader;
use crate::inspect::{notes_text, render_table, report, to_json, transcript};
use crate::plot::{flow_chart, render_svg};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `utcp inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The capture (pcap or pcapng).
    pub file: PathBuf,
    /// Print one JSON object with a `connections` array instead of the table.
    #[arg(long)]
    pub json: bool,
    /// After the table, print the transcript of each connection (or of `--flow N`) in the
    /// packetdrill notation.
    #[arg(long)]
    pub transcript: bool,
    /// Draw the time-sequence graph of one connection (`--flow N`, or a file with only one) as
    /// SVG here: the direction that carried more data, the other side's ACKs, window and SACKs.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
    /// The part of the graph to draw in detail under the overview, in seconds from the first
    /// packet (`1.0:1.05`); without it the part where the data moved.
    #[arg(long, value_name = "FROM:TO", requires = "plot", value_parser = crate::plot::parse_window)]
    pub plot_window: Option<(f64, f64)>,
    /// Only this connection (1-based, as numbered in the table).
    #[arg(long, value_name = "N")]
    pub flow: Option<usize>,
    /// Use the records read before damage instead of refusing the file.
    #[arg(long)]
    pub keep_going: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match inspect(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("utcp inspect: {msg}");
            ExitCode::from(2)
        }
    }
}

/// The whole output of `utcp inspect` for `args`, or the message for an unusable input.
pub fn inspect(args: &Args) -> Result<String, String> {
    let reader = CaptureReader::open(&args.file).map_err(|e| e.to_string())?;
    let all = reader.read_all(args.keep_going).map_err(|e| e.to_string())?;
    if let Some(e) = &all.error {
        eprintln!("utcp inspect: warning: {e}; using the {} records before it", all.records.len());
    }
    let flows = split(&all.records);
    let name = args.file.display().to_string();
    let mut rep = report(&name, all.records.len() as u64, &flows, all.error.as_ref().map(|e| e.to_string()));
    let chosen: Vec<usize> = match args.flow {
        Some(n) if n == 0 || n > flows.flows.len() => {
            return Err(format!("{name}: no flow {n} (the file has {} TCP connections)", flows.flows.len()));
        }
        Some(n) => vec![n - 1],
        None => (0..flows.flows.len()).collect(),
    };
    if let Some(path) = &args.plot {
        let [i] = chosen.as_slice() else {
            return Err(format!(
                "--plot needs one connection; {name} has {}: choose one with --flow N",
                chosen.len()
            ));
        };
        let file = args.file.file_name().map_or(name.clone(), |f| f.to_string_lossy().into_owned());
        let chart = crate::plot::Chart { window: args.plot_window, ..flow_chart(&flows.flows[*i], &file) };
        let svg = render_svg(&chart)?;
        std::fs::write(path, svg).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    if args.flow.is_some() {
        rep.connections.retain(|c| chosen.contains(&(c.flow - 1)));
    }
    if args.json {
        return Ok(format!("{}\n", to_json(&rep)));
    }
    let mut out = render_table(&rep);
    out.push_str(&notes_text(&chosen.iter().map(|&i| &flows.flows[i]).collect::<Vec<_>>()));
    if args.transcript {
        for &i in &chosen {
            out.push('\n');
            out.push_str(&transcript(&flows.flows[i]));
        }
    }
    Ok(out)
}
