//! The transfer application on a [`Pair`]: [`run_transfer`] opens one or more connections from
//! A to B, writes deterministic data both ways (generated from the seed), hashes what is sent and
//! what arrives with SHA-256, shuts both directions down, closes, and runs until neither stack
//! holds any connection state (TIME-WAIT included).
//!
//! Must not depend on: wall clocks, OS randomness, terminals (selftest and tests add those).

use crate::netsim::{LinkStats, SplitMix64};
use crate::pair::{Limits, Pair, PairError, Side, ADDR_A, ADDR_B};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use utcp::time::{Duration, Instant};
use utcp::{CloseReason, Event, ListenerHandle, RecvError, SendError, SocketHandle, Stack, Stats};

/// What [`run_transfer`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferSpec {
    /// Seeds the data.
    pub seed: u64,
    /// Connections opened from A to B in total.
    pub connections: usize,
    /// Connections open at once at most.
    pub concurrency: usize,
    /// Bytes A writes on each connection.
    pub bytes_a_to_b: u64,
    /// Bytes B writes on each connection.
    pub bytes_b_to_a: u64,
    /// B's listening port.
    pub port: u16,
    /// A's local port for connection `i` is `first_local_port + i`.
    pub first_local_port: u16,
}

impl TransferSpec {
    /// One connection moving the given bytes each way.
    pub fn bulk(seed: u64, bytes_a_to_b: u64, bytes_b_to_a: u64) -> Self {
        TransferSpec {
            seed,
            connections: 1,
            concurrency: 1,
            bytes_a_to_b,
            bytes_b_to_a,
            port: 5001,
            first_local_port: 40000,
        }
    }
}

/// Progress of a transfer, for progress lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Virtual time now.
    pub now: Instant,
    /// Bytes that arrived, both directions, all connections.
    pub received: u64,
    /// Bytes that will have arrived when done.
    pub total: u64,
    /// Connections finished on both sides.
    pub finished: usize,
}

/// What a transfer did and whether the data arrived intact.
#[derive(Debug, Clone)]
pub struct TransferReport {
    /// The spec it ran.
    pub spec: TransferSpec,
    /// Bytes B read, all connections.
    pub received_by_b: u64,
    /// Bytes A read, all connections.
    pub received_by_a: u64,
    /// Every connection's bytes arrived once, in order, unchanged, both ways.
    pub data_ok: bool,
    /// The connections whose data differed, with how.
    pub mismatches: Vec<String>,
    /// SHA-256 of what A sent on the first connection, hex.
    pub sha256_a_to_b: String,
    /// SHA-256 of what B sent on the first connection, hex.
    pub sha256_b_to_a: String,
    /// Virtual time from the first connect to the last connection state gone.
    pub virtual_time: Duration,
    /// Virtual time until the last byte arrived (for goodput).
    pub data_time: Duration,
    /// Steps taken.
    pub steps: u64,
    /// Stack A's counters.
    pub stats_a: Stats,
    /// Stack B's counters.
    pub stats_b: Stats,
    /// What the A→B link did.
    pub link_a_to_b: LinkStats,
    /// What the B→A link did.
    pub link_b_to_a: LinkStats,
    /// Times a sweep over all connections found work that no event had announced.
    pub missed_events: u64,
    /// With several connections: what B had read on each (by A's port) when the first one's
    /// A-to-B data was complete, their shares of the links they crossed together.
    pub shares_at_first_done: Vec<(u16, u64)>,
}

impl TransferReport {
    /// Jain's fairness index of `shares_at_first_done`: (Σx)² / (n Σx²), 1 when every
    /// connection got the same; `None` with fewer than two connections.
    pub fn jain_index(&self) -> Option<f64> {
        let x: Vec<f64> = self.shares_at_first_done.iter().map(|&(_, b)| b as f64).collect();
        let sum: f64 = x.iter().sum();
        let squares: f64 = x.iter().map(|v| v * v).sum();
        (x.len() >= 2 && squares > 0.0).then(|| sum * sum / (x.len() as f64 * squares))
    }
}

/// One direction-pair of data on one connection, from one side's point of view.
struct Flow {
    /// A's local port: names the connection on both sides.
    port: u16,
    gen: SplitMix64,
    total: u64,
    to_send: u64,
    pending: Vec<u8>,
    pending_off: usize,
    sent_hash: Sha256,
    recv_hash: Sha256,
    received: u64,
    shut: bool,
    eof: bool,
}

