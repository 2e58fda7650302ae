//! The bodies of the fuzz targets, as plain functions so that `cargo test` can replay the corpus on
//! stable (harness/tests/fuzz_regressions.rs) through exactly the code libFuzzer runs (fuzz/).
//!
//! Each function takes arbitrary bytes and panics only when a property is broken; bad input is
//! otherwise simply refused by the code under test.

use utcp::wire::{
    datagram_len, emit_datagram, parse_datagram, ChecksumMode, Datagram, IpRepr, TcpFlags, TcpOption,
    TcpOptions, TcpRepr, WireErrorKind,
};

/// `segment_parser`: `data` as an IPv4 or IPv6 datagram.
///
/// Properties: parsing never panics (under either checksum mode); whatever parses emits without
/// error, and parsing the emitted bytes with checksums verified gives the same value (the IP payload
/// length may shrink, as options are re-laid out canonically); emitting that value again gives the
/// same bytes.
pub fn segment_parser(data: &[u8]) {
    let verified = parse_datagram(data, ChecksumMode::Verify);
    let Ok(d) = parse_datagram(data, ChecksumMode::Ignore) else {
        assert!(verified.is_err(), "parses with checksums verified but not with them ignored");
        return;
    };
    if let Ok(v) = verified {
        assert_eq!(v, d, "checksum mode changed the parsed value");
    }
    let bytes = emit(&d);
    let again = parse_datagram(&bytes, ChecksumMode::Verify)
        .unwrap_or_else(|e| panic!("emitted datagram does not parse: {e}\nvalue: {d:?}"));
    let expected = Datagram { ip: IpRepr { payload_len: bytes.len() - d.ip.header_len(), ..d.ip }, ..d };
    assert_eq!(again, expected, "parse -> emit -> parse changed the value");
    assert_eq!(emit(&again), bytes, "emit is not a fixpoint");
}

/// Emits a parsed datagram, which must always succeed.
fn emit(d: &Datagram<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; datagram_len(&d.ip, &d.transport)];
    match emit_datagram(&d.ip, &d.transport, &mut buf) {
        Ok(n) => assert_eq!(n, buf.len(), "emit_datagram length differs from datagram_len"),
        Err(e) => panic!("a parsed datagram does not emit: {e}\nvalue: {d:?}"),
    }
    buf
}

/// `tcp_options`: `data` as a TCP option area (the first 40 bytes; more cannot be carried).
///
/// Properties: walking the area never panics; a TCP header carrying it parses exactly when the walk
/// finds no error (with the same error); the parsed options emit, and parse back to the same value.
pub fn tcp_options(data: &[u8]) {
    // The walk alone, over everything given.
    for o in TcpOption::iter_raw(data) {
        let _ = o;
    }
    let area = &data[..data.len().min(40)];
    let padded = area.len().next_multiple_of(4);
    let mut seg = [0u8; 60];
    seg[12] = (((20 + padded) / 4) as u8) << 4;
    seg[13] = TcpFlags::ACK.0 as u8;
    seg[20..20 + area.len()].copy_from_slice(area);
    let seg = &seg[..20 + padded];
    let ip = IpRepr {
        src: [192, 0, 2, 1].into(),
        dst: [192, 0, 2, 2].into(),
        protocol: utcp::wire::IPPROTO_TCP,
        hop_limit: 64,
        payload_len: seg.len(),
    };
    let walk_error = TcpOption::iter_raw(&seg[20..]).find_map(Result::err);
    let parsed = TcpRepr::parse(&ip, seg, ChecksumMode::Ignore);
    let tcp = match (parsed, walk_error) {
        (Ok(tcp), None) => tcp,
        (Err(e), Some(w)) => {
            assert_eq!(e.offset, w.offset + 20, "option error offsets disagree");
            assert_eq!(e.kind, w.kind, "option errors disagree");
            assert!(matches!(e.kind, WireErrorKind::BadOptionLength { .. }), "unexpected error {e}");
            return;
        }
        (p, w) => panic!("header parse {p:?} disagrees with option walk {w:?}"),
    };
    let mut out = [0u8; 60];
    let n = tcp.buffer_len();
    assert!(n <= 60, "parsed options need {n} bytes of header");
    tcp.emit(&ip, &mut out[..n]).unwrap_or_else(|e| panic!("parsed options do not emit: {e}"));
    let again = TcpRepr::parse(&ip, &out[..n], ChecksumMode::Verify)
        .unwrap_or_else(|e| panic!("emitted options do not parse: {e}"));
    assert_eq!(again.options, tcp.options, "parse -> emit -> parse changed the options");
}

// ------------------------------------------------------------------------------------------------
// The stack targets: `stack_listen` and `stack_established`.
//
// An input is a structured `StackInput`, built through `arbitrary::Unstructured` by hand-written
// `Arbitrary` impls (the fuzz targets take it typed; `cargo test` and `utcp fuzz-show` decode files
// with the same code): two setup bytes choosing the configuration, then steps, each an opcode byte
// and fixed-size big-endian fields. Bytes past the end read as zero, so every input decodes, and
// `StackInput::encode` writes the same layout back, which is how the seeds are made.
// Sequence and acknowledgment numbers are offsets from what the peer has learned of the
// connection (the stack's last ACK, its highest sequence sent, ...), so mutations stay near the
// connection's numbers and reach deep states.

use arbitrary::{Arbitrary, Unstructured};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use utcp::host::{Bounds, Host, Outbox};
use utcp::tcp::SeqNum;
use utcp::wire::{SackBlocks, Timestamp, Transport, UnknownOptions};
use utcp::{Config, Duration, Instant, ListenerHandle, SocketHandle, SocketOption, Stack, State};

