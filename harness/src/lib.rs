//! The bench for utcp: capture reading and writing, the transcript notation, replay, scripts,
//! the seeded impairment link, proptest strategies, selftest and benchmarks.
//!
//! Everything that touches files, clocks and terminals lives here, never in the `utcp` core.

#![warn(missing_docs)]

pub mod apps;
pub mod backend;
pub mod bench;
#[cfg(target_os = "linux")]
pub mod bench_live;
#[cfg(target_os = "linux")]
pub mod bench_loss;
pub mod bench_parse;
pub mod bench_scale;
pub mod capture;
pub mod cli;
pub mod fuzzing;
pub mod gen;
pub mod inspect;
#[cfg(target_os = "linux")]
pub mod kernel;
pub mod link;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod netsim;
pub mod notes;
pub mod pair;
pub mod plot;
pub mod replay;
pub mod script;
pub mod selftest;
pub mod side;
pub mod transcript;
pub mod transfer;

/// The message a caught panic carried (`panic!` with a literal or with format arguments), or
/// "(no message)" for any other payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn panic_message_reads_literal_and_formatted_payloads() {
        let literal = std::panic::catch_unwind(|| panic!("a literal")).unwrap_err();
        assert_eq!(panic_message(literal.as_ref()), "a literal");
        let n = 7;
        let formatted = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), "formatted 7");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(42u32)).unwrap_err();
        assert_eq!(panic_message(other.as_ref()), "(no message)");
    }
}
