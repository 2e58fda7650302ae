//! The stack targets' input format: `Setup`, `SegmentSpec`, `Step`, `StackInput`, their
//! `Arbitrary` impls and `encode`/`decode`, and the constants the format refers to. Data only: it
//! must not depend on the runner or on the seeds.

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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use utcp::{Config, Duration};

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
    /// `connect` from port 8080 to the peer's port `REMOTE_PORT + port` (the main connection's
    /// family): a second, active connection, in SYN-SENT until segments with `port` answer it.
    Connect {
        /// The peer's port is `REMOTE_PORT + port`.
        port: u8,
    },
    /// An ICMP message to the stack, from the peer's address: an error quoting a TCP segment
    /// of 8080 to `REMOTE_PORT + port` with the sequence number `seq_off` from the last one the
    /// stack sent there, or an echo request.
    Icmp(IcmpSpec),
}

/// An ICMP message the peer sends (see [`Step::Icmp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IcmpSpec {
    /// Bits 0-2: 0 destination unreachable (code `value`), 1 fragmentation needed / packet too
    /// big (MTU `value`), 2 time exceeded, 3 parameter problem (pointer `value`), 4 echo request
    /// (`value % 64` data bytes), 5 an unreachable quoting a UDP datagram, 6 an error whose quote
    /// is cut to 4 transport bytes, 7 an unknown type `value`; bit 3: the other address family;
    /// bit 4: a broken ICMP checksum.
    pub kind: u8,
    /// The quoted segment's destination is `REMOTE_PORT + port`.
    pub port: u8,
    /// Added to the sequence number of the stack's latest segment to that port.
    pub seq_off: i16,
    /// Code, MTU, pointer or data length, by kind.
    pub value: u16,
}

/// The opcodes of [`Step::Connect`] (`0xe0..=0xef`) and [`Step::Icmp`] (`0xf0..=0xff`); the
/// other steps take the opcode modulo 16.
pub const OP_CONNECT: u8 = 0xe0;
/// See [`OP_CONNECT`].
pub const OP_ICMP: u8 = 0xf0;

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
/// every byte string decodes: opcodes from [`OP_CONNECT`] up are the connect and ICMP steps, the
/// others are taken modulo 16, and missing bytes read as zero.
impl<'a> Arbitrary<'a> for Step {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Step> {
        let op = byte(u);
        if op >= OP_ICMP {
            let kind = byte(u);
            let port = byte(u);
            return Ok(Step::Icmp(IcmpSpec { kind, port, seq_off: be16(u) as i16, value: be16(u) }));
        }
        if op >= OP_CONNECT {
            return Ok(Step::Connect { port: byte(u) });
        }
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
            Step::Connect { port } => out.extend([OP_CONNECT, port]),
            Step::Icmp(i) => {
                out.extend([OP_ICMP, i.kind, i.port]);
                out.extend((i.seq_off as u16).to_be_bytes());
                out.extend(i.value.to_be_bytes());
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