/// A flow's outcome: (sent bytes, sent hash, received bytes, received hash).
type FlowResult = (u64, [u8; 32], u64, [u8; 32]);

impl Flow {
    fn new(seed: u64, side: Side, port: u16, to_send: u64) -> Self {
        let dir = match side {
            Side::Client => 0xA2B,
            Side::Server => 0xB2A,
        };
        let mut mix = SplitMix64::new(seed ^ (dir << 32) ^ port as u64);
        Flow {
            port,
            gen: SplitMix64::new(mix.next_u64()),
            total: to_send,
            to_send,
            pending: Vec::new(),
            pending_off: 0,
            sent_hash: Sha256::new(),
            recv_hash: Sha256::new(),
            received: 0,
            shut: false,
            eof: false,
        }
    }

    /// Writes and reads what the stack allows; closes when both directions are finished.
    /// Returns whether anything happened and whether the flow is done (its handle closed).
    fn pump(
        &mut self,
        now: Instant,
        stack: &mut Stack,
        h: SocketHandle,
        rbuf: &mut [u8],
    ) -> Result<(bool, bool), String> {
        let mut progress = false;
        loop {
            if self.pending_off == self.pending.len() {
                if self.to_send == 0 {
                    break;
                }
                let n = self.to_send.min(64 * 1024) as usize;
                self.pending.resize(n, 0);
                self.gen.fill(&mut self.pending);
                self.sent_hash.update(&self.pending);
                self.pending_off = 0;
                self.to_send -= n as u64;
            }
            match stack.send(now, h, &self.pending[self.pending_off..]) {
                Ok(0) => break,
                Ok(n) => {
                    self.pending_off += n;
                    progress = true;
                }
                Err(SendError::WouldBlock | SendError::NotConnected) => break,
                Err(e) => return Err(format!("send: {e:?}")),
            }
        }
        // Shut down only once connected: in SYN-SENT a shutdown would abandon the attempt.
        let connecting = matches!(stack.state(h), Some(utcp::State::SynSent | utcp::State::SynReceived));
        if !self.shut && !connecting && self.to_send == 0 && self.pending_off == self.pending.len() {
            stack.shutdown(now, h).map_err(|e| format!("shutdown: {e:?}"))?;
            self.shut = true;
            progress = true;
        }
        while !self.eof {
            match stack.recv(now, h, rbuf) {
                Ok(0) => {
                    self.eof = true;
                    progress = true;
                }
                Ok(n) => {
                    self.recv_hash.update(&rbuf[..n]);
                    self.received += n as u64;
                    progress = true;
                }
                Err(RecvError::WouldBlock | RecvError::NotConnected) => break,
                Err(e) => return Err(format!("recv after {} bytes: {e:?}", self.received)),
            }
        }
        if self.shut && self.eof {
            stack.close(now, h).map_err(|e| format!("close: {e:?}"))?;
            return Ok((true, true));
        }
        Ok((progress, false))
    }

    fn result(self) -> FlowResult {
        (self.total, self.sent_hash.finalize().into(), self.received, self.recv_hash.finalize().into())
    }
}

/// One side of the application: its flows by handle and the ones it has finished.
struct Endpoint {
    side: Side,
    flows: HashMap<SocketHandle, Flow>,
    dirty: HashSet<SocketHandle>,
    done: BTreeMap<u16, FlowResult>,
}

impl Endpoint {
    fn new(side: Side) -> Self {
        Endpoint { side, flows: HashMap::new(), dirty: HashSet::new(), done: BTreeMap::new() }
    }

    fn received(&self) -> u64 {
        self.flows.values().map(|f| f.received).sum::<u64>() + self.done.values().map(|r| r.2).sum::<u64>()
    }

    /// Pumps the flows in `handles`; returns whether anything happened.
    fn pump(
        &mut self,
        now: Instant,
        stack: &mut Stack,
        handles: impl IntoIterator<Item = SocketHandle>,
        rbuf: &mut [u8],
    ) -> Result<bool, String> {
        let mut progress = false;
        for h in handles {
            let Some(flow) = self.flows.get_mut(&h) else { continue };
            let (moved, finished) = flow
                .pump(now, stack, h, rbuf)
                .map_err(|e| format!("{} port {}: {e}", self.side, flow.port))?;
            progress |= moved;
            if finished {
                let flow = self.flows.remove(&h).expect("present");
                self.done.insert(flow.port, flow.result());
            }
        }
        Ok(progress)
    }
}