/// The stack's IPv4 address in the stack targets.
pub const LOCAL_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
/// The stack's IPv6 address in the stack targets.
pub const LOCAL_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
/// The peer's IPv4 address.
pub const REMOTE_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// The peer's IPv6 address.
pub const REMOTE_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
/// The port the stack listens on (and connects from, for an active open).
pub const LOCAL_PORT: u16 = 8080;
/// The peer's port for the main connection; other tuples use `REMOTE_PORT + n`.
pub const REMOTE_PORT: u16 = 40000;
/// Steps decoded from one input, at most (longer inputs are cut).
pub const MAX_STEPS: usize = 400;
/// Half-open connections per listener in the stack targets' configuration.
pub const SYN_BACKLOG: usize = 8;
/// The accept backlog of each listener.
pub const ACCEPT_BACKLOG: usize = 4;
/// Bytes a connection may hold queued in either direction, at most (memory bound).
pub const MAX_QUEUED: usize = 1 << 20;
/// Datagrams one drain of the stack may send, at most (the host's bound).
pub const MAX_PACKETS_PER_STEP: usize = 20_000;
/// Timer runs one `Advance` step may make, at most (the host's bound).
pub const MAX_TIMER_RUNS_PER_ADVANCE: usize = 200_000;

/// The host's bounds in the stack targets.
const BOUNDS: Bounds = Bounds {
    max_datagrams_per_drain: MAX_PACKETS_PER_STEP,
    max_timer_runs_per_advance: MAX_TIMER_RUNS_PER_ADVANCE,
};

/// Which stack an input drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackTarget {
    /// A stack listening on port 8080 (v4 and v6), nothing else.
    Listen,
    /// A stack with one connection ESTABLISHED by a fixed handshake (passive or active).
    Established,
}

impl StackTarget {
    /// The target named as in fuzz/ (`stack_listen`, `stack_established`).
    pub fn from_name(name: &str) -> Option<StackTarget> {
        match name {
            "stack_listen" => Some(StackTarget::Listen),
            "stack_established" => Some(StackTarget::Established),
            _ => None,
        }
    }

    /// The fuzz target's name.
    pub fn name(self) -> &'static str {
        match self {
            StackTarget::Listen => "stack_listen",
            StackTarget::Established => "stack_established",
        }
    }
}

/// The configuration chosen by an input's first two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Setup {
    /// `Config::linux_like()` instead of `Config::default()`.
    pub linux_like: bool,
    /// SACK switched off.
    pub no_sack: bool,
    /// Timestamps switched off.
    pub no_timestamps: bool,
    /// Window scaling switched off.
    pub no_window_scale: bool,
    /// Every segment acknowledged at once (no delayed ACK).
    pub no_delayed_ack: bool,
    /// 4 KiB send and receive buffers (full buffers and zero windows come quickly).
    pub small_buffers: bool,
    /// Nagle off.
    pub nodelay: bool,
    /// The established connection is opened by the stack (`connect`) rather than accepted.
    pub active_open: bool,
    /// The main connection is IPv6.
    pub ipv6: bool,
    /// The peer's handshake SYN carries no options.
    pub bare_syn: bool,
    /// MTU 1280 instead of 1500.
    pub small_mtu: bool,
}

impl Setup {
    /// Decodes the two setup bytes.
    pub fn from_bytes(a: u8, b: u8) -> Setup {
        let bit = |x: u8, n: u8| x & (1 << n) != 0;
        Setup {
            linux_like: bit(a, 0),
            no_sack: bit(a, 1),
            no_timestamps: bit(a, 2),
            no_window_scale: bit(a, 3),
            no_delayed_ack: bit(a, 4),
            small_buffers: bit(a, 5),
            nodelay: bit(a, 6),
            active_open: bit(a, 7),
            ipv6: bit(b, 0),
            bare_syn: bit(b, 1),
            small_mtu: bit(b, 2),
        }
    }

    /// The two setup bytes.
    pub fn to_bytes(self) -> [u8; 2] {
        let a = [
            self.linux_like,
            self.no_sack,
            self.no_timestamps,
            self.no_window_scale,
            self.no_delayed_ack,
            self.small_buffers,
            self.nodelay,
            self.active_open,
        ];
        let b = [self.ipv6, self.bare_syn, self.small_mtu];
        let pack = |bits: &[bool]| bits.iter().enumerate().fold(0u8, |acc, (i, &v)| acc | (u8::from(v) << i));
        [pack(&a), pack(&b)]
    }

    /// The stack configuration.
    pub fn config(self) -> Config {
        let mut c = if self.linux_like { Config::linux_like() } else { Config::default() };
        c = c.with_address(LOCAL_V4).with_address(LOCAL_V6);
        c.isn_secret = [7; 16];
        c.mtu = if self.small_mtu { 1280 } else { 1500 };
        c.tcp.sack = !self.no_sack;
        c.tcp.timestamps = !self.no_timestamps;
        c.tcp.window_scale = !self.no_window_scale;
        if self.no_delayed_ack {
            c.tcp.delayed_ack = None;
        }
        if self.small_buffers {
            c.tcp.send_buffer = 4096;
            c.tcp.recv_buffer = 4096;
        }
        c.tcp.nagle = !self.nodelay;
        c.tcp.syn_backlog = SYN_BACKLOG;
        c
    }
}

/// One segment the peer sends, as offsets from what it has learned of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentSpec {
    /// The low 8 TCP flag bits (FIN SYN RST PSH ACK URG ECE CWR).
    pub flags: u8,
    /// Bits 0-1: sequence base (0 the stack's last ACK, 1 the peer's SND.NXT, 2 the right edge of
    /// the stack's window, 3 the peer's ISN with the offset in units of 65536); bits 2-3:
    /// acknowledgment base (0 the stack's highest sequence sent, 1 the sequence of its latest
    /// segment, 2 its ISS, 3 the highest sent with the offset in units of 65536); bit 4: the
    /// other address family; bit 5: a broken TCP checksum; bit 6: payload bytes differ from
    /// the stream's pattern.
    pub mode: u8,
    /// Added to the sequence base.
    pub seq_off: i16,
    /// Added to the acknowledgment base.
    pub ack_off: i16,
    /// The window field.
    pub window: u16,
    /// Options present: bit 0 MSS, 1 window scale, 2 SACK-permitted, 3 timestamps, 4 one SACK
    /// block, 5 an unknown option (kind 253).
    pub opts: u8,
    /// MSS value.
    pub mss: u16,
    /// Window scale value.
    pub wscale: u8,
    /// TSval moves by this from the peer's last one (negative values test PAWS).
    pub ts_delta: i8,
    /// SACK block: its left edge is this far below the stack's highest sequence sent.
    pub sack_left: u16,
    /// SACK block length.
    pub sack_len: u16,
    /// Payload length: 0..=200 literally, above that an entry of [`BIG_LENGTHS`].
    pub len_code: u8,
    /// 0 for the main connection's peer port, else `REMOTE_PORT + port`.
    pub port: u8,
}

