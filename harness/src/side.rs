//! The one `Side` of a TCP connection: the endpoint that opened it and the one that answered.
//! Captures (which endpoint sent a packet), the two-stack `Pair` (which stack) and the model
//! test (which side a call is made on) all mean this.

use std::fmt;

/// An endpoint of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The endpoint that opened the connection (sent the SYN, called `connect`).
    Client,
    /// The endpoint that answered it (listened and accepted).
    Server,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Server => "server",
        })
    }
}
