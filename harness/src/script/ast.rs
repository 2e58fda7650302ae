//! The parsed form of a packetdrill-dialect script: header options and timed events.
//!
//! Times are microseconds; sequence numbers are kept as the script wrote them (relative), the
//! executor rebases them. Must not depend on: the stack, files, clocks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A whole script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Where it came from, for messages.
    pub path: String,
    /// Header options (`--name=value` lines).
    pub options: ScriptOptions,
    /// The timed lines, in file order.
    pub events: Vec<Event>,
}

/// Which `utcp::Config` a script runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `Config::linux_like()` (the default).
    Linux,
    /// `Config::default()`: the RFCs' recommendations.
    Default,
}

/// Which IP a script runs over (packetdrill's `--ip_version`; its `run_all.py` runs every script
/// of its suite in all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpVersion {
    /// `ipv4`: IPv4 sockets, IPv4 on the wire.
    V4,
    /// `ipv4-mapped-ipv6`: IPv6 sockets given IPv4-mapped addresses (`::ffff:a.b.c.d`, RFC 4291
    /// §2.5.5.2), IPv4 on the wire.
    V4MappedV6,
    /// `ipv6`: IPv6 sockets, IPv6 on the wire.
    V6,
}

impl IpVersion {
    /// All three, in the order `run_all.py` runs them.
    pub const ALL: [IpVersion; 3] = [IpVersion::V4, IpVersion::V4MappedV6, IpVersion::V6];

    /// packetdrill's spelling.
    pub fn name(self) -> &'static str {
        match self {
            IpVersion::V4 => "ipv4",
            IpVersion::V4MappedV6 => "ipv4-mapped-ipv6",
            IpVersion::V6 => "ipv6",
        }
    }

    /// From packetdrill's spelling.
    pub fn from_name(name: &str) -> Option<IpVersion> {
        IpVersion::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Whether packets on the wire are IPv6.
    pub fn wire_is_v6(self) -> bool {
        self == IpVersion::V6
    }

    /// Whether `run_all.py` runs a script of this file name in this version: a name ending in
    /// `v6.pkt` only over IPv6, one ending in `v4.pkt` never over IPv6.
    pub fn runs_file(self, name: &str) -> bool {
        match self {
            IpVersion::V6 => !name.ends_with("v4.pkt"),
            IpVersion::V4 | IpVersion::V4MappedV6 => !name.ends_with("v6.pkt"),
        }
    }

    /// The addresses `run_all.py` gives this version: (local, remote).
    pub fn run_all_addresses(self) -> (IpAddr, IpAddr) {
        match self {
            IpVersion::V4 | IpVersion::V4MappedV6 => {
                (Ipv4Addr::new(192, 168, 0, 1).into(), Ipv4Addr::new(192, 0, 2, 1).into())
            }
            IpVersion::V6 => (
                Ipv6Addr::new(0xfd3d, 0x0a0b, 0x17d6, 0, 0, 0, 0, 1).into(),
                Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0, 0, 0, 0, 1).into(),
            ),
        }
    }

    /// The MTU `run_all.py` gives this version when a script sets none: 1520 over IPv6, so
    /// that the MSS is 1460 as over IPv4 with 1500.
    pub fn run_all_mtu(self) -> Option<usize> {
        self.wire_is_v6().then_some(1520)
    }
}

