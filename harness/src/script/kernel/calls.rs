//! The call lines of a script against the kernel: each decoded into a real system call on the
//! kernel's sockets, run on a worker thread inside the namespace, and its outputs (a descriptor,
//! an option's value, poll's events, TCP_INFO) read back and compared with the line.
//!
//! Descriptors are mapped as packetdrill maps them: a call that makes one (`socket`, `accept`,
//! `epoll_create`) binds the number the script wrote to the kernel's, or the lowest free number
//! from 3 when it wrote none. Workers are threads that joined the namespace; a call goes to an
//! idle one (a new one when every worker is blocked in a call), so a blocking call does not hold
//! up the lines after it.

use super::super::ast::*;
use super::super::exec::{
    epoll_bit, expected_inq, int_arg, normalize, poll_bit, shadow_fd, sym_arg, symbols, tcp_state_number,
    CallErr,
};
use super::FdMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

/// The largest buffer one read or write call gets.
const MAX_CALL_BYTES: i64 = 64 << 20;
/// The port the kernel listens on, binds to and connects to (packetdrill's 8080).
use super::super::exec::SERVER_PORT;

/// What a worker returns for one call.
pub(super) struct Done {
    /// When the system call returned.
    pub at: std::time::Instant,
    /// Its return value, or `-errno`.
    pub ret: i64,
    /// Bytes it wrote out (an option's value, poll's array, epoll's events).
    pub data: Vec<u8>,
}

/// A call's result as the line sees it.
pub(super) struct Got {
    /// The value in the script's numbering, or the errno's name.
    pub result: Result<i64, String>,
    /// The connection's descriptor (script numbering) when the call accepted or connected one.
    pub conn: Option<i64>,
    /// An output that does not match the line (an option's value, poll's revents, ...).
    pub mismatch: Option<String>,
}

/// What to do with a call's outputs once it returns.
#[derive(Debug, Clone)]
enum After {
    Nothing,
    /// A new descriptor: map it to the number the script expects.
    NewFd {
        conn: bool,
    },
    /// `connect` (the descriptor becomes the socket under test).
    Connected(i64),
    /// `close`: forget the number.
    Closed(i64),
    /// An int option's value against the expected expression.
    IntOption {
        name: String,
        want: Expr,
    },
    /// `TCP_INFO` against `{tcpi_...}`.
    TcpInfo(Expr),
    /// poll's revents against the expected masks, per entry.
    Poll(Vec<(i64, Option<i64>)>),
    /// ioctl's value against the expected expression.
    Ioctl {
        req: String,
        want: Expr,
    },
    /// epoll_wait's events against the expected ones.
    EpollWait(Expr),
    /// recvmsg's `TCP_CM_INQ` control message against the expected value.
    Inq(Expr),
}

/// A system call ready to run on a worker: everything resolved to the kernel's numbers.
#[derive(Debug, Clone)]
enum Op {
    Socket(i32, i32, i32),
    Bind(i32, SockAddr),
    Listen(i32, i32),
    Accept(i32),
    Connect(i32, SockAddr),
    /// Descriptor, length, flags (-1: `write`), destination (`sendto`).
    Write(i32, usize, i32, Option<SockAddr>),
    Read(i32, usize, i32),
    /// `recvmsg` with room for a `TCP_CM_INQ` control message: descriptor, length, flags.
    RecvInq(i32, usize, i32),
    Close(i32),
    Shutdown(i32, i32),
    SetSockOpt(i32, i32, i32, Vec<u8>),
    GetSockOpt(i32, i32, i32, usize),
    Fcntl(i32, i32, i32),
    Ioctl(i32, u64),
    Poll(Vec<libc::pollfd>, i32),
    EpollCreate,
    EpollCtl(i32, i32, i32, u32, u64),
    EpollWait(i32, usize, i32),
}

/// A socket address as the kernel takes it: `sockaddr_in` or `sockaddr_in6` in a
/// `sockaddr_storage`, with its length.
#[derive(Clone, Copy)]
struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl SockAddr {
    fn new(a: std::net::SocketAddr) -> SockAddr {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match a {
            std::net::SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr type.
                unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            std::net::SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                    sin6_scope_id: 0,
                };
                // SAFETY: as above.
                unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        SockAddr { storage, len: len as libc::socklen_t }
    }

    /// The same address with the family AF_UNSPEC (packetdrill's `sendto(..., AF_UNSPEC, ...)`).
    fn unspec(mut self) -> SockAddr {
        self.storage.ss_family = libc::AF_UNSPEC as libc::sa_family_t;
        self
    }

    fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }
}

impl std::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SockAddr(family {}, {} bytes)", self.storage.ss_family, self.len)
    }
}

/// Linux's `TCP_CM_INQ` (= `TCP_INQ`), the control message type of `recvmsg`'s bytes-left count.
const TCP_CM_INQ: i32 = 36;

