//! The `utcp` subcommands: each has a clap `Args` struct and a `run` returning the exit code.
//!
//! Exit codes follow DESIGN.md: 0 success, 1 a difference or failure found, 2 unusable input.

pub mod bench;
#[cfg(target_os = "linux")]
pub mod bench_loss;
pub mod bench_replay;
pub mod fuzz_show;
pub mod inspect;
#[cfg(target_os = "linux")]
pub mod link;
pub mod live;
pub mod replay;
pub mod script;
pub mod selftest;
