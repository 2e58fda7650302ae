//! Runs every `.pkt` script under `corpus/scripts` against the stack (DESIGN.md "Testing").
//!
//! One message per failing script, with its failure and transcript, then a summary line.

use std::path::Path;
use utcp_harness::script::{find_scripts, run_file};

#[test]
fn every_corpus_script_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent");
    let dir = root.join("corpus/scripts");
    let paths = find_scripts(&dir).expect("corpus/scripts is readable");
    assert!(!paths.is_empty(), "no scripts under {}", dir.display());
    let mut failures = Vec::new();
    for p in &paths {
        let mut o = run_file(p);
        if let Ok(rel) = p.strip_prefix(root) {
            o.path = rel.display().to_string();
        }
        if !o.passed() {
            failures.push(o.report(true));
        }
    }
    for f in &failures {
        eprintln!("{f}\n");
    }
    let summary = format!("{} passed, {} failed", paths.len() - failures.len(), failures.len());
    eprintln!("{summary}");
    assert!(failures.is_empty(), "{summary}");
}
