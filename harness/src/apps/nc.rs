//! The `nc`-like client side: pump a local reader into a connection and the connection into a
//! local writer, as `utcp live connect` does with stdin and stdout.
//!
//! It must not depend on the socket type behind [`Conn`], nor on a terminal.

use super::Conn;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

/// Bytes [`pump`] moved each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pumped {
    /// Bytes copied from the local reader into the connection.
    pub sent: u64,
    /// Bytes copied from the connection into the local writer.
    pub received: u64,
}

/// Copy `stdin` into `conn` on a thread of its own (then send FIN at `stdin`'s EOF) while this
/// thread copies `conn` into `stdout` until the peer's FIN.
///
/// Returns when the peer's stream ends. If `stdin` has not reached EOF by then (a terminal
/// nobody typed ^D into), its thread is left blocked in its read, to end with the process, and
/// `sent` counts what it had written so far; an error it already met is returned.
pub fn pump<C: Conn>(
    mut conn: C,
    mut stdin: impl Read + Send + 'static,
    mut stdout: impl Write,
) -> io::Result<Pumped> {
    let mut upstream = conn.try_clone_conn()?;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let sending = thread::Builder::new().name("nc-send".into()).spawn(move || {
        copy_counting(&mut stdin, &mut upstream, &counter)?;
        upstream.shutdown_write()
    })?;
    let received = copy_counting(&mut conn, &mut stdout, &AtomicU64::new(0))?;
    stdout.flush()?;
    if sending.is_finished() {
        match sending.join() {
            Ok(result) => result?,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
    Ok(Pumped { sent: sent.load(Ordering::SeqCst), received })
}

/// `io::copy` that publishes its running total in `total` after every write.
fn copy_counting(from: &mut impl Read, to: &mut impl Write, total: &AtomicU64) -> io::Result<u64> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total.load(Ordering::SeqCst)),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        // The writer for stdout may buffer; flush so an interactive user sees each piece.
        to.flush()?;
        total.fetch_add(n as u64, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{connect, seeded_bytes, sha256};
    use super::pump;
    use std::io::{self, Cursor};
    use std::net::{Shutdown, TcpListener};

    #[test]
    fn pump_carries_bytes_both_ways_through_an_echo() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A plain std::net echo, independent of apps::simple.
        let echo = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(super::super::testing::WAIT)).unwrap();
            let mut reader = conn.try_clone().unwrap();
            io::copy(&mut reader, &mut conn).unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
        });
        let data = seeded_bytes(7, 300_000);
        let mut out = Vec::new();
        let pumped = pump(connect(addr), Cursor::new(data.clone()), &mut out).expect("pump");
        echo.join().unwrap();
        assert_eq!(pumped.sent, data.len() as u64);
        assert_eq!(pumped.received, data.len() as u64);
        assert_eq!(sha256(&out), sha256(&data));
    }

    #[test]
    fn pump_returns_at_peer_fin_while_stdin_stays_open() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let greeter = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            io::Write::write_all(&mut conn, b"hello\n").unwrap();
        });
        // A reader that never reaches EOF within the test, like an idle terminal.
        let (_keep_open, never) = std::sync::mpsc::channel::<()>();
        let stdin = BlockedReader(never);
        let mut out = Vec::new();
        let pumped = pump(connect(addr), stdin, &mut out).expect("pump");
        greeter.join().unwrap();
        assert_eq!(out, b"hello\n");
        assert_eq!(pumped.received, 6);
        assert_eq!(pumped.sent, 0);
    }

    /// Blocks in `read` until its channel's sender is dropped.
    struct BlockedReader(std::sync::mpsc::Receiver<()>);

    impl io::Read for BlockedReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Ok(0)
        }
    }
}
