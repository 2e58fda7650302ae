//! What a replay shows (DESIGN.md "Replay" step 6): the transcript of utcp's side with a note on
//! each packet that differs, a summary line, the JSON object, the annotated pcapng and the
//! packetdrill-dialect script that reproduces the replay.
//!
//! Must not depend on: the stack's internals, terminals. Segments are formatted by
//! `crate::transcript` only.

use super::compare::{note, Outcome};
use super::engine::{Call, Replay, Step};
use crate::capture::flows::Side;
use crate::capture::{CaptureError, CaptureWriter, Format};
use crate::notes::Tally;
use crate::transcript::{format_segment, format_time, Direction, Isns, Transcript};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use utcp::time::Instant;
use utcp::wire::{parse_datagram, ChecksumMode, Transport};

/// The role's name: `server` or `client`.
pub fn role_name(role: Side) -> &'static str {
    match role {
        Side::Server => "server",
        Side::Client => "client",
    }
}

/// The notes on the injected packets, grouped by kind (the checksum-offload note of every
/// packet is one kind).
pub fn injection_notes(r: &Replay) -> Tally {
    let mut t = Tally::default();
    for s in &r.steps {
        if let Step::In { number, notes, .. } = s {
            for n in notes {
                t.add(*number, n);
            }
        }
    }
    t
}

/// Per step: the note for a utcp packet (differs / tolerated / extra), or an injected one's notes
/// (a kind that repeats on every packet only on its first, with the count).
fn step_notes(r: &Replay) -> Vec<Option<String>> {
    let tally = injection_notes(r);
    let mut notes: Vec<Option<String>> = r
        .steps
        .iter()
        .map(|s| match s {
            Step::In { number, notes, .. } => {
                let shown: Vec<String> = notes.iter().filter_map(|n| tally.shown(*number, n)).collect();
                (!shown.is_empty()).then(|| shown.join("; "))
            }
            _ => None,
        })
        .collect();
    for (ui, (step, _)) in r.utcp.iter().enumerate() {
        notes[*step] = match r.alignment.utcp[ui] {
            None => Some("differs: extra, not in the recording".to_string()),
            Some(ri) => match &r.alignment.recorded[ri] {
                Outcome::Matched(_, diffs) => note(diffs),
                Outcome::Missing => None,
            },
        };
    }
    notes
}

/// The recorded packets utcp did not send: (time, line text).
fn missing_lines(r: &Replay) -> Vec<(Instant, String)> {
    let mut out = Vec::new();
    for (i, o) in r.alignment.recorded.iter().enumerate() {
        if *o != Outcome::Missing {
            continue;
        }
        let (number, seg) = &r.recorded[i];
        let Some(p) = r_packet(r, *number) else { continue };
        let mut line = format!("missing: record {number} ");
        match parse_datagram(&p, ChecksumMode::Ignore) {
            Ok(d) => match d.transport {
                Transport::Tcp(tcp) => {
                    let isns = Isns { sender: r.isns.0, receiver: r.isns.1 };
                    format_segment(&mut line, Direction::Out, &tcp, None, isns);
                }
                _ => line.push_str(&seg.kind().describe()),
            },
            Err(_) => line.push_str(&seg.kind().describe()),
        }
        line.push_str(" not sent by ");
        line.push_str(r.backend.name());
        out.push((seg.time, line));
    }
    out
}

/// The recorded datagram of record `number`, cut to parse when sliced.
fn r_packet(r: &Replay, number: u64) -> Option<Vec<u8>> {
    let i = r.recorded_datagrams.binary_search_by_key(&number, |(n, _)| *n).ok()?;
    Some(r.recorded_datagrams[i].1.clone())
}

fn call_text(call: Call) -> String {
    match call {
        Call::Listen => "listen".into(),
        Call::Connect => "connect".into(),
        Call::Accept => "accept".into(),
        Call::Write { asked, taken } if asked == taken => format!("write {taken}"),
        Call::Write { asked, taken } => format!("write {asked}, {taken} taken"),
        Call::Read(n) => format!("read {n}"),
        Call::Eof => "read EOF".into(),
        Call::Shutdown => "shutdown".into(),
        Call::Abort => "abort (SO_LINGER 0)".into(),
        Call::Close => "close".into(),
    }
}

/// The one-line summary of a replayed connection.
pub fn summary_line(r: &Replay) -> String {
    let c = &r.counts;
    let mut s = format!(
        "flow {} as {} {}: {}, recorded {}, matched {}, differed {}, missing {}, extra {}",
        r.flow,
        role_name(r.role),
        r.local,
        if r.completed { "completed" } else { "not completed" },
        c.recorded,
        c.matched,
        c.differed,
        c.missing,
        c.extra
    );
    if let Some(why) = &r.reason {
        let _ = write!(s, " ({why})");
    }
    match &r.first_difference {
        Some(d) => {
            let _ = write!(s, "; first difference: {d}");
        }
        None => s.push_str("; no difference"),
    }
    s
}

