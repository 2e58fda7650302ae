//! Translation of the recorded peer's segments into utcp's sequence and timestamp space
//! (DESIGN.md "Replay" step 4).
//!
//! The peer's own sequence numbers and timestamps stay as recorded; what refers to the recorded
//! endpoint moves: the acknowledgment number and SACK blocks by the difference between utcp's ISN
//! and the recorded endpoint's, the timestamp echo by the difference between their TS clocks.
//! In adaptive mode the peer never acknowledges (or SACKs, or echoes) what utcp has not sent yet.
//! The datagram is emitted again with `utcp::wire`, so lengths and checksums are right.
//!
//! Must not depend on: the stack, the comparison, files.

use utcp::tcp::seq::SeqNum;
use utcp::time::Instant;
use utcp::wire::{
    emit_datagram, parse_datagram, ChecksumMode, SackBlocks, TcpRepr, Timestamp, Transport, WireErrorKind,
};

/// How the peer's packets are adapted to what utcp does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Shift the numbers, nothing else (right for captures of utcp itself).
    Strict,
    /// Also never acknowledge bytes utcp has not sent (the default for foreign captures).
    Adaptive,
}

impl Mode {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Adaptive => "adaptive",
        }
    }
}

/// What the translator knows about utcp and the recorded endpoint.
#[derive(Debug, Clone, Default)]
pub struct Translator {
    /// utcp's ISN minus the recorded endpoint's, once utcp sent its SYN.
    pub seq_delta: Option<u32>,
    /// utcp's TS clock minus the recorded endpoint's, once both sent a TSval on their SYNs.
    pub ts_delta: Option<u32>,
    /// When utcp sent the SYN `ts_delta` was taken from.
    pub ts_syn_at: Option<Instant>,
    /// utcp's ISN (for notes in relative numbers).
    pub utcp_isn: Option<SeqNum>,
    /// The highest sequence number utcp has sent up to (SND.NXT as seen on the wire).
    pub snd_max: Option<SeqNum>,
    /// The latest TSval utcp sent.
    pub ts_max: Option<u32>,
}

/// One peer packet, ready to inject.
#[derive(Debug, Clone)]
pub struct Injected {
    /// The datagram, checksums correct.
    pub datagram: Vec<u8>,
    /// What was changed beyond the plain translation, and anything odd about the original.
    pub notes: Vec<String>,
}

fn rel(n: SeqNum, isn: Option<SeqNum>) -> u32 {
    n.0.wrapping_sub(isn.map_or(0, |i| i.0))
}

impl Translator {
    /// Learns from a segment utcp sent at `at`: its ISN (from a SYN, against the recorded
    /// endpoint's `recorded_isn`), its TS clock (against `recorded_ts`, the recorded endpoint's
    /// SYN TSval and when it sent it), how far it has sent and its latest TSval.
    ///
    /// The TS clocks are compared on the SYNs sent nearest in time to each other: when utcp
    /// answers a SYN the recorded endpoint never answered and then its retransmission, the
    /// second SYN-ACK is the recorded one's counterpart, and the first one's TSval is a
    /// retransmission interval behind (the peer's echo would then tell utcp its round trip took
    /// that long; RFC 7323 §4.1).
    pub fn observe_sent(
        &mut self,
        at: Instant,
        tcp: &TcpRepr<'_>,
        recorded_isn: Option<SeqNum>,
        recorded_ts: Option<(u32, Instant)>,
    ) {
        if tcp.flags.syn() && self.utcp_isn.is_none() {
            self.utcp_isn = Some(tcp.seq);
            if let Some(r) = recorded_isn {
                self.seq_delta = Some(tcp.seq.0.wrapping_sub(r.0));
            }
        }
        if tcp.flags.syn() && self.utcp_isn == Some(tcp.seq) {
            if let (Some(ts), Some((r, r_at))) = (tcp.options.timestamp, recorded_ts) {
                let apart = |t: Instant| if t >= r_at { t - r_at } else { r_at - t };
                if self.ts_syn_at.is_none_or(|prev| apart(at) < apart(prev)) {
                    self.ts_delta = Some(ts.tsval.wrapping_sub(r));
                    self.ts_syn_at = Some(at);
                }
            }
        }
        let end = tcp.seq + tcp.segment_len();
        if !tcp.flags.rst() {
            self.snd_max = Some(match self.snd_max {
                Some(m) => m.max(end),
                None => end,
            });
        }
        if let Some(ts) = tcp.options.timestamp {
            self.ts_max = Some(match self.ts_max {
                Some(m) if (ts.tsval.wrapping_sub(m) as i32) < 0 => m,
                _ => ts.tsval,
            });
        }
    }

