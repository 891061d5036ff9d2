//! Policing (Flach et al., "An Internet-wide analysis of traffic policing", SIGCOMM'16), from
//! the client's side of the path, where what a policer lets through towards the client is seen
//! (uploads are seen before any policer; the throughput comparison covers them). Per TCP flow:
//! at least `policing_min_losses`
//! losses spread over `policing_min_rtts` round trips; the policed rate r is the goodput
//! between the first and the last loss; the delivered series must stay within one burst of
//! the token line of rate r from the first loss (a token bucket never lets more through), and
//! the round trip must not have grown, before the first loss or after it (a queue, i.e. a
//! shaper or a congested link, does that; a policer does not). Across the service's flows the rates
//! should cluster (policers run at a few fixed rates), and control traffic in the same window
//! must have run clearly faster, or the link itself may be the limit.

use serde_json::json;

use super::facts::{Facts, network};
use super::loss::{loss, pooled_share};
use super::recent::Memory;
use super::stats::{median, theil_sen_slope};
use super::{Detected, Detector, Doubt, Finding, Group, Mechanism, Outcome, examples, rate_text};
use crate::flow::Direction;
use crate::measure::loss::LossEvent;
use crate::time::Timestamp;

/// Round-trip samples a path without a queue still shows above its base: a data segment
/// answered by a delayed ACK (40 ms and more on Linux) or a sample across a lost segment. A
/// queue adds hundreds of milliseconds.
pub(super) const RTT_SLACK_US: f64 = 60_000.0;

/// The connections that windows' verdicts named policed, for the lines the next windows
/// continue ([`line_events`]), with the control goodput beside them there (for a window whose
/// control transfers have ended): kept by [`super::Recent`].
#[derive(Debug, Default)]
pub(crate) struct RecentPoliced {
    /// Entries flow id << [`CONTROL_KBPS_BITS`] | the verdict's `control_max_goodput_bps`
    /// in kbit/s (at most [`CONTROL_KBPS_MAX`]).
    memory: Memory,
    /// The connections that throttling verdicts named: flow id << [`CONTROL_KBPS_BITS`] |
    /// the rate of the one bucket for all they named (`aggregate_rate_bps`) in kbit/s, or 0,
    /// for the next windows to continue ([`transfers_under_one_bucket`]).
    buckets: Memory,
}

/// Bits of a [`RecentPoliced`] entry that hold the control goodput.
const CONTROL_KBPS_BITS: u32 = 24;
/// The most control goodput a [`RecentPoliced`] entry holds, in kbit/s (16.7 Gbit/s).
const CONTROL_KBPS_MAX: u64 = (1 << CONTROL_KBPS_BITS) - 1;

/// The flow id of a [`RecentPoliced`] entry.
fn flow_of(entry: u64) -> u64 {
    entry >> CONTROL_KBPS_BITS
}

impl RecentPoliced {
    /// After a window is judged: keep the connections its policing verdicts name, and forget
    /// what is too old to count at the next.
    pub fn remember(&mut self, verdicts: &[super::Verdict], window: super::Window) {
        let throttled = || verdicts.iter().filter(|v| v.finding == Finding::Throttled);
        // The named flows of `verdicts`, each with the verdict's `key` in kbit/s (0 where it
        // has none).
        let entries = |verdicts: &mut dyn Iterator<Item = &super::Verdict>, key: &str| {
            verdicts
                .flat_map(|v| {
                    let bps = v.evidence[key].as_f64().unwrap_or(0.0);
                    let kbps = ((bps / 1000.0) as u64).min(CONTROL_KBPS_MAX);
                    v.flows.iter().map(move |&id| id << CONTROL_KBPS_BITS | kbps)
                })
                .collect()
        };
        let policing = &mut throttled().filter(|v| v.mechanism == Some(Mechanism::Policing));
        self.memory.remember(window.end, entries(policing, "control_max_goodput_bps"), flow_of);
        // Every throttling verdict, so that the latest to name a flow says whether it was
        // under one bucket for all (a rate) or not (0).
        let buckets = entries(&mut throttled(), "aggregate_rate_bps");
        self.buckets.remember(window.end, buckets, flow_of);
    }

    /// Whether a window ending less than [`MEMORY_US`](super::recent::MEMORY_US) before `end` named `id` policed.
    fn named(&self, id: u64, end: Timestamp) -> bool {
        self.memory.before(end).any(|entry| flow_of(entry) == id)
    }

    /// The connections of `ids` that windows ending less than a minute before `end` found
    /// throttled, where the latest to name each put it under one bucket for all: those
    /// connections and that bucket's rate in bit/s (the least, if they named several). None
    /// where any was last named otherwise.
    fn earlier_bucket(&self, ids: &[u64], end: Timestamp) -> Option<(Vec<u64>, f64)> {
        let entries: Vec<u64> =
            self.buckets.before(end).filter(|&entry| ids.contains(&flow_of(entry))).collect();
        let rates = entries.iter().map(|&entry| (entry & CONTROL_KBPS_MAX) as f64 * 1000.0);
        let rate_bps = rates.clone().reduce(f64::min).filter(|&bps| bps > 0.0)?;
        Some((entries.into_iter().map(flow_of).collect(), rate_bps))
    }

    /// Where windows ending less than a minute before `end` named every connection of `ids`
    /// policed: the control goodput beside them there, in bit/s (the least over the
    /// connections of the fastest a window recorded for each).
    fn earlier_control_bps(&self, ids: &[u64], end: Timestamp) -> Option<f64> {
        let of = |id: u64| {
            (self.memory.before(end))
                .filter(|&entry| flow_of(entry) == id)
                .map(|entry| (entry & CONTROL_KBPS_MAX) as f64 * 1000.0)
                .reduce(f64::max)
        };
        ids.iter().map(|&id| of(id)).try_fold(f64::INFINITY, |least, bps| Some(least.min(bps?)))
    }
}

/// A flow that passed the per-flow test.
#[derive(Debug, Clone, Copy)]
struct Policed {
    id: u64,
    rate_bps: f64,
    burst_bytes: f64,
    losses: u32,
    consistency: f64,
    /// The first loss, from which on a bucket at the rate holds the flow back.
    first_loss_at: Timestamp,
}

impl Policed {
    /// How far a connection under a bucket like this one's may run ahead of its token line:
    /// the burst it showed and the allowance.
    fn depth(&self) -> f64 {
        self.burst_bytes + burst_allowance(self.rate_bps)
    }
}

/// The least time a token line is tested over: four times the quarter second at the rate
/// that [`burst_allowance`] grants a fast flow. Within the allowance of a shorter line any
/// series lies (a fast download's ramp up and down under random loss, in under a second).
const LINE_MIN_SPAN_US: f64 = 1_000_000.0;

/// Allowed excess over the token line: a burst of 16 kB or a quarter second at the rate.
fn burst_allowance(rate_bps: f64) -> f64 {
    (rate_bps / 8.0 * 0.25).max(16_384.0)
}

/// The round trip to `f`'s server without queueing: the least any of the service's flows to
/// it saw.
fn base_rtt_us(g: &Group, f: &Facts) -> Option<u64> {
    (g.targets.iter())
        .filter(|o| o.f.server.addr == f.f.server.addr)
        .filter_map(|o| o.min_rtt_us())
        .min()
}

