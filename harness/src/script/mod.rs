//! Scripts in the packetdrill dialect (DESIGN.md "Scripts"): a parser into [`ast::Script`] and an
//! executor that runs one against a `utcp::Stack` on virtual time.
//!
//! Must not depend on: wall-clock time, the network. Files are read only by [`run_file`].

pub mod ast;
pub mod env;
pub mod parse;
pub mod python;

pub use ast::{IpVersion, Script, TimeSpec};
pub use parse::{parse_script, parse_script_as, ParseError};
pub mod exec;
#[cfg(target_os = "linux")]
pub mod kernel;
pub mod packet;

pub use exec::{run, Failure, Outcome};

/// The result of running one script file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// The path as given.
    pub path: String,
    /// `Err` when the file could not be read or parsed (the message names file:line:col).
    pub outcome: Result<Outcome, String>,
    /// When the parser refused the script: the feature it named.
    pub refused_feature: Option<String>,
    /// The IP it ran over: the one asked for, unless the script's header named its own.
    pub ip_version: IpVersion,
}

/// What became of one script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It ran and every line held.
    Pass,
    /// A line did not hold, or the script could not be read or parsed.
    Fail,
    /// It asks for a feature utcp does not have (named in the report).
    Refused,
}

impl FileOutcome {
    /// Whether the script parsed and passed.
    pub fn passed(&self) -> bool {
        matches!(&self.outcome, Ok(o) if o.passed())
    }

    /// The feature the script was refused for, by the parser or at a line.
    pub fn refused(&self) -> Option<&str> {
        match &self.outcome {
            Ok(o) => o.refused(),
            Err(_) => self.refused_feature.as_deref(),
        }
    }

    /// Pass, fail or refused.
    pub fn verdict(&self) -> Verdict {
        if self.passed() {
            Verdict::Pass
        } else if self.refused().is_some() {
            Verdict::Refused
        } else {
            Verdict::Fail
        }
    }

    /// The path, followed by the IP version in brackets when it is not IPv4 (`a.pkt [ipv6]`).
    pub fn label(&self) -> String {
        format!("{}{}", self.path, self.version_suffix())
    }

    /// ` [ipv6]` after a path or a `path:line` of a run that is not IPv4; nothing for IPv4.
    fn version_suffix(&self) -> String {
        match self.ip_version {
            IpVersion::V4 => String::new(),
            v => format!(" [{v}]"),
        }
    }

    /// A one-paragraph report: `PASS path`, `FAIL path:line` with expected and instead, or
    /// `REFUSED path:line: refused: FEATURE` (with the IP version after the path when it is
    /// not IPv4).
    pub fn report(&self, verbose: bool) -> String {
        let version = self.version_suffix();
        let mut s = match &self.outcome {
            Ok(o) => match &o.failure {
                None => format!("PASS {}{version}", self.path),
                Some(f) if f.refused.is_some() => {
                    format!(
                        "REFUSED {}:{}{version}: refused: {}",
                        self.path,
                        f.line,
                        f.refused.as_deref().unwrap_or_default()
                    )
                }
                Some(f) => format!(
                    "FAIL {}:{}{version}\n  expected: {}\n  instead:  {}",
                    self.path, f.line, f.expected, f.got
                ),
            },
            Err(e) if self.refused_feature.is_some() => format!("REFUSED {e}{version}"),
            Err(e) => format!("FAIL {e}{version}"),
        };
        if verbose {
            if let Ok(o) = &self.outcome {
                s.push_str("\n  transcript:");
                for line in &o.transcript {
                    s.push_str("\n    ");
                    s.push_str(line);
                }
            }
        }
        s
    }
}

pub use crate::backend::Backend;

/// The scripts the Linux backend runs by default are those whose timeline is at most this long
/// (seconds of real time); longer ones are real-time only (`--max-seconds 0` runs them too).
pub const LINUX_MAX_SECONDS: u64 = 30;

/// How long a script's timeline runs: the time of its last line (or the latest end of a
/// blocking call) as the lines' own times add up. A real-time run takes at least this long.
pub fn timeline_micros(script: &Script) -> u64 {
    let mut last = 0u64;
    let mut latest = 0u64;
    for e in &script.events {
        let t = match e.time {
            TimeSpec::Absolute(t) => t,
            TimeSpec::Relative(d) => last + d,
            TimeSpec::Any => last,
            TimeSpec::Range { hi, relative, .. } => hi + if relative { last } else { 0 },
        };
        let end = e.end_time.map_or(t, |(end, _)| match e.time {
            TimeSpec::Relative(_) | TimeSpec::Range { relative: true, .. } => last + end,
            _ => end,
        });
        latest = latest.max(t).max(end);
        last = t;
    }
    latest
}

/// How to run scripts beyond what their headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// On Linux, a script whose timeline is longer than this many seconds is not run and is
    /// reported as refused, real time only (0: no limit).
    pub max_seconds: u64,
    /// Replaces every script's `--tolerance_usecs` (packetdrill's flag of the same name).
    pub tolerance_usecs: Option<u64>,
    /// The IP scripts run over unless their header names one (packetdrill's `--ip_version`,
    /// with `run_all.py`'s addresses, MTU and definitions for it).
    pub ip_version: IpVersion,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { max_seconds: LINUX_MAX_SECONDS, tolerance_usecs: None, ip_version: IpVersion::V4 }
    }
}

