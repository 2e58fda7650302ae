//! The environment lines of a script: shell lines (`` `...` ``) that set sysctls, read as what
//! they set and mapped onto [`Config`]; every other shell command is refused by name.
//!
//! packetdrill runs a shell line with `system(3)`. The suite's lines run its `defaults.sh`, set
//! `net.ipv4.tcp_*` sysctls (`sysctl -q k=v`, `set_sysctls.py /proc/sys/net/ipv4/k=v`) and
//! restore them afterwards (`/tmp/sysctl_restore_${PPID}.sh`). Nothing is executed here: each
//! known sysctl either sets a [`Config`] field, is a value utcp already behaves as, or is refused
//! with a message naming it. What `defaults.sh` sets is written down once, in [`DEFAULTS_SH`].
//! Must not depend on: the stack's internals, files, processes.

use utcp::config::{CongestionKind, EcnMode, FastOpenConfig};
use utcp::{Config, Duration};

/// One shell command of a shell line, as understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellCommand {
    /// `.../defaults.sh`: the settings of [`DEFAULTS_SH`].
    Defaults,
    /// A sysctl set to a value (`net.ipv4.tcp_sack`, `1`).
    Sysctl(String, String),
    /// `/tmp/sysctl_restore_${PPID}.sh`: restores what `set_sysctls.py` changed; each script
    /// gets a fresh configuration, so there is nothing to restore.
    Restore,
    /// A device setting that matches what utcp does anyway (`ethtool -K tun0 tso off gso off`:
    /// utcp never sends super-segments).
    NoOp(String),
}

/// What `gtests/net/tcp/common/defaults.sh` (google/packetdrill) sets, in its order, and what each
/// means for utcp. `tcp_rmem`'s maximum is written out (`$((15*1024*1024))` = 15728640).
///
/// | sysctl | utcp |
/// |---|---|
/// | `tcp_rmem` 4096 540000 15728640 | the receive buffer starts at the default and autotunes up to the maximum, whose window scale is Linux's (8) |
/// | `tcp_wmem` 4096 262144 4194304 | the send buffer starts at the default and grows with cwnd up to the maximum |
/// | `tcp_timestamps`, `tcp_sack` 1, `tcp_syn_retries`, `tcp_synack_retries` 5 | set |
/// | `tcp_frto` 2, `tcp_dsack` 1, `tcp_congestion_control` cubic, `tcp_early_retrans` 4, `tcp_recovery` 1 | F-RTO, D-SACK, CUBIC, TLP and RACK on |
/// | `tcp_ecn_option` 2 | utcp has no AccECN: noted, not refused, so that every script can start; scripts that depend on it fail at the line where the behaviour shows |
/// | `tcp_ecn` 0 | no ECN (RFC 3168): an ECN-setup SYN is answered as a plain one (Linux's default is 2, accepting it) |
/// | `tcp_notsent_lowat` 4294967295 | no unsent-bytes mark for sockets without TCP_NOTSENT_LOWAT (`TcpConfig::notsent_lowat`) |
/// | `tcp_fack` 0, `tcp_reordering` 3, `tcp_slow_start_after_idle` 0, `tcp_syncookies` 1 | what utcp does |
/// | `tcp_tso_win_divisor`, `tcp_pacing_ss_ratio`, `tcp_pacing_ca_ratio` | no TSO deferral and no pacing in utcp: no effect |
/// | `tcp_fastopen` 0x70403, `tcp_fastopen_key` | TCP Fast Open client and server, every listener a Fast Open one; the cookie key |
/// | `ip tcp_metrics flush`, `tc qdisc add dev tun0 root pfifo` | no cached metrics and no qdisc in utcp |
pub const DEFAULTS_SH: &[(&str, &str)] = &[
    ("net.ipv4.tcp_rmem", "4096 540000 15728640"),
    ("net.ipv4.tcp_wmem", "4096 262144 4194304"),
    ("net.ipv4.tcp_timestamps", "1"),
    ("net.ipv4.tcp_syn_retries", "5"),
    ("net.ipv4.tcp_synack_retries", "5"),
    ("net.ipv4.tcp_frto", "2"),
    ("net.ipv4.tcp_sack", "1"),
    ("net.ipv4.tcp_dsack", "1"),
    ("net.ipv4.tcp_fack", "0"),
    ("net.ipv4.tcp_reordering", "3"),
    ("net.ipv4.tcp_congestion_control", "cubic"),
    ("net.ipv4.tcp_slow_start_after_idle", "0"),
    ("net.ipv4.tcp_early_retrans", "4"),
    ("net.ipv4.tcp_recovery", "1"),
    ("net.ipv4.tcp_tso_win_divisor", "3"),
    ("net.ipv4.tcp_ecn", "0"),
    ("net.ipv4.tcp_ecn_option", "2"),
    ("net.ipv4.tcp_pacing_ss_ratio", "200"),
    ("net.ipv4.tcp_pacing_ca_ratio", "120"),
    ("net.ipv4.tcp_notsent_lowat", "4294967295"),
    ("net.ipv4.tcp_fastopen", "0x70403"),
    ("net.ipv4.tcp_fastopen_key", "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"),
    ("net.ipv4.tcp_syncookies", "1"),
];

