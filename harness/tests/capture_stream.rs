//! The streamed reader gives what the in-memory reader gives: the same records in the same order
//! and the same error (file, record, byte offset, reason) for damaged files, wherever the ends of
//! its buffers fall.

use std::path::PathBuf;
use utcp_harness::capture::{CaptureError, CaptureReader, CaptureStream, Record};

fn corpus_captures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_string_lossy().into_owned();
            (name.ends_with(".pcap") || name.ends_with(".pcapng")).then(|| (name, std::fs::read(&p).unwrap()))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10, "corpus captures missing in {}", dir.display());
    out
}

/// A record as plain values, to compare across readers.
fn owned(r: &Record<'_>) -> String {
    format!(
        "{} {} {:?} {} {} {:?} {:?} {:?}",
        r.number,
        r.time.total_micros(),
        r.link,
        r.interface,
        r.original_len,
        r.frame,
        r.ip().map(|ip| ip.len()),
        r.comment
    )
}

fn in_memory(name: &str, bytes: &[u8]) -> (Vec<String>, Option<CaptureError>) {
    let reader = CaptureReader::from_bytes(name, bytes.to_vec());
    let mut records = Vec::new();
    for r in reader.records() {
        match r {
            Ok(rec) => records.push(owned(&rec)),
            Err(e) => return (records, Some(e)),
        }
    }
    (records, None)
}

fn streamed(name: &str, bytes: &[u8], chunk: usize) -> (Vec<String>, Option<CaptureError>) {
    let mut stream = CaptureStream::with_chunk(name, bytes, chunk);
    let mut records = Vec::new();
    while let Some(r) = stream.next_record() {
        match r {
            Ok(rec) => records.push(owned(&rec)),
            Err(e) => return (records, Some(e)),
        }
    }
    (records, None)
}

#[test]
fn streamed_records_equal_the_in_memory_ones_for_every_corpus_capture_and_buffer_size() {
    for (name, bytes) in corpus_captures() {
        let want = in_memory(&name, &bytes);
        assert!(want.1.is_none(), "{name}: {:?}", want.1);
        for chunk in [1, 13, 100, 4096, 1 << 20] {
            assert_eq!(streamed(&name, &bytes, chunk), want, "{name} read {chunk} bytes at a time");
        }
    }
}

#[test]
fn streamed_damage_is_the_same_error_at_the_same_record_and_offset() {
    for (name, bytes) in corpus_captures() {
        // Cut inside the file header, inside record headers and bodies, and at record ends.
        let cuts = [0, 3, 11, 23, 30, 60, 100, 333, 1000, bytes.len() / 2, bytes.len() - 1];
        for cut in cuts.into_iter().filter(|&c| c < bytes.len()) {
            let cut_bytes = &bytes[..cut];
            let want = in_memory(&name, cut_bytes);
            for chunk in [1, 7, 64, 4096] {
                assert_eq!(streamed(&name, cut_bytes, chunk), want, "{name} cut at {cut}, chunk {chunk}");
            }
        }
        // A byte changed in the middle: a malformed field where the in-memory reader finds it.
        let mut bent = bytes.clone();
        for at in [8, 20, 40, bytes.len() / 3] {
            bent[at] ^= 0xff;
            let want = in_memory(&name, &bent);
            assert_eq!(streamed(&name, &bent, 5), want, "{name} with byte {at} changed");
            bent[at] ^= 0xff;
        }
    }
}

#[test]
fn a_missing_file_is_named_in_the_error() {
    let Err(e) = CaptureStream::open("/nonexistent/x.pcap") else { panic!("opened a missing file") };
    assert!(e.to_string().starts_with("/nonexistent/x.pcap: file header: cannot read"), "{e}");
}
