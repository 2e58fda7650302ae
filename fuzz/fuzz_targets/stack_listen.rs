//! A listening stack fed a structured sequence of segments, time steps and socket calls: no panic,
//! the connection invariants after every step, every datagram sent parses, memory stays bounded.
//! The body is `utcp_harness::fuzzing::stack_listen`, which `cargo test` also runs on the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_harness::fuzzing::stack_listen(data));
