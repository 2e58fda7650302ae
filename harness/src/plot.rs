//! Time-sequence graphs (the picture Wireshark calls "Stevens" and tcptrace draws): sequence
//! number against time for one direction of a connection, as SVG through `plotters`.
//!
//! Each data segment is a vertical bar from its first to its last sequence number at the time it
//! was sent, retransmissions marked with a cross; the receiver's cumulative ACK and the right
//! edge of its advertised window are step lines; its SACK blocks are bars; packets that differ
//! between the recording and utcp are ringed. [`replay_chart`] puts the recorded endpoint and
//! utcp on one chart, [`flow_chart`] draws one direction of a plain capture.
//!
//! Must not depend on: the stack's state, terminals, files (the caller writes the SVG).

use crate::capture::flows::{Flow, Side};
use crate::replay::compare::{Outcome, Seg};
use crate::replay::engine::{Replay, Step};
use crate::replay::report::role_name;
use plotters::prelude::*;
use utcp::time::Instant;

/// A colour of the chart, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ink {
    /// The recorded endpoint (blue).
    Recorded,
    /// utcp (orange).
    Utcp,
    /// The peer, or the receiver of a plain capture (green).
    Peer,
    /// The sender of a plain capture (dark blue-grey).
    Sender,
}

impl Ink {
    fn rgb(self) -> RGBColor {
        match self {
            Ink::Recorded => RGBColor(31, 119, 180),
            Ink::Utcp => RGBColor(230, 120, 0),
            Ink::Peer => RGBColor(44, 160, 44),
            Ink::Sender => RGBColor(40, 60, 90),
        }
    }
}

/// One segment's place on the chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Seconds from the connection's first packet.
    pub time: f64,
    /// First relative sequence number it covers.
    pub start: f64,
    /// One past the last.
    pub end: f64,
    /// Whether it repeats sequence space its sender had already sent.
    pub retransmission: bool,
}

/// The data segments of one sender.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSeries {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub ink: Ink,
    /// The segments, in time order.
    pub bars: Vec<Bar>,
}

/// What one receiver said: its cumulative ACK, window edge and SACK blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct AckSeries {
    /// Whose (legend prefix).
    pub label: String,
    /// Colour.
    pub ink: Ink,
    /// (time, acknowledged up to) at each ACK.
    pub acks: Vec<(f64, f64)>,
    /// (time, ACK + advertised window, scaled) at each ACK.
    pub window_edge: Vec<(f64, f64)>,
    /// SACK blocks: (time, left, right).
    pub sacks: Vec<(f64, f64, f64)>,
}

/// A time-sequence chart, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The caption.
    pub title: String,
    /// Whose sequence space the y axis is in.
    pub y_label: String,
    /// Data segments, one series per sender.
    pub data: Vec<DataSeries>,
    /// Receivers' ACK lines, window edges and SACK blocks.
    pub acks: Vec<AckSeries>,
    /// Points where the recording and utcp differ: (time, sequence number).
    pub differences: Vec<(f64, f64)>,
    /// Seconds from the first packet to the last (the whole connection's time axis).
    pub span: f64,
    /// The detail to draw under the overview, seconds from the first packet; `None` picks it
    /// ([`focus`]).
    pub window: Option<(f64, f64)>,
}

/// Seconds from `start`.
fn secs(t: Instant, start: Instant) -> f64 {
    t.saturating_duration_since(start).total_micros() as f64 / 1e6
}

/// The segments that occupy sequence space (data, SYN, FIN) as bars, each marked when it starts
/// below the highest sequence number sent before it.
pub fn bars(segs: &[&Seg], start: Instant) -> Vec<Bar> {
    let mut high: Option<u32> = None;
    let mut out = Vec::new();
    for s in segs {
        let len = s.len as u32 + u32::from(s.flags.syn()) + u32::from(s.flags.fin());
        if len == 0 || s.flags.rst() {
            continue;
        }
        let end = s.seq.wrapping_add(len);
        let retransmission = high.is_some_and(|h| (s.seq.wrapping_sub(h) as i32) < 0);
        if high.is_none_or(|h| (end.wrapping_sub(h) as i32) > 0) {
            high = Some(end);
        }
        out.push(Bar {
            time: secs(s.time, start),
            start: f64::from(s.seq),
            end: f64::from(end),
            retransmission,
        });
    }
    out
}

