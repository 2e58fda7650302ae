//! The transcript notation (DESIGN.md "The transcript notation"): segments for people, in
//! packetdrill's syntax, used by replay, scripts, `utcp inspect` and snapshots. One segment is
//! printed by the core's [`Notation`] (`utcp::wire::notation`); this file adds what belongs to a
//! connection: direction, time column, and which ISNs the numbers are relative to.
//!
//! ```text
//! // local 192.168.0.1:8080 remote 192.0.2.1:40000
//! 0.000000 < S 0:0(0) win 64240 <mss 1460,sackOK,TS val 395941947 ecr 0,nop,wscale 10>
//! 0.000000 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 1000 ecr 395941947,nop,wscale 7>
//! 0.000050 < . 1:1(0) ack 1 win 63
//! ```
//!
//! The conventions, each chosen to match packetdrill where packetdrill has one:
//! - The header comment names the stack's endpoint (`local`) and the peer (`remote`); `<` lines
//!   travel remote to local (into the stack), `>` lines local to remote. IPv6 as `[addr]:port`.
//! - Times are seconds with six decimals since the transcript's first segment.
//! - Flags in packetdrill's (tcpdump 4.1.1's) order: `F S R P . U E W`, plus `A` for the
//!   AE/NS bit; `.` is ACK. A segment with no flags at all shows none (`< 5:5(0) win 0`).
//! - `start:end(len)` counts payload bytes only, relative to the sender's ISN; `ack` and SACK
//!   blocks are relative to the receiver's ISN. A side's ISN is the sequence number of its latest
//!   SYN (a new SYN with another number re-bases); until a side has sent a SYN its numbers, and
//!   the numbers acknowledging them, are printed absolute.
//! - `win` is the raw 16-bit window field; `urg N` follows when URG is set or the pointer is not 0.
//! - Options in `<...>` in wire order when the raw option bytes are given, else in the order Linux
//!   lays them out. `TS val/ecr` are absolute. `md5 HEX`, `FO HEX` and `FOEXP HEX` as packetdrill;
//!   other kinds as `opt KIND HEX` (`opt 253` without data). Options that cannot be walked end
//!   the list with `bad option: REASON`.
//!
//! Must not depend on: replay, captures, the stack's state machine.

use std::fmt::Write as _;
use std::net::SocketAddr;
use utcp::tcp::seq::SeqNum;
use utcp::time::Instant;
use utcp::wire::notation::{Flags, Notation};
use utcp::wire::{IpRepr, TcpFlags, TcpRepr};

/// Which way a segment travels relative to the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Into the stack, from the remote peer: `<`.
    In,
    /// Out of the stack, to the remote peer: `>`.
    Out,
}

impl Direction {
    /// `<` or `>`.
    pub fn symbol(self) -> char {
        match self {
            Direction::In => '<',
            Direction::Out => '>',
        }
    }
}

/// The initial sequence numbers used to make a segment's numbers relative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Isns {
    /// ISN of the segment's sender (for `start:end`).
    pub sender: Option<SeqNum>,
    /// ISN of the segment's receiver (for `ack` and SACK blocks).
    pub receiver: Option<SeqNum>,
}

