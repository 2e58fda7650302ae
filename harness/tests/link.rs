//! `utcp link` and `utcp bench loss` end to end: the kernel's TCP in one of the link's
//! namespaces talks to the kernel's TCP in the other through the seeded impairment link.
//!
//! Needs root (namespaces, TUN devices): without it every test here prints why and passes,
//! unless `UTCP_LIVE_TESTS=require`, where it fails. The kernel sockets are opened on threads
//! that joined the link's namespaces with setns(2); every address exists only in there. Every
//! wait is bounded. No figure is compared with a speed.

mod netns;

use netns::{live_or_skip, seeded_bytes, sha256_hex};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ADDR_B: &str = "10.77.0.2";
/// Every wait on the network or on a child ends after this.
const LIMIT: Duration = Duration::from_secs(60);

/// One test at a time: each makes namespaces and the sweep test counts them.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `utcp link ARGS` started in the background, its stderr collected.
struct Link {
    child: Option<Child>,
    stderr: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Link {
    /// Starts `utcp link ARGS` and waits (at most 20 s) until it says the link is up.
    fn start(args: &[&str]) -> Link {
        let mut child = Command::new(env!("CARGO_BIN_EXE_utcp"))
            .arg("link")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the utcp binary runs");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut link = Link { child: Some(child), stderr: rx, lines: Vec::new() };
        let end = Instant::now() + Duration::from_secs(20);
        while !link.lines.iter().any(|l| l.contains("utcp link: up")) {
            let left = end.saturating_duration_since(Instant::now());
            match link.stderr.recv_timeout(left) {
                Ok(l) => link.lines.push(l),
                Err(_) => panic!("utcp link did not come up:\n{}", link.lines.join("\n")),
            }
        }
        link
    }

    /// The namespace of end `ab` ("a" or "b").
    fn ns(&self, ab: &str) -> String {
        format!("utcp-link-{}-{ab}", self.child.as_ref().expect("running").id())
    }

    /// SIGINT, then waits (bounded) for the exit; returns the exit code, stdout and stderr.
    fn interrupt(&mut self) -> (Option<i32>, String, String) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let end = Instant::now() + LIMIT;
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st.code();
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(1)) {
            self.lines.push(l);
        }
        (status, out, self.lines.join("\n"))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.interrupt();
        }
    }
}

/// Runs `f` on a thread inside the namespace `ns`.
fn within<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a descriptor we hold open; it changes only this thread's namespace.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// A kernel TCP transfer of `data` from namespace A to a server in namespace B through the link;
/// returns what the server read.
fn kernel_transfer(link: &Link, port: u16, data: Vec<u8>) -> Vec<u8> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = within(&link.ns("b"), move || -> Result<Vec<u8>, String> {
        let listener = TcpListener::bind((ADDR_B, port)).map_err(|e| format!("bind: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        ready_tx.send(()).map_err(|e| e.to_string())?;
        let end = Instant::now() + LIMIT;
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(LIMIT)).map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        stream.read_to_end(&mut got).map_err(|e| format!("read after {} bytes: {e}", got.len()))?;
        Ok(got)
    });
    ready_rx.recv_timeout(LIMIT).expect("the server listens");
    let client = within(&link.ns("a"), move || -> Result<(), String> {
        let target: SocketAddr = format!("{ADDR_B}:{port}").parse().expect("an address");
        let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(10))
            .map_err(|e| format!("connect: {e}"))?;
        s.set_write_timeout(Some(LIMIT)).map_err(|e| e.to_string())?;
        s.write_all(&data).map_err(|e| format!("write: {e}"))?;
        s.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))
    });
    client.join().expect("client thread").expect("the client sent everything");
    server.join().expect("server thread").expect("the server read to the end")
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{stdout}"))
}