/// The ACK line, window edge and SACK blocks of a receiver's segments; `shift` is its window
/// scale (applied to every segment but a SYN, RFC 7323 §2.2).
pub fn ack_series(label: &str, ink: Ink, segs: &[&Seg], shift: u8, start: Instant) -> AckSeries {
    let mut a = AckSeries {
        label: label.to_string(),
        ink,
        acks: Vec::new(),
        window_edge: Vec::new(),
        sacks: Vec::new(),
    };
    for s in segs.iter().filter(|s| s.flags.ack() && !s.flags.rst()) {
        let t = secs(s.time, start);
        let win = if s.flags.syn() { u64::from(s.window) } else { u64::from(s.window) << shift.min(14) };
        a.acks.push((t, f64::from(s.ack)));
        a.window_edge.push((t, f64::from(s.ack) + win as f64));
        for &(l, r) in s.sack.iter().flatten() {
            a.sacks.push((t, f64::from(l), f64::from(r)));
        }
    }
    a
}

/// The window scale `segs`' sender applies: its SYN's, when the other side's SYN had one too.
fn shift_of(segs: &[&Seg], other: &[&Seg]) -> u8 {
    let own = segs.iter().find(|s| s.flags.syn()).and_then(|s| s.wscale);
    let theirs = other.iter().find(|s| s.flags.syn()).and_then(|s| s.wscale);
    match (own, theirs) {
        (Some(w), Some(_)) => w,
        _ => 0,
    }
}

/// The chart of a replay: when utcp's role sent the data, the recorded endpoint's and utcp's
/// segments with the peer's ACKs as injected; when the peer sent the data, its segments with the
/// recorded endpoint's and utcp's ACKs, windows and SACK blocks. Packets counted as differing,
/// missing or extra are ringed.
pub fn replay_chart(r: &Replay, source: &str) -> Chart {
    let start = r.steps.first().map_or(Instant::ZERO, Step::time);
    let peer: Vec<Seg> = r
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::In { time, datagram, .. } => Seg::parse(*time, datagram, r.isns.1, r.isns.2, 0, None),
            _ => None,
        })
        .collect();
    let peer: Vec<&Seg> = peer.iter().collect();
    let recorded: Vec<&Seg> = r.recorded.iter().map(|(_, s)| s).collect();
    let utcp: Vec<&Seg> = r.utcp.iter().map(|(_, s)| s).collect();
    let own_bytes: usize = recorded.iter().map(|s| s.len).sum();
    let peer_bytes: usize = peer.iter().map(|s| s.len).sum();
    let role = role_name(r.role);
    let own_sends = own_bytes > 0 && own_bytes >= peer_bytes;
    // Where a packet that differs sits: its top when the role's data is drawn, its ACK otherwise.
    let place = |s: &Seg| -> (f64, f64) {
        let y = if own_sends {
            s.seq.wrapping_add(s.len as u32 + u32::from(s.flags.syn()) + u32::from(s.flags.fin()))
        } else {
            s.ack
        };
        (secs(s.time, start), f64::from(y))
    };
    let mut differences = Vec::new();
    for (o, (_, s)) in r.alignment.recorded.iter().zip(&r.recorded) {
        let differs = match o {
            Outcome::Missing => true,
            Outcome::Matched(_, diffs) => diffs.iter().any(|d| d.significant),
        };
        if differs {
            differences.push(place(s));
        }
    }
    for (m, (_, s)) in r.alignment.utcp.iter().zip(&r.utcp) {
        if m.is_none() {
            differences.push(place(s));
        }
    }
    let span = r.steps.last().map_or(0.0, |s| secs(s.time(), start));
    let title = format!("{source}, flow {}: utcp as {role} {} with peer {}", r.flow, r.local, r.remote);
    if own_sends {
        Chart {
            title,
            y_label: format!("sequence number of the {role} (relative, bytes)"),
            data: vec![
                DataSeries {
                    label: format!("recorded {role}: data"),
                    ink: Ink::Recorded,
                    bars: bars(&recorded, start),
                },
                DataSeries { label: "utcp: data".into(), ink: Ink::Utcp, bars: bars(&utcp, start) },
            ],
            acks: vec![ack_series("peer (as injected)", Ink::Peer, &peer, shift_of(&peer, &recorded), start)],
            differences,
            span,
            window: None,
        }
    } else {
        Chart {
            title,
            y_label: "sequence number of the peer (relative, bytes)".into(),
            data: vec![DataSeries {
                label: "peer: data (as injected)".into(),
                ink: Ink::Peer,
                bars: bars(&peer, start),
            }],
            acks: vec![
                ack_series(
                    &format!("recorded {role}"),
                    Ink::Recorded,
                    &recorded,
                    shift_of(&recorded, &peer),
                    start,
                ),
                ack_series("utcp", Ink::Utcp, &utcp, shift_of(&utcp, &peer), start),
            ],
            differences,
            span,
            window: None,
        }
    }
}