/// Payload lengths chosen by `len_code` 201..=255.
pub const BIG_LENGTHS: [usize; 16] =
    [256, 512, 536, 1000, 1024, 1208, 1220, 1228, 1440, 1448, 1460, 1461, 2000, 4096, 16384, 65000];

impl SegmentSpec {
    /// The payload length the spec asks for.
    pub fn payload_len(&self) -> usize {
        match self.len_code {
            n @ 0..=200 => usize::from(n),
            n => BIG_LENGTHS[usize::from(n - 201) % BIG_LENGTHS.len()],
        }
    }
}

/// One step of a stack-target input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The peer sends a segment.
    Segment(SegmentSpec),
    /// Time moves on by `millis` (below 0x8000) or by `(millis - 0x8000) * 100` ms, running every
    /// timer due on the way.
    Advance {
        /// Encoded amount, see above.
        millis: u16,
    },
    /// `send` of `len` bytes of the stream pattern on socket `sock`.
    Send {
        /// Index into the sockets known so far (modulo their number).
        sock: u8,
        /// Bytes offered.
        len: u16,
    },
    /// `recv` into a buffer of `max` bytes.
    Recv {
        /// Index into the sockets known so far.
        sock: u8,
        /// Buffer size.
        max: u16,
    },
    /// `shutdown` (half-close).
    Shutdown {
        /// Index into the sockets known so far.
        sock: u8,
    },
    /// `close`.
    Close {
        /// Index into the sockets known so far.
        sock: u8,
    },
    /// `abort`.
    Abort {
        /// Index into the sockets known so far.
        sock: u8,
    },
    /// `accept` on each listener.
    Accept,
    /// `set_option`: `which` picks the option (nodelay, keepalive, recv buffer, send buffer, max
    /// segment), `value` its value.
    SetOption {
        /// Index into the sockets known so far.
        sock: u8,
        /// Which option.
        which: u8,
        /// Its value.
        value: u16,
    },
}

/// One byte of the input; past the end, zero (`Unstructured` pads with zeros).
fn byte(u: &mut Unstructured<'_>) -> u8 {
    u8::arbitrary(u).unwrap_or(0)
}

/// Two bytes as a big-endian `u16` (the encoding [`Step::encode`] writes).
fn be16(u: &mut Unstructured<'_>) -> u16 {
    u16::from_be_bytes([byte(u), byte(u)])
}

impl<'a> Arbitrary<'a> for Setup {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Setup> {
        Ok(Setup::from_bytes(byte(u), byte(u)))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (2, Some(2))
    }
}

impl<'a> Arbitrary<'a> for SegmentSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<SegmentSpec> {
        Ok(SegmentSpec {
            flags: byte(u),
            mode: byte(u),
            seq_off: be16(u) as i16,
            ack_off: be16(u) as i16,
            window: be16(u),
            opts: byte(u),
            mss: be16(u),
            wscale: byte(u),
            ts_delta: byte(u) as i8,
            sack_left: be16(u),
            sack_len: be16(u),
            len_code: byte(u),
            port: byte(u),
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (18, Some(18))
    }
}

/// Decoding is by hand rather than derived so that an input reads as the opcode byte and
/// big-endian fields [`Step::encode`] writes (the committed seeds are made that way), and so that
/// every byte string decodes: opcodes are taken modulo 16 and missing bytes read as zero.
impl<'a> Arbitrary<'a> for Step {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Step> {
        let op = byte(u);
        Ok(match op % 16 {
            0..=6 => Step::Segment(SegmentSpec::arbitrary(u)?),
            7 | 8 => Step::Advance { millis: be16(u) },
            9 => Step::Send { sock: byte(u), len: be16(u) },
            10 => Step::Recv { sock: byte(u), max: be16(u) },
            11 => Step::Shutdown { sock: byte(u) },
            12 => Step::Close { sock: byte(u) },
            13 => Step::Abort { sock: byte(u) },
            14 => Step::Accept,
            _ => Step::SetOption { sock: byte(u), which: byte(u), value: be16(u) },
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(19))
    }
}

impl Step {
    /// Appends the step's encoding (the inverse of decoding).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Step::Segment(s) => {
                out.extend([0, s.flags, s.mode]);
                out.extend((s.seq_off as u16).to_be_bytes());
                out.extend((s.ack_off as u16).to_be_bytes());
                out.extend(s.window.to_be_bytes());
                out.push(s.opts);
                out.extend(s.mss.to_be_bytes());
                out.extend([s.wscale, s.ts_delta as u8]);
                out.extend(s.sack_left.to_be_bytes());
                out.extend(s.sack_len.to_be_bytes());
                out.extend([s.len_code, s.port]);
            }
            Step::Advance { millis } => {
                out.push(7);
                out.extend(millis.to_be_bytes());
            }
            Step::Send { sock, len } => {
                out.extend([9, sock]);
                out.extend(len.to_be_bytes());
            }
            Step::Recv { sock, max } => {
                out.extend([10, sock]);
                out.extend(max.to_be_bytes());
            }
            Step::Shutdown { sock } => out.extend([11, sock]),
            Step::Close { sock } => out.extend([12, sock]),
            Step::Abort { sock } => out.extend([13, sock]),
            Step::Accept => out.push(14),
            Step::SetOption { sock, which, value } => {
                out.extend([15, sock, which]);
                out.extend(value.to_be_bytes());
            }
        }
    }

    /// The time an `Advance` step moves the clock by.
    pub fn advance_duration(millis: u16) -> Duration {
        if millis < 0x8000 {
            Duration::from_millis(u64::from(millis))
        } else {
            Duration::from_millis(u64::from(millis - 0x8000) * 100)
        }
    }
}

/// A decoded stack-target input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackInput {
    /// The configuration.
    pub setup: Setup,
    /// The steps, at most [`MAX_STEPS`].
    pub steps: Vec<Step>,
}

