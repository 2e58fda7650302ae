//! The call lines of a script: the socket layer a script talks to (file descriptors, errno
//! results, blocking calls left pending, poll, setsockopt and getsockopt).

use super::*;
use utcp::config::CongestionKind;

/// Why a call line could not be checked: the script asked for something wrong (a failure), or for
/// something utcp does not have (a refusal, naming the feature).
#[derive(Debug)]
pub(crate) enum CallErr {
    /// The line does not hold.
    Fail(String),
    /// utcp lacks the feature named.
    Refused(String),
}

impl From<String> for CallErr {
    fn from(s: String) -> Self {
        CallErr::Fail(s)
    }
}

impl From<&str> for CallErr {
    fn from(s: &str) -> Self {
        CallErr::Fail(s.to_string())
    }
}

/// The socket options `setsockopt` sets.
const SETSOCKOPTS: &[&str] = &[
    "SO_REUSEADDR",
    "SO_REUSEPORT",
    "SO_LINGER",
    "SO_RCVBUF",
    "SO_SNDBUF",
    "TCP_NODELAY",
    "TCP_MAXSEG",
    "SO_KEEPALIVE",
    "TCP_KEEPIDLE",
    "TCP_KEEPINTVL",
    "TCP_KEEPCNT",
    "TCP_FASTOPEN",
    "TCP_FASTOPEN_CONNECT",
    "TCP_FASTOPEN_KEY",
    "TCP_SYNCNT",
    "TCP_CORK",
    "TCP_USER_TIMEOUT",
    "TCP_CONGESTION",
    "TCP_NOTSENT_LOWAT",
    "TCP_INQ",
];

/// packetdrill (find_by_script_fd, newest first): a new descriptor of a number the script still
/// holds open shadows the old one, which stays open out of reach: moved below -1000, where no
/// script number goes (and closed at the end with the rest).
pub(crate) fn shadow_fd<V>(fds: &mut std::collections::BTreeMap<i64, V>, n: i64) {
    if let Some(old) = fds.remove(&n) {
        let hidden = fds.keys().next().map_or(-1000, |k| (*k).min(-1000) - 1);
        fds.insert(hidden, old);
    }
}

/// The socket options `getsockopt` reads.
const GETSOCKOPTS: &[&str] = &[
    "SO_ERROR",
    "TCP_MAXSEG",
    "SO_SNDBUF",
    "SO_RCVBUF",
    "TCP_INFO",
    "TCP_CORK",
    "TCP_NODELAY",
    "TCP_USER_TIMEOUT",
    "TCP_NOTSENT_LOWAT",
    "TCP_INQ",
];

/// The value of a `POLL*` event name (poll.h), whichever executor reads it.
pub(crate) fn poll_bit(name: &str) -> Option<i64> {
    Some(match name {
        "POLLIN" => 0x1,
        "POLLPRI" => 0x2,
        "POLLOUT" => 0x4,
        "POLLERR" => 0x8,
        "POLLHUP" => 0x10,
        "POLLNVAL" => 0x20,
        "POLLRDNORM" => 0x40,
        "POLLRDBAND" => 0x80,
        "POLLWRNORM" => 0x100,
        "POLLWRBAND" => 0x200,
        "POLLRDHUP" => 0x2000,
        _ => return None,
    })
}

/// `TCP_INFO` state names (linux/tcp_states.h) as a `{tcpi_state=...}` field may write them:
/// the `TCP_*` states among the constants Python blocks know.
pub(crate) fn tcp_state_number(name: &str) -> Option<i64> {
    let state = name.starts_with("TCP_") && !name.starts_with("TCP_CA_");
    state.then(|| super::super::python::constant(name)).flatten()
}

