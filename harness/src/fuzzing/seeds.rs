//! The named seed inputs of the stack targets. Depends on the input format only.

use super::input::{IcmpSpec, SegmentSpec, Setup, StackInput, StackTarget, Step};

// ------------------------------------------------------------------------------------------------
// Seeds for the stack targets: meaningful sequences, written under corpus/fuzz/<target>/ by
// harness/tests/fuzz_regressions.rs (`UTCP_WRITE_SEEDS=1`).

const F: u8 = 0x01;
const S: u8 = 0x02;
const R: u8 = 0x04;
const P: u8 = 0x08;
const A: u8 = 0x10;

/// A segment step: `flags`, sequence offset from the stack's last ACK, acknowledging everything
/// the stack sent, `len` payload bytes, window 65535, no options, main connection.
pub fn seg(flags: u8, seq_off: i16, len: u8) -> SegmentSpec {
    SegmentSpec { flags, seq_off, window: 65535, len_code: len, ..SegmentSpec::default() }
}

fn step(s: SegmentSpec) -> Step {
    Step::Segment(s)
}

fn advance_ms(ms: u16) -> Step {
    Step::Advance { millis: ms }
}

fn advance_s(s: u16) -> Step {
    Step::Advance { millis: 0x8000 + s * 10 }
}

/// An ICMP message: `kind` as [`IcmpSpec::kind`], about the stack's latest segment to port
/// `REMOTE_PORT + port` moved by `seq_off`.
fn icmp(kind: u8, port: u8, seq_off: i16, value: u16) -> Step {
    Step::Icmp(IcmpSpec { kind, port, seq_off, value })
}

/// The peer's SYN-ACK to the stack's SYN on port `REMOTE_PORT + port` (acknowledging its ISS,
/// mode bits 2-3 = 2), with the usual options.
fn syn_ack(port: u8) -> Step {
    step(SegmentSpec {
        mode: 1 | 2 << 2,
        ack_off: 1,
        opts: 0b1111,
        mss: 1460,
        wscale: 7,
        port,
        ..seg(S | A, 0, 0)
    })
}

/// A passive handshake on peer port `REMOTE_PORT + port` (SYN with the usual options, then ACK).
fn handshake(port: u8) -> [Step; 2] {
    [
        step(SegmentSpec { mode: 1, opts: 0b1111, mss: 1460, wscale: 7, port, ..seg(S, 0, 0) }),
        step(SegmentSpec { port, opts: 0b1000, ..seg(A, 0, 0) }),
    ]
}

