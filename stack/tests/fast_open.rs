//! TCP Fast Open (RFC 7413): the server's cookies and SYN data, the client's cookie cache, data on
//! the SYN and the fallbacks when the server does not take it. Exact segments in, exact segments
//! out, on virtual time.

mod common;

use common::*;
use std::net::SocketAddr;
use utcp::config::FastOpenConfig;
use utcp::wire::{FastOpen, FastOpenCookie, TcpFlags, TcpOptions};
use utcp::{ConnectError, Duration, SocketOption};

const BOTH: FastOpenConfig = FastOpenConfig {
    client: true,
    server: true,
    client_no_cookie: false,
    server_no_cookie: false,
    server_all_listeners: false,
};

fn fast_open_config() -> utcp::Config {
    let mut c = config();
    c.tcp.fast_open = BOTH;
    c.tcp.timestamps = false;
    c.fast_open_key = [7; 16];
    c
}

/// A listener with a Fast Open queue (TCP_FASTOPEN).
fn fast_open_listener() -> T {
    let mut t = T::listening(fast_open_config());
    let l = t.listener.unwrap();
    t.set_listener_option(l, SocketOption::FastOpenQueue(8)).unwrap();
    t
}

fn fo(cookie: &[u8]) -> TcpOptions<'static> {
    let fast_open =
        Some(FastOpen { cookie: FastOpenCookie::from_slice(cookie).unwrap(), experimental: false });
    TcpOptions { mss: Some(1460), fast_open, ..NO_OPTS }
}

/// The cookie the server gives REMOTE, learned from its answer to a cookie request.
fn server_cookie() -> Vec<u8> {
    let mut t = fast_open_listener();
    t.send(In { opts: fo(&[]), ..BARE_SYN });
    let out = t.out();
    let hex = out[0].split("FO ").nth(1).unwrap().trim_end_matches(['>', ',', 'p', 'o', 'n']);
    (0..16).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

// ----------------------------------------------------------------------------------------------
// Server

//= https://www.rfc-editor.org/rfc/rfc7413#section-4.1.2
//# the server generates a cookie and sends it through the Fast Open option of a SYN-ACK packet
#[test]
fn rfc7413_4_1_2_cookie_request_gets_a_cookie_and_its_syn_data_is_not_taken() {
    let mut t = fast_open_listener();
    t.send(In { opts: fo(&[]), data: b"hello", ..BARE_SYN });
    let out = t.out();
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("S. 0:0(0) ack 1 win 65535 <mss 1460,FO "), "{out:?}");
    assert!(out[0].ends_with(",nop,nop>"), "{out:?}");
    assert_eq!(t.s().pending_connections(t.listener.unwrap()), Some(0));
}

