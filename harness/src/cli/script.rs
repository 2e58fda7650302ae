//! `utcp script FILE...`: runs packetdrill-dialect scripts and prints pass, fail (with the line)
//! or refused (with the feature) for each, then a summary by folder and the refused features
//! with their counts.
//!
//! Exit 0 when every script passed, 1 when one failed, 2 when one could not be read or parsed or
//! was refused (and none failed).

use crate::script::{find_scripts, run_file, FileOutcome, Verdict};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    if let Some(f) = o.refused() {
        return serde_json::json!({ "path": o.path, "passed": false, "refused": f });
    }
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

/// Pass, fail and refused counts.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    pass: usize,
    fail: usize,
    refused: usize,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Pass => self.pass += 1,
            Verdict::Fail => self.fail += 1,
            Verdict::Refused => self.refused += 1,
        }
    }
}

/// The summary: counts per folder (relative to the directory given), then the refused features
/// by how many scripts each stopped.
fn summary(rows: &[(String, &FileOutcome)]) -> String {
    let mut folders: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut total = Counts::default();
    let mut features: BTreeMap<&str, usize> = BTreeMap::new();
    for (folder, o) in rows {
        let v = o.verdict();
        folders.entry(folder.as_str()).or_default().add(v);
        total.add(v);
        if let Some(f) = o.refused() {
            *features.entry(f).or_default() += 1;
        }
    }
    let width = folders.keys().map(|f| f.len()).chain([6]).max().unwrap_or(6);
    let mut s = format!("\n{:width$}  {:>5}  {:>5}  {:>7}\n", "folder", "pass", "fail", "refused");
    for (f, c) in &folders {
        s.push_str(&format!("{f:width$}  {:>5}  {:>5}  {:>7}\n", c.pass, c.fail, c.refused));
    }
    s.push_str(&format!("{:width$}  {:>5}  {:>5}  {:>7}\n", "total", total.pass, total.fail, total.refused));
    if !features.is_empty() {
        let mut by_count: Vec<(&str, usize)> = features.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        s.push_str("\nrefused features:\n");
        for (f, n) in by_count {
            s.push_str(&format!("{n:>5}  {f}\n"));
        }
    }
    s.push_str(&format!("{} passed, {} failed, {} refused", total.pass, total.fail, total.refused));
    s
}

/// The folder a script is counted under: its directory relative to `root` (`.` at the top).
fn folder_of(path: &Path, root: &Path) -> String {
    let dir = path.parent().unwrap_or(Path::new(""));
    match dir.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => root.display().to_string(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => dir.display().to_string(),
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let mut paths: Vec<(PathBuf, String)> = Vec::new();
    for f in &args.files {
        if f.is_dir() {
            match find_scripts(f) {
                Ok(found) => paths.extend(found.into_iter().map(|p| {
                    let folder = folder_of(&p, f);
                    (p, folder)
                })),
                Err(e) => {
                    eprintln!("utcp script: {}: {e}", f.display());
                    return ExitCode::from(2);
                }
            }
        } else {
            let folder = f.parent().map(|p| p.display().to_string()).unwrap_or_default();
            paths.push((f.clone(), if folder.is_empty() { ".".into() } else { folder }));
        }
    }
    let outcomes: Vec<(String, FileOutcome)> = paths.iter().map(|(p, f)| (f.clone(), run_file(p))).collect();
    let count = |v: Verdict| outcomes.iter().filter(|(_, o)| o.verdict() == v).count();
    let (passed, failed, refused) = (count(Verdict::Pass), count(Verdict::Fail), count(Verdict::Refused));
    let unusable = outcomes.iter().any(|(_, o)| o.outcome.is_err() || o.refused().is_some());
    let has_failure = outcomes.iter().any(|(_, o)| o.verdict() == Verdict::Fail && o.outcome.is_ok());
    if args.json {
        let v = serde_json::json!({
            "scripts": outcomes.iter().map(|(_, o)| to_json(o, args.verbose)).collect::<Vec<_>>(),
            "passed": passed,
            "failed": failed,
            "refused": refused,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (_, o) in &outcomes {
            println!("{}", o.report(args.verbose));
        }
        let rows: Vec<(String, &FileOutcome)> = outcomes.iter().map(|(f, o)| (f.clone(), o)).collect();
        if outcomes.len() > 1 {
            println!("{}", summary(&rows));
        } else {
            println!("{passed} passed, {failed} failed, {refused} refused");
        }
    }
    if has_failure {
        ExitCode::from(1)
    } else if unusable {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