/// The summary of a replayed connection for a person: a heading line (flow, role, endpoints,
/// completed or why not), the counts, the first difference, each kind of note once with its
/// count, and what utcp did (retransmissions).
pub fn summary(r: &Replay) -> String {
    let c = &r.counts;
    let mut s = String::new();
    let state = match (&r.completed, &r.reason) {
        (true, _) => "completed".to_string(),
        (false, Some(why)) => format!("not completed ({why})"),
        (false, None) => "not completed".to_string(),
    };
    let name = r.backend.name();
    let _ =
        writeln!(s, "flow {}: {name} as {} {} <-> {}: {state}", r.flow, role_name(r.role), r.local, r.remote);
    let _ = writeln!(
        s,
        "  recorded {}: matched {}, differed {}, missing {}; extra {}",
        c.recorded, c.matched, c.differed, c.missing, c.extra
    );
    if !c.significant.is_empty() {
        let fields: Vec<String> = c.significant.iter().map(|(f, n)| format!("{f} {n}")).collect();
        let _ = writeln!(s, "  differences by field: {}", fields.join(", "));
    }
    match &r.first_difference {
        Some(d) => {
            let _ = writeln!(s, "  first difference: {d}");
        }
        None if r.replayed => s.push_str("  no difference\n"),
        None => {}
    }
    let injected = r.steps.iter().filter(|s| matches!(s, Step::In { .. })).count();
    if r.replayed {
        let _ = writeln!(
            s,
            "  injected {injected}, {name} sent {} ({} retransmissions)",
            r.utcp.len(),
            r.stats.retransmissions
        );
    }
    let notes = injection_notes(r).summary_lines();
    let mut engine = Tally::default();
    for (i, step) in r.steps.iter().enumerate() {
        if let Step::Note { text, .. } = step {
            engine.add(i as u64, text);
        }
    }
    if !notes.is_empty() || !engine.groups().is_empty() {
        s.push_str("  notes:\n");
        for n in notes {
            let _ = writeln!(s, "    {n}");
        }
        for g in engine.groups() {
            match g.count {
                1 => writeln!(s, "    {}", g.first),
                n => writeln!(s, "    {n} times: {}", g.first),
            }
            .ok();
        }
    }
    s
}

/// The transcript of utcp's side: peer packets as injected (`<`), utcp's (`>`), the
/// application's calls as comments (reads left out), a note on each packet that differs and a
/// comment for each recorded packet utcp did not send; then the summary line.
pub fn transcript(r: &Replay) -> String {
    let mut t = Transcript::new(r.local, r.remote);
    t.comment(&format!(
        "flow {}: {} plays the {} ({} mode, {} profile)",
        r.flow,
        r.backend.name(),
        role_name(r.role),
        r.mode.name(),
        r.profile.name()
    ));
    if let Some(isn) = r.isns.1 {
        t.set_isn(Direction::In, isn);
    }
    let notes = step_notes(r);
    let mut missing = missing_lines(r).into_iter().peekable();
    for (i, step) in r.steps.iter().enumerate() {
        while missing.peek().is_some_and(|(mt, _)| *mt < step.time()) {
            if let Some((_, m)) = missing.next() {
                t.comment(&m);
            }
        }
        match step {
            Step::In { time, datagram, .. } | Step::Out { time, datagram } => {
                let dir = if matches!(step, Step::In { .. }) { Direction::In } else { Direction::Out };
                match parse_datagram(datagram, ChecksumMode::Ignore) {
                    Ok(d) => match d.transport {
                        Transport::Tcp(tcp) => t.push_segment(*time, dir, &tcp, None, notes[i].as_deref()),
                        _ => t.comment("not TCP"),
                    },
                    Err(e) => t.comment(&format!("not parsed: {e}")),
                }
            }
            Step::Call { call: Call::Read(_) | Call::Eof, .. } => {}
            Step::Call { call, .. } => t.comment(&format!("app: {}", call_text(*call))),
            Step::Note { text, .. } => t.comment(text),
        }
    }
    for (_, m) in missing {
        t.comment(&m);
    }
    let mut out = t.into_string();
    let _ = writeln!(out, "// {}", summary_line(r));
    out
}

