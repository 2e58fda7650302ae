//! `utcp inspect` streams the capture: its table, JSON, notes and transcripts are what the file
//! held in memory and split at once gives, for every corpus and shared capture.

mod common;

use std::path::PathBuf;
use utcp_harness::capture::flows::split;
use utcp_harness::capture::CaptureReader;
use utcp_harness::cli::inspect::{inspect, Args};
use utcp_harness::inspect::{notes_text, render_table, report, to_json, transcript};

fn captures() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures")];
    dirs.extend(common::shared_captures());
    let mut out: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    out.sort();
    out
}

fn args(file: PathBuf) -> Args {
    Args {
        file,
        json: false,
        transcript: false,
        plot: None,
        plot_window: None,
        flow: None,
        keep_going: false,
    }
}

#[test]
fn streamed_inspect_output_equals_the_in_memory_split_of_every_capture() {
    for path in captures() {
        let name = path.display().to_string();
        let reader = CaptureReader::open(&path).unwrap();
        let Ok(all) = reader.read_all(false) else { continue };
        let flows = split(&all.records);
        let rep = report(&name, all.records.len() as u64, &flows, None);
        let every: Vec<_> = flows.flows.iter().collect();

        let json = inspect(&Args { json: true, ..args(path.clone()) }).unwrap();
        assert_eq!(json, format!("{}\n", to_json(&rep)), "{name}: --json");

        let text = inspect(&Args { transcript: true, ..args(path.clone()) }).unwrap();
        let mut want = render_table(&rep);
        want.push_str(&notes_text(&every));
        for f in &flows.flows {
            want.push('\n');
            want.push_str(&transcript(f));
        }
        assert_eq!(text, want, "{name}: table, notes and transcripts");

        if let Some(f) = flows.flows.last() {
            let one = inspect(&Args { transcript: true, flow: Some(f.index), ..args(path.clone()) }).unwrap();
            let mut rep = rep.clone();
            rep.connections.retain(|c| c.flow == f.index);
            let want = format!("{}{}\n{}", render_table(&rep), notes_text(&[f]), transcript(f));
            assert_eq!(one, want, "{name} --flow {}", f.index);
        }
    }
}
