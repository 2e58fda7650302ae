//! `utcp link`: the selftest's seeded impairment link in real time between two network
//! namespaces of its own, so the kernel's TCP can be measured through it; optionally a server in
//! namespace B and a command in namespace A, the link's counters at the end.

use crate::bench_live::privileged;
use crate::cli::selftest::parse_percent;
use crate::link::realtime::{Finished, LoopStats, Running};
use crate::link::tun::{Namespaces, ADDR_A, ADDR_B, DEVICE_A, DEVICE_B, PREFIX};
use crate::link::{DirectionStats, Relay};
use crate::netns::{catch_signals, interrupted, Netns};
use crate::netsim::LinkConfig;
use serde_json::json;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use utcp::time::Duration as LinkDuration;

/// How long a command gets to end after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long `--wait-port` waits for the server to listen.
const LISTEN_LIMIT: Duration = Duration::from_secs(10);
/// How often the supervisor looks at the command, the server, the link and the signals.
const TICK: Duration = Duration::from_millis(20);

/// What `utcp link --help` says before the options.
pub const LONG_ABOUT: &str = "\
The selftest's seeded impairment link in real time between two network namespaces of its own,
for the kernel's TCP: a user-space netem (root).

Creates namespace A (10.77.0.1/24 on TUN device link-a) and namespace B (10.77.0.2/24 on
link-b) and forwards every datagram between the two devices through the seeded impairment link
of `utcp selftest`, in real time. The defaults are the selftest's: 10 ms each way, 1000 Mbit/s,
no loss, an unbounded queue, seed 1.

  utcp link --loss 1 --server 'iperf3 -s -1' --wait-port 5201 -- iperf3 -c 10.77.0.2 -C cubic
  utcp link --loss 2 --duration 600    # just the link: ip netns exec into the namespaces