//= https://www.rfc-editor.org/rfc/rfc7413#section-4.2.2
//# If the cookie is valid, the server [...] acknowledges the SYN and the data
#[test]
fn rfc7413_4_2_2_valid_cookie_data_is_acked_and_accepted_before_the_handshake_completes() {
    let cookie = server_cookie();
    let mut t = fast_open_listener();
    t.send(In { opts: fo(&cookie), data: b"hello", ..BARE_SYN });
    assert_eq!(t.out(), ["S. 0:0(0) ack 6 win 65535 <mss 1460>"]);
    // accept returns at once, the data can be read, and the server may answer in SYN-RECEIVED.
    let h = t.accept();
    let mut buf = [0u8; 16];
    assert_eq!(t.read(h, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert!(t.s().info(h).unwrap().syn_data_acked);
    assert_eq!(t.write(h, b"world"), Ok(5));
    assert_eq!(t.out(), ["P. 1:6(5) ack 6 win 65535"]);
    t.send(In { seq: 6, ack: 6, ..ACK });
    assert_eq!(t.s().state(h), Some(utcp::State::Established));
    // No second entry in the accept queue once the handshake completes.
    assert_eq!(t.s().pending_connections(t.listener.unwrap()), Some(0));
}

//= https://www.rfc-editor.org/rfc/rfc7413#section-4.2.2
//# If the cookie is not valid, the server discards the data and acknowledges only the SYN
#[test]
fn rfc7413_4_2_2_invalid_cookie_acks_only_the_syn_and_sends_the_valid_cookie() {
    let cookie = server_cookie();
    let mut t = fast_open_listener();
    t.send(In { opts: fo(&[0xaa; 8]), data: b"hello", ..BARE_SYN });
    let hex: String = cookie.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(t.out(), [format!("S. 0:0(0) ack 1 win 65535 <mss 1460,FO {hex},nop,nop>")]);
    assert_eq!(t.s().pending_connections(t.listener.unwrap()), Some(0));
}

// RFC 7413 §5.1 (resource exhaustion): Fast Open is enabled per listener; one without a queue
// treats the option as unknown and the SYN data as any other (not taken, in the Linux profile).
#[test]
fn rfc7413_5_1_listener_without_fast_open_queue_ignores_cookie_and_data() {
    let cookie = server_cookie();
    let mut t = T::listening(fast_open_config());
    t.send(In { opts: fo(&cookie), data: b"hello", ..BARE_SYN });
    assert_eq!(t.out(), ["S. 0:0(0) ack 1 win 65535 <mss 1460>"]);
}

// ----------------------------------------------------------------------------------------------
// Client

fn remote() -> SocketAddr {
    SocketAddr::new(REMOTE, REMOTE_PORT)
}

fn fast_open_connect(t: &mut T, data: &[u8]) -> (utcp::SocketHandle, usize) {
    let now = t.now();
    let options = t.s().default_options();
    let local = Some(SocketAddr::new(LOCAL, LOCAL_PORT));
    let r = t.stack().connect_fast_open(now, local, remote(), options, data).unwrap();
    t.sock = Some(r.0);
    t.events();
    r
}

/// A client that asked for a cookie and got `abcd1234` with MSS 940; the connection is closed.
fn client_with_cookie() -> T {
    let mut t = T::new(fast_open_config());
    let (h, n) = fast_open_connect(&mut t, b"data");
    assert_eq!(n, 0, "no cookie yet: no data on the SYN");
    assert_eq!(t.out(), ["S 0:0(0) win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 7,FO,nop,nop>"]);
    let synack = In {
        flags: TcpFlags::SYN | TcpFlags::ACK,
        ack: 1,
        opts: TcpOptions { mss: Some(940), ..fo(&[0xab, 0xcd, 0x12, 0x34]) },
        ..BARE_SYN
    };
    t.send(synack);
    assert_eq!(t.out(), [". 1:1(0) ack 1 win 65535"]);
    t.abort(h).unwrap();
    t.out();
    t.iss = None;
    t
}

//= https://www.rfc-editor.org/rfc/rfc7413#section-4.1.3
//# the client caches the cookie [...] and the server's MSS
#[test]
fn rfc7413_4_1_3_cached_cookie_sends_data_on_the_syn_within_the_cached_mss() {
    let mut t = client_with_cookie();
    let (_, n) = fast_open_connect(&mut t, &[1; 2000]);
    // Linux: the cached MSS less 40 bytes of option room.
    assert_eq!(n, 900);
    assert_eq!(
        t.out(),
        ["S 0:900(900) win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 7,FO abcd1234,nop,nop>"]
    );
    let synack = In {
        flags: TcpFlags::SYN | TcpFlags::ACK,
        ack: 901,
        opts: TcpOptions { mss: Some(940), ..NO_OPTS },
        ..BARE_SYN
    };
    t.send(synack);
    assert_eq!(t.out(), [". 901:901(0) ack 1 win 65535"]);
    assert!(t.s().info(t.sock()).unwrap().syn_data_acked);
}

//= https://www.rfc-editor.org/rfc/rfc7413#section-4.2.1
//# the client [...] MUST retransmit the data that the SYN-ACK did not acknowledge
#[test]
fn rfc7413_syn_data_the_syn_ack_does_not_acknowledge_is_sent_again_at_once() {
    let mut t = client_with_cookie();
    let (_, n) = fast_open_connect(&mut t, &[1; 700]);
    assert_eq!(n, 700);
    t.out();
    let synack = In {
        flags: TcpFlags::SYN | TcpFlags::ACK,
        ack: 1,
        opts: TcpOptions { mss: Some(1460), ..NO_OPTS },
        ..BARE_SYN
    };
    t.send(synack);
    assert_eq!(t.out(), ["P. 1:701(700) ack 1 win 65535"]);
    assert!(!t.s().info(t.sock()).unwrap().syn_data_acked);
}

// Linux (and RFC 7413 §4.1.3's concern with middleboxes that drop SYNs with unknown options or
// data): a SYN that times out goes again without the data and without the option.
#[test]
fn rfc7413_retransmitted_syn_carries_neither_data_nor_cookie() {
    let mut t = client_with_cookie();
    fast_open_connect(&mut t, &[1; 100]);
    assert_eq!(t.out().len(), 1);
    let again = t.advance_out(Duration::from_secs(1));
    assert_eq!(again, ["+1000ms S 0:0(0) win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 7>"]);
}

#[test]
fn fast_open_connect_with_the_client_side_off_is_refused() {
    let mut c = fast_open_config();
    c.tcp.fast_open.client = false;
    let mut t = T::new(c);
    let now = t.now();
    let options = t.s().default_options();
    let r = t.stack().connect_fast_open(now, None, remote(), options, b"x");
    assert_eq!(r, Err(ConnectError::FastOpenDisabled));
}
