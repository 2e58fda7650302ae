//! Proptest strategies: TCP/IP segments (valid, and invalid in one chosen field), inputs of the
//! stack fuzz targets aimed at each RFC 9293 state, and socket-call sequences for the model test.
//!
//! Impairment settings ([`link_config`]) for the seeded link of `link.rs`.
//! Must not depend on: clocks, files, the stack's internals (only its public API).

use crate::fuzzing::{SegmentSpec, Setup, StackInput, StackTarget, Step};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use utcp::tcp::SeqNum;
use utcp::wire::{
    datagram_len, emit_datagram, IpRepr, SackBlocks, TcpFlags, TcpOptions, TcpRepr, Timestamp, Transport,
    IPPROTO_TCP,
};

/// A TCP segment in an IP datagram, owning its payload (a `TcpRepr` borrows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Source address (the family decides IPv4 or IPv6).
    pub src: IpAddr,
    /// Destination address, same family.
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub hop_limit: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags (all nine bits).
    pub flags: u16,
    /// Window field.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options (known kinds only).
    pub options: TcpOptions<'static>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Segment {
    /// The IP header's meaning.
    pub fn ip(&self) -> IpRepr {
        IpRepr {
            src: self.src,
            dst: self.dst,
            protocol: IPPROTO_TCP,
            hop_limit: self.hop_limit,
            ecn: 0,
            payload_len: 0,
        }
    }

    /// The TCP header's meaning.
    pub fn tcp(&self) -> TcpRepr<'_> {
        TcpRepr {
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: SeqNum(self.seq),
            ack: SeqNum(self.ack),
            flags: TcpFlags(self.flags),
            window: self.window,
            urgent: self.urgent,
            options: self.options,
            payload: &self.payload,
        }
    }

    /// The datagram's bytes, lengths and checksums correct.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ip = self.ip();
        let t = Transport::Tcp(self.tcp());
        let mut buf = vec![0; datagram_len(&ip, &t)];
        emit_datagram(&ip, &t, &mut buf).expect("a generated segment emits");
        buf
    }
}

/// A field made invalid in an otherwise valid datagram; each must be refused by the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The IP version nibble is neither 4 nor 6.
    IpVersion(u8),
    /// IPv4 header length below 5 words (IPv4 only; on IPv6 the version is damaged instead).
    Ipv4HeaderLen(u8),
    /// The IP length field claims more bytes than there are.
    IpLengthTooLong(u16),
    /// The IPv4 header checksum is wrong (IPv4 only).
    Ipv4Checksum(u16),
    /// The TCP data offset is below 5 words.
    TcpDataOffsetTooSmall(u8),
    /// The TCP data offset reaches past the segment.
    TcpDataOffsetTooLarge,
    /// The TCP checksum is wrong.
    TcpChecksum(u16),
    /// An option with length 0 or 1 in the option area.
    OptionLength(u8),
    /// The datagram cut short inside the TCP header.
    Truncated(usize),
}

impl Damage {
    /// Applies the damage to `bytes` (a valid datagram from [`Segment::to_bytes`]).
    pub fn apply(self, seg: &Segment, mut bytes: Vec<u8>) -> Vec<u8> {
        let v4 = seg.src.is_ipv4();
        let ihl = if v4 { 20 } else { 40 };
        match self {
            Damage::IpVersion(v) => bytes[0] = (bytes[0] & 0x0f) | (v << 4),
            Damage::Ipv4HeaderLen(h) if v4 => bytes[0] = (bytes[0] & 0xf0) | (h & 0x0f),
            Damage::Ipv4HeaderLen(_) => bytes[0] = (bytes[0] & 0x0f) | (7 << 4),
            Damage::IpLengthTooLong(extra) => {
                let (at, base) = if v4 { (2, bytes.len()) } else { (4, bytes.len() - 40) };
                let claimed = (base + usize::from(extra)).min(65535) as u16;
                bytes[at..at + 2].copy_from_slice(&claimed.to_be_bytes());
            }
            Damage::Ipv4Checksum(x) if v4 => {
                let x = if x == 0 { 1 } else { x };
                let c = u16::from_be_bytes([bytes[10], bytes[11]]) ^ x;
                bytes[10..12].copy_from_slice(&c.to_be_bytes());
            }
            Damage::Ipv4Checksum(x) | Damage::TcpChecksum(x) => {
                let x = if x == 0 { 1 } else { x };
                let c = u16::from_be_bytes([bytes[ihl + 16], bytes[ihl + 17]]) ^ x;
                bytes[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
            }
            Damage::TcpDataOffsetTooSmall(d) => bytes[ihl + 12] = (bytes[ihl + 12] & 0x0f) | ((d % 5) << 4),
            Damage::TcpDataOffsetTooLarge => {
                let tcp_len = bytes.len() - ihl;
                let words = (tcp_len / 4 + 1).min(15) as u8;
                if usize::from(words) * 4 <= tcp_len {
                    // The segment is too long for any offset to reach past it: cut it instead.
                    bytes.truncate(ihl + 19);
                } else {
                    bytes[ihl + 12] = (bytes[ihl + 12] & 0x0f) | (words << 4);
                }
            }
            Damage::OptionLength(l) => {
                // Make room for a 4-byte option area holding kind 30 with a length of 0 or 1.
                let mut s = seg.clone();
                s.options = TcpOptions { mss: Some(0), ..TcpOptions::default() };
                bytes = s.to_bytes();
                bytes[ihl + 20] = 30;
                bytes[ihl + 21] = l % 2;
                bytes = fix_tcp_checksum(seg, bytes);
            }
            Damage::Truncated(n) => bytes.truncate(ihl + n % 20),
        }
        bytes
    }
}

/// Recomputes the TCP checksum after the TCP bytes were changed (so only the intended field is wrong).
fn fix_tcp_checksum(seg: &Segment, mut bytes: Vec<u8>) -> Vec<u8> {
    let ihl = if seg.src.is_ipv4() { 20 } else { 40 };
    bytes[ihl + 16] = 0;
    bytes[ihl + 17] = 0;
    let tcp_len = bytes.len() - ihl;
    let sum = utcp::wire::pseudo_header_sum(seg.src, seg.dst, IPPROTO_TCP, tcp_len);
    let c = !utcp::wire::internet_checksum(sum, &bytes[ihl..]);
    bytes[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
    bytes
}

fn address_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into())),
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into())),
    ]
}

