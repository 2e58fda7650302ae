//! What the packet lines of a script mean, whichever stack runs it: the numbering (the stack's
//! ISN per peer port, the timestamp offset, the two addresses), the datagrams a `<` line stands
//! for, the check of a `>` line against what the stack sent, and the notation both are shown in.
//! The utcp executor ([`super::Exec`]) and the Linux one (`script::kernel`) both use it, so a
//! script reads the same and fails with the same text on either.
//!
//! Must not depend on: a stack, clocks (the caller says what time it is), devices.

use super::{fail, secs, Failure, ANY_TIME_LIMIT, REMOTE_ISN};
use crate::script::ast::*;
use crate::script::packet::Segment;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use utcp::tcp::seq::SeqNum;
use utcp::wire::{parse_datagram, ChecksumMode, Notation, TcpRepr, Transport};
use utcp::Instant;

/// Where the datagrams a stack sent come from, for a `>` line: the utcp executor runs the stack's
/// timers until one is queued, the Linux one reads the TUN device until one arrives.
pub(crate) trait Sent {
    /// The script's clock now.
    fn now(&self) -> Instant;
    /// The oldest datagram sent and not yet taken by a line, waiting at most until `late` for one.
    fn next_sent(&mut self, late: Instant) -> Result<Option<(Instant, Vec<u8>)>, Failure>;
    /// Puts a datagram taken by [`Sent::next_sent`] back at the front.
    fn put_back(&mut self, time: Instant, datagram: Vec<u8>);
    /// Adds a line to the transcript.
    fn record(&mut self, line: String);
}

/// The numbering of one run of a script.
#[derive(Debug, Clone)]
pub(crate) struct Numbering {
    /// The stack's ISN per peer port, from the latest SYN it sent to that port.
    pub stack_isns: HashMap<u16, u32>,
    /// The sequence number the script wrote on that SYN's `>` line (packetdrill's
    /// `script.local_isn`): only SYNs are numbered from it, everything after from the ISN.
    pub script_isns: HashMap<u16, u32>,
    /// The sequence number the peer's opening SYN wrote, per peer port: its later numbers count
    /// from it ([`Numbering::remote_base`], recorded by [`Numbering::note_inbound`]).
    pub remote_isns: HashMap<u16, u32>,
    /// Peer ports whose connection a FIN or RST has ended (either way) since the peer's ISN was
    /// recorded: the next SYN from there opens a new one.
    pub ended: std::collections::HashSet<u16>,
    /// A `listen` came since the last passive open: the next SYN from the scripted peer (not
    /// naming a port of its own) comes from a port no connection has used yet, as packetdrill
    /// gives each passive socket under test a fresh ephemeral port (run_packet.c).
    pub fresh_port_due: bool,
    pub ts_offset: Option<u32>,
    pub last_ts_val: Option<u32>,
    /// The stack's address and port, as on the wire.
    pub local: SocketAddr,
    /// The scripted peer's address and port, as on the wire.
    pub remote: SocketAddr,
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering::new(
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        )
    }
}

