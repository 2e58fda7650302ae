//! The wire fuzz bodies: `segment_parser` (whole datagrams) and `tcp_options` (an option area).
//! Depends only on `utcp::wire`.

use utcp::wire::{
    datagram_len, emit_datagram, parse_datagram, ChecksumMode, Datagram, IpRepr, TcpFlags, TcpOption,
    TcpRepr, WireErrorKind,
};

/// `segment_parser`: `data` as an IPv4 or IPv6 datagram.
///
/// Properties: parsing never panics (under either checksum mode); whatever parses emits without
/// error, and parsing the emitted bytes with checksums verified gives the same value (the IP payload
/// length may shrink, as options are re-laid out canonically); emitting that value again gives the
/// same bytes.
pub fn segment_parser(data: &[u8]) {
    let verified = parse_datagram(data, ChecksumMode::Verify);
    let Ok(d) = parse_datagram(data, ChecksumMode::Ignore) else {
        assert!(verified.is_err(), "parses with checksums verified but not with them ignored");
        return;
    };
    if let Ok(v) = verified {
        assert_eq!(v, d, "checksum mode changed the parsed value");
    }
    let bytes = emit(&d);
    let again = parse_datagram(&bytes, ChecksumMode::Verify)
        .unwrap_or_else(|e| panic!("emitted datagram does not parse: {e}\nvalue: {d:?}"));
    let expected = Datagram { ip: IpRepr { payload_len: bytes.len() - d.ip.header_len(), ..d.ip }, ..d };
    assert_eq!(again, expected, "parse -> emit -> parse changed the value");
    assert_eq!(emit(&again), bytes, "emit is not a fixpoint");
}

/// Emits a parsed datagram, which must always succeed.
fn emit(d: &Datagram<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; datagram_len(&d.ip, &d.transport)];
    match emit_datagram(&d.ip, &d.transport, &mut buf) {
        Ok(n) => assert_eq!(n, buf.len(), "emit_datagram length differs from datagram_len"),
        Err(e) => panic!("a parsed datagram does not emit: {e}\nvalue: {d:?}"),
    }
    buf
}

/// `tcp_options`: `data` as a TCP option area (the first 40 bytes; more cannot be carried).
///
/// Properties: walking the area never panics; a TCP header carrying it parses exactly when the walk
/// finds no error (with the same error); the parsed options emit, and parse back to the same value.
pub fn tcp_options(data: &[u8]) {
    // The walk alone, over everything given.
    for o in TcpOption::iter_raw(data) {
        let _ = o;
    }
    let area = &data[..data.len().min(40)];
    let padded = area.len().next_multiple_of(4);
    let mut seg = [0u8; 60];
    seg[12] = (((20 + padded) / 4) as u8) << 4;
    seg[13] = TcpFlags::ACK.0 as u8;
    seg[20..20 + area.len()].copy_from_slice(area);
    let seg = &seg[..20 + padded];
    let ip = IpRepr {
        src: [192, 0, 2, 1].into(),
        dst: [192, 0, 2, 2].into(),
        protocol: utcp::wire::IPPROTO_TCP,
        hop_limit: 64,
        ecn: 0,
        payload_len: seg.len(),
    };
    let walk_error = TcpOption::iter_raw(&seg[20..]).find_map(Result::err);
    let parsed = TcpRepr::parse(&ip, seg, ChecksumMode::Ignore);
    let tcp = match (parsed, walk_error) {
        (Ok(tcp), None) => tcp,
        (Err(e), Some(w)) => {
            assert_eq!(e.offset, w.offset + 20, "option error offsets disagree");
            assert_eq!(e.kind, w.kind, "option errors disagree");
            assert!(matches!(e.kind, WireErrorKind::BadOptionLength { .. }), "unexpected error {e}");
            return;
        }
        (p, w) => panic!("header parse {p:?} disagrees with option walk {w:?}"),
    };
    let mut out = [0u8; 60];
    let n = tcp.buffer_len();
    assert!(n <= 60, "parsed options need {n} bytes of header");
    tcp.emit(&ip, &mut out[..n]).unwrap_or_else(|e| panic!("parsed options do not emit: {e}"));
    let again = TcpRepr::parse(&ip, &out[..n], ChecksumMode::Verify)
        .unwrap_or_else(|e| panic!("emitted options do not parse: {e}"));
    assert_eq!(again.options, tcp.options, "parse -> emit -> parse changed the options");
}
