//! What `utcp replay` and `utcp inspect` show a person: the summary first, the transcript on
//! request, a note that repeats on every packet said once with a count, and the time-sequence
//! graph (`--plot`) of a corpus capture with its series, legend and axis labels.

use std::path::{Path, PathBuf};
use utcp_harness::capture::{CaptureReader, CaptureWriter, Format};
use utcp_harness::cli::replay::{replay, Args, RoleArg};

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures").join(name)
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("utcp-replay-output-{}-{name}", std::process::id()))
}

fn args(file: PathBuf) -> Args {
    Args::for_file(file)
}

#[test]
fn replay_prints_the_summary_and_no_transcript_by_default() {
    let out = replay(&args(corpus("loss-sender-side-ipv4.pcap"))).unwrap();
    let text = &out.stdout;
    let first = text.lines().next().unwrap();
    assert!(first.contains("1 TCP connection replayed, utcp as server"), "{text}");
    assert!(
        text.contains("flow 1: utcp as server 10.199.1.2:5005 <-> 10.199.0.1:58422: completed"),
        "{text}"
    );
    let c = &out.replays[0].counts;
    let counts = format!(
        "recorded {}: matched {}, differed {}, missing {}; extra {}",
        c.recorded, c.matched, c.differed, c.missing, c.extra
    );
    assert!(text.contains(&counts), "{counts} not in\n{text}");
    assert!(text.contains("first difference: "), "{text}");
    // No packet lines: the transcript is on request only.
    assert!(!text.lines().any(|l| l.starts_with("0.0")), "{text}");
    assert!(text.lines().count() < 20, "{text}");
    assert!(text.contains("--transcript"), "the summary says how to get every packet:\n{text}");
}

#[test]
fn replay_transcript_comes_after_the_summary_on_request() {
    let out = replay(&Args { transcript: true, ..args(corpus("http-get-ipv4.pcap")) }).unwrap();
    let text = &out.stdout;
    let summary_at = text.find("flow 1: utcp as server").unwrap();
    let transcript_at = text.find("// app: listen").unwrap();
    assert!(summary_at < transcript_at, "{text}");
    assert!(text.lines().any(|l| l.starts_with("0.000000 < S 0:0(0)")), "{text}");
}

#[test]
fn replay_json_keeps_its_keys() {
    let out = replay(&Args { json: true, ..args(corpus("loss-sender-side-ipv4.pcap")) }).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let c = &v["connections"][0];
    for key in ["matched", "differed", "missing", "extra", "completed", "first_difference", "recorded"] {
        assert!(c.get(key).is_some(), "{key} missing in {c}");
    }
    assert_eq!(c["matched"], out.replays[0].counts.matched);
}

/// The corpus HTTP capture with every TCP checksum broken, as a capture taken with checksum
/// offload looks.
fn offloaded_capture(path: &Path) -> usize {
    let reader = CaptureReader::open(corpus("http-get-ipv4.pcap")).unwrap();
    let all = reader.read_all(false).unwrap();
    let mut w = CaptureWriter::create(path, Format::Pcap).unwrap();
    for r in &all.records {
        let mut ip = r.ip().unwrap().to_vec();
        let at = usize::from(ip[0] & 0x0f) * 4 + 16;
        ip[at] ^= 0x5a;
        w.write(r.time, &ip, None).unwrap();
    }
    w.finish().unwrap();
    all.records.len()
}

#[test]
fn a_note_on_every_packet_is_said_once_with_its_count() {
    let path = tmp("offload.pcap");
    offloaded_capture(&path);
    let summary = replay(&args(path.clone())).unwrap();
    let with_transcript = replay(&Args { transcript: true, ..args(path.clone()) }).unwrap();
    std::fs::remove_file(&path).ok();
    let injected = summary.replays[0]
        .steps
        .iter()
        .filter(|s| matches!(s, utcp_harness::replay::engine::Step::In { .. }))
        .count();
    assert!(injected > 10);
    let text = &summary.stdout;
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("checksum")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains(&format!("{injected} packets: checksum 0x")), "{text}");
    assert!(lines[0].contains("injected with a correct one"), "{text}");
    // The transcript carries the note on the first packet only, with the count.
    let t = &with_transcript.stdout;
    let noted: Vec<&str> = t.lines().filter(|l| l.starts_with("0.") && l.contains("checksum")).collect();
    assert_eq!(noted.len(), 1, "{t}");
    assert!(noted[0].contains(&format!("the same on {} more packets", injected - 1)), "{t}");
    // The replay itself is unchanged by the bad checksums: it completes.
    assert!(summary.replays[0].completed);
}

