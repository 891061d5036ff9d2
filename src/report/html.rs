//! `--format html`: the report as one self-contained page (docs/report.md). First every
//! verdict and what was read, in the terminal report's words (shared with [`human`]), then per
//! verdict the plot of its evidence, drawn from the report's own data: the service's and the
//! control connections' throughput with a policer's or shaper's rate and, for shaping, their
//! round trips; the server bytes at which connections stopped; the RSTs against the round
//! trip; answered and unanswered attempts; a call's media both ways. Then the service and flow
//! tables.
//!
//! Guarantees: no script, and nothing fetched (CSS and SVG inline, no URL in the page); every
//! text from a trace or a file (names, addresses, paths, messages) is escaped; colours work in
//! greyscale and for colour blindness (Okabe-Ito, with dash patterns and marker shapes per
//! series) and in dark mode. The page is bounded whatever the trace: at most [`MAX_FIGURES`]
//! figures, [`MAX_LINES`] connections per group in a plot ([`MAX_DOTS`] as dots), each of at
//! most a flow's ring of throughput bins, and [`MAX_FLOW_ROWS`] table rows; every cut is
//! said in the page.

use std::fmt;
use std::io::{self, Write};

use serde_json::Value;

use super::human::{self, bytes};
use super::{FlowReport, Report};
use crate::classify::Role;
use crate::detect::{Finding, Mechanism, Verdict, Window, rate_text};
use crate::flow::Proto;
use crate::pipeline::FinishedFlow;
use crate::time::Timestamp;

/// Verdicts that get a figure (findings first).
pub const MAX_FIGURES: usize = 12;
/// Connections per group (the service's, the control's) drawn as lines in one plot.
pub const MAX_LINES: usize = 6;
/// Connections per group drawn as dots in one plot.
pub const MAX_DOTS: usize = 40;
/// Rows of the flow table.
pub const MAX_FLOW_ROWS: usize = 100;

const STYLE: &str = ":root{--fg:#1b1b1b;--bg:#fff;--mu:#5c5c5c;--gr:#d8d8d8;--t:#d55e00;\
--c:#0072b2;--u:#009e73}\
@media (prefers-color-scheme:dark){:root{--fg:#e6e6e6;--bg:#161616;--mu:#a8a8a8;--gr:#3c3c3c;\
--t:#e69f00;--c:#56b4e9;--u:#2fc79b}}\
body{font:15px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);max-width:62rem;\
margin:0 auto;padding:1rem}h1{font-size:1.3rem}h2{font-size:1.15rem;margin-top:2rem;\
border-bottom:1px solid var(--gr)}h3{font-size:1rem;margin:.2rem 0}\
.v{border-left:4px solid var(--mu);padding:.1rem .8rem;margin:.8rem 0}.v.found{border-color:var(--t)}\
.v p{margin:.2rem 0}.mu,.key,figcaption{color:var(--mu)}figure{margin:1.5rem 0}\
figcaption b{color:var(--fg)}svg{width:100%;height:auto;color:var(--fg)}svg text{fill:currentColor;font-size:11px}\
.g{stroke:var(--gr)}.a{stroke:currentColor;fill:none}.r{stroke:currentColor;stroke-dasharray:2 3}\
.t{--k:var(--t)}.c{--k:var(--c)}.u{--k:var(--u)}.l{fill:none;stroke:var(--k);stroke-width:2}\
.c.l{stroke-dasharray:7 4}.u.l{stroke-dasharray:2 3}.d,.b{fill:var(--k);stroke:var(--k)}\
.b.t{fill-opacity:.3;stroke-width:1.5}.key svg{width:26px;height:12px;vertical-align:middle}\
.key span{margin-right:1.2rem;white-space:nowrap}table{border-collapse:collapse;font-size:13px}\
th,td{padding:2px 8px;border-bottom:1px solid var(--gr);text-align:right;vertical-align:top}\
td:last-child{min-width:12rem}\
th:first-child,td.s{text-align:left}.err{color:var(--t)}a{color:var(--c)}";

/// Text for HTML: `&<>"'` as references, characters HTML forbids (controls, noncharacters) as
/// U+FFFD.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            let n = u32::from(c);
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                '\n' | '\t' => f.write_str(" ")?,
                _ if c.is_control() || n & 0xfffe == 0xfffe || (0xfdd0..=0xfdef).contains(&n) => {
                    f.write_str("\u{fffd}")?
                }
                _ => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// How a series looks: its CSS class (colour, dash pattern; dots: circles, the control's
/// squares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// The service (vermillion, solid).
    Target,
    /// The control traffic (blue, dashed, squares).
    Control,
    /// A second series (bluish green, dotted): the other direction, answered attempts, the RTT.
    Other,
}

impl Look {
    fn class(self) -> &'static str {
        match self {
            Look::Target => "t",
            Look::Control => "c",
            Look::Other => "u",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Line,
    Dot,
    /// A bar from the point's base to its value.
    Bar,
}

/// A point: x, y and (bars) the base.
type Point = (f64, f64, f64);

struct Series {
    look: Look,
    mark: Mark,
    points: Vec<Point>,
}

/// One plot: x from 0 to `x_max` (or one slot per category), y from 0 (or, logarithmic,
/// from the power of ten below the least value, at most three decades below the top),
/// horizontal reference lines with their labels.
#[derive(Default)]
struct Plot {
    title: String,
    x_label: &'static str,
    y_label: String,
    x_max: f64,
    log: bool,
    categories: Vec<String>,
    series: Vec<Series>,
    refs: Vec<(f64, String)>,
    keys: Vec<(Look, Mark, String)>,
}

impl Plot {
    fn add(&mut self, look: Look, mark: Mark, points: Vec<Point>) {
        if !points.is_empty() {
            self.series.push(Series { look, mark, points });
        }
    }

    fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn y_values(&self) -> impl Iterator<Item = f64> + '_ {
        let points = self.series.iter().flat_map(|s| &s.points).map(|p| p.1);
        points.chain(self.refs.iter().map(|r| r.0)).filter(|y| y.is_finite())
    }

    /// Divide every y by `by`.
    fn scale(&mut self, by: f64) {
        for p in self.series.iter_mut().flat_map(|s| &mut s.points) {
            (p.1, p.2) = (p.1 / by, p.2 / by);
        }
        for r in &mut self.refs {
            r.0 /= by;
        }
    }
}

/// A step of 1, 2 or 5 times a power of ten that cuts `span` into about five.
fn step(span: f64) -> f64 {
    let raw = (span / 5.0).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw)
}

/// `value` with as many decimals as `step` needs.
fn tick_text(value: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{value:.decimals$}")
}

/// Ticks over 0..=`top` and the axis's end.
fn linear_ticks(top: f64) -> (Vec<(f64, String)>, f64) {
    let top = if top > 0.0 { top } else { 1.0 };
    let step = step(top);
    let end = (top / step).ceil() * step;
    let ticks = (0..=8).map(|i| i as f64 * step).take_while(|t| *t <= end * 1.0001);
    (ticks.map(|t| (t, tick_text(t, step))).collect(), end)
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 230.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 44.0;

/// The plot as an SVG element, its key below it.
fn svg(out: &mut dyn Write, p: &Plot) -> io::Result<()> {
    let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let categories = p.categories.len();
    let x_end = if categories > 0 { categories as f64 } else { p.x_max.max(1e-3) };
    let top = p.y_values().fold(0.0, f64::max);
    let (y_ticks, lo, hi) = if p.log {
        let least = p.y_values().filter(|y| *y > 0.0).fold(f64::INFINITY, f64::min);
        let hi = if top > 0.0 { top.log10().ceil() } else { 1.0 };
        // At most three decades: a lone small value (an ACK in a bin) does not squash the rest.
        let lo = if least.is_finite() { least.log10().floor().max(hi - 3.0) } else { hi - 1.0 };
        let hi = hi.max(lo + 1.0);
        let ticks = (lo as i32..=hi as i32).map(|e| {
            let v = 10f64.powi(e);
            (e as f64, tick_text(v, v))
        });
        (ticks.collect(), lo, hi)
    } else {
        let (ticks, end) = linear_ticks(top * 1.05);
        (ticks, 0.0, end)
    };
    let x = |v: f64| LEFT + w * (v / x_end).clamp(0.0, 1.0);
    let y = |v: f64| {
        let v = if p.log { v.max(1e-300).log10() } else { v };
        TOP + h * (1.0 - ((v - lo) / (hi - lo)).clamp(0.0, 1.0))
    };
    write!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{0}\"><title>{0}</title>",
        Esc(&p.title)
    )?;
    for (v, text) in &y_ticks {
        let py = TOP + h * (1.0 - (v - lo) / (hi - lo));
        write!(
            out,
            "<path class=\"g\" d=\"M{LEFT} {py:.1}H{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"end\">{text}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            py + 4.0
        )?;
    }
    let base = HEIGHT - BOTTOM;
    let x_ticks: Vec<(f64, String)> = if categories > 0 {
        p.categories.iter().enumerate().map(|(i, c)| (i as f64 + 0.5, c.clone())).collect()
    } else {
        linear_ticks(x_end).0.into_iter().filter(|t| t.0 <= x_end).collect()
    };
    for (v, text) in &x_ticks {
        let px = x(*v);
        write!(
            out,
            "<path class=\"a\" d=\"M{px:.1} {base}v4\"/><text x=\"{px:.1}\" y=\"{:.1}\" \
             text-anchor=\"middle\">",
            base + 14.0,
        )?;
        // A category "kind: whose" on two lines.
        match text.split_once(": ") {
            Some((kind, whose)) => write!(
                out,
                "{}<tspan x=\"{px:.1}\" dy=\"11\">{}</tspan></text>",
                Esc(kind),
                Esc(whose)
            )?,
            None => write!(out, "{}</text>", Esc(text))?,
        }
    }
    write!(
        out,
        "<path class=\"a\" d=\"M{LEFT} {TOP}V{base}H{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" \
         text-anchor=\"middle\">{}</text><text transform=\"rotate(-90)\" x=\"{:.1}\" y=\"13\" \
         text-anchor=\"middle\">{}</text>",
        WIDTH - RIGHT,
        LEFT + w / 2.0,
        HEIGHT - 4.0,
        Esc(p.x_label),
        -(TOP + h / 2.0),
        Esc(&p.y_label)
    )?;
    // A bar's width: most of its category's slot, or a few pixels on a time axis.
    let bar = if categories > 0 { 0.6 * w / x_end } else { 5.0 };
    for s in &p.series {
        let class = s.look.class();
        match s.mark {
            // One bin alone is no line: a dot.
            Mark::Line if s.points.len() == 1 => {
                dot(out, s.look, x(s.points[0].0), y(s.points[0].1))?
            }
            Mark::Line => {
                write!(out, "<polyline class=\"l {class}\" points=\"")?;
                for (i, pt) in s.points.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    write!(out, "{sep}{:.1},{:.1}", x(pt.0), y(pt.1))?;
                }
                write!(out, "\"/>")?;
            }
            Mark::Dot => {
                for pt in &s.points {
                    dot(out, s.look, x(pt.0), y(pt.1))?;
                }
            }
            Mark::Bar => {
                for pt in &s.points {
                    let (y0, y1) = (y(pt.2), y(pt.1));
                    write!(
                        out,
                        "<rect class=\"b {class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" \
                         height=\"{:.1}\"/>",
                        x(pt.0) - bar / 2.0,
                        y1.min(y0),
                        (y0 - y1).abs().max(1.0)
                    )?;
                }
            }
        }
    }
    for (v, label) in &p.refs {
        let py = y(*v);
        write!(
            out,
            "<path class=\"r\" d=\"M{LEFT} {py:.1}H{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            WIDTH - RIGHT - 2.0,
            py - 4.0,
            Esc(label)
        )?;
    }
    write!(out, "</svg><p class=\"key\">")?;
    for (look, mark, label) in &p.keys {
        write!(out, "<span><svg viewBox=\"0 0 26 12\" aria-hidden=\"true\">")?;
        match mark {
            Mark::Line => write!(out, "<path class=\"l {}\" d=\"M1 6H25\"/>", look.class())?,
            Mark::Dot => dot(out, *look, 13.0, 6.0)?,
            Mark::Bar => write!(
                out,
                "<rect class=\"b {}\" x=\"8\" y=\"1\" width=\"10\" height=\"10\"/>",
                look.class()
            )?,
        }
        write!(out, "</svg> {}</span>", Esc(label))?;
    }
    if !p.refs.is_empty() {
        write!(
            out,
            "<span><svg viewBox=\"0 0 26 12\" aria-hidden=\"true\"><path class=\"r\" \
             d=\"M1 6H25\"/></svg> reference, as labelled</span>"
        )?;
    }
    writeln!(out, "</p>")
}