/// Runs a parsed script on `backend`, as `run` says.
pub fn run_on(script: &Script, backend: Backend, run: &RunOptions) -> Outcome {
    if let Some(t) = run.tolerance_usecs {
        let mut s = script.clone();
        s.options.tolerance_usecs = t;
        return run_on(&s, backend, &RunOptions { tolerance_usecs: None, ..*run });
    }
    #[cfg(target_os = "linux")]
    let max_seconds = run.max_seconds;
    match backend {
        Backend::Utcp => self::run(script),
        #[cfg(target_os = "linux")]
        Backend::Linux => {
            let t = timeline_micros(script);
            if max_seconds > 0 && t > max_seconds * 1_000_000 {
                let feature = format!(
                    "real time only: a timeline of {} s, over the {max_seconds} s limit (--max-seconds)",
                    t.div_ceil(1_000_000)
                );
                return Outcome {
                    failure: Some(Failure {
                        line: 0,
                        expected: String::new(),
                        got: format!("refused: {feature}"),
                        refused: Some(feature),
                    }),
                    transcript: Vec::new(),
                };
            }
            kernel::run_linux(script)
        }
        #[cfg(not(target_os = "linux"))]
        Backend::Linux => Outcome {
            failure: Some(Failure {
                line: 0,
                expected: String::new(),
                got: "the Linux backend runs only on Linux".into(),
                refused: None,
            }),
            transcript: Vec::new(),
        },
    }
}

/// Reads, parses and runs one script file against utcp.
pub fn run_file(path: &std::path::Path) -> FileOutcome {
    run_file_on(path, Backend::Utcp, &RunOptions::default())
}

/// Reads, parses and runs one script file on `backend`.
pub fn run_file_on(path: &std::path::Path, backend: Backend, run: &RunOptions) -> FileOutcome {
    let name = path.display().to_string();
    let mut refused_feature = None;
    let mut ip_version = run.ip_version;
    let outcome = match std::fs::read_to_string(path) {
        Err(e) => Err(format!("{name}: cannot read: {e}")),
        Ok(text) => match parse_script_as(&name, &text, run.ip_version) {
            Err(e) => {
                refused_feature = e.feature.clone();
                Err(e.to_string())
            }
            Ok(script) => {
                ip_version = script.options.ip_version;
                Ok(run_on(&script, backend, run))
            }
        },
    };
    FileOutcome { path: name, outcome, refused_feature, ip_version }
}

/// Runs every script on `backend`; the kernel's several at once, with a progress bar on a
/// terminal.
pub fn run_files(
    paths: &[std::path::PathBuf],
    backend: Backend,
    jobs: usize,
    run: &RunOptions,
) -> Vec<FileOutcome> {
    if backend == Backend::Utcp {
        return paths.iter().map(|p| run_file_on(p, backend, run)).collect();
    }
    let progress = crate::replay::progress::Progress::new(paths.len() as u64, "scripts on linux");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<FileOutcome>>> = std::sync::Mutex::new(vec![None; paths.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(paths.len()).max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(p) = paths.get(i) else { break };
                #[cfg(target_os = "linux")]
                if crate::netns::interrupted() {
                    break;
                }
                progress.set_message(p.display().to_string());
                let o = run_file_on(p, backend, run);
                tracing::info!(script = %p.display(), verdict = ?o.verdict(), "ran on linux");
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(o);
                progress.inc(1);
            });
        }
    });
    progress.finish();
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .zip(paths)
        .map(|(o, p)| {
            o.unwrap_or_else(|| FileOutcome {
                path: p.display().to_string(),
                outcome: Err(format!("{}: not run (interrupted)", p.display())),
                refused_feature: None,
                ip_version: run.ip_version,
            })
        })
        .collect()
}

/// A script's stated reason for differing from Linux: the text of its `// Linux:` comment lines
/// (joined), which the Linux backend's tests require of every script the kernel fails.
pub fn linux_note(text: &str) -> Option<String> {
    let lines: Vec<&str> =
        text.lines().filter_map(|l| l.trim_start().strip_prefix("// Linux:")).map(str::trim).collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// Every `.pkt` file under `dir`, sorted.
pub fn find_scripts(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "pkt") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(text: &str) -> Script {
        parse_script("t.pkt", text).expect("parses")
    }

    #[test]
    fn a_timeline_adds_relative_times_and_counts_a_blocking_calls_end() {
        let s = script(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
             +0.5 listen(3, 1) = 0\n\
             +1 < S 0:0(0) win 1000\n\
             2.0...4.5 accept(3, ..., ...) = 4\n\
             +0.1 close(4) = 0\n",
        );
        // The accept's end (4.5 s) is later than the last line (2.1 s).
        assert_eq!(timeline_micros(&s), 4_500_000);
        let short = script("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+.25 close(3) = 0\n");
        assert_eq!(timeline_micros(&short), 250_000);
    }

    #[test]
    fn a_script_longer_than_the_limit_is_real_time_only_on_linux() {
        let s = script("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+40 close(3) = 0\n");
        let o = run_on(&s, Backend::Linux, &RunOptions { max_seconds: 30, ..RunOptions::default() });
        let refused = o.refused().expect("refused before anything runs");
        assert!(refused.starts_with("real time only: a timeline of 40 s"), "{refused}");
        assert!(o.transcript.is_empty());
    }

    #[test]
    fn the_linux_note_joins_every_linux_comment_line() {
        let text = "// A test.\n// Linux: first half,\n  // Linux: second half.\n0 socket(...) = 3\n";
        assert_eq!(linux_note(text).as_deref(), Some("first half, second half."));
        assert_eq!(linux_note("// Nothing about Linux.\n"), None);
    }
}