/// TCP options of the known kinds, as the parser returns them (they fit in 40 bytes).
pub fn options() -> impl Strategy<Value = TcpOptions<'static>> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=2),
    )
        .prop_map(|(mss, ws, sack_ok, ts, blocks)| {
            let blocks: Vec<_> = blocks.into_iter().map(|(a, b)| (SeqNum(a), SeqNum(b))).collect();
            // mss 4 + ws 3 + sackOK 2 + TS 10 + 2 blocks 18 = 37 bytes: always fits.
            TcpOptions {
                mss,
                window_scale: ws,
                sack_permitted: sack_ok,
                timestamp: ts.map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
                sack: if blocks.is_empty() { None } else { SackBlocks::from_slice(&blocks) },
                ..TcpOptions::default()
            }
        })
}

/// A valid segment: any addresses, ports, numbers, flags, window and options, up to 200 bytes.
pub fn segment() -> impl Strategy<Value = Segment> {
    (
        address_pair(),
        1u8..,
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
        (0u16..0x200, any::<u16>(), any::<u16>()),
        options(),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |((src, dst), hop_limit, (sp, dp, seq, ack), (flags, window, urgent), options, payload)| {
                Segment {
                    src,
                    dst,
                    hop_limit,
                    src_port: sp,
                    dst_port: dp,
                    seq,
                    ack,
                    flags,
                    window,
                    urgent,
                    options,
                    payload,
                }
            },
        )
}

/// One damage to apply to a valid datagram.
pub fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        prop_oneof![0u8..4, 5u8..6, 7u8..16].prop_map(Damage::IpVersion),
        (0u8..5).prop_map(Damage::Ipv4HeaderLen),
        (1u16..1000).prop_map(Damage::IpLengthTooLong),
        any::<u16>().prop_map(Damage::Ipv4Checksum),
        (0u8..5).prop_map(Damage::TcpDataOffsetTooSmall),
        Just(Damage::TcpDataOffsetTooLarge),
        any::<u16>().prop_map(Damage::TcpChecksum),
        (0u8..2).prop_map(Damage::OptionLength),
        (0usize..20).prop_map(Damage::Truncated),
    ]
}

/// A valid segment, a damage, and the damaged bytes.
pub fn invalid_datagram() -> impl Strategy<Value = (Segment, Damage, Vec<u8>)> {
    (segment(), damage()).prop_map(|(s, d)| {
        let bytes = d.apply(&s, s.to_bytes());
        (s, d, bytes)
    })
}

/// Any configuration of the stack targets.
pub fn setup() -> impl Strategy<Value = Setup> {
    (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Setup::from_bytes(a, b))
}

/// A peer segment near the connection's numbers: offsets mostly small, any flags and options.
pub fn segment_spec() -> impl Strategy<Value = SegmentSpec> {
    let offset = prop_oneof![3 => -3000i16..3000, 1 => any::<i16>()];
    (
        any::<u8>(),
        any::<u8>(),
        offset.clone(),
        offset,
        any::<u16>(),
        (any::<u8>(), any::<u16>(), any::<u8>(), any::<i8>()),
        (any::<u16>(), any::<u16>(), any::<u8>(), prop_oneof![4 => Just(0u8), 1 => 0u8..4]),
    )
        .prop_map(
            |(
                flags,
                mode,
                seq_off,
                ack_off,
                window,
                (opts, mss, wscale, ts_delta),
                (sl, sn, len_code, port),
            )| {
                SegmentSpec {
                    flags,
                    // Keep the checksum correct mostly: a bad one is only dropped.
                    mode: mode & !0x20,
                    seq_off,
                    ack_off,
                    window,
                    opts,
                    mss,
                    wscale,
                    ts_delta,
                    sack_left: sl,
                    sack_len: sn,
                    len_code,
                    port,
                }
            },
        )
}

