//! The application's calls in a capture: what `utcp live --pcap FILE.pcapng` records beside the
//! datagrams, so that a strict replay makes the calls the live application made, when it made
//! them, rather than guessing them from the bytes sent.
//!
//! A call is a pcapng packet on an interface of its own, link type [`CALLS_LINKTYPE`]
//! (LINKTYPE_USER0, which Wireshark shows as data), whose body is one line of ASCII:
//!
//! ```text
//! utcp-call LOCAL REMOTE write 65536
//! utcp-call LOCAL REMOTE write 60292 of 65658
//! utcp-call LOCAL REMOTE read 78
//! utcp-call LOCAL REMOTE shutdown
//! utcp-call LOCAL REMOTE close
//! ```
//!
//! A write that took fewer bytes than it offered says how many it offered (`of`): the stack
//! treats the end of a whole write as a push point, and the end of a partial one not.
//! `utcp-timers` says the driver ran the stack's timers that were due, all at that time: a
//! replay runs them then too, rather than at their deadlines (a loaded machine wakes late).
//!
//! `LOCAL` is the calling endpoint (`10.99.0.2:8080`, `[fd00::2]:8080`), `REMOTE` its peer. The
//! packet's timestamp is the stack's time of the call and its place in the file is the call's
//! place among the datagrams: after what the stack sent before the call, before what the call
//! made it send. A classic pcap file has one link type and cannot hold them.
//!
//! Pure functions; must not depend on files or the pcap-file crate.

use std::net::SocketAddr;

/// The link type of the calls' interface: LINKTYPE_USER0.
pub const CALLS_LINKTYPE: u32 = 147;

/// The pcapng interface name the calls are recorded on.
pub const CALLS_INTERFACE: &str = "utcp application calls";

/// What a recorded call's body starts with.
const TAG: &str = "utcp-call";

/// The body of the record of a run of the driver's timers.
pub const TIMERS: &str = "utcp-timers";

/// What a record on the calls' interface says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driven {
    /// The application at `local` made `call` on its connection with `remote`.
    Call {
        /// The caller.
        local: SocketAddr,
        /// Its peer.
        remote: SocketAddr,
        /// The call.
        call: AppCall,
    },
    /// The driver ran the timers due.
    Timers,
}

/// One call of the application on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCall {
    /// A write of `asked` bytes that took `taken` (more than 0).
    Write {
        /// Bytes offered.
        asked: usize,
        /// Bytes the stack took.
        taken: usize,
    },
    /// A read that returned this many bytes (more than 0).
    Read(usize),
    /// `shutdown(Write)`: a FIN after the queued data.
    Shutdown,
    /// The connection was closed (FIN, or RST when unread data was left).
    Close,
}

/// The body of the record of `call`, made by `local` on its connection with `remote`.
pub fn format_call(local: SocketAddr, remote: SocketAddr, call: AppCall) -> String {
    match call {
        AppCall::Write { asked, taken } if asked == taken => format!("{TAG} {local} {remote} write {taken}"),
        AppCall::Write { asked, taken } => format!("{TAG} {local} {remote} write {taken} of {asked}"),
        AppCall::Read(n) => format!("{TAG} {local} {remote} read {n}"),
        AppCall::Shutdown => format!("{TAG} {local} {remote} shutdown"),
        AppCall::Close => format!("{TAG} {local} {remote} close"),
    }
}

/// Reads the body of a record on the calls' interface.
pub fn parse_record(body: &[u8]) -> Result<Driven, String> {
    if body.trim_ascii() == TIMERS.as_bytes() {
        return Ok(Driven::Timers);
    }
    parse_call(body).map(|(local, remote, call)| Driven::Call { local, remote, call })
}

