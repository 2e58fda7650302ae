//! Live tests: `utcp live` on a TUN device in a namespace of the test's own, with the Linux
//! kernel as the peer (ping, curl, kernel sockets), with and without real packet loss
//! (iptables' statistic match in that namespace). Root only; see `netns/mod.rs`.

mod netns;

use netns::{
    live_or_skip, run, seeded_bytes, sha256_hex, Netns, TempDir, Utcp, HOST_V4, HOST_V6, UTCP_V4, UTCP_V6,
};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;
use utcp_harness::capture::calls::AppCall;
use utcp_harness::capture::flows::{Recorded, Side};

/// Every socket wait in these tests gives up after this long.
const WAIT: Duration = Duration::from_secs(60);

fn v4(port: u16) -> SocketAddr {
    SocketAddr::new(UTCP_V4.parse().unwrap(), port)
}

/// Sends `data` to an echo server at `addr` from a kernel socket and returns what came back.
fn echo_through(addr: SocketAddr, data: Vec<u8>) -> Vec<u8> {
    let s = TcpStream::connect_timeout(&addr, WAIT).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).expect("write to echo");
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back).unwrap_or_else(|e| panic!("read from echo after {} bytes: {e}", back.len()));
    writer.join().unwrap();
    back
}

/// RFC 792 / RFC 4443 §4.1: echo requests to utcp's addresses get replies.
#[test]
fn ping_gets_replies_ipv4_and_ipv6() {
    if !live_or_skip("ping_gets_replies_ipv4_and_ipv6", &["ping"]) {
        return;
    }
    let ns = Netns::new("ping");
    let _utcp = Utcp::start(&ns, &["discard", "9"]);
    for (addr, flag) in [(UTCP_V4, "-4"), (UTCP_V6, "-6")] {
        let out = run(ns.cmd("ping").args([flag, "-c", "3", "-i", "0.2", "-W", "2", addr]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("3 received"), "ping {addr}:\n{text}");
    }
}

/// A 10 MiB file over HTTP to curl, SHA-256 checked; a path outside DIR gives no byte of it.
fn http_download(loss: Option<u32>) {
    let ns = Netns::new("http");
    let site = TempDir::new("site");
    let outside = TempDir::new("outside");
    let marker = "SECRET-utcp-outside-the-served-directory";
    std::fs::write(outside.path().join("secret.txt"), marker).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), site.path().join("link.txt")).unwrap();
    let www = site.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), www.join("link.txt")).unwrap();
    let body = seeded_bytes(10, 10 << 20);
    std::fs::write(www.join("big.bin"), &body).unwrap();
    // The secret also sits next to the served directory, for `..` to reach.
    std::fs::write(site.path().join("secret.txt"), marker).unwrap();
    let _utcp = Utcp::start(&ns, &["http", "8080", www.to_str().unwrap()]);
    if let Some(pct) = loss {
        ns.drop_randomly("utcp0", pct);
    }
    let got = site.path().join("got.bin");
    run(ns.cmd("curl").args([
        "-sS",
        "--fail",
        "--max-time",
        "120",
        "-o",
        got.to_str().unwrap(),
        &format!("http://{UTCP_V4}:8080/big.bin"),
    ]));
    let got = std::fs::read(&got).unwrap();
    assert_eq!(got.len(), body.len(), "bytes downloaded");
    assert_eq!(sha256_hex(&got), sha256_hex(&body), "SHA-256 of the download");
    for path in
        ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2E%2E%2Fsecret.txt", "/link.txt"]
    {
        let out = run(ns.cmd("curl").args([
            "-sS",
            "--path-as-is",
            "--max-time",
            "30",
            "-w",
            "\n%{http_code}",
            &format!("http://{UTCP_V4}:8080{path}"),
        ]));
        let text = String::from_utf8_lossy(&out.stdout);
        let status = text.lines().last().unwrap_or("");
        assert!(status == "403" || status == "404", "{path}: status {status}");
        assert!(!text.contains(marker), "{path} served the outside file");
    }
}

