//! Comparison of what the recorded endpoint sent with what utcp sent (DESIGN.md "Replay" step 5).
//!
//! Both sequences are put in relative numbers (each side's sequence numbers from its own ISN,
//! acknowledgments from the peer's), given a kind (SYN, SYN-ACK, RST, FIN at N, data at N, pure
//! ACK covering N) and aligned in order by kind; matched pairs are then compared field by field.
//! What counts as equal is a [`Profile`]; every difference is listed, significant or not.
//!
//! Must not depend on: the stack, files, the transcript.

use std::collections::{BTreeMap, HashMap, VecDeque};
use utcp::tcp::seq::SeqNum;
use utcp::time::{Duration, Instant};
use utcp::wire::{parse_datagram, ChecksumMode, TcpFlags, Transport};

/// What counts as equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every header field, option and payload byte; time within 1 ms.
    Exact,
    /// Kinds, flags, relative seq/ack, option kinds and payload must match; window, option values
    /// and timing within 500 ms are allowed but listed.
    Linux,
    /// Kinds and payload only.
    Loose,
    /// [`Profile::Linux`], but pure ACKs are matched by what they cover rather than one for one:
    /// a recorded pure ACK matches utcp's first pure ACK from there on that acknowledges at least
    /// as much, and a pure ACK of utcp's that acknowledges no more than the recording did by then
    /// is not extra. Two receivers that acknowledge every second segment and every tenth cover
    /// the same data (issue 12: Linux's receiver batches its ACKs as GRO delivers).
    Acks,
}

impl Profile {
    /// The profile of a name given on the command line.
    pub fn from_name(name: &str) -> Option<Profile> {
        match name {
            "exact" => Some(Profile::Exact),
            "linux" => Some(Profile::Linux),
            "loose" => Some(Profile::Loose),
            "acks" => Some(Profile::Acks),
            _ => None,
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Exact => "exact",
            Profile::Linux => "linux",
            Profile::Loose => "loose",
            Profile::Acks => "acks",
        }
    }

    /// Whether a difference in `field` (of size `time` for timing) breaks equality.
    fn significant(self, field: Field, time: Duration) -> bool {
        use Field::*;
        match (self, field) {
            (_, Payload | Length) => true,
            (Profile::Exact, Time) => time > Duration::from_millis(1),
            (Profile::Exact, _) => true,
            (Profile::Linux | Profile::Acks, Flags | Seq | Ack | OptionKinds) => true,
            (Profile::Linux | Profile::Acks, Time) => time > Duration::from_millis(500),
            (Profile::Linux | Profile::Acks, Window | OptionValues) => false,
            (Profile::Loose, _) => false,
        }
    }
}

/// The fields compared, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// Control bits.
    Flags,
    /// Relative sequence number.
    Seq,
    /// Relative acknowledgment number.
    Ack,
    /// Payload length.
    Length,
    /// Payload bytes.
    Payload,
    /// Window field.
    Window,
    /// Which options are present.
    OptionKinds,
    /// Option values (MSS, window scale, TS clock, SACK blocks).
    OptionValues,
    /// Time sent.
    Time,
}

impl Field {
    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Field::Flags => "flags",
            Field::Seq => "seq",
            Field::Ack => "ack",
            Field::Length => "length",
            Field::Payload => "payload",
            Field::Window => "window",
            Field::OptionKinds => "options",
            Field::OptionValues => "option values",
            Field::Time => "time",
        }
    }
}

/// A segment's kind: what it is for, with the number that places it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A SYN without ACK.
    Syn,
    /// A SYN-ACK.
    SynAck,
    /// A RST.
    Rst,
    /// A FIN at relative sequence number N (data before it included).
    Fin(u32),
    /// Data starting at relative sequence number N.
    Data(u32),
    /// A pure ACK acknowledging up to relative N.
    Ack(u32),
}

impl Kind {
    /// A short description, e.g. `data at 1449`.
    pub fn describe(self) -> String {
        match self {
            Kind::Syn => "SYN".into(),
            Kind::SynAck => "SYN-ACK".into(),
            Kind::Rst => "RST".into(),
            Kind::Fin(n) => format!("FIN at {n}"),
            Kind::Data(n) => format!("data at {n}"),
            Kind::Ack(n) => format!("ACK of {n}"),
        }
    }
}

