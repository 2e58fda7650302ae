//! Scripts in the packetdrill dialect (DESIGN.md "Scripts"): a parser into [`ast::Script`] and an
//! executor that runs one against a `utcp::Stack` on virtual time.
//!
//! Must not depend on: wall-clock time, the network. Files are read only by [`run_file`].

pub mod ast;
pub mod env;
pub mod parse;
pub mod python;

pub use ast::Script;
pub use parse::{parse_script, ParseError};
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

    /// A one-paragraph report: `PASS path`, `FAIL path:line` with expected and instead, or
    /// `REFUSED path:line: refused: FEATURE`.
    pub fn report(&self, verbose: bool) -> String {
        let mut s = match &self.outcome {
            Ok(o) => match &o.failure {
                None => format!("PASS {}", self.path),
                Some(f) if f.refused.is_some() => {
                    format!(
                        "REFUSED {}:{}: refused: {}",
                        self.path,
                        f.line,
                        f.refused.as_deref().unwrap_or_default()
                    )
                }
                Some(f) => format!(
                    "FAIL {}:{}\n  expected: {}\n  instead:  {}",
                    self.path, f.line, f.expected, f.got
                ),
            },
            Err(e) if self.refused_feature.is_some() => format!("REFUSED {e}"),
            Err(e) => format!("FAIL {e}"),
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

/// The TCP a script runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Backend {
    /// utcp's stack, on virtual time.
    Utcp,
    /// The Linux kernel's TCP behind a TUN device in a namespace of its own, in real time (root).
    Linux,
}

impl Backend {
    /// `utcp` or `linux`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Utcp => "utcp",
            Backend::Linux => "linux",
        }
    }
}

/// Runs a parsed script on `backend`.
pub fn run_on(script: &Script, backend: Backend) -> Outcome {
    match backend {
        Backend::Utcp => run(script),
        #[cfg(target_os = "linux")]
        Backend::Linux => kernel::run_linux(script),
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
    run_file_on(path, Backend::Utcp)
}

/// Reads, parses and runs one script file on `backend`.
pub fn run_file_on(path: &std::path::Path, backend: Backend) -> FileOutcome {
    let name = path.display().to_string();
    let mut refused_feature = None;
    let outcome = match std::fs::read_to_string(path) {
        Err(e) => Err(format!("{name}: cannot read: {e}")),
        Ok(text) => match parse_script(&name, &text) {
            Err(e) => {
                refused_feature = e.feature.clone();
                Err(e.to_string())
            }
            Ok(script) => Ok(run_on(&script, backend)),
        },
    };
    FileOutcome { path: name, outcome, refused_feature }
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