#[test]
fn curl_downloads_10_mib_and_nothing_outside_the_directory() {
    if !live_or_skip("curl_downloads_10_mib_and_nothing_outside_the_directory", &["curl"]) {
        return;
    }
    http_download(None);
}

#[test]
fn curl_downloads_10_mib_with_5_percent_loss_each_way() {
    if !live_or_skip("curl_downloads_10_mib_with_5_percent_loss_each_way", &["curl", "iptables"]) {
        return;
    }
    http_download(Some(5));
}

fn echo_64_mib(loss: Option<u32>, len: usize, offload: bool) {
    let ns = Netns::new("echo");
    let args: &[&str] = if offload { &["--offload", "echo", "7"] } else { &["echo", "7"] };
    let _utcp = Utcp::start(&ns, args);
    if let Some(pct) = loss {
        ns.drop_randomly("utcp0", pct);
    }
    let data = seeded_bytes(64, len);
    let want = sha256_hex(&data);
    let back = ns.within(move || echo_through(v4(7), data));
    assert_eq!(back.len(), len, "bytes echoed");
    assert_eq!(sha256_hex(&back), want, "SHA-256 of the echo");
}

#[test]
fn echo_returns_64_mib_of_random_bytes_identical() {
    if !live_or_skip("echo_returns_64_mib_of_random_bytes_identical", &[]) {
        return;
    }
    echo_64_mib(None, 64 << 20, false);
}

#[test]
fn echo_returns_random_bytes_identical_with_5_percent_loss_each_way() {
    if !live_or_skip("echo_returns_random_bytes_identical_with_5_percent_loss_each_way", &["iptables"]) {
        return;
    }
    echo_64_mib(Some(5), 8 << 20, false);
}

/// With TUN offloads the kernel hands utcp TSO super-segments with partial checksums (up to
/// 64 KiB each): the stream still arrives and returns identical, with and without loss.
#[test]
fn echo_with_tun_offloads_returns_64_mib_identical() {
    if !live_or_skip("echo_with_tun_offloads_returns_64_mib_identical", &[]) {
        return;
    }
    echo_64_mib(None, 64 << 20, true);
}

#[test]
fn echo_with_tun_offloads_returns_bytes_identical_with_5_percent_loss_each_way() {
    if !live_or_skip(
        "echo_with_tun_offloads_returns_bytes_identical_with_5_percent_loss_each_way",
        &["iptables"],
    ) {
        return;
    }
    echo_64_mib(Some(5), 8 << 20, true);
}

/// RFC 863 and RFC 864 over the device: discard takes 4 MiB and answers nothing but its FIN;
/// chargen's first lines are the RFC's rotating pattern (written out here by its rule: line n is
/// characters n..n+71 of space..tilde, mod 95, then CR LF).
#[test]
fn discard_and_chargen_serve_kernel_clients() {
    if !live_or_skip("discard_and_chargen_serve_kernel_clients", &[]) {
        return;
    }
    let ring: Vec<u8> = (b' '..=b'~').collect();
    let line = |n: usize| -> Vec<u8> {
        let mut l: Vec<u8> = (0..72).map(|i| ring[(n + i) % 95]).collect();
        l.extend_from_slice(b"\r\n");
        l
    };
    let want: Vec<u8> = (0..100).flat_map(line).collect();
    let ns = Netns::new("discard");
    let discard = Utcp::start(&ns, &["discard", "9"]);
    let answered = ns.within(|| {
        let mut s = TcpStream::connect_timeout(&v4(9), WAIT).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(&seeded_bytes(9, 4 << 20)).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        back.len()
    });
    assert_eq!(answered, 0, "discard sends nothing back");
    drop(discard);
    let ns = Netns::new("chargen");
    let _chargen = Utcp::start(&ns, &["chargen", "19"]);
    let got = ns.within(move || {
        let mut s = TcpStream::connect_timeout(&v4(19), WAIT).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = vec![0u8; 100 * 74];
        s.read_exact(&mut got).unwrap();
        got
    });
    assert!(got == want, "the first 100 chargen lines follow RFC 864's rule");
}

