//! Every foreign capture under `../shared/captures` (present in CI) reads completely, with the
//! record counts tshark reports. Skips, saying why, when the folder is absent.

mod common;

use common::shared_captures;
use std::path::PathBuf;
use utcp_harness::capture::{CaptureReader, Content, LinkType};

/// `tshark -r FILE | wc -l` for each file, and its link type.
const EXPECTED: &[(&str, u64, LinkType)] = &[
    ("gopacket-test_ethernet.pcap", 10, LinkType::Ethernet),
    ("gopacket-test_loopback.pcap", 24, LinkType::Null),
    ("suricata-http-ipv6.pcap", 14, LinkType::Null),
    ("suricata-syn-retransmit-with-ts.pcap", 254, LinkType::Ethernet),
    ("suricata-tcp-empty-sack.pcap", 42, LinkType::RawIp),
    ("suricata-tcp-exact-overlap.pcap", 7, LinkType::Ethernet),
    ("suricata-tcp-rst-unacked.pcap", 8, LinkType::Ethernet),
    ("suricata-tcp-rst-with-data.pcap", 8, LinkType::Ethernet),
    ("suricata-tcp-urgent.pcap", 16, LinkType::Ethernet),
    ("tcpdump-print-flags.pcap", 10, LinkType::Ethernet),
    ("tcpdump-resp_2_inline.pcap", 14, LinkType::LinuxSll),
    ("tcpdump-ssh.pcap", 54, LinkType::Ethernet),
    ("tcpdump-tcp-handshake-nano.pcap", 3, LinkType::LinuxSll),
    ("zeek-ftp-ipv6.pcap", 136, LinkType::Ethernet),
    ("zeek-http-get.pcap", 14, LinkType::Ethernet),
    ("zeek-ip4-tcp-bad-chksum.pcap", 1, LinkType::Ethernet),
    ("zeek-ip6-tcp-bad-chksum.pcap", 1, LinkType::Ethernet),
    ("zeek-tcp-fin-retransmission.pcap", 5, LinkType::Ethernet),
    ("zeek-tcp-handshake-reorder.pcap", 14, LinkType::Ethernet),
    ("zeek-tcp-options.pcap", 4, LinkType::Ethernet),
    ("zeek-tcp-payload-syn.pcap", 6, LinkType::RawIp),
    ("zeek-tcp-reassembly.pcap", 117, LinkType::Ethernet),
    ("zeek-tcp-retransmit-fast009.pcap", 39, LinkType::Ethernet),
    ("zeek-tcp-retransmit-timeout.pcapng", 3, LinkType::Ethernet),
    ("zeek-tcp-ssh-dups.pcap", 377, LinkType::Ethernet),
    ("zeek-tcp-window-scale-range.pcap", 5, LinkType::Ethernet),
];

#[test]
fn every_shared_capture_reads_with_tsharks_record_count() {
    let Some(dir) = shared_captures() else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() >= EXPECTED.len(), "fewer captures than expected in {}", dir.display());
    let mut total = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let reader = CaptureReader::open(path).unwrap();
        let records: Vec<_> = reader.records().collect::<Result<_, _>>().unwrap_or_else(|e| panic!("{e}"));
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.number, i as u64 + 1);
            assert!(matches!(r.content, Content::Ip(_)), "{name} #{}: {:?}", r.number, r.content);
        }
        total += records.len();
        match EXPECTED.iter().find(|(n, _, _)| *n == name) {
            Some((_, count, link)) => {
                assert_eq!(records.len() as u64, *count, "{name}: record count");
                assert!(records.iter().all(|r| r.link == *link), "{name}: link type");
            }
            None => eprintln!("{name}: {} records (not in the expected table)", records.len()),
        }
    }
    eprintln!("read {} shared captures, {total} records", files.len());
}

#[test]
fn nanosecond_pcap_stamps_round_down_to_microseconds() {
    let Some(dir) = shared_captures() else { return };
    let reader = CaptureReader::open(dir.join("tcpdump-tcp-handshake-nano.pcap")).unwrap();
    let times: Vec<u64> = reader.records().map(|r| r.unwrap().time.total_micros()).collect();
    // tshark: 1418145369.924505488, 1418145370.052027262, 1418145370.052115157
    assert_eq!(times, [1_418_145_369_924_505, 1_418_145_370_052_027, 1_418_145_370_052_115]);
}

/// `tshark -r FILE | wc -l`, or `None` when tshark is not installed.
fn tshark_count(path: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("tshark").arg("-r").arg(path).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).lines().count() as u64)
}

/// Each record's time as tshark prints it (`frame.time_epoch`), floored to microseconds.
fn tshark_micros(path: &std::path::Path) -> Option<Vec<u64>> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-e", "frame.time_epoch"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| {
            let (secs, frac) = l.trim().split_once('.').unwrap_or((l.trim(), "0"));
            let frac = format!("{frac:0<6}");
            Some(secs.parse::<u64>().ok()? * 1_000_000 + frac[..6].parse::<u64>().ok()?)
        })
        .collect()
}

/// The project's own captures (`corpus/captures`, recorded by its `record.sh`) read completely,
/// and, when tshark is installed, with the record counts tshark reports. `$UTCP_CORPUS_CAPTURES`
/// overrides the folder.
#[test]
fn every_corpus_capture_reads_with_tsharks_record_count() {
    let dir = match std::env::var_os("UTCP_CORPUS_CAPTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures"),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: no {}", dir.display());
        return;
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    for path in &files {
        let reader = CaptureReader::open(path).unwrap();
        let records: Vec<_> = reader.records().collect::<Result<_, _>>().unwrap_or_else(|e| panic!("{e}"));
        assert!(!records.is_empty(), "{}", path.display());
        match tshark_count(path) {
            Some(n) => {
                assert_eq!(records.len() as u64, n, "{}", path.display());
                let times: Vec<u64> = records.iter().map(|r| r.time.total_micros()).collect();
                assert_eq!(Some(times), tshark_micros(path), "{}: times", path.display());
            }
            None => eprintln!(
                "{}: {} records (tshark not installed, count not compared)",
                path.display(),
                records.len()
            ),
        }
    }
    eprintln!("read {} corpus captures", files.len());
}