impl fmt::Display for IpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Header options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOptions {
    /// How far an outbound packet's time may be from the script's, in microseconds.
    pub tolerance_usecs: u64,
    /// The configuration profile.
    pub profile: Profile,
    /// Which IP the script runs over.
    pub ip_version: IpVersion,
    /// The stack's address on the wire (IPv4 unless `ip_version` is [`IpVersion::V6`]).
    pub local_ip: IpAddr,
    /// The scripted peer's address on the wire.
    pub remote_ip: IpAddr,
    /// The link MTU, if the script sets one.
    pub mtu: Option<usize>,
    /// `--strict_segments`: each `>` line is exactly one wire segment (packetdrill otherwise
    /// lets one line cover several consecutive segments).
    pub strict_segments: bool,
    /// `--tcp_ts_tick_usecs=N`: the stack's TS val must advance one tick per N microseconds of
    /// script time (checked against the `>` line's value, within the tolerance).
    pub tcp_ts_tick_usecs: Option<u64>,
    /// `--mss=N`: the MSS of the scripted peer's path (packetdrill uses it for its own packets;
    /// utcp's stack is not told).
    pub mss: Option<u16>,
    /// A `>` line may come late by an eighth of its delay after the event before it, besides
    /// the tolerance: the Linux kernel's timer wheel rounds a timeout of 64 jiffies or more up
    /// to a step of at most an eighth of it (the kernel backend sets this; utcp's timers are
    /// exact).
    pub timer_wheel_slack: bool,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        ScriptOptions {
            tolerance_usecs: 4_000,
            profile: Profile::Linux,
            ip_version: IpVersion::V4,
            local_ip: Ipv4Addr::new(192, 168, 0, 1).into(),
            remote_ip: Ipv4Addr::new(192, 0, 2, 1).into(),
            mtu: None,
            strict_segments: false,
            tcp_ts_tick_usecs: None,
            mss: None,
            timer_wheel_slack: false,
        }
    }
}

impl ScriptOptions {
    /// The options `run_all.py`'s command line gives a script run over `version`: its
    /// addresses and, over IPv6, its MTU (a script's own header options come on top).
    pub fn run_all(version: IpVersion) -> ScriptOptions {
        let (local_ip, remote_ip) = version.run_all_addresses();
        ScriptOptions {
            ip_version: version,
            local_ip,
            remote_ip,
            mtu: version.run_all_mtu(),
            ..Default::default()
        }
    }

    /// How a socket call names `ip` (the wire address) and `port`: the address itself, or its
    /// IPv4-mapped IPv6 form under [`IpVersion::V4MappedV6`].
    pub fn socket_addr(&self, ip: IpAddr, port: u16) -> SocketAddr {
        match (self.ip_version, ip) {
            (IpVersion::V4MappedV6, IpAddr::V4(v4)) => SocketAddr::new(v4.to_ipv6_mapped().into(), port),
            _ => SocketAddr::new(ip, port),
        }
    }

    /// The stack's side as its socket calls name it.
    pub fn local_socket(&self, port: u16) -> SocketAddr {
        self.socket_addr(self.local_ip, port)
    }

    /// The peer's side as the stack's socket calls name it.
    pub fn remote_socket(&self, port: u16) -> SocketAddr {
        self.socket_addr(self.remote_ip, port)
    }
}

/// When an event happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// Seconds from the start of the script.
    Absolute(u64),
    /// After the previous event.
    Relative(u64),
    /// `*`: any time.
    Any,
    /// `a~b`: anywhere in the range; `relative` when written `+a~+b`.
    Range {
        /// Start, microseconds.
        lo: u64,
        /// End, microseconds.
        hi: u64,
        /// Whether both ends are relative to the previous event.
        relative: bool,
    },
}

/// One timed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 1-based line number.
    pub line: usize,
    /// The line as written, trimmed, comments removed.
    pub text: String,
    /// When.
    pub time: TimeSpec,
    /// For blocking calls written `t1...t2`: when the call is expected to return (absolute, or
    /// relative to the start when `true`).
    pub end_time: Option<(u64, bool)>,
    /// What.
    pub kind: EventKind,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A packet into (`<`) or out of (`>`) the stack.
    Packet(PacketSpec),
    /// A socket call and its expected result.
    Call(CallSpec),
    /// An ICMP message into the stack (`< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]`).
    Icmp(IcmpSpec),
    /// A shell line (`` `...` ``), read as the settings it makes.
    Shell(Vec<super::env::ShellCommand>),
    /// A Python block (`%{ ... }%`) of asserts on `tcpi_*` fields.
    Python(Vec<super::python::Assert>),
}

