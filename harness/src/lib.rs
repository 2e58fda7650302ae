//! The bench for utcp: capture reading and writing, the transcript notation, replay, scripts,
//! the seeded impairment link, proptest strategies, selftest and benchmarks.
//!
//! Everything that touches files, clocks and terminals lives here, never in the `utcp` core.

#![warn(missing_docs)]

pub mod bench;
pub mod capture;
pub mod cli;
pub mod fuzzing;
pub mod gen;
pub mod inspect;
pub mod link;
pub mod pair;
pub mod replay;
pub mod script;
pub mod selftest;
pub mod transcript;