/// One connection as a JSON object.
pub fn connection_json(r: &Replay) -> Value {
    let c = &r.counts;
    json!({
        "flow": r.flow,
        "stack": r.backend.name(),
        "role": role_name(r.role),
        "local": r.local.to_string(),
        "remote": r.remote.to_string(),
        "mode": r.mode.name(),
        "profile": r.profile.name(),
        "replayed": r.replayed,
        "completed": r.completed,
        "reason": r.reason,
        "recorded": c.recorded,
        "matched": c.matched,
        "differed": c.differed,
        "missing": c.missing,
        "extra": c.extra,
        "first_difference": r.first_difference,
        "differences": c.significant,
        "tolerated": c.tolerated,
        "injected": r.steps.iter().filter(|s| matches!(s, Step::In { .. })).count(),
        "sent": r.utcp.len(),
        "retransmissions": r.stats.retransmissions,
    })
}

/// The share of the recorded endpoint's packets matched (nothing significant differing), in
/// percent; `None` when it sent none.
pub fn match_percent(r: &Replay) -> Option<f64> {
    (r.counts.recorded > 0).then(|| 100.0 * r.counts.matched as f64 / r.counts.recorded as f64)
}

/// `  match: utcp 97.4 % (37 of 38), linux 94.7 % (36 of 38)`: two replays of one connection.
pub fn match_line(a: &Replay, b: &Replay) -> String {
    let one = |r: &Replay| match (r.replayed, match_percent(r)) {
        (false, _) => format!("{} not replayed", r.backend.name()),
        (true, Some(p)) => {
            format!("{} {p:.1} % ({} of {})", r.backend.name(), r.counts.matched, r.counts.recorded)
        }
        (true, None) => format!("{} -", r.backend.name()),
    };
    format!("  match: {}, {}\n", one(a), one(b))
}

/// One connection replayed on utcp and on Linux: utcp's object with Linux's under `linux`.
pub fn connection_json_both(utcp: &Replay, linux: &Replay) -> Value {
    let mut v = connection_json(utcp);
    v["linux"] = connection_json(linux);
    v
}

/// The JSON report of a file replayed on utcp and on Linux: utcp's connection objects as
/// [`to_json`] gives them, each with Linux's object of the same connection under `linux`.
pub fn to_json_both(file: &str, utcp: &[Replay], linux: &[Replay]) -> Value {
    let connections: Vec<Value> = utcp.iter().zip(linux).map(|(u, l)| connection_json_both(u, l)).collect();
    json!({ "file": file, "connections": connections })
}

/// The JSON report of a file: `{ "file": ..., "connections": [...] }`.
pub fn to_json(file: &str, replays: &[Replay]) -> Value {
    json!({
        "file": file,
        "connections": replays.iter().map(connection_json).collect::<Vec<_>>(),
    })
}

/// The text of [`to_json`]'s object from connection objects already written as text, one at a
/// time as they were replayed (the same text as `to_json(..).to_string()`).
pub fn json_text(file: &str, connections: &[String]) -> String {
    // The key with its quotes cannot occur inside the escaped file name.
    let mut head = json!({ "file": file, "connections": [] }).to_string();
    let key = "\"connections\":[";
    let at = head.find(key).map_or(head.len(), |i| i + key.len());
    head.insert_str(at, &connections.join(","));
    head
}

/// The annotated pcapng of [`write_pcapng`], written one replay at a time.
pub struct PcapngOut {
    w: CaptureWriter<std::io::BufWriter<std::fs::File>>,
}

impl PcapngOut {
    /// Creates the file at `path`.
    pub fn create(path: &Path) -> Result<PcapngOut, CaptureError> {
        Ok(PcapngOut { w: CaptureWriter::create(path, Format::PcapNg)? })
    }

    /// Writes the packets of one replay.
    pub fn add(&mut self, r: &Replay) -> Result<(), CaptureError> {
        let notes = step_notes(r);
        let mut missing = missing_lines(r).into_iter().peekable();
        for (i, step) in r.steps.iter().enumerate() {
            let (Step::In { time, datagram, .. } | Step::Out { time, datagram }) = step else { continue };
            let mut comment = Vec::new();
            while missing.peek().is_some_and(|(mt, _)| mt <= time) {
                if let Some((_, m)) = missing.next() {
                    comment.push(format!("before this packet: {m}"));
                }
            }
            if let Some(n) = &notes[i] {
                comment.push(n.clone());
            }
            let text = comment.join("\n");
            self.w.write(*time, datagram, (!text.is_empty()).then_some(text.as_str()))?;
        }
        Ok(())
    }

    /// Flushes the file; returns the packets written.
    pub fn finish(self) -> Result<u64, CaptureError> {
        let n = self.w.written();
        self.w.finish()?;
        Ok(n)
    }
}

