//! `utcp replay FILE [--flow N] [--as server|client] [--stack utcp|linux|both] [--mode
//! strict|adaptive] [--profile NAME] [--transcript] [--plot OUT.svg] [--out FILE.pcapng] [--json]
//! [--emit-script FILE.pkt] [--keep-going] [--tail SECS] [--max-gap SECS] [--max-duration SECS]`:
//! plays the recorded peer of each TCP connection (or of `--flow N`) against utcp, or against the
//! Linux kernel in real time (`--stack linux`, root), or both, and compares the answers with the
//! recording.
//!
//! Output: a summary of each connection (completed or why not; matched, differed, missing and
//! extra; the first difference; each kind of note once with a count); with `--stack both` utcp's
//! next to Linux's and a line with both match figures; with `--transcript` the per-packet
//! transcript of the tested side after it; with `--json` one object
//! `{ "file": ..., "connections": [...] }` (with `--stack both` each connection carries Linux's
//! object under `linux`). `--plot` writes a time-sequence graph (SVG).
//! The capture is streamed: each connection is replayed once it is finished in the capture
//! (closed and past a grace, idle, or at the end of the file) and shown in connection order, so
//! that memory holds the connections open at once, not the file.
//! Exit status: 0 when every replayed connection completed and nothing differed beyond the
//! profile (with `--stack both`: utcp's connections), 1 when something differed, 2 when the input
//! could not be read (or `--flow` names no connection, or an output file cannot be written, or
//! the kernel's namespace could not be set up), 130 when interrupted.

use crate::capture::flows::{Finishing, Flow, FlowStream, InOrder, Side, StreamStats};
use crate::plot::{render_svg, replay_chart};
use crate::replay::progress::Progress;
use crate::replay::report::{
    connection_json, connection_json_both, json_text, match_line, script, summary_line, write_pcapng,
    PcapngOut,
};
use crate::replay::{replay_flow, Backend, Mode, Options, Profile, Replay};
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

impl From<RoleArg> for Side {
    fn from(r: RoleArg) -> Side {
        match r {
            RoleArg::Server => Side::Server,
            RoleArg::Client => Side::Client,
        }
    }
}

/// The stack that plays the recorded endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StackArg {
    /// utcp, on the capture's virtual clock.
    Utcp,
    /// The Linux kernel behind a TUN device in a namespace of its own, in real time (root).
    Linux,
    /// Both: utcp's match next to Linux's self-match.
    Both,
}

/// The long help of `utcp replay`.
pub const LONG_ABOUT: &str = "\
Replay a capture's recorded peer against utcp, or against the Linux kernel, and compare the answers \
with the recording: a summary, the transcript or a time-sequence graph.

--stack linux plays the recorded peer against the kernel's TCP in real time, in a network namespace \
of its own (utcp-kern-<pid>-replayN) with a TUN device: the kernel takes the recorded endpoint's \
address and port (a listening socket for the server role, a connect from the recorded port for the \
client role), its sysctls there are set to what the recording shows (SACK, timestamps, window \
scaling, ECN, Fast Open for a server that kept a SYN's data), and the peer's packets are \
translated as for utcp. Loopback addresses, or one address for both ends, get private stand-ins \
in the namespace (a note says so); reports show the recorded ones. It needs root (or CAP_NET_ADMIN \
and CAP_SYS_ADMIN); nothing is configured outside the namespace, which is deleted on every exit, \
Ctrl-C included. Real time bounds it: a gap between two recorded packets longer than --max-gap is \
shortened to it (a note says so), a connection whose timeline is still longer than --max-duration is \
not played (its reason says so), and after the last recorded packet the kernel is given --tail at \
most (less once it has nothing in flight and has been quiet for half a second).

--stack both replays each connection on both and shows utcp's match next to Linux's self-match: how \
much of the recording the kernel itself reproduces, which calibrates utcp's figure. The exit status \
is then utcp's, and --out, --plot and --emit-script show utcp's replay.

Examples:
  utcp replay capture.pcap
  utcp replay --as client --transcript capture.pcap
  sudo utcp replay --stack both --json capture.pcap";

impl Args {
    /// The arguments of `utcp replay FILE` with every option at its command-line default (parsed
    /// by clap, so the defaults have one source), for callers that change a few fields.
    pub fn for_file(file: impl Into<PathBuf>) -> Args {
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            args: Args,
        }
        let file = file.into();
        // After `--` the file is positional whatever it looks like.
        let argv = [std::ffi::OsStr::new("replay"), std::ffi::OsStr::new("--"), file.as_os_str()];
        match <Cmd as clap::Parser>::try_parse_from(argv) {
            Ok(c) => c.args,
            // Only a positional file is given, and clap takes any path.
            Err(e) => unreachable!("utcp replay FILE with defaults did not parse: {e}"),
        }
    }
}