fn errno() -> i64 {
    -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

fn ret(r: i64) -> i64 {
    if r < 0 {
        errno()
    } else {
        r
    }
}

/// Runs an op on this thread: its return value (or `-errno`) and output bytes.
fn execute(op: Op) -> (i64, Vec<u8>) {
    // SAFETY (every call below): arguments are descriptors (possibly invalid, which the kernel
    // reports as EBADF), and pointers to buffers and structs this function owns and sizes.
    unsafe {
        match op {
            Op::Socket(d, t, p) => (ret(libc::socket(d, t, p).into()), Vec::new()),
            Op::Bind(fd, a) => (ret(libc::bind(fd, a.ptr(), a.len).into()), Vec::new()),
            Op::Listen(fd, n) => (ret(libc::listen(fd, n).into()), Vec::new()),
            Op::Accept(fd) => {
                (ret(libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()).into()), Vec::new())
            }
            Op::Connect(fd, a) => (ret(libc::connect(fd, a.ptr(), a.len).into()), Vec::new()),
            Op::Write(fd, n, flags, to) => {
                let buf = vec![0u8; n];
                let r = match to {
                    _ if flags < 0 => libc::write(fd, buf.as_ptr().cast(), n),
                    Some(a) => {
                        libc::sendto(fd, buf.as_ptr().cast(), n, flags | libc::MSG_NOSIGNAL, a.ptr(), a.len)
                    }
                    None => libc::send(fd, buf.as_ptr().cast(), n, flags | libc::MSG_NOSIGNAL),
                };
                (ret(r as i64), Vec::new())
            }
            Op::Read(fd, n, flags) => {
                let mut buf = vec![0u8; n];
                let r = if flags < 0 {
                    libc::read(fd, buf.as_mut_ptr().cast(), n)
                } else {
                    libc::recv(fd, buf.as_mut_ptr().cast(), n, flags)
                };
                (ret(r as i64), Vec::new())
            }
            Op::RecvInq(fd, n, flags) => {
                let mut buf = vec![0u8; n];
                let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: n };
                // Room for one cmsghdr and an int, aligned as cmsghdr wants.
                let mut control = [0u64; 8];
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&control) as _;
                let r = libc::recvmsg(fd, &mut msg, flags);
                // [1, value] when a TCP_CM_INQ message came, [0] otherwise.
                let mut data = vec![0u8];
                let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::SOL_TCP && (*cmsg).cmsg_type == TCP_CM_INQ {
                        let v = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                        data = vec![1];
                        data.extend_from_slice(&v.to_ne_bytes());
                        break;
                    }
                    cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                }
                (ret(r as i64), data)
            }
            Op::Close(fd) => (ret(libc::close(fd).into()), Vec::new()),
            Op::Shutdown(fd, how) => (ret(libc::shutdown(fd, how).into()), Vec::new()),
            Op::SetSockOpt(fd, level, name, value) => (
                ret(libc::setsockopt(fd, level, name, value.as_ptr().cast(), value.len() as u32).into()),
                Vec::new(),
            ),
            Op::GetSockOpt(fd, level, name, len) => {
                let mut buf = vec![0u8; len];
                let mut l = len as libc::socklen_t;
                let r = libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut l);
                buf.truncate(l as usize);
                (ret(r.into()), buf)
            }
            Op::Fcntl(fd, cmd, arg) => (ret(libc::fcntl(fd, cmd, arg).into()), Vec::new()),
            Op::Ioctl(fd, req) => {
                let mut v: libc::c_int = 0;
                let r = libc::ioctl(fd, req as _, &mut v as *mut libc::c_int);
                (ret(r.into()), v.to_ne_bytes().to_vec())
            }
            Op::Poll(mut fds, timeout) => {
                let r = libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout);
                let data = fds.iter().flat_map(|p| p.revents.to_ne_bytes()).collect();
                (ret(r.into()), data)
            }
            Op::EpollCreate => (ret(libc::epoll_create1(0).into()), Vec::new()),
            Op::EpollCtl(ep, op, fd, events, data) => {
                let mut ev = libc::epoll_event { events, u64: data };
                (ret(libc::epoll_ctl(ep, op, fd, &mut ev).into()), Vec::new())
            }
            Op::EpollWait(ep, max, timeout) => {
                let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; max.max(1)];
                let r = libc::epoll_wait(ep, evs.as_mut_ptr(), max.max(1) as i32, timeout);
                let n = r.max(0) as usize;
                let data = evs[..n].iter().flat_map(|e| {
                    let (ev, d) = (e.events, e.u64);
                    let mut b = ev.to_ne_bytes().to_vec();
                    b.extend_from_slice(&d.to_ne_bytes());
                    b
                });
                (ret(r.into()), data.collect())
            }
        }
    }
}

