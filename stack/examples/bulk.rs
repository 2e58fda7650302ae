//! Bulk transfer between two in-memory stacks, for profiling: `cargo run --release --example bulk`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utcp::{Config, Event, Instant, Stack};

fn main() {
    let total: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(256 << 20);
    let a_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut ca = Config::default().with_address(a_ip);
    ca.checksum_offload = std::env::var("CHECKSUMS").is_err();
    let mut cb = ca.clone();
    cb.addresses = vec![b_ip];
    let mut a = Stack::new(ca);
    let mut b = Stack::new(cb);
    let now = Instant::from_secs(1);
    let l = b.listen(now, SocketAddr::new(b_ip, 80), 1).unwrap();
    let h = a.connect(now, None, SocketAddr::new(b_ip, 80)).unwrap();
    let chunk = vec![0x5au8; 65536];
    let mut rbuf = vec![0u8; 256 * 1024];
    let mut pkt = vec![0u8; 1500];
    let (mut sent, mut got) = (0usize, 0usize);
    let mut hb = None;
    let start = std::time::Instant::now();
    let mut packets = 0u64;
    while got < total {
        while sent < total {
            match a.send(now, h, &chunk[..chunk.len().min(total - sent)]) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        while let Some(n) = a.poll_transmit(now, &mut pkt) {
            b.handle_packet(now, &pkt[..n]);
            packets += 1;
        }
        while let Some(ev) = b.poll_event() {
            if let Event::Acceptable(_) = ev {
                hb = Some(b.accept(now, l).unwrap());
            }
        }
        if let Some(hb) = hb {
            while let Ok(n) = b.recv(now, hb, &mut rbuf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
        }
        while let Some(n) = b.poll_transmit(now, &mut pkt) {
            a.handle_packet(now, &pkt[..n]);
            packets += 1;
        }
        while a.poll_event().is_some() {}
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} MiB in {:.3} s: {:.2} Gbit/s, {} packets",
        total >> 20,
        secs,
        total as f64 * 8.0 / secs / 1e9,
        packets
    );
}
