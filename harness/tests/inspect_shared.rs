//! `utcp inspect` on the foreign captures under `../shared/captures` (present in CI): snapshots
//! of the connection table, the JSON and transcripts, and the exit status on damaged input.
//! The capture tests skip, saying why, when the folder is absent.

mod common;

use common::shared_captures;
use std::path::Path;
use std::process::Command;
use utcp::time::Instant;
use utcp_harness::capture::flows::split;
use utcp_harness::capture::{CaptureReader, CaptureWriter, Format};
use utcp_harness::inspect::{render_table, report, to_json, transcript};

/// The table for a shared capture, named by its file name only (stable across machines).
fn table(dir: &Path, name: &str) -> String {
    let reader = CaptureReader::open(dir.join(name)).unwrap();
    let all = reader.read_all(false).unwrap();
    let flows = split(&all.records);
    render_table(&report(name, all.records.len() as u64, &flows, None))
}

fn transcripts(dir: &Path, name: &str) -> String {
    let reader = CaptureReader::open(dir.join(name)).unwrap();
    let all = reader.read_all(false).unwrap();
    split(&all.records).flows.iter().map(transcript).collect::<Vec<_>>().join("\n")
}

#[test]
fn inspect_tables_of_shared_captures() {
    let Some(dir) = shared_captures() else { return };
    for name in [
        "zeek-http-get.pcap",
        "zeek-tcp-handshake-reorder.pcap",
        "zeek-ftp-ipv6.pcap",
        "gopacket-test_loopback.pcap",
        "zeek-tcp-ssh-dups.pcap",
        "suricata-tcp-rst-with-data.pcap",
        "zeek-tcp-retransmit-timeout.pcapng",
        "tcpdump-tcp-handshake-nano.pcap",
        "zeek-tcp-retransmit-fast009.pcap",
    ] {
        insta::assert_snapshot!(format!("table_{name}"), table(&dir, name));
    }
}

#[test]
fn inspect_json_has_a_connections_array() {
    let Some(dir) = shared_captures() else { return };
    let name = "suricata-syn-retransmit-with-ts.pcap";
    let reader = CaptureReader::open(dir.join(name)).unwrap();
    let all = reader.read_all(false).unwrap();
    let json = to_json(&report(name, all.records.len() as u64, &split(&all.records), None));
    assert_eq!(json["connections"].as_array().map(Vec::len), Some(1));
    insta::assert_snapshot!(
        "json_suricata-syn-retransmit-with-ts",
        serde_json::to_string_pretty(&json).unwrap()
    );
}

#[test]
fn inspect_transcripts_of_shared_captures() {
    let Some(dir) = shared_captures() else { return };
    for name in [
        "zeek-tcp-handshake-reorder.pcap",
        "suricata-tcp-urgent.pcap",
        "suricata-tcp-empty-sack.pcap",
        "zeek-tcp-payload-syn.pcap",
        "zeek-tcp-fin-retransmission.pcap",
        "zeek-tcp-retransmit-fast009.pcap",
    ] {
        insta::assert_snapshot!(format!("transcript_{name}"), transcripts(&dir, name));
    }
}

#[test]
fn every_shared_capture_inspects_and_transcribes() {
    let Some(dir) = shared_captures() else { return };
    let mut connections = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
            continue;
        }
        let reader = CaptureReader::open(&path).unwrap();
        let all = reader.read_all(false).unwrap();
        let flows = split(&all.records);
        assert!(!flows.flows.is_empty(), "{}", path.display());
        let segments: usize = flows.flows.iter().map(|f| f.packets.len()).sum();
        assert_eq!(segments + flows.skipped.len(), all.records.len(), "{}", path.display());
        for f in &flows.flows {
            let t = transcript(f);
            // Header, flow comment, then one line per packet.
            assert_eq!(t.lines().count(), f.packets.len() + 2, "{}", path.display());
            assert!(!t.contains("not parsed"), "{}:\n{t}", path.display());
        }
        connections += flows.flows.len();
    }
    eprintln!("{connections} connections in the shared captures");
}

fn utcp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_utcp")).args(args).output().unwrap()
}

#[test]
fn inspect_exits_2_naming_file_and_record_on_a_truncated_capture_and_keep_going_uses_the_rest() {
    let dir = std::env::temp_dir().join(format!("utcp-inspect-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cut.pcap");
    let mut w = CaptureWriter::new(Vec::new(), &path, Format::Pcap, pcap_file::Endianness::Little).unwrap();
    let mut syn = Vec::new();
    etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [192, 168, 0, 1], 64)
        .tcp(40000, 80, 1, 1000)
        .syn()
        .write(&mut syn, b"")
        .unwrap();
    for i in 0..3 {
        w.write(Instant::from_micros(i), &syn, None).unwrap();
    }
    let bytes = w.finish().unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let p = path.to_str().unwrap();

    let out = utcp(&["inspect", p]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{p}: record 3 ")) && err.contains("truncated"), "{err}");

    let out = utcp(&["inspect", "--keep-going", "--json", p]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["records"], 2);
    assert_eq!(json["connections"][0]["client_to_server"]["packets"], 2);
    assert!(json["error"].as_str().unwrap().contains("record 3"), "{json}");

    let out = utcp(&["inspect", "--flow", "2", "--keep-going", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no flow 2"));

    let out = utcp(&["inspect", dir.join("absent.pcap").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