fn namespaces_left(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    let prefix = format!("utcp-link-{pid}-");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_perfect_link_carries_a_kernel_tcp_transfer_intact_and_counts_it() {
    if !live_or_skip("a_perfect_link_carries_a_kernel_tcp_transfer_intact_and_counts_it", &[]) {
        return;
    }
    let _serial = serial();
    let mut link = Link::start(&["--loss", "0", "--json"]);
    let pid = link.child.as_ref().unwrap().id();
    let data = seeded_bytes(11, 4 << 20);
    let got = kernel_transfer(&link, 7001, data.clone());
    assert_eq!(got.len(), data.len());
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
    let (code, out, err) = link.interrupt();
    assert_eq!(code, Some(130), "Ctrl-C ends utcp link with 130:\n{err}");
    let v = json(&out);
    let ab = &v["a_to_b"];
    let sent = ab["sent"].as_u64().unwrap();
    assert!(sent > (4 << 20) / 1500, "4 MiB is more than {sent} datagrams: {v}");
    assert_eq!(ab["lost"], 0, "{v}");
    assert_eq!(ab["delivered"], ab["sent"], "{v}");
    assert!(ab["bytes_delivered"].as_u64().unwrap() > 4 << 20, "{v}");
    assert!(v["b_to_a"]["delivered"].as_u64().unwrap() > 0, "the ACKs came back: {v}");
    assert_eq!(v["link"], "delay 10ms rate 1000Mbit/s", "the selftest's link by default: {v}");
    assert_eq!(v["ended_by"], "interrupted", "{v}");
    assert_eq!(namespaces_left(pid), Vec::<String>::new(), "utcp link removes its namespaces");
}

#[test]
fn a_lossy_link_loses_datagrams_and_the_kernel_still_delivers_every_byte() {
    if !live_or_skip("a_lossy_link_loses_datagrams_and_the_kernel_still_delivers_every_byte", &[]) {
        return;
    }
    let _serial = serial();
    let mut link = Link::start(&["--loss", "2", "--delay", "2", "--queue", "1000", "--seed", "5", "--json"]);
    let data = seeded_bytes(12, 3 << 20);
    let got = kernel_transfer(&link, 7002, data.clone());
    assert_eq!(sha256_hex(&got), sha256_hex(&data), "{} of {} bytes", got.len(), data.len());
    let (code, out, err) = link.interrupt();
    assert_eq!(code, Some(130), "{err}");
    let v = json(&out);
    let ab = &v["a_to_b"];
    let (sent, lost, dropped, delivered) = (
        ab["sent"].as_u64().unwrap(),
        ab["lost"].as_u64().unwrap(),
        ab["queue_drops"].as_u64().unwrap(),
        ab["delivered"].as_u64().unwrap(),
    );
    assert!(lost > 0, "2 % of {sent} datagrams should be lost: {v}");
    assert!(delivered + lost + dropped <= sent, "{v}");
    assert!(delivered >= (3 << 20) / 1500, "{v}");
    assert_eq!(v["link"], "loss 2% delay 2ms rate 1000Mbit/s queue 1000", "{v}");
}

#[test]
fn the_command_runs_in_namespace_a_and_its_exit_status_is_the_links() {
    if !live_or_skip("the_command_runs_in_namespace_a_and_its_exit_status_is_the_links", &["ping"]) {
        return;
    }
    let _serial = serial();
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_utcp")).args(["link", "--json", "--", "sh", "-c"]).arg(
            "ping -c 2 -i 0.2 -W 5 \"$UTCP_LINK_ADDR_B\" >/dev/null && [ \"$UTCP_LINK_ADDR_A\" = 10.77.0.1 ] && exit 7",
        ),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "the command's status:\n{err}");
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["command_status"], 7, "{v}");
    assert_eq!(v["ended_by"], "command", "{v}");
    assert!(v["a_to_b"]["delivered"].as_u64().unwrap() >= 2, "the echo requests: {v}");
    assert!(v["b_to_a"]["delivered"].as_u64().unwrap() >= 2, "the echo replies: {v}");
}

