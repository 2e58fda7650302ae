//! Replay of captures against utcp (DESIGN.md "Replay").
//!
//! `capture::flows` splits a capture into connections; `engine` plays one against a fresh stack, and
//! `linux` against the kernel in real time (DESIGN.md "Linux beside utcp"), with `translate` moving
//! the peer's packets into the tested stack's sequence space; `compare` lines utcp's
//! answers up with the recording under a profile; `report` renders transcripts, JSON, the
//! annotated pcapng and scripts; `progress` draws a bar on a terminal.

pub mod compare;
pub mod engine;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod progress;
pub mod report;
pub mod translate;

pub use compare::Profile;
pub use engine::{replay_flow, Backend, Options, Replay};
pub use translate::Mode;
