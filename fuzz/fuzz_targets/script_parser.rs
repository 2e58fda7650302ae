//! Arbitrary bytes as a packetdrill-dialect script: the parser never panics and points its errors
//! at a line of the text; a script that parses runs against the stack without a panic.
//! The body is `utcp_harness::fuzzing::script_parser`, which `cargo test` also runs on the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_harness::fuzzing::script_parser(data));