/// Reads the body of a call's record: the caller, its peer and the call.
pub fn parse_call(body: &[u8]) -> Result<(SocketAddr, SocketAddr, AppCall), String> {
    let text = std::str::from_utf8(body).map_err(|_| "an application call that is not text".to_string())?;
    let mut words = text.split_ascii_whitespace();
    if words.next() != Some(TAG) {
        return Err(format!("not an application call (no {TAG:?} or {TIMERS:?} at the start)"));
    }
    let addr = |w: Option<&str>, what: &str| -> Result<SocketAddr, String> {
        let w = w.ok_or_else(|| format!("application call without its {what} address"))?;
        w.parse().map_err(|e| format!("application call: {what} address {w:?}: {e}"))
    };
    let local = addr(words.next(), "local")?;
    let remote = addr(words.next(), "remote")?;
    let count = |w: Option<&str>| -> Result<usize, String> {
        let w = w.ok_or_else(|| "application call without its byte count".to_string())?;
        match w.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("application call: byte count {w:?} is not a number above 0")),
        }
    };
    let call = match words.next() {
        Some("write") => {
            let taken = count(words.next())?;
            let mut rest = words.clone();
            let asked = match rest.next() {
                Some("of") => {
                    words = rest;
                    count(words.next())?
                }
                _ => taken,
            };
            if asked < taken {
                return Err(format!("application call: a write took {taken} bytes of {asked}"));
            }
            AppCall::Write { asked, taken }
        }
        Some("read") => AppCall::Read(count(words.next())?),
        Some("shutdown") => AppCall::Shutdown,
        Some("close") => AppCall::Close,
        Some(other) => {
            return Err(format!("application call {other:?} is not write, read, shutdown or close"))
        }
        None => return Err("application call without its name".to_string()),
    };
    if let Some(extra) = words.next() {
        return Err(format!("application call: {extra:?} after the call"));
    }
    Ok((local, remote, call))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_reads_back_as_written() {
        let local: SocketAddr = "10.99.0.2:8080".parse().unwrap();
        let remote: SocketAddr = "[fd00::1]:37020".parse().unwrap();
        let calls = [
            AppCall::Write { asked: 65536, taken: 65536 },
            AppCall::Write { asked: 65658, taken: 60292 },
            AppCall::Read(78),
            AppCall::Shutdown,
            AppCall::Close,
        ];
        for call in calls {
            let body = format_call(local, remote, call);
            assert_eq!(parse_call(body.as_bytes()), Ok((local, remote, call)), "{body}");
        }
        let write = |asked, taken| format_call(local, remote, AppCall::Write { asked, taken });
        assert_eq!(write(3, 3), "utcp-call 10.99.0.2:8080 [fd00::1]:37020 write 3");
        assert_eq!(write(5, 3), "utcp-call 10.99.0.2:8080 [fd00::1]:37020 write 3 of 5");
    }

    #[test]
    fn a_timers_record_reads_back_and_a_call_through_the_same_reader() {
        assert_eq!(parse_record(TIMERS.as_bytes()), Ok(Driven::Timers));
        let local: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let remote: SocketAddr = "10.0.0.2:2".parse().unwrap();
        let body = format_call(local, remote, AppCall::Close);
        assert_eq!(parse_record(body.as_bytes()), Ok(Driven::Call { local, remote, call: AppCall::Close }));
        assert!(parse_record(b"utcp-timers now").is_err());
    }

    #[test]
    fn a_damaged_call_is_refused_with_the_reason() {
        let cases = [
            (&b"GET / HTTP/1.1"[..], "not an application call"),
            (b"utcp-call 10.0.0.1:1", "remote address"),
            (b"utcp-call 10.0.0.1:1 10.0.0.2:2 write", "byte count"),
            (b"utcp-call 10.0.0.1:1 10.0.0.2:2 write 0", "not a number above 0"),
            (b"utcp-call 10.0.0.1:1 10.0.0.2:2 write 5 of", "byte count"),
            (b"utcp-call 10.0.0.1:1 10.0.0.2:2 write 5 of 3", "took 5 bytes of 3"),
            (b"utcp-call 10.0.0.1:1 10.0.0.2:2 listen", "not write, read"),
            (b"utcp-call 10.0.0.1:1 10.0.0.2:2 close now", "after the call"),
            (b"utcp-call \xff", "not text"),
        ];
        for (body, why) in cases {
            let err = parse_call(body).unwrap_err();
            assert!(err.contains(why), "{:?}: {err}", String::from_utf8_lossy(body));
        }
    }
}
