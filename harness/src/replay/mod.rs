//! Replay of captures against utcp (DESIGN.md "Replay").

pub mod flows;
pub mod progress;