CMD runs in namespace A (ip netns exec), the --server command in B (sh -c), both with
UTCP_LINK_NS_A, UTCP_LINK_NS_B, UTCP_LINK_ADDR_A and UTCP_LINK_ADDR_B set. The run ends when CMD
exits (its exit status is utcp link's), at --duration (124 if CMD still ran) or at Ctrl-C (130);
then the server gets SIGTERM, the namespaces are deleted, and the link's counters go to stderr
(with --json: one JSON object to stdout, and CMD's stdout to stderr).";

/// Arguments of `utcp link` (see [`LONG_ABOUT`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Loss of each direction, percent.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    loss: f64,
    /// One-way delay, milliseconds.
    #[arg(long, default_value_t = 10.0, value_parser = parse_millis)]
    delay: f64,
    /// Extra delay drawn uniformly from [0, JITTER] milliseconds (order is kept).
    #[arg(long, default_value_t = 0.0, value_parser = parse_millis)]
    jitter: f64,
    /// Rate limit of each direction, Mbit/s (0: unlimited).
    #[arg(long, default_value_t = 1000.0, value_parser = parse_rate)]
    rate: f64,
    /// Datagrams that may wait for the rate limit before new ones are dropped (drop-tail);
    /// unbounded when not given, as in the selftest.
    #[arg(long, value_name = "N")]
    queue: Option<usize>,
    /// Datagrams held back by --reorder-delay, so later ones overtake them, percent.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    reorder: f64,
    /// How long a reordered datagram is held back, milliseconds.
    #[arg(long, default_value_t = 5.0, value_parser = parse_millis)]
    reorder_delay: f64,
    /// Datagrams delivered twice, percent.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    duplicate: f64,
    /// Datagrams with one bit flipped, percent.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    corrupt: f64,
    /// Seed of the link's randomness; the directions are seeded as `utcp selftest --seed S`
    /// seeds its links.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    duration: Option<f64>,
    /// MTU of both TUN devices.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(1280..))]
    mtu: u16,
    /// A shell command run in namespace B for the whole run, started before CMD (say, a server).
    #[arg(long, value_name = "SHELL-COMMAND")]
    server: Option<String>,
    /// Start CMD only once a TCP socket listens on this port in namespace B (at most 10 s).
    #[arg(long, value_name = "PORT")]
    wait_port: Option<u16>,
    /// Print the counters as one JSON object on stdout (CMD's stdout then goes to stderr).
    #[arg(long)]
    json: bool,
    /// The command to run in namespace A; without one the link stays up until Ctrl-C or
    /// --duration.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

impl Args {
    /// The link both directions run.
    fn link(&self) -> LinkConfig {
        let dur = |ms: f64| LinkDuration::from_micros((ms * 1000.0).round() as u64);
        LinkConfig {
            loss: self.loss / 100.0,
            reorder: self.reorder / 100.0,
            reorder_delay: dur(self.reorder_delay),
            duplicate: self.duplicate / 100.0,
            corrupt: self.corrupt / 100.0,
            delay: dur(self.delay),
            jitter: dur(self.jitter),
            rate: (self.rate > 0.0).then(|| (self.rate * 1e6 / 8.0).round() as u64),
            queue_limit: self.queue,
        }
    }
}

fn parse_millis(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches("ms").parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=60_000.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?}: expected milliseconds from 0 to 60000")),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e6).contains(&v) => Ok(v),
        _ => Err(format!("{text:?}: expected Mbit/s from 0 (unlimited) to 1000000")),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('s').parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e7 => Ok(v),
        _ => Err(format!("{text:?}: expected a positive number of seconds")),
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// CMD exited with this status.
    Command(ExitStatus),
    /// --duration passed (CMD, if any, was still running).
    Duration { command_running: bool },
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The link's loop stopped by itself (an error, reported when it is joined).
    LinkFailed,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    if !privileged() {
        eprintln!("utcp link: needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces and TUN devices");
        return ExitCode::from(2);
    }
    catch_signals();
    let config = args.link();
    let (ns, devices) = match Namespaces::create("", args.mtu as usize) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("utcp link: {e}");
            return ExitCode::from(1);
        }
    };
    let running = match Running::start(Relay::new(&config, args.seed), devices.a, devices.b) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("utcp link: cannot start the relay: {e}");
            return ExitCode::from(1);
        }
    };
    let started = Instant::now();
    let cc = ns.sysctl("net.ipv4.tcp_congestion_control").unwrap_or_else(|| "?".into());
    eprintln!("utcp link: [{config}] each way, seed {}; the kernel's TCP uses {cc}", args.seed);
    eprintln!("  A  {}  {DEVICE_A} {ADDR_A}/{PREFIX}", ns.a.name());
    eprintln!("  B  {}  {DEVICE_B} {ADDR_B}/{PREFIX}", ns.b.name());
    eprintln!("  for example: ip netns exec {} ping -c 3 {ADDR_B}", ns.a.name());
    eprintln!("utcp link: up; Ctrl-C stops");

    let outcome = supervise(&args, &ns, &running, started);
    let seconds = started.elapsed().as_secs_f64();
    let device_drops = ns.device_drops();
    let finished = running.stop();
    drop(ns);
    let (end, command_error) = match outcome {
        Ok(end) => (end, None),
        Err(e) => (End::LinkFailed, Some(e)),
    };
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            eprintln!("utcp link: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(e) = command_error {
        eprintln!("utcp link: {e}");
    }
    let report = Report { config: &config, seed: args.seed, seconds, finished: &finished, device_drops, end };
    if args.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    match end {
        End::Command(status) => ExitCode::from(exit_code(status)),
        End::Duration { command_running: true } => ExitCode::from(124),
        End::Duration { command_running: false } => ExitCode::SUCCESS,
        End::Interrupted => ExitCode::from(130),
        End::LinkFailed => ExitCode::from(1),
    }
}

