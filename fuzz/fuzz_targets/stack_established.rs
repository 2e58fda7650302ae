//! A stack with one ESTABLISHED connection fed a structured sequence of segments, time steps and
//! socket calls: no panic, the connection invariants after every step, every datagram sent parses,
//! memory stays bounded.
//! The input is a structured `StackInput` (setup and steps, through `Arbitrary`); the body is
//! `utcp_harness::fuzzing::stack_target_input`, and `cargo test` runs the same decoding and body
//! on every file of the corpus.
#![no_main]

use utcp_harness::fuzzing::{stack_target_input, StackInput, StackTarget};

libfuzzer_sys::fuzz_target!(|input: StackInput| stack_target_input(StackTarget::Established, &input));
