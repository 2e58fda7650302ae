//! Scripts in the packetdrill dialect (DESIGN.md "Scripts"): a parser into [`ast::Script`] and an
//! executor that runs one against a `utcp::Stack` on virtual time.
//!
//! Must not depend on: wall-clock time, the network. Files are read only by [`run_file`].

pub mod ast;
pub mod parse;

pub use ast::Script;
pub use parse::{parse_script, ParseError};
