//! Replays every input under corpus/fuzz/<target>/ through the fuzz target bodies on stable, so a
//! crash once found and fixed stays fixed. A failure names each file that broke a property.

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/fuzz").join(target)
}

#[track_caller]
fn replay(target: &str, body: fn(&[u8])) {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: cannot list: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("directory entry").path()).collect();
    paths.sort();
    assert!(!paths.is_empty(), "{}: no seed inputs", dir.display());
    let mut failed = Vec::new();
    for path in &paths {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs broke a property:\n{}",
        failed.len(),
        paths.len(),
        failed.join("\n")
    );
}

#[test]
fn segment_parser_corpus_replays_clean() {
    replay("segment_parser", utcp_harness::fuzzing::segment_parser);
}

#[test]
fn segment_parser_seeds_are_datagrams_the_parser_accepts() {
    // The seeds were extracted from real captures: if the parser refused them the round-trip
    // property would never be exercised from them. (Minimised crash inputs, `crash-*`, need not parse.)
    let dir = corpus_dir("segment_parser");
    let mut refused = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: cannot list: {e}", dir.display())) {
        let path = e.expect("directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("crash-") {
            let data =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
            if let Err(err) = utcp::wire::parse_datagram(&data, utcp::wire::ChecksumMode::Ignore) {
                refused.push(format!("{name}: {err}"));
            }
        }
    }
    assert!(refused.is_empty(), "seeds refused:\n{}", refused.join("\n"));
}

#[test]
fn tcp_options_corpus_replays_clean() {
    replay("tcp_options", utcp_harness::fuzzing::tcp_options);
}
