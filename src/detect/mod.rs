//! The statistics stage (docs/detectors.md). Finished flows are grouped into windows on packet
//! time; in each window every detector compares a service's target flows with the comparable
//! control flows of the same window and answers with a finding and its evidence, with
//! `inconclusive` and the reason when the data cannot carry a decision, or with nothing when it
//! has no flows of its kind. The answers of one service in one window become its verdicts: one
//! per finding, else one `inconclusive` (with every reason) or one `none`.
//!
//! Input: finished flows (measurements and roles final, or as far as a daemon's window got). Output: [`Verdict`]s, in window
//! order, services in catalogue order. Work is linear in the number of flows: only windows in
//! which flows start are evaluated. Thresholds: [`DetectConfig`], defaults from the
//! literature. Nothing here looks at addresses beyond grouping by service and network.

mod blocking;
mod call;
mod doubt;
mod facts;
pub mod history;
mod loss;
mod policing;
mod recent;
mod resets;
mod stall;
pub mod stats;
#[cfg(test)]
pub(crate) mod synthetic;
mod throughput;

use serde::Serialize;
use serde_json::{Value, json};

use crate::classify::{Catalogue, Role, ServiceId};
use crate::config::DetectConfig;
use crate::pipeline::FinishedFlow;
use crate::time::Timestamp;

pub(crate) use doubt::{Detector, Doubt};
use facts::Facts;
use history::History;
pub use recent::Recent;

/// What a verdict says about a service in a window (docs/report.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    Throttled,
    Reset,
    Stalled,
    Blocked,
    CallDegraded,
    /// The data could not carry a decision; the evidence says why.
    Inconclusive,
    /// Looked, and found no sign of interference.
    None,
}

impl Finding {
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Throttled => "throttled",
            Finding::Reset => "reset",
            Finding::Stalled => "stalled",
            Finding::Blocked => "blocked",
            Finding::CallDegraded => "call_degraded",
            Finding::Inconclusive => "inconclusive",
            Finding::None => "none",
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the interference was done, where the evidence shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// A token bucket dropping what exceeds a rate.
    Policing,
    /// A queue holding traffic to a rate.
    Shaping,
    /// A share of the packets dropped at random, no fixed rate.
    RandomLoss,
    /// Forged TCP resets.
    RstInjection,
    /// The server's data stops after a byte count.
    Freeze,
    /// Packets silently dropped.
    Drop,
    /// Attempts refused in the server's place: a TCP RST for the SYN, or an ICMP
    /// destination-unreachable error.
    Reject,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Policing => "policing",
            Mechanism::Shaping => "shaping",
            Mechanism::RandomLoss => "random_loss",
            Mechanism::RstInjection => "rst_injection",
            Mechanism::Freeze => "freeze",
            Mechanism::Drop => "drop",
            Mechanism::Reject => "reject",
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the person who ran the analysis can do next, by what the verdict rests on (the
/// terminal report's "next" line; `next_step` in the JSON; docs/detectors.md says more per
/// reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Nothing to do: no sign of interference.
    Nothing,
    /// A finding: keep the trace, and see whether it follows the service elsewhere.
    KeepEvidence,
    /// Too little of the service to judge: use it while capturing.
    UseTheService,
    /// Nothing ordinary of the same kind to compare with: run some beside the service.
    AddControl,
    /// Transfers too short or too few: capture more of them.
    CaptureLonger,
    /// Other traffic may be the cause: capture with the line otherwise idle.
    IdleLine,
    /// Everything fails alike: the line, the router or an allowlist.
    CheckThePath,
}

impl NextStep {
    /// One sentence for a person.
    pub fn advice(self) -> &'static str {
        match self {
            NextStep::Nothing => "",
            NextStep::KeepEvidence => {
                "keep this trace as evidence (--format json has every measurement); capture \
                 again at another time, or over another network or a VPN, to see whether it \
                 follows the service"
            }
            NextStep::UseTheService => {
                "use the service while capturing: send a photo, load a video, place a call"
            }
            NextStep::AddControl => {
                "run ordinary traffic of the same kind beside the service (a download from a \
                 fast site, other HTTPS sites, a call with another app) and capture again"
            }
            NextStep::CaptureLonger => {
                "capture longer, with bigger or more transfers from the service (a video, a \
                 large file)"
            }
            NextStep::IdleLine => "capture again with the line otherwise idle",
            NextStep::CheckThePath => {
                "everything fails alike: check the line and the router (firewall, NAT, flow \
                 offloading), whether only domestic sites work, and try another network"
            }
        }
    }
}

