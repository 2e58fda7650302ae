//! `utcp`: the command-line front end of the bench.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use utcp_harness::cli;

/// Counts the bytes each thread holds, for `utcp bench scale`'s memory figures.
#[global_allocator]
static ALLOC: utcp_harness::bench_scale::CountingAlloc = utcp_harness::bench_scale::CountingAlloc;

/// utcp — a user-space TCP/IP stack and the bench that proves it right.
///
/// Logs go to stderr through `tracing`; set RUST_LOG (for example RUST_LOG=utcp=debug).
#[derive(Debug, Parser)]
#[command(name = "utcp", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Two in-memory stacks through the seeded impairment link; checks the data arrived intact.
    Selftest(cli::selftest::Args),
    /// Benchmarks: bulk transfer against smoltcp and memcpy, parser, scale and SYN flood, live.
    Bench(cli::bench::Args),
    /// Replay a capture's recorded peer against utcp: a summary, the transcript or a time-sequence graph.
    Replay(cli::replay::Args),
    /// List the TCP connections in a capture; transcripts and time-sequence graphs on request.
    Inspect(cli::inspect::Args),
    /// Run packetdrill-dialect scripts against utcp, the Linux kernel (root) or both side by side.
    Script(cli::script::Args),
    /// utcp on a TUN device: echo, discard, chargen, static HTTP, or connect out like nc (root).
    Live(cli::live::Args),
    /// The selftest's seeded impairment link in real time between two namespaces of its own, for
    /// the kernel's TCP (a user-space netem; root).
    #[cfg(target_os = "linux")]
    #[command(long_about = cli::link::LONG_ABOUT)]
    Link(cli::link::Args),
    /// Show what a fuzz input of a stack target does, as a transcript or capture.
    FuzzShow(cli::fuzz_show::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Selftest(args) => cli::selftest::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Replay(args) => cli::replay::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Script(args) => cli::script::run(args),
        Command::FuzzShow(args) => cli::fuzz_show::run(args),
        Command::Live(args) => cli::live::run(args),
        #[cfg(target_os = "linux")]
        Command::Link(args) => cli::link::run(args),
    }
}