/// The sysctls `defaults.sh` sets that utcp does not have, noted rather than refused there.
const DEFAULTS_NOTED: &[&str] = &["net.ipv4.tcp_ecn_option"];

/// Commands that set up the device or the host as utcp already is: no offloads (utcp never sends
/// super-segments), no cached route metrics, no qdisc (a plain FIFO is what a script's packets
/// see; a qdisc that paces, `fq`, or drops, `pfifo limit 0`, is refused).
const NO_OPS: &[&str] = &[
    "ethtool -K tun0 tso off gso off",
    "ip tcp_metrics flush all",
    "tc qdisc add dev tun0 root pfifo",
    "tc qdisc replace dev tun0 root pfifo",
    "tc qdisc delete dev tun0 root",
];

/// Splits a shell line's text into commands and reads each; `Err` names the first command that
/// is not understood (the refusal's feature).
pub fn parse_shell(text: &str) -> Result<Vec<ShellCommand>, String> {
    let joined = text.replace("\\\n", " ");
    let mut out = Vec::new();
    for raw in joined.split(['\n', ';']) {
        let words = words(raw);
        let Some(first) = words.first() else { continue };
        let first = first.as_str();
        if first.ends_with("defaults.sh") {
            out.push(ShellCommand::Defaults);
        } else if first.starts_with("/tmp/sysctl_restore_") {
            out.push(ShellCommand::Restore);
        } else if first == "sysctl" {
            for w in &words[1..] {
                if w.starts_with('-') && !w.contains('=') {
                    if !matches!(w.as_str(), "-q" | "-e" | "-w" | "-qw" | "-eq" | "-qe") {
                        return Err(format!("shell command `sysctl {w}`"));
                    }
                    continue;
                }
                let Some((k, v)) = w.split_once('=') else {
                    return Err(format!("shell command `sysctl {w}` (only `sysctl -q name=value`)"));
                };
                out.push(ShellCommand::Sysctl(k.replace('/', "."), v.to_string()));
            }
        } else if first.ends_with("set_sysctls.py") {
            for w in &words[1..] {
                let Some((k, v)) = w.split_once('=') else {
                    return Err(format!("shell command `set_sysctls.py {w}`"));
                };
                let Some(name) = k.strip_prefix("/proc/sys/") else {
                    return Err(format!("set_sysctls.py of `{k}` (only /proc/sys/...)"));
                };
                out.push(ShellCommand::Sysctl(name.replace('/', "."), v.to_string()));
            }
        } else if NO_OPS.contains(&words.join(" ").as_str()) {
            out.push(ShellCommand::NoOp(words.join(" ")));
        } else {
            // Named as written, redirections included (`echo 3 > /sys/module/...`).
            let raw = raw.split(" #").next().unwrap_or(raw).split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(format!("shell command `{raw}`"));
        }
    }
    Ok(out)
}

/// The words of one command: whitespace-separated, double quotes kept together and removed,
/// `# comments` and output redirections (`> /dev/null`, `2>&1`) dropped.
fn words(cmd: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut started = false;
    for c in cmd.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            '#' if !in_quotes && !started => break,
            c if c.is_whitespace() && !in_quotes => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
        } else if w == ">" || w == "2>" || w == ">>" {
            skip_next = true;
        } else if !(w.starts_with('>') || w.starts_with("2>")) {
            out.push(w);
        }
    }
    out
}

fn number(name: &str, value: &str) -> Result<u64, String> {
    let v = value.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    parsed.map_err(|_| format!("sysctl {name}={value} (expected a number)"))
}

