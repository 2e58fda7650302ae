//! utcp: a user-space TCP/IP stack with a sans-IO core.
//!
//! The core ([`Stack`]) never touches sockets, files, threads, OS randomness or clocks: packets,
//! the current time ([`time::Instant`]) and the ISN secret come in as arguments, and packets go out
//! through [`Stack::poll_transmit`]. That makes replay deterministic, snapshots stable and fuzzing
//! meaningful. [`host::Host`] is the one driver every user of the stack runs; `live` (feature `live`, Linux)
//! runs it on a TUN device with a real clock.
//!
//! Read first: RFC 9293 (TCP), then RFC 7323, 2018, 6298, 5681, 5961, 6528, 1122 §4.2.
//!
//! # The sans-IO loop
//!
//! A driver owns the clock and the wire. Once per wake-up it feeds the datagrams that arrived to
//! [`Stack::handle_packet`], runs [`Stack::handle_timeout`] when [`Stack::poll_timeout`] is due,
//! makes socket calls and drains [`Stack::poll_event`], then takes every datagram
//! [`Stack::poll_transmit`] has and sends it; it sleeps until the next packet or timeout. Here the
//! wire is two queues between two stacks and the clock is a number the loop moves:
//!
//! ```
//! use std::collections::VecDeque;
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use utcp::{Config, Duration, Event, Instant, Stack};
//!
//! let (a_ip, b_ip) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
//! let mut server = Stack::new(Config::default().with_address(a_ip));
//! let mut client = Stack::new(Config::default().with_address(b_ip));
//! let mut now = Instant::ZERO;
//!
//! let listener = server.listen(now, SocketAddr::new(a_ip, 7), 16).unwrap();
//! let sock = client.connect(now, None, SocketAddr::new(a_ip, 7)).unwrap();
//! let message: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
//! let (mut written, mut received, mut accepted) = (0, Vec::new(), None);
//!
//! // Datagrams in flight: to the server, to the client.
//! let (mut to_server, mut to_client) = (VecDeque::<Vec<u8>>::new(), VecDeque::<Vec<u8>>::new());
//! let mut buf = vec![0u8; 1500];
//! for _round in 0..10_000 {
//!     // 1. What arrived.
//!     while let Some(p) = to_server.pop_front() {
//!         server.handle_packet(now, &p);
//!     }
//!     while let Some(p) = to_client.pop_front() {
//!         client.handle_packet(now, &p);
//!     }
//!     // 2. Timers that are due.
//!     for stack in [&mut server, &mut client] {
//!         if stack.poll_timeout().is_some_and(|t| t <= now) {
//!             stack.handle_timeout(now);
//!         }
//!     }
//!     // 3. The applications: the client writes the message, the server accepts and reads.
//!     while let Some(ev) = server.poll_event() {
//!         if let Event::Acceptable(l) = ev {
//!             accepted = server.accept(now, l).ok();
//!         }
//!     }
//!     while client.poll_event().is_some() {}
//!     if written < message.len() {
//!         written += client.send(now, sock, &message[written..]).unwrap_or(0);
//!     }
//!     if let Some(s) = accepted {
//!         while let Ok(n @ 1..) = server.recv(now, s, &mut buf) {
//!             received.extend_from_slice(&buf[..n]);
//!         }
//!     }
//!     // 4. What the stacks send goes on the wire.
//!     while let Some(n) = server.poll_transmit(now, &mut buf) {
//!         to_client.push_back(buf[..n].to_vec());
//!     }
//!     while let Some(n) = client.poll_transmit(now, &mut buf) {
//!         to_server.push_back(buf[..n].to_vec());
//!     }
//!     if received.len() == message.len() {
//!         break;
//!     }
//!     // 5. Nothing in flight: sleep until the earlier timer; else a millisecond of wire delay.
//!     now = if to_server.is_empty() && to_client.is_empty() {
//!         let next = [server.poll_timeout(), client.poll_timeout()].into_iter().flatten().min();
//!         next.unwrap_or(now + Duration::from_millis(1)).max(now)
//!     } else {
//!         now + Duration::from_millis(1)
//!     };
//! }
//! assert_eq!(received, message, "every byte arrived once, in order");
//! assert_eq!(client.stats().retransmissions, 0, "a lossless wire needs no retransmission");
//! ```
//!
//! [`host::Host`] is this loop made once (clock position, runaway bounds, timers one by one at
//! their deadlines, an observer); the bench's two-stack tests and replay run stacks through it.
//!
//! # Live, on a TUN device
//!
//! With the `live` feature (on by default, Linux), [`live::Live`] runs the loop on a TUN device
//! with a real clock in a thread of its own, and [`live::TcpListener`] and [`live::TcpStream`]
//! are blocking sockets shaped like `std::net`'s, with `std::io::Read` and `Write`. Opening the
//! device needs CAP_NET_ADMIN: run it as root inside a network namespace of its own
//! (`ip netns exec NAME ...`), never in the host's. `stack/examples/live_echo.rs` is a complete
//! echo server.
//!
//! ```no_run
//! # #[cfg(all(feature = "live", target_os = "linux"))]
//! # fn main() -> std::io::Result<()> {
//! use std::io::{Read, Write};
//! use std::net::{IpAddr, Ipv4Addr};
//! use utcp::live::{DeviceSetup, Live, LiveConfig, TcpListener};
//! use utcp::Config;
//!
//! let addr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
//! let live = Live::open(LiveConfig {
//!     device: "utcp0".into(),
//!     stack: Config::linux_like().with_address(addr),
//!     // Bring the device up and give the kernel's side 10.77.0.1/24.
//!     setup: Some(DeviceSetup { mtu: 1500, host_addresses: vec![(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)), 24)] }),
//!     tap: None,
//!     offload: false,
//! })?;
//! let listener = TcpListener::bind(&live, (addr, 7))?;
//! let (mut stream, peer) = listener.accept()?; // `nc 10.77.0.2 7` from the namespace
//! let mut buf = [0u8; 4096];
//! loop {
//!     let n = stream.read(&mut buf)?;
//!     if n == 0 {
//!         break;
//!     }
//!     stream.write_all(&buf[..n])?;
//! }
//! eprintln!("{peer} is done");
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "live", target_os = "linux")))]
//! # fn main() {}
//! ```

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
pub use info::{CaState, ConnectionInfo};
pub use socket::{
    AbortError, AcceptError, CloseError, ConnectError, Errno, ListenError, Readiness, RecvError, SendError,
    SendFlags, SetOptionError, ShutdownError, SocketOption, SocketOptions, UnlistenError,
};
pub use stack::{Event, InvariantViolation, ListenerHandle, SocketHandle, Stack, SynCookies};
pub use stats::{DropCounts, DropReason, Stats};
pub use tcp::{CloseReason, State};
pub use time::{Duration, Instant};