/// One segment in relative numbers, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    /// When it was sent (capture or virtual time).
    pub time: Instant,
    /// Control bits.
    pub flags: TcpFlags,
    /// Sequence number relative to the sender's ISN.
    pub seq: u32,
    /// Acknowledgment relative to the receiver's ISN.
    pub ack: u32,
    /// Payload length (as declared, for sliced captures).
    pub len: usize,
    /// Where the payload bytes present lie in the datagram the segment was read from: a
    /// segment holds no copy of them ([`compare_payloads`] reads them from the datagrams).
    pub payload: std::ops::Range<usize>,
    /// Window field.
    pub window: u16,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window scale option.
    pub wscale: Option<u8>,
    /// SACK-permitted option.
    pub sack_ok: bool,
    /// TSval in the recorded endpoint's clock (utcp's shifted back), and TSecr.
    pub ts: Option<(u32, u32)>,
    /// SACK blocks, relative to the receiver's ISN.
    pub sack: Option<Vec<(u32, u32)>>,
}

impl Seg {
    /// Reads a datagram; `own_isn` and `peer_isn` make the numbers relative, `ts_shift` is
    /// subtracted from the TSval (utcp's clock to the recorded one), `declared_len` overrides the
    /// payload length for sliced captures.
    pub fn parse(
        time: Instant,
        datagram: &[u8],
        own_isn: Option<SeqNum>,
        peer_isn: Option<SeqNum>,
        ts_shift: u32,
        declared_len: Option<usize>,
    ) -> Option<Seg> {
        let d = parse_datagram(datagram, ChecksumMode::Ignore).ok()?;
        let Transport::Tcp(t) = d.transport else { return None };
        let rel = |n: SeqNum, isn: Option<SeqNum>| n.0.wrapping_sub(isn.map_or(0, |i| i.0));
        Some(Seg {
            time,
            flags: t.flags,
            seq: rel(t.seq, own_isn),
            ack: if t.flags.ack() { rel(t.ack, peer_isn) } else { 0 },
            len: declared_len.unwrap_or(t.payload.len()),
            payload: {
                // The payload is a slice of the datagram: its place is the difference of the
                // two addresses.
                let at = (t.payload.as_ptr() as usize).saturating_sub(datagram.as_ptr() as usize);
                at..at + t.payload.len()
            },
            window: t.window,
            mss: t.options.mss,
            wscale: t.options.window_scale,
            sack_ok: t.options.sack_permitted,
            ts: t.options.timestamp.map(|ts| (ts.tsval.wrapping_sub(ts_shift), ts.tsecr)),
            sack: t
                .options
                .sack
                .map(|s| s.as_slice().iter().map(|&(l, r)| (rel(l, peer_isn), rel(r, peer_isn))).collect()),
        })
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        let f = self.flags;
        // Data on a SYN starts one after it.
        let start = self.seq.wrapping_add(u32::from(f.syn()));
        if f.rst() {
            Kind::Rst
        } else if f.syn() && f.ack() {
            Kind::SynAck
        } else if f.syn() {
            Kind::Syn
        } else if f.fin() {
            Kind::Fin(start.wrapping_add(self.len as u32))
        } else if self.len > 0 {
            Kind::Data(start)
        } else {
            Kind::Ack(self.ack)
        }
    }

    /// The option kinds present, as a bit set.
    fn option_bits(&self) -> u8 {
        u8::from(self.mss.is_some())
            | u8::from(self.sack_ok) << 1
            | u8::from(self.ts.is_some()) << 2
            | u8::from(self.wscale.is_some()) << 3
            | u8::from(self.sack.is_some()) << 4
    }

    fn option_kinds(&self) -> String {
        let mut v = Vec::new();
        if self.mss.is_some() {
            v.push("mss");
        }
        if self.sack_ok {
            v.push("sackOK");
        }
        if self.ts.is_some() {
            v.push("TS");
        }
        if self.wscale.is_some() {
            v.push("wscale");
        }
        if self.sack.is_some() {
            v.push("sack");
        }
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    }
}

/// One difference of a matched pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The field.
    pub field: Field,
    /// Whether the profile counts it.
    pub significant: bool,
    /// `utcp X, recorded Y`.
    pub text: String,
}

