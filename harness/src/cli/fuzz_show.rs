//! `utcp fuzz-show TARGET FILE [--pcap OUT]`: runs one input of a stack fuzz target
//! (`stack_listen`, `stack_established`) and prints what happened as a transcript: every segment
//! into and out of the stack in the packetdrill notation, socket calls, timer runs and events as
//! `//` comments, and the broken property at the end if one broke. `--pcap` also writes every
//! datagram to a capture (pcapng keeps the notes as packet comments) to open in Wireshark.
//!
//! Exit status: 0 when every property held, 1 when one broke, 2 when the input or target is unusable.

use crate::capture::{CaptureError, CaptureWriter, Format};
use crate::fuzzing::{run_stack, Observer, StackInput, StackTarget};
use crate::transcript::{format_endpoint, format_segment, format_time, Direction, Isns};
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use utcp::tcp::SeqNum;
use utcp::time::Instant;
use utcp::wire::{parse_datagram, ChecksumMode, Transport};
use utcp::Event;

/// Arguments of `utcp fuzz-show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fuzz target the input belongs to: stack_listen or stack_established.
    pub target: String,
    /// The input file (a seed from `corpus/fuzz/<target>/` or a crash from `fuzz/artifacts/`).
    pub file: PathBuf,
    /// Also write every datagram to this capture (.pcapng keeps notes as comments; else pcap).
    #[arg(long, value_name = "OUT")]
    pub pcap: Option<PathBuf>,
}

/// Collects the transcript (and the capture) of a run.
pub struct Show {
    start: Instant,
    text: String,
    /// Per (local, remote): the stack's ISN and the peer's.
    isns: HashMap<(SocketAddr, SocketAddr), (Option<SeqNum>, Option<SeqNum>)>,
    last_tuple: Option<(SocketAddr, SocketAddr)>,
    notes: Vec<String>,
    pcap: Option<CaptureWriter<BufWriter<File>>>,
    pcap_error: Option<CaptureError>,
}

impl Show {
    /// A recorder writing a capture to `pcap` if given.
    pub fn new(pcap: Option<CaptureWriter<BufWriter<File>>>) -> Show {
        Show {
            start: Instant::from_secs(1),
            text: String::new(),
            isns: HashMap::new(),
            last_tuple: None,
            notes: Vec::new(),
            pcap,
            pcap_error: None,
        }
    }

    /// The transcript so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn time(&self, now: Instant) -> String {
        format_time(now.saturating_duration_since(self.start))
    }
}

impl Observer for Show {
    fn packet_in(&mut self, now: Instant, datagram: &[u8]) {
        self.packet(now, Direction::In, datagram);
    }

    fn packet_out(&mut self, now: Instant, datagram: &[u8]) {
        self.packet(now, Direction::Out, datagram);
    }

    fn event(&mut self, now: Instant, event: Event) {
        self.note(now, format_args!("event {event:?}"));
    }

    fn note(&mut self, now: Instant, text: fmt::Arguments<'_>) {
        let text = text.to_string();
        let _ = writeln!(self.text, "// {} {text}", self.time(now));
        self.notes.push(text);
    }
}

impl Show {
    /// One datagram into (`Direction::In`) or out of the stack, as a transcript line.
    fn packet(&mut self, now: Instant, dir: Direction, datagram: &[u8]) {
        let comment = (!self.notes.is_empty()).then(|| self.notes.join("; "));
        self.notes.clear();
        if let Some(w) = &mut self.pcap {
            if let Err(e) = w.write(now, datagram, comment.as_deref()) {
                self.pcap_error.get_or_insert(e);
            }
        }
        let time = self.time(now);
        let d = match parse_datagram(datagram, ChecksumMode::Ignore) {
            Ok(d) => d,
            Err(e) => {
                let _ = writeln!(self.text, "{time} {} unparsable datagram: {e}", dir.symbol());
                return;
            }
        };
        let Transport::Tcp(tcp) = d.transport else {
            let _ = writeln!(self.text, "{time} {} {:?}", dir.symbol(), d.transport);
            return;
        };
        let (local, remote) = match dir {
            Direction::In => {
                (SocketAddr::new(d.ip.dst, tcp.dst_port), SocketAddr::new(d.ip.src, tcp.src_port))
            }
            Direction::Out => {
                (SocketAddr::new(d.ip.src, tcp.src_port), SocketAddr::new(d.ip.dst, tcp.dst_port))
            }
        };
        if self.last_tuple != Some((local, remote)) {
            let _ =
                writeln!(self.text, "// local {} remote {}", format_endpoint(local), format_endpoint(remote));
            self.last_tuple = Some((local, remote));
        }
        let isns = self.isns.entry((local, remote)).or_default();
        if tcp.flags.syn() {
            match dir {
                Direction::In => isns.1 = Some(tcp.seq),
                Direction::Out => isns.0 = Some(tcp.seq),
            }
        }
        let view = match dir {
            Direction::In => Isns { sender: isns.1, receiver: isns.0 },
            Direction::Out => Isns { sender: isns.0, receiver: isns.1 },
        };
        let mut line = format!("{time} ");
        format_segment(&mut line, dir, &tcp, None, view);
        if parse_datagram(datagram, ChecksumMode::Verify).is_err() {
            line.push_str("  // bad checksum");
        }
        self.text.push_str(&line);
        self.text.push('\n');
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let Some(target) = StackTarget::from_name(&args.target) else {
        eprintln!("utcp fuzz-show: unknown target {:?} (stack_listen or stack_established)", args.target);
        return ExitCode::from(2);
    };
    let data = match std::fs::read(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("utcp fuzz-show: {}: cannot read: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let pcap = match &args.pcap {
        Some(p) => match CaptureWriter::create(p, Format::from_path(p)) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("utcp fuzz-show: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let input = StackInput::decode(&data);
    let mut show = Show::new(pcap);
    let _ = writeln!(
        show.text,
        "// {} {}: {:?}, {} steps",
        target.name(),
        args.file.display(),
        input.setup,
        input.steps.len()
    );
    // The property checks panic; catch the panic to print the transcript up to it.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_stack(target, &input, &mut show)));
    std::panic::set_hook(hook);
    let mut code = ExitCode::SUCCESS;
    match result {
        Ok(outcome) => {
            let _ = writeln!(
                show.text,
                "// end: sockets {:?}, {} connections held, {} datagrams sent",
                outcome.states, outcome.connections, outcome.packets_out
            );
        }
        Err(panic) => {
            let msg = crate::panic_message(panic.as_ref());
            let _ = writeln!(show.text, "// PROPERTY BROKEN: {msg}");
            code = ExitCode::from(1);
        }
    }
    print!("{}", show.text);
    if let Some(e) = show.pcap_error.take() {
        eprintln!("utcp fuzz-show: {e}");
        return ExitCode::from(2);
    }
    if let Some(w) = show.pcap.take() {
        if let Err(e) = w.finish() {
            eprintln!("utcp fuzz-show: {e}");
            return ExitCode::from(2);
        }
    }
    code
}