/// One finding about one service in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub service: String,
    pub window: Window,
    pub finding: Finding,
    /// Where known.
    pub mechanism: Option<Mechanism>,
    /// 0–1.
    pub confidence: f64,
    pub evidence: serde_json::Value,
    /// Flow ids the verdict rests on.
    pub flows: Vec<u64>,
    /// One line a person reads, e.g. "msg: downloads policed at ~128 kbit/s (3 flows)".
    pub summary: String,
    pub next_step: NextStep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Verdict {
    /// Findings other than `none` and `inconclusive` make `--fail-on-finding` exit 3.
    pub fn is_finding(&self) -> bool {
        !matches!(self.finding, Finding::None | Finding::Inconclusive)
    }
}

/// What one detector concluded about one service in one window.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// No target flows of the kind this detector looks at.
    NotApplicable,
    /// Looked, found nothing; the evidence says what was compared.
    Clean {
        detector: Detector,
        evidence: Value,
    },
    /// Cannot decide, and why (the doubt names its detector).
    Inconclusive(Doubt),
    Finding(Detected),
}

/// A detector's finding, before it becomes a [`Verdict`].
#[derive(Debug)]
pub(crate) struct Detected {
    pub finding: Finding,
    pub mechanism: Option<Mechanism>,
    pub confidence: f64,
    pub evidence: Value,
    pub flows: Vec<u64>,
    /// The summary line without the service prefix.
    pub summary: String,
}

/// The flows of one window, split by role, for one service.
pub(crate) struct Group<'a> {
    pub targets: Vec<Facts<'a>>,
    pub controls: &'a [Facts<'a>],
    /// Services with target flows in this window (Bonferroni).
    pub services_tested: usize,
    pub cfg: &'a DetectConfig,
    /// The window's end: how long a flow still open then has been silent.
    pub end: Timestamp,
    /// The service the targets belong to.
    pub service: ServiceId,
    /// What the latest windows judged (blocking, stalls).
    pub recent: &'a Recent,
}

/// The grid of evaluation windows on packet time, the same for `analyze` and the daemon: windows
/// of `window_s` seconds from an origin (the first packet, or a given time), each cut before
/// the first packet that lies beyond it. Windows without a packet are skipped (a capture
/// clock that jumps by years costs nothing).
#[derive(Debug, Clone)]
pub struct WindowGrid {
    width_us: u64,
    /// The window in progress, from the origin or the first packet on: its end is what every
    /// packet is compared with.
    current: Option<Window>,
}

impl WindowGrid {
    pub fn new(window_s: u64, origin: Option<Timestamp>) -> Self {
        let width_us = window_s.max(1) * 1_000_000;
        WindowGrid { width_us, current: origin.map(|start| Self::starting(start, width_us)) }
    }

    /// The window of `width_us` from `start`.
    fn starting(start: Timestamp, width_us: u64) -> Window {
        Window { start, end: start.add_micros(width_us) }
    }

    /// Before a packet stamped `ts` is measured: the window it closes, if it lies beyond the
    /// current one. The grid then moves on to the window that holds `ts`. A packet stamped
    /// before the origin belongs to the first window. (Inlined even where this crate is
    /// optimised for size, on routers: it runs before every packet.)
    #[inline(always)]
    pub fn due(&mut self, ts: Timestamp) -> Option<Window> {
        let width_us = self.width_us;
        let current = *self.current.get_or_insert_with(|| Self::starting(ts, width_us));
        if ts < current.end {
            return None;
        }
        let skipped = (ts.micros() - current.end.micros()) / width_us;
        self.current = Some(Self::starting(current.end.add_micros(skipped * width_us), width_us));
        Some(current)
    }

    /// The end of the window that holds `ts` (the first window's for a time before the grid's
    /// start), once the grid has a start.
    pub fn end_of(&self, ts: Timestamp) -> Option<Timestamp> {
        let start = self.current?.start;
        let windows = ts.micros().saturating_sub(start.micros()) / self.width_us;
        Some(start.add_micros((windows + 1) * self.width_us))
    }

