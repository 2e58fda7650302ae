//! TCP Fast Open (RFC 7413): the server's cookies, its decision on a SYN that reached a Fast
//! Open listener, and the client's cache of cookies and MSS per server.
//!
//! The cookie is Linux's (`__tcp_fastopen_cookie_gen_cipher`): SipHash-2-4 of the client's and
//! the server's address (source then destination of the SYN) under the 128-bit key, written
//! little-endian, 8 bytes, so that a cookie a Linux server with the same key gave a client is
//! good here too. The key comes from `Config::fast_open_key` (or a listener's own), never from
//! the OS.
//!
//! Must not depend on: clocks, I/O, threads, OS randomness.

use crate::config::FastOpenConfig;
use crate::tcp::isn::siphash24;
use crate::wire::{FastOpen, FastOpenCookie};
use std::collections::HashMap;
use std::net::IpAddr;

/// The cookie a server with `key` gives the client at `client` for its address `server`
/// (RFC 7413 §4.1.2: "the server can generate a cookie ... over the client IP address").
pub(crate) fn cookie(key: &[u8; 16], client: IpAddr, server: IpAddr) -> FastOpenCookie {
    let mut buf = [0u8; 32];
    let n = match (client, server) {
        (IpAddr::V4(c), IpAddr::V4(s)) => {
            buf[..4].copy_from_slice(&c.octets());
            buf[4..8].copy_from_slice(&s.octets());
            8
        }
        (c, s) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            buf[..16].copy_from_slice(&v6(c));
            buf[16..].copy_from_slice(&v6(s));
            32
        }
    };
    let h = siphash24(key, &buf[..n]).to_le_bytes();
    FastOpenCookie::from_slice(&h).unwrap_or_default()
}

/// What a Fast Open listener does with a SYN (Linux's `tcp_try_fastopen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ServerDecision {
    /// Accept the SYN's data and hand the connection to `accept` at once (RFC 7413 §4.2.2).
    pub(crate) accept_data: bool,
    /// The Fast Open option of the SYN-ACK: a cookie for a client that asked for one or
    /// presented a bad one (RFC 7413 §4.2.1).
    pub(crate) reply: Option<FastOpen>,
}

/// The cookie option of a SYN as the server reads it: `None` for none, or for a cookie of a
/// length no client may use (Linux ignores those), else the option.
fn syn_cookie(option: Option<FastOpen>) -> Option<FastOpen> {
    option.filter(|fo| fo.cookie.is_empty() || fo.cookie.is_valid())
}

/// RFC 7413 §4.2.2: the server's answer to a SYN on a listener whose Fast Open queue holds
/// `queue` connections (0: Fast Open is off on it), with `valid` the cookie this client should
/// have.
pub(crate) fn server_decision(
    cfg: FastOpenConfig,
    queue: usize,
    syn_option: Option<FastOpen>,
    syn_data: bool,
    valid: FastOpenCookie,
) -> ServerDecision {
    let option = syn_cookie(syn_option);
    if !cfg.server || queue == 0 || !(syn_data || option.is_some()) {
        return ServerDecision::default();
    }
    // Linux's TFO_SERVER_COOKIE_NOT_REQD: data is taken without looking at any cookie.
    if cfg.server_no_cookie {
        return ServerDecision { accept_data: true, reply: None };
    }
    let Some(option) = option else { return ServerDecision::default() };
    let reply = Some(FastOpen { cookie: valid, experimental: option.experimental });
    if option.cookie.is_empty() {
        // §4.1.2: a cookie request: the SYN-ACK carries the cookie; data on this SYN is not
        // taken (it was sent without a cookie).
        ServerDecision { accept_data: false, reply }
    } else if option.cookie == valid {
        // §4.2.2: a valid cookie: the data is accepted, and the SYN-ACK acknowledges it.
        ServerDecision { accept_data: true, reply: None }
    } else {
        // §4.2.2: an invalid cookie: the data is dropped, the SYN-ACK acknowledges only the
        // SYN and gives the client the cookie it should use.
        ServerDecision { accept_data: false, reply }
    }
}

/// What the client remembers of one server (RFC 7413 §4.1.3: the cookie and the MSS, per
/// server IP address), as Linux's `tcp_fastopen_metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheEntry {
    /// The server's MSS from its last SYN-ACK; 0 when unknown.
    pub(crate) mss: u16,
    /// The last valid cookie it gave; empty when none.
    pub(crate) cookie: FastOpen,
    /// Linux's `try_exp`: 1 when a request in the RFC form got no cookie (ask in the
    /// experimental form next), 2 when the experimental one got none either.
    pub(crate) try_exp: u8,
}

/// The client's cache, per server address.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    entries: HashMap<IpAddr, CacheEntry>,
}

/// What a SYN-ACK taught the client about its server, for the cache (Linux's
/// `tcp_fastopen_cache_set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Learned {
    /// The MSS option of the SYN-ACK, 0 when it had none.
    pub(crate) mss: u16,
    /// A valid cookie in the SYN-ACK, when the SYN had asked for one (RFC 7413 §4.1.3: an
    /// unsolicited cookie is not cached).
    pub(crate) cookie: Option<FastOpen>,
    /// `try_exp` as Linux computes it (0 when nothing to change).
    pub(crate) try_exp: u8,
}