/// The application on both sides of a [`Pair`].
struct Transfer {
    spec: TransferSpec,
    listener: ListenerHandle,
    opened: usize,
    a: Endpoint,
    b: Endpoint,
    rbuf: Vec<u8>,
    missed_events: u64,
    data_done_at: Option<Instant>,
    shares: Vec<(u16, u64)>,
}

impl Transfer {
    fn total(&self) -> u64 {
        self.spec.connections as u64 * (self.spec.bytes_a_to_b + self.spec.bytes_b_to_a)
    }

    fn received(&self) -> u64 {
        self.a.received() + self.b.received()
    }

    fn finished(&self) -> bool {
        self.a.done.len() == self.spec.connections && self.b.done.len() == self.spec.connections
    }

    /// Reacts to events, opens connections, moves data. With `sweep`, pumps every flow instead of
    /// only those an event named.
    fn poll(&mut self, pair: &mut Pair, sweep: bool) -> Result<bool, PairError> {
        let mut progress = false;
        // Open connections up to the concurrency limit.
        while self.opened < self.spec.connections && self.a.flows.len() < self.spec.concurrency {
            let port = self.spec.first_local_port.wrapping_add(self.opened as u16);
            let local = SocketAddr::new(ADDR_A, port);
            let remote = SocketAddr::new(ADDR_B, self.spec.port);
            let now = pair.now();
            let h = pair
                .a
                .stack_mut()
                .connect(now, Some(local), remote)
                .map_err(|e| pair.error(format!("connect from port {port}: {e:?}")))?;
            self.a.flows.insert(h, Flow::new(self.spec.seed, Side::Client, port, self.spec.bytes_a_to_b));
            self.a.dirty.insert(h);
            self.opened += 1;
            progress = true;
        }
        for side in [Side::Client, Side::Server] {
            while let Some(event) = pair.stack(side).poll_event() {
                let ep = match side {
                    Side::Client => &mut self.a,
                    Side::Server => &mut self.b,
                };
                match event {
                    Event::Connected(h) | Event::Readable(h) | Event::Writable(h) => {
                        ep.dirty.insert(h);
                    }
                    Event::Acceptable(_) => {}
                    Event::Closed(h, reason) => {
                        if reason != CloseReason::Normal {
                            let port = ep.flows.get(&h).map_or(0, |f| f.port);
                            return Err(pair.error(format!("{side} connection port {port} closed: {reason}")));
                        }
                        ep.dirty.insert(h);
                    }
                }
            }
        }
        // Accept everything waiting (the Acceptable event only says that something is).
        let now = pair.now();
        while let Ok(h) = pair.b.stack_mut().accept(now, self.listener) {
            let info = pair.b.stack().info(h).ok_or_else(|| pair.error("accepted handle has no info"))?;
            let port = info.remote.port();
            self.b.flows.insert(h, Flow::new(self.spec.seed, Side::Server, port, self.spec.bytes_b_to_a));
            self.b.dirty.insert(h);
            progress = true;
        }
        let step = pair.steps;
        for (side, host, ep) in
            [(Side::Client, &mut pair.a, &mut self.a), (Side::Server, &mut pair.b, &mut self.b)]
        {
            let handles: Vec<SocketHandle> =
                if sweep { ep.flows.keys().copied().collect() } else { ep.dirty.drain().collect() };
            let mut sorted = handles;
            sorted.sort();
            let moved = ep.pump(now, host.stack_mut(), sorted, &mut self.rbuf).map_err(|e| PairError {
                at: now,
                step,
                what: format!("{side}: {e}"),
            })?;
            if sweep && moved {
                self.missed_events += 1;
            }
            progress |= moved;
        }
        if self.data_done_at.is_none() && self.received() == self.total() {
            self.data_done_at = Some(now);
        }
        let want = self.spec.bytes_a_to_b;
        if self.shares.is_empty()
            && self.spec.connections > 1
            && want > 0
            && (!self.b.done.is_empty() || self.b.flows.values().any(|f| f.received == want))
        {
            let open = self.b.flows.values().map(|f| (f.port, f.received));
            let done = self.b.done.iter().map(|(&port, r)| (port, r.2));
            self.shares = open.chain(done).collect();
            self.shares.sort_unstable();
        }
        Ok(progress)
    }