/// The loss events a flow's token line is fitted to: those in the window, when there are
/// `policing_min_losses`. With `continued`, for a download that an earlier window found
/// policed and that lost at least a third as many in this one (the end of a policed
/// download, or a window it does not fill), those from one window's length before the
/// window's start to its end: a bucket's line goes on across the window's edge, and the
/// window's own events must lie on it as the others do. (A line that an earlier window
/// judged random loss that happened to follow a line, beside other connections losing at
/// random, is not taken up again where those others are gone.)
fn line_events(f: &Facts, g: &Group, continued: bool) -> Option<Vec<LossEvent>> {
    let wanted = g.cfg.policing_min_losses as usize;
    let own = f.losses();
    let continues = continued
        && own.len() * 3 >= wanted
        && f.f.prior.is_some()
        && g.recent.policed.named(f.id(), g.end);
    if !continues {
        return (own.len() >= wanted).then_some(own);
    }
    let length_us = f.window.end.since(f.window.start);
    let from = Timestamp::from_micros(f.window.start.micros().saturating_sub(length_us));
    let events = f.losses_since(from);
    (events.len() >= wanted).then_some(events)
}

fn per_flow(f: &Facts, base_rtt_us: Option<u64>, g: &Group, continued: bool) -> Option<Policed> {
    let cfg = g.cfg;
    let log = f.f.losses.as_ref()?;
    let events = line_events(f, g, continued)?;
    let (first, last) = (*events.first()?, *events.last()?);
    let span_us = last.at.since(first.at);
    let rtt_us = base_rtt_us.or(f.min_rtt_us()).unwrap_or(0);
    if (span_us as f64) < (cfg.policing_min_rtts * rtt_us as f64).max(LINE_MIN_SPAN_US) {
        return None;
    }
    let rate_bps =
        (last.delivered_bytes.saturating_sub(first.delivered_bytes)) as f64 * 8e6 / span_us as f64;
    if rate_bps <= 0.0 {
        return None;
    }
    // No queue: not before the first loss (Flach), and not after it either (a shaper's queue
    // stays full once it drops; a policer never holds packets). Samples taken as the first
    // overshoot fills a queue can miss it, the flow's largest round trip does not.
    let largest = u64::from(log.rtt_max_before_us).max(f.max_rtt_us().unwrap_or(0));
    if rtt_us > 0 && super::throughput::grown_past_no_queue(cfg, rtt_us as f64, largest as f64) {
        return None;
    }
    // The delivered series against the token line from the first loss.
    let allowance = burst_allowance(rate_bps);
    let mut within = 0usize;
    let mut burst = 0f64;
    let events = &events[1..];
    for e in events {
        let delivered = e.delivered_bytes.saturating_sub(first.delivered_bytes) as f64;
        let line = rate_bps / 8.0 * e.at.since(first.at) as f64 / 1e6;
        let excess = delivered - line;
        burst = burst.max(excess);
        if excess.abs() <= allowance {
            within += 1;
        }
    }
    // The bucket is full when the flow starts: what came through before the first loss
    // beyond the rate is its depth (Flach's burst), unless a later excess is larger. (A flow
    // that began in an earlier window had its first burst there.)
    if f.f.prior.is_none() {
        let before_first = first.delivered_bytes as f64
            - rate_bps / 8.0 * first.at.since(f.f.first_at) as f64 / 1e6;
        burst = burst.max(before_first);
    }
    let consistency = if events.is_empty() { 0.0 } else { within as f64 / events.len() as f64 };
    (consistency >= cfg.policing_consistency).then_some(Policed {
        id: f.id(),
        rate_bps,
        burst_bytes: burst.max(0.0),
        losses: events.len() as u32 + 1,
        consistency,
        first_loss_at: first.at,
    })
}

/// The window's own loss events decide first. Where they find no policer, or one connection
/// alone on its line, the lines that downloads found policed earlier continue into the
/// window ([`line_events`]) may name the mechanism of the losses the window shows: their
/// answer counts when it is a finding with more policed connections, or a doubt where the
/// window's own events found nothing to doubt (a policed download's last second, beside
/// controls too slow to compare with).
pub(super) fn detect(g: &Group) -> Outcome {
    let policed = |o: &Outcome| match o {
        Outcome::Finding(d) => d.evidence["policed_flows"].as_u64().unwrap_or(u64::MAX),
        _ => 0,
    };
    let own = judge(g, false);
    if policed(&own) > 1 || !g.targets.iter().any(|f| line_events(f, g, true).is_some()) {
        return own;
    }
    let continued = judge(g, true);
    let takes_over = match (&own, &continued) {
        (_, Outcome::Finding(_)) => policed(&continued) > policed(&own),
        (Outcome::Clean { .. } | Outcome::NotApplicable, Outcome::Inconclusive(_)) => true,
        _ => false,
    };
    if takes_over { continued } else { own }
}