#[test]
fn a_server_that_never_listens_fails_the_wait_and_is_reported() {
    if !live_or_skip("a_server_that_never_listens_fails_the_wait_and_is_reported", &[]) {
        return;
    }
    let _serial = serial();
    let out = run_bounded(Command::new(env!("CARGO_BIN_EXE_utcp")).args([
        "link",
        "--server",
        "exit 3",
        "--wait-port",
        "9",
        "--",
        "true",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the server exited") && err.contains("port 9"), "{err}");
}

#[test]
fn the_server_and_what_its_shell_started_end_with_the_command() {
    if !live_or_skip("the_server_and_what_its_shell_started_end_with_the_command", &[]) {
        return;
    }
    let _serial = serial();
    let dir = netns::TempDir::new("link-server");
    let pidfile = dir.path().join("pid");
    // The shell exits at once; the sleep it started in the background must still be ended.
    let server = format!("sleep 300 & echo $! > {}", pidfile.display());
    // The command waits (bounded) until the background sleep has written its pid.
    let command =
        format!("for i in $(seq 100); do [ -s {} ] && exit 0; sleep 0.1; done; exit 9", pidfile.display());
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_utcp"))
            .args(["link", "--server", &server, "--", "sh", "-c", &command]),
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let pid = std::fs::read_to_string(&pidfile).expect("the server wrote its pid");
    let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    assert!(!cmdline.starts_with("sleep"), "the server's background sleep {pid} outlived the run");
}

#[test]
fn namespaces_of_a_killed_link_are_swept_by_the_next_one() {
    if !live_or_skip("namespaces_of_a_killed_link_are_swept_by_the_next_one", &[]) {
        return;
    }
    let _serial = serial();
    let mut first = Link::start(&[]);
    let mut child = first.child.take().unwrap();
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(namespaces_left(pid).len(), 2, "SIGKILL leaves both namespaces behind");
    let out = run_bounded(Command::new(env!("CARGO_BIN_EXE_utcp")).args(["link", "--duration", "0.2"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let left = namespaces_left(pid);
    for ns in &left {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
    assert_eq!(left, Vec::<String>::new(), "the next run deletes a dead run's namespaces");
}

#[test]
fn bench_loss_json_gives_every_loss_rate_with_both_figures_and_the_ratio() {
    if !live_or_skip("bench_loss_json_gives_every_loss_rate_with_both_figures_and_the_ratio", &[]) {
        return;
    }
    let _serial = serial();
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_utcp")).args(["bench", "loss", "--json", "--bytes", "128K"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "utcp bench loss failed ({}):\n{err}", out.status);
    let v = json(&String::from_utf8_lossy(&out.stdout));
    let rows = v["rows"].as_array().unwrap_or_else(|| panic!("no rows: {v}"));
    let losses: Vec<f64> = rows.iter().map(|r| r["loss"].as_f64().unwrap()).collect();
    assert_eq!(losses, [0.0, 0.001, 0.01, 0.02, 0.05], "{v}");
    for row in rows {
        for key in ["utcp_mbps", "linux_mbps", "ratio"] {
            let x = row[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {row}"));
            assert!(x > 0.0, "{key} = {x} in {row}");
        }
        assert!(row["link_limited"].is_boolean(), "{row}");
    }
    assert!(v["ceiling"]["relay_mbps"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["ceiling"]["veth_mbps"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["linux_congestion_control"], "cubic", "{v}");
}

/// Runs a command to its end, killing it after [`LIMIT`] (three times for the bench). Its
/// output must be closed within 5 s of its exit: a process it left behind holding it fails.
fn run_bounded(cmd: &mut Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let collect = |mut pipe: Box<dyn Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = pipe.read_to_end(&mut b);
            let _ = tx.send(b);
        });
        rx
    };
    let out = collect(Box::new(child.stdout.take().unwrap()));
    let err = collect(Box::new(child.stderr.take().unwrap()));
    let end = Instant::now() + 3 * LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > end {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            panic!("{cmd:?} did not end within {:?}", 3 * LIMIT);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let closed = |rx: mpsc::Receiver<Vec<u8>>, which: &str| {
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{cmd:?} exited but a process it left behind holds its {which} open"))
    };
    Output { status, stdout: closed(out, "stdout"), stderr: closed(err, "stderr") }
}
