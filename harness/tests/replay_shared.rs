//! Every capture under `../shared/captures` (the world's captures; `UTCP_SHARED_CAPTURES`
//! overrides the folder) is read and replayed with no panic and no hang: each connection either
//! completes or is reported with a reason. Prints a one-line summary. Skips, saying why, when the
//! folder is absent.

mod common;

use common::shared_captures;
use std::collections::BTreeMap;
use std::path::PathBuf;
use utcp_harness::capture::flows::{split, Side};
use utcp_harness::capture::CaptureReader;
use utcp_harness::replay::report::summary_line;
use utcp_harness::replay::{replay_flow, Options};

#[test]
fn every_shared_capture_replays_in_both_roles_and_each_connection_is_accounted_for() {
    let Some(dir) = shared_captures() else { return };
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap"))
        .collect();
    names.sort();
    let (mut files, mut conns, mut completed) = (0, 0, 0);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for path in &names {
        let reader = CaptureReader::open(path).unwrap();
        // Damaged files are used up to the damage, as --keep-going does.
        let all = reader.read_all(true).unwrap();
        files += 1;
        for flow in &split(&all.records).flows {
            for role in [Side::Server, Side::Client] {
                let r = replay_flow(flow, &Options { role, ..Options::default() });
                // A bounded replay: never more steps than packets plus the timer bound.
                assert!(r.steps.len() < 10 * flow.packets.len() + 200_000, "{}", path.display());
                if role != Side::Server {
                    continue;
                }
                conns += 1;
                if r.completed {
                    completed += 1;
                } else {
                    let why = r.reason.clone();
                    assert!(why.is_some(), "{}: {}", path.display(), summary_line(&r));
                    *reasons.entry(why.unwrap_or_default()).or_default() += 1;
                }
            }
        }
    }
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n}× {r}")).collect();
    println!(
        "shared captures: {files} files, {conns} connections, {completed} completed; not completed: {}",
        if reasons.is_empty() { "none".to_string() } else { reasons.join("; ") }
    );
    assert!(files > 0);
}