    /// The window in progress, cut short at `at` (the end of the input, or a stop).
    pub fn last(&self, at: Timestamp) -> Option<Window> {
        let start = self.current?.start;
        Some(Window { start, end: at.max(start) })
    }
}

/// Evaluate one window: every flow given belongs to it (the daemon hands over the flows that
/// finished in the window and those still open at its end). `recent`: what the windows before
/// judged, which this one's then join (pass the same from one window to the next).
pub fn evaluate_window(
    flows: &[&FinishedFlow],
    window: Window,
    catalogue: &Catalogue,
    cfg: &DetectConfig,
    mut history: Option<&mut History>,
    recent: &mut Recent,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    recent.follow(catalogue);
    each_group(flows, window, catalogue, cfg, recent, |id, group| {
        let mut these = verdicts_of(id, window, &run_detectors(group));
        if let Some(h) = history.as_deref_mut() {
            let unix_s = window.start.micros() / 1_000_000;
            let goodputs: Vec<f64> = group
                .targets
                .iter()
                .filter_map(|f| f.bulk_dir(cfg.bulk_min_bytes).and_then(|d| f.goodput_bps(d)))
                .collect();
            if let Some(baseline) = h.baseline(id, unix_s) {
                let now = stats::median(&goodputs).map(|b| (b / 1000.0).round());
                for v in &mut these {
                    v.evidence["history"] = json!({ "baseline": baseline, "now_p50_kbps": now });
                }
            }
            for g in goodputs {
                h.record(id, unix_s, g);
            }
        }
        verdicts.extend(these);
    });
    recent.remember(flows, &verdicts, window, cfg);
    verdicts
}

/// What every detector answered about each service of the window (by service id), as
/// [`evaluate_window`] turns it into verdicts: for tests that look at the typed answers.
#[cfg(test)]
fn window_outcomes(
    flows: &[&FinishedFlow],
    window: Window,
    catalogue: &Catalogue,
    cfg: &DetectConfig,
    recent: &Recent,
) -> Vec<(String, Vec<Outcome>)> {
    let mut outcomes = Vec::new();
    each_group(flows, window, catalogue, cfg, recent, |id, group| {
        outcomes.push((id.to_string(), run_detectors(group)));
    });
    outcomes
}

/// Each service with flows in the window (catalogue order), its id and its [`Group`].
fn each_group(
    flows: &[&FinishedFlow],
    window: Window,
    catalogue: &Catalogue,
    cfg: &DetectConfig,
    recent: &Recent,
    mut visit: impl FnMut(&str, &Group),
) {
    let controls: Vec<Facts> =
        flows.iter().filter(|f| f.role == Role::Control).map(|f| Facts::new(f, window)).collect();
    let services: Vec<ServiceId> = (0..catalogue.services().len() as ServiceId)
        .filter(|sid| flows.iter().any(|f| f.class.service == Some(*sid)))
        .collect();
    for &sid in &services {
        let group = Group {
            targets: flows
                .iter()
                .filter(|f| f.class.service == Some(sid))
                .map(|f| Facts::new(f, window))
                .collect(),
            controls: &controls,
            services_tested: services.len(),
            cfg,
            end: window.end,
            service: sid,
            recent,
        };
        visit(&catalogue.service(sid).id, &group);
    }
}

fn run_detectors(group: &Group) -> Vec<Outcome> {
    vec![
        // Where several find `throttled`, the first named mechanism leads the verdict: a
        // policer's or a shaper's drops also look random.
        policing::detect(group),
        throughput::shaping(group),
        loss::detect(group),
        throughput::differentiation(group),
        resets::detect(group),
        stall::detect(group),
        blocking::detect(group),
        call::detect(group),
    ]
}