/// A dot: a circle, or for the control a square (told apart without colour).
fn dot(out: &mut dyn Write, look: Look, x: f64, y: f64) -> io::Result<()> {
    let class = look.class();
    if look == Look::Control {
        write!(
            out,
            "<rect class=\"d c\" x=\"{:.1}\" y=\"{:.1}\" width=\"6\" height=\"6\"/>",
            x - 3.0,
            y - 3.0
        )
    } else {
        write!(out, "<circle class=\"d {class}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\"/>")
    }
}

/// What a verdict's figure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure {
    /// Throughput of the service's and the control connections (and, shaping, their RTTs).
    Throughput,
    /// The server bytes at which each connection stopped.
    Stall,
    /// Each RST against the round trip to the server.
    Resets,
    /// Answered and unanswered attempts per kind.
    Blocking,
    /// A call's media both ways.
    Call,
}

impl Figure {
    fn of(v: &Verdict) -> Figure {
        match v.finding {
            Finding::Stalled => Figure::Stall,
            Finding::Reset => Figure::Resets,
            Finding::Blocked => Figure::Blocking,
            Finding::CallDegraded => Figure::Call,
            Finding::Throttled | Finding::Inconclusive | Finding::None => Figure::Throughput,
        }
    }

    /// Connections drawn per group.
    fn cap(self) -> usize {
        match self {
            Figure::Throughput => MAX_LINES,
            Figure::Stall | Figure::Resets => MAX_DOTS,
            Figure::Call => 1,
            Figure::Blocking => 0,
        }
    }
}

