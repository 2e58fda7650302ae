//! The transcript notation of one TCP segment (DESIGN.md "The transcript notation"), in
//! packetdrill's syntax: `S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 1 ecr 2,nop,wscale 7>`.
//! The one formatter of segments for people: the harness's transcripts, its script runner and the
//! stack's own tests all print through [`Notation`].
//!
//! - Flags in packetdrill's (tcpdump 4.1.1's) order: `F S R P . U E W`, plus `A` for the AE/NS
//!   bit; `.` is ACK. A segment with no flags at all shows none (`5:5(0) win 0`).
//! - `start:end(len)` counts payload bytes only, relative to the sender's ISN; `ack` and SACK
//!   blocks are relative to the receiver's ISN; without an ISN the numbers are absolute.
//! - `win` is the raw 16-bit window field; `urg N` follows when URG is set or the pointer is not 0.
//! - Options in `<...>` in wire order when the raw option bytes are given, else in the order Linux
//!   lays them out ([`linux_layout`]). `TS val/ecr` are absolute. `md5 HEX`, `FO HEX` and
//!   `FOEXP HEX` as packetdrill; other kinds as `opt KIND HEX` (`opt 253` without data). Options
//!   that cannot be walked end the list with `bad option: REASON`.
//!
//! Must not depend on: anything but the wire types and `SeqNum`; no direction or time column
//! (those belong to a transcript, which knows the connection).

use super::tcp::{TcpFlags, TcpOption, TcpOptions, TcpRepr};
use crate::tcp::seq::SeqNum;
use core::fmt;

/// One segment in the notation, without direction or time: `Display` writes the line.
#[derive(Debug, Clone, Copy)]
pub struct Notation<'a> {
    /// The segment.
    pub seg: &'a TcpRepr<'a>,
    /// ISN of the segment's sender (`start:end` relative to it), `None` for absolute numbers.
    pub sender_isn: Option<SeqNum>,
    /// ISN of the segment's receiver (`ack` and SACK blocks relative to it), `None` for absolute.
    pub receiver_isn: Option<SeqNum>,
    /// The options area as it was on the wire (shown in wire order, NOPs and all); `None` shows
    /// the parsed options in Linux's layout.
    pub raw_options: Option<&'a [u8]>,
}

impl<'a> Notation<'a> {
    /// `seg` with numbers relative to the sender's and the receiver's ISN, options in Linux's
    /// layout.
    pub fn new(seg: &'a TcpRepr<'a>, sender_isn: Option<SeqNum>, receiver_isn: Option<SeqNum>) -> Self {
        Notation { seg, sender_isn, receiver_isn, raw_options: None }
    }

    /// The same segment with its options shown as `raw` lays them out (wire order).
    pub fn with_raw_options(self, raw: Option<&'a [u8]>) -> Self {
        Notation { raw_options: raw, ..self }
    }
}

fn rel(n: SeqNum, isn: Option<SeqNum>) -> u32 {
    match isn {
        Some(isn) => n.0.wrapping_sub(isn.0),
        None => n.0,
    }
}

impl fmt::Display for Notation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tcp = self.seg;
        let start = rel(tcp.seq, self.sender_isn);
        let len = tcp.payload.len() as u32;
        if tcp.flags != TcpFlags::NONE {
            write!(f, "{} ", Flags(tcp.flags))?;
        }
        write!(f, "{}:{}({})", start, start.wrapping_add(len), len)?;
        if tcp.flags.ack() {
            write!(f, " ack {}", rel(tcp.ack, self.receiver_isn))?;
        }
        write!(f, " win {}", tcp.window)?;
        if tcp.flags.urg() || tcp.urgent != 0 {
            write!(f, " urg {}", tcp.urgent)?;
        }
        let option = |option| OptionNotation { option, receiver_isn: self.receiver_isn };
        match self.raw_options {
            Some(raw) if !raw.is_empty() => {
                f.write_str(" <")?;
                for (i, o) in TcpOption::iter_raw(raw).enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    match o {
                        Ok(o) => write!(f, "{}", option(o))?,
                        Err(e) => {
                            write!(f, "bad option: {e}")?;
                            break;
                        }
                    }
                }
                f.write_str(">")
            }
            Some(_) => Ok(()),
            None => {
                let opts = linux_layout(&tcp.options);
                for (i, o) in opts.iter().enumerate() {
                    f.write_str(if i == 0 { " <" } else { "," })?;
                    write!(f, "{}", option(*o))?;
                }
                if !opts.is_empty() {
                    f.write_str(">")?;
                }
                Ok(())
            }
        }
    }
}

