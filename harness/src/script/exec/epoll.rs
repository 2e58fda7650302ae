//! `epoll_create`, `epoll_ctl` and `epoll_wait` over the same readiness `poll` reads
//! ([`Exec::ready`]), level-triggered or, with `EPOLLET`, edge-triggered as Linux wakes a waiter:
//! an item is reported again only after a wake-up, which is new data or a FIN arriving
//! (RCV.NXT moves), the connection's state changing, or the socket becoming writable after it
//! was not. `EPOLLONESHOT` disarms an item once reported, until `EPOLL_CTL_MOD`.

use super::calls::CallErr;
use super::*;

const EPOLLIN: i64 = 0x1;
const EPOLLPRI: i64 = 0x2;
const EPOLLOUT: i64 = 0x4;
const EPOLLERR: i64 = 0x8;
const EPOLLHUP: i64 = 0x10;
const EPOLLRDHUP: i64 = 0x2000;
const EPOLLEXCLUSIVE: i64 = 1 << 28;
const EPOLLONESHOT: i64 = 1 << 30;
const EPOLLET: i64 = 1 << 31;

/// One registered descriptor.
#[derive(Debug, Clone)]
pub(super) struct Item {
    events: i64,
    /// Set by a wake-up not yet reported (edge-triggered), and at registration.
    woken: bool,
    /// Disarmed by EPOLLONESHOT after a report.
    disarmed: bool,
    /// What the last look saw: RCV.NXT, the state, whether writable.
    seen: Option<(u32, State, bool)>,
}

/// An epoll instance: its interest list by descriptor.
#[derive(Debug, Clone, Default)]
pub(super) struct Epoll {
    items: BTreeMap<i64, Item>,
}

/// The value of an `EPOLL*` event name (sys/epoll.h), whichever executor reads it.
pub(crate) fn epoll_bit(name: &str) -> Option<i64> {
    Some(match name {
        "EPOLLIN" => EPOLLIN,
        "EPOLLPRI" => EPOLLPRI,
        "EPOLLOUT" => EPOLLOUT,
        "EPOLLERR" => EPOLLERR,
        "EPOLLHUP" => EPOLLHUP,
        "EPOLLRDNORM" => 0x40,
        "EPOLLWRNORM" => 0x100,
        "EPOLLRDHUP" => EPOLLRDHUP,
        "EPOLLEXCLUSIVE" => EPOLLEXCLUSIVE,
        "EPOLLONESHOT" => EPOLLONESHOT,
        "EPOLLET" => EPOLLET,
        _ => return None,
    })
}

/// An event utcp's epoll honours (EPOLLEXCLUSIVE refused, the *NORM ones unknown to it).
fn bit(name: &str) -> Result<i64, CallErr> {
    match name {
        "EPOLLEXCLUSIVE" => Err(CallErr::Refused("EPOLLEXCLUSIVE".into())),
        "EPOLLRDNORM" | "EPOLLWRNORM" => Err(format!("epoll: unknown event {name}").into()),
        _ => epoll_bit(name).ok_or_else(|| format!("epoll: unknown event {name}").into()),
    }
}

fn mask(e: Option<&Expr>) -> Result<i64, CallErr> {
    match e {
        None | Some(Expr::Ellipsis) => Ok(0),
        Some(Expr::Int(v)) => Ok(*v),
        Some(e) => symbols(e).iter().try_fold(0, |acc, s| Ok(acc | bit(s)?)),
    }
}

fn field<'e>(e: &'e Expr, name: &str) -> Option<&'e Expr> {
    match e {
        Expr::Struct(fields) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
        _ => None,
    }
}

impl Epoll {
    /// Forgets a closed descriptor.
    pub(super) fn remove(&mut self, fd: i64) {
        self.items.remove(&fd);
    }
}