    /// Rewrites one recorded peer datagram for injection. `sliced` is the payload bytes the
    /// capture holds when a short snap length cut the record: `datagram` is then the record
    /// zero-filled to its declared length (`FlowPacket::zero_filled`), and a note says so.
    pub fn translate(&self, datagram: &[u8], sliced: Option<usize>, mode: Mode) -> Result<Injected, String> {
        let mut notes = Vec::new();
        let parsed = match parse_datagram(datagram, ChecksumMode::Verify) {
            Ok(d) => d,
            Err(e) => match e.kind {
                WireErrorKind::BadChecksum { found, computed } => {
                    if sliced.is_none() {
                        notes.push(format!(
                            "checksum 0x{found:04x} in the capture, 0x{computed:04x} computed: injected with a correct one"
                        ));
                    }
                    parse_datagram(datagram, ChecksumMode::Ignore).map_err(|e| e.to_string())?
                }
                _ => return Err(e.to_string()),
            },
        };
        let Transport::Tcp(orig) = parsed.transport else {
            return Err("not TCP".to_string());
        };
        let mut tcp = orig;
        if let Some(captured) = sliced {
            notes.push(format!(
                "sliced: {captured} of {} payload bytes captured, the rest injected as zeros",
                tcp.payload.len()
            ));
        }
        let clamp = match mode {
            Mode::Adaptive => self.snd_max,
            Mode::Strict => None,
        };
        if let Some(delta) = self.seq_delta {
            if tcp.flags.ack() {
                let want = SeqNum(tcp.ack.0.wrapping_add(delta));
                tcp.ack = match clamp {
                    Some(max) if want > max => {
                        notes.push(format!(
                            "adapted: ack {} clamped to {} (utcp has sent no more)",
                            rel(want, self.utcp_isn),
                            rel(max, self.utcp_isn)
                        ));
                        max
                    }
                    _ => want,
                };
            }
            if let Some(sack) = tcp.options.sack {
                let mut out = SackBlocks::default();
                for &(l, r) in sack.as_slice() {
                    let (l, mut r) = (SeqNum(l.0.wrapping_add(delta)), SeqNum(r.0.wrapping_add(delta)));
                    if let Some(max) = clamp {
                        if l >= max {
                            notes.push(format!(
                                "adapted: SACK block {}:{} dropped (utcp has sent up to {})",
                                rel(l, self.utcp_isn),
                                rel(r, self.utcp_isn),
                                rel(max, self.utcp_isn)
                            ));
                            continue;
                        }
                        if r > max {
                            notes.push(format!(
                                "adapted: SACK block {}:{} cut at {}",
                                rel(l, self.utcp_isn),
                                rel(r, self.utcp_isn),
                                rel(max, self.utcp_isn)
                            ));
                            r = max;
                        }
                    }
                    out.push((l, r));
                }
                // An empty SACK option is malformed (RFC 2018 §3): drop it when every block went,
                // keep it when the peer really sent one.
                tcp.options.sack = if out.is_empty() && !sack.is_empty() { None } else { Some(out) };
            }
        }
        if let (Some(delta), Some(ts)) = (self.ts_delta, tcp.options.timestamp) {
            if tcp.flags.ack() && ts.tsecr != 0 {
                let mut ecr = ts.tsecr.wrapping_add(delta);
                if let (Mode::Adaptive, Some(max)) = (mode, self.ts_max) {
                    let ahead = ecr.wrapping_sub(max) as i32;
                    if ahead > 0 {
                        // The two TS clocks tick at different phases: an echo one or two ticks
                        // ahead is that, not the peer running ahead of utcp.
                        if ahead > 2 {
                            notes.push(format!(
                                "adapted: TS ecr {ecr} clamped to {max} (utcp's latest TSval)"
                            ));
                        }
                        ecr = max;
                    }
                }
                tcp.options.timestamp = Some(Timestamp { tsval: ts.tsval, tsecr: ecr });
            }
        }
        let ip = parsed.ip;
        let transport = Transport::Tcp(tcp);
        let mut out = vec![0u8; utcp::wire::datagram_len(&ip, &transport)];
        let n = emit_datagram(&ip, &transport, &mut out).map_err(|e| e.to_string())?;
        out.truncate(n);
        Ok(Injected { datagram: out, notes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utcp::wire::{IpRepr, TcpFlags, TcpOptions, IPPROTO_TCP};

    fn datagram(tcp: TcpRepr<'_>) -> Vec<u8> {
        let ip = IpRepr {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.168.0.1".parse().unwrap(),
            protocol: IPPROTO_TCP,
            hop_limit: 64,
            ecn: 0,
            payload_len: 0,
        };
        let t = Transport::Tcp(tcp);
        let mut out = vec![0; utcp::wire::datagram_len(&ip, &t)];
        emit_datagram(&ip, &t, &mut out).unwrap();
        out
    }

    fn ack_seg(ack: u32, sack: &[(u32, u32)], ecr: u32) -> Vec<u8> {
        let blocks: Vec<(SeqNum, SeqNum)> = sack.iter().map(|&(l, r)| (SeqNum(l), SeqNum(r))).collect();
        datagram(TcpRepr {
            src_port: 40000,
            dst_port: 8080,
            seq: SeqNum(501),
            ack: SeqNum(ack),
            flags: TcpFlags::ACK,
            window: 100,
            urgent: 0,
            options: TcpOptions {
                timestamp: Some(Timestamp { tsval: 7, tsecr: ecr }),
                sack: if sack.is_empty() { None } else { SackBlocks::from_slice(&blocks) },
                ..TcpOptions::default()
            },
            payload: &[],
        })
    }

    fn parse(d: &[u8]) -> TcpRepr<'_> {
        match parse_datagram(d, ChecksumMode::Verify).unwrap().transport {
            Transport::Tcp(t) => t,
            _ => unreachable!(),
        }
    }

    fn translator() -> Translator {
        // utcp's ISN 10000 against the recorded 1000; its TS clock 500 ahead; it sent up to 10101.
        Translator {
            seq_delta: Some(9000),
            ts_delta: Some(500),
            ts_syn_at: Some(Instant::ZERO),
            utcp_isn: Some(SeqNum(10000)),
            snd_max: Some(SeqNum(10101)),
            ts_max: Some(600),
        }
    }

    #[test]
    fn strict_mode_shifts_ack_sack_and_ts_echo_and_keeps_the_peers_own_numbers() {
        let d = ack_seg(1201, &[(1301, 1401)], 90);
        let out = translator().translate(&d, None, Mode::Strict).unwrap();
        let t = parse(&out.datagram);
        assert_eq!((t.seq, t.ack), (SeqNum(501), SeqNum(10201)));
        assert_eq!(t.options.sack.unwrap().as_slice(), [(SeqNum(10301), SeqNum(10401))]);
        assert_eq!(t.options.timestamp, Some(Timestamp { tsval: 7, tsecr: 590 }));
        assert!(out.notes.is_empty());
    }

    #[test]
    fn adaptive_mode_never_acknowledges_or_sacks_beyond_what_utcp_sent() {
        let d = ack_seg(1201, &[(1050, 1150), (1301, 1401)], 200);
        let out = translator().translate(&d, None, Mode::Adaptive).unwrap();
        let t = parse(&out.datagram);
        assert_eq!(t.ack, SeqNum(10101));
        assert_eq!(t.options.sack.unwrap().as_slice(), [(SeqNum(10050), SeqNum(10101))]);
        assert_eq!(t.options.timestamp.unwrap().tsecr, 600);
        assert_eq!(out.notes.len(), 4, "{:?}", out.notes);
    }

    #[test]
    fn adaptive_mode_drops_the_sack_option_when_every_block_is_beyond_what_utcp_sent() {
        let d = ack_seg(1101, &[(1301, 1401), (1501, 1601)], 90);
        let out = translator().translate(&d, None, Mode::Adaptive).unwrap();
        let t = parse(&out.datagram);
        assert_eq!(t.options.sack, None);
        assert_eq!(out.notes.len(), 2, "{:?}", out.notes);
    }

    fn syn_ack(seq: u32, tsval: u32) -> Vec<u8> {
        datagram(TcpRepr {
            src_port: 8080,
            dst_port: 40000,
            seq: SeqNum(seq),
            ack: SeqNum(501),
            flags: TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
            window: 100,
            urgent: 0,
            options: TcpOptions { timestamp: Some(Timestamp { tsval, tsecr: 7 }), ..TcpOptions::default() },
            payload: &[],
        })
    }

    /// The recorded server answered only the client's retransmitted SYN, at 1 s; utcp answered
    /// both: its second SYN-ACK, 1 s later, gives the TS offset (RFC 7323 §4.1: the echo is
    /// what the round-trip time is measured from).
    #[test]
    fn ts_offset_comes_from_the_syn_ack_sent_nearest_the_recorded_one() {
        let mut tr = Translator::default();
        let recorded = Some((50_000, Instant::from_millis(1000)));
        let first = syn_ack(10_000, 700);
        let again = syn_ack(10_000, 1700);
        tr.observe_sent(Instant::ZERO, &parse(&first), Some(SeqNum(1000)), recorded);
        assert_eq!(tr.ts_delta, Some(700u32.wrapping_sub(50_000)));
        tr.observe_sent(Instant::from_millis(1000), &parse(&again), Some(SeqNum(1000)), recorded);
        assert_eq!(tr.ts_delta, Some(1700u32.wrapping_sub(50_000)));
        assert_eq!(tr.seq_delta, Some(9000));
        // A later retransmission, further from the recorded SYN-ACK, changes nothing.
        tr.observe_sent(
            Instant::from_millis(3000),
            &parse(&syn_ack(10_000, 3700)),
            Some(SeqNum(1000)),
            recorded,
        );
        assert_eq!(tr.ts_delta, Some(1700u32.wrapping_sub(50_000)));
    }

    #[test]
    fn bad_checksum_in_the_capture_is_noted_and_injected_correct() {
        let mut d = ack_seg(1001, &[], 90);
        let last = d.len() - 1;
        d[last] ^= 0xff;
        let out = translator().translate(&d, None, Mode::Strict).unwrap();
        assert!(out.notes[0].starts_with("checksum"), "{:?}", out.notes);
        parse(&out.datagram);
    }
}