/// 200 kernel connections at once, each echoing 64 KiB of its own bytes.
#[test]
fn echo_serves_200_concurrent_connections() {
    if !live_or_skip("echo_serves_200_concurrent_connections", &[]) {
        return;
    }
    let ns = Netns::new("many");
    let _utcp = Utcp::start(&ns, &["echo", "7"]);
    let bad = ns.within(|| {
        let threads: Vec<_> = (0..200u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let data = seeded_bytes(1000 + i, 64 << 10);
                    let back = echo_through(v4(7), data.clone());
                    back == data
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).filter(|ok| !ok).count()
    });
    assert_eq!(bad, 0, "connections whose echo differed");
}

/// `utcp live connect` against a kernel server: stdin goes out, the reply comes to stdout.
fn connect_both_ways(loss: Option<u32>) {
    let ns = Netns::new("connect");
    // The kernel server listens on its side of the device, which exists once utcp set it up:
    // start utcp first with a helper app, then the server, then the connecting utcp.
    let request = seeded_bytes(7, 1 << 20);
    let reply = seeded_bytes(8, 2 << 20);
    let listener = ns.within(|| TcpListener::bind("0.0.0.0:9000").expect("kernel server bind"));
    let (req, rep) = (request.clone(), reply.clone());
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("kernel server accept");
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("kernel server read");
        s.write_all(&rep).expect("kernel server write");
        s.shutdown(Shutdown::Write).unwrap();
        got == req
    });
    let mut utcp = Utcp::start_with(&ns, &["connect", &format!("{HOST_V4}:9000")], Stdio::piped());
    if let Some(pct) = loss {
        // The device exists once utcp runs; wait for it before adding the rules.
        for _ in 0..100 {
            if ns.cmd("ip").args(["link", "show", "utcp0"]).output().is_ok_and(|o| o.status.success()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        ns.drop_randomly("utcp0", pct);
    }
    let mut stdin = utcp.child().stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&request).expect("utcp's stdin");
    });
    let mut stdout = utcp.child().stdout.take().unwrap();
    let mut got = Vec::new();
    stdout.read_to_end(&mut got).expect("utcp's stdout");
    writer.join().unwrap();
    assert!(server.join().unwrap(), "the kernel server got utcp's stdin intact");
    assert_eq!(got.len(), reply.len(), "bytes on utcp's stdout");
    assert!(got == reply, "utcp's stdout is the server's reply");
    let code = utcp.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "utcp live connect exit:\n{}", utcp.log_text());
}

#[test]
fn connect_exchanges_data_both_ways_with_a_kernel_server() {
    if !live_or_skip("connect_exchanges_data_both_ways_with_a_kernel_server", &[]) {
        return;
    }
    connect_both_ways(None);
}

#[test]
fn connect_exchanges_data_with_5_percent_loss_each_way() {
    if !live_or_skip("connect_exchanges_data_with_5_percent_loss_each_way", &["iptables"]) {
        return;
    }
    connect_both_ways(Some(5));
}