/// A time as `seconds.micros` (six decimals).
pub fn format_time(since_start: utcp::time::Duration) -> String {
    let us = since_start.total_micros();
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// An endpoint as `addr:port`, IPv6 in brackets.
pub fn format_endpoint(addr: SocketAddr) -> String {
    addr.to_string()
}

/// The flag letters of a segment in packetdrill's order (`S.`, `P.`, `F.`, `R`, ...).
pub fn format_flags(flags: TcpFlags) -> String {
    Flags(flags).to_string()
}

/// Appends one segment line without time or newline: `< S. 0:0(0) ack 1 win 65535 <...>`, the
/// segment in the core's [`Notation`] after the direction.
///
/// `raw_options` is the options area as it was on the wire (wire order, NOPs and all); without
/// it the options are shown in Linux's layout.
pub fn format_segment(
    out: &mut String,
    dir: Direction,
    tcp: &TcpRepr<'_>,
    raw_options: Option<&[u8]>,
    isns: Isns,
) {
    let seg = Notation::new(tcp, isns.sender, isns.receiver).with_raw_options(raw_options);
    let _ = write!(out, "{} {seg}", dir.symbol());
}

/// A transcript being written: tracks the start time and both sides' ISNs, and appends lines.
#[derive(Debug, Clone)]
pub struct Transcript {
    local: SocketAddr,
    remote: SocketAddr,
    start: Option<Instant>,
    local_isn: Option<SeqNum>,
    remote_isn: Option<SeqNum>,
    text: String,
}

impl Transcript {
    /// A transcript of the connection between the stack at `local` and the peer at `remote`.
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Transcript {
        let text = format!("// local {} remote {}\n", format_endpoint(local), format_endpoint(remote));
        Transcript { local, remote, start: None, local_isn: None, remote_isn: None, text }
    }

    /// The stack's endpoint.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The peer's endpoint.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Which way a segment with these addresses travels, or `None` when it is not this connection's.
    pub fn direction_of(&self, ip: &IpRepr, tcp: &TcpRepr<'_>) -> Option<Direction> {
        let src = SocketAddr::new(ip.src, tcp.src_port);
        let dst = SocketAddr::new(ip.dst, tcp.dst_port);
        if (src, dst) == (self.remote, self.local) {
            Some(Direction::In)
        } else if (src, dst) == (self.local, self.remote) {
            Some(Direction::Out)
        } else {
            None
        }
    }

    /// Appends a segment whose direction follows from its addresses; `false` (and nothing
    /// appended) when it belongs to another connection.
    pub fn push_datagram(&mut self, time: Instant, ip: &IpRepr, tcp: &TcpRepr<'_>) -> bool {
        match self.direction_of(ip, tcp) {
            Some(dir) => {
                self.push(time, dir, tcp);
                true
            }
            None => false,
        }
    }

    /// Sets a side's ISN before its SYN is pushed (a capture may hold the SYN-ACK before the SYN);
    /// `Direction::In` is the remote side, `Direction::Out` the stack.
    pub fn set_isn(&mut self, side: Direction, isn: SeqNum) {
        match side {
            Direction::In => self.remote_isn = Some(isn),
            Direction::Out => self.local_isn = Some(isn),
        }
    }

    /// The ISNs a segment travelling `dir` would be printed against, before it is pushed.
    pub fn isns(&self, dir: Direction) -> Isns {
        match dir {
            Direction::In => Isns { sender: self.remote_isn, receiver: self.local_isn },
            Direction::Out => Isns { sender: self.local_isn, receiver: self.remote_isn },
        }
    }

    /// Notes the ISN a SYN carries, so that it and later segments are printed relative to it.
    fn learn(&mut self, dir: Direction, tcp: &TcpRepr<'_>) {
        if tcp.flags.syn() {
            match dir {
                Direction::In => self.remote_isn = Some(tcp.seq),
                Direction::Out => self.local_isn = Some(tcp.seq),
            }
        }
    }

    /// The time column for `time`: seconds since the first segment (which is 0.000000).
    fn time_column(&mut self, time: Instant) -> String {
        let start = *self.start.get_or_insert(time);
        format_time(time.saturating_duration_since(start))
    }

    /// Formats one segment line (with its time, without newline) and records what it teaches.
    pub fn line(
        &mut self,
        time: Instant,
        dir: Direction,
        tcp: &TcpRepr<'_>,
        raw_options: Option<&[u8]>,
    ) -> String {
        self.learn(dir, tcp);
        let mut line = self.time_column(time);
        line.push(' ');
        format_segment(&mut line, dir, tcp, raw_options, self.isns(dir));
        line
    }

    /// Appends a segment, options shown in Linux's layout.
    pub fn push(&mut self, time: Instant, dir: Direction, tcp: &TcpRepr<'_>) {
        self.push_segment(time, dir, tcp, None, None);
    }

    /// Appends a segment whose options area was `raw_options` on the wire (shown in wire order).
    pub fn push_raw(&mut self, time: Instant, dir: Direction, tcp: &TcpRepr<'_>, raw_options: &[u8]) {
        self.push_segment(time, dir, tcp, Some(raw_options), None);
    }

    /// Appends a segment line with a trailing comment (`... // why`), e.g. a replay difference.
    pub fn push_with_note(&mut self, time: Instant, dir: Direction, tcp: &TcpRepr<'_>, note: &str) {
        self.push_segment(time, dir, tcp, None, Some(note));
    }

    /// Appends a segment: options in wire order when `raw_options` is given, and an optional
    /// trailing comment.
    pub fn push_segment(
        &mut self,
        time: Instant,
        dir: Direction,
        tcp: &TcpRepr<'_>,
        raw_options: Option<&[u8]>,
        note: Option<&str>,
    ) {
        let line = self.line(time, dir, tcp, raw_options);
        self.text.push_str(&line);
        if let Some(note) = note {
            self.text.push_str("  // ");
            self.text.push_str(note);
        }
        self.text.push('\n');
    }

    /// Appends a comment line `// text`.
    pub fn comment(&mut self, text: &str) {
        let _ = writeln!(self.text, "// {text}");
    }

    /// The transcript so far, header included, each line ending in a newline.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The finished transcript.
    pub fn into_string(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utcp::wire::notation::OptionNotation;
    use utcp::wire::{SackBlocks, TcpOption, TcpOptions, Timestamp};

    const SEG: TcpRepr<'static> = TcpRepr {
        src_port: 40000,
        dst_port: 8080,
        seq: SeqNum(1000),
        ack: SeqNum(0),
        flags: TcpFlags::NONE,
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: None,
            window_scale: None,
            sack_permitted: false,
            timestamp: None,
            sack: None,
            fast_open: None,
            unknown: utcp::wire::UnknownOptions::EMPTY,
        },
        payload: &[],
    };

    fn t() -> Transcript {
        Transcript::new("192.168.0.1:8080".parse().unwrap(), "192.0.2.1:40000".parse().unwrap())
    }

    #[test]
    fn handshake_and_data_read_as_in_design_md() {
        let mut tr = t();
        let syn = TcpRepr {
            flags: TcpFlags::SYN,
            options: TcpOptions {
                mss: Some(1460),
                sack_permitted: true,
                timestamp: Some(Timestamp { tsval: 395941947, tsecr: 0 }),
                window_scale: Some(10),
                ..SEG.options
            },
            ..SEG
        };
        tr.push(Instant::from_micros(5_000_000), Direction::In, &syn);
        let synack = TcpRepr {
            src_port: 8080,
            dst_port: 40000,
            seq: SeqNum(u32::MAX - 10),
            ack: SeqNum(1001),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 65535,
            options: TcpOptions {
                timestamp: Some(Timestamp { tsval: 1000, tsecr: 395941947 }),
                window_scale: Some(7),
                ..syn.options
            },
            ..SEG
        };
        tr.push(Instant::from_micros(5_000_000), Direction::Out, &synack);
        let ack =
            TcpRepr { seq: SeqNum(1001), ack: SeqNum(u32::MAX - 9), flags: TcpFlags::ACK, window: 63, ..SEG };
        tr.push(Instant::from_micros(5_000_050), Direction::In, &ack);
        let data = TcpRepr { flags: TcpFlags::PSH | TcpFlags::ACK, payload: &[b'x'; 88], ..ack };
        tr.push(Instant::from_micros(5_000_226), Direction::In, &data);
        assert_eq!(
            tr.as_str(),
            "// local 192.168.0.1:8080 remote 192.0.2.1:40000\n\
             0.000000 < S 0:0(0) win 64240 <mss 1460,sackOK,TS val 395941947 ecr 0,nop,wscale 10>\n\
             0.000000 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 1000 ecr 395941947,nop,wscale 7>\n\
             0.000050 < . 1:1(0) ack 1 win 63\n\
             0.000226 < P. 1:89(88) ack 1 win 63\n"
        );
    }

    #[test]
    fn numbers_are_absolute_until_the_side_sent_a_syn() {
        let mut tr = t();
        // A RST answering an ACK to a listener: no ISN known on either side.
        let ack = TcpRepr { seq: SeqNum(7), ack: SeqNum(4242), flags: TcpFlags::ACK, window: 10, ..SEG };
        tr.push(Instant::ZERO, Direction::In, &ack);
        let rst = TcpRepr { seq: SeqNum(4242), flags: TcpFlags::RST, window: 0, ..SEG };
        tr.push(Instant::ZERO, Direction::Out, &rst);
        assert!(tr
            .as_str()
            .ends_with("0.000000 < . 7:7(0) ack 4242 win 10\n0.000000 > R 4242:4242(0) win 0\n"));
    }

    #[test]
    fn isn_set_in_advance_makes_an_early_syn_ack_relative() {
        let mut tr = t();
        tr.set_isn(Direction::In, SeqNum(1000));
        let synack =
            TcpRepr { flags: TcpFlags::SYN | TcpFlags::ACK, seq: SeqNum(5), ack: SeqNum(1001), ..SEG };
        tr.push(Instant::ZERO, Direction::Out, &synack);
        assert!(tr.as_str().ends_with("0.000000 > S. 0:0(0) ack 1 win 64240\n"), "{}", tr.as_str());
    }

    #[test]
    fn a_new_syn_rebases_that_side() {
        let mut tr = t();
        tr.push(Instant::ZERO, Direction::In, &TcpRepr { flags: TcpFlags::SYN, ..SEG });
        tr.push(Instant::ZERO, Direction::In, &TcpRepr { flags: TcpFlags::SYN, seq: SeqNum(9000), ..SEG });
        let fin = TcpRepr { flags: TcpFlags::FIN | TcpFlags::ACK, seq: SeqNum(9101), ..SEG };
        tr.push(Instant::from_secs(2), Direction::In, &fin);
        assert!(tr
            .as_str()
            .ends_with("0.000000 < S 0:0(0) win 64240\n2.000000 < F. 101:101(0) ack 0 win 64240\n"));
    }

    #[test]
    fn sack_blocks_are_relative_to_the_receiver_and_ts_absolute() {
        let blocks =
            SackBlocks::from_slice(&[(SeqNum(101), SeqNum(201)), (SeqNum(301), SeqNum(401))]).unwrap();
        let seg = TcpRepr {
            flags: TcpFlags::ACK,
            ack: SeqNum(51),
            options: TcpOptions {
                timestamp: Some(Timestamp { tsval: 7, tsecr: 9 }),
                sack: Some(blocks),
                ..SEG.options
            },
            ..SEG
        };
        let mut out = String::new();
        format_segment(
            &mut out,
            Direction::Out,
            &seg,
            None,
            Isns { sender: Some(SeqNum(999)), receiver: Some(SeqNum(50)) },
        );
        assert_eq!(out, "> . 1:1(0) ack 1 win 64240 <nop,nop,TS val 7 ecr 9,nop,nop,sack 51:151 251:351>");
    }

    #[test]
    fn flags_in_packetdrill_order_with_ecn_and_urgent() {
        assert_eq!(format_flags(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE | TcpFlags::CWR), "S.EW");
        assert_eq!(format_flags(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK), "FP.");
        assert_eq!(format_flags(TcpFlags::RST | TcpFlags::ACK), "R.");
        assert_eq!(format_flags(TcpFlags::NS | TcpFlags::URG), "UA");
        assert_eq!(format_flags(TcpFlags::NONE), "");
        let seg =
            TcpRepr { flags: TcpFlags::URG | TcpFlags::ACK | TcpFlags::PSH, urgent: 1, payload: b"!", ..SEG };
        let mut out = String::new();
        format_segment(&mut out, Direction::In, &seg, None, Isns::default());
        assert_eq!(out, "< P.U 1000:1001(1) ack 0 win 64240 urg 1");
    }

    #[test]
    fn unknown_options_show_kind_and_hex() {
        let mut v = String::new();
        for (kind, data) in
            [(34u8, &[0xab, 0xcd][..]), (253, &[]), (19, &[1, 2]), (254, &[0xf9, 0x89, 0xee, 0xff])]
        {
            if !v.is_empty() {
                v.push(',');
            }
            let _ = write!(
                v,
                "{}",
                OptionNotation { option: TcpOption::Unknown { kind, data }, receiver_isn: None }
            );
        }
        assert_eq!(v, "FO abcd,opt 253,md5 0102,FOEXP eeff");
    }

    #[test]
    fn raw_options_are_shown_in_wire_order_with_nops_and_eol() {
        let raw = [2, 4, 0x05, 0xb4, 1, 3, 3, 4, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 4, 2, 0, 0];
        let seg = TcpRepr { flags: TcpFlags::SYN, ..SEG };
        let mut out = String::new();
        format_segment(&mut out, Direction::In, &seg, Some(&raw), Isns::default());
        assert_eq!(
            out,
            "< S 1000:1000(0) win 64240 <mss 1460,nop,wscale 4,nop,nop,TS val 1 ecr 2,sackOK,eol>"
        );
    }

    #[test]
    fn an_option_with_an_impossible_length_ends_the_list_with_the_reason() {
        let raw = [1, 2, 9, 0xb4];
        let mut out = String::new();
        format_segment(&mut out, Direction::In, &SEG, Some(&raw), Isns::default());
        assert!(out.starts_with("< 1000:1000(0) win 64240 <nop,bad option: "), "{out}");
        assert!(out.ends_with('>'), "{out}");
    }

    #[test]
    fn direction_follows_from_the_addresses() {
        let mut tr = t();
        let ip = |src: &str, dst: &str| IpRepr {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol: 6,
            hop_limit: 64,
            ecn: 0,
            payload_len: 20,
        };
        let into = ip("192.0.2.1", "192.168.0.1");
        assert!(tr.push_datagram(Instant::ZERO, &into, &SEG));
        let back = TcpRepr { src_port: 8080, dst_port: 40000, ..SEG };
        assert!(tr.push_datagram(Instant::ZERO, &ip("192.168.0.1", "192.0.2.1"), &back));
        assert!(!tr.push_datagram(Instant::ZERO, &ip("192.0.2.9", "192.168.0.1"), &SEG));
        let lines: Vec<&str> = tr.as_str().lines().skip(1).collect();
        assert_eq!(lines, ["0.000000 < 1000:1000(0) win 64240", "0.000000 > 1000:1000(0) win 64240"]);
    }
}
