//! The bodies of the fuzz targets, as plain functions so that `cargo test` can replay the corpus on
//! stable (harness/tests/fuzz_regressions.rs) through exactly the code libFuzzer runs (fuzz/).
//!
//! Each function takes arbitrary bytes and panics only when a property is broken; bad input is
//! otherwise simply refused by the code under test.

mod capture;
mod input;
mod runner;
mod script;
mod seeds;
mod wire;

pub use capture::pcap_reader;
pub use input::{
    IcmpSpec, SegmentSpec, Setup, StackInput, StackTarget, Step, ACCEPT_BACKLOG, BIG_LENGTHS, LOCAL_PORT,
    LOCAL_V4, LOCAL_V6, MAX_PACKETS_PER_STEP, MAX_QUEUED, MAX_STEPS, MAX_TIMER_RUNS_PER_ADVANCE, OP_CONNECT,
    OP_ICMP, REMOTE_PORT, REMOTE_V4, REMOTE_V6, SYN_BACKLOG,
};
pub use runner::{run_stack, Observer, Outcome, Quiet};
pub use script::script_parser;
pub use seeds::{seed_inputs, seed_scenarios, seg};
pub use wire::{segment_parser, tcp_options};

/// Runs a stack-target input, checking the properties after every step; panics with the step
/// number and the reason when one breaks. This is the body of the two stack fuzz targets.
pub fn stack_target(target: StackTarget, data: &[u8]) {
    run_stack(target, &StackInput::decode(data), &mut Quiet);
}

/// The body of a stack fuzz target given its already decoded (`Arbitrary`) input.
pub fn stack_target_input(target: StackTarget, input: &StackInput) {
    run_stack(target, input, &mut Quiet);
}

/// `stack_listen`.
pub fn stack_listen(data: &[u8]) {
    stack_target(StackTarget::Listen, data);
}

/// `stack_established`.
pub fn stack_established(data: &[u8]) {
    stack_target(StackTarget::Established, data);
}
