//! utcp: a user-space TCP/IP stack with a sans-IO core.
//!
//! The core ([`Stack`]) never touches sockets, files, threads, OS randomness or clocks: packets,
//! the current time ([`time::Instant`]) and the ISN secret come in as arguments, and packets go out
//! through [`Stack::poll_transmit`]. That makes replay deterministic, snapshots stable and fuzzing
//! meaningful. [`host::Host`] is the one driver every user of the stack runs; `live` (feature `live`, Linux)
//! runs it on a TUN device with a real clock.
//!
//! Read first: RFC 9293 (TCP), then RFC 7323, 2018, 6298, 5681, 5961, 6528, 1122 §4.2.

#![warn(missing_docs)]

pub mod config;
pub mod host;
pub mod info;
#[cfg(all(feature = "live", target_os = "linux"))]
pub mod live;
pub mod socket;
pub mod stack;
pub mod stats;
pub mod tcp;
pub mod time;
pub mod wire;

pub use config::{Config, TcpConfig};
pub use info::ConnectionInfo;
pub use socket::{
    AbortError, AcceptError, CloseError, ConnectError, Errno, ListenError, Readiness, RecvError, SendError,
    SetOptionError, ShutdownError, SocketOption, SocketOptions, UnlistenError,
};
pub use stack::{Event, InvariantViolation, ListenerHandle, SocketHandle, Stack, SynCookies};
pub use stats::{DropCounts, DropReason, Stats};
pub use tcp::{CloseReason, State};
pub use time::{Duration, Instant};
