//! The packetdrill-dialect parser: text in, [`Script`] out, or an error naming file, line and
//! column and what was expected there.
//!
//! Comments (`//` to the end of the line, `/* ... */` across lines) are blanked first, keeping
//! every other character where it was so that columns stay true. Python blocks (`%{ ... }%`) and
//! shell lines (`` `cmd` ``) are refused, never skipped. Must not depend on: the stack, files.

use super::ast::*;
use std::fmt;
use std::net::IpAddr;

/// A parse error: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The script's path as given.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What was wrong or expected.
    pub message: String,
    /// When the script is well formed but uses a feature utcp does not have: its name. The
    /// script is then refused, not failed.
    pub feature: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.feature {
            Some(feature) => write!(f, "{}:{}:{}: refused: {feature}", self.path, self.line, self.col),
            None => write!(f, "{}:{}:{}: {}", self.path, self.line, self.col, self.message),
        }
    }
}

/// A feature the dialect does not have, as a positioned message: `(col, "refused: FEATURE")`.
/// [`parse_script`] turns the prefix into [`ParseError::feature`].
fn refused<T>(col: usize, feature: impl fmt::Display) -> PResult<T> {
    Err((col, format!("{REFUSED}{feature}")))
}

const REFUSED: &str = "refused: ";

/// Blocks found while blanking comments: shell lines and Python blocks, by the line and column
/// where they start.
#[derive(Debug, Default)]
struct Blocks {
    shell: Vec<(usize, usize, String)>,
    python: Vec<(usize, usize, String)>,
}

impl std::error::Error for ParseError {}

/// The system calls the executor makes (others parse, and are refused where they run).
pub const CALLS: &[&str] = &[
    "socket",
    "bind",
    "listen",
    "accept",
    "connect",
    "write",
    "send",
    "read",
    "recv",
    "shutdown",
    "close",
    "setsockopt",
    "getsockopt",
    "fcntl",
    "poll",
    "sendto",
    "sendmsg",
    "recvmsg",
    "recvfrom",
    "ioctl",
];

/// Parses a whole script over IPv4, as packetdrill with `run_all.py`'s IPv4 command line.
/// `path` is used in messages only.
pub fn parse_script(path: &str, text: &str) -> Result<Script, ParseError> {
    parse_script_as(path, text, IpVersion::V4)
}

/// Parses a whole script as `run_all.py` runs it over `version`: its addresses, MTU and `-D`
/// definitions ([`run_all_defines`]) first, the script's own header options on top.
pub fn parse_script_as(path: &str, text: &str, version: IpVersion) -> Result<Script, ParseError> {
    parse_inner(path, text, ScriptOptions::run_all(version), None)
}

/// The `-D NAME=VALUE` definitions packetdrill's `run_all.py` gives every IPv4 script of its
/// suite: `TFO_COOKIE` is the Fast Open cookie a Linux server with `defaults.sh`'s key gives
/// 192.0.2.1 for 192.168.0.1.
pub const RUN_ALL_DEFINES: &[(&str, &str)] = &[
    ("TFO_COOKIE", "3021b9d889017eeb"),
    ("CODE", "host_unreachable"),
    ("CMSG_LEVEL_IP", "SOL_IP"),
    ("CMSG_TYPE_RECVERR", "IP_RECVERR"),
];

/// What `run_all.py` defines over IPv6: the cookie for fd3d:fa7b:d17d::1 from
/// fd3d:a0b:17d6::1, and no `CODE` (its scripts that use one are IPv4's).
const RUN_ALL_DEFINES_V6: &[(&str, &str)] = &[
    ("TFO_COOKIE", "c1d1e9742a47a9bc"),
    ("CMSG_LEVEL_IP", "SOL_IPV6"),
    ("CMSG_TYPE_RECVERR", "IPV6_RECVERR"),
];

/// What `run_all.py` defines over IPv4-mapped IPv6: IPv4's cookie and code, IPv6's cmsg names.
const RUN_ALL_DEFINES_MAPPED: &[(&str, &str)] = &[
    ("TFO_COOKIE", "3021b9d889017eeb"),
    ("CODE", "host_unreachable"),
    ("CMSG_LEVEL_IP", "SOL_IPV6"),
    ("CMSG_TYPE_RECVERR", "IPV6_RECVERR"),
];

/// The `-D` definitions `run_all.py` gives a script run over `version`.
pub fn run_all_defines(version: IpVersion) -> &'static [(&'static str, &'static str)] {
    match version {
        IpVersion::V4 => RUN_ALL_DEFINES,
        IpVersion::V4MappedV6 => RUN_ALL_DEFINES_MAPPED,
        IpVersion::V6 => RUN_ALL_DEFINES_V6,
    }
}

