//! The TCP a script or a replay runs against: utcp on virtual time, or the Linux kernel in real
//! time behind a TUN device in a namespace of its own (`kernel`, `script::kernel`,
//! `replay::linux`).
//!
//! Must not depend on: anything; both `script` and `replay` name it.

/// The stack under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Backend {
    /// utcp's stack, on virtual time (a script's, or the capture's).
    Utcp,
    /// The Linux kernel's TCP behind a TUN device in a namespace of its own, in real time (root).
    Linux,
}

impl Backend {
    /// `utcp` or `linux`: the name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Utcp => "utcp",
            Backend::Linux => "linux",
        }
    }
}