/// The kernel side's bounds (`--stack linux|both`).
#[derive(Debug, Clone, Copy, PartialEq, clap::Args)]
pub struct LinuxArgs {
    /// With --stack linux|both: real seconds the kernel's answers are read after the last
    /// recorded packet, at most.
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = parse_secs)]
    pub tail: f64,
    /// With --stack linux|both: a gap between two recorded packets longer than this is shortened
    /// to it (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    pub max_gap: f64,
    /// With --stack linux|both: a connection whose timeline (gaps shortened) is longer than this
    /// is not played against the kernel (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_secs)]
    pub max_duration: f64,
}

impl Default for LinuxArgs {
    fn default() -> Self {
        LinuxArgs { tail: 3.0, max_gap: 10.0, max_duration: 60.0 }
    }
}

impl LinuxArgs {
    /// The Linux backend's options.
    #[cfg(target_os = "linux")]
    pub fn options(&self) -> crate::replay::linux::LinuxOptions {
        let d = |s: f64| utcp::time::Duration::from_micros((s * 1e6).round() as u64);
        crate::replay::linux::LinuxOptions {
            tail: std::time::Duration::from_secs_f64(self.tail),
            max_gap: d(self.max_gap),
            max_duration: d(self.max_duration),
        }
    }
}

/// Seconds: a finite number, not negative, at most a day.
fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{s} s is out of range (0 to 86400)"));
    }
    Ok(v)
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
    /// The recorded endpoint the stack under test plays.
    #[arg(long = "as", value_enum, default_value = "server")]
    pub role: RoleArg,
    /// The stack that plays it: utcp (virtual time), linux (the kernel in real time; root), or
    /// both side by side.
    #[arg(long, value_enum, default_value = "utcp")]
    pub stack: StackArg,
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
    /// The kernel side's bounds.
    #[command(flatten)]
    pub linux: LinuxArgs,
}