/// Starts the server and the command, waits until the run ends, and stops what still runs.
fn supervise(args: &Args, ns: &Namespaces, running: &Running, started: Instant) -> Result<End, String> {
    let deadline = args.duration.map(|s| started + Duration::from_secs_f64(s));
    let mut server = match &args.server {
        Some(sh) => {
            let mut c = ns.b.command("sh");
            c.args(["-c", sh]);
            // Its own process group, so SIGTERM reaches whatever the shell started.
            c.process_group(0);
            Some(Started::spawn(c, ns, args.json, "server", true)?)
        }
        None => None,
    };
    let result = (|| {
        if let Some(port) = args.wait_port {
            wait_listening(&ns.b, port, server.as_mut())?;
        }
        let mut command = match args.command.split_first() {
            Some((program, rest)) => {
                let mut c = ns.a.command(program);
                c.args(rest);
                Some(Started::spawn(c, ns, args.json, "command", false)?)
            }
            None => None,
        };
        let end = loop {
            if let Some(c) = command.as_mut() {
                if let Some(status) = c.child.try_wait().map_err(|e| format!("command: {e}"))? {
                    break End::Command(status);
                }
            }
            if interrupted() {
                break End::Interrupted;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break End::Duration { command_running: command.is_some() };
            }
            if running.is_finished() {
                break End::LinkFailed;
            }
            std::thread::sleep(TICK);
        };
        if let Some(c) = command.as_mut() {
            c.stop();
        }
        Ok(end)
    })();
    if let Some(s) = server.as_mut() {
        s.stop();
    }
    result
}

/// A child process of the run (the command or the server); stopped when dropped, so a panic
/// leaves no process behind in a deleted namespace.
struct Started {
    child: Child,
    what: &'static str,
    /// Signal its whole process group (the server, started in a group of its own).
    group: bool,
}

impl Drop for Started {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Started {
    fn spawn(
        mut c: Command,
        ns: &Namespaces,
        json: bool,
        what: &'static str,
        group: bool,
    ) -> Result<Started, String> {
        c.env("UTCP_LINK_NS_A", ns.a.name())
            .env("UTCP_LINK_NS_B", ns.b.name())
            .env("UTCP_LINK_ADDR_A", ADDR_A.to_string())
            .env("UTCP_LINK_ADDR_B", ADDR_B.to_string());
        if json {
            // stdout is for the one JSON object: the child's goes to stderr.
            let err = std::io::stderr().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
            c.stdout(Stdio::from(err));
        }
        let child = c.spawn().map_err(|e| format!("cannot start the {what}: {e}"))?;
        Ok(Started { child, what, group })
    }

    /// Ends the child if it still runs: SIGTERM, then SIGKILL after [`TERM_GRACE`]; for the
    /// server, to its whole process group, so what its shell started in the background ends too.
    fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        let target = if self.group { -pid } else { pid };
        // SAFETY: kill takes two integers; the target is our own child (or its process group).
        unsafe { libc::kill(target, libc::SIGTERM) };
        let end = Instant::now() + TERM_GRACE;
        while Instant::now() < end {
            if !self.alive() {
                return;
            }
            std::thread::sleep(TICK);
        }
        eprintln!("utcp link: the {} did not end after SIGTERM; killing it", self.what);
        // SAFETY: as above, SIGKILL to our own child or its process group.
        unsafe { libc::kill(target, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// Whether the child (for the server: any process of its group) still runs. Reaps the
    /// child when it has exited.
    fn alive(&mut self) -> bool {
        let exited = matches!(self.child.try_wait(), Ok(Some(_)));
        if !self.group {
            return !exited;
        }
        // SAFETY: signal 0 only asks whether the process group of our own child has a member.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), 0) == 0 }
    }
}

/// Waits (at most [`LISTEN_LIMIT`]) until a TCP socket listens on `port` in `ns`, asking `ss`.
fn wait_listening(ns: &Netns, port: u16, mut server: Option<&mut Started>) -> Result<(), String> {
    let end = Instant::now() + LISTEN_LIMIT;
    let filter = format!("sport = :{port}");
    loop {
        if let Ok(out) = ns.exec_output(&["ss", "-Hltn", &filter]) {
            if !out.trim().is_empty() {
                return Ok(());
            }
        }
        if let Some(s) = server.as_deref_mut() {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(format!("the server exited ({status}) before listening on port {port}"));
            }
        }
        if interrupted() {
            return Err("interrupted".into());
        }
        if Instant::now() >= end {
            return Err(format!("nothing listens on port {port} in B after {} s", LISTEN_LIMIT.as_secs()));
        }
        std::thread::sleep(TICK);
    }
}

fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// What `utcp link` reports at the end.
struct Report<'a> {
    config: &'a LinkConfig,
    seed: u64,
    seconds: f64,
    finished: &'a Finished,
    device_drops: [u64; 2],
    end: End,
}

impl Report<'_> {
    fn json(&self) -> serde_json::Value {
        let s = self.finished.relay.stats();
        let status = match self.end {
            End::Command(st) => json!(exit_code(st)),
            _ => serde_json::Value::Null,
        };
        json!({
            "link": self.config.to_string(),
            "seed": self.seed,
            "addresses": { "a": ADDR_A.to_string(), "b": ADDR_B.to_string() },
            "seconds": self.seconds,
            "a_to_b": s.a_to_b,
            "b_to_a": s.b_to_a,
            "device_drops": { "a": self.device_drops[0], "b": self.device_drops[1] },
            "loop": self.finished.stats,
            "ended_by": match self.end {
                End::Command(_) => "command",
                End::Duration { .. } => "duration",
                End::Interrupted => "interrupted",
                End::LinkFailed => "link failed",
            },
            "command_status": status,
        })
    }

