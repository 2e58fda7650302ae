//! The bench for utcp: capture reading and writing, the transcript notation, replay, scripts,
//! the seeded impairment link, proptest strategies, selftest and benchmarks.
//!
//! Everything that touches files, clocks and terminals lives here, never in the `utcp` core.

#![warn(missing_docs)]
