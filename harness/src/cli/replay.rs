//! `utcp replay` (stub: filled in by its own change).

use std::process::ExitCode;

/// Arguments of `utcp replay`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("utcp: this subcommand is not built yet");
    ExitCode::from(2)
}