impl Exec<'_> {
    pub(super) fn epoll_create(&mut self, c: &CallSpec) -> CallResult {
        let options = self.default_options();
        let fd = self.alloc_expected_fd(FdKind::Epoll, options, c);
        self.epolls.insert(fd, Epoll::default());
        Ok(fd)
    }

    pub(super) fn epoll_ctl(&mut self, c: &CallSpec) -> Result<CallResult, CallErr> {
        let epfd = int_arg(c, 0)?;
        let op = sym_arg(c, 1)?;
        let fd = int_arg(c, 2)?;
        let events = mask(c.args.get(3).and_then(|e| field(e, "events")))?;
        if events & EPOLLEXCLUSIVE != 0 {
            return Err(CallErr::Refused("EPOLLEXCLUSIVE".into()));
        }
        if !self.fds.contains_key(&fd) {
            return Ok(Err(Errno::EBADF));
        }
        let Some(ep) = self.epolls.get_mut(&epfd) else { return Ok(Err(Errno::EBADF)) };
        match op.as_str() {
            "EPOLL_CTL_ADD" | "EPOLL_CTL_MOD" => {
                let item = Item { events, woken: true, disarmed: false, seen: None };
                if op == "EPOLL_CTL_ADD" && ep.items.contains_key(&fd) {
                    return Ok(Err(Errno::EINVAL));
                }
                ep.items.insert(fd, item);
            }
            "EPOLL_CTL_DEL" => {
                if ep.items.remove(&fd).is_none() {
                    return Ok(Err(Errno::EINVAL));
                }
            }
            other => return Err(format!("epoll_ctl: unknown operation {other}").into()),
        }
        Ok(Ok(0))
    }

    /// What a wake-up looks at for `fd`: RCV.NXT, the state, whether writable.
    fn wake_state(&mut self, fd: i64) -> Option<(u32, State, bool)> {
        let Some(Fd { kind: FdKind::Conn(h), .. }) = self.fds.get(&fd).cloned() else { return None };
        let info = self.stack().info(h)?;
        let writable = self.stack().readiness(h).is_some_and(|r| r.writable);
        Some((info.rcv_nxt, info.state, writable))
    }

    pub(super) fn epoll_wait(&mut self, p: &mut Pending) -> Result<Option<CallResult>, CallErr> {
        let c = p.call.clone();
        let epfd = int_arg(&c, 0)?;
        let timeout = int_arg(&c, 3)?;
        let Some(ep) = self.epolls.get(&epfd).cloned() else { return Ok(Some(Err(Errno::EBADF))) };
        let mut ep = ep;
        let mut reported = Vec::new();
        for (fd, item) in ep.items.iter_mut() {
            if item.disarmed {
                continue;
            }
            let now_seen = self.wake_state(*fd);
            if let (Some(before), Some(after)) = (item.seen, now_seen) {
                let became_writable = !before.2 && after.2;
                if before.0 != after.0 || before.1 != after.1 || became_writable {
                    item.woken = true;
                }
            }
            item.seen = now_seen.or(item.seen);
            let ready = self.ready(*fd);
            let got = ready & (item.events | EPOLLERR | EPOLLHUP) & !(EPOLLET | EPOLLONESHOT);
            let edge = item.events & EPOLLET != 0;
            if got != 0 && (!edge || item.woken) {
                reported.push((*fd, got));
                if item.events & EPOLLONESHOT != 0 {
                    item.disarmed = true;
                }
            }
            if edge {
                item.woken = false;
            }
        }
        let waited = self.now.total_micros().saturating_sub(p.started);
        let expired = timeout >= 0 && waited >= (timeout as u64).saturating_mul(1000);
        if reported.is_empty() && !expired {
            return Ok(None);
        }
        self.epolls.insert(epfd, ep);
        let want = c.args.get(1).cloned().unwrap_or(Expr::Ellipsis);
        if let Some((fd, got)) = reported.first() {
            let want_events = mask(field(&want, "events"))?;
            if field(&want, "events").is_some() && want_events != *got {
                return Err(format!("epoll_wait: fd {fd} events {got:#x}, expected {want_events:#x}").into());
            }
            if let Some(Expr::Int(want_fd)) = field(&want, "fd") {
                if want_fd != fd {
                    return Err(format!("epoll_wait: fd {fd} reported, expected fd {want_fd}").into());
                }
            }
        }
        Ok(Some(Ok(reported.len() as i64)))
    }
}
