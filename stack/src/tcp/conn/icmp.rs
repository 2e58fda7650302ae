//! ICMP errors that name a connection (RFC 1122 §4.2.3.9, RFC 1191, RFC 8201, RFC 5927).
//!
//! Must not depend on: clocks, I/O, `crate::stack`.

use super::{Connection, Ctx};
use crate::stats::DropReason;
use crate::tcp::congestion::Phase;
use crate::tcp::State;
use crate::wire::IcmpRepr;

impl Connection {
    /// An ICMP error whose quote names this connection (the stack matched the 4-tuple).
    pub(crate) fn on_icmp_error(&mut self, icmp: &IcmpRepr<'_>, ctx: &mut Ctx<'_>) {
        let Some(quote) = icmp.quote() else { return };
        // SND.NXT of RFC 5927 is our SND.MAX: a timeout may have rewound SND.NXT, and the
        // quoted segment may be one sent before that.
        //= https://www.rfc-editor.org/rfc/rfc5927#section-4.1
        //# TCP SHOULD check that the TCP sequence number contained in the payload of the ICMP
        //# error message is within the range SND.UNA =< SEG.SEQ < SND.NXT.
        if !quote.seq.in_range(self.snd_una, self.snd_max) {
            ctx.drop(DropReason::IcmpSeqOutOfWindow);
            return;
        }
        match *icmp {
            IcmpRepr::PacketTooBig { mtu, .. } => self.on_packet_too_big(mtu, ctx),
            // RFC 1122 §4.2.3.9: net, host and source-route unreachable are soft errors (a TCP
            // "MUST NOT abort"); protocol and port unreachable are hard ones (it "SHOULD abort").
            // RFC 5927 §4 asks that hard errors on synchronized connections be treated as soft,
            // as Linux does (it keeps them as sk_err_soft, reported only if the connection times
            // out). Here every error is counted and nothing else happens, in every state: the
            // connection goes on until its own timers give up. (Linux does abort in SYN-SENT and
            // SYN-RECEIVED; that is not done here.)
            // Linux (tcp_v4_err, tcp_req_err): a net or host unreachable quoting the SYN-ACK of
            // a half-open passive connection removes it silently (the peer cannot be reached; a
            // retransmitted SYN starts again). A Fast Open child is already the application's.
            IcmpRepr::DestUnreachable { code: 0 | 1, .. }
                if self.state == State::SynReceived
                    && self.passive
                    && !self.fast_open.child
                    && self.tuple.remote.is_ipv4()
                    && quote.seq == self.iss =>
            {
                ctx.drop(DropReason::IcmpUnreachable);
                self.close_now(crate::tcp::CloseReason::Reset, &mut ctx.outcome);
            }
            IcmpRepr::DestUnreachable { .. } => ctx.drop(DropReason::IcmpUnreachable),
            // RFC 1122 §4.2.3.9: Time Exceeded and Parameter Problem "SHOULD" be passed to the
            // application; like the soft errors above they are only counted (the socket calls
            // have no error for them yet).
            IcmpRepr::TimeExceeded { .. } => ctx.drop(DropReason::IcmpTimeExceeded),
            IcmpRepr::ParamProblem { .. } => ctx.drop(DropReason::IcmpParamProblem),
            IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. } | IcmpRepr::Other { .. } => {}
        }
    }

    /// A fragmentation-needed (RFC 1191) or packet-too-big (RFC 8201) message reporting a
    /// next-hop MTU of `mtu`: lowers the path MTU and the send MSS with it, and sends again at
    /// once the unacknowledged data, which went out in segments that may have been too big.
    fn on_packet_too_big(&mut self, mtu: u32, ctx: &mut Ctx<'_>) {
        let mtu = mtu as usize;
        // The smallest path MTU believed. IPv4: Linux's min_pmtu, 552 (512 bytes of payload
        // behind 20 + 20 bytes of headers); RFC 1191 §3 would allow 68, which RFC 5927 §7.2
        // shows lets an attacker shrink segments to a few bytes. IPv6: RFC 8201 §4, "If a node
        // receives a Packet Too Big message reporting a next-hop MTU that is less than the IPv6
        // minimum link MTU, it must discard it."
        let floor = if self.tuple.remote.is_ipv4() { 552 } else { 1280 };
        if mtu < floor {
            ctx.drop(DropReason::IcmpMtuTooSmall);
            return;
        }
        // RFC 1191 §3 / RFC 8201 §4: a message may only lower the PMTU estimate.
        if mtu >= self.path_mtu {
            ctx.drop(DropReason::IcmpMtuNotLower);
            return;
        }
        self.path_mtu = mtu;
        ctx.stats.pmtu_updates += 1;
        if self.state == State::SynSent && self.fast_open.syn_data > 0 {
            // A SYN that carried data was too big (RFC 7413 §4.1.3, Linux's
            // tcp_simple_retransmit of SYN-data): the SYN goes again at once, without data, with
            // the MSS the smaller path allows; the data follows the handshake.
            self.our_mss = self.our_mss.min(super::mss_for_mtu(mtu, self.tuple.remote));
            self.snd_nxt = self.iss;
            return;
        }
        let old = self.snd_mss;
        self.snd_mss = self.send_mss();
        // RFC 1191 §6.5: the datagram was dropped by the router, so "the TCP layer should
        // retransmit" it. Like Linux (tcp_simple_retransmit), everything unacknowledged goes out
        // again now at the new size, from SND.UNA, as after a timeout but without the congestion
        // response, the backoff or a retry counted: a smaller path is not congestion.
        if self.snd_mss < old && self.syn_acked() && self.snd_max > self.snd_una {
            self.board.mark_all_lost();
            if self.recovery.phase == Phase::Open {
                self.recovery.phase = Phase::Loss;
                self.recovery.recover = self.snd_max;
            }
        }
    }
}