/// Replaces each whole word `NAME` of `defines` in a line by its value, as packetdrill's `-D`.
fn substitute(line: &str, defines: &[(&str, &str)]) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find(word) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find(|c: char| !word(c)).unwrap_or(tail.len());
        let w = &tail[..end];
        out.push_str(defines.iter().find(|(n, _)| *n == w).map_or(w, |(_, v)| v));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// [`parse_script`] with these `-D` definitions instead of [`RUN_ALL_DEFINES`].
pub fn parse_script_with(path: &str, text: &str, defines: &[(&str, &str)]) -> Result<Script, ParseError> {
    parse_inner(path, text, ScriptOptions::default(), Some(defines))
}

/// Parses with `base` before the header options; `defines` `None` takes `run_all.py`'s for the
/// version the header ends with.
fn parse_inner(
    path: &str,
    text: &str,
    base: ScriptOptions,
    defines: Option<&[(&str, &str)]>,
) -> Result<Script, ParseError> {
    let mut blocks = Blocks::default();
    let cleaned = strip_comments(path, text, &mut blocks)?;
    let mut options = base;
    let mut header = Header::default();
    let mut events = Vec::new();
    let lines: Vec<&str> = cleaned.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let mk = |col: usize, message: String| {
            let (message, feature) = match message.strip_prefix(REFUSED) {
                Some(f) => (message.clone(), Some(f.to_string())),
                None => (message, None),
            };
            ParseError { path: path.to_string(), line: lineno, col, message, feature }
        };
        let mut line = lines[i].to_string();
        i += 1;
        let shell = blocks.shell.iter().find(|b| b.0 == lineno);
        let python = blocks.python.iter().find(|b| b.0 == lineno);
        if line.trim().is_empty() && shell.is_none() && python.is_none() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if line.trim_start().starts_with("--") {
            if !events.is_empty() {
                return Err(mk(
                    indent + 1,
                    "header options (--name=value) must come before the first event".into(),
                ));
            }
            header.line = lineno;
            parse_header_option(line.trim_end(), indent, &mut options, &mut header)
                .map_err(|(col, m)| mk(col, m))?;
            continue;
        }
        header.finish(&options, path)?;
        // A call may span lines (`poll([{...},\n {...}], 1, 0) = 1`): join until balanced.
        while unbalanced(&line) && i < lines.len() && !blocks.shell.iter().any(|b| b.0 == i + 1) {
            line.push(' ');
            line.push_str(lines[i]);
            i += 1;
        }
        if shell.is_none() && python.is_none() {
            line = substitute(&line, defines.unwrap_or_else(|| run_all_defines(options.ip_version)));
        }
        let mut p = LineParser { s: &line, pos: 0, v6: options.ip_version.wire_is_v6() };
        let event = if let Some((_, col, text)) = shell.or(python) {
            let is_shell = shell.is_some();
            let time =
                if p.at_end() { TimeSpec::Relative(0) } else { p.time().map_err(|(c, m)| mk(c, m))? };
            if !p.at_end() {
                return Err(mk(
                    p.col(),
                    format!("expected end of line after the block, found {}", p.found()),
                ));
            }
            let kind = if is_shell {
                EventKind::Shell(
                    super::env::parse_shell(text).map_err(|f| mk(*col, format!("{REFUSED}{f}")))?,
                )
            } else {
                EventKind::Python(
                    super::python::parse_block(text).map_err(|f| mk(*col, format!("{REFUSED}{f}")))?,
                )
            };
            let first = text.lines().next().unwrap_or_default().trim();
            let text = if is_shell { format!("`{first}`") } else { format!("%{{ {first} }}%") };
            Event { line: lineno, text, time, end_time: None, kind }
        } else {
            p.event(lineno).map_err(|(col, m)| mk(col, m))?
        };
        events.push(event);
    }
    header.finish(&options, path)?;
    Ok(Script { path: path.to_string(), options, events })
}

/// What the header options said about addresses, checked once they are all read.
#[derive(Debug, Default)]
struct Header {
    /// The line of the header option being read.
    line: usize,
    /// Where the script named its own `--local_ip` and `--remote_ip` (line, column of the value).
    local_at: Option<(usize, usize)>,
    remote_at: Option<(usize, usize)>,
    checked: bool,
}