/// One verdict per finding; else one `inconclusive` with the reasons, else one `none`.
fn verdicts_of(service: &str, window: Window, outcomes: &[Outcome]) -> Vec<Verdict> {
    let verdict = |finding, mechanism, confidence, evidence, flows, summary, next_step| Verdict {
        service: service.to_string(),
        window,
        finding,
        mechanism,
        confidence,
        evidence,
        flows,
        summary: format!("{service}: {summary}"),
        next_step,
    };
    let findings: Vec<Verdict> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Finding(f) => Some(verdict(
                f.finding,
                f.mechanism,
                f.confidence,
                f.evidence.clone(),
                f.flows.clone(),
                f.summary.clone(),
                NextStep::KeepEvidence,
            )),
            _ => None,
        })
        .collect();
    if !findings.is_empty() {
        return merge_same_findings(findings);
    }
    // Maps filled by insertion: collecting into one would bring a sort into the binary.
    let mut checked = serde_json::Map::new();
    for o in outcomes {
        if let Outcome::Clean { detector, evidence } = o {
            checked.insert(detector.as_str().to_string(), evidence.clone());
        }
    }
    let doubts = doubts(outcomes);
    // The reason the summary names: the first key (the map is ordered by key); nothing
    // judged stands alone and has no checks beside it.
    if let Some(first) = doubts.iter().min_by_key(|d| d.key()) {
        let mut reasons = serde_json::Map::new();
        for d in &doubts {
            reasons.insert(d.key().to_string(), json!(d.to_string()));
        }
        let (evidence, summary) = match doubts[..] {
            [Doubt::NothingJudged] => (json!({ "reasons": reasons }), first.to_string()),
            _ => (
                json!({ "reasons": reasons, "checked": checked }),
                format!("inconclusive: {first}"),
            ),
        };
        let next = first.next_step();
        return vec![verdict(
            Finding::Inconclusive,
            None,
            0.0,
            evidence,
            Vec::new(),
            summary,
            next,
        )];
    }
    let summary = format!("no sign of interference ({} checks)", checked.len());
    let evidence = json!({ "checked": checked });
    vec![verdict(Finding::None, None, 0.0, evidence, Vec::new(), summary, NextStep::Nothing)]
}

/// What keeps the answers from a decision where none found anything: each detector's doubt,
/// or [`Doubt::NothingJudged`] when no detector judged a flow; none when a detector checked and
/// none doubted.
fn doubts(outcomes: &[Outcome]) -> Vec<&Doubt> {
    let doubts: Vec<&Doubt> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Inconclusive(doubt) => Some(doubt),
            _ => None,
        })
        .collect();
    let checked = outcomes.iter().any(|o| matches!(o, Outcome::Clean { .. }));
    if doubts.is_empty() && !checked { vec![&Doubt::NothingJudged] } else { doubts }
}

/// Two detectors may find the same thing (policing and the Wehe test both say `throttled`):
/// one verdict per finding, the one that names a mechanism first, the others' evidence
/// attached as corroboration.
fn merge_same_findings(mut findings: Vec<Verdict>) -> Vec<Verdict> {
    // A "policer" seen on one connection only while many of the service's connections lose
    // packets at random, some of them running ahead of its token line as they lost: a bucket
    // per connection at its rate would have held those back, so one token-line-like
    // connection among them is random loss that happened to follow a line (whatever burst it
    // showed). Where every lossy connection stayed within such a bucket, the policer stands,
    // unless its line has less burst than policers pass and runs at half the controls' pace
    // or more: a steady sender at its path's pace follows a line with next to no burst, and
    // random loss drops along it. (A bucket for all that the others drained leaves a small
    // burst too, far below the controls' pace.)
    let spread_loss = findings.iter().any(|v| {
        v.mechanism == Some(Mechanism::RandomLoss)
            && v.evidence["lossy_connections"].as_u64().unwrap_or(0) >= 3
    });
    // Likewise one connection beside a shaper's queue: a full queue drops too.
    let shaped = findings.iter().any(|v| v.mechanism == Some(Mechanism::Shaping));
    let single_policed = |v: &Verdict| {
        v.mechanism == Some(Mechanism::Policing) && v.evidence["policed_flows"].as_u64() == Some(1)
    };
    let others_beyond = |v: &Verdict| v.evidence["lossy_beyond_bucket"].as_u64() != Some(0);
    let paced_line = |v: &Verdict| {
        let number = |key: &str| v.evidence[key].as_f64().unwrap_or(0.0);
        v.evidence["scope"] != "aggregate"
            && number("burst_bytes") < policing::SMALL_BURST_BYTES
            && number("rate_bps") >= 0.5 * number("control_max_goodput_bps")
    };
    let rank = |v: &Verdict| {
        let random = spread_loss && (others_beyond(v) || paced_line(v));
        (v.mechanism.is_none(), single_policed(v) && (random || shaped))
    };
    // A handful of findings: an insertion sort keeps equal ranks in order without a generic
    // stable sort's code.
    for i in 1..findings.len() {
        let mut j = i;
        while j > 0 && rank(&findings[j - 1]) > rank(&findings[j]) {
            findings.swap(j - 1, j);
            j -= 1;
        }
    }
    // A throttler that drops a connection's data and what is sent again stalls it: stalls
    // that are all of that shape (the server's data undelivered) beside throttling with a
    // mechanism are its evidence, not a finding of their own.
    let throttled =
        findings.iter().any(|v| v.finding == Finding::Throttled && v.mechanism.is_some());
    let merged_as = |v: &Verdict| match v.finding {
        Finding::Stalled
            if throttled
                && v.evidence["server_data_undelivered"] == v.evidence["stalled_flows"] =>
        {
            Finding::Throttled
        }
        other => other,
    };
    let mut merged: Vec<Verdict> = Vec::new();
    for v in findings {
        let finding = merged_as(&v);
        match merged.iter_mut().find(|m| m.finding == finding) {
            Some(m) => {
                m.confidence = m.confidence.max(v.confidence).min(0.99);
                let also = m.evidence.as_object_mut().map(|o| {
                    o.entry("corroborated_by").or_insert_with(|| Value::Array(Vec::new()))
                });
                if let Some(Value::Array(list)) = also {
                    list.push(json!({ "summary": v.summary, "evidence": v.evidence }));
                }
                for id in v.flows {
                    if !m.flows.contains(&id) {
                        m.flows.push(id);
                    }
                }
            }
            None => merged.push(v),
        }
    }
    merged
}

