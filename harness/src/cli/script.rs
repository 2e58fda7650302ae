//! `utcp script FILE...`: runs packetdrill-dialect scripts and prints pass, fail (with the line)
//! or refused (with the feature) for each, then a summary by folder and the refused features
//! with their counts. `--stack linux` runs them against the kernel instead (root, real time,
//! several at once, each in a namespace of its own); `--stack both` runs each on both and shows,
//! per script, the two verdicts and where their transcripts part.
//!
//! Exit 0 when every script passed (on every backend run), 1 when one failed, 2 when one could
//! not be read or parsed or was refused (and none failed).

use crate::script::{find_scripts, run_files, Backend, FileOutcome, IpVersion, RunOptions, Verdict};
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
    /// The TCP to run against: utcp (virtual time), linux (the kernel behind a TUN device in a
    /// namespace of its own, real time, needs root) or both (each script on each, with the two
    /// verdicts and the first line where the transcripts part).
    #[arg(long, value_enum, default_value = "utcp")]
    pub stack: StackArg,
    /// Scripts run at once against the kernel (each in its own namespace; they mostly sleep).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,
    /// On the kernel, run only scripts whose timeline is at most this many seconds; longer ones
    /// are reported refused as real time only. 0 runs every script, however long.
    #[arg(long, default_value_t = crate::script::LINUX_MAX_SECONDS)]
    pub max_seconds: u64,
    /// How far (microseconds) an outbound packet or a blocking call's return may be from the
    /// line's time, for every script (replaces the header's --tolerance_usecs; packetdrill's
    /// default is 4000). A kernel with a coarse timer tick (CONFIG_HZ=250) may need more.
    #[arg(long)]
    pub tolerance_usecs: Option<u64>,
    /// The IP scripts run over, with packetdrill's `run_all.py` addresses, MTU and `-D`
    /// definitions for it: ipv4; ipv4-mapped-ipv6 (IPv6 sockets given `::ffff:a.b.c.d`
    /// addresses, IPv4 on the wire); ipv6; or all (each script in each of the three). As in
    /// run_all.py, of the scripts found in a directory one whose name ends in `v4.pkt` is not
    /// run over IPv6 and one ending in `v6.pkt` only over it; a file named is run as asked. A
    /// script whose header says `--ip_version` runs over that one.
    #[arg(long, value_enum, default_value = "ipv4")]
    pub ip_version: IpVersionArg,
}

/// `--ip-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IpVersionArg {
    /// IPv4 sockets and wire.
    Ipv4,
    /// IPv6 sockets with IPv4-mapped addresses, IPv4 on the wire.
    #[value(name = "ipv4-mapped-ipv6")]
    Ipv4MappedIpv6,
    /// IPv6 sockets and wire.
    Ipv6,
    /// Each of the three, as packetdrill's run_all.py.
    All,
}

impl IpVersionArg {
    fn versions(self) -> Vec<IpVersion> {
        match self {
            IpVersionArg::Ipv4 => vec![IpVersion::V4],
            IpVersionArg::Ipv4MappedIpv6 => vec![IpVersion::V4MappedV6],
            IpVersionArg::Ipv6 => vec![IpVersion::V6],
            IpVersionArg::All => IpVersion::ALL.to_vec(),
        }
    }
}

/// `--stack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StackArg {
    /// utcp only.
    Utcp,
    /// The Linux kernel only.
    Linux,
    /// Both, side by side.
    Both,
}

impl StackArg {
    fn backends(self) -> Vec<Backend> {
        match self {
            StackArg::Utcp => vec![Backend::Utcp],
            StackArg::Linux => vec![Backend::Linux],
            StackArg::Both => vec![Backend::Utcp, Backend::Linux],
        }
    }
}

/// An entry as [`parting`] compares it: without its time (a real-time run's never equal the
/// virtual ones), its window field or its TS val (the two stacks' receive buffers and clocks
/// differ whatever the script pins; a line that pins either is checked by the script itself).
fn comparable(entry: &str) -> String {
    let body = entry.split_once(' ').map_or(entry, |(_, r)| r);
    let mut out = Vec::new();
    let mut blank_next = false;
    for tok in body.split(' ') {
        out.push(if blank_next { "_" } else { tok });
        blank_next = tok == "win" || tok == "val";
    }
    out.join(" ")
}