impl Numbering {
    /// At the end of a script: fails at its last line when the socket under test sent a
    /// datagram before the last line's time (`last`, microseconds) that no `>` line took
    /// (packetdrill notices such a packet only at a later `>` line; a script that ends must not
    /// hide one). Another socket's packets are let go, as the `>` lines let them go.
    pub fn nothing_left_unmatched<'a>(
        &self,
        mut sent: impl Iterator<Item = &'a (Instant, Vec<u8>)>,
        last: u64,
        script: &Script,
        transcript: &mut Vec<String>,
    ) -> Result<(), Failure> {
        let local = self.local;
        let ours = |d: &[u8]| {
            Segment::parse(d).map_or(true, |s| s.src.port() == local.port() || s.flags & flag::SYN != 0)
        };
        let Some((t, d)) = sent.find(|(t, d)| t.total_micros() < last && ours(d)) else { return Ok(()) };
        let shown = self.show_outbound(d);
        transcript.push(format!("{} > {shown}", secs(*t)));
        let (line, text) = script.events.last().map(|e| (e.line, e.text.clone())).unwrap_or_default();
        fail(line, &text, format!("the stack sent `> {shown}` at {} and no `>` line matched it", secs(*t)))
    }

    /// Numbering before the stack sent anything: absolute numbers, no timestamp offset.
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Numbering {
        Numbering {
            stack_isns: HashMap::new(),
            script_isns: HashMap::new(),
            remote_isns: HashMap::new(),
            ended: std::collections::HashSet::new(),
            fresh_port_due: false,
            ts_offset: None,
            last_ts_val: None,
            local,
            remote,
        }
    }

    /// Takes note of a `<` line before its datagrams are made: packetdrill records the peer's
    /// ISN from the SYN that opens a connection (the SYN-ACK to a connect, a SYN to a listener),
    /// not from a SYN into one that is open (no FIN or RST since the last).
    pub fn note_inbound(&mut self, p: &PacketSpec) {
        if p.flags & (flag::SYN | flag::ACK) == flag::SYN
            && p.peer_port.is_none()
            && std::mem::take(&mut self.fresh_port_due)
            && self.remote_isns.contains_key(&self.remote.port())
        {
            let used = self.remote_isns.keys().copied().max().unwrap_or(self.remote.port());
            self.remote.set_port(used.wrapping_add(1).max(1024));
        }
        let port = self.peer_for(p).port();
        if p.flags & flag::SYN != 0
            && (p.flags & flag::ACK != 0
                || !self.remote_isns.contains_key(&port)
                || self.ended.contains(&port))
        {
            self.remote_isns.insert(port, p.seq);
            self.ended.remove(&port);
        } else if p.flags & (flag::FIN | flag::RST) != 0 {
            self.ended.insert(port);
        }
    }

    /// What the peer's sequence numbers are relative to towards `peer_port`: in a SYN the
    /// script's number is the ISN itself (on top of [`REMOTE_ISN`]); after it, numbers count
    /// from the ISN the peer's opening SYN wrote (packetdrill's `remote_seq_script_to_live_offset`).
    pub fn remote_base(&self, peer_port: u16, syn: bool) -> u32 {
        let isn = if syn { 0 } else { self.remote_isns.get(&peer_port).copied().unwrap_or(0) };
        REMOTE_ISN.wrapping_add(isn)
    }

    /// What the script's numbers for the stack's side are relative to towards `peer_port`,
    /// as packetdrill's `local_seq_script_to_live_offset`: in a SYN, the ISN less the number the
    /// script wrote on the stack's SYN; otherwise the ISN itself; 0 (absolute numbers) before
    /// one is known.
    pub fn stack_base(&self, peer_port: u16, syn: bool) -> u32 {
        let isn = self.stack_isns.get(&peer_port).copied().unwrap_or(0);
        let script = if syn { self.script_isns.get(&peer_port).copied().unwrap_or(0) } else { 0 };
        isn.wrapping_sub(script)
    }

    /// The peer's address for a packet line: the current one, or another port when it says so.
    pub fn peer_for(&self, p: &PacketSpec) -> SocketAddr {
        SocketAddr::new(self.remote.ip(), p.peer_port.unwrap_or(self.remote.port()))
    }

    /// The datagrams a `<` line stands for (more than one when packetdrill's `--mss` cuts it).
    pub fn inbound(
        &self,
        event: &Event,
        p: &PacketSpec,
        script: &ScriptOptions,
    ) -> Result<Vec<Vec<u8>>, Failure> {
        let peer = self.peer_for(p);
        let base = self.stack_base(peer.port(), p.flags & flag::SYN != 0);
        let mut options = Vec::new();
        if let Some(OptionsSpec::List(list)) = &p.options {
            for o in list {
                options.push(match o {
                    TcpOptionSpec::Sack(blocks) => TcpOptionSpec::Sack(
                        blocks.iter().map(|(a, b)| (a.wrapping_add(base), b.wrapping_add(base))).collect(),
                    ),
                    TcpOptionSpec::Timestamp { val, ecr } => {
                        let ecr = match (self.ts_offset, self.last_ts_val) {
                            (Some(off), _) => ecr.wrapping_add(off),
                            (None, Some(v)) if *ecr != 0 => v,
                            _ => *ecr,
                        };
                        TcpOptionSpec::Timestamp { val: *val, ecr }
                    }
                    o => o.clone(),
                });
            }
        } else if p.options == Some(OptionsSpec::Any) {
            return fail(event.line, &event.text, "`<...>` (any options) only makes sense on a `>` line");
        }
        let seg = Segment {
            src: peer,
            dst: self.local,
            flags: p.flags,
            seq: self.remote_base(peer.port(), p.flags & flag::SYN != 0).wrapping_add(p.seq),
            // packetdrill (map_inbound_packet): the ACK field is re-based whenever the ACK flag
            // is set, a line without `ack` meaning 0 relative; without the flag it is as written.
            ack: if p.flags & flag::ACK != 0 {
                p.ack.unwrap_or(0).wrapping_add(base)
            } else {
                p.ack.unwrap_or(0)
            },
            win: p.win.unwrap_or(65535),
            urg: p.urg.unwrap_or(0),
            options,
            payload_len: p.len,
            ecn: p.ecn.and_then(EcnSpec::bits).unwrap_or(0),
        };
        // packetdrill's --mss: an inbound packet longer than the MSS is handed over as a GSO
        // super-packet and reaches the stack as MSS-sized segments (PSH and FIN on the last).
        let mss = script.mss.map_or(u32::MAX, |m| u32::from(m.max(1)));
        let mut pieces = Vec::new();
        let mut off = 0;
        while off < seg.payload_len || pieces.is_empty() {
            let len = (seg.payload_len - off).min(mss);
            let last = off + len >= seg.payload_len;
            let keep = if last { 0xff } else { !(flag::PSH | flag::FIN) };
            pieces.push(Segment {
                seq: seg.seq.wrapping_add(off),
                flags: seg.flags & keep,
                payload_len: len,
                ..seg.clone()
            });
            off += len;
        }
        pieces.iter().map(|piece| piece.to_datagram().or_else(|e| fail(event.line, &event.text, e))).collect()
    }

    /// An ICMP error from the scripted peer's address (ICMPv6 over IPv6), quoting the IP header
    /// and first 8 bytes of a segment the stack sent to it (RFC 792, RFC 4443 §2.4 as
    /// packetdrill quotes): ports, and the sequence number relative to the stack's ISN as in
    /// `>` lines.
    pub fn inbound_icmp(&self, event: &Event, i: &IcmpSpec) -> Result<Vec<u8>, Failure> {
        let (seq, len) = i.quoted.unwrap_or((0, 0));
        let quoted = Segment {
            src: self.local,
            dst: self.remote,
            flags: flag::ACK,
            seq: self.stack_base(self.remote.port(), false).wrapping_add(seq),
            ack: 0,
            win: 0,
            urg: 0,
            options: Vec::new(),
            payload_len: len,
            ecn: 0,
        };
        let original = match quoted.to_datagram() {
            Ok(d) => d,
            Err(e) => return fail(event.line, &event.text, e),
        };
        let ip_len = if self.local.is_ipv6() { 40 } else { 20 };
        // ICMPv6's MTU takes the whole word, ICMPv4's its low half (the parser keeps it to 16
        // bits there): either way the number in network order.
        let word = i.mtu.map_or([0; 4], u32::to_be_bytes);
        crate::script::packet::icmp_datagram(
            self.remote.ip(),
            self.local.ip(),
            i.icmp_type,
            i.code,
            word,
            &original[..ip_len + 8],
        )
        .or_else(|e| fail(event.line, &event.text, e))
    }

    /// Formats an outbound datagram in the core's notation, numbers relative as in the script
    /// (the stack's ISN re-based at its SYNs, the remote's ISN the runner's).
    pub fn show_outbound(&self, d: &[u8]) -> String {
        self.show(d, |tcp| {
            let sender = if tcp.flags.syn() { Some(tcp.seq) } else { self.stack_isn(tcp.dst_port) };
            (sender, Some(SeqNum(self.remote_base(tcp.dst_port, false))), tcp.dst_port)
        })
    }

    /// Formats an inbound datagram as `Exec::show_outbound` does, from the remote's side.
    pub fn show_inbound(&self, d: &[u8]) -> String {
        self.show(d, |tcp| {
            (Some(SeqNum(self.remote_base(tcp.src_port, false))), self.stack_isn(tcp.src_port), tcp.src_port)
        })
    }

    /// The stack's ISN towards `peer_port`, once known.
    pub fn stack_isn(&self, peer_port: u16) -> Option<SeqNum> {
        self.stack_isns.get(&peer_port).copied().map(SeqNum)
    }

    /// A datagram in the notation (options in wire order), `port N` after it when it is not the
    /// script's peer's; `isns` gives the sender's and receiver's ISN and the peer's port.
    pub fn show(
        &self,
        d: &[u8],
        isns: impl Fn(&TcpRepr<'_>) -> (Option<SeqNum>, Option<SeqNum>, u16),
    ) -> String {
        match parse_datagram(d, ChecksumMode::Verify) {
            Ok(dg) => match dg.transport {
                Transport::Tcp(tcp) => {
                    let (sender, receiver, peer_port) = isns(&tcp);
                    // The TCP header's place: after IPv4's header, or IPv6's 40 bytes (the stacks
                    // send no extension headers).
                    let ihl = if d[0] >> 4 == 6 { 40 } else { usize::from(d[0] & 0xf) * 4 };
                    let raw = d
                        .get(ihl + 12)
                        .map(|b| usize::from(b >> 4) * 4)
                        .and_then(|doff| d.get(ihl + 20..ihl + doff));
                    let mut out = Notation::new(&tcp, sender, receiver).with_raw_options(raw).to_string();
                    // The ECN field as packetdrill writes it, when it is not Not-ECT.
                    if dg.ip.ecn != 0 {
                        out = format!("[{}] {out}", EcnSpec::of_bits(dg.ip.ecn));
                    }
                    if peer_port != self.remote.port() {
                        out.push_str(&format!(" port {peer_port}"));
                    }
                    out
                }
                _ => "(not a TCP segment)".to_string(),
            },
            Err(e) => format!("(unparsable datagram: {e})"),
        }
    }

    #[allow(clippy::type_complexity)]
    pub fn relative(&self, s: &Segment) -> (u8, u32, u32, u32, u16, u16, Vec<TcpOptionSpec>) {
        let base = self.stack_base(s.dst.port(), s.flags & flag::SYN != 0);
        let remote = self.remote_base(s.dst.port(), s.flags & flag::SYN != 0);
        let opts = s
            .options
            .iter()
            .map(|o| match o {
                TcpOptionSpec::Sack(blocks) => TcpOptionSpec::Sack(
                    blocks.iter().map(|(a, b)| (a.wrapping_sub(remote), b.wrapping_sub(remote))).collect(),
                ),
                TcpOptionSpec::Timestamp { val, ecr } => {
                    TcpOptionSpec::Timestamp { val: val.wrapping_sub(self.ts_offset.unwrap_or(0)), ecr: *ecr }
                }
                o => o.clone(),
            })
            .collect();
        (s.flags, s.seq.wrapping_sub(base), s.payload_len, s.ack.wrapping_sub(remote), s.win, s.urg, opts)
    }

    /// Checks a `>` line against the oldest datagram `sent` has (waiting for it until the end of
    /// the line's time window) and returns the time the next relative time counts from.
    /// `last` is the time of the previous event, in microseconds.
    pub fn outbound(
        &mut self,
        event: &Event,
        p: &PacketSpec,
        options: &ScriptOptions,
        last: u64,
        sent: &mut dyn Sent,
    ) -> Result<u64, Failure> {
        let tol = options.tolerance_usecs;
        let now = sent.now().total_micros();
        let (lo, hi) = match event.time {
            TimeSpec::Absolute(t) => (t, t),
            TimeSpec::Relative(d) => (last + d, last + d),
            TimeSpec::Any => (now, now + ANY_TIME_LIMIT),
            TimeSpec::Range { lo, hi, relative } => {
                let b = if relative { last } else { 0 };
                (lo + b, hi + b)
            }
        };
        let slack = if options.timer_wheel_slack { hi.saturating_sub(last) / 8 } else { 0 };
        let (early, late) =
            if event.time == TimeSpec::Any { (0, hi) } else { (lo.saturating_sub(tol), hi + tol + slack) };
        // packetdrill: what the stack sent is queued; this line takes the oldest packet, whenever
        // it was sent, and checks its time against the line's window.
        // packetdrill (sniff_outbound_live_packet): only the socket under test's packets are
        // matched; what an older connection of the stack sends from another port (its FIN
        // after close, say) is let go.
        let mut next = sent.next_sent(Instant::from_micros(late))?;
        while let Some((t, d)) = &next {
            let older = Segment::parse(d).is_ok_and(|s| {
                s.src.port() != self.local.port() && s.flags & flag::SYN == 0 && s.src.ip() == self.local.ip()
            });
            if !older {
                break;
            }
            sent.record(format!("{} > {} (another socket's, let go)", secs(*t), self.show_outbound(d)));
            next = sent.next_sent(Instant::from_micros(late))?;
        }
        let Some((first_t, d)) = next else {
            return fail(
                event.line,
                &event.text,
                format!("no packet by {}", secs(Instant::from_micros(late))),
            );
        };
        let mut seg = match Segment::parse(&d) {
            Ok(s) => s,
            Err(e) => return fail(event.line, &event.text, format!("an unparsable datagram: {e}")),
        };
        if seg.flags & (flag::FIN | flag::RST) != 0 {
            self.ended.insert(seg.dst.port());
        }
        if seg.flags & flag::SYN != 0 {
            // The script's SYN sequence number, whatever it is, names the stack's ISN.
            let script_isn = if p.flags & flag::SYN != 0 { p.seq } else { 0 };
            self.stack_isns.insert(seg.dst.port(), seg.seq);
            self.script_isns.insert(seg.dst.port(), script_isn);
            if seg.flags & flag::ACK == 0 {
                self.local = seg.src;
                self.remote = seg.dst;
            }
        }
        let mut shown = self.show_outbound(&d);
        sent.record(format!("{} > {shown}", secs(first_t)));
        let mut t = first_t;
        // packetdrill (run_packet.c, sniff_outbound_live_packet): unless --strict_segments, a
        // line longer than the segment takes the following segments of the same connection until
        // their payload adds up (or passes the line's, which then fails); the whole has the first
        // segment's sequence number and CWR and the last one's other headers and time.
        if !options.strict_segments {
            let mut total = seg.payload_len;
            let mut merged = false;
            while seg.payload_len > 0 && total < p.len {
                let Some((nt, nd)) = sent.next_sent(Instant::from_micros(late))? else { break };
                let Ok(next) = Segment::parse(&nd) else {
                    sent.put_back(nt, nd);
                    break;
                };
                let contiguous = next.src == seg.src
                    && next.dst == seg.dst
                    && next.seq == seg.seq.wrapping_add(total)
                    && next.flags & (flag::SYN | flag::RST) == 0;
                if !contiguous || next.payload_len == 0 {
                    sent.put_back(nt, nd);
                    break;
                }
                sent.record(format!("{} > {}", secs(nt), self.show_outbound(&nd)));
                total += next.payload_len;
                merged = true;
                let cwr = seg.flags & flag::CWR;
                let seq = seg.seq;
                seg = Segment { seq, flags: (next.flags & !flag::CWR) | cwr, payload_len: total, ..next };
                t = nt;
            }
            if merged {
                let merged = seg.to_datagram().unwrap_or_default();
                shown = format!("{} (merged)", self.show_outbound(&merged));
            }
        }
        let got = |why: String| format!("> {shown} at {} ({why})", secs(t));
        let tu = t.total_micros();
        if tu < early || tu > late {
            return fail(
                event.line,
                &event.text,
                got(format!(
                    "expected between {} and {}",
                    secs(Instant::from_micros(early)),
                    secs(Instant::from_micros(late))
                )),
            );
        }
        let peer = self.peer_for(p);
        if seg.src != self.local || seg.dst != peer {
            return fail(
                event.line,
                &event.text,
                got(format!(
                    "sent from {} to {}, expected {} to {}",
                    seg.src, seg.dst, self.local, self.remote
                )),
            );
        }
        let (flags, seq, len, ack, win, urg, opts) = self.relative(&seg);
        if flags != p.flags {
            return fail(
                event.line,
                &event.text,
                got(format!("flags {} instead of {}", format_flags(flags), format_flags(p.flags))),
            );
        }
        if seq != p.seq || len != p.len {
            return fail(event.line, &event.text, got("different sequence range".into()));
        }
        if let Some(e) = p.ecn {
            if !e.matches(seg.ecn) {
                let found = EcnSpec::of_bits(seg.ecn);
                return fail(
                    event.line,
                    &event.text,
                    got(format!("ECN field {found} instead of {}", e.word())),
                );
            }
        }
        if let Some(a) = p.ack {
            if flags & flag::ACK == 0 || ack != a {
                return fail(event.line, &event.text, got(format!("ack {ack} instead of {a}")));
            }
        }
        if let Some(w) = p.win {
            if win != w {
                return fail(event.line, &event.text, got(format!("win {win} instead of {w}")));
            }
        }
        if let Some(u) = p.urg {
            if urg != u {
                return fail(event.line, &event.text, got(format!("urg {urg} instead of {u}")));
            }
        }
        if let Some(OptionsSpec::List(want)) = &p.options {
            let ok = want.len() == opts.len()
                && want.iter().zip(&opts).all(|(w, g)| match (w, g) {
                    (TcpOptionSpec::Timestamp { ecr: we, .. }, TcpOptionSpec::Timestamp { ecr: ge, .. }) => {
                        we == ge
                    }
                    (w, g) => w == g,
                });
            if !ok {
                return fail(
                    event.line,
                    &event.text,
                    got(format!("options {} instead of {}", format_options(&opts), format_options(want))),
                );
            }
        }
        // Learn the stack's timestamp clock from the first TS val the script wrote.
        let want_val = match &p.options {
            Some(OptionsSpec::List(want)) => want.iter().find_map(|o| match o {
                TcpOptionSpec::Timestamp { val, .. } => Some(*val),
                _ => None,
            }),
            _ => None,
        };
        if let Some(TcpOptionSpec::Timestamp { val, .. }) =
            seg.options.iter().find(|o| matches!(o, TcpOptionSpec::Timestamp { .. }))
        {
            self.last_ts_val = Some(*val);
            match (self.ts_offset, want_val, options.tcp_ts_tick_usecs) {
                (None, Some(w), _) => self.ts_offset = Some(val.wrapping_sub(w)),
                // packetdrill (verify_outbound_tcp_option): with --tcp_ts_tick_usecs, the TS val
                // may be off the script's by at most the tolerance, counted in ticks.
                (Some(off), Some(w), Some(tick)) => {
                    let off_by = u64::from((val.wrapping_sub(off).wrapping_sub(w) as i32).unsigned_abs());
                    if off_by.saturating_mul(tick) > tol {
                        return fail(
                            event.line,
                            &event.text,
                            got(format!("TS val {} instead of {w}", val.wrapping_sub(off))),
                        );
                    }
                }
                _ => {}
            }
        }
        // packetdrill: the next relative time counts from when this line is done.
        Ok(sent.now().total_micros().max(tu))
    }
}