/// The flag letters of a segment in packetdrill's order (`S.`, `P.`, `F.`, `R`, ...); nothing
/// for no flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub TcpFlags);

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ORDER: [(TcpFlags, char); 9] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::ACK, '.'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::NS, 'A'),
        ];
        for (flag, c) in ORDER {
            if self.0.contains(flag) {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// One option in the notation (`mss 1460`, `TS val 1 ecr 2`, `sack 1:101`, `opt 253`, ...).
#[derive(Debug, Clone, Copy)]
pub struct OptionNotation<'a> {
    /// The option.
    pub option: TcpOption<'a>,
    /// ISN of the segment's receiver, for SACK blocks; `None` for absolute.
    pub receiver_isn: Option<SeqNum>,
}

impl fmt::Display for OptionNotation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.option {
            TcpOption::Eol => f.write_str("eol"),
            TcpOption::Nop => f.write_str("nop"),
            TcpOption::Mss(m) => write!(f, "mss {m}"),
            TcpOption::WindowScale(w) => write!(f, "wscale {w}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::Sack(blocks) => {
                f.write_str("sack")?;
                for (l, r) in blocks.as_slice() {
                    write!(f, " {}:{}", rel(*l, self.receiver_isn), rel(*r, self.receiver_isn))?;
                }
                Ok(())
            }
            TcpOption::Timestamp(ts) => write!(f, "TS val {} ecr {}", ts.tsval, ts.tsecr),
            TcpOption::FastOpen(fo) => {
                f.write_str(if fo.experimental { "FOEXP" } else { "FO" })?;
                if !fo.cookie.is_empty() {
                    write!(f, " {:?}", fo.cookie)?;
                }
                Ok(())
            }
            TcpOption::Unknown { kind, data } => {
                let body = match (kind, data) {
                    (19, _) => {
                        f.write_str("md5")?;
                        data
                    }
                    (34, _) => {
                        f.write_str("FO")?;
                        data
                    }
                    (254, [0xf9, 0x89, rest @ ..]) => {
                        f.write_str("FOEXP")?;
                        rest
                    }
                    _ => {
                        write!(f, "opt {kind}")?;
                        data
                    }
                };
                if !body.is_empty() {
                    f.write_str(" ")?;
                    for b in body {
                        write!(f, "{b:02x}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The options as Linux's `tcp_options_write` lays them out: mss, then sackOK+TS (or nop,nop
/// before either alone), nop+wscale, nop,nop+SACK blocks; then unknown kinds.
pub fn linux_layout<'a>(o: &TcpOptions<'a>) -> Vec<TcpOption<'a>> {
    let mut v = Vec::new();
    if let Some(mss) = o.mss {
        v.push(TcpOption::Mss(mss));
    }
    match (o.timestamp, o.sack_permitted) {
        (Some(ts), true) => v.extend([TcpOption::SackPermitted, TcpOption::Timestamp(ts)]),
        (Some(ts), false) => v.extend([TcpOption::Nop, TcpOption::Nop, TcpOption::Timestamp(ts)]),
        (None, true) => v.extend([TcpOption::Nop, TcpOption::Nop, TcpOption::SackPermitted]),
        (None, false) => {}
    }
    if let Some(ws) = o.window_scale {
        v.extend([TcpOption::Nop, TcpOption::WindowScale(ws)]);
    }
    if let Some(sack) = o.sack {
        v.extend([TcpOption::Nop, TcpOption::Nop, TcpOption::Sack(sack)]);
    }
    if let Some(fo) = o.fast_open {
        v.push(TcpOption::FastOpen(fo));
        let len = fo.cookie.as_slice().len() + if fo.experimental { 4 } else { 2 };
        v.extend((len..len.next_multiple_of(4)).map(|_| TcpOption::Nop));
    }
    v.extend(o.unknown.iter().map(|(kind, data)| TcpOption::Unknown { kind, data }));
    v
}