/// Where two transcripts part: the index of the first entry that differs (times, windows and
/// TS vals aside), and the two entries there (`None` where one transcript ended).
pub fn parting<'a>(a: &'a [String], b: &'a [String]) -> Option<(usize, Option<&'a str>, Option<&'a str>)> {
    let n = a.len().max(b.len());
    (0..n).find_map(|i| {
        let (x, y) = (a.get(i).map(|s| s.as_str()), b.get(i).map(|s| s.as_str()));
        if x.map(comparable) == y.map(comparable) {
            None
        } else {
            Some((i, x, y))
        }
    })
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Refused => "REFUSED",
    }
}

/// `--stack both`, one script: the two verdicts, each report that is not a pass, and where the
/// transcripts part when the verdicts differ.
fn both_report(u: &FileOutcome, l: &FileOutcome, verbose: bool) -> String {
    let (vu, vl) = (u.verdict(), l.verdict());
    let mut s = format!("utcp {:<8} linux {:<8} {}", verdict_name(vu), verdict_name(vl), u.label());
    for (name, o) in [("utcp", u), ("linux", l)] {
        if verbose || o.verdict() != Verdict::Pass {
            for line in o.report(verbose).lines() {
                s.push_str(&format!("\n  {name}: {line}"));
            }
        }
    }
    if vu != vl {
        if let Some(note) = std::fs::read_to_string(&u.path).ok().and_then(|t| crate::script::linux_note(&t))
        {
            s.push_str(&format!("\n  the script says: Linux: {note}"));
        }
        if let (Ok(a), Ok(b)) = (&u.outcome, &l.outcome) {
            if let Some((i, x, y)) = parting(&a.transcript, &b.transcript) {
                s.push_str(&format!(
                    "\n  the transcripts part at entry {}:\n    utcp:  {}\n    linux: {}",
                    i + 1,
                    x.unwrap_or("(ended)"),
                    y.unwrap_or("(ended)")
                ));
            }
        }
    }
    s
}

fn both_json(u: &FileOutcome, l: &FileOutcome, verbose: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "path": u.path,
        "ip_version": u.ip_version.name(),
        "utcp": to_json(u, verbose),
        "linux": to_json(l, verbose),
        "agree": u.verdict() == l.verdict(),
    });
    if let (Ok(a), Ok(b)) = (&u.outcome, &l.outcome) {
        if let Some((i, x, y)) = parting(&a.transcript, &b.transcript) {
            v["parted"] = serde_json::json!({ "entry": i + 1, "utcp": x, "linux": y });
        }
    }
    v
}