impl Args {
    /// The replay options the arguments ask for.
    pub fn options(&self) -> Options {
        Options {
            role: self.role.into(),
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
    /// The replays (Linux's with `--stack linux`, utcp's otherwise), when the run kept them
    /// ([`replay`] does; the command line does not, so that memory does not grow with the file).
    pub replays: Vec<Replay>,
    /// With `--stack both`, Linux's replays, one per utcp replay (kept as `replays` are).
    pub linux: Vec<Replay>,
    /// The capture's counts: records, connections, the most connections held open at once.
    pub stream: StreamStats,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match replay_streamed(&args, false) {
        Ok(o) => {
            // A closed pipe (`| head`) is not an error of the replay.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), o.stdout.as_bytes());
            ExitCode::from(o.status)
        }
        Err(msg) => {
            eprintln!("utcp replay: {msg}");
            ExitCode::from(if interrupted_run() { 130 } else { 2 })
        }
    }
}

/// The whole of `utcp replay` for `args` (files written), or the message for unusable input;
/// the outcome keeps every replay.
pub fn replay(args: &Args) -> Result<Outcome, String> {
    replay_streamed(args, true)
}

/// `utcp replay` with the capture streamed: each connection is replayed as soon as it is finished
/// in the capture and shown in the order of the connections, so that only the connections open
/// at once are held; with `keep` the outcome also holds every replay. Damage to the file is an
/// error (and no `--out` file is left), unless `--keep-going` uses the connections before it.
pub fn replay_streamed(args: &Args, keep: bool) -> Result<Outcome, String> {
    let mut shown = Shown::new(args, keep);
    let result = replay_into(args, &mut shown);
    if result.is_err() {
        shown.abandon(args);
    }
    result?;
    shown.finish(args)
}

/// Replays the chosen connections of the file into `shown`, in order, with the capture's counts.
fn replay_into(args: &Args, shown: &mut Shown) -> Result<(), String> {
    let name = args.file.display().to_string();
    let opts = args.options();
    // --emit-script and --plot show one connection: the one --flow names, else the file's only one.
    let one = args.emit_script.is_some() || args.plot.is_some();
    let wanted = args.flow.or(one.then_some(1));
    if args.stack != StackArg::Utcp {
        linux_ready()?;
    }
    let finishing = Finishing { close_grace: opts.tail, ..Finishing::default() };
    let mut stream = FlowStream::open(&args.file, finishing).map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&args.file).map_or(0, |m| m.len());
    let progress = Progress::new(size, "bytes");
    let mut read = 0;
    let mut order = InOrder::default();
    while let Some(next) = stream.next_flow() {
        let flow = match next {
            Ok(f) => f,
            Err(e) if args.keep_going => {
                let n = stream.stats().records;
                eprintln!("utcp replay: warning: {e}; using the {n} records before it");
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let piece = if wanted.is_none_or(|n| n == flow.index) {
            progress.set_message(format!("flow {}", flow.index));
            let (main, beside) = play(&flow, &opts, args, &name)?;
            Some(Piece::new(args, shown.keep, main, beside))
        } else {
            None
        };
        // A connection that finished before an earlier one waits as its text (and its replay
        // only where --out, --emit-script, --plot or the caller need it).
        for piece in order.insert(flow.index, piece).into_iter().flatten() {
            shown.add(args, piece)?;
        }
        progress.inc(stream.bytes_read().saturating_sub(read));
        read = stream.bytes_read();
    }
    progress.finish();
    shown.stream = stream.stats();
    let total = shown.stream.connections;
    match args.flow {
        Some(n) if n == 0 || n > total => {
            return Err(format!("{name}: no flow {n} (the file has {total} TCP connections)"));
        }
        _ => {}
    }
    for (flag, given) in [("--emit-script", args.emit_script.is_some()), ("--plot", args.plot.is_some())] {
        if given && args.flow.is_none() && total != 1 {
            return Err(format!("{flag} needs one connection; {name} has {total}: choose one with --flow N"));
        }
    }
    Ok(())
}

/// One connection replayed as `--stack` asks: the replay shown, and Linux's beside it with
/// `--stack both`.
fn play(flow: &Flow, opts: &Options, args: &Args, name: &str) -> Result<(Replay, Option<Replay>), String> {
    tracing::debug!(flow = flow.index, packets = flow.packets.len(), "replaying");
    let utcp = (args.stack != StackArg::Linux).then(|| {
        let r = replay_flow(flow, opts);
        tracing::info!(flow = flow.index, summary = %summary_line(&r), "replayed");
        r
    });
    let linux = if args.stack != StackArg::Utcp {
        let r = replay_linux(flow, opts, &args.linux).map_err(|e| format!("{name}: {e}"))?;
        tracing::info!(flow = flow.index, summary = %summary_line(&r), "replayed against Linux");
        Some(r)
    } else {
        None
    };
    match (utcp, linux) {
        (Some(u), l) => Ok((u, l)),
        (None, Some(l)) => Ok((l, None)),
        (None, None) => unreachable!("--stack utcp, linux or both plays at least one"),
    }
}

/// One connection's part of the output, made as soon as it is replayed.
struct Piece {
    backend: Backend,
    ok: bool,
    summary: String,
    transcript: String,
    json: Option<String>,
    /// The replay, where `--out`, `--emit-script`, `--plot` or the caller need it.
    replay: Option<Replay>,
    /// Linux's replay beside it, where the caller keeps replays.
    beside: Option<Replay>,
}

impl Piece {
    fn new(args: &Args, keep: bool, r: Replay, beside: Option<Replay>) -> Piece {
        let (mut summary, mut transcript, mut json) = (String::new(), String::new(), None);
        if args.json {
            let v = match &beside {
                Some(l) => connection_json_both(&r, l),
                None => connection_json(&r),
            };
            json = Some(v.to_string());
        } else {
            summary.push_str(&crate::replay::report::summary(&r));
            if let Some(l) = &beside {
                summary.push_str(&crate::replay::report::summary(l));
                summary.push_str(&match_line(&r, l));
            }
            if args.transcript {
                transcript.push('\n');
                transcript.push_str(&crate::replay::report::transcript(&r));
                if let Some(l) = &beside {
                    transcript.push('\n');
                    transcript.push_str(&crate::replay::report::transcript(l));
                }
            }
        }
        let needed = keep || args.out.is_some() || args.emit_script.is_some() || args.plot.is_some();
        Piece {
            backend: r.backend,
            ok: r.ok(),
            summary,
            transcript,
            json,
            replay: needed.then_some(r),
            beside: beside.filter(|_| keep),
        }
    }
}

/// What the replays add up to, one connection at a time in order: the output's pieces, the
/// `--out` file, the replay `--emit-script` and `--plot` need, and (when kept) the replays.
struct Shown {
    name: String,
    connections: usize,
    backend: Backend,
    all_ok: bool,
    summaries: String,
    transcripts: String,
    json: Vec<String>,
    pcapng: Option<PcapngOut>,
    /// The last replay, for --emit-script and --plot (which have one).
    one: Option<Replay>,
    keep: bool,
    replays: Vec<Replay>,
    linux: Vec<Replay>,
    stream: StreamStats,
}

impl Shown {
    fn new(args: &Args, keep: bool) -> Shown {
        Shown {
            name: args.file.display().to_string(),
            connections: 0,
            backend: Backend::Utcp,
            all_ok: true,
            summaries: String::new(),
            transcripts: String::new(),
            json: Vec::new(),
            pcapng: None,
            one: None,
            keep,
            replays: Vec::new(),
            linux: Vec::new(),
            stream: StreamStats::default(),
        }
    }

    /// The next connection, in order.
    fn add(&mut self, args: &Args, p: Piece) -> Result<(), String> {
        if self.connections == 0 {
            self.backend = p.backend;
        }
        self.connections += 1;
        self.all_ok &= p.ok;
        self.json.extend(p.json);
        self.summaries.push_str(&p.summary);
        self.transcripts.push_str(&p.transcript);
        if let (Some(path), Some(r)) = (&args.out, &p.replay) {
            let out = match &mut self.pcapng {
                Some(out) => out,
                None => self.pcapng.insert(PcapngOut::create(path).map_err(|e| e.to_string())?),
            };
            out.add(r).map_err(|e| e.to_string())?;
        }
        if args.emit_script.is_some() || args.plot.is_some() {
            self.one = p.replay.clone();
        }
        if self.keep {
            self.replays.extend(p.replay);
            self.linux.extend(p.beside);
        }
        Ok(())
    }

    /// The run failed: no half-written `--out` file stays behind.
    fn abandon(&mut self, args: &Args) {
        if let (Some(out), Some(path)) = (self.pcapng.take(), &args.out) {
            drop(out);
            let _ = std::fs::remove_file(path);
        }
    }

    /// The files and the text, once every connection was added.
    fn finish(mut self, args: &Args) -> Result<Outcome, String> {
        let name = self.name.clone();
        match (self.pcapng.take(), &args.out) {
            (Some(out), _) => {
                out.finish().map_err(|e| e.to_string())?;
            }
            // No connection to write: the file is written all the same, empty.
            (None, Some(path)) => write_pcapng(path, &[]).map(|_| ()).map_err(|e| e.to_string())?,
            (None, None) => {}
        }
        if let (Some(path), Some(r)) = (&args.emit_script, &self.one) {
            std::fs::write(path, script(r, &name))
                .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        }
        if let (Some(path), Some(r)) = (&args.plot, &self.one) {
            let file = args.file.file_name().map_or(name.clone(), |f| f.to_string_lossy().into_owned());
            let chart = crate::plot::Chart { window: args.plot_window, ..replay_chart(r, &file) };
            let svg = render_svg(&chart)?;
            std::fs::write(path, svg).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        }
        let mut stdout = String::new();
        if args.json {
            stdout.push_str(&json_text(&name, &self.json));
            stdout.push('\n');
        } else {
            stdout.push_str(&self.text_report(args));
        }
        let status = if self.all_ok { 0 } else { 1 };
        Ok(Outcome { stdout, status, replays: self.replays, linux: self.linux, stream: self.stream })
    }

    /// The text output: a heading, each connection's summary, then (with `--transcript`) each
    /// connection's transcript, or a line saying how to get them.
    fn text_report(&self, args: &Args) -> String {
        let mut out = String::new();
        let name = &self.name;
        let n = self.connections;
        if n == 0 {
            out.push_str(&format!("{name}: no TCP connection to replay\n"));
            return out;
        }
        let opts = args.options();
        out.push_str(&format!(
            "{name}: {n} TCP {} replayed, {} as {} ({} mode, {} profile){}\n",
            if n == 1 { "connection" } else { "connections" },
            self.backend.name(),
            crate::replay::report::role_name(opts.role),
            opts.mode.name(),
            opts.profile.name(),
            if args.stack == StackArg::Both { ", beside Linux's self-match" } else { "" }
        ));
        out.push_str(&self.summaries);
        if args.transcript {
            out.push_str(&self.transcripts);
        } else {
            let flow = if n == 1 { "" } else { "--flow N " };
            out.push_str(&format!(
                "(every packet: --transcript; a time-sequence graph: {flow}--plot OUT.svg; for Wireshark: --out OUT.pcapng)\n"
            ));
        }
        out
    }
}

/// `--stack linux` needs the privileges of a namespace and a TUN device; with them, Ctrl-C and
/// SIGTERM are caught so that the namespace's guard runs.
#[cfg(target_os = "linux")]
fn linux_ready() -> Result<(), String> {
    if !crate::netns::privileged() {
        return Err("--stack linux and --stack both need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN): \
                    the kernel is replayed in a network namespace with a TUN device of its own"
            .into());
    }
    crate::netns::catch_signals();
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn linux_ready() -> Result<(), String> {
    Err("--stack linux and --stack both run only on Linux".into())
}

#[cfg(target_os = "linux")]
fn replay_linux(flow: &crate::capture::flows::Flow, opts: &Options, l: &LinuxArgs) -> Result<Replay, String> {
    crate::replay::linux::replay_flow_linux(flow, opts, &l.options())
}

#[cfg(not(target_os = "linux"))]
fn replay_linux(_: &crate::capture::flows::Flow, _: &Options, _: &LinuxArgs) -> Result<Replay, String> {
    Err("--stack linux runs only on Linux".into())
}

#[cfg(target_os = "linux")]
fn interrupted_run() -> bool {
    crate::netns::interrupted()
}

#[cfg(not(target_os = "linux"))]
fn interrupted_run() -> bool {
    false
}