/// The chart of one connection of a plain capture: the direction that carried more payload
/// (the client's on a tie), its segments and the other side's ACKs, window edge and SACK blocks.
pub fn flow_chart(flow: &Flow, source: &str) -> Chart {
    let start = flow.packets.first().map_or(Instant::ZERO, |p| p.time);
    let bytes =
        |side: Side| flow.packets.iter().filter(|p| p.from == side).map(|p| p.tcp.payload_len).sum::<usize>();
    let sender = if bytes(Side::Server) > bytes(Side::Client) { Side::Server } else { Side::Client };
    // Numbers relative to each side's ISN, or for a side seen without its SYN to its first
    // sequence number.
    let base = |side: Side| {
        flow.isn(side).or_else(|| {
            flow.packets
                .iter()
                .find(|p| p.from == side)
                .map(|p| utcp::tcp::seq::SeqNum(p.tcp.seq.0.wrapping_sub(1)))
        })
    };
    let segs = |side: Side| -> Vec<Seg> {
        flow.packets
            .iter()
            .filter(|p| p.from == side)
            .filter_map(|p| {
                let declared = p.tcp.is_sliced().then_some(p.tcp.payload_len);
                Seg::parse(p.time, &p.as_captured(), base(side), base(side.other()), 0, declared)
            })
            .collect()
    };
    let (data, acks) = (segs(sender), segs(sender.other()));
    let data: Vec<&Seg> = data.iter().collect();
    let acks: Vec<&Seg> = acks.iter().collect();
    let name = role_name(sender);
    let other = role_name(sender.other());
    Chart {
        title: format!(
            "{source}, flow {}: {name} {} to {other} {}",
            flow.index,
            endpoint(flow, sender),
            endpoint(flow, sender.other())
        ),
        y_label: format!("sequence number of the {name} (relative, bytes)"),
        data: vec![DataSeries { label: format!("{name}: data"), ink: Ink::Sender, bars: bars(&data, start) }],
        acks: vec![ack_series(other, Ink::Peer, &acks, shift_of(&acks, &data), start)],
        differences: Vec::new(),
        span: flow.packets.last().map_or(0.0, |p| secs(p.time, start)),
        window: None,
    }
}

fn endpoint(flow: &Flow, side: Side) -> std::net::SocketAddr {
    match side {
        Side::Client => flow.client,
        Side::Server => flow.server,
    }
}

/// Width of the SVG, pixels.
pub const WIDTH: u32 = 1400;
/// Height of the SVG, pixels.
pub const HEIGHT: u32 = 800;

/// The chart as an SVG document.
pub fn render_svg(chart: &Chart) -> Result<String, String> {
    let mut svg = String::new();
    draw(chart, &mut svg).map_err(|e| format!("cannot draw the chart: {e}"))?;
    Ok(svg)
}

