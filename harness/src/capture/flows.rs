//! Splitting a capture's TCP segments into connections (DESIGN.md "Replay" step 1).
//!
//! A connection is a 4-tuple plus SYN: a SYN on a tuple whose previous connection ended (RST,
//! or FIN both ways), or that was only seen mid-stream, starts a new connection; a retransmitted
//! SYN does not. The client is the endpoint that sent the SYN, or the one a SYN-ACK was sent to
//! when the SYN-ACK comes first (capture reordering). A connection with neither is kept and
//! marked mid-stream; its server is guessed as the endpoint with the lower port.
//!
//! Headers are read with etherparse, leniently (captures are often sliced or have bad
//! checksums); the datagram is kept whole for replay to parse with `utcp::wire`.
//! Must not depend on: the stack, the transcript, terminals.

use crate::capture::{Content, Record};
use etherparse::{IpNumber, LaxIpSlice, TcpSlice};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use utcp::tcp::seq::SeqNum;
use utcp::time::Instant;
use utcp::wire::TcpFlags;

/// Which endpoint sent a packet.
pub use crate::side::Side;

/// The TCP header fields of a packet, read leniently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSummary {
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number as on the wire.
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Raw window field.
    pub window: u16,
    /// Payload bytes on the wire, from the IP header's length (more than were captured when the
    /// capture was taken with a short snap length).
    pub payload_len: usize,
    /// Payload bytes present in the capture.
    pub captured_payload_len: usize,
    /// Offset of the TCP header in the datagram.
    pub tcp_offset: usize,
    /// Length of the TCP header (options included).
    pub header_len: usize,
}

impl TcpSummary {
    /// Whether the capture holds less payload than was sent (snap length).
    pub fn is_sliced(&self) -> bool {
        self.captured_payload_len < self.payload_len
    }

    /// Length in sequence space: payload plus SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload_len + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }
}

/// One packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPacket {
    /// Record number in the capture (1-based).
    pub number: u64,
    /// Capture time.
    pub time: Instant,
    /// Who sent it.
    pub from: Side,
    /// The IP datagram as captured.
    pub datagram: Vec<u8>,
    /// Its TCP header fields.
    pub tcp: TcpSummary,
}

impl FlowPacket {
    /// The datagram with what a short snap length cut off as zeros: a sliced record parses whole,
    /// with the payload length its IP header declared (the captured bytes, then zeros). Its
    /// checksum no longer holds. A record captured whole is returned as it is.
    pub fn zero_filled(&self) -> Cow<'_, [u8]> {
        if !self.tcp.is_sliced() {
            return Cow::Borrowed(&self.datagram);
        }
        let mut d = self.datagram.clone();
        d.resize(self.tcp.tcp_offset + self.tcp.header_len + self.tcp.payload_len, 0);
        Cow::Owned(d)
    }

    /// The datagram as captured, its IP length fields cut down to match, so that a sliced record
    /// parses with only the captured payload. A record captured whole is returned as it is.
    pub fn as_captured(&self) -> Cow<'_, [u8]> {
        if !self.tcp.is_sliced() {
            return Cow::Borrowed(&self.datagram);
        }
        let mut d = self.datagram.clone();
        let captured = d.len();
        match d.first().map(|b| b >> 4) {
            Some(4) if captured >= 20 => d[2..4].copy_from_slice(&(captured.min(65535) as u16).to_be_bytes()),
            Some(6) if captured >= 40 => {
                d[4..6].copy_from_slice(&((captured - 40).min(65535) as u16).to_be_bytes())
            }
            _ => {}
        }
        Cow::Owned(d)
    }

    /// The raw TCP options area, in wire order.
    pub fn raw_options(&self) -> &[u8] {
        let start = self.tcp.tcp_offset + 20;
        self.datagram.get(start..self.tcp.tcp_offset + self.tcp.header_len).unwrap_or(&[])
    }
}

/// One TCP connection found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// 1-based index in order of first packet.
    pub index: usize,
    /// The opener's endpoint.
    pub client: SocketAddr,
    /// The answerer's endpoint.
    pub server: SocketAddr,
    /// Seen without its SYN or SYN-ACK: the capture started mid-stream.
    pub mid_stream: bool,
    /// The packets in capture order.
    pub packets: Vec<FlowPacket>,
}