/// A thread inside the namespace that runs calls one at a time.
struct Worker {
    jobs: mpsc::Sender<(u64, Op)>,
    /// The thread's id, for /proc/self/task/TID/stat.
    tid: Arc<AtomicI32>,
    /// The id of the call it is running, 0 when idle.
    running: Arc<AtomicU64>,
    /// Calls sent to it and not yet returned.
    queued: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

/// The kernel's side of a script's calls.
pub(super) struct Calls {
    ns: String,
    workers: Vec<Worker>,
    done_tx: mpsc::Sender<(u64, Done)>,
    done_rx: mpsc::Receiver<(u64, Done)>,
    done: HashMap<u64, Done>,
    after: HashMap<u64, (After, Option<i64>)>,
    fds: FdMap,
    next: u64,
}

impl Calls {
    pub fn new(ns: &crate::netns::Netns) -> Calls {
        let (done_tx, done_rx) = mpsc::channel();
        let mut calls = Calls {
            ns: ns.name().to_string(),
            workers: Vec::new(),
            done_tx,
            done_rx,
            done: HashMap::new(),
            after: HashMap::new(),
            fds: FdMap::new(),
            next: 1,
        };
        if let Err(e) = calls.spawn_worker() {
            tracing::warn!("cannot start a call thread yet: {e}");
        }
        calls
    }

    /// Stops the workers (after the namespace is gone, so that none is still blocked).
    pub fn shutdown(mut self) {
        for w in &mut self.workers {
            let (tx, _) = mpsc::channel();
            w.jobs = tx;
        }
        for mut w in self.workers.drain(..) {
            if w.queued.load(Ordering::SeqCst) == 0 {
                if let Some(t) = w.thread.take() {
                    let _ = t.join();
                }
            }
        }
        for (_, fd) in self.fds {
            // SAFETY: a descriptor a call of this script opened and nothing else uses.
            unsafe { libc::close(fd) };
        }
    }

    fn spawn_worker(&mut self) -> Result<usize, String> {
        let (tx, rx) = mpsc::channel::<(u64, Op)>();
        let tid = Arc::new(AtomicI32::new(0));
        let running = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicU64::new(0));
        let done = self.done_tx.clone();
        let (t2, r2, q2) = (tid.clone(), running.clone(), queued.clone());
        let thread = crate::netns::spawn_in(&self.ns, "script-call", move || {
            // SAFETY: gettid takes no arguments and cannot fail.
            t2.store(unsafe { libc::gettid() }, Ordering::SeqCst);
            while let Ok((id, op)) = rx.recv() {
                r2.store(id, Ordering::SeqCst);
                let (ret, data) = execute(op);
                let at = std::time::Instant::now();
                r2.store(0, Ordering::SeqCst);
                q2.fetch_sub(1, Ordering::SeqCst);
                if done.send((id, Done { at, ret, data })).is_err() {
                    break;
                }
            }
            Ok(())
        })?;
        self.workers.push(Worker { jobs: tx, tid, running, queued, thread: Some(thread) });
        Ok(self.workers.len() - 1)
    }

    /// Whether call `id` is asleep in the kernel (it blocks).
    pub fn is_blocked(&self, id: u64) -> bool {
        self.workers.iter().any(|w| {
            w.running.load(Ordering::SeqCst) == id && {
                let tid = w.tid.load(Ordering::SeqCst);
                let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
                // The state follows the command's closing parenthesis.
                let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
                matches!(state, Some('S') | Some('D'))
            }
        })
    }

    /// The result of call `id`, once it returned.
    pub fn take_done(&mut self, id: u64) -> Option<Done> {
        while let Ok((i, d)) = self.done_rx.try_recv() {
            self.done.insert(i, d);
        }
        self.done.remove(&id)
    }

    /// The kernel's descriptor for the script's `fd` (-1, which the kernel calls EBADF, when
    /// the script never made it).
    fn real(&self, fd: i64) -> i32 {
        self.fds.get(&fd).copied().unwrap_or(-1)
    }

    fn fd_arg(&self, c: &CallSpec) -> Result<i32, CallErr> {
        Ok(self.real(int_arg(c, 0)?))
    }

    /// Decodes a call and starts it on a worker; its id.
    pub fn start(&mut self, call: &CallSpec, options: &ScriptOptions) -> Result<u64, CallErr> {
        let c = normalize(call)?;
        let (op, after) = self.decode(&c, options)?;
        let worker = match self
            .workers
            .iter()
            .position(|w| w.queued.load(Ordering::SeqCst) == 0 && w.running.load(Ordering::SeqCst) == 0)
        {
            Some(i) => i,
            None => self.spawn_worker()?,
        };
        let id = self.next;
        self.next += 1;
        let expected = match c.result {
            Expr::Int(n) if n >= 0 => Some(n),
            _ => None,
        };
        self.after.insert(id, (after, expected));
        let w = &self.workers[worker];
        w.queued.fetch_add(1, Ordering::SeqCst);
        w.jobs.send((id, op)).map_err(|_| CallErr::Fail("the call's thread is gone".into()))?;
        Ok(id)
    }