/// The JSON form of one script's result.
fn to_json(o: &FileOutcome, verbose: bool) -> serde_json::Value {
    let version = o.ip_version.name();
    if let Some(f) = o.refused() {
        return serde_json::json!({ "path": o.path, "ip_version": version, "passed": false, "refused": f });
    }
    match &o.outcome {
        Err(e) => serde_json::json!({ "path": o.path, "ip_version": version, "passed": false, "error": e }),
        Ok(out) => {
            let mut v = serde_json::json!({ "path": o.path, "ip_version": version, "passed": out.passed() });
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
fn summary(rows: &[(String, FileOutcome)]) -> String {
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
    let mut found_in_dir: Vec<bool> = Vec::new();
    for f in &args.files {
        if f.is_dir() {
            match find_scripts(f) {
                Ok(found) => paths.extend(found.into_iter().map(|p| {
                    found_in_dir.push(true);
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
            found_in_dir.push(false);
        }
    }
    let backends = args.stack.backends();
    if backends.contains(&Backend::Linux) {
        #[cfg(target_os = "linux")]
        {
            if !crate::netns::privileged() {
                eprintln!(
                    "utcp script: --stack {} needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN): it makes a network namespace and a TUN device per script",
                    if args.stack == StackArg::Both { "both" } else { "linux" }
                );
                return ExitCode::from(2);
            }
            crate::netns::catch_signals();
        }
    }
    // Per backend, the outcomes in file order, each file's versions in run_all.py's order.
    let versions = args.ip_version.versions();
    let mut runs: Vec<Vec<(usize, FileOutcome)>> = vec![Vec::new(); backends.len()];
    for &version in &versions {
        let run = RunOptions {
            max_seconds: args.max_seconds,
            tolerance_usecs: args.tolerance_usecs,
            ip_version: version,
        };
        // run_all.py's rule for the scripts a directory holds; a file named is run as asked.
        let chosen: Vec<usize> = (0..paths.len())
            .filter(|&i| {
                !found_in_dir[i]
                    || paths[i].0.file_name().is_some_and(|n| version.runs_file(&n.to_string_lossy()))
            })
            .collect();
        let files: Vec<PathBuf> = chosen.iter().map(|&i| paths[i].0.clone()).collect();
        for (b, backend) in backends.iter().enumerate() {
            runs[b].extend(chosen.iter().copied().zip(run_files(&files, *backend, args.jobs as usize, &run)));
        }
    }
    // A script whose header names its version ran over it each time: count it once.
    let mut seen = std::collections::HashSet::new();
    let keep: Vec<bool> = runs[0].iter().map(|(i, o)| seen.insert((*i, o.ip_version))).collect();
    let mut runs: Vec<Vec<(String, FileOutcome)>> = runs
        .into_iter()
        .map(|mut r| {
            let mut k = keep.iter();
            r.retain(|_| k.next().copied().unwrap_or(true));
            r.sort_by_key(|(i, _)| *i);
            let label = |i: usize, o: &FileOutcome| match versions.len() {
                1 => paths[i].1.clone(),
                _ => format!("{} [{}]", paths[i].1, o.ip_version),
            };
            r.into_iter().map(|(i, o)| (label(i, &o), o)).collect()
        })
        .collect();
    if runs.len() == 2 {
        let linux = runs.pop().unwrap_or_default();
        let utcp = runs.pop().unwrap_or_default();
        return report_both(&args, &utcp, &linux);
    }
    let outcomes: Vec<(String, FileOutcome)> = runs.pop().unwrap_or_default();
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
        if outcomes.len() > 1 {
            println!("{}", summary(&outcomes));
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

/// `--stack both`: per script the two verdicts, then a summary per folder and backend and the
/// share of scripts where the two agree.
fn report_both(args: &Args, utcp: &[(String, FileOutcome)], linux: &[(String, FileOutcome)]) -> ExitCode {
    let pairs = || utcp.iter().map(|(_, o)| o).zip(linux.iter().map(|(_, o)| o));
    let agree = pairs().filter(|(u, l)| u.verdict() == l.verdict()).count();
    let any = |rows: &[(String, FileOutcome)], v: Verdict| rows.iter().any(|(_, o)| o.verdict() == v);
    if args.json {
        let totals = |rows: &[(String, FileOutcome)]| {
            let c = |v: Verdict| rows.iter().filter(|(_, o)| o.verdict() == v).count();
            serde_json::json!({ "passed": c(Verdict::Pass), "failed": c(Verdict::Fail), "refused": c(Verdict::Refused) })
        };
        let v = serde_json::json!({
            "scripts": pairs().map(|(u, l)| both_json(u, l, args.verbose)).collect::<Vec<_>>(),
            "utcp": totals(utcp),
            "linux": totals(linux),
            "agreed": agree,
            "total": utcp.len(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (u, l) in pairs() {
            println!("{}", both_report(u, l, args.verbose));
        }
        for (name, rows) in [("utcp", utcp), ("linux", linux)] {
            println!("\n{name}:{}", summary(rows));
        }
        println!(
            "\nutcp and linux agree on {agree} of {} scripts ({:.0} %)",
            utcp.len(),
            100.0 * agree as f64 / utcp.len().max(1) as f64
        );
    }
    if any(utcp, Verdict::Fail) || any(linux, Verdict::Fail) {
        ExitCode::from(1)
    } else if any(utcp, Verdict::Refused) || any(linux, Verdict::Refused) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn transcripts_part_at_the_first_entry_that_differs_times_aside() {
        let a = lines(&["0.000000 socket(...) = 3", "0.100000 > S 0:0(0)", "0.200000 < . 1:1(0) ack 1"]);
        let b = lines(&["0.000011 socket(...) = 3", "0.100420 > S 0:0(0)", "0.200100 > R 1:1(0)"]);
        let c = lines(&["0.0 socket(...) = 3", "0.1 > S 0:0(0) win 64240 <mss 1460,TS val 7 ecr 0>"]);
        let d = lines(&["0.0 socket(...) = 3", "0.1 > S 0:0(0) win 65535 <mss 1460,TS val 9 ecr 0>"]);
        assert_eq!(parting(&c, &d), None, "windows and TS vals aside");
        assert_eq!(parting(&a, &b), Some((2, Some(a[2].as_str()), Some(b[2].as_str()))));
        assert_eq!(parting(&a, &a), None);
        assert_eq!(parting(&a[..2], &a), Some((2, None, Some(a[2].as_str()))));
    }
}