/// Compares a recorded segment with utcp's of the same kind.
pub fn differences(recorded: &Seg, utcp: &Seg, profile: Profile) -> Vec<Difference> {
    let mut out = Vec::new();
    let dt = if utcp.time >= recorded.time {
        utcp.time.saturating_duration_since(recorded.time)
    } else {
        recorded.time.saturating_duration_since(utcp.time)
    };
    let mut add = |field: Field, text: String| {
        out.push(Difference { field, significant: profile.significant(field, dt), text });
    };
    let fl = crate::transcript::format_flags;
    if recorded.flags != utcp.flags {
        add(Field::Flags, format!("flags {} (recorded {})", fl(utcp.flags), fl(recorded.flags)));
    }
    if recorded.seq != utcp.seq {
        add(Field::Seq, format!("seq {} (recorded {})", utcp.seq, recorded.seq));
    }
    if (recorded.flags.ack() || utcp.flags.ack()) && recorded.ack != utcp.ack {
        add(Field::Ack, format!("ack {} (recorded {})", utcp.ack, recorded.ack));
    }
    // The payload bytes are compared apart, from the datagrams ([`compare_payloads`]).
    if recorded.len != utcp.len {
        add(Field::Length, format!("length {} (recorded {})", utcp.len, recorded.len));
    }
    if recorded.window != utcp.window {
        add(Field::Window, format!("win {} (recorded {})", utcp.window, recorded.window));
    }
    if recorded.option_bits() != utcp.option_bits() {
        let (rk, uk) = (recorded.option_kinds(), utcp.option_kinds());
        add(Field::OptionKinds, format!("options {uk} (recorded {rk})"));
    }
    let mut values = Vec::new();
    if let (Some(a), Some(b)) = (utcp.mss, recorded.mss) {
        if a != b {
            values.push(format!("mss {a} (recorded {b})"));
        }
    }
    if let (Some(a), Some(b)) = (utcp.wscale, recorded.wscale) {
        if a != b {
            values.push(format!("wscale {a} (recorded {b})"));
        }
    }
    if let (Some(a), Some(b)) = (utcp.ts, recorded.ts) {
        // The two TS clocks tick at different phases: one tick either way is the same time.
        let drift = a.0.wrapping_sub(b.0) as i32;
        if drift.abs() > 1 {
            values.push(format!("TS val {drift:+} ticks"));
        }
        if a.1 != b.1 {
            values.push(format!("TS ecr {} (recorded {})", a.1, b.1));
        }
    }
    if let (Some(a), Some(b)) = (&utcp.sack, &recorded.sack) {
        if a != b {
            let show =
                |v: &Vec<(u32, u32)>| v.iter().map(|(l, r)| format!("{l}:{r}")).collect::<Vec<_>>().join(" ");
            values.push(format!("sack {} (recorded {})", show(a), show(b)));
        }
    }
    if !values.is_empty() {
        add(Field::OptionValues, values.join(", "));
    }
    if dt > Duration::ZERO && (profile == Profile::Exact || dt > Duration::from_millis(1)) {
        let sign = if utcp.time >= recorded.time { "+" } else { "-" };
        add(Field::Time, format!("time {sign}{}", crate::transcript::format_time(dt)));
    }
    out
}

/// Adds a payload difference to every matched pair of the same length whose bytes differ.
/// `recorded_bytes(i)` and `utcp_bytes(i)` are the datagrams segment `i` of each side was read
/// from; a sliced recording holds fewer bytes, so what both hold is compared.
pub fn compare_payloads<'a>(
    alignment: &mut Alignment,
    recorded: &[Seg],
    recorded_bytes: impl Fn(usize) -> &'a [u8],
    utcp: &[Seg],
    utcp_bytes: impl Fn(usize) -> &'a [u8],
) {
    for (ri, outcome) in alignment.recorded.iter_mut().enumerate() {
        let Outcome::Matched(ui, diffs) = outcome else { continue };
        let (r, u) = (&recorded[ri], &utcp[*ui]);
        if r.len != u.len || r.len == 0 {
            continue;
        }
        let (rb, ub) = (recorded_bytes(ri).get(r.payload.clone()), utcp_bytes(*ui).get(u.payload.clone()));
        let (Some(rb), Some(ub)) = (rb, ub) else { continue };
        let n = rb.len().min(ub.len());
        if rb[..n] != ub[..n] {
            let i = rb.iter().zip(ub).position(|(a, b)| a != b).unwrap_or(0);
            // Payload differences count in every profile; reported in field order.
            let at = diffs.partition_point(|d| d.field < Field::Payload);
            let text = format!("payload differs from byte {i}");
            diffs.insert(at, Difference { field: Field::Payload, significant: true, text });
        }
    }
}

