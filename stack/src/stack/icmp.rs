//! ICMP in: echo requests answered, errors handed to the connection whose segment they quote.
//!
//! Must not depend on: clocks, I/O, threads, OS randomness.

use super::Stack;
use crate::stats::DropReason;
use crate::tcp::conn::FourTuple;
use crate::wire::{self, IcmpRepr, IpRepr, Transport, IPPROTO_TCP};
use std::net::SocketAddr;

impl Stack {
    pub(super) fn handle_icmp(&mut self, ip: &IpRepr, icmp: &IcmpRepr<'_>) {
        match *icmp {
            IcmpRepr::EchoRequest { ident, seq_no, data } => {
                let reply = IcmpRepr::EchoReply { ident, seq_no, data };
                let ip_out = IpRepr {
                    src: ip.dst,
                    dst: ip.src,
                    protocol: ip.protocol,
                    hop_limit: self.config.hop_limit,
                    ecn: 0,
                    payload_len: reply.buffer_len(),
                };
                let t = Transport::Icmp(reply);
                let mut buf = vec![0; wire::datagram_len(&ip_out, &t)];
                if wire::emit_datagram(&ip_out, &t, &mut buf).is_ok() && self.push_outbox(buf) {
                    self.stats.echo_replies += 1;
                }
            }
            IcmpRepr::DestUnreachable { .. }
            | IcmpRepr::PacketTooBig { .. }
            | IcmpRepr::TimeExceeded { .. }
            | IcmpRepr::ParamProblem { .. } => self.handle_icmp_error(icmp),
            IcmpRepr::EchoReply { .. } | IcmpRepr::Other { .. } => self.count_drop(DropReason::IcmpIgnored),
        }
    }

    /// An ICMP error goes to the connection whose segment it quotes (the quoted source is our
    /// end, RFC 5927 §4); the connection decides what it means.
    fn handle_icmp_error(&mut self, icmp: &IcmpRepr<'_>) {
        let Some(quote) = icmp.quote() else { return };
        self.stats.icmp_errors_in += 1;
        if quote.protocol != IPPROTO_TCP {
            self.count_drop(DropReason::IcmpNotTcp);
            return;
        }
        let tuple = FourTuple {
            local: SocketAddr::new(quote.src, quote.src_port),
            remote: SocketAddr::new(quote.dst, quote.dst_port),
        };
        match self.by_tuple.get(&tuple).copied() {
            Some(idx) => {
                self.with_conn(idx, |conn, ctx| conn.on_icmp_error(icmp, ctx));
            }
            None => self.count_drop(DropReason::IcmpNoConnection),
        }
    }
}
