//! Arbitrary bytes as a capture file through the reader and the flow splitter: errors, never
//! panics or hangs.
//! The body is `utcp_harness::fuzzing::pcap_reader`, which `cargo test` also runs on the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_harness::fuzzing::pcap_reader(data));
