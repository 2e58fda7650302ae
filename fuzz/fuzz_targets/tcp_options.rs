//! Arbitrary bytes as a TCP option area: no panic, and parse -> emit -> parse is stable.
//! The body is `utcp_harness::fuzzing::tcp_options`, which `cargo test` also runs on the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_harness::fuzzing::tcp_options(data));
