//! Fixtures for tests that talk to the kernel over a TUN device: a network namespace the test
//! creates and always removes, `utcp live` started inside it, and kernel sockets opened inside it
//! from a thread that joined it with setns(2).
//!
//! Network safety (DESIGN.md): every address used exists only inside the namespace; nothing is
//! configured in the host's namespace; every wait is bounded. These tests need root: without it
//! they print why and pass, except under `UTCP_LIVE_TESTS=require`, where they fail.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// utcp's IPv4 address in every test namespace (and the kernel side's).
pub const UTCP_V4: &str = "10.99.0.2";
/// The kernel side of the TUN device, IPv4.
pub const HOST_V4: &str = "10.99.0.1";
/// utcp's IPv6 address.
pub const UTCP_V6: &str = "fd00:99::2";
/// The kernel side, IPv6.
pub const HOST_V6: &str = "fd00:99::1";

/// Whether live tests can run here; prints why not. Under `UTCP_LIVE_TESTS=require` a missing
/// privilege or tool is a failure.
pub fn live_or_skip(test: &str, tools: &[&str]) -> bool {
    let required = std::env::var("UTCP_LIVE_TESTS").is_ok_and(|v| v == "require");
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root (or CAP_NET_ADMIN and CAP_SYS_ADMIN)".to_string());
    }
    for t in ["ip"].iter().chain(tools) {
        if !on_path(t) {
            missing.push(format!("the `{t}` command"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("{test}: needs {}", missing.join(", "));
    assert!(!required, "{why} (UTCP_LIVE_TESTS=require)");
    eprintln!("skipped: {why}");
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Runs a command, failing the test with its output when it fails.
#[track_caller]
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace of the test's own, deleted on drop (also when the test panics).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace with its loopback up.
    pub fn new(tag: &str) -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("utcp-t{}-{}-{tag}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run(ns.cmd("ip").args(["link", "set", "lo", "up"]));
        ns
    }

    /// A command that runs inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that joined the namespace, so sockets it opens live there.
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on a descriptor we hold open; it changes only this thread's namespace.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Drops `pct` percent of the packets the kernel sends to and receives from `device`
    /// (iptables `-m statistic --mode random`, in this namespace only).
    pub fn drop_randomly(&self, device: &str, pct: u32) {
        let p = format!("{:.2}", f64::from(pct) / 100.0);
        for (chain, dir) in [("OUTPUT", "-o"), ("INPUT", "-i")] {
            run(self.cmd("iptables").args([
                "-A",
                chain,
                dir,
                device,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ]));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// `utcp live` running inside a namespace; stopped with SIGINT on drop (then killed if needed).
pub struct Utcp {
    child: Option<Child>,
    /// What it printed to stderr so far (collected by a thread).
    log: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Utcp {
    /// Starts `utcp live --addr ... --configure ARGS...` in `ns` and waits (at most 20 s) until
    /// it says it is serving (or connecting).
    pub fn start(ns: &Netns, args: &[&str]) -> Utcp {
        Self::start_with(ns, args, Stdio::null())
    }

    /// Like [`Utcp::start`] with the child's stdin given.
    pub fn start_with(ns: &Netns, args: &[&str], stdin: Stdio) -> Utcp {
        let bin = env!("CARGO_BIN_EXE_utcp");
        let mut cmd = ns.cmd(bin);
        cmd.args(["live", "--tun", "utcp0", "--addr", &format!("{UTCP_V4}/24")])
            .args(["--addr", &format!("{UTCP_V6}/64"), "--configure"])
            .args(args)
            .env("RUST_LOG", "utcp=info,utcp_harness=info")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut u = Utcp { child: Some(child), log: rx, lines: Vec::new() };
        let ready =
            args.first() == Some(&"connect") || u.wait_for_line("Ctrl-C stops", Duration::from_secs(20));
        assert!(ready, "utcp live did not start:\n{}", u.log_text());
        u
    }

    /// Waits until stderr has a line containing `what`; false after `timeout`.
    pub fn wait_for_line(&mut self, what: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.lines.iter().any(|l| l.contains(what)) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) => self.lines.push(l),
                Err(_) => return false,
            }
        }
    }

    /// Everything printed to stderr so far.
    pub fn log_text(&mut self) -> String {
        while let Ok(l) = self.log.try_recv() {
            self.lines.push(l);
        }
        self.lines.join("\n")
    }

    /// The child, for its stdin and stdout.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    /// Sends SIGINT and waits (at most `timeout`) for the exit; returns its status code.
    pub fn interrupt(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let code = wait_bounded(&mut child, timeout);
        if code.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        code
    }

    /// Waits (at most `timeout`) for the process to exit by itself; returns its status code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let code = wait_bounded(&mut child, timeout);
        if code.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        code
    }
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<i32> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for Utcp {
    fn drop(&mut self) {
        self.interrupt(Duration::from_secs(5));
    }
}

/// A directory of the test's own under the system's temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A new empty directory.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "utcp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes from a seed (SplitMix64), so a failure is reproducible.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    utcp_harness::netsim::SplitMix64::new(seed).bytes(len)
}

/// SHA-256 in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