/// (low, high) of `v`, or (0, 1) when empty.
fn lo_hi(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// Every (time, sequence) point the chart draws.
fn points(c: &Chart) -> Vec<(f64, f64)> {
    let mut p = Vec::new();
    for d in &c.data {
        for b in &d.bars {
            p.extend([(b.time, b.start), (b.time, b.end)]);
        }
    }
    for a in &c.acks {
        p.extend(a.acks.iter().chain(&a.window_edge).copied());
        for &(t, l, r) in &a.sacks {
            p.extend([(t, l), (t, r)]);
        }
    }
    p
}

/// The time span where the data moved: from the first data segment (SYN and FIN left out) to the
/// one by which 98 % of them had been sent, so that a late retransmission or a long close does
/// not squeeze the transfer into a sliver.
pub fn focus(c: &Chart) -> Option<(f64, f64)> {
    let mut times: Vec<f64> =
        c.data.iter().flat_map(|d| &d.bars).filter(|b| b.end - b.start > 1.0).map(|b| b.time).collect();
    if times.is_empty() {
        return None;
    }
    times.sort_by(f64::total_cmp);
    let last = ((times.len() as f64 * 0.98).ceil() as usize).clamp(1, times.len()) - 1;
    Some((times[0], times[last]))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw(c: &Chart, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let all = points(c);
    let (x0, x1) = lo_hi(all.iter().map(|p| p.0).chain([0.0, c.span]));
    let (y0, y1) = lo_hi(all.iter().map(|p| p.1));
    let base = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    base.fill(&WHITE)?;
    let root = base.titled(&c.title, ("sans-serif", 20))?;
    // When the data moved in a small part of the connection's life (a bulk transfer and a long
    // close), the whole is a small overview on top and the data part fills the rest.
    let zoom = match c.window {
        Some(w) => Some(w),
        None => focus(c).filter(|&(f0, f1)| x1 > x0 && (f1 - f0) < 0.5 * (x1 - x0)),
    };
    match zoom {
        Some((f0, f1)) => {
            let (top, bottom) = root.split_vertically(HEIGHT / 3);
            panel(&top, c, (x0, x1), (y0, y1), "the whole connection", false)?;
            let inside: Vec<&(f64, f64)> = all.iter().filter(|p| p.0 >= f0 && p.0 <= f1).collect();
            // The data and ACKs set the detail's height; a window edge far above is cut off.
            let (_, dy1) = lo_hi(
                c.data.iter().flat_map(|d| &d.bars).filter(|b| b.time >= f0 && b.time <= f1).map(|b| b.end),
            );
            let (iy0, iy1) = lo_hi(inside.iter().map(|p| p.1));
            let caption = match c.window {
                Some(_) => format!("{f0:.4} s to {f1:.4} s (--plot-window)"),
                None => format!("where the data moved: {f0:.4} s to {f1:.4} s"),
            };
            panel(&bottom, c, (f0, f1), (iy0, iy1.min(dy1 + (dy1 - iy0) * 0.15)), &caption, true)?;
        }
        None => panel(&root, c, (x0, x1), (y0, y1), "", true)?,
    }
    base.present()?;
    Ok(())
}

/// One chart of `c` on `area`, showing times `xr` and sequence numbers `yr`.
fn panel(
    area: &Area<'_>,
    c: &Chart,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    caption: &str,
    legend: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let (xpad, ypad) = (((x1 - x0) * 0.02).max(1e-4), ((y1 - y0) * 0.03).max(1.0));
    let (x0, x1, y0, y1) = (x0 - xpad, x1 + xpad, (y0 - ypad).max(0.0), y1 + ypad);
    let x_span = x1 - x0;
    let mut builder = ChartBuilder::on(area);
    builder.margin(15).x_label_area_size(50).y_label_area_size(95);
    if !caption.is_empty() {
        builder.caption(caption, ("sans-serif", 16));
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
    let x_fmt = |x: &f64| {
        if x_span < 0.05 {
            format!("{:.4}", x)
        } else if x_span < 10.0 {
            format!("{:.3}", x)
        } else {
            format!("{:.1}", x)
        }
    };
    let y_fmt = |y: &f64| format!("{:.0}", y);
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(if legend { c.y_label.as_str() } else { "sequence number" })
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        // The small overview keeps only the labelled grid lines.
        .light_line_style(if legend { RGBColor(240, 240, 240) } else { WHITE })
        .bold_line_style(RGBColor(215, 215, 215))
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .draw()?;
    let in_view = |t: f64| t >= x0 && t <= x1;

    // Differences and SACK blocks first, so that segments and lines draw over them.
    if !c.differences.is_empty() {
        let magenta = RGBColor(200, 0, 200).mix(0.55).stroke_width(1);
        chart
            .draw_series(c.differences.iter().filter(|p| in_view(p.0)).map(|&p| Circle::new(p, 6, magenta)))?
            .label("differs from the recording (differed, missing or extra)")
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, magenta));
    }
    let bar_half = x_span * 0.002;
    for a in &c.acks {
        if a.sacks.is_empty() {
            continue;
        }
        let fill = a.ink.rgb().mix(0.35).filled();
        chart
            .draw_series(
                a.sacks
                    .iter()
                    .filter(|s| in_view(s.0))
                    .map(|&(t, l, r)| Rectangle::new([(t - bar_half, l), (t + bar_half, r)], fill)),
            )?
            .label(format!("{}: SACK blocks", a.label))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], fill));
    }
    for a in &c.acks {
        let ink = a.ink.rgb();
        if !a.window_edge.is_empty() {
            let style = ink.mix(0.7).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    clip(&steps(&a.window_edge), (x0, x1), (y0, y1)),
                    6,
                    4,
                    style,
                ))?
                .label(format!("{}: advertised window edge", a.label))
                .legend(move |(x, y)| {
                    plotters::element::DashedPathElement::new(vec![(x, y), (x + 20, y)], 4, 3, style)
                });
        }
        if !a.acks.is_empty() {
            let style = ink.stroke_width(2);
            chart
                .draw_series(LineSeries::new(clip(&steps(&a.acks), (x0, x1), (y0, y1)), style))?
                .label(format!("{}: cumulative ACK", a.label))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    for d in &c.data {
        if d.bars.is_empty() {
            continue;
        }
        let style = d.ink.rgb().stroke_width(2);
        let shown: Vec<&Bar> = d.bars.iter().filter(|b| in_view(b.time)).collect();
        chart
            .draw_series(shown.iter().map(|b| {
                EmptyElement::at((b.time, b.end.min(y1))) + PathElement::new(vec![(-3, 0), (3, 0)], style)
            }))?
            .label(d.label.clone())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(10, -7), (10, 7)], style)
                    + PathElement::new(vec![(7, -7), (13, -7)], style)
            });
        chart.draw_series(
            shown
                .iter()
                .map(|b| PathElement::new(vec![(b.time, b.start.max(y0)), (b.time, b.end.min(y1))], style)),
        )?;
    }
    let retx: Vec<(f64, f64)> = c
        .data
        .iter()
        .flat_map(|d| d.bars.iter().filter(|b| b.retransmission && in_view(b.time)).map(|b| (b.time, b.end)))
        .collect();
    if c.data.iter().any(|d| d.bars.iter().any(|b| b.retransmission)) {
        let red = RGBColor(214, 39, 40).stroke_width(2);
        chart
            .draw_series(retx.iter().map(|&p| Cross::new(p, 5, red)))?
            .label("retransmission")
            .legend(move |(x, y)| Cross::new((x + 10, y), 5, red));
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    Ok(())
}

/// The points of a line inside the view: times outside it dropped, values held to its height.
fn clip(points: &[(f64, f64)], (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Vec<(f64, f64)> {
    points.iter().filter(|p| p.0 >= x0 && p.0 <= x1).map(|&(t, y)| (t, y.clamp(y0, y1))).collect()
}

/// A step line through `points`: each value holds until the next point's time.
fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(t, y)) in points.iter().enumerate() {
        if i > 0 {
            out.push((t, points[i - 1].1));
        }
        out.push((t, y));
    }
    out
}

/// Reads `--plot-window FROM:TO` (seconds from the connection's first packet).
pub fn parse_window(text: &str) -> Result<(f64, f64), String> {
    let bad = || format!("--plot-window {text}: expected FROM:TO in seconds, FROM below TO (e.g. 1.0:1.05)");
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    let (a, b): (f64, f64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a.is_finite() && b.is_finite() && a >= 0.0 && a < b {
        Ok((a, b))
    } else {
        Err(bad())
    }
}