    fn decode(&self, c: &CallSpec, options: &ScriptOptions) -> Result<(Op, After), CallErr> {
        let n = |i: usize| -> Result<i64, CallErr> { Ok(int_arg(c, i)?) };
        Ok(match c.name.as_str() {
            "socket" => {
                let kinds = c.args.iter().flat_map(symbols).collect::<Vec<_>>();
                let mut ty = libc::SOCK_STREAM;
                let mut proto = libc::IPPROTO_TCP;
                for k in &kinds {
                    match k.as_str() {
                        "SOCK_DGRAM" => ty = libc::SOCK_DGRAM,
                        "IPPROTO_UDP" => proto = libc::IPPROTO_UDP,
                        "SOCK_NONBLOCK" => ty |= libc::SOCK_NONBLOCK,
                        _ => {}
                    }
                }
                // The domain is the IP version's, whatever the call says, as in packetdrill.
                let domain = if options.ip_version == IpVersion::V4 { libc::AF_INET } else { libc::AF_INET6 };
                (Op::Socket(domain, ty, proto), After::NewFd { conn: false })
            }
            "bind" => {
                (Op::Bind(self.fd_arg(c)?, SockAddr::new(options.local_socket(SERVER_PORT))), After::Nothing)
            }
            "listen" => (Op::Listen(self.fd_arg(c)?, n(1)? as i32), After::Nothing),
            "accept" | "accept4" => (Op::Accept(self.fd_arg(c)?), After::NewFd { conn: true }),
            "connect" => (
                Op::Connect(self.fd_arg(c)?, SockAddr::new(options.remote_socket(SERVER_PORT))),
                After::Connected(int_arg(c, 0)?),
            ),
            "write" | "send" | "sendto" | "read" | "recv" | "recvfrom"
                if c.args.get(1) == Some(&Expr::Symbol("NULL".into())) =>
            {
                return Err(CallErr::Refused("a NULL buffer on the Linux backend".into()))
            }
            "write" | "send" | "sendto" => {
                let len = n(2)?;
                if !(0..=MAX_CALL_BYTES).contains(&len) {
                    return Err(format!(
                        "{}: a length of {len} bytes is beyond what the executor writes",
                        c.name
                    )
                    .into());
                }
                let flags = if c.name == "write" { -1 } else { send_flags(c.args.get(3))? };
                // packetdrill's sendto: `...` is the remote's address (port 8080), AF_UNSPEC an
                // address of that family; absent or 0, none.
                let to = if c.name != "sendto" {
                    None
                } else {
                    match c.args.get(4) {
                        None | Some(Expr::Int(0)) => None,
                        Some(Expr::Ellipsis) => Some(SockAddr::new(options.remote_socket(SERVER_PORT))),
                        Some(Expr::Symbol(f)) if f == "AF_UNSPEC" => {
                            Some(SockAddr::new(options.remote_socket(SERVER_PORT)).unspec())
                        }
                        Some(e) => {
                            return Err(CallErr::Refused(format!(
                                "sendto to the address {e} on the Linux backend"
                            )))
                        }
                    }
                };
                (Op::Write(self.fd_arg(c)?, len as usize, flags, to), After::Nothing)
            }
            "read" | "recv" | "recvfrom" => {
                let len = n(2)?.clamp(0, MAX_CALL_BYTES);
                let flags = if c.name == "read" { -1 } else { send_flags(c.args.get(3))? };
                match expected_inq(c) {
                    Some(want) => {
                        (Op::RecvInq(self.fd_arg(c)?, len as usize, flags.max(0)), After::Inq(want.clone()))
                    }
                    None => (Op::Read(self.fd_arg(c)?, len as usize, flags), After::Nothing),
                }
            }
            "close" => (Op::Close(self.fd_arg(c)?), After::Closed(int_arg(c, 0)?)),
            "shutdown" => {
                let how = match sym_arg(c, 1)?.as_str() {
                    "SHUT_RD" => libc::SHUT_RD,
                    "SHUT_WR" => libc::SHUT_WR,
                    "SHUT_RDWR" => libc::SHUT_RDWR,
                    other => {
                        return Err(format!(
                            "shutdown: expected SHUT_RD, SHUT_WR or SHUT_RDWR, found {other}"
                        )
                        .into())
                    }
                };
                (Op::Shutdown(self.fd_arg(c)?, how), After::Nothing)
            }
            "setsockopt" => {
                let (level, name) = option_names(c)?;
                let value = match c.args.get(3) {
                    Some(Expr::Array(v)) if v.len() == 1 => int_value(&v[0])?.to_ne_bytes().to_vec(),
                    Some(Expr::Int(v)) => (*v as i32).to_ne_bytes().to_vec(),
                    Some(Expr::Str(s)) => s.as_bytes().to_vec(),
                    Some(Expr::Struct(fields)) if sym_arg(c, 2)? == "SO_LINGER" => {
                        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                        let onoff = int_value(&get("onoff").unwrap_or(Expr::Int(0)))?;
                        let linger = int_value(&get("linger").unwrap_or(Expr::Int(0)))?;
                        let mut b = onoff.to_ne_bytes().to_vec();
                        b.extend_from_slice(&linger.to_ne_bytes());
                        b
                    }
                    Some(e) => {
                        return Err(CallErr::Refused(format!("setsockopt value {e} on the Linux backend")))
                    }
                    None => return Err("setsockopt needs a value".into()),
                };
                (Op::SetSockOpt(self.fd_arg(c)?, level, name, value), After::Nothing)
            }
            "getsockopt" => {
                let (level, name) = option_names(c)?;
                let want = c.args.get(3).cloned().unwrap_or(Expr::Ellipsis);
                let opt = sym_arg(c, 2)?;
                if opt == "TCP_INFO" {
                    (Op::GetSockOpt(self.fd_arg(c)?, level, name, 256), After::TcpInfo(want))
                } else {
                    let want = match want {
                        Expr::Array(v) if v.len() == 1 => v[0].clone(),
                        e => e,
                    };
                    (Op::GetSockOpt(self.fd_arg(c)?, level, name, 4), After::IntOption { name: opt, want })
                }
            }
            "fcntl" => {
                let cmd = match sym_arg(c, 1)?.as_str() {
                    "F_GETFL" => libc::F_GETFL,
                    "F_SETFL" => libc::F_SETFL,
                    other => return Err(CallErr::Refused(format!("fcntl command {other}"))),
                };
                let mut arg = 0;
                for s in c.args.get(2).map(symbols).unwrap_or_default() {
                    arg |= match s.as_str() {
                        "O_RDWR" => libc::O_RDWR,
                        "O_NONBLOCK" => libc::O_NONBLOCK,
                        "O_RDONLY" => libc::O_RDONLY,
                        "O_WRONLY" => libc::O_WRONLY,
                        other => return Err(CallErr::Refused(format!("fcntl flag {other}"))),
                    };
                }
                (Op::Fcntl(self.fd_arg(c)?, cmd, arg), After::Nothing)
            }
            "ioctl" => {
                let req = sym_arg(c, 1)?;
                let code = match req.as_str() {
                    "SIOCINQ" | "FIONREAD" => libc::FIONREAD,
                    "SIOCOUTQ" | "TIOCOUTQ" => libc::TIOCOUTQ,
                    "SIOCOUTQNSD" => 0x894B,
                    other => return Err(CallErr::Refused(format!("ioctl {other}"))),
                };
                let want = match c.args.get(2) {
                    Some(Expr::Array(v)) if v.len() == 1 => v[0].clone(),
                    Some(e) => e.clone(),
                    None => Expr::Ellipsis,
                };
                (Op::Ioctl(self.fd_arg(c)?, code as u64), After::Ioctl { req, want })
            }
            "poll" => {
                let Some(Expr::Array(items)) = c.args.first() else {
                    return Err(
                        "poll: expected [{fd=N, events=..., revents=...}] as the first argument".into()
                    );
                };
                let mut fds = Vec::new();
                let mut want = Vec::new();
                for item in items {
                    let Expr::Struct(fields) = item else {
                        return Err(format!(
                            "poll: expected {{fd=N, events=..., revents=...}}, found {item}"
                        )
                        .into());
                    };
                    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                    let Some(Expr::Int(fd)) = get("fd") else {
                        return Err("poll: each entry needs fd=N".into());
                    };
                    let events = poll_mask(get("events"))?.unwrap_or(0);
                    want.push((*fd, poll_mask(get("revents"))?));
                    fds.push(libc::pollfd { fd: self.real(*fd), events: events as i16, revents: 0 });
                }
                (Op::Poll(fds, n(2)? as i32), After::Poll(want))
            }
            "epoll_create" | "epoll_create1" => (Op::EpollCreate, After::NewFd { conn: false }),
            "epoll_ctl" => {
                let op = match sym_arg(c, 1)?.as_str() {
                    "EPOLL_CTL_ADD" => libc::EPOLL_CTL_ADD,
                    "EPOLL_CTL_MOD" => libc::EPOLL_CTL_MOD,
                    "EPOLL_CTL_DEL" => libc::EPOLL_CTL_DEL,
                    other => return Err(format!("epoll_ctl: unknown operation {other}").into()),
                };
                let fd = n(2)?;
                let (events, data) = match c.args.get(3) {
                    Some(Expr::Struct(fields)) => {
                        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                        let events = epoll_mask(get("events"))?;
                        let data = match get("fd").or(get("u64")).or(get("ptr")) {
                            Some(Expr::Int(v)) => *v as u64,
                            _ => fd as u64,
                        };
                        (events, data)
                    }
                    _ => (0, fd as u64),
                };
                (Op::EpollCtl(self.fd_arg(c)?, op, self.real(fd), events as u32, data), After::Nothing)
            }
            "epoll_wait" => {
                let max = n(2)?.clamp(1, 1024) as usize;
                let want = c.args.get(1).cloned().unwrap_or(Expr::Ellipsis);
                (Op::EpollWait(self.fd_arg(c)?, max, n(3)? as i32), After::EpollWait(want))
            }
            other => return Err(CallErr::Refused(format!("system call {other} on the Linux backend"))),
        })
    }