impl StackInput {
    /// Decodes any bytes (never fails: missing bytes read as zero); the same decoding as the
    /// fuzz targets' `Arbitrary` input.
    pub fn decode(data: &[u8]) -> StackInput {
        let mut u = Unstructured::new(data);
        let setup = Setup::arbitrary(&mut u).unwrap_or_default();
        let mut steps = Vec::new();
        while !u.is_empty() && steps.len() < MAX_STEPS {
            steps.push(Step::arbitrary(&mut u).unwrap_or(Step::Accept));
        }
        StackInput { setup, steps }
    }

    /// Encodes the input (decoding the result gives it back).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.setup.to_bytes().to_vec();
        for s in &self.steps {
            s.encode(&mut out);
        }
        out
    }
}

/// The whole input: two setup bytes, then steps until the bytes run out (at most [`MAX_STEPS`]).
impl<'a> Arbitrary<'a> for StackInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<StackInput> {
        Ok(StackInput::decode(u.bytes(u.len())?))
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<StackInput> {
        Ok(StackInput::decode(u.take_rest()))
    }
}

/// What a run reports to someone watching (`utcp fuzz-show`): the host's observer; the fuzz
/// targets ignore everything ([`Quiet`]).
pub use utcp::host::{Observer, Quiet};

/// What the peer has learned of one 4-tuple from the segments it sent and received.
#[derive(Debug, Clone, Copy)]
struct PeerView {
    isn: SeqNum,
    snd_nxt: SeqNum,
    ts: u32,
    stack_iss: Option<SeqNum>,
    stack_ack: Option<SeqNum>,
    stack_high: Option<SeqNum>,
    stack_last_seq: Option<SeqNum>,
    stack_win: u32,
    stack_wscale: u8,
    stack_tsval: u32,
}

impl PeerView {
    fn new(port: u16) -> PeerView {
        let isn = SeqNum(1_000_000u32.wrapping_add(u32::from(port).wrapping_mul(7919)));
        PeerView {
            isn,
            snd_nxt: isn,
            ts: 100,
            stack_iss: None,
            stack_ack: None,
            stack_high: None,
            stack_last_seq: None,
            stack_win: 0,
            stack_wscale: 0,
            stack_tsval: 0,
        }
    }

    fn learn(&mut self, seg: &TcpRepr<'_>) {
        if seg.flags.syn() {
            self.stack_iss = Some(seg.seq);
            self.stack_wscale = seg.options.window_scale.unwrap_or(0).min(14);
        }
        let end = seg.seq + seg.segment_len();
        self.stack_high = Some(match self.stack_high {
            Some(h) if h > end => h,
            _ => end,
        });
        self.stack_last_seq = Some(seg.seq);
        if seg.flags.ack() {
            self.stack_ack = Some(seg.ack);
        }
        self.stack_win = u32::from(seg.window) << self.stack_wscale;
        if let Some(ts) = seg.options.timestamp {
            self.stack_tsval = ts.tsval;
        }
    }
}

/// The state of one run: the stack, the clock, the sockets and the peer's views.
struct Run<'o, O: Observer> {
    /// The stack and its clock.
    host: Host,
    setup: Setup,
    listeners: Vec<ListenerHandle>,
    sockets: Vec<SocketHandle>,
    accepted_total: usize,
    peers: Vec<(SocketAddr, PeerView)>,
    main_remote: IpAddr,
    target_established: bool,
    obs: &'o mut O,
    /// Bytes the application read from the main connection so far.
    main_read: usize,
    /// Every byte the peer sent on the main connection followed the stream pattern (no altered
    /// payloads, no new SYN re-basing it): then what the application reads must be that pattern.
    main_pure: bool,
    step: usize,
}

/// What a run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The state of each socket the application knew (accepted or connected), `None` once gone.
    pub states: Vec<Option<State>>,
    /// Datagrams the stack sent.
    pub packets_out: u64,
    /// Connections the stack still held.
    pub connections: usize,
}

/// Runs a stack-target input, checking the properties after every step; panics with the step
/// number and the reason when one breaks. This is the body of the two stack fuzz targets.
pub fn stack_target(target: StackTarget, data: &[u8]) {
    run_stack(target, &StackInput::decode(data), &mut Quiet);
}

/// The body of a stack fuzz target given its already decoded (`Arbitrary`) input.
pub fn stack_target_input(target: StackTarget, input: &StackInput) {
    run_stack(target, input, &mut Quiet);
}

/// `stack_listen`.
pub fn stack_listen(data: &[u8]) {
    stack_target(StackTarget::Listen, data);
}

/// `stack_established`.
pub fn stack_established(data: &[u8]) {
    stack_target(StackTarget::Established, data);
}

/// Runs a decoded input with an observer; see [`stack_target`].
pub fn run_stack<O: Observer>(target: StackTarget, input: &StackInput, obs: &mut O) -> Outcome {
    let setup = input.setup;
    let main_remote = if setup.ipv6 { REMOTE_V6 } else { REMOTE_V4 };
    let mut run = Run {
        host: Host::new(Stack::new(setup.config()), Instant::from_secs(1), BOUNDS),
        setup,
        listeners: Vec::new(),
        sockets: Vec::new(),
        accepted_total: 0,
        peers: Vec::new(),
        main_remote,
        target_established: target == StackTarget::Established,
        obs,
        main_read: 0,
        main_pure: true,
        step: 0,
    };
    run.setup_target(target);
    for (i, step) in input.steps.iter().enumerate() {
        run.step = i + 1;
        run.apply(step);
        run.drain();
        run.check();
    }
    Outcome {
        states: run.sockets.iter().map(|&s| run.host.stack().state(s)).collect(),
        packets_out: run.host.stack().stats().packets_out,
        connections: run.host.stack().connection_count(),
    }
}