/// Which way a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `<`: injected into the stack.
    Inbound,
    /// `>`: expected from the stack.
    Outbound,
}

/// TCP flag bits as the script writes them (same values as the header's flag byte).
pub mod flag {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// Writes flags in the notation's order ([`utcp::wire::notation::Flags`]), `-` for none.
pub fn format_flags(flags: u8) -> String {
    let s = utcp::wire::notation::Flags(utcp::wire::TcpFlags(u16::from(flags))).to_string();
    if s.is_empty() {
        "-".to_string()
    } else {
        s
    }
}

/// A packet line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketSpec {
    /// `<` or `>`.
    pub direction: Direction,
    /// Flag bits.
    pub flags: u8,
    /// First sequence number (relative).
    pub seq: u32,
    /// Payload length.
    pub len: u32,
    /// `ack N`.
    pub ack: Option<u32>,
    /// `win N` (the raw header field).
    pub win: Option<u16>,
    /// `urg N`.
    pub urg: Option<u16>,
    /// The options; `None` when the line has none written.
    pub options: Option<OptionsSpec>,
    /// `port N` (a utcp extension, not packetdrill): the peer's port for this packet, so that
    /// one script can hold several connections (backlog tests). `None` is the script's peer.
    pub peer_port: Option<u16>,
    /// packetdrill's `[noecn]`, `[ect0]`, `[ect1]`, `[ect01]` or `[ce]` before the flags: the
    /// IP header's ECN field (RFC 3168 §5), set on a `<` line, checked on a `>` line; `None`
    /// sends Not-ECT and checks nothing.
    pub ecn: Option<EcnSpec>,
}

/// The ECN field a packet line names (packetdrill's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcnSpec {
    /// `noecn`: Not-ECT (00).
    NoEcn,
    /// `ect1`: ECT(1) (01).
    Ect1,
    /// `ect0`: ECT(0) (10).
    Ect0,
    /// `ect01`: either ECT codepoint (only on `>` lines).
    Ect01,
    /// `ce`: Congestion Experienced (11).
    Ce,
}

impl EcnSpec {
    /// From the word inside the brackets.
    pub fn from_word(w: &str) -> Option<Self> {
        Some(match w {
            "noecn" => EcnSpec::NoEcn,
            "ect1" => EcnSpec::Ect1,
            "ect0" => EcnSpec::Ect0,
            "ect01" => EcnSpec::Ect01,
            "ce" => EcnSpec::Ce,
            _ => return None,
        })
    }

    /// The word, as a script writes it.
    pub fn word(self) -> &'static str {
        match self {
            EcnSpec::NoEcn => "noecn",
            EcnSpec::Ect1 => "ect1",
            EcnSpec::Ect0 => "ect0",
            EcnSpec::Ect01 => "ect01",
            EcnSpec::Ce => "ce",
        }
    }

    /// Whether the two-bit field `ecn` is what this names.
    pub fn matches(self, ecn: u8) -> bool {
        match self {
            EcnSpec::Ect01 => ecn == 1 || ecn == 2,
            e => e.bits() == Some(ecn),
        }
    }

    /// The field to send, `None` for `ect01` (no single codepoint).
    pub fn bits(self) -> Option<u8> {
        match self {
            EcnSpec::NoEcn => Some(0),
            EcnSpec::Ect1 => Some(1),
            EcnSpec::Ect0 => Some(2),
            EcnSpec::Ect01 => None,
            EcnSpec::Ce => Some(3),
        }
    }

    /// The word for a two-bit field.
    pub fn of_bits(ecn: u8) -> &'static str {
        ["noecn", "ect1", "ect0", "ce"][usize::from(ecn & 3)]
    }
}

