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
        self.wire.note_inbound(p);
        for d in self.wire.inbound(event, p, &self.script.options)? {
            self.transcript.push(format!("{} < {}", secs(self.now), self.wire.show_inbound(&d)));
            let host = host_of(&mut self.host, &self.config, self.now);
            host.receive(self.now, &d, &mut Closes(&mut self.closed));
        }
        Ok(())
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