/// How one recorded packet fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// utcp sent the same kind: index into utcp's segments, and the differences.
    Matched(usize, Vec<Difference>),
    /// utcp sent nothing of that kind there.
    Missing,
}

/// The alignment of the two sequences.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alignment {
    /// Per recorded segment, in order.
    pub recorded: Vec<Outcome>,
    /// Per utcp segment: the recorded segment it matched, if any.
    pub utcp: Vec<Option<usize>>,
    /// Under [`Profile::Acks`]: utcp's pure ACKs matched to no recorded one but covered by the
    /// recording (not extra).
    pub covered: usize,
}

/// How far ahead in utcp's output a match may be looked for, in segments and in time.
const LOOKAHEAD: usize = 64;
const LOOKAHEAD_TIME: Duration = Duration::from_secs(3);

/// Aligns the recorded endpoint's segments with utcp's, in order, by kind.
pub fn align(recorded: &[Seg], utcp: &[Seg], profile: Profile) -> Alignment {
    let mut by_kind: HashMap<Kind, VecDeque<usize>> = HashMap::new();
    for (i, s) in utcp.iter().enumerate() {
        by_kind.entry(s.kind()).or_default().push_back(i);
    }
    let mut out =
        Alignment { recorded: Vec::with_capacity(recorded.len()), utcp: vec![None; utcp.len()], covered: 0 };
    let mut cursor = 0;
    // Profile::Acks: utcp's pure ACKs in order, and how far along them the recording has come.
    let pure_acks: Vec<usize> = (0..utcp.len()).filter(|&i| matches!(utcp[i].kind(), Kind::Ack(_))).collect();
    let mut ack_cursor = 0;
    for (ri, r) in recorded.iter().enumerate() {
        if let (Profile::Acks, Kind::Ack(n)) = (profile, r.kind()) {
            // The first pure ACK of utcp's from here on that covers as much, however many ACKs
            // either side sent in between; several recorded ACKs may meet the same one.
            // An unclaimed ACK of exactly as much goes first (duplicate ACKs pair up one for one).
            let near = |i: usize| utcp[i].time.saturating_duration_since(r.time) <= LOOKAHEAD_TIME;
            let exact = pure_acks[ack_cursor..]
                .iter()
                .position(|&i| utcp[i].ack == n && out.utcp[i].is_none() && near(i));
            let found = exact.or_else(|| {
                pure_acks[ack_cursor..]
                    .iter()
                    .position(|&i| utcp[i].ack.wrapping_sub(n) as i32 >= 0 && near(i))
            });
            match found {
                Some(k) => {
                    ack_cursor += k;
                    let i = pure_acks[ack_cursor];
                    if out.utcp[i].is_none() {
                        out.utcp[i] = Some(ri);
                    }
                    let mut diffs = differences(r, &utcp[i], profile);
                    for d in diffs.iter_mut().filter(|d| d.field == Field::Ack) {
                        d.significant = false;
                    }
                    out.recorded.push(Outcome::Matched(i, diffs));
                }
                None => out.recorded.push(Outcome::Missing),
            }
            continue;
        }
        let queue = by_kind.get_mut(&r.kind());
        let mut found = None;
        if let Some(q) = queue {
            while q.front().is_some_and(|&i| i < cursor) {
                q.pop_front();
            }
            if let Some(&i) = q.front() {
                let near = i - cursor <= LOOKAHEAD
                    || utcp[i].time.saturating_duration_since(r.time) <= LOOKAHEAD_TIME;
                if near {
                    q.pop_front();
                    found = Some(i);
                }
            }
        }
        match found {
            Some(i) => {
                out.utcp[i] = Some(ri);
                cursor = i + 1;
                out.recorded.push(Outcome::Matched(i, differences(r, &utcp[i], profile)));
            }
            None => out.recorded.push(Outcome::Missing),
        }
    }
    if profile == Profile::Acks {
        // A pure ACK of utcp's that acknowledges no more than the recording had by the time of
        // the next recorded ACK is placement, not an extra segment.
        let recorded_acks: Vec<(Instant, u32)> =
            recorded.iter().filter(|r| matches!(r.kind(), Kind::Ack(_))).map(|r| (r.time, r.ack)).collect();
        for &i in &pure_acks {
            if out.utcp[i].is_some() {
                continue;
            }
            let m = utcp[i].ack;
            let by = utcp[i].time + LOOKAHEAD_TIME;
            if recorded_acks.iter().any(|&(t, a)| t <= by && a.wrapping_sub(m) as i32 >= 0) {
                out.covered += 1;
            }
        }
    }
    out
}

