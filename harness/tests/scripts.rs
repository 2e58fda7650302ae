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

/// Writes `text` to a fresh file under the target directory and returns its path.
fn temp_script(name: &str, text: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("script-cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write script");
    p
}

fn utcp_script(args: &[&std::path::Path], extra: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_utcp"))
        .arg("script")
        .args(args)
        .args(extra)
        .output()
        .expect("run utcp");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn cli_prints_pass_fail_and_summary_and_exits_1_on_failure() {
    let good = temp_script("good.pkt", "0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1 win 0\n");
    let bad = temp_script("bad.pkt", "// wrong ack\n0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 2\n");
    let (code, out) = utcp_script(&[&good], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS ") && out.ends_with("1 passed, 0 failed, 0 refused\n"), "{out}");
    let (code, out) = utcp_script(&[&good, &bad], &["--verbose"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad.pkt:3\n  expected: +0 > R. 0:0(0) ack 2\n"), "{out}");
    assert!(out.contains("instead:  > R. 0:0(0) ack 1 win 0 at 0.000000 (ack 1 instead of 2)"), "{out}");
    assert!(out.contains("transcript:\n    0.000000 < S 0:0(0) win 65535"), "{out}");
    assert!(out.ends_with("1 passed, 1 failed, 0 refused\n"), "{out}");
    let (code, out) = utcp_script(&[&bad], &["--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["failed"], 1);
    assert_eq!(v["scripts"][0]["line"], 3);
}

#[test]
fn cli_refuses_a_script_naming_the_feature_and_exits_2() {
    let p = temp_script("python.pkt", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 %{ print(1) }%\n");
    let (code, out) = utcp_script(&[&p], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("REFUSED ") && out.contains("python.pkt:2:4: refused: Python statement `print(1)`"),
        "{out}"
    );
    assert!(out.ends_with("0 passed, 0 failed, 1 refused\n"), "{out}");
    let p = temp_script("garbage.pkt", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3 = 0\n");
    let (code, out) = utcp_script(&[&p], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("FAIL ") && out.contains("garbage.pkt:2:"), "{out}");
}

#[test]
fn cli_summarises_a_directory_by_folder_with_the_refused_features_counted() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("script-cli-tree");
    let _ = std::fs::remove_dir_all(&root);
    for (dir, name, text) in [
        ("a", "good.pkt", "0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1 win 0\n"),
        ("a", "bad.pkt", "0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 2\n"),
        ("b/c", "md5.pkt", "0 < S 0:0(0) win 65535 <md5>\n"),
        ("b/c", "ecn.pkt", "0 `sysctl -q net.ipv4.tcp_ecn=3`\n"),
    ] {
        std::fs::create_dir_all(root.join(dir)).expect("dir");
        std::fs::write(root.join(dir).join(name), text).expect("write");
    }
    let (code, out) = utcp_script(&[&root], &[]);
    assert_eq!(code, 1, "{out}");
    let summary = out.split_once("\nfolder").map(|(_, s)| s).unwrap_or_default();
    let lines: Vec<Vec<&str>> = summary.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["pass", "fail", "refused"], "{out}");
    assert_eq!(lines[1], ["a", "1", "1", "0"], "{out}");
    assert_eq!(lines[2], ["b/c", "0", "0", "2"], "{out}");
    assert_eq!(lines[3], ["total", "1", "1", "2"], "{out}");
    assert!(
        out.contains(
            "refused features:\n    1  AccECN (sysctl net.ipv4.tcp_ecn=3: utcp has RFC 3168 ECN, 0 to 2)\n"
        ),
        "{out}"
    );
    assert!(out.contains("    1  the TCP MD5 signature option (RFC 2385)\n"), "{out}");
    assert!(out.ends_with("1 passed, 1 failed, 2 refused\n"), "{out}");
    let (_, out) = utcp_script(&[&root], &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["refused"], 2);
}
