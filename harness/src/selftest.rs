//! `utcp selftest`: two in-memory stacks through the seeded impairment link move deterministic
//! data both ways; the run checks that it arrived identical (SHA-256) and that both stacks end
//! with no connection state, and reports throughput and retransmissions.
//!
//! Must not depend on: terminals or argument parsing (that is `cli::selftest`).

use crate::netsim::{LinkConfig, LinkStats};
use crate::pair::{Limits, Pair, PairError};
use crate::transfer::{run_transfer, Progress, TransferReport, TransferSpec};
use serde_json::json;
use utcp::config::CongestionKind;
use utcp::time::Duration;
use utcp::{Config, Stats};

/// What the selftest runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Bytes moved from A to B, and from B to A unless `one_way`.
    pub bytes: u64,
    /// Move data from A to B only.
    pub one_way: bool,
    /// Loss probability of each link direction, 0 to 1.
    pub loss: f64,
    /// Seed of the data, the links and the ISN secrets.
    pub seed: u64,
    /// The congestion controller both stacks run.
    pub congestion: CongestionKind,
    /// What a congestion event reduces the window from.
    pub reduction: Reduction,
}

/// What a congestion event sets ssthresh from (`TcpConfig::ssthresh_from_cwnd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The flight size, as RFC 5681 §3.1 (4) and RFC 9438 §4.6 say: utcp's own recovery, the
    /// one `Config::default()` has, on top of Linux's timers and buffers.
    #[default]
    Flight,
    /// The congestion window, as Linux's `tcp_reno_ssthresh` and `cubictcp_recalc_ssthresh`
    /// do: exactly `Config::linux_like()`, the profile replay uses to stand in for Linux.
    Window,
}

impl Reduction {
    /// The name `--reduction` and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Reduction::Flight => "flight",
            Reduction::Window => "window",
        }
    }
}

impl Default for Settings {
    /// 16 MiB each way, no loss, seed 1, CUBIC reducing from the flight: `utcp selftest` with no
    /// options.
    fn default() -> Self {
        Settings {
            bytes: 16 << 20,
            one_way: false,
            loss: 0.0,
            seed: 1,
            congestion: CongestionKind::Cubic,
            reduction: Reduction::Flight,
        }
    }
}

impl Settings {
    /// The link both directions use: 10 ms one way at 1 Gbit/s, and the configured loss.
    pub fn link(&self) -> LinkConfig {
        LinkConfig {
            loss: self.loss,
            delay: Duration::from_millis(10),
            rate: Some(125_000_000),
            ..LinkConfig::default()
        }
    }

    /// The stacks' configuration: Linux's defaults (buffers that autotune up to `tcp_rmem[2]` and
    /// `tcp_wmem[2]`, a 200 ms minimum RTO, RACK-TLP, F-RTO) with a 1 s MSL, so TIME-WAIT ends
    /// soon in virtual time, and the window reduced from what `reduction` says.
    pub fn config(&self) -> Config {
        let mut c = Config::linux_like();
        c.tcp.msl = Duration::from_secs(1);
        c.tcp.congestion = self.congestion;
        c.tcp.ssthresh_from_cwnd = self.reduction == Reduction::Window;
        c
    }
}

/// The outcome of a selftest run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What ran.
    pub settings: Settings,
    /// The transfer's report, or why the run stopped.
    pub result: Result<TransferReport, PairError>,
    /// Wall-clock time the run took.
    pub wall: std::time::Duration,
}

impl Outcome {
    /// The data arrived identical both ways and the connections closed cleanly.
    pub fn ok(&self) -> bool {
        self.result.as_ref().is_ok_and(|r| r.data_ok)
    }

    /// Goodput per direction on virtual time, Mbit/s (bytes per direction over the time until
    /// the last byte arrived).
    pub fn virtual_mbps(&self) -> Option<f64> {
        let r = self.result.as_ref().ok()?;
        let secs = r.data_time.total_micros() as f64 / 1e6;
        (secs > 0.0).then(|| self.settings.bytes as f64 * 8.0 / secs / 1e6)
    }