/// The detector on the lines of the window's own loss events, or with `continued` also on
/// those continued from before it.
fn judge(g: &Group, continued: bool) -> Outcome {
    const NAME: Detector = Detector::Policing;
    let cfg = g.cfg;
    let candidates: Vec<&Facts> =
        g.targets.iter().filter(|f| line_events(f, g, continued).is_some()).collect();
    if candidates.is_empty() {
        return aggregate(g).unwrap_or(Outcome::NotApplicable);
    }
    // A queue every flow crosses drops from all of them at once when it overflows; a policer
    // drops from the flows it polices alone.
    let control_losses = control_loss_times(g);
    let mut lost_with_controls = 0usize;
    let policed: Vec<Policed> = candidates
        .iter()
        .filter_map(|f| {
            let base = base_rtt_us(g, f);
            let p = per_flow(f, base, g, continued)?;
            let (together, events) = lost_with(f, &control_losses, base.unwrap_or(0));
            if together as f64 >= SHARED_LOSS_SHARE * events as f64 && events > 0 {
                lost_with_controls += 1;
                return None;
            }
            Some(p)
        })
        .collect();
    if policed.is_empty() {
        return aggregate(g).unwrap_or_else(|| Outcome::Clean {
            detector: NAME,
            evidence: json!({
                "lossy_flows": candidates.len(),
                "policed_flows": 0,
                "lost_with_controls": lost_with_controls,
            }),
        });
    }
    // The cluster around the median rate.
    let rates: Vec<f64> = policed.iter().map(|p| p.rate_bps).collect();
    let center = median(&rates).unwrap_or(0.0);
    let cluster: Vec<&Policed> = policed
        .iter()
        .filter(|p| (p.rate_bps - center).abs() <= cfg.policing_cluster_tolerance * center)
        .collect();
    // Policer-like connections at rates far apart: each got a varying share of one bucket for
    // all, or of none.
    if cluster.len() * 2 < policed.len()
        && let Some(found) = aggregate(g)
    {
        return found;
    }
    if cluster.is_empty() {
        return Outcome::Inconclusive(Doubt::PolicedRatesApart { policed_flows: policed.len() });
    }
    // One connection that looks policed may be one of many sharing one bucket for all: when
    // it shows next to no burst (the others drained the bucket), or when other connections of
    // the service lose packets too without following a line (a bucket per connection makes
    // each connection it drops from follow a line of its own, or lets it through whole).
    let others_lose = |only: &Policed| {
        g.targets.iter().filter(|f| f.id() != only.id).any(|f| {
            loss(f)
                .is_some_and(|(lost, packets)| lost as f64 >= cfg.loss_min_share * packets as f64)
        })
    };
    if let [only] = cluster[..]
        && (only.burst_bytes < SMALL_BURST_BYTES || others_lose(only))
        && let Some(found) = aggregate(g)
    {
        return found;
    }
    let cluster_rates: Vec<f64> = cluster.iter().map(|p| p.rate_bps).collect();
    let rate = median(&cluster_rates).unwrap_or(center);
    let burst = median(&cluster.iter().map(|p| p.burst_bytes).collect::<Vec<_>>()).unwrap_or(0.0);
    // Control transfers in the window: the fastest goodput of a bulk control flow. Where none
    // ran, and the window before named these same connections policed beside faster control
    // transfers, those count: the connections go on along the lines found there, on a link
    // that less than a minute ago ran faster (the curl generator's controls ended in a
    // policed download's first 10-s window, and its second said `inconclusive`).
    let ids: Vec<u64> = cluster.iter().map(|p| p.id).collect();
    let own_control_bps = control_max_goodput_bps(g);
    let earlier = (own_control_bps == 0.0)
        .then(|| g.recent.policed.earlier_control_bps(&ids, g.end))
        .flatten()
        .filter(|&bps| bps > 0.0);
    let control_bps = earlier.unwrap_or(own_control_bps);
    let flows: Vec<serde_json::Value> = cluster
        .iter()
        .map(|p| {
            json!({
                "flow": p.id,
                "rate_bps": p.rate_bps.round(),
                "burst_bytes": p.burst_bytes.round(),
                "losses": p.losses,
                "consistency": (p.consistency * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    let mut evidence = json!({
        "rate_bps": rate.round(),
        "burst_bytes": burst.round(),
        "policed_flows": cluster.len(),
        "lossy_flows": candidates.len(),
        "lost_with_controls": lost_with_controls,
        "cluster_tolerance": cfg.policing_cluster_tolerance,
        "control_max_goodput_bps": control_bps.round(),
        "flows": flows,
    });
    if earlier.is_some() {
        evidence["control_window"] = json!("earlier");
    }
    if let [only] = cluster[..] {
        evidence["lossy_beyond_bucket"] = json!(beyond_its_bucket(g, only));
    }
    if control_bps == 0.0 {
        return Outcome::Inconclusive(Doubt::PolicedWithoutControl {
            policed_flows: cluster.len(),
            rate_bps: rate,
        });
    }
    // Control connections that lose a comparable share of their packets: the loss is the
    // link's (a lossy radio link), not a policer's on this service.
    let policed_loss =
        pooled_share(g.targets.iter().filter(|f| cluster.iter().any(|p| p.id == f.id())));
    let control_loss = pooled_share(g.controls);
    if control_loss * 3.0 >= policed_loss && control_loss > 0.0 {
        evidence["loss_share"] = json!((policed_loss * 1e4).round() / 1e4);
        evidence["control_loss_share"] = json!((control_loss * 1e4).round() / 1e4);
        return Outcome::Clean { detector: NAME, evidence };
    }
    // Control transfers that lose packets the same way at no higher a rate: whatever limits
    // the link limits everything (a policer on the whole line, a lossy radio link), and this
    // service is not singled out.
    let control_policed: Vec<f64> = g
        .controls
        .iter()
        .filter_map(|c| per_flow(c, c.min_rtt_us(), g, continued))
        .map(|p| p.rate_bps)
        .filter(|&r| r < cfg.control_margin * rate)
        .collect();
    if control_bps < cfg.control_margin * rate && !control_policed.is_empty() {
        evidence["control_policed_flows"] = json!(control_policed.len());
        return Outcome::Clean { detector: NAME, evidence };
    }
    if control_bps < cfg.control_margin * rate {
        return Outcome::Inconclusive(Doubt::PolicedControlsNoFaster {
            rate_bps: rate,
            control_bps,
        });
    }
    // One connection is weak evidence: a burst of losses from a queue that cross traffic
    // filled can fit a token line over a short stretch. A bucket at its rate holds back every
    // connection it polices; another of the service's that carried more since the first loss
    // says this one's losses were not that bucket's (or that it polices only some): undecided.
    // Except where every one that carried more went to another address of the service in the
    // policed one's network (one site): a policer on some of the service's addresses, as a
    // censor's list of them seldom holds them all (docs/detectors.md, Policing).
    let mut towards = None;
    if let [only] = cluster[..] {
        let faster = outran(g, only);
        let policed_at = server_of(g, only.id);
        let elsewhere_on_site = |id: u64| {
            server_of(g, id).is_some_and(|addr| {
                Some(addr) != policed_at && policed_at.is_some_and(|p| network(p) == network(addr))
            })
        };
        match policed_at {
            Some(addr) if !faster.is_empty() && faster.iter().all(|&id| elsewhere_on_site(id)) => {
                towards = Some(addr)
            }
            _ if !faster.is_empty() => {
                return Outcome::Inconclusive(Doubt::PolicedBesideFaster {
                    rate_bps: rate,
                    faster_flows: faster.len(),
                });
            }
            _ => {}
        }
    }
    let mean_consistency =
        cluster.iter().map(|p| p.consistency).sum::<f64>() / cluster.len() as f64;
    let confidence =
        ((0.6 + 0.1 * cluster.len() as f64).min(0.95) * mean_consistency * 100.0).round() / 100.0;
    // Connections that each follow a token line at one rate: per-flow buckets when their sum
    // grows with their number. Where it does not, the lab showed the sum too easily blurred
    // (a delayed policer's fast start, traffic beside them) to call one bucket for all:
    // `unknown`. One bucket for all is reported where no connection follows a line of its own
    // ([`aggregate`]), or where another flow of the service ran faster while losing packets
    // ([`shared_bucket`]).
    let scope = match scope(g, &ids, rate) {
        Scope::Aggregate { .. } => Scope::Unknown,
        other => other,
    };
    let scope = match shared_bucket(g, &ids, rate).filter(|s| !beyond_one_bucket(g, s.1)) {
        Some((faster, rate_bps)) => {
            evidence["faster_lossy_flows"] = json!(examples(faster, 10));
            let (concurrent_bins, single_bins) = match scope {
                Scope::PerFlow { concurrent_bins, single_bins } => (concurrent_bins, single_bins),
                _ => (0, 0),
            };
            Scope::Aggregate { rate_bps, concurrent_bins, single_bins }
        }
        None => scope,
    };
    evidence["scope"] = json!(scope.name());
    let (what, shown_rate) = match scope {
        Scope::Aggregate { rate_bps, .. } => {
            evidence["aggregate_rate_bps"] = json!(rate_bps.round());
            ("all the service's downloads together policed at", rate_bps)
        }
        Scope::PerFlow { .. } | Scope::Unknown => ("downloads policed at", rate),
    };
    if let Scope::Aggregate { concurrent_bins, single_bins, .. }
    | Scope::PerFlow { concurrent_bins, single_bins } = scope
    {
        evidence["scope_bins"] = json!({ "concurrent": concurrent_bins, "single": single_bins });
    }
    let towards = match towards {
        Some(addr) => {
            let addresses = g.tcp_server_addresses().len();
            evidence["policed_address"] = json!(addr.to_string());
            evidence["addresses"] = json!(addresses);
            format!(" towards 1 of {addresses} addresses ({addr})")
        }
        None => String::new(),
    };
    Outcome::Finding(Detected {
        finding: Finding::Throttled,
        mechanism: Some(Mechanism::Policing),
        confidence,
        evidence,
        flows: examples(ids, 20),
        summary: format!(
            "{what} {}{towards} ({} flow(s){}, burst ~{:.0} kB); control traffic reached {}{}",
            rate_text(shown_rate),
            cluster.len(),
            match scope {
                Scope::Aggregate { .. } => ", one bucket for all".to_string(),
                Scope::PerFlow { .. } => ", a bucket per connection".to_string(),
                Scope::Unknown => String::new(),
            },
            burst / 1000.0,
            rate_text(control_bps),
            if earlier.is_some() { " less than a minute before" } else { "" }
        ),
    })
}

/// The server address of the service's flow `id`.
fn server_of(g: &Group, id: u64) -> Option<std::net::IpAddr> {
    g.targets.iter().find(|f| f.id() == id).map(|f| f.f.server.addr)
}

/// Connections of the service beside `only` that lost packets once they had run further
/// ahead of a token line at its rate, from their own start, than its burst allows: a bucket
/// like its own would have held them back, so what made them lose was no such bucket (random
/// loss, or a bucket for all).
fn beyond_its_bucket(g: &Group, only: &Policed) -> usize {
    let limit = only.depth();
    let ahead = |f: &Facts| {
        f.losses().iter().any(|e| {
            let line = only.rate_bps / 8.0 * e.at.since(f.f.first_at) as f64 / 1e6;
            e.delivered_bytes as f64 - line > limit
        })
    };
    g.targets.iter().filter(|f| f.id() != only.id && ahead(f)).count()
}

/// Other TCP connections of the service that, over the bins from `only`'s first loss on,
/// carried more towards the client than a bucket at its rate and burst lets through (what
/// is in the window of those bins; a connection that starts later gets a full bucket).
fn outran(g: &Group, only: &Policed) -> Vec<u64> {
    let depth = only.depth();
    let carried_more = |f: &&Facts| {
        let Some(bins) = &f.f.bins else { return false };
        let width_us = bins.bin_us.max(1);
        let from = only.first_loss_at.micros().div_ceil(width_us);
        let (count, bytes) = (f.bins(Direction::Down))
            .filter(|&(bin, _)| bin >= from)
            .fold((0u64, 0u64), |(n, sum), (_, b)| (n + 1, sum + u64::from(b)));
        let line = only.rate_bps / 8.0 * (count * width_us) as f64 / 1e6;
        bytes as f64 > line + depth
    };
    (g.targets.iter())
        .filter(|f| f.id() != only.id && f.tcp().is_some())
        .filter(carried_more)
        .map(|f| f.id())
        .collect()
}

/// The share of a flow's policer-like losses that came with control flows' losses at which
/// it is taken for the link's loss, not a policer's.
pub(super) const SHARED_LOSS_SHARE: f64 = 0.5;

/// The least time apart that a flow's loss and a control flow's count as together: a queue
/// overflows for a moment, and each flow shows the hole when its next segment arrives.
pub(super) const SHARED_LOSS_MIN_US: u64 = 20_000;

/// The times of the control flows' loss events in the window, sorted: what [`lost_with`]
/// compares with.
pub(super) fn control_loss_times(g: &Group) -> Vec<u64> {
    let mut times: Vec<u64> =
        g.controls.iter().flat_map(|c| c.losses()).map(|e| e.at.micros()).collect();
    times.sort_unstable();
    times
}

/// How many of `f`'s loss events in the window came within one base round trip (`rtt_us`, at
/// least [`SHARED_LOSS_MIN_US`]) of a control flow's loss (`control_losses`, from
/// [`control_loss_times`]), and how many it had. In the lab, flows a shared queue made look
/// policed (congestion, bursty cross traffic) had a median share of 0.89 and 1.0; flows
/// behind a policer, 0.
pub(super) fn lost_with(f: &Facts, control_losses: &[u64], rtt_us: u64) -> (usize, usize) {
    let events = f.losses();
    if events.is_empty() || control_losses.is_empty() {
        return (0, events.len());
    }
    let tolerance_us = rtt_us.max(SHARED_LOSS_MIN_US);
    (near_controls(&events, control_losses, (tolerance_us, tolerance_us)), events.len())
}

/// How many of `events` have a control loss (`control_losses`, sorted) from `before_us`
/// before them to `after_us` after them.
pub(super) fn near_controls(
    events: &[LossEvent],
    control_losses: &[u64],
    (before_us, after_us): (u64, u64),
) -> usize {
    let near = |at: u64| {
        let i = control_losses.partition_point(|&c| c < at.saturating_sub(before_us));
        control_losses.get(i).is_some_and(|&c| c <= at + after_us)
    };
    events.iter().filter(|e| near(e.at.micros())).count()
}

/// A burst smaller than real policers pass (they pass 8 kB and more).
pub(super) const SMALL_BURST_BYTES: f64 = 8_000.0;

/// Downstream payload that makes a connection a transfer for [`aggregate`].
const AGGREGATE_MIN_BYTES: u64 = 20_000;

/// One bucket for all of the service's traffic, seen where no single connection follows a
/// token line (each gets a varying share of the bucket): shared by its transfers
/// ([`transfers_under_one_bucket`]), or drained by its other traffic ([`starved`]).
fn aggregate(g: &Group) -> Option<Outcome> {
    transfers_under_one_bucket(g).or_else(|| starved(g))
}

/// The service's downloads lose packets (at least `loss_min_share`, twice the controls'),
/// with no queue, and their summed rate stays the same whether one or several run
/// ([`scope`]), while control transfers ran `control_margin` times faster.
fn transfers_under_one_bucket(g: &Group) -> Option<Outcome> {
    let cfg = g.cfg;
    // Transfers towards the client: under one bucket for all, none may get far.
    let bulk: Vec<&Facts> = g
        .targets
        .iter()
        .filter(|f| {
            f.f.bins.is_some()
                && f.tcp_part(Direction::Down).new_payload_bytes >= AGGREGATE_MIN_BYTES
                // A reset or stalled connection's retransmissions are not a policer's.
                && f.server_reset().is_none()
                && super::stall::stall(f, g.cfg).is_none()
        })
        .collect();
    if bulk.len() < 2 {
        return None;
    }
    let loss = pooled_share(bulk.iter().copied());
    let control_loss = pooled_share(g.controls);
    // A queue: grown in a transfer, or every transfer born into it (their handshakes far
    // slower than the server's base round trip: a shaper's queue full before they began; a
    // policer delays no handshake, and drops at most some of them).
    let born_queued = (bulk.iter())
        .all(|f| super::throughput::queue_grew(cfg, base_rtt_us(g, f), f.handshake_rtt_us()));
    let queued = super::throughput::queue_shown(cfg, bulk.iter().copied()) || born_queued;
    if loss < cfg.loss_min_share || loss < 2.0 * control_loss || queued {
        return None;
    }
    let ids: Vec<u64> = bulk.iter().map(|f| f.id()).collect();
    // This window's own sum may be too short to show it stay the same (too few bins with one
    // transfer and with several): where no connection followed a token line of its own, the
    // bucket that the latest window to find these transfers throttled put them under goes on
    // where their sum holds at its rate, beside control transfers of this window or of that
    // one.
    // The bins this window's own sum was judged on (`None`: the bucket goes on).
    let (rate_bps, own_bins, earlier_control_bps) = match scope_of_all(g)? {
        Scope::Aggregate { rate_bps, concurrent_bins, single_bins } => {
            (rate_bps, Some((concurrent_bins, single_bins)), None)
        }
        Scope::PerFlow { .. } | Scope::Unknown => {
            let (rate_bps, control_bps) = bucket_goes_on(g, &bulk)?;
            (rate_bps, None, control_bps)
        }
    };
    let (concurrent_bins, single_bins) = own_bins.unwrap_or((0, 0));
    if beyond_one_bucket(g, rate_bps) {
        return None;
    }
    let own_control_bps = control_max_goodput_bps(g);
    let control_bps = own_control_bps.max(earlier_control_bps.unwrap_or(0.0));
    if control_bps < cfg.control_margin * rate_bps {
        return None;
    }
    let mut evidence = json!({
        "policed_flows": bulk.len(),
        "loss_share": (loss * 1e4).round() / 1e4,
        "control_loss_share": (control_loss * 1e4).round() / 1e4,
        "scope_bins": { "concurrent": concurrent_bins, "single": single_bins },
    });
    if control_bps > own_control_bps {
        evidence["control_window"] = json!("earlier");
    }
    let continued = own_bins.is_none();
    if continued {
        evidence["bucket_window"] = json!("earlier");
    }
    let what = format!(
        "downloads together policed at {} ({} flows losing {:.1}% of their packets, one \
         bucket for all{})",
        rate_text(rate_bps),
        bulk.len(),
        loss * 100.0,
        if continued { ", as less than a minute before" } else { "" }
    );
    Some(one_bucket(rate_bps, control_bps, 0.8, ids, evidence, &what))
}

/// The bucket for all that the latest window to find the transfers `bulk` throttled (less
/// than a minute before) put them under, where it goes on in this window: no connection
/// follows a token line of its own, and their sum holds at the bucket's rate ([`held_at`]).
/// Its rate, and the control goodput that window saw beside them.
#[inline(never)]
fn bucket_goes_on(g: &Group, bulk: &[&Facts]) -> Option<(f64, Option<f64>)> {
    let ids: Vec<u64> = bulk.iter().map(|f| f.id()).collect();
    let (named, rate_bps) = g.recent.policed.earlier_bucket(&ids, g.end)?;
    let follows_a_line = |f: &Facts| per_flow(f, base_rtt_us(g, f), g, true).is_some();
    if g.targets.iter().any(follows_a_line) || !held_at(g, bulk, rate_bps) {
        return None;
    }
    Some((rate_bps, g.recent.policed.earlier_control_bps(&named, g.end)))
}

/// The bins inside the busy periods of `flows` towards the client ([`Facts::busy_interior`]),
/// sorted, each once.
fn busy_bins<'f, 'a: 'f>(flows: impl Iterator<Item = &'f Facts<'a>>) -> Vec<u64> {
    let mut busy: Vec<u64> = flows.flat_map(|f| f.busy_interior(Direction::Down)).collect();
    busy.sort_unstable();
    busy.dedup();
    busy
}

/// The service's summed rate towards the client, over the bins inside the busy periods of
/// `bulk`, held at a bucket's `rate_bps`: its median within the cluster tolerance above the
/// rate and at least half of it (transfers that lose packets ask for more than they get).
fn held_at(g: &Group, bulk: &[&Facts], rate_bps: f64) -> bool {
    let (totals, bin_s) = down_bytes_per_bin(g, &|_| true);
    let busy = busy_bins(bulk.iter().copied());
    let rates: Vec<f64> =
        busy.iter().map(|b| totals.get(b).copied().unwrap_or(0) as f64 * 8.0 / bin_s).collect();
    median(&rates).is_some_and(|sum| {
        sum >= 0.5 * rate_bps && sum <= (1.0 + g.cfg.policing_cluster_tolerance) * rate_bps
    })
}

/// [`scope`] over every flow of the service towards the client (streams and calls share one
/// bucket for all too), at the median of their own mean rates over their busy bins.
fn scope_of_all(g: &Group) -> Option<Scope> {
    let rated: Vec<(u64, f64)> =
        g.targets.iter().filter_map(|f| Some((f.id(), mean_rate_down_bps(f)?))).collect();
    let ids: Vec<u64> = rated.iter().map(|r| r.0).collect();
    let per_flow = median(&rated.iter().map(|r| r.1).collect::<Vec<_>>())?;
    Some(scope(g, &ids, per_flow))
}

/// The fastest goodput of a bulk control transfer in the window.
fn control_max_goodput_bps(g: &Group) -> f64 {
    (g.controls.iter())
        .filter_map(|c| c.bulk_dir(g.cfg.bulk_min_bytes).and_then(|d| c.goodput_bps(d)))
        .fold(0.0f64, f64::max)
}

/// The finding of one bucket for all at `rate_bps`: `evidence` with the bucket's scope and
/// rate, and "all the service's `what`".
#[inline(never)]
fn one_bucket(
    rate_bps: f64,
    control_bps: f64,
    confidence: f64,
    flows: Vec<u64>,
    mut evidence: serde_json::Value,
    what: &str,
) -> Outcome {
    evidence["scope"] = json!("aggregate");
    evidence["aggregate_rate_bps"] = json!(rate_bps.round());
    evidence["rate_bps"] = json!(rate_bps.round());
    evidence["control_max_goodput_bps"] = json!(control_bps.round());
    Outcome::Finding(Detected {
        finding: Finding::Throttled,
        mechanism: Some(Mechanism::Policing),
        confidence,
        evidence,
        flows: examples(flows, 20),
        summary: format!(
            "all the service's {what}; control traffic reached {}",
            rate_text(control_bps)
        ),
    })
}

/// How near a bin's sum must be to the median to count as held at the bucket's rate...
const STARVED_TOLERANCE: f64 = 0.1;

/// ... and the share of busy bins that must be so held (a bucket that starts full lets a
/// burst through first; the traffic's end leaves less).
const STARVED_HELD_SHARE: f64 = 0.8;

/// Bins held at the rate that a flat sum needs.
const STARVED_MIN_BINS: usize = 6;

/// One bucket for all that the service's other traffic keeps drained (a video call near the
/// bucket's rate, losing media at it): the downloads get too little to share it as transfers
/// do ([`transfers_under_one_bucket`]), their data dropped before the capture point and never
/// sent through (`min_affected_flows` connections stalled so,
/// [`super::stall::Stall::Undelivered`]), while the service's summed rate towards the client
/// stays at the bucket's rate, bin by bin, while those calls run, with no queue, and control
/// transfers ran `control_margin` times faster.
#[inline(never)]
fn starved(g: &Group) -> Option<Outcome> {
    let cfg = g.cfg;
    let starved: Vec<u64> = g
        .targets
        .iter()
        .filter(|f| super::stall::stall(f, g.cfg) == Some(super::stall::Stall::Undelivered))
        .map(|f| f.id())
        .collect();
    if (starved.len() as u64) < cfg.min_affected_flows
        || super::throughput::queue_shown(cfg, g.targets.iter())
    {
        return None;
    }
    // What drains the bucket loses packets at it too: a call of the service losing media
    // (`loss_min_share`, twice the control calls'). A blackhole of the connections beside a
    // call that goes through whole is no bucket.
    let ((lost, expected), control) = (rtp_loss_down(&g.targets), rtp_loss_down(g.controls));
    let share = lost as f64 / expected.max(1) as f64;
    let control_share = control.0 as f64 / control.1.max(1) as f64;
    if expected < 50 || share < cfg.loss_min_share || share < 2.0 * control_share {
        return None;
    }
    let (totals, bin_s) = down_bytes_per_bin(g, &|_| true);
    // Held while the calls that lose media ran: their traffic is what keeps the bucket
    // drained; before and after them the downloads' trickle (resends of what never came)
    // leaves the sum below the rate, as a bucket lets it. (Over the whole traffic, a call
    // that ended 4 s before the stalled downloads gave up left 30 of 38 bins held.)
    let draining = |f: &Facts| f.rtp_loss_down().is_some_and(|l| l.share() >= cfg.loss_min_share);
    let (calls, _) = down_bytes_per_bin(g, &draining);
    let first = *totals.keys().next()?.max(calls.keys().next()?);
    let last = *totals.keys().next_back()?.min(calls.keys().next_back()?);
    // The bins between the first and the last (a bin without traffic is not held).
    let bins = last.saturating_sub(first).saturating_sub(1) as usize;
    let rates: Vec<f64> = (first + 1..last)
        .filter_map(|bin| totals.get(&bin))
        .map(|&b| b as f64 * 8.0 / bin_s)
        .collect();
    let rate_bps = median(&rates)?;
    let held = rates.iter().filter(|r| (*r - rate_bps).abs() <= STARVED_TOLERANCE * rate_bps);
    let held = held.count();
    if held < STARVED_MIN_BINS || (held as f64) < STARVED_HELD_SHARE * bins as f64 {
        return None;
    }
    let control_bps = control_max_goodput_bps(g);
    if control_bps < cfg.control_margin * rate_bps
        || bins_beyond_one_bucket(&totals, bin_s, rate_bps)
    {
        return None;
    }
    let evidence =
        json!({ "starved_flows": starved.len(), "busy_bins": rates.len(), "held_bins": held });
    // (STARVED_TOLERANCE in words.)
    let what = format!(
        "traffic together held at {} (one bucket for all: {} connections starved of their \
         data, the sum within 10% of that rate in {held} of {bins} bins)",
        rate_text(rate_bps),
        starved.len(),
    );
    Some(one_bucket(rate_bps, control_bps, 0.7, starved, evidence, &what))
}

/// A flow's mean rate towards the client over its busy period (first to last bin with
/// bytes), for flows with throughput bins and at least 5 kB towards the client.
fn mean_rate_down_bps(f: &Facts) -> Option<f64> {
    let bins: Vec<(u64, u32)> = f.bins(Direction::Down).filter(|b| b.1 > 0).collect();
    let bytes: u64 = bins.iter().map(|b| u64::from(b.1)).sum();
    let width_s = f.f.bins.as_ref()?.bin_us as f64 / 1e6;
    let busy = bins.last()?.0 - bins.first()?.0 + 1;
    (bytes >= 5_000).then(|| bytes as f64 * 8.0 / (busy as f64 * width_s))
}

/// Flows of the service beside the policed connections that ran at least twice their rate
/// while losing packets themselves (a call's media, in the policed connections' policed
/// period, losing at least `loss_min_share` of its RTP packets and twice what the control
/// calls lost; a transfer between its first and last loss, over `policing_min_losses` losses
/// and half a second at least): a bucket
/// per connection at that rate would have held them there, so the policed connections got
/// what was left of one bucket for all. Returns those flows and the bucket's rate: the
/// service's summed rate towards the client in the bins where a policed connection was busy.
fn shared_bucket(g: &Group, policed: &[u64], per_flow_bps: f64) -> Option<(Vec<u64>, f64)> {
    let cfg = g.cfg;
    let (c_lost, c_expected) = rtp_loss_down(g.controls);
    let control_call_loss = c_lost as f64 / c_expected.max(1) as f64;
    // The rate a flow kept while it lost packets: a call's media rate, a transfer's
    // delivery between its first and last loss (what came before, in a bucket's first
    // burst or before a delayed policer began, does not count).
    // The policed period: from the policed connections' first loss to their last, whole bins.
    let policed_flows = || g.targets.iter().filter(|f| policed.contains(&f.id()));
    let bin_us = policed_flows().find_map(|f| f.f.bins.as_ref())?.bin_us.max(1);
    let losses: Vec<_> = policed_flows().flat_map(|f| f.losses()).map(|e| e.at.micros()).collect();
    let (from_bin, to_bin) = (losses.iter().min()? / bin_us + 1, losses.iter().max()? / bin_us);
    let lossy_rate_bps = |f: &Facts| match f.rtp_loss_down() {
        Some(l) => {
            let share = l.share();
            let inside: Vec<u32> = f
                .bins(Direction::Down)
                .filter(|b| (from_bin..to_bin).contains(&b.0))
                .map(|b| b.1)
                .collect();
            (l.expected >= 50
                && share >= cfg.loss_min_share
                && share >= 2.0 * control_call_loss
                && inside.len() >= 2)
                .then(|| {
                    inside.iter().map(|&b| f64::from(b)).sum::<f64>() * 8e6
                        / (inside.len() as u64 * bin_us) as f64
                })
        }
        None => {
            let events = f.losses();
            let (first, last) = (events.first()?, events.last()?);
            let span_us = last.at.since(first.at);
            (events.len() as u32 >= cfg.policing_min_losses && span_us >= 500_000).then(|| {
                last.delivered_bytes.saturating_sub(first.delivered_bytes) as f64 * 8e6
                    / span_us as f64
            })
        }
    };
    let faster: Vec<u64> = g
        .targets
        .iter()
        .filter(|f| !policed.contains(&f.id()))
        .filter(|f| lossy_rate_bps(f).is_some_and(|r| r >= 2.0 * per_flow_bps))
        .map(|f| f.id())
        .collect();
    if faster.is_empty() {
        return None;
    }
    let busy = busy_bins(policed_flows());
    let (totals, bin_s) = down_bytes_per_bin(g, &|_| true);
    let rates: Vec<f64> =
        busy.iter().map(|bin| totals.get(bin).copied().unwrap_or(0) as f64 * 8.0 / bin_s).collect();
    Some((faster, median(&rates)?))
}

/// RTP packets lost towards the client and expected, over the calls among `flows`.
fn rtp_loss_down(flows: &[Facts]) -> (u64, u64) {
    (flows.iter().filter_map(Facts::rtp_loss_down))
        .fold((0, 0), |(l, e), x| (l + x.lost, e + x.expected))
}

/// Bytes towards the client per bin, summed over the service's flows that `keep` takes, and
/// the bins' width in seconds.
fn down_bytes_per_bin(
    g: &Group,
    keep: &dyn Fn(&Facts) -> bool,
) -> (std::collections::BTreeMap<u64, u64>, f64) {
    let mut totals = std::collections::BTreeMap::new();
    let mut bin_s = 0.5;
    for f in g.targets.iter().filter(|f| keep(f)) {
        if let Some(b) = &f.f.bins {
            bin_s = b.bin_us as f64 / 1e6;
        }
        for (bin, bytes) in f.bins(Direction::Down) {
            *totals.entry(bin).or_default() += u64::from(bytes);
        }
    }
    (totals, bin_s)
}

/// A bucket's output may run ahead of its token line by its depth: real policers' depths run
/// from a few kB to about a second at their rate (Flach et al.), and Linux's nftables `limit`
/// holds a second at its rate on top of its burst; beyond a second at the rate and 256 kB
/// more, the traffic was not held by that bucket. (The larger of the two alone was exceeded
/// by an nftables bucket for all at 2 Mbit/s with a 32-kB burst, its rate estimated 0.2 %
/// low: named random loss.)
fn bucket_depth_limit_bytes(rate_bps: f64) -> f64 {
    rate_bps / 8.0 + 262_144.0
}

/// The service's traffic towards the client ran further ahead of the token line of one
/// bucket for all at `rate_bps` than such a bucket's depth allows
/// ([`bucket_depth_limit_bytes`]), bin by bin over the window: a flat sum of paced streams and
/// calls at that rate is no bucket when a download beside them ran many times faster.
fn beyond_one_bucket(g: &Group, rate_bps: f64) -> bool {
    let (totals, bin_s) = down_bytes_per_bin(g, &|_| true);
    bins_beyond_one_bucket(&totals, bin_s, rate_bps)
}

/// [`beyond_one_bucket`] on the service's bytes towards the client per bin.
fn bins_beyond_one_bucket(
    totals: &std::collections::BTreeMap<u64, u64>,
    bin_s: f64,
    rate_bps: f64,
) -> bool {
    let (Some(&first), Some(&last)) = (totals.keys().next(), totals.keys().next_back()) else {
        return false;
    };
    // The excess over the token line, as a bucket that started full would see it.
    let per_bin = rate_bps / 8.0 * bin_s;
    let mut excess = 0f64;
    let limit = bucket_depth_limit_bytes(rate_bps);
    (first..=last).any(|bin| {
        excess = (excess + totals.get(&bin).copied().unwrap_or(0) as f64 - per_bin).max(0.0);
        excess > limit
    })
}

/// Whether one bucket polices every connection or one all of the service's traffic.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// The service's rate towards the client stays the same however many policed connections
    /// run at once: one bucket for all, at `rate_bps`.
    Aggregate { rate_bps: f64, concurrent_bins: usize, single_bins: usize },
    /// It grows with them: a bucket per connection.
    PerFlow { concurrent_bins: usize, single_bins: usize },
    /// The policed connections never ran both alone and together.
    Unknown,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Aggregate { .. } => "aggregate",
            Scope::PerFlow { .. } => "per_flow",
            Scope::Unknown => "unknown",
        }
    }
}

/// Bins in which a policed connection was busy, by how many were: how their summed rate
/// towards the client grows with their number. Per-flow buckets add a
/// connection's rate (`per_flow_bps`) for each; one bucket for all adds nothing.
fn scope(g: &Group, policed: &[u64], per_flow_bps: f64) -> Scope {
    use std::collections::BTreeMap;
    let mut active: BTreeMap<u64, usize> = BTreeMap::new();
    // Which policed connections were busy in each bin (bit i: the i-th of the first 64).
    let mut busy_sets: BTreeMap<u64, u64> = BTreeMap::new();
    // Bytes per bin of the policed flows (other traffic, policed or not, only blurs the sum).
    let (total, bin_s) = down_bytes_per_bin(g, &|f| policed.contains(&f.id()));
    for (i, f) in g.targets.iter().filter(|f| policed.contains(&f.id())).enumerate() {
        for bin in f.busy_interior(Direction::Down) {
            *active.entry(bin).or_default() += 1;
            if i < 64 {
                *busy_sets.entry(bin).or_default() |= 1 << i;
            }
        }
    }
    let rate = |sums: &BTreeMap<u64, u64>, bins: &[u64]| {
        let rates: Vec<f64> =
            bins.iter().map(|b| sums.get(b).copied().unwrap_or(0) as f64 * 8.0 / bin_s).collect();
        median(&rates)
    };
    let single: Vec<u64> = active.iter().filter(|e| *e.1 == 1).map(|e| *e.0).collect();
    let concurrent: Vec<u64> = active.iter().filter(|e| *e.1 >= 2).map(|e| *e.0).collect();
    let (concurrent_bins, single_bins) = (concurrent.len(), single.len());
    // How the summed rate grows with the number of policed connections busy at once
    // (Theil–Sen over the busy bins: a bucket's first burst, and a flow alone below the rate
    // at the traffic's edges, pulled a least-squares slope up by more than a connection's
    // rate in the lab's aggregate policers at 1.5-3 Mbit/s): per-flow buckets add a
    // connection's rate for each, one bucket for all adds nothing. The counts must vary for
    // the slope to say anything.
    let points: Vec<(f64, f64)> = active
        .iter()
        .map(|(bin, &k)| (k as f64, total.get(bin).copied().unwrap_or(0) as f64 * 8.0 / bin_s))
        .collect();
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for &k in active.values() {
        *counts.entry(k).or_default() += 1;
    }
    if counts.values().filter(|&&n| n >= 3).count() < 2 {
        return match shares_offset(g, policed, &busy_sets) {
            Some(bins) => match rate(&total, &bins) {
                Some(rate_bps) => Scope::Aggregate { rate_bps, concurrent_bins, single_bins },
                None => Scope::Unknown,
            },
            None => Scope::Unknown,
        };
    }
    let slope = theil_sen_slope(&points).unwrap_or(0.0);
    if slope < 0.5 * per_flow_bps {
        let all: Vec<u64> = active.keys().copied().collect();
        match rate(&total, &all) {
            Some(rate_bps) => Scope::Aggregate { rate_bps, concurrent_bins, single_bins },
            None => Scope::Unknown,
        }
    } else {
        Scope::PerFlow { concurrent_bins, single_bins }
    }
}

/// Bins in which the same connections were busy, two or more, at least this many: 4 s of
/// the 500-ms bins.
const SHARE_MIN_BINS: usize = 8;

/// Where as many connections are busy in every bin, how their sum grows with their number
/// says nothing; one bucket for all still shows in how they share it. Each one's rate swings
/// from bin to bin by a large part of it (a quarter of its mean, by the median connection),
/// and what one gains the others lose: their sum swings far less than they do (at
/// most half as much as their swings add up to when independent). A connection under a
/// bucket of its own follows its token line, off it by a packet or two a bin. Swings are
/// median absolute deviations (one bin of a bucket's first burst or of a stall does not
/// rule them). Judged over the largest set of bins in which the same two or more
/// connections were busy (at least [`SHARE_MIN_BINS`]); those bins when the shares offset.
fn shares_offset(
    g: &Group,
    policed: &[u64],
    busy_sets: &std::collections::BTreeMap<u64, u64>,
) -> Option<Vec<u64>> {
    // The set of two or more busy connections that held in the most bins (counted plainly: a
    // map of sets cost the router's binary 10 kB).
    let sets: Vec<u64> = busy_sets.values().copied().collect();
    let (mut set, mut most) = (0u64, 0usize);
    for &s in &sets {
        let n = sets.iter().filter(|&&o| o == s).count();
        if s.count_ones() >= 2 && (n, s) > (most, set) {
            (set, most) = (s, n);
        }
    }
    if most < SHARE_MIN_BINS {
        return None;
    }
    let bins: Vec<u64> = busy_sets.iter().filter(|e| *e.1 == set).map(|e| *e.0).collect();
    let swing = |xs: &mut Vec<f64>| {
        let mid = median(xs).unwrap_or(0.0);
        xs.iter_mut().for_each(|x| *x = (*x - mid).abs());
        median(xs).unwrap_or(0.0)
    };
    let mut sums = vec![0.0; bins.len()];
    let (mut relative, mut swings_squared) = (Vec::new(), 0.0);
    for (i, f) in g.targets.iter().filter(|f| policed.contains(&f.id())).enumerate().take(64) {
        if set & (1 << i) == 0 {
            continue;
        }
        let (own, _) = down_bytes_per_bin(g, &|o| o.id() == f.id());
        let mut rates: Vec<f64> =
            bins.iter().map(|b| own.get(b).copied().unwrap_or(0) as f64).collect();
        for (sum, r) in sums.iter_mut().zip(&rates) {
            *sum += r;
        }
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let own = swing(&mut rates);
        relative.push(own / mean.max(1.0));
        swings_squared += own * own;
    }
    let sum_swing = swing(&mut sums);
    let shares_swing = median(&relative).is_some_and(|r| r >= 0.25);
    (shares_swing && sum_swing * sum_swing <= 0.25 * swings_squared).then_some(bins)
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::{MSG, Rng, SEG, Sim, policed_schedule};
    use super::*;
    use crate::config::DetectConfig;

    /// What `judge` says of the service's flows in the one window of `sim`.
    fn on_group<T>(sim: Sim, judge: impl Fn(&Group) -> T) -> T {
        let cfg = DetectConfig { window_s: 60, ..DetectConfig::default() };
        let mut answers = Vec::new();
        sim.windows(&cfg, |flows, window, catalogue| {
            let recent = super::super::Recent::default();
            super::super::each_group(flows, window, catalogue, &cfg, &recent, |_, g| {
                answers.push(judge(g));
            });
        });
        assert_eq!(answers.len(), 1, "one window, one service");
        answers.remove(0)
    }

    /// Two downloads through one bucket for all at 500 kbit/s. Where the latest window to
    /// find them throttled put them under one bucket for all at that rate, the bucket goes on
    /// in this one (where this window's own sum is too short to show a scope,
    /// [`transfers_under_one_bucket`] names it so). Not where no window did, nor where the
    /// latest named one of them otherwise, nor for a bucket at a fifth of their sum.
    #[test]
    fn a_bucket_for_all_goes_on_where_the_latest_window_found_it() {
        let goes_on = |remembered: &[u64]| {
            let mut sim = Sim::default();
            let downloads = [(100_000, 400_000), (150_000, 400_000)];
            let schedule = policed_schedule(&downloads, 2e6, 40_000, (500_000.0, 16_384.0), true);
            for (i, &(start, bytes)) in downloads.iter().enumerate() {
                sim.tcp(MSG, start / 1000 - 50, 40).handshake().replay(&schedule[i], bytes).close();
            }
            let cfg = DetectConfig { window_s: 60, ..DetectConfig::default() };
            let mut answers = Vec::new();
            sim.windows(&cfg, |flows, window, catalogue| {
                let mut recent = super::super::Recent::default();
                let earlier = Timestamp::from_micros(window.end.micros() - 10_000_000);
                let entries = (flows.iter().map(|f| f.id))
                    .zip(remembered)
                    .map(|(id, &kbps)| id << CONTROL_KBPS_BITS | kbps);
                recent.policed.buckets.remember(earlier, entries.collect(), flow_of);
                super::super::each_group(flows, window, catalogue, &cfg, &recent, |_, g| {
                    let bulk: Vec<&Facts> = g.targets.iter().collect();
                    answers.push(bucket_goes_on(g, &bulk).map(|(rate_bps, _)| rate_bps));
                });
            });
            answers.remove(0)
        };
        assert_eq!(goes_on(&[500, 500]), Some(500_000.0));
        assert_eq!(goes_on(&[]), None);
        assert_eq!(goes_on(&[500, 0]), None);
        assert_eq!(goes_on(&[100, 100]), None);
    }

    /// [`beyond_one_bucket`] at `rate_bps` on the one window of `sim`.
    fn beyond(sim: Sim, rate_bps: f64) -> bool {
        on_group(sim, |g| beyond_one_bucket(g, rate_bps))
    }

    /// Downloads and short fetches through one bucket for all at 1.5 Mbit/s that holds a
    /// second at its rate on top of its burst (nftables' `limit`), beside a call that runs
    /// alone before and after them: their sum stays at the rate however many run, and
    /// neither the bins of the call alone nor the bucket's first burst make it grow with
    /// their number (a least-squares slope did, here and in the lab's aggregate policers at
    /// 1.5-3 Mbit/s, which were taken for random loss). Through a bucket each, the sum grows
    /// with them.
    #[test]
    fn the_scope_follows_the_sum_past_a_first_burst_and_a_call_alone() {
        let scope_of = |shared: bool| {
            let mut sim = Sim::default();
            let rate_bps = 1_500_000.0;
            // Four downloads, and a short fetch every 1.5 s.
            let mut downloads: Vec<(u64, u32)> =
                [2_000u64, 2_700, 4_100, 5_600].iter().map(|ms| (ms * 1000, 600_000)).collect();
            downloads.extend((0..8).map(|i| (2_500_000 + i * 1_500_000, 12_000)));
            let depth = rate_bps / 8.0 + 16_384.0;
            let schedule = policed_schedule(&downloads, 3e6, 40_000, (rate_bps, depth), shared);
            for (i, &(start_us, bytes)) in downloads.iter().enumerate() {
                let mut t = sim.tcp(MSG, start_us / 1000 - 50, 40);
                t.handshake().replay(&schedule[i], bytes).close();
            }
            sim.call(MSG, 1_000, 15, |_| true);
            on_group(sim, scope_of_all)
        };
        match scope_of(true) {
            Some(Scope::Aggregate { rate_bps, .. }) => {
                assert!((rate_bps / 1.5e6 - 1.0).abs() < 0.1, "{rate_bps}")
            }
            other => panic!("one bucket for all: {other:?}"),
        }
        let per_flow = scope_of(false);
        assert!(matches!(per_flow, Some(Scope::PerFlow { .. })), "a bucket each: {per_flow:?}");
    }

    /// Three downloads busy through the whole window, as many in every bin: how their sum
    /// grows with their number cannot show. Through one bucket for all at 900 kbit/s their
    /// shares swing while the sum stays flat: one bucket, at its rate. Through a bucket each
    /// at 300 kbit/s the same sum comes from three steady lines: no claim of one bucket.
    #[test]
    fn one_bucket_shows_in_shares_that_offset_when_the_count_never_changes() {
        let scope_of = |shared: bool| {
            let mut sim = Sim::default();
            let downloads: Vec<(u64, u32)> =
                [100u64, 400, 700].iter().map(|ms| (ms * 1000, 1_500_000)).collect();
            let (rate_bps, depth) =
                if shared { (900_000.0, 32_768.0) } else { (300_000.0, 16_384.0) };
            let schedule = policed_schedule(&downloads, 4e6, 40_000, (rate_bps, depth), shared);
            for (i, &(start_us, bytes)) in downloads.iter().enumerate() {
                sim.tcp(MSG, start_us / 1000 - 50, 40).handshake().replay(&schedule[i], bytes);
            }
            on_group(sim, scope_of_all)
        };
        match scope_of(true) {
            Some(Scope::Aggregate { rate_bps, .. }) => {
                assert!((rate_bps / 0.9e6 - 1.0).abs() < 0.1, "{rate_bps}")
            }
            other => panic!("one bucket for all: {other:?}"),
        }
        let per_flow = scope_of(false);
        assert!(!matches!(per_flow, Some(Scope::Aggregate { .. })), "a bucket each: {per_flow:?}");
    }

    /// A paced 2 Mbit/s stream is a flat sum, but a download beside it that ran at 24 Mbit/s
    /// went far past the token line of any bucket at ~2 Mbit/s; the same stream alone, or
    /// downloads through a real bucket for all, stay within a bucket's depth of it.
    #[test]
    fn a_bucket_for_all_never_runs_far_ahead_of_its_token_line() {
        let stream = |sim: &mut Sim, rng: &mut Rng| {
            sim.tcp(MSG, 100, 40).handshake().request(300).download(3_000_000, 2e6, SEG, 0.0, rng);
        };
        let (mut sim, mut rng) = (Sim::default(), Rng::new(15));
        stream(&mut sim, &mut rng);
        assert!(!beyond(sim, 2.1e6), "a paced stream alone");
        let (mut sim, mut rng) = (Sim::default(), Rng::new(15));
        stream(&mut sim, &mut rng);
        sim.tcp(MSG, 5_000, 40)
            .handshake()
            .request(300)
            .download(1_500_000, 24e6, SEG, 0.0, &mut rng);
        assert!(beyond(sim, 2.1e6), "a fast download beside it");
        // Two downloads through one bucket of 400 kbit/s and 16 kB for both.
        let mut sim = Sim::default();
        let downloads = [(100_000, 500_000), (4_000_000, 500_000)];
        let schedule =
            policed_schedule(&downloads, 1_200_000.0, 40_000, (400_000.0, 16_384.0), true);
        for (i, &(start, _)) in downloads.iter().enumerate() {
            sim.tcp(MSG, start / 1000 - 50, 40).handshake().replay(&schedule[i], 500_000).close();
        }
        assert!(!beyond(sim, 400_000.0), "a real bucket for all");
    }

    /// The service's bytes towards the client per half-second bin through an nftables
    /// bucket for all at 2 Mbit/s with a 32-kB burst (the lab, `aggregate-police` at
    /// `rate_kbit=2000`): its first burst, a second at the rate on top of the burst, then the
    /// rate, estimated 0.2 % low. Within one bucket's depth of the token line; a download at
    /// four times the rate after the same burst is not.
    #[test]
    fn a_first_burst_of_a_second_at_the_rate_is_a_buckets() {
        let bins = |steady_bytes: u64| -> std::collections::BTreeMap<u64, u64> {
            let first = [11_000, 29_000, 385_000].into_iter();
            first
                .chain(std::iter::repeat_n(steady_bytes, 24))
                .enumerate()
                .map(|(i, b)| (i as u64, b))
                .collect()
        };
        assert!(!bins_beyond_one_bucket(&bins(125_000), 0.5, 1_995_280.0));
        assert!(bins_beyond_one_bucket(&bins(500_000), 0.5, 1_995_280.0));
    }
}