/// An inbound ICMPv4 line: type and code, the next-hop MTU, and the quoted TCP segment of ours
/// (its sequence number relative as in `>` lines; packetdrill's `[start:end(len)]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpSpec {
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// `mtu N`: the next-hop MTU (ICMP "fragmentation needed", RFC 1191, carries 16 bits;
    /// ICMPv6 "packet too big", RFC 8201, 32).
    pub mtu: Option<u32>,
    /// `[start:end(len)]`: the quoted segment's sequence number and length.
    pub quoted: Option<(u32, u32)>,
}

/// The options of a packet line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionsSpec {
    /// `<...>`: any options.
    Any,
    /// These options, in this order.
    List(Vec<TcpOptionSpec>),
}

/// One TCP option as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOptionSpec {
    /// `eol`.
    Eol,
    /// `nop`.
    Nop,
    /// `mss N`.
    Mss(u16),
    /// `wscale N`.
    WScale(u8),
    /// `sackOK`.
    SackOk,
    /// `sack a:b c:d` (relative to the ISN of the side whose data is acknowledged).
    Sack(Vec<(u32, u32)>),
    /// `TS val A ecr B`.
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// `FO [HEX]` (kind 34) or `FOEXP [HEX]` (kind 254, magic 0xF989): TCP Fast Open's cookie
    /// option (RFC 7413 §4.1.1); no cookie is a cookie request.
    FastOpen {
        /// The cookie's bytes (any length, as packetdrill lets a script send bad cookies).
        cookie: Vec<u8>,
        /// The experimental form.
        exp: bool,
    },
}

impl fmt::Display for TcpOptionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOptionSpec::Eol => f.write_str("eol"),
            TcpOptionSpec::Nop => f.write_str("nop"),
            TcpOptionSpec::Mss(m) => write!(f, "mss {m}"),
            TcpOptionSpec::WScale(w) => write!(f, "wscale {w}"),
            TcpOptionSpec::SackOk => f.write_str("sackOK"),
            TcpOptionSpec::Sack(blocks) => {
                f.write_str("sack")?;
                for (a, b) in blocks {
                    write!(f, " {a}:{b}")?;
                }
                Ok(())
            }
            TcpOptionSpec::Timestamp { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            TcpOptionSpec::FastOpen { cookie, exp } => {
                f.write_str(if *exp { "FOEXP" } else { "FO" })?;
                if !cookie.is_empty() {
                    f.write_str(" ")?;
                    for b in cookie {
                        write!(f, "{b:02x}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Formats an option list as `<a,b,c>`.
pub fn format_options(options: &[TcpOptionSpec]) -> String {
    let parts: Vec<String> = options.iter().map(|o| o.to_string()).collect();
    format!("<{}>", parts.join(","))
}

/// A socket call line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSpec {
    /// The call's name (`socket`, `write`, ...).
    pub name: String,
    /// Its arguments.
    pub args: Vec<Expr>,
    /// The expected return value.
    pub result: Expr,
    /// The expected errno name (`EAGAIN`), when the result is -1.
    pub errno: Option<String>,
}

/// An argument or result expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `...`: anything.
    Ellipsis,
    /// An integer.
    Int(i64),
    /// A symbol (`SOCK_STREAM`, `ECONNREFUSED`).
    Symbol(String),
    /// `A|B|C`.
    BitOr(Vec<Expr>),
    /// `[a, b]`.
    Array(Vec<Expr>),
    /// `{name=value, ...}`.
    Struct(Vec<(String, Expr)>),
    /// A quoted string.
    Str(String),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Ellipsis => f.write_str("..."),
            Expr::Int(n) => write!(f, "{n}"),
            Expr::Symbol(s) => f.write_str(s),
            Expr::BitOr(parts) => {
                let p: Vec<String> = parts.iter().map(|e| e.to_string()).collect();
                f.write_str(&p.join("|"))
            }
            Expr::Array(items) => {
                let p: Vec<String> = items.iter().map(|e| e.to_string()).collect();
                write!(f, "[{}]", p.join(", "))
            }
            Expr::Struct(fields) => {
                let p: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "{{{}}}", p.join(", "))
            }
            Expr::Str(s) => write!(f, "\"{s}\""),
        }
    }
}