impl Header {
    /// Once the header options are read (the first time it is called), each address must be
    /// of the wire's family: IPv6 under `--ip_version=ipv6`, IPv4 else. The error is on the
    /// option that named the address (or the last header option, for a default one).
    fn finish(&mut self, o: &ScriptOptions, path: &str) -> Result<(), ParseError> {
        if std::mem::replace(&mut self.checked, true) {
            return Ok(());
        }
        for (name, ip, at) in
            [("local_ip", o.local_ip, self.local_at), ("remote_ip", o.remote_ip, self.remote_at)]
        {
            if ip.is_ipv6() != o.ip_version.wire_is_v6() {
                let family = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
                let (line, col) = at.unwrap_or((self.line.max(1), 1));
                return Err(ParseError {
                    path: path.to_string(),
                    line,
                    col,
                    feature: None,
                    message: format!(
                        "--{name}={ip} is an {family} address, but the script runs over {} \
                         (--ip_version={} for the other)",
                        o.ip_version,
                        if ip.is_ipv6() { "ipv6" } else { "ipv4" }
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Whether a line opens more `(`, `[` or `{` than it closes (outside strings).
fn unbalanced(line: &str) -> bool {
    let mut depth = 0i32;
    let mut in_str = false;
    for c in line.chars() {
        match c {
            '"' => in_str = !in_str,
            '(' | '[' | '{' if !in_str => depth += 1,
            ')' | ']' | '}' if !in_str => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// Writes `ch` blanked (a space, or the newline it is) and moves the position past it.
fn blank(ch: char, out: &mut String, line: &mut usize, col: &mut usize) {
    if ch == '\n' {
        out.push('\n');
        *line += 1;
        *col = 1;
    } else {
        out.push(' ');
        *col += 1;
    }
}

/// Blanks comments, keeping newlines and columns; takes shell lines and Python blocks out into
/// `blocks`, blanking them too.
fn strip_comments(path: &str, text: &str, blocks: &mut Blocks) -> Result<String, ParseError> {
    let bytes: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let (mut line, mut col) = (1usize, 1usize);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < bytes.len() && bytes[i] != '\n' {
                out.push(' ');
                i += 1;
                col += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let (start_line, start_col) = (line, col);
            out.push_str("  ");
            i += 2;
            col += 2;
            loop {
                if i >= bytes.len() {
                    return Err(ParseError {
                        path: path.into(),
                        line: start_line,
                        col: start_col,
                        message: "unterminated /* comment".into(),
                        feature: None,
                    });
                }
                if bytes[i] == '*' && bytes.get(i + 1) == Some(&'/') {
                    out.push_str("  ");
                    i += 2;
                    col += 2;
                    break;
                }
                blank(bytes[i], &mut out, &mut line, &mut col);
                i += 1;
            }
            continue;
        }
        let python = c == '%' && next == Some('{');
        if python || c == '`' {
            let (start_line, start_col) = (line, col);
            let (open, close): (usize, &[char]) = if python { (2, &['}', '%']) } else { (1, &['`']) };
            let mut j = i + open;
            let mut body = String::new();
            while j < bytes.len() && !bytes[j..].starts_with(close) {
                body.push(bytes[j]);
                j += 1;
            }
            if j >= bytes.len() {
                let what = if python {
                    "unterminated Python block (%{ without }%)"
                } else {
                    "unterminated shell line (` without `)"
                };
                return Err(ParseError { path: path.into(), line, col, message: what.into(), feature: None });
            }
            let end = j + close.len();
            for &ch in &bytes[i..end] {
                blank(ch, &mut out, &mut line, &mut col);
            }
            i = end;
            let list = if python { &mut blocks.python } else { &mut blocks.shell };
            list.push((start_line, start_col, body));
            continue;
        }
        out.push(c);
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
        i += 1;
    }
    Ok(out)
}

type PResult<T> = Result<T, (usize, String)>;

/// The header options that take a value.
const VALUED_OPTIONS: &[&str] =
    &["tolerance_usecs", "profile", "local_ip", "remote_ip", "ip_version", "mtu", "tcp_ts_tick_usecs", "mss"];

fn parse_header_option(
    line: &str,
    indent: usize,
    options: &mut ScriptOptions,
    header: &mut Header,
) -> PResult<()> {
    let body = &line[indent + 2..];
    if body.trim() == "strict_segments" {
        options.strict_segments = true;
        return Ok(());
    }
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n.trim(), v.trim()),
        None if body.trim().chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !VALUED_OPTIONS.contains(&body.trim()) =>
        {
            return refused(indent + 1, format!("header option --{}", body.trim()))
        }
        None => return Err((indent + 1, format!("expected --name=value, found `{}`", line.trim()))),
    };
    let vcol = indent + 3 + body.find('=').unwrap_or(0) + 1;
    match name {
        "tolerance_usecs" => {
            options.tolerance_usecs = value
                .parse()
                .map_err(|_| (vcol, format!("expected a number of microseconds, found `{value}`")))?;
        }
        "profile" => {
            options.profile = match value {
                "linux" => Profile::Linux,
                "default" => Profile::Default,
                _ => return Err((vcol, format!("expected profile `linux` or `default`, found `{value}`"))),
            };
        }
        "local_ip" | "remote_ip" => {
            let ip: IpAddr = value
                .parse()
                .map_err(|_| (vcol, format!("expected an IPv4 or IPv6 address, found `{value}`")))?;
            if ip.is_unspecified() || ip.is_multicast() {
                return Err((vcol, format!("--{name}={value} is not a unicast address")));
            }
            let at = Some((header.line, vcol));
            if name == "local_ip" {
                options.local_ip = ip;
                header.local_at = at;
            } else {
                options.remote_ip = ip;
                header.remote_at = at;
            }
        }
        "ip_version" => {
            let Some(v) = IpVersion::from_name(value) else {
                return Err((vcol, format!("expected ipv4, ipv4-mapped-ipv6 or ipv6, found `{value}`")));
            };
            // The other family's addresses and MTU follow, unless the script named them.
            if v.wire_is_v6() != options.ip_version.wire_is_v6() {
                let (local, remote) = v.run_all_addresses();
                if header.local_at.is_none() {
                    options.local_ip = local;
                }
                if header.remote_at.is_none() {
                    options.remote_ip = remote;
                }
                if options.mtu == options.ip_version.run_all_mtu() {
                    options.mtu = v.run_all_mtu();
                }
            }
            options.ip_version = v;
        }
        "tcp_ts_tick_usecs" => {
            let v: u64 = value
                .parse()
                .map_err(|_| (vcol, format!("expected a number of microseconds, found `{value}`")))?;
            options.tcp_ts_tick_usecs = (v > 0).then_some(v);
        }
        "mss" => {
            options.mss = Some(
                value.parse().map_err(|_| (vcol, format!("expected an MSS in bytes, found `{value}`")))?,
            );
        }
        "mtu" => {
            let mtu: usize =
                value.parse().map_err(|_| (vcol, format!("expected an MTU in bytes, found `{value}`")))?;
            if !(576..=65535).contains(&mtu) {
                return Err((vcol, format!("MTU {mtu} is outside 576..=65535")));
            }
            options.mtu = Some(mtu);
        }
        _ => return refused(indent + 3, format!("header option --{name}")),
    }
    Ok(())
}

/// A cursor over one line. Columns in errors are 1-based.
struct LineParser<'a> {
    s: &'a str,
    pos: usize,
    /// Whether the wire is IPv6 (ICMP lines are ICMPv6's then).
    v6: bool,
}

impl<'a> LineParser<'a> {
    fn col(&self) -> usize {
        self.s[..self.pos].chars().count() + 1
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.rest().is_empty()
    }

    fn found(&self) -> String {
        let r = self.rest().trim_start();
        if r.is_empty() {
            "end of line".into()
        } else {
            let w: String = r.chars().take_while(|c| !c.is_whitespace()).take(20).collect();
            format!("`{w}`")
        }
    }

    fn fail<T>(&mut self, expected: &str) -> PResult<T> {
        self.skip_ws();
        Err((self.col(), format!("expected {expected}, found {}", self.found())))
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &str, what: &str) -> PResult<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            self.fail(what)
        }
    }

    /// Eats `word` only when it is a whole word.
    fn eat_word(&mut self, word: &str) -> bool {
        self.skip_ws();
        let r = self.rest();
        if r.starts_with(word) && !r[word.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let r = self.rest();
        let n = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(r.len());
        if n == 0 || r.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        self.pos += n;
        Some(&r[..n])
    }

    /// A decimal unsigned integer.
    fn uint(&mut self, what: &str) -> PResult<u64> {
        self.skip_ws();
        let r = self.rest();
        let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if n == 0 {
            return self.fail(what);
        }
        let col = self.col();
        let v = r[..n].parse::<u64>().map_err(|_| (col, format!("number `{}` is too large", &r[..n])))?;
        self.pos += n;
        Ok(v)
    }

    fn u32(&mut self, what: &str) -> PResult<u32> {
        let col = {
            self.skip_ws();
            self.col()
        };
        let v = self.uint(what)?;
        u32::try_from(v).map_err(|_| (col, format!("{v} does not fit in 32 bits")))
    }

    fn u16(&mut self, what: &str) -> PResult<u16> {
        let col = {
            self.skip_ws();
            self.col()
        };
        let v = self.uint(what)?;
        u16::try_from(v).map_err(|_| (col, format!("{v} does not fit in 16 bits")))
    }

    /// Seconds with an optional fraction (`1`, `0.1`, `.25`), as microseconds.
    fn seconds(&mut self) -> PResult<u64> {
        self.skip_ws();
        let col = self.col();
        let r = self.rest();
        let int_len = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        let mut len = int_len;
        let mut frac = "";
        if r[int_len..].starts_with('.') && r[int_len + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            let f = &r[int_len + 1..];
            let flen = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
            frac = &f[..flen];
            len = int_len + 1 + flen;
        }
        if int_len == 0 && frac.is_empty() {
            return self.fail("a time in seconds");
        }
        let secs: u64 = if int_len == 0 {
            0
        } else {
            r[..int_len].parse().map_err(|_| (col, "time is too large".to_string()))?
        };
        let trimmed = frac.trim_end_matches('0');
        if trimmed.len() > 6 {
            return Err((col, format!("time `{}` is finer than a microsecond", &r[..len])));
        }
        let mut micros: u64 = 0;
        for (i, d) in trimmed.chars().enumerate() {
            micros += u64::from(d.to_digit(10).unwrap_or(0)) * 10u64.pow(5 - i as u32);
        }
        self.pos += len;
        secs.checked_mul(1_000_000)
            .and_then(|s| s.checked_add(micros))
            .ok_or((col, "time is too large".to_string()))
    }

    fn event(&mut self, line: usize) -> PResult<Event> {
        let text = self.s.trim().to_string();
        let time = self.time()?;
        let mut end_time = None;
        if self.eat("...") {
            let rel = self.eat("+");
            end_time = Some((self.seconds()?, rel));
        }
        self.skip_ws();
        let kind = match self.peek() {
            Some('<') | Some('>') => {
                if end_time.is_some() {
                    return self.fail("a system call after a `t1...t2` time");
                }
                let save = self.pos;
                let inbound = self.eat("<");
                if !inbound {
                    self.eat(">");
                }
                let col = self.col();
                if inbound && self.eat_word("icmp") {
                    EventKind::Icmp(self.icmp()?)
                } else if self.eat_word("icmp") {
                    return refused(col, "outbound ICMP lines (`> icmp`)");
                } else {
                    self.pos = save;
                    EventKind::Packet(self.packet()?)
                }
            }
            Some(c) if c.is_ascii_alphabetic() => EventKind::Call(self.call()?),
            _ => return self.fail("`<`, `>` or a system call"),
        };
        Ok(Event { line, text, time, end_time, kind })
    }

    fn time(&mut self) -> PResult<TimeSpec> {
        self.skip_ws();
        if self.eat("*") {
            return Ok(TimeSpec::Any);
        }
        let relative = self.eat("+");
        if !relative && !self.rest().starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return self.fail("a time (`0.1`, `+0.1`, `*` or `a~b`)");
        }
        let lo = self.seconds()?;
        if self.eat("~") {
            let plus_col = self.col();
            let rel_hi = self.eat("+");
            if rel_hi != relative {
                return Err((
                    plus_col,
                    "expected both ends of a time range absolute (`a~b`) or both relative (`+a~+b`)".into(),
                ));
            }
            let col = self.col();
            let hi = self.seconds()?;
            if hi < lo {
                return Err((col, "the end of a time range is before its start".into()));
            }
            return Ok(TimeSpec::Range { lo, hi, relative });
        }
        Ok(if relative { TimeSpec::Relative(lo) } else { TimeSpec::Absolute(lo) })
    }

    fn packet(&mut self) -> PResult<PacketSpec> {
        let direction = if self.eat("<") {
            Direction::Inbound
        } else {
            self.eat(">");
            Direction::Outbound
        };
        self.skip_ws();
        let col = self.col();
        if self.eat_word("udp") {
            return refused(col, "UDP packet lines");
        }
        let mut ecn = None;
        if self.peek() == Some('[') {
            let Some(end) = self.rest().find(']') else {
                return Err((col, "`[` without its `]`".into()));
            };
            let field = self.rest()[..=end].to_string();
            match EcnSpec::from_word(field[1..end].trim()) {
                Some(e) if e == EcnSpec::Ect01 && direction == Direction::Inbound => {
                    return Err((
                        col,
                        "`[ect01]` names no single codepoint to send: only on `>` lines".into(),
                    ));
                }
                Some(e) => {
                    ecn = Some(e);
                    self.pos += field.len();
                }
                None => return refused(col, format!("IP header fields (`{field}`)")),
            }
        }
        // Flags: one word of S F R P U E W and `.`.
        self.skip_ws();
        let start = self.pos;
        let mut flags = 0u8;
        // `-`: no flags at all.
        let no_flags = self.rest().starts_with("- ");
        if no_flags {
            self.pos += 1;
        }
        while let Some(c) = self.peek().filter(|_| !no_flags) {
            let bit = match c {
                'S' => flag::SYN,
                'F' => flag::FIN,
                'R' => flag::RST,
                'P' => flag::PSH,
                'U' => flag::URG,
                'E' => flag::ECE,
                'W' => flag::CWR,
                '.' => flag::ACK,
                c if c.is_whitespace() => break,
                _ => {
                    return Err((self.col(), format!("expected TCP flags (S F R P U E W .), found `{c}`")));
                }
            };
            if flags & bit != 0 {
                return Err((self.col(), format!("flag `{c}` given twice")));
            }
            flags |= bit;
            self.pos += 1;
        }
        if self.pos == start {
            return self.fail("TCP flags (S, S., ., P., F., R, R., ...)");
        }
        let seq = self.u32("a sequence range `start:end(len)`")?;
        self.expect(":", "`:` in `start:end(len)`")?;
        let end = self.u32("the end of `start:end(len)`")?;
        self.expect("(", "`(` in `start:end(len)`")?;
        let len_col = self.col();
        let len = self.u32("the length in `start:end(len)`")?;
        self.expect(")", "`)` in `start:end(len)`")?;
        if end.wrapping_sub(seq) != len {
            return Err((
                len_col,
                format!("length {len} does not match {seq}:{end} (end - start = {})", end.wrapping_sub(seq)),
            ));
        }
        let mut spec = PacketSpec {
            direction,
            flags,
            seq,
            len,
            ack: None,
            win: None,
            urg: None,
            options: None,
            peer_port: None,
            ecn,
        };
        loop {
            if self.at_end() {
                break;
            }
            let col = self.col();
            if self.eat_word("ack") {
                if spec.ack.is_some() {
                    return Err((col, "`ack` given twice".into()));
                }
                spec.ack = Some(self.u32("an acknowledgment number after `ack`")?);
            } else if self.eat_word("win") {
                if spec.win.is_some() {
                    return Err((col, "`win` given twice".into()));
                }
                spec.win = Some(self.u16("a window after `win` (0..=65535, the raw header field)")?);
            } else if self.eat_word("port") {
                if spec.peer_port.is_some() {
                    return Err((col, "`port` given twice".into()));
                }
                let c = self.col();
                let port = self.u16("the peer's port after `port`")?;
                if port == 0 {
                    return Err((c, "port 0 cannot be a peer's port".into()));
                }
                spec.peer_port = Some(port);
            } else if self.eat_word("urg") {
                spec.urg = Some(self.u16("an urgent pointer after `urg`")?);
            } else if self.eat("<") {
                if spec.options.is_some() {
                    return Err((col, "options given twice".into()));
                }
                spec.options = Some(self.options()?);
            } else {
                return self.fail("`ack N`, `win N`, `urg N`, `port N`, `<options>` or end of line");
            }
        }
        Ok(spec)
    }

    /// After `< icmp`: `TYPE [CODE] [mtu N] [[start:end(len)]]`, with ICMPv4's names or, over
    /// IPv6, ICMPv6's (RFC 4443), as packetdrill's icmp_packet.c spells them; `type_N` and
    /// `code_N` for any other.
    fn icmp(&mut self) -> PResult<IcmpSpec> {
        const UNREACHABLE: &[&str] = &[
            "net_unreachable",
            "host_unreachable",
            "protocol_unreachable",
            "port_unreachable",
            "frag_needed",
            "source_route_failed",
            "net_unknown",
            "host_unknown",
            "source_host_isolated",
            "net_prohibited",
            "host_prohibited",
            "net_unreachable_for_tos",
            "host_unreachable_for_tos",
            "packet_filtered",
            "precedence_violation",
            "precedence_cutoff",
        ];
        const V4_TYPES: &[(&str, u8, &[&str])] = &[
            ("unreachable", 3, UNREACHABLE),
            ("source_quench", 4, &[]),
            ("time_exceeded", 11, &[]),
            ("parameter_problem", 12, &[]),
        ];
        // ICMPv6's codes by value: `net_unreachable` is packetdrill's other name for `no_route`.
        const V6_UNREACHABLE: &[&str] =
            &["no_route", "admin_prohibited", "not_neighbour", "address_unreachable", "port_unreachable"];
        const V6_TYPES: &[(&str, u8, &[&str])] = &[
            ("unreachable", 1, V6_UNREACHABLE),
            ("packet_too_big", 2, &[]),
            ("time_exceeded", 3, &["exceeded_hop_limit", "exceeded_frag_time"]),
            ("parameter_problem", 4, &["header_field", "unknown_next_header", "unknown_option"]),
        ];
        let types = if self.v6 { V6_TYPES } else { V4_TYPES };
        let icmp = if self.v6 { "ICMPv6" } else { "ICMP" };
        self.skip_ws();
        let col = self.col();
        let Some(name) = self.ident() else {
            return self.fail("an ICMP type (unreachable, time_exceeded, ...)");
        };
        let numbered =
            |word: &str, prefix: &str| word.strip_prefix(prefix).and_then(|n| n.parse::<u8>().ok());
        let (icmp_type, codes) = match types.iter().find(|(n, _, _)| *n == name) {
            Some(&(_, t, codes)) => (t, codes),
            None => match numbered(name, "type_") {
                Some(t) => (t, &[][..]),
                None => return refused(col, format!("{icmp} type {name}")),
            },
        };
        let mut spec = IcmpSpec { icmp_type, code: 0, mtu: None, quoted: None };
        self.skip_ws();
        let save = self.pos;
        if let Some(code) = self.ident() {
            let alias = self.v6 && icmp_type == 1 && code == "net_unreachable";
            match codes.iter().position(|c| *c == code) {
                Some(i) => spec.code = i as u8,
                None if alias => spec.code = 0,
                None if code == "mtu" => self.pos = save,
                None => match numbered(code, "code_") {
                    Some(c) => spec.code = c,
                    None => return refused(col, format!("{icmp} code {code}")),
                },
            }
        }
        if self.eat_word("mtu") {
            // As packetdrill: an MTU only on the message that carries one (RFC 1191 §4, RFC 8201 §4).
            let (carries, which) = if self.v6 {
                ((icmp_type, spec.code) == (2, 0), "packet_too_big")
            } else {
                ((icmp_type, spec.code) == (3, 4), "unreachable frag_needed")
            };
            if !carries {
                return Err((col, format!("an {icmp} MTU is only valid for {which}")));
            }
            spec.mtu = Some(if self.v6 {
                self.u32("an MTU after `mtu`")?
            } else {
                u32::from(self.u16("a next-hop MTU after `mtu`")?)
            });
        }
        if self.eat("[") {
            let seq = self.u32("a quoted sequence range `[start:end(len)]`")?;
            self.expect(":", "`:` in `[start:end(len)]`")?;
            let end = self.u32("the end of `[start:end(len)]`")?;
            self.expect("(", "`(` in `[start:end(len)]`")?;
            let len = self.u32("the length in `[start:end(len)]`")?;
            self.expect(")", "`)` in `[start:end(len)]`")?;
            self.expect("]", "`]` after the quoted segment")?;
            if end.wrapping_sub(seq) != len {
                return Err((col, format!("length {len} does not match {seq}:{end}")));
            }
            spec.quoted = Some((seq, len));
        }
        if !self.at_end() {
            return self.fail("`mtu N`, `[start:end(len)]` or end of line");
        }
        Ok(spec)
    }

    /// After `<`: `...>` or a comma-separated list ending in `>`.
    fn options(&mut self) -> PResult<OptionsSpec> {
        if self.eat("...") {
            self.expect(">", "`>` after `<...`")?;
            return Ok(OptionsSpec::Any);
        }
        let mut list = Vec::new();
        if self.eat(">") {
            return Ok(OptionsSpec::List(list));
        }
        loop {
            self.skip_ws();
            let col = self.col();
            let name = match self.ident() {
                Some(n) => n,
                None => return self.fail("a TCP option (mss, sackOK, TS, nop, wscale, sack, eol)"),
            };
            let opt = match name {
                "nop" => TcpOptionSpec::Nop,
                "eol" => TcpOptionSpec::Eol,
                "sackOK" => TcpOptionSpec::SackOk,
                "mss" => TcpOptionSpec::Mss(self.u16("an MSS value")?),
                "wscale" => {
                    let c = self.col();
                    let v = self.uint("a window scale shift")?;
                    TcpOptionSpec::WScale(
                        u8::try_from(v).map_err(|_| (c, format!("wscale {v} does not fit in a byte")))?,
                    )
                }
                "TS" => {
                    if !self.eat_word("val") {
                        return self.fail("`val` after `TS`");
                    }
                    let val = self.u32("a TSval")?;
                    if !self.eat_word("ecr") {
                        return self.fail("`ecr` after `TS val N`");
                    }
                    let ecr = self.u32("a TSecr")?;
                    TcpOptionSpec::Timestamp { val, ecr }
                }
                "sack" => {
                    let mut blocks = Vec::new();
                    loop {
                        self.skip_ws();
                        if !self.rest().starts_with(|c: char| c.is_ascii_digit()) {
                            break;
                        }
                        let a = self.u32("a SACK block start")?;
                        self.expect(":", "`:` in a SACK block `start:end`")?;
                        let b = self.u32("a SACK block end")?;
                        blocks.push((a, b));
                    }
                    if blocks.len() > 4 {
                        return Err((col, "at most 4 SACK blocks fit in the options".into()));
                    }
                    TcpOptionSpec::Sack(blocks)
                }
                "FO" | "FOEXP" => {
                    // packetdrill: an even number of hex digits, as many bytes as the 40 bytes of
                    // options leave (38, or 36 in the experimental form).
                    self.skip_ws();
                    let r = self.rest();
                    let n = r.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(r.len());
                    let hex = &r[..n];
                    let exp = name == "FOEXP";
                    if hex.len() % 2 != 0 {
                        return Err((col, "TCP fast open cookie has an odd number of digits".into()));
                    }
                    if hex.len() / 2 > if exp { 36 } else { 38 } {
                        return Err((
                            col,
                            format!("TCP fast open cookie of {} bytes is too long", hex.len() / 2),
                        ));
                    }
                    let cookie = (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
                        .collect();
                    self.pos += n;
                    TcpOptionSpec::FastOpen { cookie, exp }
                }
                "md5" => return refused(col, "the TCP MD5 signature option (RFC 2385)"),
                other => return refused(col, format!("TCP option `{other}`")),
            };
            list.push(opt);
            if self.eat(">") {
                return Ok(OptionsSpec::List(list));
            }
            self.expect(",", "`,` or `>` in the option list")?;
        }
    }

    fn call(&mut self) -> PResult<CallSpec> {
        self.skip_ws();
        let col = self.col();
        let name = self.ident().unwrap_or_default().to_string();
        // A call the executor does not have is refused when its line is reached, so that a
        // script fails at an earlier line that does not hold rather than be refused for a later
        // one.
        if name.is_empty() {
            return Err((col, "expected a system call name".into()));
        }
        self.expect("(", &format!("`(` after `{name}`"))?;
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expr()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",", "`,` or `)` in the argument list")?;
            }
        }
        self.expect("=", "`=` and the expected result")?;
        let result = self.expr()?;
        let mut errno = None;
        self.skip_ws();
        if let Some(c) = self.peek() {
            if c.is_ascii_uppercase() {
                let e = self.ident().unwrap_or_default();
                errno = Some(e.to_string());
            }
        }
        if self.eat("(") {
            // Free text such as `(Resource temporarily unavailable)` or `(flags O_RDWR)`.
            let mut depth = 1;
            let open_col = self.col() - 1;
            while depth > 0 {
                match self.peek() {
                    None => return Err((open_col, "unclosed `(` after the result".into())),
                    Some(c) => {
                        if c == '(' {
                            depth += 1;
                        } else if c == ')' {
                            depth -= 1;
                        }
                        self.pos += c.len_utf8();
                    }
                }
            }
        }
        if !self.at_end() {
            return self.fail("end of line after the result");
        }
        if errno.is_some() && result != Expr::Int(-1) {
            return Err((col, "an errno is only expected with a result of -1".into()));
        }
        Ok(CallSpec { name, args, result, errno })
    }

    fn expr(&mut self) -> PResult<Expr> {
        let first = self.atom()?;
        if !matches!(first, Expr::Symbol(_) | Expr::Int(_)) {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.eat("|") {
            parts.push(self.atom()?);
        }
        Ok(if parts.len() == 1 { parts.pop().unwrap_or(Expr::Ellipsis) } else { Expr::BitOr(parts) })
    }

    fn atom(&mut self) -> PResult<Expr> {
        self.skip_ws();
        if self.eat("...") {
            return Ok(Expr::Ellipsis);
        }
        if self.eat("[") {
            let mut items = Vec::new();
            if self.eat("]") {
                return Ok(Expr::Array(items));
            }
            loop {
                items.push(self.expr()?);
                if self.eat("]") {
                    return Ok(Expr::Array(items));
                }
                self.expect(",", "`,` or `]`")?;
            }
        }
        if self.eat("{") {
            let mut fields = Vec::new();
            if self.eat("}") {
                return Ok(Expr::Struct(fields));
            }
            loop {
                // `{..., 1000}`: an iovec's fields by position (named "").
                let save = self.pos;
                let positional = match self.ident() {
                    None => true,
                    Some(_) => {
                        let eq = self.rest().trim_start().starts_with('=') || self.rest().starts_with('(');
                        self.pos = save;
                        !eq
                    }
                };
                if positional {
                    fields.push((String::new(), self.expr()?));
                    if self.eat("}") {
                        return Ok(Expr::Struct(fields));
                    }
                    self.expect(",", "`,` or `}`")?;
                    continue;
                }
                let Some(name) = self.ident() else {
                    return self.fail("a field name in `{name=value}`");
                };
                let mut name = name.to_string();
                // `msg_name(...)=...`: a field with an argument list, as packetdrill writes a
                // message's address.
                if self.eat("(") {
                    let arg = self.expr()?;
                    self.expect(")", "`)` after the field's argument")?;
                    name = format!("{name}({arg})");
                }
                self.expect("=", "`=` after the field name")?;
                fields.push((name, self.expr()?));
                if self.eat("}") {
                    return Ok(Expr::Struct(fields));
                }
                self.expect(",", "`,` or `}`")?;
            }
        }
        if self.eat("\"") {
            let r = self.rest();
            let Some(end) = r.find('"') else {
                return Err((self.col() - 1, "unterminated string".into()));
            };
            let s = r[..end].to_string();
            self.pos += end + 1;
            return Ok(Expr::Str(s));
        }
        let col = self.col();
        let neg = self.eat("-");
        let r = self.rest();
        if r.starts_with("0x") || r.starts_with("0X") {
            let h = &r[2..];
            let n = h.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(h.len());
            if n == 0 {
                return self.fail("hex digits after `0x`");
            }
            let v = i64::from_str_radix(&h[..n], 16).map_err(|_| (col, "number is too large".to_string()))?;
            self.pos += 2 + n;
            return Ok(Expr::Int(if neg { -v } else { v }));
        }
        if r.starts_with(|c: char| c.is_ascii_digit()) {
            let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            let v: i64 = r[..n].parse().map_err(|_| (col, "number is too large".to_string()))?;
            self.pos += n;
            return Ok(Expr::Int(if neg { -v } else { v }));
        }
        if neg {
            return self.fail("a number after `-`");
        }
        match self.ident() {
            Some(s) => Ok(Expr::Symbol(s.to_string())),
            None => self.fail("an argument (`...`, a number, a name, `[...]` or `{...}`)"),
        }
    }
}

#[cfg(test)]
mod tests;