/// `~128 kbit/s`, `~1.5 Mbit/s`.
pub(crate) fn rate_text(bps: f64) -> String {
    if bps >= 1e6 {
        format!("~{:.1} Mbit/s", bps / 1e6)
    } else {
        format!("~{:.0} kbit/s", bps / 1e3)
    }
}

/// `p<1e-6`, `p=0.003`.
pub(crate) fn p_text(p: f64) -> String {
    if p < 1e-6 { "p<1e-6".to_string() } else { format!("p={p:.2e}") }
}

/// At most `n` example flow ids.
pub(crate) fn examples(ids: impl IntoIterator<Item = u64>, n: usize) -> Vec<u64> {
    ids.into_iter().take(n).collect()
}

/// Flows with an event (`hits`) out of the flows that could have shown it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts {
    pub hits: u64,
    pub total: u64,
}

/// The comparison of a target share with the control share of the same event.
pub(crate) enum Comparison {
    /// Too few target events to say anything: nothing to report.
    Nothing,
    /// The target share is significantly higher (one-sided Fisher p, Bonferroni-corrected).
    Higher { p: f64 },
    /// Not significantly higher.
    NotHigher { p: f64 },
    /// Events in at least half the target flows and in no control flow, but too few control
    /// flows for any share to be significant: not "no interference" either.
    TooFewControls { p: f64 },
    /// Events seen, but no control flow that could have shown them.
    NoControl,
}

impl Comparison {
    /// Evidence of another kind (signatures, one threshold shared by many flows) that decides
    /// where too few flows make the share significant.
    pub fn or_decided_by(self, evidence: bool) -> Comparison {
        match self {
            Comparison::NotHigher { p } | Comparison::TooFewControls { p } if evidence => {
                Comparison::Higher { p }
            }
            other => other,
        }
    }
}

pub(crate) fn versus_control(g: &Group, t: Counts, c: Counts) -> Comparison {
    if t.hits < g.cfg.min_affected_flows {
        return Comparison::Nothing;
    }
    if c.total == 0 {
        return Comparison::NoControl;
    }
    match g.judge(stats::fisher_exact_greater(t.hits, t.total, c.hits, c.total)) {
        Comparison::NotHigher { p } if c.hits == 0 && t.hits * 2 >= t.total => {
            Comparison::TooFewControls { p }
        }
        judged => judged,
    }
}

