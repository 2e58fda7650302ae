//! `utcp replay` streams the capture: its output is what replaying every connection of the file
//! held in memory gives, connection by connection in order, while only the connections open at
//! once are held; connections that interleave in a capture replay as each does alone.

mod common;

use std::path::{Path, PathBuf};
use utcp::time::Instant;
use utcp_harness::capture::flows::split;
use utcp_harness::capture::{CaptureReader, CaptureWriter, Format};
use utcp_harness::cli::replay::{replay, replay_streamed, Args};
use utcp_harness::replay::report::{connection_json, summary, to_json, transcript, write_pcapng};
use utcp_harness::replay::{replay_flow, Options, Replay};

fn corpus_and_shared_captures() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures")];
    dirs.extend(common::shared_captures());
    let mut out = Vec::new();
    for dir in dirs {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.to_string_lossy().into_owned();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("utcp-replay-streamed-{}-{name}", std::process::id()))
}

/// Every connection of the file replayed from the file held in memory, as before streaming.
fn replayed_in_memory(path: &Path) -> Option<Vec<Replay>> {
    let reader = CaptureReader::open(path).unwrap();
    let all = reader.read_all(false).ok()?;
    Some(split(&all.records).flows.iter().map(|f| replay_flow(f, &Options::default())).collect())
}

#[test]
fn streamed_replay_output_equals_the_in_memory_replay_of_every_capture() {
    for path in corpus_and_shared_captures() {
        let Some(want) = replayed_in_memory(&path) else { continue };
        let name = path.display().to_string();

        let json = replay_streamed(&Args { json: true, ..Args::for_file(&path) }, false).unwrap();
        assert_eq!(json.stdout, format!("{}\n", to_json(&name, &want)), "{name}: --json");

        let out = tmp("out.pcapng");
        let text = replay_streamed(
            &Args { transcript: true, out: Some(out.clone()), ..Args::for_file(&path) },
            false,
        )
        .unwrap();
        let summaries: String = want.iter().map(summary).collect();
        let transcripts: String = want.iter().map(|r| format!("\n{}", transcript(r))).collect();
        assert!(text.stdout.contains(&summaries), "{name}: summaries in order");
        assert!(text.stdout.ends_with(&transcripts), "{name}: transcripts in order");
        let expected_out = tmp("expected.pcapng");
        write_pcapng(&expected_out, &want).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&expected_out).unwrap(), "{name}: --out");
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&expected_out);

        for r in want.iter().filter(|r| r.flow <= 3) {
            let one = replay(&Args { json: true, flow: Some(r.flow), ..Args::for_file(&path) }).unwrap();
            assert_eq!(
                one.stdout,
                format!("{}\n", to_json(&name, std::slice::from_ref(r))),
                "{name} --flow {}",
                r.flow
            );
        }
        let status = if want.iter().all(Replay::ok) { 0 } else { 1 };
        assert_eq!(json.status, status, "{name}: exit status");
    }
}

const CLIENT: [u8; 4] = [10, 77, 0, 1];
const SERVER: [u8; 4] = [10, 77, 0, 2];

/// One correct HTTP/1.0 exchange from client port `port`, starting at `t0` (µs): handshake,
/// request, a response of `segments` full segments, FIN from the server, FIN from the client,
/// each ACKed.
fn http_connection(port: u16, t0: u64, segments: usize) -> Vec<(u64, Vec<u8>)> {
    let (mut c, mut s) = (u32::from(port) * 7919, u32::from(port) * 104_729 + 1);
    let mut out = Vec::new();
    let mut t = t0;
    let mut add = |dt: u64, from_client: bool, seq: u32, ack: u32, flags: &str, payload: &[u8]| {
        t += dt;
        let b = if from_client {
            etherparse::PacketBuilder::ipv4(CLIENT, SERVER, 64).tcp(port, 80, seq, 65535)
        } else {
            etherparse::PacketBuilder::ipv4(SERVER, CLIENT, 64).tcp(80, port, seq, 65535)
        };
        let mut b = if flags.contains('S') {
            b.options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)]).unwrap()
        } else {
            b
        };
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'F' => b.fin(),
                'P' => b.psh(),
                '.' => b.ack(ack),
                _ => unreachable!("flag {f}"),
            };
        }
        let mut d = Vec::new();
        b.write(&mut d, payload).unwrap();
        out.push((t, d));
    };
    let request = b"GET / HTTP/1.0\r\n\r\n";
    let response = [b'x'; 1460];
    add(0, true, c, 0, "S", b"");
    add(50, false, s, c + 1, "S.", b"");
    c += 1;
    s += 1;
    add(50, true, c, s, ".", b"");
    add(10, true, c, s, "P.", request);
    c += request.len() as u32;
    add(40, false, s, c, ".", b"");
    for _ in 0..segments {
        add(20, false, s, c, "P.", &response);
        s += response.len() as u32;
        add(30, true, c, s, ".", b"");
    }
    add(10, false, s, c, "F.", b"");
    s += 1;
    add(40, true, c, s, ".", b"");
    add(10, true, c, s, "F.", b"");
    c += 1;
    add(40, false, s, c, ".", b"");
    out
}