    /// What call `call` returned, in the script's terms.
    pub fn complete(&mut self, id: u64, done: Done) -> Got {
        let (after, expected) = self.after.remove(&id).unwrap_or((After::Nothing, None));
        let mut got = Got {
            result: if done.ret < 0 { Err(errno_name(-done.ret as i32)) } else { Ok(done.ret) },
            conn: None,
            mismatch: None,
        };
        if done.ret < 0 {
            // A connect that is in progress (or failed) still names the socket under test.
            if let After::Connected(fd) = after {
                got.conn = Some(fd);
            }
            return got;
        }
        match after {
            After::Nothing => {}
            After::NewFd { conn } => {
                let real = done.ret as i32;
                let fd = match expected {
                    Some(n) if n >= 0 => {
                        shadow_fd(&mut self.fds, n);
                        n
                    }
                    _ => (3..).find(|n| !self.fds.contains_key(n)).unwrap_or(3),
                };
                self.fds.insert(fd, real);
                got.result = Ok(fd);
                // packetdrill's socket under test: the socket made or accepted last.
                let _ = conn;
                got.conn = Some(fd);
            }
            After::Connected(fd) => got.conn = Some(fd),
            After::Closed(fd) => {
                self.fds.remove(&fd);
            }
            After::IntOption { name, want } => {
                let v =
                    i32::from_ne_bytes(done.data.get(..4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
                let got_expr = if name == "SO_ERROR" && v != 0 {
                    Expr::Symbol(errno_name(v))
                } else {
                    Expr::Int(i64::from(v))
                };
                // A value written as unsigned (0xffffffff) matches the same 32 bits.
                let unsigned = Expr::Int(i64::from(v as u32));
                if want != Expr::Ellipsis && want != got_expr && want != unsigned {
                    got.mismatch = Some(format!("getsockopt {name} gave [{got_expr}], expected [{want}]"));
                }
            }
            After::TcpInfo(want) => {
                if let Expr::Struct(fields) = want {
                    for (name, value) in &fields {
                        let Some(v) = super::info::field(&done.data, name) else {
                            got.mismatch = Some(format!("TCP_INFO has no field {name} here"));
                            break;
                        };
                        let expected = match value {
                            Expr::Ellipsis => continue,
                            Expr::Int(x) => *x,
                            Expr::Symbol(s) => match tcp_state_number(s) {
                                Some(x) => x,
                                None => {
                                    got.mismatch = Some(format!("TCP_INFO value {s} is not known"));
                                    break;
                                }
                            },
                            e => {
                                got.mismatch =
                                    Some(format!("getsockopt TCP_INFO: {name}={e} is not a number"));
                                break;
                            }
                        };
                        if v != expected {
                            got.mismatch =
                                Some(format!("getsockopt TCP_INFO gave {name}={v}, expected {expected}"));
                            break;
                        }
                    }
                }
            }
            After::Poll(want) => {
                for (i, (fd, w)) in want.iter().enumerate() {
                    let r = done.data.get(i * 2..i * 2 + 2).map_or(0, |b| i16::from_ne_bytes([b[0], b[1]]));
                    let r = i64::from(r as u16);
                    if let Some(w) = w {
                        if *w != r {
                            got.mismatch = Some(format!("poll: fd {fd} revents {r:#x}, expected {w:#x}"));
                            break;
                        }
                    }
                }
            }
            After::Ioctl { req, want } => {
                let v =
                    i32::from_ne_bytes(done.data.get(..4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
                if want != Expr::Ellipsis && want != Expr::Int(i64::from(v)) {
                    got.mismatch = Some(format!("ioctl {req} gave [{v}], expected [{want}]"));
                }
            }
            After::Inq(want) => match done.data.get(1..5).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                None => got.mismatch = Some("no TCP_CM_INQ control message".into()),
                Some(b) => {
                    let v = i64::from(i32::from_ne_bytes(b));
                    if want != Expr::Ellipsis && want != Expr::Int(v) {
                        got.mismatch = Some(format!("TCP_CM_INQ {v} instead of {want}"));
                    }
                }
            },
            After::EpollWait(want) => {
                let evs: Vec<(i64, i64)> = done
                    .data
                    .chunks_exact(12)
                    .map(|b| {
                        let ev = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                        let d = u64::from_ne_bytes(b[4..12].try_into().unwrap_or([0; 8]));
                        (i64::from(ev), d as i64)
                    })
                    .collect();
                let wants: Vec<&Expr> = match &want {
                    Expr::Array(items) => items.iter().collect(),
                    Expr::Struct(_) => vec![&want],
                    _ => Vec::new(),
                };
                for (w, (ev, data)) in wants.iter().zip(&evs) {
                    if let Expr::Struct(fields) = w {
                        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                        match epoll_mask(get("events")) {
                            Ok(m) if get("events").is_some_and(|e| *e != Expr::Ellipsis) && m != *ev => {
                                got.mismatch = Some(format!("epoll_wait: events {ev:#x}, expected {m:#x}"));
                            }
                            _ => {}
                        }
                        if let Some(Expr::Int(fd)) = get("fd").or(get("u64")) {
                            if fd != data {
                                got.mismatch = Some(format!("epoll_wait: data {data}, expected {fd}"));
                            }
                        }
                    }
                }
            }
        }
        got
    }

    /// The kernel's TCP_INFO of the script's descriptor `fd`, as bytes, read on this thread (a
    /// getsockopt on an open descriptor does not block).
    pub fn tcp_info(&self, fd: i64) -> Result<Vec<u8>, String> {
        match execute(Op::GetSockOpt(self.real(fd), libc::IPPROTO_TCP, libc::TCP_INFO, 256)) {
            (r, _) if r < 0 => Err(errno_name(-r as i32)),
            (_, data) => Ok(data),
        }
    }
}

fn int_value(e: &Expr) -> Result<i32, CallErr> {
    match e {
        Expr::Int(v) => Ok(*v as i32),
        Expr::Symbol(s) => match s.as_str() {
            "IP_PMTUDISC_DONT" => Ok(libc::IP_PMTUDISC_DONT),
            "IP_PMTUDISC_WANT" => Ok(libc::IP_PMTUDISC_WANT),
            "IP_PMTUDISC_DO" => Ok(libc::IP_PMTUDISC_DO),
            "IP_PMTUDISC_PROBE" => Ok(libc::IP_PMTUDISC_PROBE),
            other => Err(CallErr::Refused(format!("the value {other} on the Linux backend"))),
        },
        e => Err(format!("expected a number, found `{e}`").into()),
    }
}

/// `send`/`recv` flags as bits; `MSG_NOSIGNAL` is always added on send.
fn send_flags(e: Option<&Expr>) -> Result<i32, CallErr> {
    let mut flags = 0;
    match e {
        None | Some(Expr::Ellipsis) => {}
        Some(Expr::Int(v)) => flags = *v as i32,
        Some(e) => {
            for f in symbols(e) {
                flags |= match f.as_str() {
                    "MSG_DONTWAIT" => libc::MSG_DONTWAIT,
                    "MSG_NOSIGNAL" => libc::MSG_NOSIGNAL,
                    "MSG_MORE" => libc::MSG_MORE,
                    "MSG_PEEK" => libc::MSG_PEEK,
                    "MSG_WAITALL" => libc::MSG_WAITALL,
                    "MSG_OOB" => libc::MSG_OOB,
                    "MSG_FASTOPEN" => libc::MSG_FASTOPEN,
                    "MSG_ZEROCOPY" => 0x0400_0000,
                    "MSG_EOR" => libc::MSG_EOR,
                    other => return Err(CallErr::Refused(format!("the {other} flag on the Linux backend"))),
                };
            }
        }
    }
    Ok(flags)
}

fn poll_mask(e: Option<&Expr>) -> Result<Option<i64>, CallErr> {
    let bit = |s: &str| poll_bit(s).ok_or_else(|| CallErr::from(format!("poll: unknown event {s}")));
    match e {
        None | Some(Expr::Ellipsis) => Ok(None),
        Some(Expr::Int(v)) => Ok(Some(*v)),
        Some(e) => symbols(e).iter().try_fold(0, |acc, s| Ok(acc | bit(s)?)).map(Some),
    }
}

fn epoll_mask(e: Option<&Expr>) -> Result<i64, CallErr> {
    let bit = |s: &str| epoll_bit(s).ok_or_else(|| CallErr::from(format!("epoll: unknown event {s}")));
    match e {
        None | Some(Expr::Ellipsis) => Ok(0),
        Some(Expr::Int(v)) => Ok(*v),
        Some(e) => symbols(e).iter().try_fold(0, |acc, s| Ok(acc | bit(s)?)),
    }
}

/// A socket option's level and name, as numbers.
fn option_names(c: &CallSpec) -> Result<(i32, i32), CallErr> {
    let level = match sym_arg(c, 1)?.as_str() {
        "SOL_SOCKET" => libc::SOL_SOCKET,
        "IPPROTO_TCP" | "SOL_TCP" => libc::IPPROTO_TCP,
        "IPPROTO_IP" | "SOL_IP" => libc::IPPROTO_IP,
        other => return Err(CallErr::Refused(format!("socket option level {other} on the Linux backend"))),
    };
    let name = sym_arg(c, 2)?;
    let code = match name.as_str() {
        "SO_REUSEADDR" => libc::SO_REUSEADDR,
        "SO_REUSEPORT" => libc::SO_REUSEPORT,
        "SO_ERROR" => libc::SO_ERROR,
        "SO_SNDBUF" => libc::SO_SNDBUF,
        "SO_RCVBUF" => libc::SO_RCVBUF,
        "SO_KEEPALIVE" => libc::SO_KEEPALIVE,
        "SO_LINGER" => libc::SO_LINGER,
        "SO_RCVLOWAT" => libc::SO_RCVLOWAT,
        "SO_SNDBUFFORCE" => libc::SO_SNDBUFFORCE,
        "SO_RCVBUFFORCE" => libc::SO_RCVBUFFORCE,
        "SO_MAX_PACING_RATE" => libc::SO_MAX_PACING_RATE,
        "SO_ZEROCOPY" => 60,
        "TCP_NODELAY" => libc::TCP_NODELAY,
        "TCP_MAXSEG" => libc::TCP_MAXSEG,
        "TCP_CORK" => libc::TCP_CORK,
        "TCP_KEEPIDLE" => libc::TCP_KEEPIDLE,
        "TCP_KEEPINTVL" => libc::TCP_KEEPINTVL,
        "TCP_KEEPCNT" => libc::TCP_KEEPCNT,
        "TCP_SYNCNT" => libc::TCP_SYNCNT,
        "TCP_LINGER2" => libc::TCP_LINGER2,
        "TCP_DEFER_ACCEPT" => libc::TCP_DEFER_ACCEPT,
        "TCP_WINDOW_CLAMP" => libc::TCP_WINDOW_CLAMP,
        "TCP_INFO" => libc::TCP_INFO,
        "TCP_QUICKACK" => libc::TCP_QUICKACK,
        "TCP_CONGESTION" => libc::TCP_CONGESTION,
        "TCP_USER_TIMEOUT" => libc::TCP_USER_TIMEOUT,
        "TCP_FASTOPEN" => libc::TCP_FASTOPEN,
        "TCP_NOTSENT_LOWAT" => libc::TCP_NOTSENT_LOWAT,
        "TCP_FASTOPEN_CONNECT" => libc::TCP_FASTOPEN_CONNECT,
        "TCP_FASTOPEN_NO_COOKIE" => 34,
        "TCP_INQ" => 36,
        "TCP_TX_DELAY" => 37,
        "IP_TOS" => libc::IP_TOS,
        "IP_MTU_DISCOVER" => libc::IP_MTU_DISCOVER,
        other => return Err(CallErr::Refused(format!("socket option {other} on the Linux backend"))),
    };
    Ok((level, code))
}

/// An errno's name as scripts write it (the number when this table lacks it).
pub(super) fn errno_name(code: i32) -> String {
    if let Some(e) = utcp::Errno::ALL.iter().find(|e| e.code() == code) {
        return e.name().to_string();
    }
    match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOSPC => "ENOSPC",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENOBUFS => "ENOBUFS",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ESHUTDOWN => "ESHUTDOWN",
        _ => return format!("errno {code}"),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(text: &str) -> CallSpec {
        let s = crate::script::parse_script("t.pkt", &format!("0 {text}\n")).expect("parses");
        match &s.events[0].kind {
            EventKind::Call(c) => c.clone(),
            k => panic!("not a call: {k:?}"),
        }
    }

    #[test]
    fn errno_names_are_the_ones_scripts_write() {
        assert_eq!(errno_name(libc::EAGAIN), "EAGAIN");
        assert_eq!(errno_name(libc::ECONNREFUSED), "ECONNREFUSED");
        assert_eq!(errno_name(libc::ENOPROTOOPT), "ENOPROTOOPT");
        assert_eq!(errno_name(4095), "errno 4095");
    }

    #[test]
    fn socket_options_map_to_the_kernels_numbers_and_unknown_ones_are_refused() {
        let c = call("setsockopt(3, SOL_TCP, TCP_NODELAY, [1], 4) = 0");
        assert_eq!(option_names(&c).ok(), Some((libc::IPPROTO_TCP, libc::TCP_NODELAY)));
        let c = call("getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0");
        assert_eq!(option_names(&c).ok(), Some((libc::SOL_SOCKET, libc::SO_ERROR)));
        let c = call("setsockopt(3, SOL_SOCKET, SO_NO_SUCH_THING, [1], 4) = 0");
        assert!(matches!(option_names(&c), Err(CallErr::Refused(f)) if f.contains("SO_NO_SUCH_THING")));
    }

    #[test]
    fn send_flags_are_bits_and_unknown_ones_are_refused() {
        let e = Expr::BitOr(vec![Expr::Symbol("MSG_DONTWAIT".into()), Expr::Symbol("MSG_MORE".into())]);
        assert_eq!(send_flags(Some(&e)).ok(), Some(libc::MSG_DONTWAIT | libc::MSG_MORE));
        assert_eq!(send_flags(None).ok(), Some(0));
        assert!(matches!(send_flags(Some(&Expr::Symbol("MSG_BOGUS".into()))), Err(CallErr::Refused(_))));
    }

    #[test]
    fn option_values_name_the_path_mtu_modes() {
        assert_eq!(int_value(&Expr::Symbol("IP_PMTUDISC_DONT".into())).ok(), Some(libc::IP_PMTUDISC_DONT));
        assert_eq!(int_value(&Expr::Int(7)).ok(), Some(7));
        assert!(int_value(&Expr::Symbol("NOT_A_VALUE".into())).is_err());
    }
}
