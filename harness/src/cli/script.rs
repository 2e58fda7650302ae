//! `utcp script FILE...`: runs packetdrill-dialect scripts and prints pass or fail for each.
//!
//! Exit 0 when every script passed, 1 when one failed, 2 when one could not be read or parsed.

use crate::script::{find_scripts, run_file, FileOutcome};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `utcp script`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Script files, or directories searched for `.pkt` files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the full transcript of every script.
    #[arg(long)]
    pub verbose: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The JSON form of one script's result.
fn to_json(o: &FileOutcome, verbose: bool) -> serde_json::Value {
    match &o.outcome {
        Err(e) => serde_json::json!({ "path": o.path, "passed": false, "error": e }),
        Ok(out) => {
            let mut v = serde_json::json!({ "path": o.path, "passed": out.passed() });
            if let Some(f) = &out.failure {
                v["line"] = f.line.into();
                v["expected"] = f.expected.clone().into();
                v["instead"] = f.got.clone().into();
            }
            if verbose || !out.passed() {
                v["transcript"] = out.transcript.clone().into();
            }
            v
        }
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let mut paths = Vec::new();
    for f in &args.files {
        if f.is_dir() {
            match find_scripts(f) {
                Ok(mut found) => paths.append(&mut found),
                Err(e) => {
                    eprintln!("utcp script: {}: {e}", f.display());
                    return ExitCode::from(2);
                }
            }
        } else {
            paths.push(f.clone());
        }
    }
    let outcomes: Vec<FileOutcome> = paths.iter().map(|p| run_file(p)).collect();
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let failed = outcomes.len() - passed;
    let unusable = outcomes.iter().any(|o| o.outcome.is_err());
    if args.json {
        let v = serde_json::json!({
            "scripts": outcomes.iter().map(|o| to_json(o, args.verbose)).collect::<Vec<_>>(),
            "passed": passed,
            "failed": failed,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for o in &outcomes {
            println!("{}", o.report(args.verbose));
        }
        println!("{passed} passed, {failed} failed");
    }
    if unusable {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