impl Flow {
    /// Which side sent from `src` to `dst`, if the pair belongs to this flow.
    pub fn side_of(&self, src: SocketAddr, dst: SocketAddr) -> Option<Side> {
        if (src, dst) == (self.client, self.server) {
            Some(Side::Client)
        } else if (src, dst) == (self.server, self.client) {
            Some(Side::Server)
        } else {
            None
        }
    }

    /// The ISN of `side`: the sequence number of its first SYN, if it sent one.
    pub fn isn(&self, side: Side) -> Option<SeqNum> {
        self.packets.iter().find(|p| p.from == side && p.tcp.flags.syn()).map(|p| p.tcp.seq)
    }
}

/// Why a record is not part of any connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Record number.
    pub number: u64,
    /// Why: not IP, not TCP, a fragment, or a header that cannot be read.
    pub reason: String,
}

/// A capture split into connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flows {
    /// The connections, in order of first packet.
    pub flows: Vec<Flow>,
    /// Records that are not TCP segments of a connection, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Reads the TCP header of an IP datagram leniently: addresses, ports and fields.
pub fn summarize(ip: &[u8]) -> Result<(SocketAddr, SocketAddr, TcpSummary), String> {
    let (slice, _ext_err) = LaxIpSlice::from_slice(ip).map_err(|e| format!("IP header: {e}"))?;
    let payload = slice.payload();
    if payload.ip_number != IpNumber::TCP {
        return Err(format!("not TCP (protocol {})", payload.ip_number.0));
    }
    if payload.fragmented {
        return Err("IP fragment".to_string());
    }
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|e| format!("TCP header: {e}"))?;
    let src = SocketAddr::new(slice.source_addr(), tcp.source_port());
    let dst = SocketAddr::new(slice.destination_addr(), tcp.destination_port());
    let mut flags = TcpFlags::NONE;
    for (set, f) in [
        (tcp.fin(), TcpFlags::FIN),
        (tcp.syn(), TcpFlags::SYN),
        (tcp.rst(), TcpFlags::RST),
        (tcp.psh(), TcpFlags::PSH),
        (tcp.ack(), TcpFlags::ACK),
        (tcp.urg(), TcpFlags::URG),
        (tcp.ece(), TcpFlags::ECE),
        (tcp.cwr(), TcpFlags::CWR),
        (tcp.ns(), TcpFlags::NS),
    ] {
        if set {
            flags |= f;
        }
    }
    let tcp_offset = payload.payload.as_ptr() as usize - ip.as_ptr() as usize;
    let header_len = tcp.header_slice().len();
    let captured_payload_len = tcp.payload().len();
    // A short snap length cuts the datagram: the IP header still says how long it was.
    let declared_ip_len = match &slice {
        LaxIpSlice::Ipv4(v4) => usize::from(v4.header().total_len()),
        LaxIpSlice::Ipv6(v6) => match v6.header().payload_length() {
            0 => ip.len(), // jumbogram or unknown: trust the capture
            n => 40 + usize::from(n),
        },
    };
    let payload_len = if payload.incomplete {
        declared_ip_len.saturating_sub(tcp_offset + header_len).max(captured_payload_len)
    } else {
        captured_payload_len
    };
    let summary = TcpSummary {
        seq: SeqNum(tcp.sequence_number()),
        ack: SeqNum(tcp.acknowledgment_number()),
        flags,
        window: tcp.window_size(),
        payload_len,
        captured_payload_len,
        tcp_offset,
        header_len,
    };
    Ok((src, dst, summary))
}

/// What the splitter remembers about a connection while splitting.
struct Open {
    client_isn: Option<SeqNum>,
    fin_client: bool,
    fin_server: bool,
    rst: bool,
    /// The client sent something other than a SYN (the handshake moved on).
    client_past_syn: bool,
}

impl Open {
    const NEW: Open =
        Open { client_isn: None, fin_client: false, fin_server: false, rst: false, client_past_syn: false };