/// The `--pcap` recording is well formed (tshark finds no malformed packet and no bad checksum)
/// and, replayed as utcp's own capture in strict mode, matches packet for packet; Ctrl-C exits 0.
#[test]
fn pcap_recording_is_clean_and_replays_strictly() {
    if !live_or_skip("pcap_recording_is_clean_and_replays_strictly", &["tshark", "curl"]) {
        return;
    }
    let ns = Netns::new("pcap");
    let dir = TempDir::new("pcap");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("file.bin"), seeded_bytes(3, 1 << 20)).unwrap();
    // pcapng, so that the recording holds the server's calls for the strict replay to make.
    let pcap = dir.path().join("live.pcapng");
    let mut utcp =
        Utcp::start(&ns, &["--pcap", pcap.to_str().unwrap(), "http", "8080", www.to_str().unwrap()]);
    let got = dir.path().join("got.bin");
    run(ns.cmd("curl").args([
        "-sS",
        "--fail",
        "--max-time",
        "60",
        "-o",
        got.to_str().unwrap(),
        &format!("http://{UTCP_V4}:8080/file.bin"),
    ]));
    assert_eq!(std::fs::read(&got).unwrap().len(), 1 << 20);
    // Let the closing handshake finish before stopping.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(utcp.interrupt(Duration::from_secs(10)), Some(0), "exit after Ctrl-C:\n{}", utcp.log_text());
    let out = run(std::process::Command::new("tshark").args([
        "-r",
        pcap.to_str().unwrap(),
        "-o",
        "tcp.check_checksum:TRUE",
        "-Y",
        "tcp.checksum.status==0 || _ws.malformed",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "bad or malformed packets");
    let count = run(std::process::Command::new("tshark").args(["-r", pcap.to_str().unwrap(), "-Y", "tcp"]));
    assert!(String::from_utf8_lossy(&count.stdout).lines().count() > 700, "the capture has the transfer");
    // The server's calls are on an interface of their own: the request read, the file written.
    let reader = utcp_harness::capture::CaptureReader::open(&pcap).unwrap();
    let flows = utcp_harness::capture::flows::split(&reader.read_all(false).unwrap().records).flows;
    let server_calls: Vec<AppCall> = flows
        .iter()
        .flat_map(|f| &f.calls)
        .filter_map(|c| match c.what {
            Recorded::App { by: Side::Server, call } => Some(call),
            _ => None,
        })
        .collect();
    assert!(server_calls.iter().any(|c| matches!(c, AppCall::Read(_))), "{server_calls:?}");
    let written: usize = server_calls
        .iter()
        .map(|c| match c {
            AppCall::Write { taken, .. } => *taken,
            _ => 0,
        })
        .sum();
    assert!(written > 1 << 20, "the file and the response header were written: {written} bytes");
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(["replay", pcap.to_str().unwrap(), "--mode", "strict", "--json"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    // A capture that does not replay is kept for `utcp replay --transcript` to show why.
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-not-replayed.pcapng");
    if !replay.status.success() {
        let _ = std::fs::copy(&pcap, &kept);
    }
    assert!(
        replay.status.success(),
        "strict replay of utcp's own capture differed ({}; the capture is kept at {}):\n{report}\n{}",
        replay.status,
        kept.display(),
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(report.contains("\"differed\":0") && report.contains("\"missing\":0"), "{report}");
}

// ---------------------------------------------------------------------------------------------
// The library: utcp::live's sockets against kernel sockets, in the test's own namespace
// ---------------------------------------------------------------------------------------------

/// A `Live` stack on `utcp0` in the calling thread's namespace (run inside `Netns::within`).
fn live_here() -> utcp::live::Live {
    live_here_with(false)
}

fn live_here_with(offload: bool) -> utcp::live::Live {
    use utcp::live::{DeviceSetup, Live, LiveConfig};
    let addr: std::net::IpAddr = UTCP_V4.parse().unwrap();
    Live::open(LiveConfig {
        device: "utcp0".into(),
        stack: utcp::Config::linux_like().with_address(addr),
        setup: Some(DeviceSetup { mtu: 1500, host_addresses: vec![(HOST_V4.parse().unwrap(), 24)] }),
        tap: None,
        offload,
    })
    .expect("Live::open")
}

/// RFC 9293 §3.10.4 and RFC 2525 §2.17: dropping a stream with unread data resets the
/// connection; the kernel peer's read fails with ECONNRESET.
#[test]
fn stream_dropped_with_unread_data_resets_the_peer() {
    if !live_or_skip("stream_dropped_with_unread_data_resets_the_peer", &[]) {
        return;
    }
    let ns = Netns::new("droprst");
    let kind = ns.within(|| {
        let live = live_here();
        let listener = utcp::live::TcpListener::bind(&live, v4(5000)).unwrap();
        let mut client = TcpStream::connect_timeout(&v4(5000), WAIT).unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        client.write_all(&[1u8; 100]).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        // Read one byte (so the others are surely in utcp's receive queue), then drop the
        // stream with 99 bytes unread.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut one = [0u8; 1];
        assert_eq!(stream.read(&mut one).unwrap(), 1);
        drop(stream);
        let mut buf = [0u8; 16];
        client.read(&mut buf).map(|n| format!("read {n}")).unwrap_or_else(|e| format!("{:?}", e.kind()))
    });
    assert_eq!(kind, "ConnectionReset", "the kernel's read after utcp dropped unread data");
}

/// RFC 9293 §3.6: dropping a stream whose data was all read closes it with a FIN; the kernel
/// peer reads end of stream after the reply.
#[test]
fn stream_dropped_after_reading_everything_sends_fin() {
    if !live_or_skip("stream_dropped_after_reading_everything_sends_fin", &[]) {
        return;
    }
    let ns = Netns::new("dropfin");
    let (got, tail) = ns.within(|| {
        let live = live_here();
        let listener = utcp::live::TcpListener::bind(&live, v4(5001)).unwrap();
        let mut client = TcpStream::connect_timeout(&v4(5001), WAIT).unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        client.write_all(b"question").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let (mut stream, peer) = listener.accept().unwrap();
        assert_eq!(stream.peer_addr().unwrap(), peer);
        assert_eq!(stream.local_addr().unwrap(), v4(5001));
        let mut q = Vec::new();
        stream.read_to_end(&mut q).unwrap();
        assert_eq!(q, b"question");
        stream.write_all(b"answer").unwrap();
        drop(stream);
        let mut got = Vec::new();
        let tail = client.read_to_end(&mut got).map_err(|e| e.kind());
        (got, tail)
    });
    assert_eq!(got, b"answer");
    assert_eq!(tail, Ok(6), "end of stream after the answer, not an error");
}

/// A SYN to a kernel port nobody listens on is answered by a RST: `connect` fails with
/// ECONNREFUSED, as `std::net::TcpStream::connect` does.
#[test]
fn connect_to_a_closed_kernel_port_is_connection_refused() {
    if !live_or_skip("connect_to_a_closed_kernel_port_is_connection_refused", &[]) {
        return;
    }
    let ns = Netns::new("refused");
    let (kind, errno) = ns.within(|| {
        let live = live_here();
        let remote = SocketAddr::new(HOST_V4.parse().unwrap(), 5999);
        let e = utcp::live::TcpStream::connect_timeout(&live, &remote, WAIT).unwrap_err();
        (e.kind(), e.raw_os_error())
    });
    assert_eq!(kind, std::io::ErrorKind::ConnectionRefused);
    assert_eq!(errno, Some(111), "ECONNREFUSED");
}

/// A read with a timeout and no data fails with WouldBlock once the timeout passes, as
/// `std::net` does on Linux (EAGAIN).
#[test]
fn read_timeout_without_data_is_would_block() {
    if !live_or_skip("read_timeout_without_data_is_would_block", &[]) {
        return;
    }
    let ns = Netns::new("timeout");
    let kind = ns.within(|| {
        let live = live_here();
        let listener = utcp::live::TcpListener::bind(&live, v4(5002)).unwrap();
        let _client = TcpStream::connect_timeout(&v4(5002), WAIT).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut buf = [0u8; 8];
        stream.read(&mut buf).unwrap_err().kind()
    });
    assert_eq!(kind, std::io::ErrorKind::WouldBlock);
}

/// With TUN offloads the kernel really hands over super-segments: 8 MiB from a kernel client
/// arrive intact in far fewer datagrams than 1448-byte segments would need.
#[test]
fn tun_offloads_deliver_super_segments() {
    if !live_or_skip("tun_offloads_deliver_super_segments", &[]) {
        return;
    }
    let ns = Netns::new("gso");
    let len = 8 << 20;
    let (got, datagrams) = ns.within(move || {
        let live = live_here_with(true);
        let listener = utcp::live::TcpListener::bind(&live, v4(5003)).unwrap();
        let sender = std::thread::spawn(move || {
            let mut c = TcpStream::connect_timeout(&v4(5003), WAIT).unwrap();
            c.set_write_timeout(Some(WAIT)).unwrap();
            c.write_all(&seeded_bytes(5, len)).unwrap();
        });
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        sender.join().unwrap();
        (got, live.driver_stats().datagrams_in)
    });
    assert!(got == seeded_bytes(5, len), "the stream arrived intact ({} bytes)", got.len());
    // Without offloads this takes at least len / 1448 = 5793 datagrams.
    eprintln!("{datagrams} datagrams for {len} bytes");
    assert!(datagrams < len as u64 / 1448 / 4, "{datagrams} datagrams for {len} bytes");
}

/// With TUN offloads utcp sends super-segments (transmit segmentation offload): 8 MiB to a
/// kernel client arrive intact, most of them in super-segments the kernel took, none refused;
/// over IPv4 (`VIRTIO_NET_HDR_GSO_TCPV4`) and IPv6 (`_TCPV6`).
#[test]
fn tun_offloads_send_super_segments_the_kernel_takes() {
    if !live_or_skip("tun_offloads_send_super_segments_the_kernel_takes", &[]) {
        return;
    }
    for (tag, utcp, host, prefix) in [("tso4", UTCP_V4, HOST_V4, 24), ("tso6", UTCP_V6, HOST_V6, 64)] {
        let ns = Netns::new(tag);
        let len = 8 << 20;
        let addr = SocketAddr::new(utcp.parse().unwrap(), 5004);
        let (got, driver) = ns.within(move || {
            use utcp::live::{DeviceSetup, Live, LiveConfig};
            let ip: std::net::IpAddr = utcp.parse().unwrap();
            let live = Live::open(LiveConfig {
                device: "utcp0".into(),
                stack: utcp::Config::linux_like().with_address(ip),
                setup: Some(DeviceSetup { mtu: 1500, host_addresses: vec![(host.parse().unwrap(), prefix)] }),
                tap: None,
                offload: true,
            })
            .expect("Live::open");
            let listener = utcp::live::TcpListener::bind(&live, addr).unwrap();
            let reader = std::thread::spawn(move || {
                let mut c = TcpStream::connect_timeout(&addr, WAIT).unwrap();
                c.set_read_timeout(Some(WAIT)).unwrap();
                let mut got = Vec::new();
                c.read_to_end(&mut got).unwrap();
                got
            });
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_write_timeout(Some(WAIT)).unwrap();
            stream.write_all(&seeded_bytes(6, len)).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let got = reader.join().unwrap();
            (got, live.driver_stats())
        });
        assert!(got == seeded_bytes(6, len), "{tag}: the stream arrived intact ({} bytes)", got.len());
        eprintln!("{tag}: {driver:?}");
        let gso = driver.gso;
        assert_eq!(gso.refused, 0, "{tag}: the kernel refused no super-segment: {driver:?}");
        assert_eq!(driver.write_errors, 0, "{tag}: {driver:?}");
        // 8 MiB is at least 5793 segments of 1448 bytes (1428 over IPv6); most must have gone in
        // super-segments.
        assert!(gso.segments > len as u64 / 1448 / 2, "{tag}: {driver:?}");
        assert!(
            gso.super_segments * 4 < gso.segments,
            "{tag}: several segments per super-segment: {driver:?}"
        );
    }
}
