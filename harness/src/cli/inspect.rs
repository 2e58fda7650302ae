//! `utcp inspect FILE [--json] [--transcript] [--flow N] [--plot OUT.svg] [--keep-going]`: the TCP
//! connections of a capture, one row each, as a table or JSON; with `--transcript` the table and
//! then each connection's transcript; `--plot` draws one connection's time-sequence graph (SVG).
//!
//! The capture is streamed: memory holds the connections open at once, not the file.
//!
//! Exit status: 0 when the file was read (with `--keep-going`, also when it was damaged after some
//! records; the damage is reported), 2 when it could not be read or `--flow` names no connection.

use crate::capture::flows::{Finishing, Flow, FlowStream, InOrder};
use crate::inspect::{notes_text, render_table, summarize, to_json, transcript, Connection, Report};
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

/// One connection's part of the output, made as soon as the connection is finished in the
/// capture and used in connection order.
struct Piece {
    connection: Connection,
    notes: String,
    transcript: Option<String>,
    /// The connection itself, for `--plot`.
    plotted: Option<Flow>,
}

/// The whole output of `utcp inspect` for `args`, or the message for an unusable input. The
/// capture is streamed: each connection is summarised once it is finished and its packets are
/// dropped (but for the one `--plot` draws).
pub fn inspect(args: &Args) -> Result<String, String> {
    let name = args.file.display().to_string();
    let mut stream = FlowStream::open(&args.file, Finishing::default()).map_err(|e| e.to_string())?;
    // --plot draws the connection --flow names, else the file's only one.
    let plotted = args.plot.as_ref().map(|_| args.flow.unwrap_or(1));
    let mut order = InOrder::default();
    let mut connections = Vec::new();
    let mut notes = String::new();
    let mut transcripts = String::new();
    let mut plot_flow = None;
    let mut error = None;
    while let Some(next) = stream.next_flow() {
        let flow = match next {
            Ok(f) => f,
            Err(e) if args.keep_going => {
                let n = stream.stats().records;
                eprintln!("utcp inspect: warning: {e}; using the {n} records before it");
                error = Some(e.to_string());
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let chosen = args.flow.is_none_or(|n| n == flow.index);
        let piece = Piece {
            connection: summarize(&flow),
            notes: if chosen { notes_text(&[&flow]) } else { String::new() },
            transcript: (chosen && args.transcript && !args.json).then(|| transcript(&flow)),
            plotted: None,
        };
        let piece = Piece { plotted: (plotted == Some(flow.index)).then_some(flow), ..piece };
        for p in order.insert(piece.connection.flow, piece) {
            connections.push(p.connection);
            notes.push_str(&p.notes);
            if let Some(t) = p.transcript {
                transcripts.push('\n');
                transcripts.push_str(&t);
            }
            plot_flow = plot_flow.or(p.plotted);
        }
    }
    let stats = stream.stats();
    let total = stats.connections;
    let mut rep =
        Report { file: name.clone(), records: stats.records, skipped: stats.skipped, connections, error };
    if let Some(n) = args.flow {
        if n == 0 || n > total {
            return Err(format!("{name}: no flow {n} (the file has {total} TCP connections)"));
        }
    }
    if let Some(path) = &args.plot {
        let (Some(flow), 1) = (&plot_flow, if args.flow.is_some() { 1 } else { total }) else {
            return Err(format!("--plot needs one connection; {name} has {total}: choose one with --flow N"));
        };
        let file = args.file.file_name().map_or(name.clone(), |f| f.to_string_lossy().into_owned());
        let chart = crate::plot::Chart { window: args.plot_window, ..flow_chart(flow, &file) };
        let svg = render_svg(&chart)?;
        std::fs::write(path, svg).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    if let Some(n) = args.flow {
        rep.connections.retain(|c| c.flow == n);
    }
    if args.json {
        return Ok(format!("{}\n", to_json(&rep)));
    }
    let mut out = render_table(&rep);
    out.push_str(&notes);
    if args.transcript {
        out.push_str(&transcripts);
    }
    Ok(out)
}