impl Group<'_> {
    /// The significance level: `alpha` is a minute's, which windows shorter than a minute
    /// share in proportion to their length (`window_s`), so that short windows raise no more
    /// false alarms an hour than minute-long ones; then the Bonferroni correction across the
    /// window's services.
    pub fn alpha(&self) -> f64 {
        let minute_share = (self.cfg.window_s as f64 / 60.0).min(1.0);
        self.cfg.alpha * minute_share / self.services_tested.max(1) as f64
    }

    /// The server addresses of the service's TCP connections in the window, sorted, each
    /// once.
    pub fn tcp_server_addresses(&self) -> Vec<std::net::IpAddr> {
        let mut addresses: Vec<std::net::IpAddr> =
            (self.targets.iter()).filter(|f| f.tcp().is_some()).map(|f| f.f.server.addr).collect();
        addresses.sort_unstable();
        addresses.dedup();
        addresses
    }

    /// A p-value against [`Group::alpha`].
    pub fn judge(&self, p: f64) -> Comparison {
        if p < self.alpha() { Comparison::Higher { p } } else { Comparison::NotHigher { p } }
    }
}

/// The outcome of a comparison of shares: clean (with the p-value when there was one),
/// inconclusive without control flows or with too few, or the finding.
pub(crate) fn share_outcome(
    detector: Detector,
    comparison: Comparison,
    evidence: impl Fn(Option<f64>) -> Value,
    no_control: impl FnOnce() -> Doubt,
    finding: impl FnOnce(f64, Value) -> Detected,
) -> Outcome {
    match comparison {
        Comparison::Nothing => Outcome::Clean { detector, evidence: evidence(None) },
        Comparison::NotHigher { p } => Outcome::Clean { detector, evidence: evidence(Some(p)) },
        Comparison::NoControl | Comparison::TooFewControls { .. } => {
            Outcome::Inconclusive(no_control())
        }
        Comparison::Higher { p } => Outcome::Finding(finding(p, evidence(Some(p)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The level of a test: a minute's `alpha`, shared by shorter windows in proportion to
    /// their length, then divided among the window's services.
    #[test]
    fn short_windows_share_a_minutes_level() {
        let level = |window_s: u64, services_tested: usize| {
            let cfg = DetectConfig { window_s, ..DetectConfig::default() };
            let recent = Recent::default();
            let g = Group {
                targets: Vec::new(),
                controls: &[],
                services_tested,
                cfg: &cfg,
                end: Timestamp::from_micros(0),
                service: 0,
                recent: &recent,
            };
            g.alpha()
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(level(60, 1), 0.01));
        assert!(close(level(3_600, 2), 0.005));
        assert!(close(level(5, 1), 0.01 / 12.0));
        assert!(close(level(10, 2), 0.01 / 6.0 / 2.0));
    }

    /// The end of the window that holds a time: on the grid's lines, a window's end is the
    /// next one's start; before the grid's start, the first window's end.
    #[test]
    fn a_time_lies_in_the_window_that_ends_after_it() {
        let s = |secs: u64| Timestamp::from_micros(1_000_000_000 + secs * 1_000_000);
        let grid = WindowGrid::new(10, Some(s(0)));
        for (at, end) in [(0, 10), (9, 10), (10, 20), (25, 30)] {
            assert_eq!(grid.end_of(s(at)), Some(s(end)), "{at} s");
        }
        assert_eq!(grid.end_of(Timestamp::from_micros(0)), Some(s(10)));
        assert_eq!(WindowGrid::new(10, None).end_of(s(5)), None);
    }

    fn window() -> Window {
        Window { start: Timestamp::from_micros(0), end: Timestamp::from_micros(60_000_000) }
    }

    fn finding(finding: Finding, mechanism: Option<Mechanism>, c: f64) -> Outcome {
        Outcome::Finding(Detected {
            finding,
            mechanism,
            confidence: c,
            evidence: json!({ "from": mechanism.map_or("wehe", Mechanism::as_str) }),
            flows: vec![1, 2],
            summary: format!("{finding} by {mechanism:?}"),
        })
    }

    #[test]
    fn one_verdict_per_finding_the_named_mechanism_first() {
        let outcomes = [
            finding(Finding::Throttled, None, 0.99),
            finding(Finding::Throttled, Some(Mechanism::Policing), 0.8),
            finding(Finding::Reset, Some(Mechanism::RstInjection), 0.9),
            Outcome::Inconclusive(Doubt::CallsWithoutControl { calls: 1 }),
        ];
        let v = verdicts_of("wa", window(), &outcomes);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].finding, v[0].mechanism), (Finding::Throttled, Some(Mechanism::Policing)));
        assert_eq!(v[0].confidence, 0.99, "the stronger detector's confidence, capped");
        assert_eq!(v[0].evidence["corroborated_by"][0]["evidence"]["from"], "wehe");
        assert_eq!(v[0].summary, "wa: throttled by Some(Policing)");
        assert_eq!(v[1].finding, Finding::Reset);
        assert!(v.iter().all(Verdict::is_finding));
    }

    /// Connections stalled because their data and every copy sent again were dropped are a
    /// throttler's doing where one was found; other stalls, or those beside no throttler
    /// with a mechanism, stand as findings of their own.
    #[test]
    fn stalls_of_undelivered_data_beside_a_throttler_are_its_evidence() {
        let stall = |undelivered: u64| {
            Outcome::Finding(Detected {
                evidence: json!({ "stalled_flows": 3, "server_data_undelivered": undelivered }),
                ..detected(finding(Finding::Stalled, Some(Mechanism::Drop), 0.9))
            })
        };
        let policing = || finding(Finding::Throttled, Some(Mechanism::Policing), 0.8);
        let found = |outcomes: &[Outcome]| {
            verdicts_of("wa", window(), outcomes).iter().map(|v| v.finding).collect::<Vec<_>>()
        };
        let v = verdicts_of("wa", window(), &[policing(), stall(3)]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].evidence["corroborated_by"][0]["evidence"]["server_data_undelivered"], 3);
        assert_eq!(found(&[policing(), stall(2)]), [Finding::Throttled, Finding::Stalled]);
        let wehe = finding(Finding::Throttled, None, 0.8);
        assert_eq!(found(&[wehe, stall(3)]), [Finding::Stalled, Finding::Throttled]);
        assert_eq!(found(&[stall(3)]), [Finding::Stalled]);
    }

    #[test]
    fn one_policed_connection_among_many_lossy_ones_is_random_loss() {
        let with = |policed_flows: u64, burst_bytes: f64, lossy_connections: u64, beyond: u64| {
            let policing = Outcome::Finding(Detected {
                evidence: json!({
                    "policed_flows": policed_flows,
                    "burst_bytes": burst_bytes,
                    "lossy_beyond_bucket": beyond,
                }),
                ..detected(finding(Finding::Throttled, Some(Mechanism::Policing), 0.7))
            });
            let loss = Outcome::Finding(Detected {
                evidence: json!({ "lossy_connections": lossy_connections }),
                ..detected(finding(Finding::Throttled, Some(Mechanism::RandomLoss), 0.9))
            });
            let v = verdicts_of("wa", window(), &[policing, loss]);
            assert_eq!(v.len(), 1);
            v[0].mechanism
        };
        // The lab's random-loss run that once read as policing: an 11 kB burst.
        assert_eq!(with(1, 11_000.0, 9, 4), Some(Mechanism::RandomLoss));
        assert_eq!(with(1, 1_400.0, 9, 4), Some(Mechanism::RandomLoss));
        // Several policed connections, or loss on few: the policer.
        assert_eq!(with(3, 20_000.0, 6, 3), Some(Mechanism::Policing));
        assert_eq!(with(1, 20_000.0, 2, 1), Some(Mechanism::Policing));
        // Every lossy connection stayed within a bucket like the policed one's: short
        // connections under a bucket each (they lose once past its burst).
        assert_eq!(with(1, 20_000.0, 9, 0), Some(Mechanism::Policing));
    }

    fn detected(o: Outcome) -> Detected {
        match o {
            Outcome::Finding(d) => d,
            _ => unreachable!("a finding"),
        }
    }

    #[test]
    fn inconclusive_lists_every_reason_none_lists_the_checks() {
        let outcomes = [
            Outcome::NotApplicable,
            Outcome::Clean { detector: Detector::Resets, evidence: json!({ "reset_flows": 0 }) },
            Outcome::Inconclusive(Doubt::CallsWithoutControl { calls: 1 }),
            Outcome::Inconclusive(Doubt::UnansweredWithoutControl {
                unanswered: 2,
                attempts: 3,
                control_attempts: 0,
            }),
        ];
        let v = verdicts_of("wa", window(), &outcomes);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].finding, Finding::Inconclusive);
        assert!(!v[0].is_finding());
        let calls = "1 call(s) lose media or go silent, but no control call to compare with";
        assert_eq!(v[0].evidence["reasons"]["calls"], calls);
        assert_eq!(
            v[0].evidence["reasons"]["blocking"],
            "2 of 3 connection attempts never answered, but no control attempt of the same \
             kind to compare with"
        );
        assert_eq!(
            v[0].summary,
            format!(
                "wa: inconclusive: {}",
                Doubt::UnansweredWithoutControl { unanswered: 2, attempts: 3, control_attempts: 0 }
            ),
            "the first reason by name"
        );
        assert_eq!(v[0].evidence["checked"]["resets"]["reset_flows"], 0);
        assert_eq!(v[0].next_step, NextStep::AddControl);

        let v = verdicts_of("wa", window(), &outcomes[..2]);
        assert_eq!((v[0].finding.as_str(), v[0].confidence), ("none", 0.0));
        assert_eq!(v[0].summary, "wa: no sign of interference (1 checks)");
        assert_eq!(v[0].next_step, NextStep::Nothing);

        let v = verdicts_of("wa", window(), &[Outcome::NotApplicable]);
        assert_eq!(v[0].finding, Finding::Inconclusive, "nothing judged is not `none`");
        assert_eq!(v[0].evidence["reasons"]["all"], Doubt::NothingJudged.to_string());
        assert_eq!(v[0].next_step, NextStep::UseTheService);

        // The next step follows the reason the summary names.
        let stalls = stall::Stalls {
            freezes: None,
            client_unacknowledged: 3,
            client_unanswered: 0,
            server_unacknowledged: 0,
            server_undelivered: 0,
        };
        let everywhere = Doubt::ControlsStallToo {
            stalled_flows: 3,
            connections: 4,
            stalls,
            control_stalled_flows: 3,
            control_connections: 4,
            fisher_p: 1.0,
        };
        let few_bins = Doubt::ShapingTooFewBins { min_rtt_us: 1, max_rtt_us: 2, busy_bins: 2 };
        let v = verdicts_of(
            "wa",
            window(),
            &[Outcome::Inconclusive(everywhere.clone()), Outcome::Inconclusive(few_bins)],
        );
        assert!(
            v[0].summary.starts_with("wa: inconclusive: the round trip grew"),
            "{}",
            v[0].summary
        );
        assert_eq!(v[0].next_step, NextStep::CaptureLonger);
        let v = verdicts_of("wa", window(), &[Outcome::Inconclusive(everywhere)]);
        assert_eq!(v[0].next_step, NextStep::CheckThePath);
    }

    #[test]
    fn texts() {
        assert_eq!(rate_text(128_400.0), "~128 kbit/s");
        assert_eq!(rate_text(1_520_000.0), "~1.5 Mbit/s");
        assert_eq!(p_text(1e-9), "p<1e-6");
        assert_eq!(p_text(0.0123), "p=1.23e-2");
        assert_eq!(facts::hops(63), (64, 1));
        assert_eq!(facts::hops(64), (64, 0));
        assert_eq!(facts::hops(117), (128, 11));
        assert_eq!(facts::hops(250), (255, 5));
        assert_eq!(facts::hops(20), (32, 12));
    }

    #[test]
    fn detect_config_names_bad_values() {
        assert!(DetectConfig::default().validate().is_ok());
        let bad = |f: fn(&mut DetectConfig)| {
            let mut c = DetectConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.alpha = 0.0).starts_with("alpha = 0"));
        assert!(bad(|c| c.window_s = 0).starts_with("window_s = 0"));
        assert!(bad(|c| c.rtt_ratio = 0.5).starts_with("rtt_ratio = 0.5"));
        assert!(bad(|c| c.stall_min_bytes = 80_000).starts_with("stall_min_bytes"));
        assert!(bad(|c| c.rtt_tolerance_ms = -1.0).starts_with("rtt_tolerance_ms = -1"));
        assert!(bad(|c| c.policing_min_losses = 1).contains("policing_min_losses"));
    }
}