    fn report(self, pair: &Pair) -> TransferReport {
        let mut mismatches = Vec::new();
        let hex = |h: &[u8; 32]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
        for (port, a) in &self.a.done {
            let Some(b) = self.b.done.get(port) else {
                mismatches.push(format!("port {port}: finished on A only"));
                continue;
            };
            // Each record is (bytes sent, hash sent, bytes read, hash read).
            for (from, to, s, r) in [("A", "B", a, b), ("B", "A", b, a)] {
                if s.0 != r.2 || s.1 != r.3 {
                    mismatches.push(format!(
                        "port {port}: {from} sent {} bytes, {to} read {} (hash equal: {})",
                        s.0,
                        r.2,
                        s.1 == r.3
                    ));
                }
            }
        }
        let first = self.a.done.keys().next().copied();
        let sha = |ep: &Endpoint| first.and_then(|p| ep.done.get(&p)).map_or_else(String::new, |r| hex(&r.1));
        TransferReport {
            spec: self.spec,
            received_by_b: self.b.received(),
            received_by_a: self.a.received(),
            data_ok: mismatches.is_empty() && self.a.done.len() == self.spec.connections,
            mismatches,
            sha256_a_to_b: sha(&self.a),
            sha256_b_to_a: sha(&self.b),
            virtual_time: pair.now() - Instant::ZERO,
            data_time: self.data_done_at.unwrap_or(pair.now()) - Instant::ZERO,
            steps: pair.steps,
            stats_a: pair.a.stack().stats().clone(),
            stats_b: pair.b.stack().stats().clone(),
            link_a_to_b: pair.a_to_b.stats().clone(),
            link_b_to_a: pair.b_to_a.stats().clone(),
            missed_events: self.missed_events,
            shares_at_first_done: self.shares,
        }
    }
}

/// Runs `spec` on `pair` (B listens on `spec.port`, A connects) until every connection finished
/// on both sides and neither stack holds connection state, calling `progress` every
/// `progress_every` steps. Fails on a reset, a broken invariant, a stall or exceeded `limits`.
pub fn run_transfer(
    pair: &mut Pair,
    spec: TransferSpec,
    limits: &Limits,
    progress_every: u64,
    mut progress: impl FnMut(&Progress),
) -> Result<TransferReport, PairError> {
    pair.check_every = limits.check_every;
    let backlog = spec.concurrency.max(16);
    let now = pair.now();
    let listener = pair
        .b
        .stack_mut()
        .listen(now, SocketAddr::new(ADDR_B, spec.port), backlog)
        .map_err(|e| pair.error(format!("listen on port {}: {e:?}", spec.port)))?;
    let mut app = Transfer {
        spec,
        listener,
        opened: 0,
        a: Endpoint::new(Side::Client),
        b: Endpoint::new(Side::Server),
        rbuf: vec![0; 64 * 1024],
        missed_events: 0,
        data_done_at: None,
        shares: Vec::new(),
    };
    loop {
        app.poll(pair, false)?;
        if app.finished() && pair.a.stack().connection_count() == 0 && pair.b.stack().connection_count() == 0
        {
            break;
        }
        if !pair.step()? {
            // Nothing scheduled: only the application can move things on.
            let done = app.finished()
                && pair.a.stack().connection_count() == 0
                && pair.b.stack().connection_count() == 0;
            if !app.poll(pair, true)? && !done {
                let what = format!(
                    "stuck: nothing scheduled; {} of {} connections finished on A, {} on B; \
                     {} of {} bytes arrived; connections held: A {}, B {}",
                    app.a.done.len(),
                    spec.connections,
                    app.b.done.len(),
                    app.received(),
                    app.total(),
                    pair.a.stack().connection_count(),
                    pair.b.stack().connection_count()
                );
                return Err(pair.error(what));
            }
        }
        pair.check_limits(limits)?;
        if progress_every > 0 && pair.steps % progress_every == 0 {
            progress(&Progress {
                now: pair.now(),
                received: app.received(),
                total: app.total(),
                finished: app.a.done.len().min(app.b.done.len()),
            });
        }
    }
    pair.check_invariants()?;
    Ok(app.report(pair))
}
