//! The simple services: echo (RFC 862), discard (RFC 863) and chargen (RFC 864), over TCP.
//!
//! Each runs on one [`Conn`] until the service is done with it; none may depend on the socket
//! type behind the trait.

use super::{Conn, Transfer};
use std::io::{self, ErrorKind};

/// Bytes moved per read in echo and discard.
const BUF: usize = 16 * 1024;

/// RFC 862: write back everything read until EOF, then shut down the write side.
pub fn echo<C: Conn>(conn: &mut C) -> io::Result<Transfer> {
    let mut buf = vec![0u8; BUF];
    let mut moved = Transfer::default();
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        moved.read += n as u64;
        conn.write_all(&buf[..n])?;
        moved.written += n as u64;
    }
    conn.flush()?;
    conn.shutdown_write()?;
    Ok(moved)
}

/// RFC 863: read and drop everything until EOF, counting it.
pub fn discard<C: Conn>(conn: &mut C) -> io::Result<Transfer> {
    let mut buf = vec![0u8; BUF];
    let mut moved = Transfer::default();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(moved),
            Ok(n) => moved.read += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Characters in one chargen line, before CR LF.
pub const CHARGEN_LINE: usize = 72;

/// The printing ASCII characters, space through tilde, numbered 0 to 94 (RFC 864).
const PRINTING: std::ops::RangeInclusive<u8> = b' '..=b'~';

/// Line `n` of the RFC 864 pattern, CR LF included.
///
/// RFC 864: "Line 0 contains characters 0 through 71, line 1 contains characters 1 through 72,
/// and line n contains characters n through n+71 (mod 95). End each line with carriage return
/// and line feed."
pub fn chargen_line(n: usize) -> [u8; CHARGEN_LINE + 2] {
    let ring: Vec<u8> = PRINTING.collect();
    let mut line = [0u8; CHARGEN_LINE + 2];
    for (i, byte) in line[..CHARGEN_LINE].iter_mut().enumerate() {
        *byte = ring[(n + i) % ring.len()];
    }
    line[CHARGEN_LINE..].copy_from_slice(b"\r\n");
    line
}

/// RFC 864: send the pattern until a write fails; the peer closing is the normal end.
///
/// What the peer sends is never read (RFC 864: "Any data received is thrown away"); the kernel
/// or the stack holds it until the connection closes.
pub fn chargen<C: Conn>(conn: &mut C) -> io::Result<Transfer> {
    let lines = PRINTING.count();
    let period: Vec<u8> = (0..lines).flat_map(chargen_line).collect();
    let mut moved = Transfer::default();
    loop {
        match conn.write(&period) {
            Ok(0) => return Ok(moved),
            // A short write leaves the rest of the period unsent; restarting at line 0 would
            // break the pattern, so finish it first.
            Ok(n) => {
                moved.written += n as u64;
                if let Err(e) = conn.write_all(&period[n..]) {
                    return peer_gone(e, moved);
                }
                moved.written += (period.len() - n) as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return peer_gone(e, moved),
        }
    }
}

/// A write error that means the peer closed ends chargen normally; any other is an error.
fn peer_gone(e: io::Error, moved: Transfer) -> io::Result<Transfer> {
    match e.kind() {
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Ok(moved),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{seeded_bytes, sha256, Server};
    use super::super::App;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::Shutdown;

    #[test]
    fn echo_returns_one_mebibyte_unchanged() {
        let server = Server::start(App::Echo, 4);
        let data = seeded_bytes(862, 1 << 20);
        let conn = server.connect();
        let mut writer = conn.try_clone().unwrap();
        let sent = data.clone();
        // The writer runs apart from the reader: echo sends back while it still receives.
        let writing = std::thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        (&conn).read_to_end(&mut back).expect("echo ends with FIN after ours");
        writing.join().unwrap();
        assert_eq!(back.len(), data.len());
        assert_eq!(sha256(&back), sha256(&data));
    }

    #[test]
    fn discard_counts_every_byte_and_sends_none() {
        let mut conn_pair = loopback_pair();
        let data = seeded_bytes(863, 300_000);
        let mut client = conn_pair.0;
        let counting = std::thread::spawn(move || super::discard(&mut conn_pair.1));
        client.write_all(&data).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let moved = counting.join().unwrap().expect("discard");
        assert_eq!(moved.read, data.len() as u64);
        assert_eq!(moved.written, 0);
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn chargen_lines_follow_rfc864_ring() {
        // RFC 864: the 95 printing characters (space is number 0), line n holds characters
        // n through n+71, then CR LF. Written out by hand from that rule:
        let line0 = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n";
        let line1 = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n";
        assert_eq!(line0.len(), 74);
        let server = Server::start(App::Chargen, 4);
        let mut reader = BufReader::new(server.connect());
        let mut lines = Vec::new();
        for _ in 0..97 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            lines.push(line);
        }
        assert_eq!(lines[0], line0);
        assert_eq!(lines[1], line1);
        // Line 95 wraps around the ring back to line 0.
        assert_eq!(lines[95], line0);
        assert_eq!(lines[96], line1);
        // Line 23 ends on the last character, '~' (94); line 24 is the first to wrap to ' ' (0).
        assert!(lines[23].starts_with("789:;"));
        assert!(lines[23].ends_with("|}~\r\n"), "{:?}", lines[23]);
        assert!(lines[24].starts_with("89:;<"));
        assert!(lines[24].ends_with("}~ \r\n"), "{:?}", lines[24]);
    }

    #[test]
    fn chargen_ends_cleanly_when_peer_closes() {
        let (client, mut server_side) = loopback_pair();
        let generating = std::thread::spawn(move || super::chargen(&mut server_side));
        let mut first = [0u8; 74];
        (&client).read_exact(&mut first).unwrap();
        drop(client);
        let moved = generating.join().unwrap().expect("peer closing is the normal end");
        assert!(moved.written >= 74);
    }

    /// A connected (client, server) pair on 127.0.0.1 with bounded waits.
    fn loopback_pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = super::super::testing::connect(listener.local_addr().unwrap());
        let (server, _) = listener.accept().unwrap();
        server.set_read_timeout(Some(super::super::testing::WAIT)).unwrap();
        server.set_write_timeout(Some(super::super::testing::WAIT)).unwrap();
        (client, server)
    }
}