/// Writes the replays as a raw-IP pcapng at their virtual (= capture) times, with a comment on
/// every packet that differs and on every adapted injection; a recorded packet utcp did not
/// send is named in the comment of the next packet written.
pub fn write_pcapng(path: &Path, replays: &[Replay]) -> Result<u64, CaptureError> {
    let mut out = PcapngOut::create(path)?;
    for r in replays {
        out.add(r)?;
    }
    out.finish()
}

/// A script in the packetdrill dialect (DESIGN.md "Scripts") that reproduces the replay: the
/// socket calls of the application, the peer's packets as injected (`<`) and utcp's answers
/// (`>`), at absolute times from the first step.
pub fn script(r: &Replay, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "// Replay of {source}, flow {}: utcp plays the {}.", r.flow, role_name(r.role));
    let _ = writeln!(out, "// Recorded endpoints: local {} remote {}.", r.local, r.remote);
    let _ = writeln!(out, "// Generated by `utcp replay --emit-script` ({} mode).", r.mode.name());
    if r.local.is_ipv6() {
        out.push_str("--ip_version=ipv6\n");
    }
    let _ = writeln!(out, "--local_ip={}", r.local.ip());
    let _ = writeln!(out, "--remote_ip={}", r.remote.ip());
    out.push('\n');
    let Some(start) = r.steps.first().map(Step::time) else { return out };
    let time = |t: Instant| format_time(t.saturating_duration_since(start));
    let mut t = Transcript::new(r.local, r.remote);
    if let Some(isn) = r.isns.1 {
        t.set_isn(Direction::In, isn);
    }
    let (listen_fd, conn_fd) = match r.role {
        Side::Server => (3, 4),
        Side::Client => (3, 3),
    };
    let line = |out: &mut String, at: Instant, text: &str| {
        let _ = writeln!(out, "{:<10} {text}", time(at));
    };
    // A runner takes the stack's packets right after each input, so reads (which send nothing
    // here) go after the packets utcp sent at the same moment.
    let mut order: Vec<&Step> = Vec::with_capacity(r.steps.len());
    let mut reads: Vec<&Step> = Vec::new();
    for step in &r.steps {
        match step {
            Step::Call { call: Call::Read(_) | Call::Eof, .. } => reads.push(step),
            Step::Out { time, .. } if reads.first().is_some_and(|s| s.time() == *time) => order.push(step),
            _ => {
                order.append(&mut reads);
                order.push(step);
            }
        }
    }
    order.append(&mut reads);
    for step in order {
        match step {
            Step::In { time: at, datagram, .. } | Step::Out { time: at, datagram } => {
                let dir = if matches!(step, Step::In { .. }) { Direction::In } else { Direction::Out };
                if let Ok(d) = parse_datagram(datagram, ChecksumMode::Ignore) {
                    if let Transport::Tcp(tcp) = d.transport {
                        let l = t.line(*at, dir, &tcp, None);
                        let seg = l.split_once(' ').map_or(l.as_str(), |(_, rest)| rest);
                        line(&mut out, *at, seg);
                    }
                }
            }
            Step::Call { time: at, call } => {
                let text = match *call {
                    Call::Listen => format!(
                        "socket(..., SOCK_STREAM, IPPROTO_TCP) = {listen_fd}\n{:<10} bind({listen_fd}, ..., ...) = 0\n{:<10} listen({listen_fd}, 1) = 0",
                        "+0", "+0"
                    ),
                    Call::Connect => format!(
                        "socket(..., SOCK_STREAM, IPPROTO_TCP) = {conn_fd}\n{:<10} fcntl({conn_fd}, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n{:<10} connect({conn_fd}, ..., ...) = -1 EINPROGRESS (Operation now in progress)",
                        "+0", "+0"
                    ),
                    Call::Accept => format!("accept({listen_fd}, ..., ...) = {conn_fd}"),
                    Call::Write { asked, taken } => format!("write({conn_fd}, ..., {asked}) = {taken}"),
                    Call::Read(n) => format!("read({conn_fd}, ..., {n}) = {n}"),
                    Call::Eof => format!("read({conn_fd}, ..., 65536) = 0"),
                    Call::Shutdown => format!("shutdown({conn_fd}, SHUT_WR) = 0"),
                    Call::Abort => format!(
                        "setsockopt({conn_fd}, SOL_SOCKET, SO_LINGER, {{onoff=1, linger=0}}, 8) = 0\n{:<10} close({conn_fd}) = 0",
                        "+0"
                    ),
                    Call::Close => format!("close({conn_fd}) = 0"),
                };
                line(&mut out, *at, &text);
            }
            Step::Note { text, .. } => {
                let _ = writeln!(out, "// {text}");
            }
        }
    }
    out
}
