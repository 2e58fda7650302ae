//! The packet lines of a script against utcp: `<` lines handed to the host, `>` lines matched
//! against the datagrams the stack queued as its timers run ([`wire`] says what each line means).

use super::wire::Sent;
use super::*;

/// The utcp executor as the source of a `>` line's datagrams: it runs the stack's timers until
/// one is queued.
impl Sent for Exec<'_> {
    fn now(&self) -> Instant {
        self.now
    }

    fn next_sent(&mut self, late: Instant) -> Result<Option<(Instant, Vec<u8>)>, Failure> {
        self.advance(late, true)?;
        Ok(self.out.sent.pop_front())
    }

    fn put_back(&mut self, time: Instant, datagram: Vec<u8>) {
        self.out.sent.push_front((time, datagram));
    }

    fn record(&mut self, line: String) {
        self.transcript.push(line);
    }
}

impl Exec<'_> {
    pub(super) fn inbound(&mut self, event: &Event, p: &PacketSpec) -> Result<(), Failure> {
        // packetdrill records the peer's ISN from the SYN that opens a connection (a SYN to a
        // listener, the SYN-ACK to a connect), not from a SYN into an open connection.
        let port = self.wire.peer_for(p).port();
        if p.flags & flag::SYN != 0 && (p.flags & flag::ACK != 0 || !self.peer_connection_open(port)) {
            self.wire.remote_isns.insert(port, p.seq);
        }
        for d in self.wire.inbound(event, p, &self.script.options)? {
            self.transcript.push(format!("{} < {}", secs(self.now), self.wire.show_inbound(&d)));
            let host = host_of(&mut self.host, &self.config, self.now);
            host.receive(self.now, &d, &mut Closes(&mut self.closed));
        }
        Ok(())
    }

    /// Whether a connection with the peer at `peer_port` is synchronized (past the handshake
    /// and not closed), as far as the script's descriptors show.
    fn peer_connection_open(&mut self, peer_port: u16) -> bool {
        let handles: Vec<SocketHandle> = self
            .fds
            .values()
            .filter_map(|f| match f.kind {
                FdKind::Conn(h) => Some(h),
                _ => None,
            })
            .collect();
        handles.into_iter().any(|h| {
            self.stack().info(h).is_some_and(|i| {
                i.remote.port() == peer_port
                    && !matches!(
                        i.state,
                        State::Closed | State::Listen | State::SynSent | State::SynReceived | State::TimeWait
                    )
            })
        })
    }

    pub(super) fn inbound_icmp(&mut self, event: &Event, i: &IcmpSpec) -> Result<(), Failure> {
        let d = self.wire.inbound_icmp(event, i)?;
        self.transcript.push(format!(
            "{} < {}",
            secs(self.now),
            event.text.trim_start_matches(|c: char| c != '<')
        ));
        let host = host_of(&mut self.host, &self.config, self.now);
        host.receive(self.now, &d, &mut Closes(&mut self.closed));
        Ok(())
    }

    pub(super) fn outbound(&mut self, event: &Event, p: &PacketSpec) -> Result<(), Failure> {
        // The numbering is taken out while the stack runs: nothing a timer or a pending call
        // does reads it (listen and connect, which set the addresses, never stay pending).
        let mut wire = std::mem::take(&mut self.wire);
        let options = self.script.options.clone();
        let r = wire.outbound(event, p, &options, self.last, self);
        self.wire = wire;
        self.last = r?;
        Ok(())
    }
}
