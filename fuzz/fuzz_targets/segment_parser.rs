//! Arbitrary bytes as an IPv4 or IPv6 datagram: no panic, and parse -> emit -> parse is stable.
//! The body is `utcp_harness::fuzzing::segment_parser`, which `cargo test` also runs on the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_harness::fuzzing::segment_parser(data));