#[test]
fn plot_of_a_lossy_corpus_capture_has_the_series_the_legend_and_the_axis_labels() {
    let path = tmp("loss.svg");
    let out = replay(&Args {
        role: RoleArg::Client,
        plot: Some(path.clone()),
        ..args(corpus("loss-sender-side-ipv4.pcap"))
    })
    .unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    for label in [
        "loss-sender-side-ipv4.pcap, flow 1: utcp as client",
        "time (s)",
        "sequence number of the client (relative, bytes)",
        "recorded client: data",
        "utcp: data",
        "peer (as injected): cumulative ACK",
        "peer (as injected): advertised window edge",
        "peer (as injected): SACK blocks",
        "retransmission",
        "differs from the recording",
        "the whole connection",
        "where the data moved",
    ] {
        assert!(svg.contains(label), "{label} not in the SVG");
    }
    // The chart has one bar per data segment of each sender, and crosses for retransmissions.
    let r = &out.replays[0];
    let chart = utcp_harness::plot::replay_chart(r, "loss-sender-side-ipv4.pcap");
    let sent_by_utcp = r.utcp.iter().filter(|(_, s)| s.len > 0 || s.flags.syn() || s.flags.fin()).count();
    assert_eq!(chart.data[1].bars.len(), sent_by_utcp);
    let retx = chart.data[1].bars.iter().filter(|b| b.retransmission).count() as u64;
    assert_eq!(retx, r.stats.retransmissions, "utcp's retransmissions are the bars marked");
    assert!(chart.data[0].bars.iter().any(|b| b.retransmission), "the recording retransmitted too");
    assert!(!chart.acks[0].sacks.is_empty(), "the peer sent SACK blocks");
    assert_eq!(chart.differences.len(), r.counts.differed + r.counts.missing + r.counts.extra);
}

#[test]
fn plot_of_the_receiving_role_shows_both_receivers_acks() {
    let r = &replay(&args(corpus("loss-sender-side-ipv4.pcap"))).unwrap().replays[0];
    let chart = utcp_harness::plot::replay_chart(r, "loss");
    assert_eq!(chart.data.len(), 1);
    assert_eq!(chart.data[0].label, "peer: data (as injected)");
    let labels: Vec<&str> = chart.acks.iter().map(|a| a.label.as_str()).collect();
    assert_eq!(labels, ["recorded server", "utcp"]);
    // utcp's cumulative ACK reaches the end of the peer's data (its FIN included).
    let top = chart.data[0].bars.iter().map(|b| b.end).fold(0.0, f64::max);
    assert!(chart.acks[1].acks.iter().any(|&(_, a)| a >= top), "utcp never acknowledged {top}");
}

#[test]
fn inspect_plots_one_flow_and_prints_the_table_before_transcripts() {
    use utcp_harness::cli::inspect::{inspect, Args};
    let path = tmp("inspect.svg");
    let a = |transcript: bool, plot: Option<PathBuf>, flow: Option<usize>| Args {
        file: corpus("loss-receiver-side-ipv4.pcap"),
        json: false,
        transcript,
        flow,
        plot,
        plot_window: None,
        keep_going: false,
    };
    inspect(&a(false, Some(path.clone()), Some(1))).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    for label in ["time (s)", "client: data", "server: cumulative ACK", "server: advertised window edge"] {
        assert!(svg.contains(label), "{label} not in the SVG");
    }
    let text = inspect(&a(true, None, None)).unwrap();
    let table_at = text.find("flow  client").unwrap();
    let transcript_at = text.find("// flow 1: client").unwrap();
    assert!(table_at < transcript_at, "{text}");
}

#[test]
fn plot_needs_one_connection() {
    let err =
        replay(&Args { plot: Some(tmp("two.svg")), ..args(corpus("two-interfaces.pcapng")) }).unwrap_err();
    assert!(err.contains("--plot needs one connection") && err.contains("--flow N"), "{err}");
}

#[test]
fn plot_window_draws_the_asked_part_in_detail() {
    let path = tmp("window.svg");
    replay(&Args {
        role: RoleArg::Client,
        plot: Some(path.clone()),
        plot_window: Some((0.0062, 0.0070)),
        ..args(corpus("loss-sender-side-ipv4.pcap"))
    })
    .unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert!(svg.contains("0.0062 s to 0.0070 s (--plot-window)"), "the detail's caption names the window");
    assert!(utcp_harness::plot::parse_window("1.0:1.05").is_ok());
    for bad in ["1.05:1.0", "x:1", "1", "-1:2"] {
        assert!(utcp_harness::plot::parse_window(bad).is_err(), "{bad}");
    }
}
