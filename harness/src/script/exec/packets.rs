//! The packet lines of a script: `<` lines injected into the stack, `>` lines matched against
//! what it sent, and the notation both are shown in.

use super::*;

impl Exec<'_> {
    /// The stack's ISN towards `peer_port`, or 0 (absolute numbers) before one is known.
    pub(super) fn stack_base(&self, peer_port: u16) -> u32 {
        self.stack_isns.get(&peer_port).copied().unwrap_or(0)
    }

    /// What the peer's sequence numbers are relative to towards `peer_port`: in a SYN the
    /// script's number is the ISN itself (on top of [`REMOTE_ISN`]); after it, numbers count
    /// from the ISN the peer's last SYN wrote (packetdrill's `remote_seq_script_to_live_offset`).
    pub(super) fn remote_base(&self, peer_port: u16, syn: bool) -> u32 {
        let isn = if syn { 0 } else { self.remote_isns.get(&peer_port).copied().unwrap_or(0) };
        REMOTE_ISN.wrapping_add(isn)
    }

    /// Whether a connection with the peer at `peer_port` is synchronized (past the handshake
    /// and not closed), as far as the script's descriptors show.
    fn peer_connection_open(&mut self, peer_port: u16) -> bool {
        let handles: Vec<SocketHandle> = self
            .fds
            .values()
            .filter_map(|f| match f.kind {
                FdKind::Conn(h) => Some(h),
                _ => None,
            })
            .collect();
        handles.into_iter().any(|h| {
            self.stack().info(h).is_some_and(|i| {
                i.remote.port() == peer_port
                    && !matches!(
                        i.state,
                        State::Closed | State::Listen | State::SynSent | State::SynReceived | State::TimeWait
                    )
            })
        })
    }

    /// The peer's address for a packet line: the current one, or another port when it says so.
    pub(super) fn peer_for(&self, p: &PacketSpec) -> SocketAddrV4 {
        SocketAddrV4::new(*self.remote.ip(), p.peer_port.unwrap_or(self.remote.port()))
    }

    pub(super) fn inbound(&mut self, event: &Event, p: &PacketSpec) -> Result<(), Failure> {
        let peer = self.peer_for(p);
        let base = self.stack_base(peer.port());
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
        // packetdrill records the peer's ISN from the SYN that opens a connection (a SYN to a
        // listener, the SYN-ACK to a connect), not from a SYN into an open connection.
        if p.flags & flag::SYN != 0 && (p.flags & flag::ACK != 0 || !self.peer_connection_open(peer.port())) {
            self.remote_isns.insert(peer.port(), p.seq);
        }
        let seg = Segment {
            src: peer,
            dst: self.local,
            flags: p.flags,
            seq: self.remote_base(peer.port(), p.flags & flag::SYN != 0).wrapping_add(p.seq),
            ack: p.ack.map_or(0, |a| a.wrapping_add(base)),
            win: p.win.unwrap_or(65535),
            urg: p.urg.unwrap_or(0),
            options,
            payload_len: p.len,
        };
        // packetdrill's --mss: an inbound packet longer than the MSS is handed over as a GSO
        // super-packet and reaches the stack as MSS-sized segments (PSH and FIN on the last).
        let mss = self.script.options.mss.map_or(u32::MAX, |m| u32::from(m.max(1)));
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
        for piece in pieces {
            let d = match piece.to_datagram() {
                Ok(d) => d,
                Err(e) => return fail(event.line, &event.text, e),
            };
            self.transcript.push(format!("{} < {}", secs(self.now), self.show_inbound(&d)));
            let host = host_of(&mut self.host, &self.config, self.now);
            host.receive(self.now, &d, &mut Closes(&mut self.closed));
        }
        Ok(())
    }

    /// An ICMPv4 error from the scripted peer's address, quoting the IP header and first 8 bytes
    /// of a segment the stack sent to it (RFC 792): ports, and the sequence number relative to
    /// the stack's ISN as in `>` lines.
    pub(super) fn inbound_icmp(&mut self, event: &Event, i: &IcmpSpec) -> Result<(), Failure> {
        let (seq, len) = i.quoted.unwrap_or((0, 0));
        let quoted = Segment {
            src: self.local,
            dst: self.remote,
            flags: flag::ACK,
            seq: self.stack_base(self.remote.port()).wrapping_add(seq),
            ack: 0,
            win: 0,
            urg: 0,
            options: Vec::new(),
            payload_len: len,
        };
        let original = match quoted.to_datagram() {
            Ok(d) => d,
            Err(e) => return fail(event.line, &event.text, e),
        };
        let mut icmp = vec![i.icmp_type, i.code, 0, 0, 0, 0, 0, 0];
        if let Some(mtu) = i.mtu {
            icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
        }
        icmp.extend_from_slice(&original[..28]);
        let ck = super::super::packet::internet_checksum(&icmp);
        icmp[2..4].copy_from_slice(&ck.to_be_bytes());
        let d = super::super::packet::ipv4_datagram(*self.remote.ip(), *self.local.ip(), 1, &icmp);
        self.transcript.push(format!(
            "{} < {}",
            secs(self.now),
            event.text.trim_start_matches(|c: char| c != '<')
        ));
        let host = host_of(&mut self.host, &self.config, self.now);
        host.receive(self.now, &d, &mut Closes(&mut self.closed));
        Ok(())
    }

    /// Formats an outbound datagram in the core's notation, numbers relative as in the script
    /// (the stack's ISN re-based at its SYNs, the remote's ISN the runner's).
    pub(super) fn show_outbound(&self, d: &[u8]) -> String {
        self.show(d, |tcp| {
            let sender = if tcp.flags.syn() { Some(tcp.seq) } else { self.stack_isn(tcp.dst_port) };
            (sender, Some(SeqNum(self.remote_base(tcp.dst_port, false))), tcp.dst_port)
        })
    }

    /// Formats an inbound datagram as [`Exec::show_outbound`] does, from the remote's side.
    pub(super) fn show_inbound(&self, d: &[u8]) -> String {
        self.show(d, |tcp| {
            (Some(SeqNum(self.remote_base(tcp.src_port, false))), self.stack_isn(tcp.src_port), tcp.src_port)
        })
    }

    /// The stack's ISN towards `peer_port`, once known.
    pub(super) fn stack_isn(&self, peer_port: u16) -> Option<SeqNum> {
        self.stack_isns.get(&peer_port).copied().map(SeqNum)
    }

    /// A datagram in the notation (options in wire order), `port N` after it when it is not the
    /// script's peer's; `isns` gives the sender's and receiver's ISN and the peer's port.
    pub(super) fn show(
        &self,
        d: &[u8],
        isns: impl Fn(&TcpRepr<'_>) -> (Option<SeqNum>, Option<SeqNum>, u16),
    ) -> String {
        match parse_datagram(d, ChecksumMode::Verify) {
            Ok(dg) => match dg.transport {
                Transport::Tcp(tcp) => {
                    let (sender, receiver, peer_port) = isns(&tcp);
                    let ihl = usize::from(d[0] & 0xf) * 4;
                    let raw = d
                        .get(ihl + 12)
                        .map(|b| usize::from(b >> 4) * 4)
                        .and_then(|doff| d.get(ihl + 20..ihl + doff));
                    let mut out = Notation::new(&tcp, sender, receiver).with_raw_options(raw).to_string();
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
    pub(super) fn relative(&self, s: &Segment) -> (u8, u32, u32, u32, u16, u16, Vec<TcpOptionSpec>) {
        let base = self.stack_base(s.dst.port());
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

    pub(super) fn outbound(&mut self, event: &Event, p: &PacketSpec) -> Result<(), Failure> {
        let tol = self.script.options.tolerance_usecs;
        let (lo, hi) = match event.time {
            TimeSpec::Absolute(t) => (t, t),
            TimeSpec::Relative(d) => (self.last + d, self.last + d),
            TimeSpec::Any => (self.now.total_micros(), self.now.total_micros() + ANY_TIME_LIMIT),
            TimeSpec::Range { lo, hi, relative } => {
                let b = if relative { self.last } else { 0 };
                (lo + b, hi + b)
            }
        };
        let (early, late) =
            if event.time == TimeSpec::Any { (0, hi) } else { (lo.saturating_sub(tol), hi + tol) };
        // packetdrill: what the stack sent is queued; this line takes the oldest packet, whenever
        // it was sent, and checks its time against the line's window.
        self.advance(Instant::from_micros(late), true)?;
        // packetdrill (sniff_outbound_live_packet): only the socket under test's packets are
        // matched; what an older connection of the stack sends from another port (its FIN
        // after close, say) is let go.
        while let Some((t, d)) = self.out.sent.front() {
            let older = Segment::parse(d).is_ok_and(|s| {
                s.src.port() != self.local.port() && s.flags & flag::SYN == 0 && s.src.ip() == self.local.ip()
            });
            if !older {
                break;
            }
            let shown = self.show_outbound(d);
            self.transcript.push(format!("{} > {shown} (another socket's, let go)", secs(*t)));
            self.out.sent.pop_front();
            if self.out.sent.is_empty() {
                self.advance(Instant::from_micros(late), true)?;
            }
        }
        let Some((first_t, d)) = self.out.sent.pop_front() else {
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
        if seg.flags & flag::SYN != 0 {
            // The script's SYN sequence number, whatever it is, names the stack's ISN.
            let script_isn = if p.flags & flag::SYN != 0 { p.seq } else { 0 };
            self.stack_isns.insert(seg.dst.port(), seg.seq.wrapping_sub(script_isn));
            if seg.flags & flag::ACK == 0 {
                self.local = seg.src;
                self.remote = seg.dst;
            }
        }
        let mut shown = self.show_outbound(&d);
        self.transcript.push(format!("{} > {shown}", secs(first_t)));
        let mut t = first_t;
        // packetdrill (run_packet.c, sniff_outbound_live_packet): unless --strict_segments, a
        // line longer than the segment takes the following segments of the same connection until
        // their payload adds up (or passes the line's, which then fails); the whole has the first
        // segment's sequence number and CWR and the last one's other headers and time.
        if !self.script.options.strict_segments {
            let mut total = seg.payload_len;
            let mut merged = false;
            while seg.payload_len > 0 && total < p.len {
                self.advance(Instant::from_micros(late), true)?;
                let Some((nt, nd)) = self.out.sent.pop_front() else { break };
                let Ok(next) = Segment::parse(&nd) else {
                    self.out.sent.push_front((nt, nd));
                    break;
                };
                let contiguous = next.src == seg.src
                    && next.dst == seg.dst
                    && next.seq == seg.seq.wrapping_add(total)
                    && next.flags & (flag::SYN | flag::RST) == 0;
                if !contiguous || next.payload_len == 0 {
                    self.out.sent.push_front((nt, nd));
                    break;
                }
                self.transcript.push(format!("{} > {}", secs(nt), self.show_outbound(&nd)));
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
            match (self.ts_offset, want_val, self.script.options.tcp_ts_tick_usecs) {
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
        self.last = self.now.total_micros().max(tu);
        Ok(())
    }
}
