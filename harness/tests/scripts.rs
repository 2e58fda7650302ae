//! Runs every `.pkt` script under `corpus/scripts` against the stack (DESIGN.md "Testing").
//!
//! One message per failing script, with its failure and transcript, then a summary line.

use std::path::Path;
use utcp_harness::script::{find_scripts, run_file_on, Backend, IpVersion, RunOptions};

/// Every script in each IP version `run_all.py` would run it in: IPv4, IPv4-mapped IPv6 and IPv6,
/// except that a name ending in `v4.pkt` is not run over IPv6 and one ending in `v6.pkt` only over
/// it; a script whose header names its version is run (and counted) once.
#[test]
fn every_corpus_script_passes_over_ipv4_ipv4_mapped_ipv6_and_ipv6() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent");
    let dir = root.join("corpus/scripts");
    let paths = find_scripts(&dir).expect("corpus/scripts is readable");
    assert!(!paths.is_empty(), "no scripts under {}", dir.display());
    let mut failures = Vec::new();
    let mut runs = std::collections::BTreeSet::new();
    for version in IpVersion::ALL {
        let options = RunOptions { ip_version: version, ..RunOptions::default() };
        for p in
            paths.iter().filter(|p| version.runs_file(&p.file_name().unwrap_or_default().to_string_lossy()))
        {
            let mut o = run_file_on(p, Backend::Utcp, &options);
            if !runs.insert((p.clone(), o.ip_version)) {
                continue;
            }
            if let Ok(rel) = p.strip_prefix(root) {
                o.path = rel.display().to_string();
            }
            if !o.passed() {
                failures.push(o.report(true));
            }
        }
    }
    for f in &failures {
        eprintln!("{f}\n");
    }
    let count = |v: IpVersion| runs.iter().filter(|(_, r)| *r == v).count();
    let summary = format!(
        "{} runs ({} ipv4, {} ipv4-mapped-ipv6, {} ipv6): {} passed, {} failed",
        runs.len(),
        count(IpVersion::V4),
        count(IpVersion::V4MappedV6),
        count(IpVersion::V6),
        runs.len() - failures.len(),
        failures.len()
    );
    eprintln!("{summary}");
    assert!(failures.is_empty(), "{summary}");
    // Each version ran: the scripts that name none ran in all three.
    assert!(count(IpVersion::V6) > 0 && count(IpVersion::V4MappedV6) > 0, "{summary}");
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

/// `--ip-version all` runs each script of a directory in the versions run_all.py runs it in,
/// labels the runs that are not IPv4 and counts each (script, version) once.
#[test]
fn cli_ip_version_all_runs_each_script_in_run_all_versions_labelled() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("script-cli-versions");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("dir");
    // A SYN to a closed port gets RST-ACK in every version (RFC 9293 §3.10.7.1).
    let rst = "0 < S 0:0(0) win 65535\n+0 > R. 0:0(0) ack 1 win 0\n";
    // RFC 9293 §3.7.1: without an MSS option the send MSS is 536 over IPv4, 1220 over IPv6.
    let mss = |n: usize| {
        format!(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
             +0 < S 0:0(0) win 65535\n+0 > S. 0:0(0) ack 1 <...>\n+.1 < . 1:1(0) ack 1 win 65535\n\
             +0 accept(3, ..., ...) = 4\n+0 write(4, ..., 2000) = 2000\n+0 > . 1:{}({n}) ack 1\n",
            n + 1
        )
    };
    std::fs::write(root.join("rst.pkt"), rst).expect("write");
    std::fs::write(root.join("mss-v4.pkt"), mss(536)).expect("write");
    std::fs::write(root.join("mss-v6.pkt"), mss(1220)).expect("write");
    std::fs::write(root.join("pinned.pkt"), format!("--ip_version=ipv6\n{rst}")).expect("write");
    let (code, out) = utcp_script(&[&root], &["--ip-version", "all"]);
    assert_eq!(code, 0, "{out}");
    let runs: Vec<&str> = out.lines().filter(|l| l.starts_with("PASS ")).collect();
    let name = |l: &&str| l.rsplit_once('/').map_or(l.to_string(), |(_, n)| n.to_string());
    assert_eq!(
        runs.iter().map(name).collect::<Vec<_>>(),
        [
            "mss-v4.pkt",
            "mss-v4.pkt [ipv4-mapped-ipv6]",
            "mss-v6.pkt [ipv6]",
            "pinned.pkt [ipv6]",
            "rst.pkt",
            "rst.pkt [ipv4-mapped-ipv6]",
            "rst.pkt [ipv6]",
        ],
        "{out}"
    );
    assert!(out.ends_with("7 passed, 0 failed, 0 refused\n"), "{out}");
    // Over IPv4 the v6 script's MSS is wrong; a file named is run as asked, whatever its name.
    let (code, out) = utcp_script(&[&root.join("mss-v6.pkt")], &["--ip-version", "ipv4"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("mss-v6.pkt:9\n  expected: +0 > . 1:1221(1220) ack 1"), "{out}");
    assert!(out.contains("instead:  > . 1:1609(1608) ack 1"), "three 536-byte segments: {out}");
    let (_, out) = utcp_script(&[&root], &["--ip-version", "ipv6", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let versions: Vec<&str> =
        v["scripts"].as_array().expect("scripts").iter().filter_map(|s| s["ip_version"].as_str()).collect();
    assert_eq!(versions, ["ipv6", "ipv6", "ipv6"], "{out}");
    assert_eq!(v["passed"], 3, "{out}");
}