/// Writes the packets, in time order, as a raw-IP pcap.
fn write_capture(path: &Path, mut packets: Vec<(u64, Vec<u8>)>) {
    packets.sort_by_key(|(t, _)| *t);
    let mut w = CaptureWriter::create(path, Format::Pcap).unwrap();
    for (t, d) in &packets {
        w.write(Instant::from_micros(*t), d, None).unwrap();
    }
    w.finish().unwrap();
}

const START: u64 = 1_700_000_000_000_000;

#[test]
fn many_sequential_connections_are_replayed_holding_only_a_few_open_at_once() {
    let path = tmp("sequential.pcap");
    let n = 300;
    // One connection after another, a second apart.
    let packets = (0..n).flat_map(|i| http_connection(20_000 + i as u16, START + i * 1_000_000, 2)).collect();
    write_capture(&path, packets);
    let out = replay_streamed(&Args { json: true, ..Args::for_file(&path) }, false).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.stream.connections, 300);
    assert_eq!(out.status, 0, "every synthetic connection completes and matches:\n{}", out.stdout);
    // The flow just closed, the closed ones held for stragglers (8 at most), the one opening.
    assert!(out.stream.peak_open_flows <= 10, "{} connections held at once", out.stream.peak_open_flows);
}

#[test]
fn interleaved_connections_replay_as_each_connection_alone() {
    let ports: Vec<u16> = (0..12).map(|i| 30_000 + i).collect();
    // A new connection every 60 µs while each lasts 350 to 550 µs: several are open at once, and
    // a shorter one that opened later closes before a longer one that opened earlier.
    let conns: Vec<Vec<(u64, Vec<u8>)>> = ports
        .iter()
        .enumerate()
        .map(|(i, &p)| http_connection(p, START + i as u64 * 60, 1 + (ports.len() - i) % 5))
        .collect();
    let all = tmp("interleaved.pcap");
    write_capture(&all, conns.iter().flatten().cloned().collect());
    let together = replay(&Args { transcript: true, ..Args::for_file(&all) }).unwrap();
    let _ = std::fs::remove_file(&all);
    assert_eq!(together.replays.len(), ports.len());
    assert!(together.stream.peak_open_flows > 1, "the connections overlap");
    for (i, conn) in conns.iter().enumerate() {
        let alone_path = tmp(&format!("alone-{i}.pcap"));
        write_capture(&alone_path, conn.clone());
        let alone = replay(&Args::for_file(&alone_path)).unwrap();
        let _ = std::fs::remove_file(&alone_path);
        let (a, t) = (&alone.replays[0], &together.replays[i]);
        assert_eq!(t.flow, i + 1);
        let mut json = connection_json(a);
        json["flow"] = t.flow.into();
        assert_eq!(connection_json(t), json, "connection {} alone and interleaved", i + 1);
        let body = |r: &Replay| transcript(r).lines().skip(2).map(str::to_string).collect::<Vec<_>>();
        let (ta, tt) = (body(a), body(t));
        // The first two lines and the last name the flow; the packets and calls between are the same.
        assert_eq!(ta[..ta.len() - 1], tt[..tt.len() - 1], "connection {} transcript", i + 1);
    }
}