impl Cache {
    /// The entry for `server`, if any.
    pub(crate) fn get(&self, server: IpAddr) -> CacheEntry {
        self.entries.get(&server).copied().unwrap_or_default()
    }

    /// Records what a SYN-ACK from `server` said.
    pub(crate) fn learn(&mut self, server: IpAddr, l: Learned) {
        let e = self.entries.entry(server).or_default();
        if l.mss != 0 {
            e.mss = l.mss;
        }
        match l.cookie {
            Some(c) if c.cookie.is_valid() => e.cookie = c,
            _ if l.try_exp > e.try_exp && e.cookie.cookie.is_empty() && !e.cookie.experimental => {
                e.try_exp = l.try_exp
            }
            _ => {}
        }
    }

    /// Forgets everything (`ip tcp_metrics flush`).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The four words of Linux's `tcp_fastopen_key` sysctl as the key bytes.
    fn key(words: [u32; 4]) -> [u8; 16] {
        let mut k = [0; 16];
        for (i, w) in words.iter().enumerate() {
            k[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        k
    }

    fn hex(c: FastOpenCookie) -> String {
        format!("{c:?}")
    }

    // The cookies packetdrill's suite expects of a Linux server (fastopen/server/simple*.pkt,
    // run_all.py's TFO_COOKIE): the same key and addresses give the same cookie here.
    #[test]
    fn rfc7413_4_1_2_cookie_is_linux_siphash_of_client_and_server_address() {
        let a1 = key([0xa1a1a1a1, 0xb2b2b2b2, 0xc3c3c3c3, 0xd4d4d4d4]);
        let c = cookie(&a1, Ipv4Addr::new(192, 0, 2, 1).into(), Ipv4Addr::new(192, 168, 0, 1).into());
        assert_eq!(hex(c), "3021b9d889017eeb");
        let a0 = key([0xa0bf63f7, 0xed803d81, 0xcd641d30, 0xcebc4a90]);
        let c = cookie(&a0, Ipv4Addr::new(10, 248, 0, 2).into(), Ipv4Addr::new(192, 168, 0, 2).into());
        assert_eq!(hex(c), "00abaaabe8e954c2");
        let c = cookie(&[0; 16], Ipv4Addr::new(10, 248, 0, 2).into(), Ipv4Addr::new(192, 168, 0, 2).into());
        assert_eq!(hex(c), "93b7aa4f550f8a1a");
    }

    const ON: FastOpenConfig = FastOpenConfig {
        client: true,
        server: true,
        client_no_cookie: false,
        server_no_cookie: false,
        server_all_listeners: false,
    };

    fn fo(bytes: &[u8]) -> Option<FastOpen> {
        Some(FastOpen { cookie: FastOpenCookie::from_slice(bytes).unwrap(), experimental: false })
    }

    #[test]
    fn rfc7413_4_2_2_valid_cookie_accepts_data_invalid_one_gets_the_right_cookie() {
        let valid = FastOpenCookie::from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let d = server_decision(ON, 5, fo(&[1, 2, 3, 4, 5, 6, 7, 8]), true, valid);
        assert_eq!(d, ServerDecision { accept_data: true, reply: None });
        let d = server_decision(ON, 5, fo(&[9; 8]), true, valid);
        assert_eq!(d, ServerDecision { accept_data: false, reply: fo(&[1, 2, 3, 4, 5, 6, 7, 8]) });
        let d = server_decision(ON, 5, fo(&[]), true, valid);
        assert_eq!(d, ServerDecision { accept_data: false, reply: fo(&[1, 2, 3, 4, 5, 6, 7, 8]) });
    }

    #[test]
    fn rfc7413_no_fast_open_without_a_queue_a_server_bit_or_a_cookie() {
        let valid = FastOpenCookie::from_slice(&[1; 8]).unwrap();
        assert_eq!(server_decision(ON, 0, fo(&[1; 8]), true, valid), ServerDecision::default());
        let off = FastOpenConfig { server: false, ..ON };
        assert_eq!(server_decision(off, 5, fo(&[1; 8]), true, valid), ServerDecision::default());
        // Data without a cookie option is not taken, unless the server needs no cookie.
        assert_eq!(server_decision(ON, 5, None, true, valid), ServerDecision::default());
        let no_cookie = FastOpenConfig { server_no_cookie: true, ..ON };
        assert!(server_decision(no_cookie, 5, None, true, valid).accept_data);
        // A cookie of an odd length is no cookie at all.
        assert_eq!(server_decision(ON, 5, fo(&[1; 5]), false, valid), ServerDecision::default());
    }

    // RFC 7413 §4.1.3: the client caches the cookie and the MSS per server; an invalid cookie
    // is not cached and leaves the old one.
    #[test]
    fn rfc7413_4_1_3_client_caches_valid_cookies_and_the_mss() {
        let mut cache = Cache::default();
        let server: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
        cache.learn(server, Learned { mss: 940, cookie: fo(&[0; 4]), try_exp: 0 });
        cache.learn(server, Learned { mss: 1460, cookie: fo(&[1, 2]), try_exp: 0 });
        let e = cache.get(server);
        assert_eq!((e.mss, e.cookie.cookie.as_slice()), (1460, &[0u8; 4][..]));
        cache.clear();
        assert_eq!(cache.get(server), CacheEntry::default());
    }
}
