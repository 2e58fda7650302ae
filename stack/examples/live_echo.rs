//! An echo server (RFC 862) on a TUN device, the smallest complete use of `utcp::live`.
//!
//! Run as root inside a network namespace of its own, never in the host's:
//!
//! ```sh
//! ip netns add utcp-demo
//! ip netns exec utcp-demo cargo run --example live_echo -- 10.77.0.2/24
//! ip netns exec utcp-demo sh -c 'echo hello | nc -N 10.77.0.2 7'
//! ip netns del utcp-demo
//! ```

use std::io::{Read, Write};
use std::net::IpAddr;
use utcp::live::{default_host_address, DeviceSetup, Live, LiveConfig, TcpListener};
use utcp::Config;

fn main() -> std::io::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "10.77.0.2/24".into());
    let (addr, prefix) = arg.split_once('/').expect("ADDR/PREFIX");
    let addr: IpAddr = addr.parse().expect("an IP address");
    let prefix: u8 = prefix.parse().expect("a prefix length");
    let host = default_host_address(addr, prefix).expect("room for the kernel's address");
    let live = Live::open(LiveConfig {
        device: "utcp0".into(),
        stack: Config::linux_like().with_address(addr),
        setup: Some(DeviceSetup { mtu: 1500, host_addresses: vec![(host, prefix)] }),
        tap: None,
        offload: false,
    })?;
    let listener = TcpListener::bind(&live, (addr, 7))?;
    eprintln!("echo on {addr}:7 (device {}, kernel side {host})", live.device());
    loop {
        let (mut stream, peer) = listener.accept()?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut total = 0u64;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        total += n as u64;
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = stream.shutdown(std::net::Shutdown::Write);
            eprintln!("{peer}: echoed {total} bytes");
        });
    }
}