/// The first line that asks for something utcp does not have, whatever the state it would run
/// in: a shell line's sysctl or command, a system call, a socket option or a send flag the
/// executor lacks. Such a script is refused before it runs, naming the feature, rather than
/// failed at an earlier line where the missing feature (TCP Fast Open, say) already shows.
pub(super) fn prescan(script: &Script) -> Option<Failure> {
    let mut config = config_for(&script.options);
    for e in &script.events {
        let feature = match &e.kind {
            EventKind::Shell(cmds) => cmds.iter().find_map(|c| match c {
                super::super::env::ShellCommand::Defaults => {
                    super::super::env::apply_defaults(&mut config);
                    None
                }
                super::super::env::ShellCommand::Sysctl(name, value) => {
                    super::super::env::apply_sysctl(&mut config, name, value, false).err()
                }
                _ => None,
            }),
            EventKind::Call(c) => {
                let c = match normalize(c) {
                    Ok(c) => c,
                    Err(CallErr::Refused(f)) => return refusal(e, f),
                    Err(CallErr::Fail(_)) => continue,
                };
                let option = || sym_arg(&c, 2).unwrap_or_default();
                match c.name.as_str() {
                    n if !super::super::parse::CALLS.contains(&n) && !n.starts_with("epoll_") => {
                        Some(format!("system call {n}"))
                    }
                    "setsockopt" if !SETSOCKOPTS.contains(&option().as_str()) => {
                        Some(format!("socket option {}", option()))
                    }
                    "getsockopt" if !GETSOCKOPTS.contains(&option().as_str()) => {
                        Some(format!("getsockopt of {}", option()))
                    }
                    "send" | "sendto" | "recv" | "recvfrom" => match msg_flags(c.args.get(3), &c.name) {
                        Err(CallErr::Refused(f)) => Some(f),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(f) = feature {
            return refusal(e, f);
        }
    }
    None
}

fn refusal(e: &Event, feature: String) -> Option<Failure> {
    Some(Failure {
        line: e.line,
        expected: e.text.clone(),
        got: format!("refused: {feature}"),
        refused: Some(feature),
    })
}

/// `sendmsg`/`recvmsg` as the `send`/`recv` they amount to (the iovec lengths added up), and
/// `write`/`send` of a NULL buffer as the EFAULT they get; other calls unchanged.
pub(crate) fn normalize(c: &CallSpec) -> Result<CallSpec, CallErr> {
    if c.name != "sendmsg" && c.name != "recvmsg" {
        return Ok(c.clone());
    }
    let Some(Expr::Struct(msg)) = c.args.get(1) else {
        return Err(
            format!("{}: expected a message {{msg_name(...)=..., msg_iov(N)=[...], ...}}", c.name).into()
        );
    };
    let mut total = 0i64;
    let mut control = Vec::new();
    for (name, value) in msg {
        match (name.as_str(), value) {
            (n, _) if n.starts_with("msg_name") => {}
            (n, Expr::Array(iovs)) if n.starts_with("msg_iov") => {
                for iov in iovs {
                    match iov {
                        Expr::Struct(f) => {
                            match f.iter().find(|(k, _)| k.is_empty() || k == "iov_len").map(|(_, v)| v) {
                                _ if f.len() == 2 => match &f[1].1 {
                                    Expr::Int(n) => total = total.saturating_add(*n),
                                    e => return Err(format!("{}: iovec length `{e}`", c.name).into()),
                                },
                                Some(Expr::Int(n)) => total = total.saturating_add(*n),
                                _ => {
                                    return Err(format!("{}: expected {{..., LEN}} in msg_iov", c.name).into())
                                }
                            }
                        }
                        e => {
                            return Err(
                                format!("{}: expected {{..., LEN}} in msg_iov, found {e}", c.name).into()
                            )
                        }
                    }
                }
            }
            ("msg_flags", Expr::Int(0)) | ("msg_flags", Expr::Ellipsis) => {}
            ("msg_flags", v) => return refused(format!("{} msg_flags {v}", c.name)),
            ("msg_control", Expr::Array(cmsgs)) if c.name == "recvmsg" => {
                for cmsg in cmsgs {
                    control.push(inq_cmsg(cmsg)?);
                }
            }
            ("msg_control", _) => return refused(format!("{} control messages (msg_control)", c.name)),
            (other, _) => return refused(format!("{} field {other}", c.name)),
        }
    }
    let name = if c.name == "sendmsg" { "send" } else { "recv" };
    let fd = c.args.first().cloned().unwrap_or(Expr::Ellipsis);
    let flags = c.args.get(2).cloned().unwrap_or(Expr::Int(0));
    let mut args = vec![fd, Expr::Ellipsis, Expr::Int(total), flags];
    // The control messages a recvmsg expects ride along as a fifth argument (see
    // `expected_inq`); a recv never has one.
    if let Some(inq) = control.pop() {
        args.push(Expr::Struct(vec![(TCP_CM_INQ.into(), inq)]));
    }
    Ok(CallSpec { name: name.into(), args, ..c.clone() })
}

/// The name a normalized `recvmsg` carries its expected `TCP_CM_INQ` value under.
pub(crate) const TCP_CM_INQ: &str = "TCP_CM_INQ";

/// One expected control message of a `recvmsg`: `{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ,
/// cmsg_data=N}` (Linux's TCP_INQ) gives N; any other is refused by name.
fn inq_cmsg(cmsg: &Expr) -> Result<Expr, CallErr> {
    let Expr::Struct(fields) = cmsg else {
        return Err(format!(
            "recvmsg: expected {{cmsg_level=..., cmsg_type=..., cmsg_data=...}} in msg_control, found {cmsg}"
        )
        .into());
    };
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    match (field("cmsg_level"), field("cmsg_type"), field("cmsg_data")) {
        (Some(Expr::Symbol(l)), Some(Expr::Symbol(t)), Some(data)) if l == "SOL_TCP" && t == TCP_CM_INQ => {
            Ok(data.clone())
        }
        (level, kind, _) => refused(format!(
            "recvmsg control message {}/{}",
            level.map_or("?".into(), |e| e.to_string()),
            kind.map_or("?".into(), |e| e.to_string())
        )),
    }
}

/// The `TCP_CM_INQ` value a normalized `recvmsg` expects, if it expects one.
pub(crate) fn expected_inq(c: &CallSpec) -> Option<&Expr> {
    match c.args.get(4) {
        Some(Expr::Struct(f)) => f.iter().find(|(k, _)| k == TCP_CM_INQ).map(|(_, v)| v),
        _ => None,
    }
}

fn refused<T>(feature: impl Into<String>) -> Result<T, CallErr> {
    Err(CallErr::Refused(feature.into()))
}

/// The `send`/`sendto`/`recv` flags of a call, those utcp honours.
#[derive(Debug, Clone, Copy, Default)]
struct MsgFlags {
    /// `MSG_DONTWAIT`: this one call is non-blocking.
    dontwait: bool,
    /// `MSG_FASTOPEN` (RFC 7413): on a socket not yet connected, connect with the data on the
    /// SYN; ignored on a connected one.
    fast_open: bool,
    /// `MSG_MORE`: more data follows; the short tail waits for it.
    more: bool,
    /// `MSG_EOR`: the write ends a record, which later data does not share a segment with.
    eor: bool,
}

/// Linux's MSG_FASTOPEN, as a script may write it in numbers.
const MSG_FASTOPEN: i64 = 0x2000_0000;
/// Linux's MSG_MORE.
const MSG_MORE: i64 = 0x8000;
/// Linux's MSG_EOR.
const MSG_EOR: i64 = 0x80;

/// The flags of a `send`/`sendto`/`recv` call, or a refusal naming the first utcp lacks.
fn msg_flags(e: Option<&Expr>, call: &str) -> Result<MsgFlags, CallErr> {
    let mut flags = MsgFlags::default();
    let sending = call.starts_with("send");
    match e {
        None | Some(Expr::Int(0)) | Some(Expr::Ellipsis) => {}
        Some(Expr::Int(MSG_FASTOPEN)) if sending => flags.fast_open = true,
        Some(Expr::Int(MSG_MORE)) if sending => flags.more = true,
        Some(Expr::Int(MSG_EOR)) if sending => flags.eor = true,
        Some(Expr::Int(v)) => return refused(format!("send/recv flags {v:#x}")),
        Some(e) => {
            for f in symbols(e) {
                match f.as_str() {
                    "MSG_DONTWAIT" => flags.dontwait = true,
                    "MSG_NOSIGNAL" => {}
                    "MSG_FASTOPEN" if sending => flags.fast_open = true,
                    "MSG_MORE" if sending => flags.more = true,
                    "MSG_EOR" if sending => flags.eor = true,
                    other => return refused(format!("the {other} flag")),
                }
            }
        }
    }
    Ok(flags)
}

/// The bytes of a string argument, `\xHH` escapes decoded (`TCP_FASTOPEN_KEY`'s key).
fn string_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = s.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

impl Exec<'_> {
    pub(super) fn alloc_fd(&mut self, kind: FdKind, options: SocketOptions) -> i64 {
        let mut fd = 3;
        while self.fds.contains_key(&fd) {
            fd += 1;
        }
        self.fds.insert(
            fd,
            Fd {
                kind,
                nonblocking: false,
                linger0: false,
                options,
                keepalive_on: false,
                keepidle: None,
                shut_rd: false,
                sndbuf_set: false,
                rcvbuf_set: false,
                deferred: false,
                inq: false,
            },
        );
        fd
    }

    /// TCP Fast Open's connect (RFC 7413 §4.1), for `sendto(MSG_FASTOPEN)` on a socket not yet
    /// connected and the first write after a `TCP_FASTOPEN_CONNECT` connect: the SYN carries
    /// what of `n` bytes fits when a cookie is cached. Non-blocking, it returns those bytes, or
    /// EINPROGRESS when the SYN carries none; blocking, it waits for the handshake and then
    /// writes the rest, as Linux's `tcp_sendmsg_fastopen`.
    fn fast_open_send(&mut self, p: &mut Pending, fd: i64, f: &Fd, bound: bool, n: usize) -> CallResult {
        let now = self.now;
        let local = bound.then_some(self.script.options.local_socket(SERVER_PORT));
        let remote = self.script.options.remote_socket(SERVER_PORT);
        let data = vec![0u8; n.min(MAX_CALL_BYTES)];
        match self.stack().connect_fast_open(now, local, remote, f.options, &data) {
            Ok((h, k)) => {
                self.connected(fd, h, remote);
                p.written = k;
                if f.nonblocking {
                    if k > 0 {
                        Ok(k as i64)
                    } else {
                        Err(Errno::EINPROGRESS)
                    }
                } else {
                    // Blocking: `attempt` comes back to this call as a write on the connection.
                    if k < n {
                        self.stack().wait_to_send(now, h);
                    }
                    Err(Errno::EAGAIN)
                }
            }
            Err(e) => Err(errno(e.errno())),
        }
    }

    /// Records that `fd` is now the connection `h` to `remote` (as the socket call named it; an
    /// IPv4-mapped address is IPv4 on the wire).
    fn connected(&mut self, fd: i64, h: SocketHandle, remote: SocketAddr) {
        if let Some(f) = self.fds.get_mut(&fd) {
            f.kind = FdKind::Conn(h);
            f.deferred = false;
        }
        self.last_conn = Some(h);
        let wire = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        self.wire.remote = wire(remote);
        if let Some(l) = self.stack().info(h).map(|i| i.local) {
            self.wire.local = wire(l);
        }
    }

    /// A `recvmsg`'s `TCP_CM_INQ` against Linux's `tcp_inq_hint`: the bytes left to read, and
    /// one more once the peer's FIN is in (its sequence number counts in RCV.NXT), so that a
    /// reader keeps reading until the end of file.
    fn check_inq(&mut self, h: SocketHandle, enabled: bool, want: &Expr) -> Result<(), CallErr> {
        if !enabled {
            return Err(format!("no {TCP_CM_INQ} control message: TCP_INQ is not set on the socket").into());
        }
        let Some(info) = self.stack().info(h) else {
            return Err(format!("no {TCP_CM_INQ}: the connection is gone").into());
        };
        let fin = matches!(info.state, State::CloseWait | State::LastAck | State::Closing | State::TimeWait);
        let got = info.recv_queue as i64 + i64::from(fin);
        match want {
            Expr::Ellipsis => Ok(()),
            Expr::Int(n) if *n == got => Ok(()),
            e => Err(format!("{TCP_CM_INQ} {got} instead of {e}").into()),
        }
    }

    /// Allocates the descriptor the script expects (packetdrill maps script descriptors to live
    /// ones by the result the script wrote), or the lowest free one when it wrote none.
    pub(super) fn alloc_expected_fd(&mut self, kind: FdKind, options: SocketOptions, call: &CallSpec) -> i64 {
        match call.result {
            Expr::Int(n) if n >= 0 => {
                shadow_fd(&mut self.fds, n);
                let fd = self.alloc_fd(kind, options);
                if fd != n {
                    if let Some(f) = self.fds.remove(&fd) {
                        self.fds.insert(n, f);
                    }
                }
                n
            }
            _ => self.alloc_fd(kind, options),
        }
    }

    pub(super) fn call(&mut self, event: &Event, c: &CallSpec, base: u64) -> Result<(), Failure> {
        if self.pending.is_some()
            && matches!(c.name.as_str(), "accept" | "connect" | "read" | "recv" | "write" | "send" | "poll")
        {
            let p = self.pending.as_ref().map(|p| p.line).unwrap_or(0);
            return fail(
                event.line,
                &event.text,
                format!("the blocking call at line {p} has not returned yet"),
            );
        }
        // packetdrill (adjust_relative_event_times): the end of `+a...b` counts from the same base
        // as its start; the end of `a...b` is absolute.
        let end_time = event.end_time.map(|(t, _)| match event.time {
            TimeSpec::Relative(_) | TimeSpec::Range { relative: true, .. } => base + t,
            _ => t,
        });
        let mut pending = Pending {
            line: event.line,
            text: event.text.clone(),
            call: c.clone(),
            end_time,
            started: self.now.total_micros(),
            written: 0,
            retry: false,
        };
        match self.attempt(&mut pending) {
            Err(CallErr::Fail(msg)) => fail(event.line, &event.text, msg),
            Err(CallErr::Refused(feature)) => refuse(event.line, &event.text, feature),
            Ok(Some(result)) => self.check_result(&pending, result),
            Ok(None) => {
                self.pending = Some(pending);
                Ok(())
            }
        }
    }

    pub(super) fn try_pending(&mut self) -> Result<(), Failure> {
        let Some(mut p) = self.pending.take() else { return Ok(()) };
        p.retry = true;
        match self.attempt(&mut p) {
            Err(CallErr::Fail(msg)) => fail(p.line, &p.text, msg),
            Err(CallErr::Refused(feature)) => refuse(p.line, &p.text, feature),
            Ok(Some(result)) => self.check_result(&p, result),
            Ok(None) => {
                self.pending = Some(p);
                Ok(())
            }
        }
    }

    pub(super) fn check_result(&mut self, p: &Pending, got: CallResult) -> Result<(), Failure> {
        self.transcript.push(format!("{} {} {}", secs(self.now), call_text(&p.call), format_result(&got)));
        let c = &p.call;
        let ok = match (&c.result, &c.errno, &got) {
            (Expr::Ellipsis, None, _) => true,
            (Expr::Int(-1), Some(e), Err(g)) => e == g.name(),
            // packetdrill: `= -1` with no errno name checks only that the call failed.
            (Expr::Int(-1), None, Err(_)) => true,
            (Expr::Int(v), None, Ok(g)) => v == g,
            _ => false,
        };
        if !ok {
            return fail(p.line, &p.text, format!("{} {}", call_text(c), format_result(&got)));
        }
        if let Some(end) = p.end_time {
            let tol = self.script.options.tolerance_usecs;
            let t = self.now.total_micros();
            if t + tol < end || t > end + tol {
                return fail(p.line, &p.text, format!("the call returned at {}", secs(self.now)));
            }
        }
        Ok(())
    }

    pub(super) fn fd(&mut self, call: &CallSpec) -> Result<Result<(i64, Fd), Errno>, String> {
        let fd = int_arg(call, 0)?;
        Ok(self.fds.get(&fd).cloned().map(|f| (fd, f)).ok_or(Errno::EBADF))
    }

    /// Tries a call: `Ok(Some(result))` when it returned, `Ok(None)` when it blocks, `Err` when
    /// the script asked for something the executor cannot do.
    pub(super) fn attempt(&mut self, p: &mut Pending) -> Result<Option<CallResult>, CallErr> {
        let c = normalize(&p.call)?;
        let now = self.now;
        let r: CallResult = match c.name.as_str() {
            "socket" => {
                let kinds = c.args.iter().flat_map(symbols).collect::<Vec<_>>();
                if kinds.iter().any(|k| k == "SOCK_DGRAM" || k == "IPPROTO_UDP") {
                    return refused("UDP sockets");
                }
                // The domain is the script's IP version's, whatever the call says (packetdrill's
                // `config->socket_domain`).
                let options = self.default_options();
                Ok(self.alloc_expected_fd(FdKind::Fresh { bound: false }, options, &c))
            }
            "bind" => match self.fd(&c)? {
                Err(e) => Err(e),
                Ok((fd, f)) => match f.kind {
                    FdKind::Fresh { .. } => {
                        if let Some(f) = self.fds.get_mut(&fd) {
                            f.kind = FdKind::Fresh { bound: true };
                        }
                        Ok(0)
                    }
                    _ => Err(Errno::EINVAL),
                },
            },
            "listen" => {
                let backlog = int_arg(&c, 1)?;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((fd, f)) => match f.kind {
                        FdKind::Fresh { .. } => {
                            let local = self.script.options.local_socket(SERVER_PORT);
                            match self.stack().listen_with(now, local, backlog.max(0) as usize, f.options) {
                                Ok(l) => {
                                    if let Some(f) = self.fds.get_mut(&fd) {
                                        f.kind = FdKind::Listener(l);
                                    }
                                    let o = &self.script.options;
                                    self.wire.local = SocketAddr::new(o.local_ip, SERVER_PORT);
                                    self.wire.remote = SocketAddr::new(o.remote_ip, CLIENT_PORT);
                                    self.wire.fresh_port_due = true;
                                    Ok(0)
                                }
                                Err(e) => Err(errno(e.errno())),
                            }
                        }
                        FdKind::Listener(_) => Ok(0),
                        FdKind::Conn(_) | FdKind::Epoll => Err(Errno::EINVAL),
                    },
                }
            }
            "accept" => match self.fd(&c)? {
                Err(e) => Err(e),
                Ok((_, f)) => match f.kind {
                    FdKind::Listener(l) => match self.stack().accept(now, l) {
                        Ok(h) => {
                            let options = f.options;
                            self.last_conn = Some(h);
                            let fd = self.alloc_expected_fd(FdKind::Conn(h), options, &c);
                            if let Some(nf) = self.fds.get_mut(&fd) {
                                nf.keepalive_on = f.keepalive_on;
                                nf.keepidle = f.keepidle;
                                nf.inq = f.inq;
                            }
                            Ok(fd)
                        }
                        Err(AcceptError::WouldBlock) if !f.nonblocking => return Ok(None),
                        Err(e) => Err(errno(e.errno())),
                    },
                    _ => Err(Errno::EINVAL),
                },
            },
            "connect" => match self.fd(&c)? {
                Err(e) => Err(e),
                Ok((fd, f)) => match f.kind {
                    // Linux: a deferred TCP_FASTOPEN_CONNECT connect is connected already.
                    FdKind::Fresh { .. } if f.deferred => Err(Errno::EISCONN),
                    FdKind::Fresh { bound } => {
                        let local = bound.then_some(self.script.options.local_socket(SERVER_PORT));
                        let remote = self.script.options.remote_socket(SERVER_PORT);
                        let fast_open = f.options.fast_open_connect;
                        if fast_open && self.stack().fast_open_ready(remote.ip()) {
                            // TCP_FASTOPEN_CONNECT with a cookie cached: no SYN until the first
                            // write, which carries its data (Linux's tcp_fastopen_defer_connect).
                            if let Some(f) = self.fds.get_mut(&fd) {
                                f.deferred = true;
                            }
                            return Ok(Some(Ok(0)));
                        }
                        let opened = if fast_open {
                            // No cookie: the SYN asks for one.
                            let o = f.options;
                            self.stack().connect_fast_open(now, local, remote, o, &[]).map(|r| r.0)
                        } else {
                            self.stack().connect_with(now, local, remote, f.options)
                        };
                        match opened {
                            Ok(h) => {
                                self.connected(fd, h, remote);
                                if f.nonblocking {
                                    Err(Errno::EINPROGRESS)
                                } else {
                                    return Ok(None);
                                }
                            }
                            Err(e) => Err(errno(e.errno())),
                        }
                    }
                    FdKind::Conn(h) => {
                        match (self.stack().state(h), self.closed.get(&h).and_then(CloseReason::errno)) {
                            (_, Some(e)) => Err(e),
                            (Some(State::SynSent), _) if f.nonblocking => Err(Errno::EALREADY),
                            (Some(State::SynSent), _) => return Ok(None),
                            (Some(State::Closed) | None, _) => Err(Errno::ECONNREFUSED),
                            _ if p.retry => Ok(0),
                            _ => Err(Errno::EISCONN),
                        }
                    }
                    FdKind::Listener(_) => Err(Errno::EISCONN),
                    FdKind::Epoll => Err(Errno::EINVAL),
                },
            },
            "write" | "send" | "sendto" | "read" | "recv" | "recvfrom"
                if c.args.get(1) == Some(&Expr::Symbol("NULL".into()))
                    && matches!(
                        self.fd(&c)?,
                        Ok((_, Fd { kind: FdKind::Conn(_), .. }))
                            | Ok((_, Fd { kind: FdKind::Fresh { .. }, deferred: true, .. }))
                    )
                    || c.args.get(1) == Some(&Expr::Symbol("NULL".into()))
                        && matches!(
                            msg_flags(c.args.get(3), &c.name),
                            Ok(MsgFlags { fast_open: true, .. })
                        ) =>
            {
                // Linux: a NULL buffer is EFAULT (the suite's syscall_bad_arg tests).
                Err(Errno::EFAULT)
            }
            "ioctl" => {
                let req = sym_arg(&c, 1)?;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((_, f)) => {
                        let FdKind::Conn(h) = f.kind else { return Ok(Some(Err(Errno::EINVAL))) };
                        let Some(info) = self.stack().info(h) else { return Ok(Some(Err(Errno::ENOTCONN))) };
                        let got = match req.as_str() {
                            "SIOCINQ" | "FIONREAD" => info.recv_queue,
                            "SIOCOUTQ" | "TIOCOUTQ" => info.send_queue,
                            other => return refused(format!("ioctl {other}")),
                        } as i64;
                        let want = match c.args.get(2) {
                            Some(Expr::Array(v)) if v.len() == 1 => v[0].clone(),
                            Some(e) => e.clone(),
                            None => Expr::Ellipsis,
                        };
                        if want != Expr::Ellipsis && want != Expr::Int(got) {
                            return Err(format!("ioctl {req} gave [{got}], expected [{want}]").into());
                        }
                        Ok(0)
                    }
                }
            }
            "write" | "send" | "sendto" => {
                let n = int_arg(&c, 2)?.max(0) as usize;
                let flags =
                    if c.name == "write" { MsgFlags::default() } else { msg_flags(c.args.get(3), &c.name)? };
                if c.name == "sendto"
                    && !matches!(c.args.get(4), None | Some(Expr::Ellipsis) | Some(Expr::Int(0)))
                {
                    if flags.fast_open && c.args.get(4) == Some(&Expr::Symbol("AF_UNSPEC".into())) {
                        // Linux's tcp_sendmsg_fastopen: no Fast Open to an AF_UNSPEC address.
                        return Ok(Some(Err(Errno::EOPNOTSUPP)));
                    }
                    return refused("sendto with a destination address");
                }
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((fd, mut f)) => match f.kind {
                        FdKind::Fresh { bound } if flags.fast_open || f.deferred => {
                            f.nonblocking |= flags.dontwait;
                            match self.fast_open_send(p, fd, &f, bound, n) {
                                Err(Errno::EAGAIN) => return Ok(None),
                                r => r,
                            }
                        }
                        // A second MSG_FASTOPEN while the first handshake is under way.
                        FdKind::Conn(h)
                            if flags.fast_open
                                && !p.retry
                                && self.stack().state(h) == Some(State::SynSent) =>
                        {
                            Err(Errno::EALREADY)
                        }
                        FdKind::Conn(h) => {
                            f.nonblocking |= flags.dontwait;
                            // The stack takes at most its free buffer space: never allocate what a
                            // script asks for beyond that (a fuzzer asked for 150 GB).
                            let data = vec![0u8; (n - p.written).min(MAX_CALL_BYTES)];
                            let send_flags = utcp::SendFlags { more: flags.more, eor: flags.eor };
                            match self.stack().send_with(now, h, &data, send_flags) {
                                Ok(k) => {
                                    p.written += k;
                                    if p.written < n && !f.nonblocking {
                                        return Ok(None);
                                    }
                                    Ok(p.written as i64)
                                }
                                Err(SendError::NotConnected) if !f.nonblocking => {
                                    if p.written < n {
                                        self.stack().wait_to_send(now, h);
                                    }
                                    return Ok(None);
                                }
                                Err(SendError::WouldBlock) if !f.nonblocking => return Ok(None),
                                // A handshake that failed fails the call, even when the
                                // SYN carried some of its data (Fast Open).
                                Err(e @ (SendError::Refused | SendError::TimedOut)) => Err(errno(e.errno())),
                                Err(_) if p.written > 0 => Ok(p.written as i64),
                                Err(e) => Err(errno(e.errno())),
                            }
                        }
                        _ => Err(Errno::EPIPE),
                    },
                }
            }
            "read" | "recv" | "recvfrom" => {
                let n = int_arg(&c, 2)?.max(0) as usize;
                let dontwait =
                    if c.name == "read" { false } else { msg_flags(c.args.get(3), &c.name)?.dontwait };
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((_, mut f)) => match f.kind {
                        FdKind::Conn(h) => {
                            f.nonblocking |= dontwait;
                            let mut buf = vec![0u8; n.min(MAX_CALL_BYTES)];
                            match self.stack().recv(now, h, &mut buf) {
                                Ok(k) => {
                                    if let Some(want) = expected_inq(&c) {
                                        self.check_inq(h, f.inq, want)?;
                                    }
                                    Ok(k as i64)
                                }
                                // Linux: after SHUT_RD a read that finds nothing returns 0.
                                Err(RecvError::WouldBlock) if f.shut_rd => Ok(0),
                                Err(RecvError::WouldBlock) | Err(RecvError::NotConnected)
                                    if !f.nonblocking =>
                                {
                                    return Ok(None)
                                }
                                Err(e) => Err(errno(e.errno())),
                            }
                        }
                        FdKind::Listener(_) | FdKind::Epoll => Err(Errno::ENOTCONN),
                        // A deferred TCP_FASTOPEN_CONNECT socket reads as one in SYN-SENT.
                        FdKind::Fresh { .. } if f.deferred && f.nonblocking => Err(Errno::EAGAIN),
                        FdKind::Fresh { .. } => Err(Errno::ENOTCONN),
                    },
                }
            }
            "shutdown" => {
                let how = sym_arg(&c, 1)?;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((fd, f)) => match (f.kind, how.as_str()) {
                        (_, h) if !matches!(h, "SHUT_RD" | "SHUT_WR" | "SHUT_RDWR") => {
                            return Err(format!(
                                "shutdown: expected SHUT_RD, SHUT_WR or SHUT_RDWR, found {how}"
                            )
                            .into())
                        }
                        (FdKind::Conn(h), how) => {
                            if how != "SHUT_WR" {
                                if let Some(f) = self.fds.get_mut(&fd) {
                                    f.shut_rd = true;
                                }
                            }
                            if how == "SHUT_RD" {
                                Ok(0)
                            } else {
                                match self.stack().shutdown(now, h) {
                                    Ok(()) => Ok(0),
                                    Err(e) => Err(errno(e.errno())),
                                }
                            }
                        }
                        _ => Err(Errno::ENOTCONN),
                    },
                }
            }
            "close" => match self.fd(&c)? {
                Err(e) => Err(e),
                Ok((fd, f)) => {
                    self.fds.remove(&fd);
                    self.epolls.remove(&fd);
                    for ep in self.epolls.values_mut() {
                        ep.remove(fd);
                    }
                    match f.kind {
                        FdKind::Fresh { .. } | FdKind::Epoll => Ok(0),
                        FdKind::Listener(l) => {
                            let _ = self.stack().unlisten(now, l);
                            Ok(0)
                        }
                        FdKind::Conn(h) => {
                            // close(2) of an open descriptor succeeds; the handle is never stale.
                            if f.linger0 {
                                let _ = self.stack().abort(now, h);
                            } else {
                                let _ = self.stack().close(now, h);
                            }
                            Ok(0)
                        }
                    }
                }
            },
            "setsockopt" => self.setsockopt(&c)?,
            "getsockopt" => self.getsockopt(&c)?,
            "fcntl" => {
                let cmd = sym_arg(&c, 1)?;
                match self.fd(&c)? {
                    Err(e) => Err(e),
                    Ok((fd, f)) => match cmd.as_str() {
                        "F_GETFL" => Ok(0x2 | if f.nonblocking { 0x800 } else { 0 }),
                        "F_SETFL" => {
                            let flags = c.args.get(2).map(symbols).unwrap_or_default();
                            if let Some(bad) =
                                flags.iter().find(|s| !matches!(s.as_str(), "O_RDWR" | "O_NONBLOCK"))
                            {
                                return refused(format!("fcntl F_SETFL flag {bad}"));
                            }
                            if let Some(f) = self.fds.get_mut(&fd) {
                                f.nonblocking = flags.iter().any(|s| s == "O_NONBLOCK");
                            }
                            Ok(0)
                        }
                        _ => return refused(format!("fcntl command {cmd}")),
                    },
                }
            }
            "poll" => return self.poll(p),
            "epoll_create" | "epoll_create1" => self.epoll_create(&c),
            "epoll_ctl" => self.epoll_ctl(&c)?,
            "epoll_wait" => return self.epoll_wait(p),
            other => return refused(format!("system call {other}")),
        };
        Ok(Some(r))
    }

    /// The poll(2) events ready on `fd` now.
    pub(super) fn ready(&mut self, fd: i64) -> i64 {
        const POLLIN: i64 = 0x1;
        const POLLOUT: i64 = 0x4;
        const POLLERR: i64 = 0x8;
        const POLLHUP: i64 = 0x10;
        const POLLNVAL: i64 = 0x20;
        let Some(f) = self.fds.get(&fd).cloned() else { return POLLNVAL };
        match f.kind {
            // Linux: a deferred TCP_FASTOPEN_CONNECT socket is writable (the write connects).
            FdKind::Fresh { .. } if f.deferred => POLLOUT,
            FdKind::Fresh { .. } => POLLOUT | POLLHUP,
            FdKind::Epoll => 0,
            FdKind::Listener(l) => match self.stack().pending_connections(l) {
                Some(n) if n > 0 => POLLIN,
                Some(_) => 0,
                None => POLLNVAL,
            },
            FdKind::Conn(h) => {
                let Some(r) = self.stack().readiness(h) else { return POLLNVAL };
                [(r.readable, POLLIN), (r.writable, POLLOUT), (r.error, POLLERR), (r.hangup, POLLHUP)]
                    .iter()
                    .filter(|(on, _)| *on)
                    .fold(0, |acc, (_, bit)| acc | bit)
            }
        }
    }

    /// poll([{fd=N, events=..., revents=...}, ...], nfds, timeout_ms).
    pub(super) fn poll(&mut self, p: &mut Pending) -> Result<Option<CallResult>, CallErr> {
        let c = p.call.clone();
        let Some(Expr::Array(items)) = c.args.first() else {
            return Err("poll: expected [{fd=N, events=..., revents=...}] as the first argument".into());
        };
        let timeout = int_arg(&c, 2)?;
        let bit = |s: &str| poll_bit(s).ok_or_else(|| format!("poll: unknown event {s}"));
        let mask = |e: Option<&Expr>| -> Result<Option<i64>, String> {
            match e {
                None | Some(Expr::Ellipsis) => Ok(None),
                Some(Expr::Int(v)) => Ok(Some(*v)),
                Some(e) => symbols(e).iter().try_fold(0, |acc, s| Ok(acc | bit(s)?)).map(Some),
            }
        };
        let mut wanted = Vec::new();
        for item in items {
            let Expr::Struct(fields) = item else {
                return Err(format!("poll: expected {{fd=N, events=..., revents=...}}, found {item}").into());
            };
            let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
            let Some(Expr::Int(fd)) = get("fd") else { return Err("poll: each entry needs fd=N".into()) };
            let events = mask(get("events"))?.unwrap_or(0);
            let revents = mask(get("revents"))?;
            wanted.push((*fd, events, revents));
        }
        let mut got = Vec::new();
        for (fd, events, _) in &wanted {
            // POLLERR, POLLHUP and POLLNVAL are reported whether asked for or not.
            let r = self.ready(*fd) & (events | 0x8 | 0x10 | 0x20);
            got.push(r);
        }
        let count = got.iter().filter(|r| **r != 0).count() as i64;
        let waited = self.now.total_micros().saturating_sub(p.started);
        let expired = timeout >= 0 && waited >= (timeout as u64).saturating_mul(1000);
        if count == 0 && !expired {
            return Ok(None);
        }
        for ((fd, _, want), g) in wanted.iter().zip(&got) {
            if let Some(w) = want {
                if w != g {
                    return Err(format!("poll: fd {fd} revents {g:#x}, expected {w:#x}").into());
                }
            }
        }
        Ok(Some(Ok(count)))
    }

    pub(super) fn setsockopt(&mut self, c: &CallSpec) -> Result<CallResult, CallErr> {
        let now = self.now;
        let name = sym_arg(c, 2)?;
        let (fd, f) = match self.fd(c)? {
            Err(e) => return Ok(Err(e)),
            Ok(x) => x,
        };
        let value = c.args.get(3).cloned().unwrap_or(Expr::Ellipsis);
        let num = || -> Result<i64, String> { int_arg(c, 3) };
        let mut nf = f.clone();
        let mut option = None;
        match name.as_str() {
            "SO_REUSEADDR" | "SO_REUSEPORT" => {}
            "SO_LINGER" => {
                let Expr::Struct(fields) = &value else {
                    return Err(format!("SO_LINGER: expected {{onoff=1, linger=0}}, found {value}").into());
                };
                let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let onoff = matches!(get("onoff"), Some(Expr::Int(v)) if v != 0);
                let linger = match get("linger") {
                    Some(Expr::Int(v)) => v,
                    _ => return Err("SO_LINGER: `linger` must be a number".into()),
                };
                if onoff && linger != 0 {
                    return refused("SO_LINGER with a non-zero linger time");
                }
                nf.linger0 = onoff;
            }
            "TCP_INQ" => nf.inq = num()? != 0,
            "SO_RCVBUF" => {
                let v = num()?.max(0) as usize;
                nf.rcvbuf_set = true;
                option = Some(SocketOption::RecvBuffer(v));
            }
            "SO_SNDBUF" => {
                let v = num()?.max(0) as usize;
                nf.sndbuf_set = true;
                option = Some(SocketOption::SendBuffer(v));
            }
            "TCP_NODELAY" => {
                let v = num()? != 0;
                option = Some(SocketOption::NoDelay(v));
            }
            "TCP_MAXSEG" => {
                let v = u16::try_from(num()?).map_err(|_| "TCP_MAXSEG out of range".to_string())?;
                option = Some(SocketOption::MaxSegment(v));
            }
            "SO_KEEPALIVE" | "TCP_KEEPIDLE" => {
                if name == "SO_KEEPALIVE" {
                    nf.keepalive_on = num()? != 0;
                } else {
                    nf.keepidle = Some(Duration::from_secs(num()?.max(1) as u64));
                }
                let ka = nf.keepalive_on.then(|| nf.keepidle.unwrap_or(DEFAULT_KEEPIDLE));
                option = Some(SocketOption::KeepAlive(ka));
            }
            "TCP_KEEPINTVL" | "TCP_KEEPCNT" => {
                if self.host.is_some() {
                    return refused(format!(
                        "{name} after the stack started (a stack-wide knob in utcp: set it before the first listen, connect or packet)"
                    ));
                }
                let v = num()?.max(1) as u64;
                if name == "TCP_KEEPINTVL" {
                    self.config.tcp.keepalive_interval = Duration::from_secs(v);
                } else {
                    self.config.tcp.keepalive_probes = v as u32;
                }
            }
            // RFC 7413 §5.1: the listener's queue of connections opened by SYN data.
            "TCP_FASTOPEN" => {
                let v = num()?;
                if v < 0 || matches!(f.kind, FdKind::Conn(_)) {
                    return Ok(Err(Errno::EINVAL));
                }
                option = Some(SocketOption::FastOpenQueue(v as usize));
            }
            "TCP_FASTOPEN_CONNECT" => {
                let v = num()?;
                if !(0..=1).contains(&v) {
                    return Ok(Err(Errno::EINVAL));
                }
                if !self.config.tcp.fast_open.client {
                    return Ok(Err(Errno::EOPNOTSUPP));
                }
                if !matches!(f.kind, FdKind::Fresh { .. }) {
                    return Ok(Err(Errno::EINVAL));
                }
                option = Some(SocketOption::FastOpenConnect(v == 1));
            }
            "TCP_FASTOPEN_KEY" => {
                let Expr::Str(text) = &value else {
                    return Err(format!("TCP_FASTOPEN_KEY: expected a string, found {value}").into());
                };
                let key = string_bytes(text);
                let len = int_arg(c, 4)?;
                // Linux: 16 bytes, or 32 with a backup key (which utcp lacks).
                if len == 32 {
                    return refused("a backup TCP Fast Open key (TCP_FASTOPEN_KEY of 32 bytes)");
                }
                let Ok(key) = <[u8; 16]>::try_from(&key[..]) else { return Ok(Err(Errno::EINVAL)) };
                if len != 16 {
                    return Ok(Err(Errno::EINVAL));
                }
                option = Some(SocketOption::FastOpenKey(key));
            }
            "TCP_SYNCNT" => {
                let v = num()?;
                if !(1..=127).contains(&v) {
                    return Ok(Err(Errno::EINVAL));
                }
                option = Some(SocketOption::SynRetries(v as u32));
            }
            "TCP_CORK" => option = Some(SocketOption::Cork(num()? != 0)),
            // 0 falls back to the sysctl (Linux's tcp_notsent_lowat()); Linux takes any int.
            "TCP_NOTSENT_LOWAT" => {
                let v = num()?;
                option = Some(SocketOption::NotSentLowat((v != 0).then_some(v as u32)));
            }
            // The controller is the stack's in utcp: set before the stack starts, or the same.
            "TCP_CONGESTION" => {
                let Expr::Str(text) = &value else {
                    return Err(format!("TCP_CONGESTION: expected a string, found {value}").into());
                };
                let kind = match text.as_str() {
                    "cubic" => CongestionKind::Cubic,
                    "reno" => CongestionKind::Reno,
                    other => return refused(format!("congestion control {other} (TCP_CONGESTION)")),
                };
                if self.host.is_some() && kind != self.config.tcp.congestion {
                    return refused(
                        "TCP_CONGESTION after the stack started (a stack-wide knob in utcp: set it before the first listen, connect or packet)",
                    );
                }
                self.config.tcp.congestion = kind;
            }
            // RFC 5482: milliseconds, 0 for the system's default (Linux refuses a negative one).
            "TCP_USER_TIMEOUT" => {
                let v = num()?;
                if v < 0 {
                    return Ok(Err(Errno::EINVAL));
                }
                option = Some(SocketOption::UserTimeout((v > 0).then(|| Duration::from_millis(v as u64))));
            }
            other => return refused(format!("socket option {other}")),
        }
        // The fd's copy of the options, for a socket not yet bound to a stack handle, follows
        // the same rule as the stack's (SocketOption::apply: a set buffer also fixes its limit).
        if let Some(o) = option {
            o.apply(&mut nf.options);
        }
        match (&f.kind, option) {
            (FdKind::Conn(h), Some(o)) => {
                let h = *h;
                if let Err(e) = self.stack().set_option(now, h, o) {
                    return Ok(Err(errno(e.errno())));
                }
            }
            (FdKind::Listener(l), Some(o)) => {
                let l = *l;
                if let Err(e) = self.stack().set_listener_option(now, l, o) {
                    return Ok(Err(errno(e.errno())));
                }
            }
            _ => {}
        }
        self.fds.insert(fd, nf);
        Ok(Ok(0))
    }

    /// getsockopt(TCP_INFO): each `tcpi_*` field the script wrote in `{...}` compared with the
    /// connection's (the ones utcp keeps; another is refused by name).
    fn tcp_info(&mut self, f: &Fd, want: &Expr) -> Result<CallResult, CallErr> {
        let FdKind::Conn(h) = f.kind else { return Ok(Err(Errno::ENOTCONN)) };
        let Some(info) = self.stack().info(h) else { return Ok(Err(Errno::ENOTCONN)) };
        let fields = match want {
            Expr::Struct(fields) => fields.clone(),
            Expr::Ellipsis => Vec::new(),
            e => return Err(format!("getsockopt TCP_INFO: expected {{tcpi_...=N, ...}}, found {e}").into()),
        };
        for (name, value) in &fields {
            let Some(got) = tcpi_field(&info, name) else {
                return refused(format!("TCP_INFO field {name}"));
            };
            let expected = match value {
                Expr::Ellipsis => continue,
                Expr::Int(v) => *v,
                Expr::Symbol(s) => match tcp_state_number(s) {
                    Some(v) => v,
                    None => return refused(format!("TCP_INFO value {s}")),
                },
                e => return Err(format!("getsockopt TCP_INFO: {name}={e} is not a number").into()),
            };
            if got != expected {
                return Err(format!("getsockopt TCP_INFO gave {name}={got}, expected {expected}").into());
            }
        }
        Ok(Ok(0))
    }

    pub(super) fn getsockopt(&mut self, c: &CallSpec) -> Result<CallResult, CallErr> {
        let name = sym_arg(c, 2)?;
        let (_, f) = match self.fd(c)? {
            Err(e) => return Ok(Err(e)),
            Ok(x) => x,
        };
        let want = c.args.get(3).cloned().unwrap_or(Expr::Ellipsis);
        if name == "TCP_INFO" {
            return self.tcp_info(&f, &want);
        }
        let got: Expr = match (name.as_str(), &f.kind) {
            ("SO_ERROR", FdKind::Conn(h)) => {
                let h = *h;
                match self.stack().take_error(h).and_then(|r| r.errno()) {
                    None => Expr::Int(0),
                    Some(e) => Expr::Symbol(e.name().into()),
                }
            }
            ("SO_ERROR", _) => Expr::Int(0),
            ("TCP_MAXSEG", FdKind::Conn(h)) => {
                let h = *h;
                match self.stack().info(h) {
                    Some(i) => Expr::Int(i64::from(i.mss)),
                    None => return Ok(Err(Errno::ENOTCONN)),
                }
            }
            ("TCP_MAXSEG", _) => Expr::Int(i64::from(f.options.max_segment.unwrap_or(536))),
            // Linux doubles what setsockopt was given (socket(7): "the kernel doubles this value
            // to allow space for bookkeeping overhead"); untouched, it reports the default.
            ("SO_SNDBUF", _) => Expr::Int(f.options.send_buffer as i64 * if f.sndbuf_set { 2 } else { 1 }),
            ("SO_RCVBUF", _) => Expr::Int(f.options.recv_buffer as i64 * if f.rcvbuf_set { 2 } else { 1 }),
            ("TCP_CORK", _) => Expr::Int(i64::from(f.options.cork)),
            ("TCP_NODELAY", _) => Expr::Int(i64::from(f.options.nodelay)),
            // The socket's own mark, 0 when it set none (the sysctl's is not reported).
            ("TCP_NOTSENT_LOWAT", _) => Expr::Int(i64::from(f.options.notsent_lowat.unwrap_or(0))),
            ("TCP_INQ", _) => Expr::Int(i64::from(f.inq)),
            ("TCP_USER_TIMEOUT", _) => {
                Expr::Int(f.options.user_timeout.map_or(0, |t| (t.total_micros() / 1000) as i64))
            }
            (other, _) => return refused(format!("getsockopt of {other}")),
        };
        let want_inner = match &want {
            Expr::Array(items) if items.len() == 1 => items[0].clone(),
            e => e.clone(),
        };
        if want_inner != Expr::Ellipsis && want_inner != got {
            return Err(format!("getsockopt {name} gave [{got}], expected [{want_inner}]").into());
        }
        Ok(Ok(0))
    }
}
