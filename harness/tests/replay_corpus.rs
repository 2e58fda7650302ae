//! Replay snapshots of the project's own captures (`corpus/captures`): for each capture, the
//! transcript of utcp's side of every connection and the summary lines. Stable across runs and
//! machines: the ISN secret is fixed and the clock is the capture's, virtual.

use std::path::PathBuf;
use utcp_harness::capture::flows::split;
use utcp_harness::capture::CaptureReader;
use utcp_harness::replay::report::{summary_line, transcript};
use utcp_harness::replay::{replay_flow, Options, Replay};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures")
}

fn replay_file(name: &str) -> Vec<Replay> {
    let reader = CaptureReader::open(corpus().join(name)).unwrap();
    let all = reader.read_all(false).unwrap();
    split(&all.records).flows.iter().map(|f| replay_flow(f, &Options::default())).collect()
}

fn captures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    names
}

#[test]
fn replay_snapshots_of_every_corpus_capture() {
    let names = captures();
    assert!(names.len() >= 13, "corpus/captures holds {} captures", names.len());
    for name in names {
        let replays = replay_file(&name);
        let mut text = String::new();
        for r in &replays {
            text.push_str(&transcript(r));
            text.push('\n');
        }
        text.push_str("// summary\n");
        for r in &replays {
            text.push_str(&summary_line(r));
            text.push('\n');
        }
        insta::assert_snapshot!(format!("replay_{name}"), text);
    }
}

#[test]
fn replay_is_deterministic() {
    let a: Vec<String> = replay_file("http-get-ipv4.pcap").iter().map(transcript).collect();
    let b: Vec<String> = replay_file("http-get-ipv4.pcap").iter().map(transcript).collect();
    assert_eq!(a, b);
}

#[test]
fn every_corpus_connection_completes_and_its_data_is_matched() {
    for name in captures() {
        for r in replay_file(&name) {
            assert!(r.completed, "{name}: {}", summary_line(&r));
            assert_eq!(r.counts.significant.get("payload"), None, "{name}: {}", summary_line(&r));
        }
    }
}

#[test]
fn bytes_lost_before_a_downstream_capture_are_written_as_their_retransmission_carried_them() {
    // loss-receiver-side-ipv4 is captured downstream of the loss: the client's segments the
    // router dropped are not in it, their retransmissions are. The scripted client writes those
    // bytes as the retransmissions show them, not as zeros, so utcp's resends carry the
    // recorded bytes and nothing is left "never captured".
    let reader = CaptureReader::open(corpus().join("loss-receiver-side-ipv4.pcap")).unwrap();
    let all = reader.read_all(false).unwrap();
    let opts = Options { role: utcp_harness::capture::flows::Side::Client, ..Options::default() };
    let r = replay_flow(&split(&all.records).flows[0], &opts);
    assert_eq!(r.counts.significant.get("payload"), None, "{}", summary_line(&r));
    assert!(!transcript(&r).contains("never captured"), "{}", summary_line(&r));
}

#[test]
fn segments_lost_after_an_upstream_capture_point_are_not_injected() {
    // loss-sender-side-ipv4 is captured upstream of the loss: the 27 client packets the router
    // dropped are in it (loss-receiver-side-ipv4 lacks them: IP IDs of records 14, 27, 56, ...,
    // 443 and 482), and the recorded server never got them. For 26 its ACKs show it: they stay
    // below the segment while SACKing above it, until the retransmission. The last, record 482
    // (the FIN with the last 48 bytes), has nothing after it to SACK and is injected.
    let reader = CaptureReader::open(corpus().join("loss-sender-side-ipv4.pcap")).unwrap();
    let all = reader.read_all(false).unwrap();
    let r = replay_flow(&split(&all.records).flows[0], &Options::default());
    let text = transcript(&r);
    let skipped: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("// record ") && l.contains("the recorded endpoint never received it"))
        .filter_map(|l| l.split(' ').nth(2))
        .collect();
    let lost =
        "14 27 56 88 122 125 144 151 162 167 193 197 205 206 223 234 252 319 323 326 376 389 390 400 410 443";
    assert_eq!(skipped.join(" "), lost, "{}", summary_line(&r));
    // The stack playing the server then acknowledges what the recorded one did.
    assert!(r.counts.matched >= 90, "{}", summary_line(&r));
}

#[test]
fn http_get_server_sends_the_recorded_response_bytes() {
    let r = &replay_file("http-get-ipv4.pcap")[0];
    let sent: usize = r.utcp.iter().map(|(_, s)| s.len).sum();
    let recorded: usize = r.recorded.iter().map(|(_, s)| s.len).sum();
    assert_eq!(sent, recorded);
    assert_eq!(sent, 20188);
}

#[test]
fn closed_port_is_answered_with_rst_ack_as_recorded() {
    let r = &replay_file("syn-closed-port-ipv4.pcap")[0];
    assert!(r.ok(), "{}", summary_line(r));
}

/// Replay speed on the 2 MB bulk capture: read, split, replay (stack and comparison) and report,
/// in packets per second. A figure, not an assertion: run with
/// `cargo test --release -p utcp-harness --test replay_corpus -- --ignored --nocapture`.
#[test]
#[ignore]
fn replay_speed_on_the_bulk_capture() {
    let path = corpus().join("bulk-2mb-ipv4.pcap");
    for role in [utcp_harness::capture::flows::Side::Server, utcp_harness::capture::flows::Side::Client] {
        let rounds = 50;
        let start = std::time::Instant::now();
        let mut packets = 0u64;
        for _ in 0..rounds {
            let reader = CaptureReader::open(&path).unwrap();
            let all = reader.read_all(false).unwrap();
            packets += all.records.len() as u64;
            let replays: Vec<Replay> = split(&all.records)
                .flows
                .iter()
                .map(|f| replay_flow(f, &Options { role, ..Options::default() }))
                .collect();
            let json = utcp_harness::replay::report::to_json("bulk", &replays);
            assert_eq!(json["connections"].as_array().map(Vec::len), Some(1));
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "replay speed ({role:?} role): {packets} packets in {secs:.3} s = {:.0} packets/s",
            packets as f64 / secs
        );
    }
}