/// `net.ipv4.tcp_fastopen_key`: four 32-bit hex words `a-b-c-d` (a backup key after a comma is
/// refused), stored as Linux's `proc_tcp_fastopen_key` stores them, each word little-endian.
pub fn fast_open_key(name: &str, value: &str) -> Result<[u8; 16], String> {
    let bad = || format!("sysctl {name}={value} (expected a key like 00000000-00000000-00000000-00000000)");
    if value.contains(',') {
        return Err(format!("a backup TCP Fast Open key (sysctl {name}={value})"));
    }
    let words: Vec<&str> = value.trim().split('-').collect();
    if words.len() != 4 {
        return Err(bad());
    }
    let mut key = [0u8; 16];
    for (i, w) in words.iter().enumerate() {
        let v = u32::from_str_radix(w, 16).map_err(|_| bad())?;
        key[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    Ok(key)
}

fn triple(name: &str, value: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [a, b, c] = parts[..] else {
        return Err(format!("sysctl {name}=\"{value}\" (expected three numbers)"));
    };
    let n = |s: &str| s.parse::<usize>().map_err(|_| format!("sysctl {name}=\"{value}\" (expected numbers)"));
    Ok([n(a)?, n(b)?, n(c)?])
}

/// Applies one sysctl to `config`; `Err` is the refusal (naming the sysctl and why). With
/// `from_defaults`, the sysctls `defaults.sh` sets that utcp lacks (AccECN, TCP Fast Open; see
/// [`DEFAULTS_SH`]) are noted rather than refused.
pub fn apply_sysctl(config: &mut Config, name: &str, value: &str, from_defaults: bool) -> Result<(), String> {
    if from_defaults && DEFAULTS_NOTED.contains(&name) {
        return Ok(());
    }
    let short = name.strip_prefix("net.ipv4.").unwrap_or(name);
    if short == "tcp_fastopen_key" {
        config.fast_open_key = fast_open_key(name, value)?;
        return Ok(());
    }
    let tcp = &mut config.tcp;
    let flag = |v: &str| -> Result<bool, String> {
        match number(name, v)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("sysctl {name}={other} (utcp has only on or off)")),
        }
    };
    // A value utcp already behaves as, or a refusal naming what utcp lacks.
    let only = |ok: &[&str], what: &str| -> Result<(), String> {
        if ok.contains(&value.trim()) {
            Ok(())
        } else {
            Err(format!("{what} (sysctl {name}={value})"))
        }
    };
    match short {
        "tcp_rmem" => {
            let [_, def, max] = triple(name, value)?;
            tcp.recv_buffer = def;
            tcp.recv_buffer_max = max;
        }
        "tcp_wmem" => {
            let [_, def, max] = triple(name, value)?;
            tcp.send_buffer = def;
            tcp.send_buffer_max = max;
        }
        "tcp_timestamps" => tcp.timestamps = flag(value)?,
        "tcp_sack" => tcp.sack = flag(value)?,
        "tcp_window_scaling" => tcp.window_scale = flag(value)?,
        "tcp_rfc1337" => tcp.rfc1337 = flag(value)?,
        "tcp_syn_retries" => tcp.syn_retries = number(name, value)? as u32,
        "tcp_synack_retries" => {
            if number(name, value)? as u32 != tcp.syn_retries {
                return Err(format!(
                    "a SYN-ACK retry count apart from the SYN's (sysctl {name}={value}, tcp_syn_retries is {})",
                    tcp.syn_retries
                ));
            }
        }
        "tcp_retries2" => tcp.max_retries = number(name, value)? as u32,
        "tcp_fin_timeout" => tcp.fin_timeout = Duration::from_secs(number(name, value)?),
        "tcp_keepalive_intvl" => tcp.keepalive_interval = Duration::from_secs(number(name, value)?),
        "tcp_keepalive_probes" => tcp.keepalive_probes = number(name, value)? as u32,
        "tcp_fack" => only(&["0"], "FACK")?,
        "tcp_reordering" => only(&["3"], "a duplicate-ACK threshold other than 3")?,
        "tcp_slow_start_after_idle" => only(&["0"], "slow start after idle (RFC 5681 §4.1)")?,
        "tcp_ecn" => {
            tcp.ecn = EcnMode::from_linux(number(name, value)?)
                .ok_or_else(|| format!("AccECN (sysctl {name}={value}: utcp has RFC 3168 ECN, 0 to 2)"))?
        }
        "tcp_ecn_option" => only(&["0"], "AccECN")?,
        "tcp_notsent_lowat" => {
            let v = number(name, value)?;
            tcp.notsent_lowat = u32::try_from(v).ok().filter(|v| *v != u32::MAX);
        }
        "tcp_syncookies" => only(&["1"], "turning SYN cookies off")?,
        // 1 is F-RTO's basic algorithm, 2 its SACK variant: utcp picks by whether SACK is on.
        "tcp_frto" => tcp.frto = number(name, value)? != 0,
        "tcp_dsack" => only(&["1"], "turning D-SACK (RFC 2883) off")?,
        // 3 and 4 both send tail loss probes (4 also delays early retransmit, which RACK makes moot).
        "tcp_early_retrans" => match number(name, value)? {
            0 => tcp.tail_loss_probe = false,
            3 | 4 => tcp.tail_loss_probe = true,
            other => return Err(format!("early retransmit without TLP (sysctl {name}={other})")),
        },
        // Bit 1 is RACK; the others (a static reordering window, no DupThresh) utcp lacks.
        "tcp_recovery" => match number(name, value)? {
            0 => tcp.rack = false,
            1 => tcp.rack = true,
            other => return Err(format!("RACK options beyond on or off (sysctl {name}={other})")),
        },
        "tcp_congestion_control" => match value.trim() {
            "reno" => tcp.congestion = CongestionKind::Reno,
            "cubic" => tcp.congestion = CongestionKind::Cubic,
            _ => {
                return Err(format!(
                    "a congestion controller other than Reno and CUBIC (sysctl {name}={value})"
                ))
            }
        },
        "tcp_autocorking" => only(&["0"], "autocorking")?,
        // ip-sysctl.rst: 0x1 client, 0x2 server, 0x4 client without a cookie, 0x200 server
        // without a cookie, 0x400 every listener a Fast Open one (upper bits: an old queue length).
        "tcp_fastopen" => {
            tcp.fast_open = FastOpenConfig::from_linux_bits(number(name, value)?)
                .map_err(|bits| format!("TCP Fast Open (RFC 7413) bits {bits:#x} (sysctl {name}={value})"))?
        }
        // utcp has no blackhole detection (Linux turns active Fast Open off after SYN-data
        // timeouts for this long): only 0, off, is what utcp does.
        "tcp_fastopen_blackhole_timeout_sec" => only(&["0"], "TCP Fast Open blackhole detection")?,
        // utcp never defers to build super-segments and never paces: these change nothing.
        "tcp_tso_win_divisor" | "tcp_min_tso_segs" | "tcp_pacing_ss_ratio" | "tcp_pacing_ca_ratio" => {}
        _ => return Err(format!("sysctl {name} (not one utcp maps)")),
    }
    Ok(())
}