/// The counts of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets the recorded endpoint sent.
    pub recorded: usize,
    /// Matched with nothing significant differing.
    pub matched: usize,
    /// Matched by kind, with a significant difference.
    pub differed: usize,
    /// Recorded but not sent by utcp.
    pub missing: usize,
    /// Sent by utcp, not in the recording.
    pub extra: usize,
    /// Significant differences by field name (plus `missing` and `extra`).
    pub significant: BTreeMap<String, usize>,
    /// Differences the profile allows, by field name.
    pub tolerated: BTreeMap<String, usize>,
}

impl Alignment {
    /// Counts what the alignment found.
    pub fn counts(&self) -> Counts {
        let mut c = Counts { recorded: self.recorded.len(), ..Counts::default() };
        for o in &self.recorded {
            match o {
                Outcome::Missing => c.missing += 1,
                Outcome::Matched(_, diffs) => {
                    if diffs.iter().any(|d| d.significant) {
                        c.differed += 1;
                    } else {
                        c.matched += 1;
                    }
                    for d in diffs {
                        let map = if d.significant { &mut c.significant } else { &mut c.tolerated };
                        *map.entry(d.field.name().to_string()).or_default() += 1;
                    }
                }
            }
        }
        c.extra = self.utcp.iter().filter(|m| m.is_none()).count() - self.covered;
        if self.covered > 0 {
            c.tolerated.insert("ack placement".into(), self.covered);
        }
        if c.missing > 0 {
            c.significant.insert("missing".into(), c.missing);
        }
        if c.extra > 0 {
            c.significant.insert("extra".into(), c.extra);
        }
        c
    }
}