/// The steps of the named stack-target seeds (setup variants are added by [`seed_inputs`]).
pub fn seed_scenarios(target: StackTarget) -> Vec<(&'static str, Vec<Step>)> {
    let recv = Step::Recv { sock: 0, max: 65535 };
    let send = |len| Step::Send { sock: 0, len };
    let sd = Step::Shutdown { sock: 0 };
    let close = Step::Close { sock: 0 };
    match target {
        StackTarget::Established => vec![
            ("data-in", vec![step(seg(P | A, 0, 100)), advance_ms(300), recv]),
            ("data-out-acked", vec![send(3000), step(seg(A, 0, 0)), advance_ms(300), send(10)]),
            (
                "peer-closes-first",
                vec![step(seg(F | A, 0, 0)), recv, recv, close, step(seg(A, 0, 0)), advance_s(70)],
            ),
            ("stack-closes-first", vec![sd, step(seg(A, 0, 0)), step(seg(F | A, 0, 0)), advance_s(70)]),
            (
                "simultaneous-close",
                vec![sd, step(SegmentSpec { mode: 4, ..seg(F | A, 0, 0) }), advance_s(70)],
            ),
            ("rst-in-window", vec![step(seg(R, 0, 0)), recv, send(5)]),
            ("rst-inside-window-challenge", vec![step(seg(R, 100, 0)), step(seg(R | A, 0, 0))]),
            ("rst-out-of-window", vec![step(seg(R, 20000, 0))]),
            ("syn-in-established", vec![step(seg(S, 0, 0)), advance_ms(10), step(seg(S | A, 0, 0))]),
            ("ack-beyond-snd-nxt", vec![send(100), step(SegmentSpec { ack_off: 5000, ..seg(A, 0, 0) })]),
            (
                "out-of-order-then-fill",
                vec![step(seg(P | A, 1000, 200)), step(seg(P | A, 0, 255)), step(seg(P | A, 0, 200)), recv],
            ),
            (
                "zero-window-probe",
                vec![step(SegmentSpec { window: 0, ..seg(A, 0, 0) }), send(2000), advance_s(30)],
            ),
            ("retransmit-until-timeout", vec![send(3000), advance_s(60), advance_s(600), advance_s(1800)]),
            (
                "fast-retransmit",
                vec![
                    send(20000),
                    step(SegmentSpec { mode: 4, ack_off: 1, ..seg(A, 0, 0) }),
                    step(SegmentSpec { mode: 4, ack_off: 1, ..seg(A, 0, 0) }),
                    step(SegmentSpec { mode: 4, ack_off: 1, ..seg(A, 0, 0) }),
                    step(SegmentSpec { mode: 4, ack_off: 1, ..seg(A, 0, 0) }),
                    step(seg(A, 0, 0)),
                ],
            ),
            (
                "sack-blocks",
                vec![
                    send(10000),
                    step(SegmentSpec {
                        opts: 16,
                        sack_left: 3000,
                        sack_len: 1448,
                        mode: 4,
                        ack_off: 1,
                        ..seg(A, 0, 0)
                    }),
                    advance_s(2),
                ],
            ),
            (
                "paws-old-timestamp",
                vec![
                    step(SegmentSpec { opts: 8, ts_delta: 10, ..seg(P | A, 0, 50) }),
                    step(SegmentSpec { opts: 8, ts_delta: -100, ..seg(P | A, 0, 50) }),
                ],
            ),
            ("bad-checksum", vec![step(SegmentSpec { mode: 0x20, ..seg(P | A, 0, 50) })]),
            ("big-segment", vec![step(SegmentSpec { len_code: 255, ..seg(P | A, 0, 0) }), recv]),
            ("close-with-unread-data", vec![step(seg(P | A, 0, 100)), close, advance_s(5)]),
            ("abort", vec![send(100), Step::Abort { sock: 0 }, step(seg(A, 0, 0))]),
            ("keepalive", vec![Step::SetOption { sock: 0, which: 1, value: 100 }, advance_s(300)]),
            (
                "shrink-buffers",
                vec![Step::SetOption { sock: 0, which: 2, value: 64 }, step(seg(P | A, 0, 200))],
            ),
            ("icmp-frag-needed", vec![send(3000), icmp(1, 0, 0, 1200), advance_ms(300), step(seg(A, 0, 0))]),
            ("icmp-frag-needed-tiny-mtu", vec![send(3000), icmp(1, 0, 0, 68), advance_s(2)]),
            ("icmp-unreachable-in-window", vec![send(100), icmp(0, 0, 0, 1), advance_s(5)]),
            ("icmp-unreachable-out-of-window", vec![send(100), icmp(0, 0, 20000, 3), advance_s(1)]),
            ("icmp-port-unreachable", vec![icmp(0, 0, 0, 3), icmp(0, 0, 0, 4), send(10)]),
            ("icmp-time-exceeded", vec![send(100), icmp(2, 0, 0, 0), advance_s(2)]),
            ("icmp-param-problem", vec![send(100), icmp(3, 0, 0, 20), advance_s(2)]),
            ("icmp-echo", vec![icmp(4, 0, 0, 32), icmp(4 | 8, 0, 0, 8)]),
            (
                "icmp-malformed",
                vec![send(100), icmp(5, 0, 0, 3), icmp(6, 0, 0, 1), icmp(7, 0, 0, 0x0d00), icmp(16, 0, 0, 1)],
            ),
            ("icmp-other-family-and-port", vec![icmp(1 | 8, 0, 0, 1280), icmp(0, 9, 0, 1)]),
            (
                "second-connection",
                vec![
                    Step::Connect { port: 1 },
                    syn_ack(1),
                    step(SegmentSpec { port: 1, ..seg(P | A, 0, 10) }),
                ],
            ),
            (
                "syn-sent-hostile",
                vec![
                    Step::Connect { port: 1 },
                    // RFC 9293 §3.10.7.3: an unacceptable ACK gets a RST, a RST without ACK is
                    // dropped, a bare SYN is a simultaneous open.
                    step(SegmentSpec { mode: 1, ack_off: 5000, port: 1, ..seg(S | A, 0, 0) }),
                    step(SegmentSpec { mode: 1, port: 1, ..seg(R, 0, 0) }),
                    step(SegmentSpec { mode: 1, ack_off: -1, port: 1, ..seg(R | A, 0, 0) }),
                    step(SegmentSpec { mode: 1, port: 1, ..seg(P | A, 0, 20) }),
                    step(SegmentSpec { mode: 1, port: 1, ..seg(A, 0, 0) }),
                    icmp(0, 1, 0, 1),
                    syn_ack(1),
                ],
            ),
            (
                "syn-sent-simultaneous-open",
                vec![
                    Step::Connect { port: 2 },
                    step(SegmentSpec { mode: 1, port: 2, ..seg(S, 0, 0) }),
                    advance_s(3),
                ],
            ),
            (
                "syn-sent-rst-ack",
                vec![Step::Connect { port: 3 }, step(SegmentSpec { mode: 1, port: 3, ..seg(R | A, 0, 0) })],
            ),
            ("syn-sent-timeout", vec![Step::Connect { port: 4 }, icmp(1, 4, 0, 576), advance_s(200)]),
            (
                "time-wait-reopen",
                vec![
                    sd,
                    step(seg(F | A, 0, 0)),
                    step(SegmentSpec { mode: 1, seq_off: 10000, ..seg(S, 0, 0) }),
                ],
            ),
        ],
        StackTarget::Listen => {
            let accept = Step::Accept;
            let mut flood: Vec<Step> =
                (1..=24).map(|p| step(SegmentSpec { mode: 1, port: p, ..seg(S, 0, 0) })).collect();
            flood.push(advance_s(5));
            let mut queue_full = Vec::new();
            for p in 1..=7 {
                queue_full.extend(handshake(p));
            }
            queue_full.push(accept);
            vec![
                ("handshake-data-close", {
                    let mut v = handshake(0).to_vec();
                    v.extend([accept, step(seg(P | A, 0, 100)), recv, Step::Close { sock: 0 }]);
                    v.extend([step(seg(F | A, 0, 0)), advance_s(70)]);
                    v
                }),
                ("syn-flood", flood),
                ("accept-queue-full", queue_full),
                ("rst-to-listener", vec![step(SegmentSpec { mode: 1, ..seg(R, 0, 0) })]),
                ("ack-to-listener", vec![step(SegmentSpec { mode: 1, ..seg(A, 0, 0) })]),
                ("data-to-listener", vec![step(SegmentSpec { mode: 1, ..seg(P, 0, 10) })]),
                ("syn-then-rst", vec![handshake(0)[0], step(seg(R, 0, 0))]),
                ("syn-ack-retransmitted", vec![handshake(0)[0], advance_s(5), advance_s(200)]),
                (
                    "syn-with-data",
                    vec![step(SegmentSpec { mode: 1, ..seg(S, 0, 100) }), step(seg(A, 0, 0)), accept, recv],
                ),
                ("syn-retransmitted", vec![handshake(0)[0], handshake(0)[0]]),
                ("other-port-closed", vec![step(SegmentSpec { mode: 1, port: 50, ..seg(S, 0, 0) })]),
                ("v6-handshake", {
                    let [a, b] = handshake(0);
                    let v6 = |s: Step| match s {
                        Step::Segment(x) => Step::Segment(SegmentSpec { mode: x.mode | 0x10, ..x }),
                        o => o,
                    };
                    vec![v6(a), v6(b), accept, send(100)]
                }),
                ("connect-and-answer", vec![Step::Connect { port: 5 }, syn_ack(5), send(100), recv]),
                (
                    "connect-refused",
                    vec![
                        Step::Connect { port: 6 },
                        step(SegmentSpec { mode: 1, port: 6, ..seg(R | A, 0, 0) }),
                    ],
                ),
                (
                    "connect-icmp-unreachable",
                    vec![Step::Connect { port: 7 }, icmp(0, 7, 0, 1), advance_s(10)],
                ),
                (
                    "icmp-to-syn-received",
                    vec![handshake(0)[0], icmp(0, 0, 0, 1), icmp(1, 0, 0, 1000), accept],
                ),
                ("icmp-echo", vec![icmp(4, 0, 0, 56), icmp(4 | 16, 0, 0, 8)]),
                ("peer-closes-unaccepted", {
                    let mut v = handshake(0).to_vec();
                    v.extend([
                        step(seg(F | A, 0, 0)),
                        accept,
                        recv,
                        Step::Close { sock: 0 },
                        step(seg(A, 0, 0)),
                    ]);
                    v
                }),
            ]
        }
    }
}

/// The seed inputs of a stack target: each scenario under a few configurations, named
/// `<scenario>-<setup bytes in hex>`.
pub fn seed_inputs(target: StackTarget) -> Vec<(String, Vec<u8>)> {
    let setups = [
        Setup::default(),
        Setup { linux_like: true, no_delayed_ack: true, ..Setup::default() },
        Setup { small_buffers: true, nodelay: true, ..Setup::default() },
        Setup { ipv6: true, no_sack: true, no_timestamps: true, ..Setup::default() },
        Setup {
            active_open: true,
            bare_syn: true,
            no_window_scale: true,
            small_mtu: true,
            ..Setup::default()
        },
    ];
    let mut out = Vec::new();
    for (name, steps) in seed_scenarios(target) {
        for setup in setups {
            if target == StackTarget::Listen && (setup.active_open || setup.ipv6) {
                continue; // no meaning for a listener alone
            }
            let input = StackInput { setup, steps: steps.clone() };
            let [a, b] = setup.to_bytes();
            out.push((format!("{name}-{a:02x}{b:02x}"), input.encode()));
        }
    }
    out
}