/// Applies every setting of [`DEFAULTS_SH`].
pub fn apply_defaults(config: &mut Config) {
    for (name, value) in DEFAULTS_SH {
        // Every entry is either mapped, noted or a value utcp behaves as (checked by a test).
        let _ = apply_sysctl(config, name, value, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defaults_sh_setting_is_understood() {
        let mut c = Config::linux_like();
        for (name, value) in DEFAULTS_SH {
            assert_eq!(apply_sysctl(&mut c, name, value, true), Ok(()), "{name}={value}");
        }
        assert_eq!((c.tcp.recv_buffer, c.tcp.recv_buffer_max), (540_000, 15 * 1024 * 1024));
        assert_eq!((c.tcp.send_buffer, c.tcp.send_buffer_max), (256 * 1024, 4 * 1024 * 1024));
        assert_eq!(c.tcp.syn_retries, 5);
        assert!(c.tcp.frto && c.tcp.rack && c.tcp.tail_loss_probe);
        assert_eq!(c.tcp.congestion, CongestionKind::Cubic);
        let fo = c.tcp.fast_open;
        assert!(fo.client && fo.server && fo.server_all_listeners && !fo.server_no_cookie);
        assert_eq!(
            c.fast_open_key,
            [0xa1, 0xa1, 0xa1, 0xa1, 0xb2, 0xb2, 0xb2, 0xb2, 0xc3, 0xc3, 0xc3, 0xc3, 0xd4, 0xd4, 0xd4, 0xd4]
        );
    }

    #[test]
    fn tcp_fastopen_bits_and_key_map_onto_the_config() {
        let mut c = Config::linux_like();
        assert_eq!(apply_sysctl(&mut c, "net.ipv4.tcp_fastopen", "0x202", false), Ok(()));
        assert!(c.tcp.fast_open.server && c.tcp.fast_open.server_no_cookie && !c.tcp.fast_open.client);
        assert!(apply_sysctl(&mut c, "net.ipv4.tcp_fastopen", "0x8", false).unwrap_err().contains("0x8"));
        assert_eq!(
            apply_sysctl(&mut c, "net.ipv4.tcp_fastopen_key", "a0bf63f7-ed803d81-cd641d30-cebc4a90", false),
            Ok(())
        );
        assert_eq!(&c.fast_open_key[..4], &[0xf7, 0x63, 0xbf, 0xa0]);
        assert!(apply_sysctl(&mut c, "net.ipv4.tcp_fastopen_key", "1-2-3", false).is_err());
    }

    #[test]
    fn shell_lines_are_read_as_the_sysctls_they_set() {
        let cmds = parse_shell(
            "../common/defaults.sh\nsysctl -q net.ipv4.tcp_timestamps=0 > /dev/null 2>&1 # off\n\
             ../common/set_sysctls.py /proc/sys/net/ipv4/tcp_wmem=\"4096 50000 4194304\" \\\n \
             /proc/sys/net/ipv4/tcp_sack=0",
        )
        .unwrap();
        assert_eq!(
            cmds,
            vec![
                ShellCommand::Defaults,
                ShellCommand::Sysctl("net.ipv4.tcp_timestamps".into(), "0".into()),
                ShellCommand::Sysctl("net.ipv4.tcp_wmem".into(), "4096 50000 4194304".into()),
                ShellCommand::Sysctl("net.ipv4.tcp_sack".into(), "0".into()),
            ]
        );
        assert_eq!(parse_shell("/tmp/sysctl_restore_${PPID}.sh").unwrap(), vec![ShellCommand::Restore]);
        assert_eq!(
            parse_shell(
                "tc qdisc delete dev tun0 root 2>/dev/null ; ip tcp_metrics flush all > /dev/null 2>&1"
            )
            .unwrap(),
            vec![
                ShellCommand::NoOp("tc qdisc delete dev tun0 root".into()),
                ShellCommand::NoOp("ip tcp_metrics flush all".into())
            ]
        );
        assert!(parse_shell("tc qdisc add dev tun0 root pfifo limit 0").is_err());
        assert_eq!(
            parse_shell("echo 3 > /sys/module/tcp_cubic/parameters/hystart_detect"),
            Err("shell command `echo 3 > /sys/module/tcp_cubic/parameters/hystart_detect`".into())
        );
    }

    #[test]
    fn other_shell_commands_and_unmapped_sysctls_are_refused_by_name() {
        assert_eq!(
            parse_shell("tc qdisc replace dev tun0 root fq"),
            Err("shell command `tc qdisc replace dev tun0 root fq`".into())
        );
        let mut c = Config::linux_like();
        let e = apply_sysctl(&mut c, "net.ipv4.tcp_ecn", "3", false).unwrap_err();
        assert_eq!(e, "AccECN (sysctl net.ipv4.tcp_ecn=3: utcp has RFC 3168 ECN, 0 to 2)");
        assert_eq!(apply_sysctl(&mut c, "net.ipv4.tcp_ecn", "1", false), Ok(()));
        assert_eq!(c.tcp.ecn, EcnMode::On);
        let e = apply_sysctl(&mut c, "net.ipv4.tcp_congestion_control", "bbr", false).unwrap_err();
        assert!(e.contains("tcp_congestion_control=bbr"), "{e}");
        assert_eq!(apply_sysctl(&mut c, "net.ipv4.tcp_congestion_control", "reno", false), Ok(()));
        assert_eq!(c.tcp.congestion, CongestionKind::Reno);
        assert_eq!(apply_sysctl(&mut c, "net.ipv4.tcp_recovery", "0", false), Ok(()));
        assert!(!c.tcp.rack);
        assert!(apply_sysctl(&mut c, "net.ipv4.tcp_recovery", "5", false).is_err());
        assert!(apply_sysctl(&mut c, "net.ipv4.tcp_mtu_probing", "2", false)
            .unwrap_err()
            .contains("tcp_mtu_probing"));
        assert_eq!(apply_sysctl(&mut c, "net.ipv4.tcp_timestamps", "0", false), Ok(()));
        assert!(!c.tcp.timestamps);
    }
}