    /// Processing speed: bytes moved (both ways) per wall-clock second, Mbit/s.
    pub fn wall_mbps(&self) -> f64 {
        let moved = self.result.as_ref().map_or(0, |r| r.received_by_a + r.received_by_b);
        moved as f64 * 8.0 / self.wall.as_secs_f64().max(1e-9) / 1e6
    }

    /// One JSON object with every figure, for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.settings;
        let mut v = json!({
            "ok": self.ok(),
            "seed": s.seed,
            "bytes": s.bytes,
            "one_way": s.one_way,
            "loss": s.loss,
            "congestion": format!("{:?}", s.congestion).to_lowercase(),
            "reduction": s.reduction.as_str(),
            "link": s.link().to_string(),
            "wall_seconds": self.wall.as_secs_f64(),
            "wall_mbps": self.wall_mbps(),
        });
        match &self.result {
            Err(e) => {
                v["error"] = json!(e.to_string());
            }
            Ok(r) => {
                let extra = json!({
                    "received_by_a": r.received_by_a,
                    "received_by_b": r.received_by_b,
                    "sha256_a_to_b": r.sha256_a_to_b,
                    "sha256_b_to_a": r.sha256_b_to_a,
                    "mismatches": r.mismatches,
                    "virtual_seconds": r.virtual_time.total_micros() as f64 / 1e6,
                    "data_seconds": r.data_time.total_micros() as f64 / 1e6,
                    "virtual_mbps": self.virtual_mbps(),
                    "steps": r.steps,
                    "missed_events": r.missed_events,
                    "a": stats_json(&r.stats_a),
                    "b": stats_json(&r.stats_b),
                    "link_a_to_b": link_json(&r.link_a_to_b),
                    "link_b_to_a": link_json(&r.link_b_to_a),
                });
                if let (Some(obj), serde_json::Value::Object(more)) = (v.as_object_mut(), extra) {
                    obj.extend(more);
                }
            }
        }
        v
    }
}

fn stats_json(s: &Stats) -> serde_json::Value {
    json!({
        "segments_in": s.segments_in,
        "segments_out": s.segments_out,
        "retransmissions": s.retransmissions,
        "timeouts": s.timeouts,
        "fast_retransmits": s.fast_retransmits,
        "checksum_failures": s.checksum_failures,
        "resets_out": s.resets_out,
        "drops": s.drops.iter().map(|(r, n)| (r.as_str().to_owned(), n.into())).collect::<serde_json::Map<_, _>>(),
    })
}

fn link_json(l: &LinkStats) -> serde_json::Value {
    serde_json::to_value(l).unwrap_or_default()
}

/// Runs the selftest, calling `progress` now and then.
pub fn run(settings: &Settings, progress: impl FnMut(&Progress)) -> Outcome {
    let started = std::time::Instant::now();
    let mut pair = Pair::with_links(&settings.config(), &settings.link(), settings.seed);
    let back = if settings.one_way { 0 } else { settings.bytes };
    let spec = TransferSpec::bulk(settings.seed, settings.bytes, back);
    // Invariants are checked every 64 steps: cheap, and a violation still points near its cause.
    let limits = Limits { check_every: 64, ..Limits::default() };
    let result = run_transfer(&mut pair, spec, &limits, 256, progress);
    Outcome { settings: settings.clone(), result, wall: started.elapsed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_run_is_not_ok_and_says_why_in_json() {
        let o = Outcome {
            settings: Settings {
                bytes: 10,
                one_way: false,
                loss: 0.05,
                seed: 3,
                congestion: CongestionKind::Cubic,
                reduction: Reduction::Window,
            },
            result: Err(PairError { at: utcp::Instant::from_secs(2), step: 7, what: "stuck".into() }),
            wall: std::time::Duration::from_millis(5),
        };
        assert!(!o.ok());
        let v = o.to_json();
        assert_eq!(v["ok"], false);
        assert_eq!(v["seed"], 3);
        assert_eq!(v["reduction"], "window");
        assert_eq!(v["link"], "loss 5% delay 10ms rate 1000Mbit/s");
        assert_eq!(v["error"], "at 2.000000 (step 7): stuck");
    }
}