    fn print(&self) {
        let s = self.finished.relay.stats();
        eprintln!("utcp link: {:.1} s, [{}] each way, seed {}", self.seconds, self.config, self.seed);
        for (name, d) in [("A->B", &s.a_to_b), ("B->A", &s.b_to_a)] {
            eprintln!("  {name}  {}", direction_line(d));
        }
        let LoopStats { write_errors, .. } = self.finished.stats;
        eprintln!(
            "  TUN ring drops (the relay did not keep up): A {}, B {}; write errors: A {}, B {}",
            self.device_drops[0], self.device_drops[1], write_errors[0], write_errors[1]
        );
    }
}

fn direction_line(d: &DirectionStats) -> String {
    let l = &d.link;
    format!(
        "sent {}, lost {}, queue drops {}, delivered {} ({} bytes); late by more than 1 ms {}, mean {:.0} µs, max {} µs",
        l.sent,
        l.lost,
        l.queue_drops,
        l.delivered,
        l.bytes_delivered,
        d.lateness.late,
        d.lateness.mean_us(),
        d.lateness.max_us
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("link").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn default_arguments_give_the_selftest_link() {
        let settings = crate::selftest::Settings { loss: 0.02, ..Default::default() };
        assert_eq!(parse(&["--loss", "2"]).unwrap().link(), settings.link());
    }

    #[test]
    fn every_knob_reaches_the_link_config() {
        let a = parse(&[
            "--loss",
            "0.5",
            "--delay",
            "2.5",
            "--jitter",
            "1",
            "--rate",
            "8",
            "--queue",
            "30",
            "--reorder",
            "3",
            "--reorder-delay",
            "4",
            "--duplicate",
            "1",
            "--corrupt",
            "2",
            "--",
            "iperf3",
            "-c",
            "10.77.0.2",
        ])
        .unwrap();
        let c = a.link();
        assert_eq!(c.loss, 0.005);
        assert_eq!(c.delay, LinkDuration::from_micros(2_500));
        assert_eq!(c.jitter, LinkDuration::from_millis(1));
        assert_eq!(c.rate, Some(1_000_000));
        assert_eq!(c.queue_limit, Some(30));
        assert_eq!((c.reorder, c.reorder_delay), (0.03, LinkDuration::from_millis(4)));
        assert_eq!((c.duplicate, c.corrupt), (0.01, 0.02));
        assert_eq!(a.command, ["iperf3", "-c", "10.77.0.2"]);
        assert_eq!(parse(&["--rate", "0"]).unwrap().link().rate, None);
    }

    #[test]
    fn bad_values_are_refused_with_a_message() {
        for argv in [
            &["--loss", "101"][..],
            &["--delay", "-1"],
            &["--delay", "soon"],
            &["--rate", "NaN"],
            &["--duration", "0"],
            &["--mtu", "100"],
        ] {
            let e = parse(argv).expect_err("refused");
            assert!(!e.to_string().is_empty(), "{argv:?}");
        }
    }

    #[test]
    fn a_signal_death_maps_to_128_plus_the_signal() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 128 + 15);
    }
}
