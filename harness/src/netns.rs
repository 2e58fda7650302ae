//! Network namespaces this process creates for itself, and the little it needs around them: a
//! guard that deletes its namespace on every exit path, threads that enter one with `setns(2)`,
//! `ip` commands with their errors quoted, and SIGINT/SIGTERM turned into a flag so that Ctrl-C
//! unwinds through the guards instead of killing the process.
//!
//! Used by `utcp bench live`, `utcp link`, `utcp bench loss` and the kernel backend of `utcp replay`
//! (which also reads its sockets' congestion control with [`congestion_control`]). Network safety (DESIGN.md): a
//! namespace's name starts with its user's prefix and the creating process's pid, so a later run
//! can tell a namespace whose process is gone ([`sweep_stale`]) and nothing else is touched;
//! nothing here configures the caller's own namespace.
//!
//! Must not depend on: the stack, the link, anything with virtual time.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

/// A network namespace this process created; dropping it deletes it (and every device in it).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// `ip netns add PREFIX<pid>-TAG` and `lo` up in it.
    pub fn create(prefix: &str, tag: &str) -> Result<Netns, String> {
        let name = format!("{prefix}{}-{tag}", std::process::id());
        cmd(&["ip", "netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "dev", "lo", "up"])?;
        tracing::debug!(ns = ns.name, "namespace created");
        Ok(ns)
    }

    /// The namespace's name, as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        cmd(&all)
    }

    /// `ip -n NAME ARGS`, returning what it printed.
    pub fn ip_output(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        output(&all)
    }

    /// `ip netns exec NAME ARGS`.
    pub fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        cmd(&all)
    }

    /// `ip netns exec NAME ARGS`, returning what it printed.
    pub fn exec_output(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        output(&all)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a new thread that first enters this namespace: sockets and TUN devices it
    /// opens live in there.
    pub fn spawn<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<JoinHandle<Result<T, String>>, String> {
        spawn_in(&self.name, what, f)
    }

    /// Runs `f` inside this namespace on a thread of its own and waits for it.
    pub fn within<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        join(self.spawn(what, f)?, what)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        match cmd(&["ip", "netns", "del", &self.name]) {
            Ok(()) => tracing::debug!(ns = self.name, "namespace deleted"),
            Err(e) => eprintln!("utcp: could not delete namespace {}: {e}", self.name),
        }
    }
}

/// Runs `f` on a new thread that first enters the namespace named `name` (one this process
/// created; see [`Netns::spawn`]), for holders of the name rather than of the guard.
pub fn spawn_in<T: Send + 'static>(
    name: &str,
    what: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<JoinHandle<Result<T, String>>, String> {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let ns = name.to_string();
    std::thread::Builder::new()
        .name(what.into())
        .spawn(move || {
            // SAFETY: setns takes a descriptor we hold open and a flag; it only changes the
            // network namespace of this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns into {ns}: {}", io::Error::last_os_error()));
            }
            drop(file);
            f()
        })
        .map_err(|e| format!("cannot start thread {what}: {e}"))
}

/// Joins a thread that returns a `Result`, turning a panic into an error naming `what`.
pub fn join<T>(h: JoinHandle<Result<T, String>>, what: &str) -> Result<T, String> {
    h.join().map_err(|p| format!("{what} panicked: {}", crate::panic_message(p.as_ref())))?
}

/// Deletes namespaces named `PREFIX<pid>-...` whose process is gone (killed with SIGKILL, say).
pub fn sweep_stale(prefix: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix(prefix).and_then(|rest| rest.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(ns = name, "deleting a namespace left by an earlier run");
            let _ = cmd(&["ip", "netns", "del", name]);
        }
    }
}

/// Runs a command; an error quotes it and what it printed.
pub fn cmd(args: &[&str]) -> Result<(), String> {
    output(args).map(drop)
}

/// Runs a command and returns its standard output; an error quotes it and what it printed.
pub fn output(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", args[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Whether this process may create namespaces and devices: root, or both CAP_NET_ADMIN and
/// CAP_SYS_ADMIN (setns(2) needs the latter) in its effective set.
pub fn privileged() -> bool {
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    eff & (1 << CAP_NET_ADMIN) != 0 && eff & (1 << CAP_SYS_ADMIN) != 0
}

/// Makes SIGINT and SIGTERM set the flag [`interrupted`] reads instead of killing the process,
/// so the namespace guards run. Idempotent.
pub fn catch_signals() {
    signals::install();
}

/// True once SIGINT or SIGTERM arrived after [`catch_signals`].
pub fn interrupted() -> bool {
    signals::INTERRUPTED.load(Ordering::Relaxed)
}

mod signals {
    use std::sync::atomic::{AtomicBool, Ordering};

    pub(super) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::Relaxed);
    }

    pub(super) fn install() {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe { libc::signal(sig, handler) };
        }
    }
}

/// The congestion control a kernel socket runs (`TCP_CONGESTION`): the namespace's default unless
/// it was set.
pub fn congestion_control(fd: RawFd) -> io::Result<String> {
    let mut buf = [0u8; 16];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `buf` and the new length into `len`.
    let r = unsafe {
        libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, buf.as_mut_ptr().cast(), &mut len)
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes = &buf[..(len as usize).min(buf.len())];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}
