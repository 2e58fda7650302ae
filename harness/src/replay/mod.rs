//! Replay of captures against utcp (DESIGN.md "Replay").
//!
//! `capture::flows` splits a capture into connections; `engine` plays one against a fresh stack, with
//! `translate` moving the peer's packets into utcp's sequence space; `compare` lines utcp's
//! answers up with the recording under a profile; `report` renders transcripts, JSON, the
//! annotated pcapng and scripts; `progress` draws a bar on a terminal.

pub mod compare;
pub mod engine;
pub mod progress;
pub mod report;
pub mod translate;

pub use compare::Profile;
pub use engine::{replay_flow, Options, Replay};
pub use translate::Mode;