/// The flows a verdict's figure draws, per group (the service's, the control's): those the
/// verdict names first, then the most bytes towards the client; at most the figure's cap, in
/// no particular order.
struct Pick<'a> {
    verdict: &'a Verdict,
    figure: Figure,
    /// Flows the verdict or its evidence names: the service's, the control's.
    named: [Vec<u64>; 2],
    /// (named, bytes down, flow) per group, and how many were candidates.
    flows: [Vec<(bool, u64, &'a FinishedFlow)>; 2],
    candidates: [usize; 2],
}

/// The `flow` ids of an evidence array's objects.
fn flow_ids(evidence: &Value, key: &str) -> Vec<u64> {
    let rows = evidence.get(key).and_then(Value::as_array).into_iter().flatten();
    rows.filter_map(|r| r.get("flow").and_then(Value::as_u64)).collect()
}

impl<'a> Pick<'a> {
    fn new(verdict: &'a Verdict) -> Pick<'a> {
        let figure = Figure::of(verdict);
        let named = match figure {
            Figure::Call => {
                let e = &verdict.evidence;
                let mut calls = flow_ids(e, "calls");
                calls.extend(flow_ids(e, "one_way_calls"));
                [calls, flow_ids(e, "control_rows")]
            }
            Figure::Resets => [flow_ids(&verdict.evidence, "rsts"), Vec::new()],
            _ => [verdict.flows.clone(), Vec::new()],
        };
        Pick { verdict, figure, named, flows: [Vec::new(), Vec::new()], candidates: [0, 0] }
    }

    fn offer(&mut self, f: &'a FinishedFlow, service: &str) {
        let w = self.verdict.window;
        let group = match f.role {
            Role::Target if service == self.verdict.service => 0,
            Role::Control => 1,
            _ => return,
        };
        let named = self.named[group].contains(&f.id);
        let wanted = match self.figure {
            Figure::Throughput | Figure::Stall => {
                f.proto == Proto::Tcp && f.first_at < w.end && f.last_at >= w.start
            }
            Figure::Resets => named && f.proto == Proto::Tcp,
            // A call the evidence names; beside it a control call, named or the largest.
            Figure::Call => {
                named
                    || (group == 1
                        && f.proto == Proto::Udp
                        && f.first_at < w.end
                        && f.last_at >= w.start)
            }
            Figure::Blocking => false,
        };
        if !wanted {
            return;
        }
        self.candidates[group] += 1;
        let picked = &mut self.flows[group];
        picked.push((named, f.measures.dirs.down.bytes, f));
        // Over the cap: the least telling goes.
        if picked.len() > self.figure.cap()
            && let Some(least) = (0..picked.len()).min_by_key(|&i| (picked[i].0, picked[i].1))
        {
            picked.swap_remove(least);
        }
    }
}

/// Seconds from the window's start to `t` (negative before it).
fn seconds_into(w: Window, t: Timestamp) -> f64 {
    (t.micros() as f64 - w.start.micros() as f64) / 1e6
}

/// A flow's throughput per bin (bit/s) within the window, towards the client or from it.
fn rate_points(f: &FlowReport, w: Window, up: bool) -> Vec<Point> {
    let Some(t) = f.throughput.as_ref().filter(|t| t.bin_ms > 0.0) else { return Vec::new() };
    let (bin_s, start) = (t.bin_ms / 1000.0, seconds_into(w, t.start));
    let length_s = seconds_into(w, w.end);
    let bins = if up { &t.up_bytes } else { &t.down_bytes };
    let points = bins
        .iter()
        .enumerate()
        .map(|(i, b)| (start + (i as f64 + 0.5) * bin_s, f64::from(*b) * 8.0 / bin_s, 0.0));
    points.filter(|p| (0.0..=length_s).contains(&p.0)).collect()
}

/// The y unit of rates up to `top` bit/s, and what it divides by.
fn rate_unit(top: f64) -> (&'static str, f64) {
    if top >= 1e6 { ("Mbit/s", 1e6) } else { ("kbit/s", 1e3) }
}

fn number(evidence: &Value, key: &str) -> Option<f64> {
    evidence.get(key).and_then(Value::as_f64)
}

fn count(evidence: &Value, key: &str) -> f64 {
    number(evidence, key).unwrap_or(0.0)
}

/// "6 of 14": what a group shows of its candidates.
fn shown(picked: usize, of: usize) -> String {
    if picked < of { format!("{picked} of {of}") } else { of.to_string() }
}

/// What a figure is drawn from: the verdict, its window and its length in seconds, and
/// the flows picked for it as the report shows them, with what they are of how many.
struct Drawn<'a> {
    v: &'a Verdict,
    w: Window,
    length_s: f64,
    service: &'a str,
    targets: Vec<FlowReport>,
    controls: Vec<FlowReport>,
    counts: String,
    candidates: [usize; 2],
}

/// The x axis of plots over the window.
const X_LABEL: &str = "seconds into the window";

/// Throughput of the service's and the control connections towards the client, with a
/// policer's or shaper's rate; for shaping, the round trips beside it.
fn throughput(d: &Drawn, plots: &mut Vec<Plot>) -> String {
    let &Drawn { v, w, length_s, service, ref targets, ref controls, ref counts, .. } = d;
    let mut p = Plot {
        title: format!("{service}: throughput over time"),
        x_label: X_LABEL,
        x_max: length_s,
        log: true,
        ..Plot::default()
    };
    for (group, look) in [(targets, Look::Target), (controls, Look::Control)] {
        for f in group {
            p.add(look, Mark::Line, rate_points(f, w, false));
        }
    }
    let rate = match v.mechanism {
        Some(Mechanism::Policing) => number(&v.evidence, "rate_bps").map(|r| ("policer rate", r)),
        Some(Mechanism::Shaping) => number(&v.evidence, "plateau_bps").map(|r| ("shaped to", r)),
        _ => None,
    };
    if let Some((what, bps)) = rate {
        p.refs.push((bps, format!("{what} {}", rate_text(bps))));
    }
    let (unit, by) = rate_unit(p.y_values().fold(0.0, f64::max));
    p.scale(by);
    p.y_label = format!("towards the client ({unit}, log)");
    p.keys = vec![
        (Look::Target, Mark::Line, format!("{service} connections")),
        (Look::Control, Mark::Line, "control connections".into()),
    ];
    plots.push(p);
    if v.mechanism == Some(Mechanism::Shaping) {
        let mut p = Plot {
            title: format!("{service}: round trips per connection"),
            x_label: "connection start, seconds into the window",
            x_max: length_s,
            y_label: "round trip to the server (ms)".into(),
            ..Plot::default()
        };
        for (group, look) in [(targets, Look::Target), (controls, Look::Control)] {
            let bars = group.iter().filter_map(|f| {
                let r = &f.tcp.as_ref()?.rtt_external;
                let (lo, hi) = (f64::from(r.min_us?) / 1e3, f64::from(r.max_us?) / 1e3);
                Some((seconds_into(w, f.start).max(0.0), hi, lo))
            });
            p.add(look, Mark::Bar, bars.collect());
        }
        p.keys = vec![
            (Look::Target, Mark::Bar, format!("{service}: least to most")),
            (Look::Control, Mark::Bar, "control: least to most".into()),
        ];
        plots.push(p);
    }
    let unbinned = targets.iter().chain(controls).filter(|f| f.throughput.is_none()).count();
    format!(
        "Throughput towards the client of each connection, per bin of the report's \
         throughput series: {counts} (the ones the verdict names, then the largest){}{}.",
        if unbinned > 0 {
            format!(", {unbinned} of them without bins (no detail slot: not drawn)")
        } else {
            String::new()
        },
        if v.mechanism == Some(Mechanism::Shaping) {
            "; below, each connection's round trip from its least to its most: a \
             shaper's queue makes it grow"
        } else {
            ""
        }
    )
}

/// The bytes each connection got from the server (of its sequence space, as the stall
/// detector counts them), at the time it ended.
fn stall(d: &Drawn, plots: &mut Vec<Plot>) -> String {
    let &Drawn { v, w, length_s, service, ref targets, ref controls, ref counts, .. } = d;
    let mut p = Plot {
        title: format!("{service}: server bytes per connection"),
        x_label: "connection end, seconds into the window",
        x_max: length_s,
        y_label: "bytes from the server (kB, log)".into(),
        log: true,
        ..Plot::default()
    };
    for (group, look) in [(targets, Look::Target), (controls, Look::Control)] {
        let dots = group.iter().map(|f| {
            let bytes = f.tcp.as_ref().map_or(f.bytes_down, |t| t.down.goodput_bytes);
            (seconds_into(w, f.end).clamp(0.0, length_s), bytes as f64 / 1e3, 0.0)
        });
        p.add(look, Mark::Dot, dots.collect());
    }
    let stopped = v.evidence.get("server_bytes_when_stopped").and_then(Value::as_array);
    let stopped: Vec<f64> = stopped.into_iter().flatten().filter_map(Value::as_f64).collect();
    if !stopped.is_empty() {
        let mean = stopped.iter().sum::<f64>() / stopped.len() as f64;
        p.refs
            .push((mean / 1e3, format!("stalled ones stopped at ~{} (mean)", bytes(mean as u64))));
    }
    p.keys = vec![
        (Look::Target, Mark::Dot, format!("{service} connections")),
        (Look::Control, Mark::Dot, "control connections".into()),
    ];
    plots.push(p);
    format!(
        "Bytes each connection got from the server (of its sequence space), at the time it \
         ended: {counts}. Connections that froze at the same count line up."
    )
}

/// Each RST at its time, how soon after the client's packet, beside the round trip.
fn resets(d: &Drawn, plots: &mut Vec<Plot>) -> String {
    let &Drawn { v, w, length_s, service, ref targets, candidates, .. } = d;
    let mut p = Plot {
        title: format!("{service}: resets against the round trip"),
        x_label: "time of the RST, seconds into the window",
        x_max: length_s,
        y_label: "milliseconds".into(),
        ..Plot::default()
    };
    let (mut rsts, mut rtts) = (Vec::new(), Vec::new());
    for row in v.evidence.get("rsts").and_then(Value::as_array).into_iter().flatten() {
        let id = row.get("flow").and_then(Value::as_u64);
        let Some(t) = targets.iter().find(|f| Some(f.id) == id).and_then(|f| f.tcp.as_ref()) else {
            continue;
        };
        let Some(at) = t.down.rst.as_ref().map(|r| seconds_into(w, r.at).clamp(0.0, length_s))
        else {
            continue;
        };
        let rtt = [t.handshake.external_rtt_us, t.rtt_external.min_us.map(u64::from)]
            .into_iter()
            .flatten()
            .min();
        if let Some(rtt) = rtt {
            rtts.push((at, rtt as f64 / 1e3, 0.0));
        }
        if let Some(ms) = number(row, "ms_after_client_packet") {
            rsts.push((at, ms, 0.0));
        }
    }
    p.add(Look::Other, Mark::Bar, rtts);
    p.add(Look::Target, Mark::Dot, rsts);
    p.keys = vec![
        (Look::Other, Mark::Bar, "round trip to the server: the soonest it could answer".into()),
        (Look::Target, Mark::Dot, "RST, ms after the client's packet".into()),
    ];
    plots.push(p);
    format!(
        "Each RST of the {} reset {service} connection(s), at its time, how soon after \
         the client's last packet it came, beside the round trip to the server: an RST \
         faster than the round trip was not sent by the server. Control: {} of {} \
         connections reset.",
        shown(targets.len(), candidates[0]),
        count(&v.evidence, "control_reset_flows"),
        count(&v.evidence, "control_tcp_flows"),
    )
}

/// Answered and unanswered attempts per kind, the service's beside the control's.
fn blocking(d: &Drawn, plots: &mut Vec<Plot>) -> String {
    let &Drawn { v, service, .. } = d;
    let mut p = Plot {
        title: format!("{service}: attempts answered and unanswered"),
        x_label: "kind of attempt, the service's and the control's",
        y_label: "attempts".into(),
        ..Plot::default()
    };
    let e = &v.evidence;
    let mut rows: Vec<(String, f64, f64, f64, f64)> = Vec::new();
    for (kind, k) in e.get("by_kind").and_then(Value::as_object).into_iter().flatten() {
        rows.push((
            kind.clone(),
            count(k, "attempts"),
            count(k, "unanswered"),
            count(k, "control_attempts"),
            count(k, "control_unanswered"),
        ));
    }
    rows.push((
        "stun requests".into(),
        count(e, "stun_requests"),
        count(e, "stun_requests_unanswered"),
        count(e, "control_stun_requests"),
        count(e, "control_stun_requests_unanswered"),
    ));
    let (mut answered, mut unanswered) = (Vec::new(), Vec::new());
    for (kind, a, u, ca, cu) in rows.into_iter().filter(|r| r.1 + r.3 > 0.0) {
        for (who, all, lost) in [(service, a, u), ("control", ca, cu)] {
            let x = p.categories.len() as f64 + 0.5;
            p.categories.push(format!("{kind}: {who}"));
            if all > lost {
                answered.push((x, all - lost, 0.0));
            }
            if lost > 0.0 {
                unanswered.push((x, all, all - lost));
            }
        }
    }
    p.add(Look::Other, Mark::Bar, answered);
    p.add(Look::Target, Mark::Bar, unanswered);
    p.keys = vec![
        (Look::Other, Mark::Bar, "answered".into()),
        (Look::Target, Mark::Bar, "never answered".into()),
    ];
    plots.push(p);
    "Connection attempts and STUN requests of the window, the service's beside the control's, each split into those answered and those never answered.".into()
}

/// The first degraded call's media both ways, a control call's beside it.
fn call(d: &Drawn, plots: &mut Vec<Plot>) -> String {
    let &Drawn { v, w, length_s, service, ref targets, ref controls, .. } = d;
    let mut p = Plot {
        title: format!("{service}: a call's media both ways"),
        x_label: X_LABEL,
        x_max: length_s,
        ..Plot::default()
    };
    for f in targets {
        p.add(Look::Target, Mark::Line, rate_points(f, w, false));
        p.add(Look::Other, Mark::Line, rate_points(f, w, true));
    }
    for f in controls {
        p.add(Look::Control, Mark::Line, rate_points(f, w, false));
    }
    let (unit, by) = rate_unit(p.y_values().fold(0.0, f64::max));
    p.scale(by);
    p.y_label = format!("media ({unit})");
    p.keys = vec![
        (Look::Target, Mark::Line, "towards the client".into()),
        (Look::Other, Mark::Line, "from the client".into()),
        (Look::Control, Mark::Line, "control call, towards the client".into()),
    ];
    plots.push(p);
    // The evidence's row of the call drawn: loss, silence, or what a one-way call sent.
    let drawn = targets.first().map(|f| f.id);
    let rows = ["calls", "one_way_calls"].into_iter().filter_map(|k| v.evidence.get(k));
    let mut rows = rows.filter_map(Value::as_array).flatten();
    let row = rows.find(|r| r.get("flow").and_then(Value::as_u64) == drawn);
    let mut text = String::from(
        "The call's media per bin, towards the client and from it, beside a control call's",
    );
    if let Some(loss) = row.and_then(|c| number(c, "loss")) {
        text.push_str(&format!(
            "; loss towards the client {:.1} % (control calls {:.1} %)",
            loss * 100.0,
            count(&v.evidence, "control_loss") * 100.0
        ));
    }
    if let Some(s) = row.and_then(|c| c.get("silence")).filter(|s| !s.is_null()) {
        text.push_str(&format!(
            "; silence {} for {:.1} s",
            s.get("direction").and_then(Value::as_str).unwrap_or("?"),
            count(s, "seconds")
        ));
    }
    if let Some(sent) = row.and_then(|c| number(c, "client_packets")) {
        text.push_str(&format!(
            "; the client sent {sent} packets, {} came back",
            count(row.unwrap_or(&Value::Null), "packets_back")
        ));
    }
    if d.candidates[0] > 1 {
        text.push_str(&format!("; one of {} degraded calls, the largest", d.candidates[0]));
    }
    text.push('.');
    text
}

/// The figure of a verdict: its plots, and a caption that says what they show and leave out;
/// a note in its place when the report holds nothing to draw.
fn figure(out: &mut dyn Write, pick: &Pick, n: usize, report: &Report) -> io::Result<()> {
    let v = pick.verdict;
    let catalogue = report.flows.analysis.classifier.catalogue();
    let [targets, controls] = pick.flows.each_ref().map(|g| {
        g.iter()
            .map(|(_, _, f)| FlowReport::build(f, |s| catalogue.service(s).id.clone()))
            .collect::<Vec<_>>()
    });
    let counts = format!(
        "{} {} connection(s) and {} control connection(s)",
        shown(targets.len(), pick.candidates[0]),
        v.service,
        shown(controls.len(), pick.candidates[1])
    );
    let d = Drawn {
        v,
        w: v.window,
        length_s: seconds_into(v.window, v.window.end),
        service: &v.service,
        targets,
        controls,
        counts,
        candidates: pick.candidates,
    };
    let mut plots = Vec::new();
    let caption = match pick.figure {
        Figure::Throughput => throughput(&d, &mut plots),
        Figure::Stall => stall(&d, &mut plots),
        Figure::Resets => resets(&d, &mut plots),
        Figure::Blocking => blocking(&d, &mut plots),
        Figure::Call => call(&d, &mut plots),
    };
    if plots.iter().all(Plot::is_empty) {
        return writeln!(
            out,
            "<p id=\"fig-{n}\" class=\"mu\">No plot for {}: the report holds no series for \
             its flows (throughput bins are kept for flows with a detail slot).</p>",
            Esc(&human::head(v))
        );
    }
    writeln!(
        out,
        "<figure id=\"fig-{n}\" data-finding=\"{}\"><figcaption><b>{}</b><br>{}</figcaption>",
        v.finding,
        Esc(&human::head(v)),
        Esc(&caption)
    )?;
    for p in plots.iter().filter(|p| !p.is_empty()) {
        svg(out, p)?;
    }
    writeln!(out, "</figure>")
}

/// Write the report as one HTML page.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let s = &report.summary;
    let name = s.inputs.first().map_or("", |i| i.path.as_str());
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta \
         name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>throttlewatch: \
         {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>",
        Esc(name),
        Esc(&human::title(s))
    )?;
    if let Some(span) = human::span(s) {
        writeln!(out, "<p>{}</p>", Esc(&span))?;
    }
    for i in s.inputs.iter() {
        writeln!(out, "<p>file: {}</p>", Esc(&i.path))?;
        if let Some(e) = &i.error {
            writeln!(out, "<p class=\"err\">ERROR: {}</p>", Esc(e))?;
        }
    }
    // The verdicts that get a figure, in report order: every finding, the others while there
    // is room (at most MAX_FIGURES in all).
    let findings = report.verdicts.iter().filter(|v| v.is_finding()).count();
    let mut room = MAX_FIGURES.saturating_sub(findings);
    let mut picks: Vec<Pick> = Vec::new();
    for v in &report.verdicts {
        if !v.is_finding() {
            if room == 0 {
                continue;
            }
            room -= 1;
        }
        if picks.len() < MAX_FIGURES {
            picks.push(Pick::new(v));
        }
    }
    let catalogue = report.flows.analysis.classifier.catalogue();
    for f in &report.flows.analysis.flows {
        let service = f.class.service.map_or("", |s| catalogue.service(s).id.as_str());
        for p in &mut picks {
            p.offer(f, service);
        }
    }

    writeln!(out, "<h2>Answer</h2>")?;
    if report.verdicts.is_empty() {
        writeln!(out, "<p>{}</p>", Esc(&human::nothing_to_judge(report)))?;
    }
    let first = report.verdicts.first().map(|v| v.window);
    let windows = report.verdicts.iter().any(|v| Some(v.window) != first);
    for v in &report.verdicts {
        let class = if v.is_finding() { "v found" } else { "v" };
        writeln!(out, "<div class=\"{class}\"><h3>{}</h3>", Esc(&human::head(v)))?;
        if windows {
            writeln!(out, "<p class=\"mu\">window {} to {}</p>", v.window.start, v.window.end)?;
        }
        writeln!(out, "<p>{}</p>", Esc(human::plain(v)))?;
        let next = v.next_step.advice();
        if !next.is_empty() {
            writeln!(out, "<p class=\"mu\">next: {}</p>", Esc(next))?;
        }
        if let Some(n) = picks.iter().position(|p| std::ptr::eq(p.verdict, v)) {
            writeln!(out, "<p><a href=\"#fig-{}\">evidence</a></p>", n + 1)?;
        }
        writeln!(out, "</div>")?;
    }

    writeln!(out, "<h2>What was read</h2>\n<ul>")?;
    for line in human::what_was_read(s) {
        writeln!(out, "<li>{}</li>", Esc(&line))?;
    }
    writeln!(out, "</ul>")?;

    if !picks.is_empty() {
        writeln!(out, "<h2>Evidence</h2>")?;
    }
    for (n, p) in picks.iter().enumerate() {
        figure(out, p, n + 1, report)?;
    }
    if report.verdicts.len() > picks.len() {
        writeln!(
            out,
            "<p class=\"mu\">{} more verdicts have no figure here (at most {MAX_FIGURES}, findings first); --format json has every verdict's evidence.</p>",
            report.verdicts.len() - picks.len()
        )?;
    }

    writeln!(out, "<h2>Services</h2>\n<table>\n<tr>")?;
    for c in human::GROUP_COLUMNS {
        write!(out, "<th>{c}</th>")?;
    }
    for g in s.services.iter().chain(std::iter::once(&s.control)) {
        write!(out, "</tr>\n<tr>")?;
        for (i, c) in human::group_cells(g).iter().enumerate() {
            write!(out, "<td{}>{}</td>", if i == 0 { " class=\"s\"" } else { "" }, Esc(c))?;
        }
    }
    writeln!(out, "</tr>\n</table>\n<p class=\"mu\">{}</p>", Esc(human::SERVICE_LEGEND))?;

    writeln!(out, "<h2>Messenger flows ({})</h2>", s.flows.target)?;
    if s.flows.target > 0 {
        write!(out, "<table>\n<tr>")?;
        for c in [
            "ID", "PROTO", "CLIENT", "SERVER", "SERVICE", "BY", "UP", "DOWN", "TIME", "RTT",
            "RESENT", "END", "NOTES",
        ] {
            write!(out, "<th>{c}</th>")?;
        }
        for f in report.flows.iter().filter(|f| f.role == "target").take(MAX_FLOW_ROWS) {
            let (rtt, resent) = human::rtt_and_resent(&f);
            write!(out, "</tr>\n<tr>")?;
            let cells = [
                f.id.to_string(),
                f.proto.into(),
                f.client.clone(),
                f.server.clone(),
                f.service.clone().unwrap_or_else(|| "-".into()),
                f.service_by.into(),
                bytes(f.bytes_up),
                bytes(f.bytes_down),
                format!("{:.1} s", f.duration_s),
                rtt,
                resent,
                f.end_reason.into(),
                human::notes(&f).join("; "),
            ];
            for (i, c) in cells.iter().enumerate() {
                let class = if matches!(i, 1..=5 | 11 | 12) { " class=\"s\"" } else { "" };
                write!(out, "<td{class}>{}</td>", Esc(c))?;
            }
        }
        writeln!(out, "</tr>\n</table>")?;
        if s.flows.target > MAX_FLOW_ROWS {
            writeln!(
                out,
                "<p class=\"mu\">… {} more messenger flows not listed (at most {MAX_FLOW_ROWS}); --format json gives every flow.</p>",
                s.flows.target - MAX_FLOW_ROWS
            )?;
        }
        writeln!(
            out,
            "<p class=\"mu\">{} {}</p>",
            Esc(human::FLOW_LEGEND),
            Esc(human::WIDE_FLOW_LEGEND)
        )?;
    }
    writeln!(out, "</body>\n</html>")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::analyze::{AnalyzeInput, run};
    use crate::classify::{Catalogue, CatalogueFile};
    use crate::config::{DetectConfig, PipelineConfig};
    use crate::detect::synthetic::{CTL, MSG, Rng, Sim};
    use crate::report::InputReport;

    fn page(report: &Report) -> String {
        let mut out = Vec::new();
        write(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The page of a lab sample, analysed with the lab's catalogue; `edit` may change the
    /// report first.
    fn lab_page(sample: &str, edit: impl FnOnce(&mut Report)) -> String {
        lab_page_with(sample, PipelineConfig::default(), edit)
    }

    fn lab_page_with(
        sample: &str,
        config: PipelineConfig,
        edit: impl FnOnce(&mut Report),
    ) -> String {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = run(AnalyzeInput {
            files: vec![root.join(format!("samples/lab/{sample}.pcap"))],
            config,
            catalogue: Catalogue::from_file(&root.join("samples/lab-services.toml")).unwrap(),
            detect: DetectConfig::default(),
            window_origin: None,
            history: None,
            progress: false,
            jobs: 1,
        });
        let mut report = Report::build(&out.analysis, out.inputs.clone(), out.verdicts.clone());
        edit(&mut report);
        page(&report)
    }

    /// The figure of the verdict with this finding (its whole element).
    fn figure_of<'a>(page: &'a str, finding: &str) -> &'a str {
        let at = page
            .find(&format!("data-finding=\"{finding}\""))
            .unwrap_or_else(|| panic!("no figure for {finding}:\n{page}"));
        &page[at..at + page[at..].find("</figure>").unwrap()]
    }

    #[test]
    fn every_special_and_forbidden_character_is_escaped() {
        let text = Esc("a&b<c>d\"e'f\u{1}g\u{7f}h\u{fffe}i\u{fdd0}j\nk").to_string();
        assert_eq!(text, "a&amp;b&lt;c&gt;d&quot;e&#39;f\u{fffd}g\u{fffd}h\u{fffd}i\u{fffd}j k");
    }

    #[test]
    fn text_from_packets_and_files_is_escaped() {
        let hostile = "<img src=x onerror=alert(1)>&\"'";
        let page = lab_page("police-128k", |r| {
            r.summary.inputs[0].path = format!("{hostile}.pcap");
            r.summary.inputs.push(InputReport {
                path: hostile.into(),
                format: None,
                link_type: None,
                packets: 0,
                error: Some(format!("cannot open {hostile}")),
            });
            for v in &mut r.verdicts {
                v.summary = format!("{}: {hostile}", v.service);
                v.service = hostile.into();
            }
        });
        assert!(!page.contains("<img"), "{page}");
        let escaped = "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;";
        // The title, the file, the error, the verdict's head (answer and figure), its words.
        assert!(page.matches(escaped).count() >= 6, "{page}");
        assert!(page.contains(&format!("<title>throttlewatch: {escaped}.pcap</title>")));
        assert!(page.contains(&format!("ERROR: cannot open {escaped}")), "{page}");
    }

    #[test]
    fn each_finding_draws_its_evidence() {
        for (sample, finding, needles) in [
            (
                "police-128k",
                "throttled",
                &["policer rate ~124 kbit/s", "towards the client (Mbit/s, log)", "<polyline"][..],
            ),
            (
                "shape-1m",
                "throttled",
                &["shaped to ~986 kbit/s", "round trip to the server (ms)", "<rect class=\"b t\""],
            ),
            ("shape-1m", "call_degraded", &["loss towards the client 9.7 %", "media (kbit/s)"]),
            (
                "freeze-16k",
                "stalled",
                &["stopped at ~14.7 kB", "(kB, log)", "<circle class=\"d t\""],
            ),
            (
                "rst-midflow",
                "reset",
                &["soonest it could answer", "RST, ms after", "Control: 0 of 8"],
            ),
            (
                "blackhole",
                "blocked",
                &[">tcp<tspan", ">msg</tspan>", ">control</tspan>", "never answered"],
            ),
            ("call-loss", "call_degraded", &["loss towards the client 19.0 %", "from the client"]),
            ("oneway-cut", "call_degraded", &["silence towards the client for 4.5 s"]),
            ("clean", "none", &["towards the client (Mbit/s, log)", "<rect class=\"d c\""]),
        ] {
            let page = lab_page(sample, |_| ());
            let figure = figure_of(&page, finding);
            assert!(figure.contains("<svg"), "{sample}: {figure}");
            for needle in needles {
                assert!(figure.contains(needle), "{sample} {finding}: no {needle:?} in\n{figure}");
            }
            // The words come first, the figures after them, the tables last.
            let at = |s: &str| page.find(s).unwrap_or_else(|| panic!("{sample}: no {s}"));
            assert!(at("<h2>Answer</h2>") < at("<h2>What was read</h2>"), "{sample}");
            assert!(at("<h2>What was read</h2>") < at("<h2>Evidence</h2>"), "{sample}");
            assert!(at("<h2>Evidence</h2>") < at("<h2>Services</h2>"), "{sample}");
            assert!(!page.contains("<script") && !page.contains("://"), "{sample}");
        }
    }

    #[test]
    fn flows_without_bins_get_a_note_in_place_of_an_empty_plot() {
        let config = PipelineConfig { detail_flows: 0, ..PipelineConfig::default() };
        let page = lab_page_with("call-loss", config, |_| ());
        assert!(!page.contains("<figure"), "{page}");
        assert!(page.contains("<a href=\"#fig-1\">evidence</a>"), "{page}");
        assert!(page.contains("<p id=\"fig-1\" class=\"mu\">No plot for msg: CALLS DEGRADED"));
    }

    #[test]
    fn a_trace_of_many_flows_and_windows_gives_a_bounded_page() {
        let mut sim = Sim::default();
        let mut rng = Rng::new(7);
        for server in [MSG, CTL] {
            sim.downloads(server, (0, 150, 1_200), 30, (20_000, 2e6, 0.0), &mut rng);
        }
        let cfg = DetectConfig { window_s: 10, ..DetectConfig::default() };
        let (analysis, verdicts) = sim.analysis(&cfg);
        assert!(verdicts.len() > MAX_FIGURES, "{} verdicts", verdicts.len());
        let report = Report::build(&analysis, Vec::new(), verdicts);
        let page = page(&report);
        assert!(page.len() < 300_000, "{} bytes", page.len());
        let figures: Vec<&str> = page.split("<figure").skip(1).collect();
        assert_eq!(figures.len(), MAX_FIGURES);
        for f in &figures {
            assert!(f.matches("<polyline").count() <= 2 * MAX_LINES, "{f}");
        }
        assert!(page.contains(&format!(
            "{} more verdicts have no figure here",
            report.verdicts.len() - MAX_FIGURES
        )));
        assert!(page.contains("6 of "), "a figure says what it left out");
        assert_eq!(page.matches("<tr>").count(), 1 + 2 + 1 + MAX_FLOW_ROWS);
        assert!(
            page.contains(&format!("… {} more messenger flows not listed", 1_200 - MAX_FLOW_ROWS))
        );
    }
}