impl<O: Observer> Run<'_, O> {
    fn fail(&self, what: fmt::Arguments<'_>) -> ! {
        panic!("step {}: {what}", self.step)
    }

    fn local_for(remote: IpAddr) -> IpAddr {
        if remote.is_ipv4() {
            LOCAL_V4
        } else {
            LOCAL_V6
        }
    }

    fn setup_target(&mut self, target: StackTarget) {
        let now = self.host.now();
        let passive = target == StackTarget::Listen || !self.setup.active_open;
        if passive {
            for local in [LOCAL_V4, LOCAL_V6] {
                let l = self
                    .host
                    .stack_mut()
                    .listen(now, SocketAddr::new(local, LOCAL_PORT), ACCEPT_BACKLOG)
                    .unwrap_or_else(|e| panic!("listen on {local}: {e:?}"));
                self.listeners.push(l);
            }
            self.obs.note(now, format_args!("listen :{LOCAL_PORT} (v4 and v6)"));
        }
        if target == StackTarget::Listen {
            return;
        }
        let remote = SocketAddr::new(self.main_remote, REMOTE_PORT);
        let bare = self.setup.bare_syn;
        let syn_opts = |ts: u32, ecr: u32| TcpOptions {
            mss: (!bare).then_some(1460),
            window_scale: (!bare).then_some(7),
            sack_permitted: !bare,
            timestamp: (!bare).then_some(Timestamp { tsval: ts, tsecr: ecr }),
            ..TcpOptions::default()
        };
        if passive {
            let syn =
                SegmentSpec { flags: TcpFlags::SYN.0 as u8, mode: 0b01, window: 64240, ..Default::default() };
            self.inject_with(&syn, syn_opts(100, 0));
            self.drain();
            let ack = SegmentSpec { flags: TcpFlags::ACK.0 as u8, window: 502, ..Default::default() };
            self.inject(&ack);
            self.drain();
            let l = self.listeners[usize::from(self.setup.ipv6)];
            match self.host.stack_mut().accept(now, l) {
                Ok(s) => {
                    self.sockets.push(s);
                    self.accepted_total += 1;
                }
                Err(e) => panic!("the fixed handshake did not establish: accept {e:?}"),
            }
        } else {
            let local = SocketAddr::new(Self::local_for(self.main_remote), LOCAL_PORT);
            let s = self.host.stack_mut().connect(now, Some(local), remote).expect("connect");
            self.obs.note(now, format_args!("connect {remote} = {s}"));
            self.sockets.push(s);
            self.accepted_total += 1;
            self.drain();
            let synack = SegmentSpec {
                flags: (TcpFlags::SYN.0 | TcpFlags::ACK.0) as u8,
                mode: 0b01,
                window: 65535,
                ..Default::default()
            };
            let ecr = self.peer(remote).stack_tsval;
            self.inject_with(&synack, syn_opts(100, ecr));
            self.drain();
        }
        match self.host.stack().state(self.sockets[0]) {
            Some(State::Established) => {}
            other => panic!("the fixed handshake did not establish: {other:?}"),
        }
        while self.host.stack_mut().poll_event().is_some() {}
        self.check();
    }

    fn peer(&mut self, remote: SocketAddr) -> &mut PeerView {
        let i = match self.peers.iter().position(|(a, _)| *a == remote) {
            Some(i) => i,
            None => {
                self.peers.push((remote, PeerView::new(remote.port())));
                self.peers.len() - 1
            }
        };
        &mut self.peers[i].1
    }

    fn remote_of(&self, spec: &SegmentSpec) -> SocketAddr {
        let other = spec.mode & 0x10 != 0;
        let ip = match (self.main_remote.is_ipv4(), other) {
            (true, false) | (false, true) => REMOTE_V4,
            _ => REMOTE_V6,
        };
        SocketAddr::new(ip, REMOTE_PORT.wrapping_add(u16::from(spec.port)))
    }

    fn inject(&mut self, spec: &SegmentSpec) {
        let remote = self.remote_of(spec);
        let p = *self.peer(remote);
        let o = spec.opts;
        let mut options = TcpOptions::default();
        if o & 1 != 0 {
            options.mss = Some(spec.mss);
        }
        if o & 2 != 0 {
            options.window_scale = Some(spec.wscale);
        }
        options.sack_permitted = o & 4 != 0;
        if o & 8 != 0 {
            let tsval = p.ts.wrapping_add(spec.ts_delta as i32 as u32);
            self.peer(remote).ts = tsval;
            options.timestamp = Some(Timestamp { tsval, tsecr: p.stack_tsval });
        }
        if o & 16 != 0 {
            let high = p.stack_high.unwrap_or(SeqNum(0));
            let left = SeqNum(high.0.wrapping_sub(u32::from(spec.sack_left)));
            let right = SeqNum(left.0.wrapping_add(u32::from(spec.sack_len)));
            options.sack = SackBlocks::from_slice(&[(left, right)]);
        }
        if o & 32 != 0 {
            options.unknown = UnknownOptions::from_raw(&[253, 4, 0xab, 0xcd]);
        }
        self.inject_with(spec, options);
    }

    fn inject_with(&mut self, spec: &SegmentSpec, options: TcpOptions<'static>) {
        let now = self.host.now();
        let remote = self.remote_of(spec);
        let local = SocketAddr::new(Self::local_for(remote.ip()), LOCAL_PORT);
        let p = *self.peer(remote);
        let off = spec.seq_off as i32 as u32;
        let seq = match spec.mode & 3 {
            0 => p.stack_ack.unwrap_or(p.snd_nxt).0.wrapping_add(off),
            1 => p.snd_nxt.0.wrapping_add(off),
            2 => p.stack_ack.unwrap_or(p.snd_nxt).0.wrapping_add(p.stack_win).wrapping_add(off),
            _ => p.isn.0.wrapping_add(off << 16),
        };
        let high = p.stack_high.or(p.stack_iss).unwrap_or(SeqNum(0));
        let aoff = spec.ack_off as i32 as u32;
        let ack = match (spec.mode >> 2) & 3 {
            0 => high.0.wrapping_add(aoff),
            1 => p.stack_last_seq.unwrap_or(high).0.wrapping_add(aoff),
            2 => p.stack_iss.unwrap_or(high).0.wrapping_add(aoff),
            _ => high.0.wrapping_add(aoff << 16),
        };
        let len = spec.payload_len();
        let flip = if spec.mode & 0x40 != 0 { 0x5a } else { 0 };
        let payload: Vec<u8> =
            (0..len).map(|i| (seq.wrapping_add(i as u32).wrapping_sub(p.isn.0) as u8) ^ flip).collect();
        let flags = TcpFlags(u16::from(spec.flags));
        let tcp = TcpRepr {
            src_port: remote.port(),
            dst_port: local.port(),
            seq: SeqNum(seq),
            ack: if flags.ack() { SeqNum(ack) } else { SeqNum(0) },
            flags,
            window: spec.window,
            urgent: 0,
            options,
            payload: &payload,
        };
        let ip = IpRepr {
            src: remote.ip(),
            dst: local.ip(),
            protocol: utcp::wire::IPPROTO_TCP,
            hop_limit: 64,
            payload_len: 0,
        };
        let t = Transport::Tcp(tcp);
        let mut buf = vec![0u8; datagram_len(&ip, &t)];
        if let Err(e) = emit_datagram(&ip, &t, &mut buf) {
            self.obs.note(now, format_args!("segment not emitted: {e}"));
            return;
        }
        if spec.mode & 0x20 != 0 {
            let at = ip.header_len() + 16;
            buf[at] ^= 0xff; // the TCP checksum
        }
        let main = SocketAddr::new(self.main_remote, REMOTE_PORT);
        if remote == main && (flip != 0 || (flags.syn() && self.step > 0)) {
            self.main_pure = false;
        }
        let end = SeqNum(seq) + tcp.segment_len();
        let view = self.peer(remote);
        if flags.syn() {
            view.isn = SeqNum(seq);
        }
        if end > view.snd_nxt || flags.syn() {
            view.snd_nxt = end;
        }
        self.host.receive(now, &buf, &mut *self.obs);
    }

    fn socket(&self, sock: u8) -> Option<SocketHandle> {
        (!self.sockets.is_empty()).then(|| self.sockets[usize::from(sock) % self.sockets.len()])
    }

    fn apply(&mut self, step: &Step) {
        let now = self.host.now();
        match *step {
            Step::Segment(spec) => self.inject(&spec),
            Step::Advance { millis } => self.advance(Step::advance_duration(millis)),
            Step::Send { sock, len } => {
                let Some(s) = self.socket(sock) else { return };
                let data: Vec<u8> = (0..usize::from(len)).map(|i| (i * 31 + 7) as u8).collect();
                let r = self.host.stack_mut().send(now, s, &data);
                self.obs.note(now, format_args!("send({s}, {len}) = {r:?}"));
                if let Ok(n) = r {
                    if n > usize::from(len) {
                        self.fail(format_args!("send took {n} of {len} bytes"));
                    }
                }
            }
            Step::Recv { sock, max } => {
                let Some(s) = self.socket(sock) else { return };
                let mut buf = vec![0u8; usize::from(max)];
                let r = self.host.stack_mut().recv(now, s, &mut buf);
                self.obs.note(now, format_args!("recv({s}, {max}) = {r:?}"));
                if let Ok(n) = r {
                    if n > usize::from(max) {
                        self.fail(format_args!("recv returned {n} into {max} bytes"));
                    }
                    if self.sockets.first() == Some(&s) && self.target_established {
                        self.check_stream(&buf[..n]);
                    }
                }
            }
            Step::Shutdown { sock } => {
                let Some(s) = self.socket(sock) else { return };
                let r = self.host.stack_mut().shutdown(now, s);
                self.obs.note(now, format_args!("shutdown({s}) = {r:?}"));
            }
            Step::Close { sock } => {
                let Some(s) = self.socket(sock) else { return };
                let r = self.host.stack_mut().close(now, s);
                self.obs.note(now, format_args!("close({s}) = {r:?}"));
            }
            Step::Abort { sock } => {
                let Some(s) = self.socket(sock) else { return };
                let r = self.host.stack_mut().abort(now, s);
                self.obs.note(now, format_args!("abort({s}) = {r:?}"));
            }
            Step::Accept => {
                for l in self.listeners.clone() {
                    let r = self.host.stack_mut().accept(now, l);
                    self.obs.note(now, format_args!("accept({l}) = {r:?}"));
                    if let Ok(s) = r {
                        self.sockets.push(s);
                        self.accepted_total += 1;
                    }
                }
            }
            Step::SetOption { sock, which, value } => {
                let Some(s) = self.socket(sock) else { return };
                let opt = match which % 5 {
                    0 => SocketOption::NoDelay(value & 1 != 0),
                    1 => SocketOption::KeepAlive(
                        (value != 0).then(|| Duration::from_millis(u64::from(value) * 10)),
                    ),
                    2 => SocketOption::RecvBuffer(usize::from(value) * 8),
                    3 => SocketOption::SendBuffer(usize::from(value) * 8),
                    _ => SocketOption::MaxSegment(value),
                };
                let r = self.host.stack_mut().set_option(now, s, opt);
                self.obs.note(now, format_args!("set_option({s}, {opt:?}) = {r:?}"));
            }
        }
    }

    /// Moves the clock by `d`, running every timer due on the way at its deadline and sending
    /// what they make.
    fn advance(&mut self, d: Duration) {
        let end = self.host.now() + d;
        self.obs.note(self.host.now(), format_args!("advance {d}"));
        let mut timers = self.host.timers_until(end);
        loop {
            match timers.run_next(&mut self.host) {
                Ok(Some(_)) => self.drain(),
                Ok(None) => break,
                Err(r) => self.fail(format_args!("in an advance of {d}: {r}")),
            }
        }
        self.host.set_now(end);
    }

    /// Sends everything the stack has to send now, checking each datagram.
    fn drain(&mut self) {
        let mut out = Outbox::default();
        if let Err(r) = self.host.drain(&mut out, &mut *self.obs) {
            self.fail(format_args!("{r}"));
        }
        let mtu = self.host.stack().config().mtu;
        for (_, p) in out.sent {
            if p.len() > mtu {
                self.fail(format_args!("sent a datagram of {} bytes, MTU {mtu}", p.len()));
            }
            let d = match parse_datagram(&p, ChecksumMode::Verify) {
                Ok(d) => d,
                Err(e) => self.fail(format_args!("sent a datagram that does not parse: {e}\n{p:02x?}")),
            };
            if !self.host.stack().addresses().contains(&d.ip.src) {
                self.fail(format_args!("sent from {}, not a local address", d.ip.src));
            }
            if let Transport::Tcp(seg) = d.transport {
                let remote = SocketAddr::new(d.ip.dst, seg.dst_port);
                self.peer(remote).learn(&seg);
            }
        }
    }

    /// Bytes read from the main connection are the peer's stream, in order: byte `k` of the
    /// stream is `(k + 1) as u8` (the payload pattern relative to the peer's ISN).
    fn check_stream(&mut self, got: &[u8]) {
        if self.main_pure {
            for (i, &b) in got.iter().enumerate() {
                let k = self.main_read + i;
                if b != (k + 1) as u8 {
                    self.fail(format_args!(
                        "read byte {k} of the stream as {b:#04x}, the peer sent {:#04x}",
                        (k + 1) as u8
                    ));
                }
            }
        }
        self.main_read += got.len();
    }

    /// The properties that hold after every step.
    fn check(&self) {
        if let Err(v) = self.host.stack().check_invariants() {
            self.fail(format_args!("invariant broken: {v}"));
        }
        // Every segment the stack decided to send went out: none failed to fit the MTU buffer.
        for reason in [utcp::DropReason::EmitFailed, utcp::DropReason::BufferTooSmall] {
            let n = self.host.stack().stats().dropped(reason);
            if n > 0 {
                self.fail(format_args!("{n} segments the stack meant to send were dropped: {reason}"));
            }
        }
        let limit = self.listeners.len() * (SYN_BACKLOG + ACCEPT_BACKLOG) + self.accepted_total;
        let n = self.host.stack().connection_count();
        if n > limit {
            self.fail(format_args!("{n} connections held, limit {limit}"));
        }
        for &s in &self.sockets {
            if let Some(i) = self.host.stack().info(s) {
                if i.send_queue > MAX_QUEUED || i.recv_queue > MAX_QUEUED {
                    self.fail(format_args!(
                        "{s}: {} bytes queued to send and {} to read, limit {MAX_QUEUED}",
                        i.send_queue, i.recv_queue
                    ));
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Seeds for the stack targets: meaningful sequences, written under corpus/fuzz/<target>/ by
// harness/tests/fuzz_regressions.rs (`UTCP_WRITE_SEEDS=1`).

const F: u8 = 0x01;
const S: u8 = 0x02;
const R: u8 = 0x04;
const P: u8 = 0x08;
const A: u8 = 0x10;

/// A segment step: `flags`, sequence offset from the stack's last ACK, acknowledging everything
/// the stack sent, `len` payload bytes, window 65535, no options, main connection.
pub fn seg(flags: u8, seq_off: i16, len: u8) -> SegmentSpec {
    SegmentSpec { flags, seq_off, window: 65535, len_code: len, ..SegmentSpec::default() }
}

fn step(s: SegmentSpec) -> Step {
    Step::Segment(s)
}

fn advance_ms(ms: u16) -> Step {
    Step::Advance { millis: ms }
}

fn advance_s(s: u16) -> Step {
    Step::Advance { millis: 0x8000 + s * 10 }
}

/// A passive handshake on peer port `REMOTE_PORT + port` (SYN with the usual options, then ACK).
fn handshake(port: u8) -> [Step; 2] {
    [
        step(SegmentSpec { mode: 1, opts: 0b1111, mss: 1460, wscale: 7, port, ..seg(S, 0, 0) }),
        step(SegmentSpec { port, opts: 0b1000, ..seg(A, 0, 0) }),
    ]
}

/// The steps of the named stack-target seeds (setup variants are added by [`seed_inputs`]).
pub fn seed_scenarios(target: StackTarget) -> Vec<(&'static str, Vec<Step>)> {
    let recv = Step::Recv { sock: 0, max: 65535 };
    let send = |len| Step::Send { sock: 0, len };
    let sd = Step::Shutdown { sock: 0 };
    let close = Step::Close { sock: 0 };
    match target {
        StackTarget::Established => vec![
            ("data-in", vec![step(seg(P | A, 0, 100)), advance_ms(300), recv]),
            ("data-out-acked", vec![send(3000), step(seg(A, 0, 0)), advance_ms(300), send(10)]),
            (
                "peer-closes-first",
                vec![step(seg(F | A, 0, 0)), recv, recv, close, step(seg(A, 0, 0)), advance_s(70)],
            ),
            ("stack-closes-first", vec![sd, step(seg(A, 0, 0)), step(seg(F | A, 0, 0)), advance_s(70)]),
            (
                "simultaneous-close",
                vec![sd, step(SegmentSpec { mode: 4, ..seg(F | A, 0, 0) }), advance_s(70)],
            ),
            ("rst-in-window", vec![step(seg(R, 0, 0)), recv, send(5)]),
            ("rst-inside-window-challenge", vec![step(seg(R, 100, 0)), step(seg(R | A, 0, 0))]),
            ("rst-out-of-window", vec![step(seg(R, 20000, 0))]),
            ("syn-in-established", vec![step(seg(S, 0, 0)), advance_ms(10), step(seg(S | A, 0, 0))]),
            ("ack-beyond-snd-nxt", vec![send(100), step(SegmentSpec { ack_off: 5000, ..seg(A, 0, 0) })]),
            (
                "out-of-order-then-fill",
                vec![step(seg(P | A, 1000, 200)), step(seg(P | A, 0, 255)), step(seg(P | A, 0, 200)), recv],
            ),
            (
                "zero-window-probe",
                vec![step(SegmentSpec { window: 0, ..seg(A, 0, 0) }), send(2000), advance_s(30)],
            ),
            ("retransmit-until-timeout", vec![send(3000), advance_s(60), advance_s(600), advance_s(1800)]),
            (
                "fast-retransmit",
                vec![
                    send(20000),
                    step(SegmentSpec { mode: 4, ack_off: 1, ..seg(A, 0, 0) }),
                    step(SegmentSpec { mode: 4, ack_off: 1, ..seg(A, 0, 0) }),
                    step(SegmentSpec { mode: 4, ack_off: 1, ..seg(A, 0, 0) }),
                    step(SegmentSpec { mode: 4, ack_off: 1, ..seg(A, 0, 0) }),
                    step(seg(A, 0, 0)),
                ],
            ),
            (
                "sack-blocks",
                vec![
                    send(10000),
                    step(SegmentSpec {
                        opts: 16,
                        sack_left: 3000,
                        sack_len: 1448,
                        mode: 4,
                        ack_off: 1,
                        ..seg(A, 0, 0)
                    }),
                    advance_s(2),
                ],
            ),
            (
                "paws-old-timestamp",
                vec![
                    step(SegmentSpec { opts: 8, ts_delta: 10, ..seg(P | A, 0, 50) }),
                    step(SegmentSpec { opts: 8, ts_delta: -100, ..seg(P | A, 0, 50) }),
                ],
            ),
            ("bad-checksum", vec![step(SegmentSpec { mode: 0x20, ..seg(P | A, 0, 50) })]),
            ("big-segment", vec![step(SegmentSpec { len_code: 255, ..seg(P | A, 0, 0) }), recv]),
            ("close-with-unread-data", vec![step(seg(P | A, 0, 100)), close, advance_s(5)]),
            ("abort", vec![send(100), Step::Abort { sock: 0 }, step(seg(A, 0, 0))]),
            ("keepalive", vec![Step::SetOption { sock: 0, which: 1, value: 100 }, advance_s(300)]),
            (
                "shrink-buffers",
                vec![Step::SetOption { sock: 0, which: 2, value: 64 }, step(seg(P | A, 0, 200))],
            ),
            (
                "time-wait-reopen",
                vec![
                    sd,
                    step(seg(F | A, 0, 0)),
                    step(SegmentSpec { mode: 1, seq_off: 10000, ..seg(S, 0, 0) }),
                ],
            ),
        ],
        StackTarget::Listen => {
            let accept = Step::Accept;
            let mut flood: Vec<Step> =
                (1..=24).map(|p| step(SegmentSpec { mode: 1, port: p, ..seg(S, 0, 0) })).collect();
            flood.push(advance_s(5));
            let mut queue_full = Vec::new();
            for p in 1..=7 {
                queue_full.extend(handshake(p));
            }
            queue_full.push(accept);
            vec![
                ("handshake-data-close", {
                    let mut v = handshake(0).to_vec();
                    v.extend([accept, step(seg(P | A, 0, 100)), recv, Step::Close { sock: 0 }]);
                    v.extend([step(seg(F | A, 0, 0)), advance_s(70)]);
                    v
                }),
                ("syn-flood", flood),
                ("accept-queue-full", queue_full),
                ("rst-to-listener", vec![step(SegmentSpec { mode: 1, ..seg(R, 0, 0) })]),
                ("ack-to-listener", vec![step(SegmentSpec { mode: 1, ..seg(A, 0, 0) })]),
                ("data-to-listener", vec![step(SegmentSpec { mode: 1, ..seg(P, 0, 10) })]),
                ("syn-then-rst", vec![handshake(0)[0], step(seg(R, 0, 0))]),
                ("syn-ack-retransmitted", vec![handshake(0)[0], advance_s(5), advance_s(200)]),
                (
                    "syn-with-data",
                    vec![step(SegmentSpec { mode: 1, ..seg(S, 0, 100) }), step(seg(A, 0, 0)), accept, recv],
                ),
                ("syn-retransmitted", vec![handshake(0)[0], handshake(0)[0]]),
                ("other-port-closed", vec![step(SegmentSpec { mode: 1, port: 50, ..seg(S, 0, 0) })]),
                ("v6-handshake", {
                    let [a, b] = handshake(0);
                    let v6 = |s: Step| match s {
                        Step::Segment(x) => Step::Segment(SegmentSpec { mode: x.mode | 0x10, ..x }),
                        o => o,
                    };
                    vec![v6(a), v6(b), accept, send(100)]
                }),
                ("peer-closes-unaccepted", {
                    let mut v = handshake(0).to_vec();
                    v.extend([
                        step(seg(F | A, 0, 0)),
                        accept,
                        recv,
                        Step::Close { sock: 0 },
                        step(seg(A, 0, 0)),
                    ]);
                    v
                }),
            ]
        }
    }
}

/// The seed inputs of a stack target: each scenario under a few configurations, named
/// `<scenario>-<setup bytes in hex>`.
pub fn seed_inputs(target: StackTarget) -> Vec<(String, Vec<u8>)> {
    let setups = [
        Setup::default(),
        Setup { linux_like: true, no_delayed_ack: true, ..Setup::default() },
        Setup { small_buffers: true, nodelay: true, ..Setup::default() },
        Setup { ipv6: true, no_sack: true, no_timestamps: true, ..Setup::default() },
        Setup {
            active_open: true,
            bare_syn: true,
            no_window_scale: true,
            small_mtu: true,
            ..Setup::default()
        },
    ];
    let mut out = Vec::new();
    for (name, steps) in seed_scenarios(target) {
        for setup in setups {
            if target == StackTarget::Listen && (setup.active_open || setup.ipv6) {
                continue; // no meaning for a listener alone
            }
            let input = StackInput { setup, steps: steps.clone() };
            let [a, b] = setup.to_bytes();
            out.push((format!("{name}-{a:02x}{b:02x}"), input.encode()));
        }
    }
    out
}

/// `pcap_reader`: `data` as a capture file through the reader (keep going past errors) and the
/// flow splitter. Errors are fine; panics and hangs are not. Every error names its file.
pub fn pcap_reader(data: &[u8]) {
    let reader = crate::capture::CaptureReader::from_bytes("fuzz.pcap", data.to_vec());
    let Ok(all) = reader.read_all(true) else { return };
    if let Some(e) = &all.error {
        assert!(e.to_string().starts_with("fuzz.pcap"), "error does not name the file: {e}");
    }
    let flows = crate::capture::flows::split(&all.records);
    let _ = flows;
}

/// `script_parser`: `data` as a packetdrill-dialect script (UTF-8; other bytes are refused
/// before the parser). The parser never panics, and its errors point at a line of the text.
/// A script that parses is also run against a stack (at most 200 events): the executor reports
/// failures, but neither it nor the stack may panic.
pub fn script_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match crate::script::parse_script("fuzz.pkt", text) {
        Err(e) => {
            let lines = text.split('\n').count().max(1);
            assert!(e.line >= 1 && e.line <= lines, "error at line {} of {lines}: {e}", e.line);
            assert!(e.col >= 1, "error at column 0: {e}");
        }
        Ok(script) => {
            if script.events.len() <= 200 {
                let out = crate::script::run(&script);
                // The executor reports a panic of the stack (or of itself) with this prefix; the
                // rest of its messages may quote the script, which can say anything.
                if let Some(f) = &out.failure {
                    assert!(!f.got.starts_with("the stack panicked"), "line {}: {}", f.line, f.got);
                }
            }
        }
    }
}