/// Any step of a stack-target input, segments most often.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => segment_spec().prop_map(Step::Segment),
        2 => prop_oneof![0u16..2000, 0x8000u16..0x8400].prop_map(|millis| Step::Advance { millis }),
        1 => (any::<u8>(), 0u16..5000).prop_map(|(sock, len)| Step::Send { sock, len }),
        1 => (any::<u8>(), 0u16..5000).prop_map(|(sock, max)| Step::Recv { sock, max }),
        1 => any::<u8>().prop_map(|sock| Step::Shutdown { sock }),
        1 => any::<u8>().prop_map(|sock| Step::Close { sock }),
        1 => any::<u8>().prop_map(|sock| Step::Abort { sock }),
        1 => Just(Step::Accept),
        1 => (any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(sock, which, value)| Step::SetOption { sock, which, value }),
    ]
}

/// The steps that lead a target's first connection to one RFC 9293 state.
pub fn steps_to(target: StackTarget, state: utcp::State) -> Vec<Step> {
    use crate::fuzzing::seg;
    use utcp::State::*;
    const F: u8 = 0x01;
    const S: u8 = 0x02;
    const A: u8 = 0x10;
    let sd = Step::Shutdown { sock: 0 };
    let peer_fin = Step::Segment(seg(F | A, 0, 0));
    let ack = Step::Segment(seg(A, 0, 0));
    let mut v = Vec::new();
    if target == StackTarget::Listen {
        if state == Listen {
            return v;
        }
        v.push(Step::Segment(SegmentSpec { mode: 1, ..seg(S, 0, 0) }));
        if state == SynReceived {
            return v;
        }
        v.extend([ack, Step::Accept]);
    }
    match state {
        CloseWait => v.push(peer_fin),
        FinWait1 => v.push(sd),
        FinWait2 => v.extend([sd, ack]),
        // The peer's FIN does not acknowledge ours (ack base 1: the stack's latest sequence).
        Closing => v.extend([sd, Step::Segment(SegmentSpec { mode: 4, ..seg(F | A, 0, 0) })]),
        LastAck => v.extend([peer_fin, sd]),
        TimeWait => v.extend([sd, peer_fin]),
        Closed => v.push(Step::Segment(seg(0x04, 0, 0))),
        _ => {}
    }
    v
}

/// The states [`steps_to`] can aim at for a target.
pub fn aimable_states(target: StackTarget) -> Vec<utcp::State> {
    use utcp::State::*;
    let mut v = vec![Established, CloseWait, FinWait1, FinWait2, Closing, LastAck, TimeWait, Closed];
    if target == StackTarget::Listen {
        v.extend([Listen, SynReceived]);
    }
    v
}

/// A stack-target input: a prefix leading to one state, then up to `tail` random steps.
pub fn aimed_input(target: StackTarget, tail: usize) -> impl Strategy<Value = StackInput> {
    let states = aimable_states(target);
    (setup(), proptest::sample::select(states), proptest::collection::vec(step(), 0..tail)).prop_map(
        move |(setup, state, tail)| {
            let mut steps = steps_to(target, state);
            steps.extend(tail);
            StackInput { setup, steps }
        },
    )
}

/// Which side of a two-stack connection a socket call is made on.
pub use crate::side::Side;

/// A socket call (or the passing of time) in the model test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `send` of this many bytes of the side's stream.
    Send(Side, u16),
    /// `recv` into a buffer of this many bytes.
    Recv(Side, u16),
    /// `shutdown`.
    Shutdown(Side),
    /// Time moves by this many milliseconds.
    Advance(u16),
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Client), Just(Side::Server)]
}

/// A socket call for the model test: sends and receives most often, shutdowns rarely.
pub fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (side(), 1u16..6000).prop_map(|(s, n)| Call::Send(s, n)),
        4 => (side(), 1u16..6000).prop_map(|(s, n)| Call::Recv(s, n)),
        1 => side().prop_map(Call::Shutdown),
        2 => (0u16..3000).prop_map(Call::Advance),
    ]
}

/// Impairment settings: loss, reordering, duplication and corruption up to 10 % each, delay up
/// to 50 ms with jitter, sometimes a rate limit (never so harsh that a transfer cannot finish).
pub fn link_config() -> impl Strategy<Value = crate::netsim::LinkConfig> {
    use utcp::Duration;
    let pct = || prop_oneof![2 => Just(0.0), 1 => 0.0..0.1f64];
    (
        (pct(), pct(), pct(), pct()),
        (0u64..20_000, 0u64..50_000, 0u64..5_000),
        proptest::option::of(100_000u64..100_000_000),
    )
        .prop_map(|((loss, reorder, duplicate, corrupt), (reorder_us, delay_us, jitter_us), rate)| {
            crate::netsim::LinkConfig {
                loss,
                reorder,
                reorder_delay: Duration::from_micros(reorder_us),
                duplicate,
                corrupt,
                delay: Duration::from_micros(delay_us),
                jitter: Duration::from_micros(jitter_us),
                rate,
                queue_limit: None,
            }
        })
}