    fn ended(&self) -> bool {
        self.rst || (self.fin_client && self.fin_server)
    }
}

type TupleKey = (SocketAddr, SocketAddr);

/// Tuple key independent of direction.
fn key(a: SocketAddr, b: SocketAddr) -> TupleKey {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Splits the records of a capture into TCP connections.
pub fn split<'a>(records: impl IntoIterator<Item = &'a Record<'a>>) -> Flows {
    let mut out = Flows::default();
    // The current connection of each tuple, by index into `out.flows` and `state`; the last
    // tuple seen is cached because consecutive packets mostly share one.
    let mut current: HashMap<TupleKey, usize> = HashMap::new();
    let mut last: Option<(TupleKey, usize)> = None;
    let mut state: Vec<Open> = Vec::new();
    for rec in records {
        let ip = match rec.content {
            Content::Ip(ip) => ip,
            Content::NotIp(why) => {
                out.skipped.push(Skipped { number: rec.number, reason: why.to_string() });
                continue;
            }
        };
        let (src, dst, tcp) = match summarize(ip) {
            Ok(s) => s,
            Err(reason) => {
                out.skipped.push(Skipped { number: rec.number, reason });
                continue;
            }
        };
        let k = key(src, dst);
        let is_syn = tcp.flags.syn() && !tcp.flags.ack();
        let is_synack = tcp.flags.syn() && tcp.flags.ack();
        let found = match last {
            Some((lk, i)) if lk == k => Some(i),
            _ => current.get(&k).copied(),
        };
        let start_new = match found {
            None => true,
            Some(i) => {
                let o = &state[i];
                let new_isn = matches!(o.client_isn, Some(isn) if isn != tcp.seq) && o.client_past_syn;
                is_syn && (o.ended() || out.flows[i].mid_stream || new_isn)
            }
        };
        let i = if start_new {
            let (client, server, mid_stream) = if is_syn {
                (src, dst, false)
            } else if is_synack {
                (dst, src, false)
            } else if src.port() > dst.port() || (src.port() == dst.port() && src > dst) {
                (src, dst, true)
            } else {
                (dst, src, true)
            };
            let i = out.flows.len();
            out.flows.push(Flow { index: i + 1, client, server, mid_stream, packets: Vec::new() });
            state.push(Open::NEW);
            current.insert(k, i);
            i
        } else {
            found.unwrap_or_default()
        };
        last = Some((k, i));
        let (o, flow) = (&mut state[i], &mut out.flows[i]);
        let from = if src == flow.client { Side::Client } else { Side::Server };
        match from {
            Side::Client => {
                if is_syn && o.client_isn.is_none() {
                    o.client_isn = Some(tcp.seq);
                }
                o.client_past_syn |= !is_syn;
                o.fin_client |= tcp.flags.fin();
            }
            Side::Server => o.fin_server |= tcp.flags.fin(),
        }
        o.rst |= tcp.flags.rst();
        flow.packets.push(FlowPacket {
            number: rec.number,
            time: rec.time,
            from,
            datagram: ip.to_vec(),
            tcp,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;

    const C: ([u8; 4], u16) = ([192, 0, 2, 1], 40000);
    const S: ([u8; 4], u16) = ([192, 168, 0, 1], 8080);

    /// A datagram from `from` to `to` with flags given as packetdrill letters.
    fn seg(
        from: ([u8; 4], u16),
        to: ([u8; 4], u16),
        flags: &str,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = etherparse::PacketBuilder::ipv4(from.0, to.0, 64).tcp(from.1, to.1, seq, 1000);
        for c in flags.chars() {
            b = match c {
                'S' => b.syn(),
                'F' => b.fin(),
                'R' => b.rst(),
                'P' => b.psh(),
                '.' => b.ack(ack),
                _ => panic!("flag {c}"),
            };
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn records(datagrams: &[Vec<u8>]) -> Vec<Record<'_>> {
        datagrams
            .iter()
            .enumerate()
            .map(|(i, d)| Record {
                number: i as u64 + 1,
                time: Instant::from_micros(i as u64 * 10),
                link: LinkType::RawIp,
                interface: 0,
                original_len: d.len() as u32,
                frame: d,
                content: Content::Ip(d),
                comment: None,
            })
            .collect()
    }

    fn sides(f: &Flow) -> String {
        f.packets.iter().map(|p| if p.from == Side::Client { 'c' } else { 's' }).collect()
    }

    #[test]
    fn syn_ack_captured_before_syn_still_makes_the_syn_sender_the_client() {
        let d = [
            seg(S, C, "S.", 500, 101, b""),
            seg(C, S, "S", 100, 0, b""),
            seg(C, S, ".", 101, 501, b""),
            seg(C, S, "P.", 101, 501, b"GET"),
        ];
        let flows = split(&records(&d));
        assert_eq!(flows.flows.len(), 1);
        let f = &flows.flows[0];
        assert_eq!((f.client.port(), f.server.port(), f.mid_stream), (40000, 8080, false));
        assert_eq!(sides(f), "sccc");
        assert_eq!(f.isn(Side::Client), Some(SeqNum(100)));
        assert_eq!(f.isn(Side::Server), Some(SeqNum(500)));
    }

    #[test]
    fn new_syn_after_close_starts_a_new_connection_but_a_retransmitted_syn_does_not() {
        let d = [
            seg(C, S, "S", 100, 0, b""),
            seg(C, S, "S", 100, 0, b""),
            seg(S, C, "S.", 500, 101, b""),
            seg(C, S, ".", 101, 501, b""),
            seg(C, S, "R.", 101, 501, b""),
            seg(C, S, "S", 9000, 0, b""),
            seg(S, C, "S.", 7000, 9001, b""),
        ];
        let flows = split(&records(&d));
        assert_eq!(flows.flows.len(), 2);
        assert_eq!(flows.flows[0].packets.len(), 5);
        assert_eq!(flows.flows[1].packets.iter().map(|p| p.number).collect::<Vec<_>>(), [6, 7]);
        assert_eq!(flows.flows[1].index, 2);
    }

    #[test]
    fn mid_stream_connection_is_marked_and_the_lower_port_is_the_server() {
        let d = [seg(S, C, "P.", 500, 101, b"data"), seg(C, S, ".", 101, 504, b"")];
        let flows = split(&records(&d));
        let f = &flows.flows[0];
        assert!(f.mid_stream);
        assert_eq!(f.server.port(), 8080);
        assert_eq!(sides(f), "sc");
        assert_eq!(f.packets[0].tcp.payload_len, 4);
    }

    #[test]
    fn non_tcp_records_are_skipped_with_a_reason() {
        let udp = {
            let mut out = Vec::new();
            etherparse::PacketBuilder::ipv4(C.0, S.0, 64).udp(1, 2).write(&mut out, b"x").unwrap();
            out
        };
        let d = [udp, vec![0x45, 0, 0]];
        let flows = split(&records(&d));
        assert!(flows.flows.is_empty());
        assert_eq!(flows.skipped.len(), 2);
        assert_eq!(flows.skipped[0].reason, "not TCP (protocol 17)");
        assert!(flows.skipped[1].reason.starts_with("IP header"), "{:?}", flows.skipped[1]);
    }

    #[test]
    fn raw_options_are_the_options_area() {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4(C.0, S.0, 64)
            .tcp(C.1, S.1, 1, 1000)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap()
            .write(&mut out, b"")
            .unwrap();
        let d = [out];
        let flows = split(&records(&d));
        assert_eq!(flows.flows[0].packets[0].raw_options(), [2, 4, 0x05, 0xb4]);
    }

    #[test]
    fn sliced_datagram_counts_the_payload_the_ip_header_declares() {
        let full = seg(C, S, "P.", 101, 501, &[7u8; 400]);
        let cut = full[..54].to_vec();
        let (_, _, t) = summarize(&cut).unwrap();
        assert_eq!((t.payload_len, t.captured_payload_len, t.is_sliced()), (400, 14, true));
        let (_, _, t) = summarize(&full).unwrap();
        assert_eq!((t.payload_len, t.captured_payload_len, t.is_sliced()), (400, 400, false));
    }
}