/// The note for a utcp segment: `None` when it matched with no difference at all.
pub fn note(diffs: &[Difference]) -> Option<String> {
    let sig: Vec<&str> = diffs.iter().filter(|d| d.significant).map(|d| d.text.as_str()).collect();
    let tol: Vec<&str> = diffs.iter().filter(|d| !d.significant).map(|d| d.text.as_str()).collect();
    match (sig.is_empty(), tol.is_empty()) {
        (true, true) => None,
        (false, true) => Some(format!("differs: {}", sig.join(", "))),
        (true, false) => Some(format!("tolerated: {}", tol.join(", "))),
        (false, false) => Some(format!("differs: {}; tolerated: {}", sig.join(", "), tol.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(t: u64, flags: TcpFlags, seq: u32, ack: u32, len: usize, window: u16) -> Seg {
        Seg {
            time: Instant::from_millis(t),
            flags,
            seq,
            ack,
            len,
            payload: 0..len,
            window,
            mss: None,
            wscale: None,
            sack_ok: false,
            ts: None,
            sack: None,
        }
    }

    const A: TcpFlags = TcpFlags::ACK;
    const PA: TcpFlags = TcpFlags(TcpFlags::ACK.0 | TcpFlags::PSH.0);

    #[test]
    fn kinds_place_data_fin_and_acks_by_relative_number() {
        assert_eq!(seg(0, PA, 1, 1, 100, 0).kind(), Kind::Data(1));
        assert_eq!(seg(0, TcpFlags(TcpFlags::FIN.0 | A.0), 101, 1, 0, 0).kind(), Kind::Fin(101));
        assert_eq!(seg(0, A, 1, 77, 0, 0).kind(), Kind::Ack(77));
        assert_eq!(seg(0, TcpFlags(TcpFlags::RST.0 | A.0), 1, 77, 0, 0).kind(), Kind::Rst);
    }

    #[test]
    fn linux_profile_tolerates_window_but_not_ack() {
        let r = [seg(0, PA, 1, 89, 100, 502), seg(10, A, 101, 90, 0, 502)];
        let u = [seg(0, PA, 1, 89, 100, 512), seg(10, A, 101, 90, 0, 502)];
        let c = align(&r, &u, Profile::Linux).counts();
        assert_eq!((c.matched, c.differed, c.missing, c.extra), (2, 0, 0, 0));
        assert_eq!(c.tolerated.get("window"), Some(&1));
        let u = [seg(0, PA, 1, 1, 100, 502), seg(10, A, 101, 90, 0, 502)];
        let c = align(&r, &u, Profile::Linux).counts();
        assert_eq!((c.matched, c.differed), (1, 1));
        let c = align(&r, &u, Profile::Loose).counts();
        assert_eq!((c.matched, c.differed), (2, 0));
    }

    /// Issue 12: a receiver that acknowledges every second segment and one that acknowledged
    /// every fourth cover the same data; under `acks` neither side's ACKs are missing or extra,
    /// and what differs is listed as tolerated. ACKs that cover less than the recording are still
    /// missing.
    #[test]
    fn acks_profile_tolerates_ack_placement_where_the_same_data_is_covered() {
        let every_fourth = [seg(10, A, 1, 5841, 0, 9), seg(20, A, 1, 11681, 0, 9)];
        let every_second = [
            seg(10, A, 1, 2921, 0, 9),
            seg(10, A, 1, 5841, 0, 9),
            seg(20, A, 1, 8761, 0, 9),
            seg(20, A, 1, 11681, 0, 9),
        ];
        let c = align(&every_fourth, &every_second, Profile::Linux).counts();
        assert_eq!((c.matched, c.missing, c.extra), (2, 0, 2));
        let c = align(&every_fourth, &every_second, Profile::Acks).counts();
        assert_eq!((c.matched, c.differed, c.missing, c.extra), (2, 0, 0, 0));
        assert_eq!(c.tolerated.get("ack placement"), Some(&2));
        // The other way round: each recorded ACK is covered by one of utcp's.
        let c = align(&every_second, &every_fourth, Profile::Linux).counts();
        assert_eq!((c.matched, c.missing), (2, 2));
        let c = align(&every_second, &every_fourth, Profile::Acks).counts();
        assert_eq!((c.matched, c.differed, c.missing, c.extra), (4, 0, 0, 0));
        assert_eq!(c.tolerated.get("ack"), Some(&2));
        // utcp stops acknowledging at 5841: the recording's ACK of 11681 is missing.
        let c = align(&every_fourth, &every_second[..2], Profile::Acks).counts();
        assert_eq!((c.matched, c.missing, c.extra), (1, 1, 0));
    }

    /// The payload is compared from the datagrams: a byte that differs is a significant
    /// difference in every profile, named by its offset; a sliced recording's bytes are compared
    /// as far as they go.
    #[test]
    fn payload_bytes_are_compared_from_the_datagrams_as_far_as_both_hold_them() {
        // Each "datagram" here is a header of 4 bytes and the payload.
        let with = |len: usize| Seg { payload: 4..4 + len, ..seg(0, PA, 1, 1, 8, 9) };
        let recorded = [with(8), with(3), with(8)];
        let utcp = [with(8), with(8), with(8)];
        let r_bytes: [&[u8]; 3] = [b"hdr:abcdefgh", b"hdr:abc", b"hdr:abcdefgh"];
        let u_bytes: [&[u8]; 3] = [b"HDR:abcdefgh", b"HDR:abcdXXXX", b"HDR:abcdeXgh"];
        for profile in [Profile::Exact, Profile::Linux, Profile::Loose] {
            let mut a = align(&recorded, &utcp, profile);
            compare_payloads(&mut a, &recorded, |i| r_bytes[i], &utcp, |i| u_bytes[i]);
            let c = a.counts();
            assert_eq!((c.matched, c.differed), (2, 1), "{profile:?}");
            assert_eq!(c.significant.get("payload"), Some(&1), "{profile:?}");
            let Outcome::Matched(2, diffs) = &a.recorded[2] else { panic!("{:?}", a.recorded[2]) };
            assert_eq!(diffs[0].text, "payload differs from byte 5");
        }
    }

    #[test]
    fn alignment_counts_missing_and_extra_in_order() {
        // Recorded: data 1, ACK 50, data 101. utcp: data 1, data 101, a retransmission of data 1.
        let r = [seg(0, PA, 1, 1, 100, 9), seg(1, A, 101, 50, 0, 9), seg(2, PA, 101, 50, 100, 9)];
        let u = [seg(0, PA, 1, 50, 100, 9), seg(2, PA, 101, 50, 100, 9), seg(300, PA, 1, 50, 100, 9)];
        let a = align(&r, &u, Profile::Linux);
        let c = a.counts();
        assert_eq!((c.recorded, c.matched, c.differed, c.missing, c.extra), (3, 1, 1, 1, 1));
        assert_eq!(a.utcp, [Some(0), Some(2), None]);
    }
}
