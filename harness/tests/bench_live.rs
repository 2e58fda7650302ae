//! `utcp bench live` end to end: a short run of all three contenders in namespaces of its own.
//!
//! Needs root (namespaces, TUN devices, veth). Without it the test prints why and passes, unless
//! `UTCP_LIVE_TESTS=require` is set, where not being root fails it. No figure is compared with a
//! speed: only that each contender moved the bytes in a positive time.

use std::process::Command;

fn root() -> bool {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `utcp bench live --bytes 8M --rounds 1 --json EXTRA...` and checks that every contender
/// moved the bytes in a positive time; returns the report (None when skipped without root).
fn bench_live(extra: &[&str]) -> Option<serde_json::Value> {
    if !root() {
        assert_ne!(
            std::env::var("UTCP_LIVE_TESTS").as_deref(),
            Ok("require"),
            "UTCP_LIVE_TESTS=require but the test does not run as root"
        );
        println!("skipped: `utcp bench live` needs root (set UTCP_LIVE_TESTS=require to insist)");
        return None;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_utcp"))
        .args(["bench", "live", "--bytes", "8M", "--rounds", "1", "--json"])
        .args(extra)
        .output()
        .expect("the utcp binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "utcp bench live {extra:?} failed ({}):\n{stderr}", out.status);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    for key in ["utcp_gbps", "smoltcp_gbps", "kernel_gbps", "ratio", "ratio_smoltcp"] {
        let v = report[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {report}"));
        assert!(v > 0.0, "{key} = {v} in {report}");
    }
    assert_eq!(report["rounds"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["settings"]["bytes"], 8 << 20, "{report}");
    Some(report)
}

#[test]
fn bench_live_reports_three_positive_figures() {
    if let Some(report) = bench_live(&[]) {
        assert_eq!(report["settings"]["reverse"], false, "{report}");
    }
}

/// `--reverse --offload`: the servers send to the kernel client, utcp through its TSO path and
/// the kernel over veth with its offloads on.
#[test]
fn bench_live_reverse_with_offloads_reports_three_positive_figures() {
    if let Some(report) = bench_live(&["--reverse", "--offload"]) {
        let s = &report["settings"];
        assert_eq!(
            (&s["reverse"], &s["tun_offloads"], &s["veth_offloads"]),
            (&true.into(), &true.into(), &true.into())
        );
    }
}