#[test]
fn out_pcapng_reads_back_with_a_comment_on_each_packet_that_differs() {
    let replays = replay_file("half-close-ipv4.pcap");
    let path = std::env::temp_dir().join(format!("utcp-replay-out-{}.pcapng", std::process::id()));
    let written = utcp_harness::replay::report::write_pcapng(&path, &replays).unwrap();
    let reader = CaptureReader::open(&path).unwrap();
    let all = reader.read_all(false).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(all.records.len() as u64, written);
    let steps = replays[0].steps.iter().filter(|s| {
        matches!(
            s,
            utcp_harness::replay::engine::Step::In { .. } | utcp_harness::replay::engine::Step::Out { .. }
        )
    });
    assert_eq!(steps.count() as u64, written);
    let commented: Vec<&str> = all.records.iter().filter_map(|r| r.comment).collect();
    let extras = replays[0].counts.extra;
    assert!(commented.iter().filter(|c| c.contains("differs: extra")).count() == extras, "{commented:?}");
}

#[test]
fn emitted_script_has_the_calls_and_both_directions() {
    let r = &replay_file("echo-ipv6-nano.pcap")[0];
    let s = utcp_harness::replay::report::script(r, "echo-ipv6-nano.pcap");
    for needle in [
        "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
        "listen(3, 1) = 0",
        "accept(3, ..., ...) = 4",
        "write(4, ..., 26) = 26",
        "read(4, ..., 26) = 26",
        "shutdown(4, SHUT_WR) = 0",
        "< S 0:0(0)",
        "> S. 0:0(0) ack 1",
        "--ip_version=ipv6",
    ] {
        assert!(s.contains(needle), "{needle} not in\n{s}");
    }
}

#[test]
fn cli_exit_status_is_0_when_equal_1_when_different_2_when_unreadable() {
    use utcp_harness::cli::replay::{replay, Args};
    let args = |file: PathBuf| Args { json: true, ..Args::for_file(file) };
    let ok = replay(&args(corpus().join("syn-closed-port-ipv4.pcap"))).unwrap();
    assert_eq!(ok.status, 0, "{}", ok.stdout);
    let json: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(json["connections"][0]["completed"], true);
    assert_eq!(json["connections"][0]["first_difference"], serde_json::Value::Null);
    // utcp ACKs a bulk transfer at other points than Linux did (Linux batches its ACKs).
    let differs = replay(&args(corpus().join("bulk-2mb-ipv4.pcap"))).unwrap();
    assert_eq!(differs.status, 1);
    let bad = std::env::temp_dir().join(format!("utcp-replay-bad-{}.pcap", std::process::id()));
    let mut bytes = std::fs::read(corpus().join("http-get-ipv4.pcap")).unwrap();
    bytes.truncate(200);
    std::fs::write(&bad, bytes).unwrap();
    let err = replay(&args(bad.clone())).unwrap_err();
    std::fs::remove_file(&bad).ok();
    assert!(err.contains("record") && err.contains("utcp-replay-bad"), "{err}");
}

#[test]
fn out_pcapng_opens_in_tshark_with_good_checksums_and_nothing_malformed() {
    let Ok(v) = std::process::Command::new("tshark").arg("--version").output() else {
        eprintln!("skipped: tshark is not installed");
        return;
    };
    assert!(v.status.success());
    let mut replays = replay_file("loss-sender-side-ipv4.pcap");
    replays.extend(replay_file("http-get-ipv6.pcap"));
    let path = std::env::temp_dir().join(format!("utcp-replay-tshark-{}.pcapng", std::process::id()));
    let written = utcp_harness::replay::report::write_pcapng(&path, &replays).unwrap();
    let out = std::process::Command::new("tshark")
        .args(["-r", path.to_str().unwrap(), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"])
        .args(["-T", "fields", "-e", "tcp.checksum.status", "-e", "_ws.malformed", "-e", "frame.comment"])
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len() as u64, written);
    // tshark's status 1 is "good"; a malformed packet fills the second column.
    assert!(rows.iter().all(|r| r[0] == "1" && r.get(1).is_none_or(|m| m.is_empty())), "{text}");
    assert!(rows.iter().any(|r| r.get(2).is_some_and(|c| c.contains("differs"))));
}

#[test]
fn strict_mode_replays_the_corpus_http_get_to_completion() {
    let reader = CaptureReader::open(corpus().join("http-get-ipv4.pcap")).unwrap();
    let all = reader.read_all(false).unwrap();
    let flows = split(&all.records);
    let opts = Options { mode: utcp_harness::replay::Mode::Strict, ..Options::default() };
    let r = replay_flow(&flows.flows[0], &opts);
    assert!(r.completed, "{}", summary_line(&r));
    // Strict injection adapts nothing.
    assert!(r.steps.iter().all(|s| match s {
        utcp_harness::replay::engine::Step::In { notes, .. } =>
            notes.iter().all(|n| !n.starts_with("adapted")),
        _ => true,
    }));
}
