//! Throughput: Wehe-style differentiation (Li et al., SIGCOMM'19) and shaping.
//!
//! Differentiation compares per-bin throughput samples of the service's bulk TCP transfers with
//! those of comparable control transfers (same window, minimum RTT within `rtt_ratio`): the
//! two-sample KS test and the area between the CDFs must both call it, the target must be the
//! slower, and a jackknife over half-size resamples must agree; Bonferroni across the services
//! tested in the window. Area over the threshold without significance is `inconclusive`.
//!
//! Shaping looks at the service's aggregate downstream rate while its bulk transfers are busy:
//! pinned at a plateau, with the round trip grown (a queue) and no control connection queued
//! as much (one queue for everything is congestion), while control transfers ran clearly
//! faster. Shapers that tolerate no burst are hard to tell from a slow link passively;
//! the evidence says what was seen.

use std::collections::BTreeMap;

use serde_json::json;

use super::doubt::SHAPING_MIN_BUSY_BINS;
use super::facts::{Facts, network};
use super::stats::{cdf_area, ks_two_sample, mean, median, resample_agreement};
use super::{
    Detected, Detector, Doubt, Finding, Group, Mechanism, Outcome, examples, p_text, rate_text,
};
use crate::config::DetectConfig;
use crate::flow::Direction;

/// Control bulk flows comparable with the targets: minimum RTT within the ratio of the
/// targets' median minimum RTT, or within the absolute tolerance of it (flows without an RTT
/// are not comparable).
fn comparable_controls<'a>(g: &'a Group, target_rtt_us: Option<f64>) -> Vec<&'a Facts<'a>> {
    let ratio = g.cfg.rtt_ratio;
    let tolerance_us = g.cfg.rtt_tolerance_ms * 1000.0;
    g.controls
        .iter()
        .filter(|c| c.bulk_dir(g.cfg.bulk_min_bytes).is_some())
        .filter(|c| match (target_rtt_us, c.min_rtt_us()) {
            (Some(t), Some(r)) => {
                let r = r as f64;
                (r <= t * ratio && r * ratio >= t) || (r - t).abs() <= tolerance_us
            }
            (None, _) => true,
            (Some(_), None) => false,
        })
        .collect()
}

fn samples(flows: &[&Facts], min_bytes: u64) -> Vec<f64> {
    flows
        .iter()
        .filter_map(|f| f.bulk_dir(min_bytes).map(|d| f.busy_rates_bps(d)))
        .flatten()
        .collect()
}

pub(super) fn differentiation(g: &Group) -> Outcome {
    const NAME: Detector = Detector::ThroughputDifferentiation;
    let cfg = g.cfg;
    // Transfers cut by a reset or stalled are slow for that reason, judged by their own
    // detectors.
    let bulk: Vec<&Facts> = g
        .targets
        .iter()
        .filter(|f| f.bulk_dir(cfg.bulk_min_bytes).is_some())
        .filter(|f| f.server_reset().is_none() && !super::stall::stalled_or_stuck(f, g))
        .collect();
    if bulk.is_empty() {
        return Outcome::NotApplicable;
    }
    let rtts: Vec<f64> = bulk.iter().filter_map(|f| f.min_rtt_us()).map(|r| r as f64).collect();
    let target_rtt = median(&rtts);
    let controls = comparable_controls(g, target_rtt);
    let (t, c) = (samples(&bulk, cfg.bulk_min_bytes), samples(&controls, cfg.bulk_min_bytes));
    if t.len() < cfg.wehe_min_samples || c.len() < cfg.wehe_min_samples {
        // No control at a comparable distance. TCP's rate falls with the round trip: a
        // service at least as fast as farther controls, or as fast as nearer ones once their
        // shorter round trip is allowed for, shows no differentiation.
        let all: Vec<&Facts> =
            g.controls.iter().filter(|c| c.bulk_dir(cfg.bulk_min_bytes).is_some()).collect();
        // Per transfer, its goodput over its busy time (short fast transfers leave no inner
        // throughput bins, and must still count).
        let goodputs = |flows: &[&Facts]| -> Vec<f64> {
            flows
                .iter()
                .filter_map(|f| f.bulk_dir(cfg.bulk_min_bytes).and_then(|d| f.goodput_bps(d)))
                .collect()
        };
        let (t_goodput, c_goodput) = (goodputs(&bulk), goodputs(&all));
        let control_rtt = median(
            &all.iter().filter_map(|f| f.min_rtt_us()).map(|r| r as f64).collect::<Vec<_>>(),
        );
        let (dropped, queued, ..) = network_trace(g, &bulk, &all);
        if let (Some(mean_t), Some(mean_c), Some(t_rtt), Some(c_rtt)) =
            (median(&t_goodput), median(&c_goodput), target_rtt, control_rtt)
            && (mean_t >= 0.8 * mean_c * (c_rtt / t_rtt).min(1.0) || !(dropped || queued))
        {
            return Outcome::Clean {
                detector: NAME,
                evidence: json!({
                    "target_median_goodput_bps": mean_t.round(),
                    "control_median_goodput_bps": mean_c.round(),
                    "target_rtt_us": t_rtt.round(),
                    "control_rtt_us": c_rtt.round(),
                    "comparable_controls": 0,
                    "note": "no control at a comparable round trip; the service was no slower than the round trips explain, or slower with no loss and no queue (the server set the pace)",
                }),
            };
        }
        return Outcome::Inconclusive(Doubt::TooFewSamples {
            target_samples: t.len(),
            control_samples: c.len(),
            min_samples: cfg.wehe_min_samples,
            comparable_controls: controls.len(),
            rtt_ratio: cfg.rtt_ratio,
        });
    }
    let alpha = g.alpha();
    let (mean_t, mean_c) = (mean(&t).unwrap_or(0.0), mean(&c).unwrap_or(0.0));
    let threshold =
        if mean_t.max(mean_c) > cfg.wehe_fast_bps { cfg.wehe_area_fast } else { cfg.wehe_area };
    let decide = |a: &[f64], b: &[f64]| {
        cdf_area(a, b) >= threshold
            && ks_two_sample(a, b).p_value < alpha
            && mean(a).unwrap_or(0.0) < mean(b).unwrap_or(0.0)
    };
    let ks = ks_two_sample(&t, &c);
    let area = cdf_area(&t, &c);
    let evidence = json!({
        "target_samples": t.len(),
        "control_samples": c.len(),
        "target_mean_bps": mean_t.round(),
        "control_mean_bps": mean_c.round(),
        "ks_d": (ks.d * 1000.0).round() / 1000.0,
        "ks_p": ks.p_value,
        "area": (area * 1000.0).round() / 1000.0,
        "area_threshold": threshold,
        "alpha_bonferroni": alpha,
        "control_flows": examples(controls.iter().map(|f| f.id()), 10),
    });
    let slower = mean_t < mean_c;
    if !(area >= threshold && slower) {
        return Outcome::Clean { detector: NAME, evidence };
    }
    let (dropped, queued, t_loss, c_loss) = network_trace(g, &bulk, &controls);
    if !dropped && !queued {
        let mut evidence = evidence;
        evidence["loss_share"] = json!((t_loss * 1e4).round() / 1e4);
        evidence["control_loss_share"] = json!((c_loss * 1e4).round() / 1e4);
        evidence["note"] = json!(
            "slower, but no loss above the controls' and no queue: the server or the application set the pace"
        );
        return Outcome::Clean { detector: NAME, evidence };
    }
    if ks.p_value >= alpha {
        return Outcome::Inconclusive(Doubt::ThroughputNotSignificant { area, ks_p: ks.p_value });
    }
    let agreement = resample_agreement(
        &t,
        &c,
        cfg.wehe_jackknife_rounds,
        cfg.wehe_jackknife_fraction,
        0x0074_7765_6865,
        decide,
    );
    if agreement < cfg.wehe_jackknife_agreement {
        return Outcome::Inconclusive(Doubt::ResamplesDisagree { agreement });
    }
    let mut evidence = evidence;
    evidence["jackknife_agreement"] = json!(agreement);
    Outcome::Finding(Detected {
        finding: Finding::Throttled,
        mechanism: None,
        confidence: ((1.0 - ks.p_value) * agreement * 100.0).round().min(99.0) / 100.0,
        evidence,
        flows: examples(bulk.iter().map(|f| f.id()), 20),
        summary: format!(
            "transfers at {} against {} for comparable control transfers ({} flows, KS {}, \
             area {:.2})",
            rate_text(mean_t),
            rate_text(mean_c),
            bulk.len(),
            p_text(ks.p_value),
            area
        ),
    })
}

/// Whether the service's transfers show what a throttler leaves in the network: packets
/// dropped (at least 0.5 % and twice the controls' share) or held in a queue. Slower
/// transfers with neither are limited by the server or the application (a slow server), not
/// by the path. Also the loss shares, for the evidence.
fn network_trace(g: &Group, bulk: &[&Facts], controls: &[&Facts]) -> (bool, bool, f64, f64) {
    let pooled = |flows: &[&Facts<'_>]| super::loss::pooled_share(flows.iter().copied());
    let (t_loss, c_loss) = (pooled(bulk), pooled(controls));
    let dropped = t_loss >= 0.005 && t_loss >= 2.0 * c_loss;
    let queued = queue_shown(g.cfg, bulk.iter().copied())
        && one_queue_for_everything(most_queued_control(g), rtt_growth_us(bulk).unwrap_or(0))
            .is_none();
    (dropped, queued, t_loss, c_loss)
}

/// The most a round trip grew within one of `flows` (connections to one address start at
/// different base round trips), to its handshake or its second largest sample as
/// [`queue_shown`] takes them: one late echo is no queue's measure (a congested link's
/// 10-s window, curl with BBR: one sample of 597 ms where the queue held ~100 ms made the
/// service's queue seem five times the controls', and the window `inconclusive`).
fn rtt_growth_us(flows: &[&Facts]) -> Option<u64> {
    (flows.iter()).filter_map(|f| Some(queued_rtt_us(f)?.saturating_sub(f.min_rtt_us()?))).max()
}

/// The least and greatest round trip of the control connection whose round trip grew the
/// most (each against its own least: controls lie at other distances), beyond what a path
/// without a queue shows.
fn most_queued_control(g: &Group) -> Option<(u64, u64)> {
    g.controls
        .iter()
        .filter_map(|c| Some((c.min_rtt_us()?, c.max_rtt_us()?)))
        .filter(|&(lo, hi)| hi.saturating_sub(lo) as f64 > super::policing::RTT_SLACK_US)
        .max_by_key(|&(lo, hi)| hi.saturating_sub(lo))
}

/// The [`most_queued_control`] `control_queue` when it grew by half the service's
/// `service_growth_us` or more: the queue is one for everything (congestion, bursty cross
/// traffic), not the service's, however long its transfers or fast a control ran at another
/// moment.
fn one_queue_for_everything(
    control_queue: Option<(u64, u64)>,
    service_growth_us: u64,
) -> Option<(u64, u64)> {
    control_queue.filter(|&(lo, hi)| 2 * hi.saturating_sub(lo) >= service_growth_us)
}

/// Whether `flows` show a queue: in some connection the handshake's round trip, or two
/// samples, grew from the least of all as [`queue_grew`] says. A queue delays every packet
/// through it while it lasts; one late echo is something else: a server's think time
/// behind an acknowledgement the capture missed, or a delayed ACK.
pub(super) fn queue_shown<'f, 'a: 'f>(
    cfg: &DetectConfig,
    flows: impl Iterator<Item = &'f Facts<'a>> + Clone,
) -> bool {
    let least = flows.clone().filter_map(|f| f.min_rtt_us()).min();
    flows.into_iter().any(|f| queue_grew(cfg, least, queued_rtt_us(f)))
}

/// What a queue shows in a connection: its handshake's round trip or its second largest
/// sample, whichever is larger (one late echo is no queue).
fn queued_rtt_us(f: &Facts) -> Option<u64> {
    f.handshake_rtt_us().max(f.second_max_rtt_us())
}

/// The round trip grew from `lo` to `hi` beyond what a path without a queue shows (the
/// policing and random-loss detectors' "no queue"): by more than `policing_rtt_inflation` and
/// [`RTT_SLACK_US`](super::policing::RTT_SLACK_US), or by `shaping_rtt_growth_ms` (a queue,
/// [`queue_grew`]): a queue delays by its own length whatever the path's base, and on a path
/// of 240 ms the proportional allowance alone (180 ms) took a shaper's 200-ms queue for none,
/// and its drops for a policer's.
pub(super) fn grown_past_no_queue(cfg: &DetectConfig, lo: f64, hi: f64) -> bool {
    let allowance = ((cfg.policing_rtt_inflation - 1.0) * lo + super::policing::RTT_SLACK_US)
        .min(cfg.shaping_rtt_growth_ms as f64 * 1000.0);
    hi > lo + allowance
}

/// The round trip grew from `lo` to `hi` as a queue makes it: by `shaping_rtt_growth_ms` and
/// `shaping_rtt_factor` at once.
pub(super) fn queue_grew(cfg: &DetectConfig, lo: Option<u64>, hi: Option<u64>) -> bool {
    match (lo, hi) {
        (Some(lo), Some(hi)) => {
            hi >= lo + cfg.shaping_rtt_growth_ms * 1000
                && hi as f64 >= cfg.shaping_rtt_factor * lo as f64
        }
        _ => false,
    }
}

pub(super) fn shaping(g: &Group) -> Outcome {
    const NAME: Detector = Detector::Shaping;
    let cfg = g.cfg;
    // Transfers towards the client: TCP downloads, and media or streams over UDP (a shaper
    // queues a call as much as a download; with a rate below the call's, no download gets far).
    let media_down = |f: &Facts| {
        f.udp().is_some()
            && f.bins(Direction::Down).map(|b| u64::from(b.1)).sum::<u64>() >= cfg.bulk_min_bytes
    };
    let downloads = |f: &&Facts| f.bulk_dir(cfg.bulk_min_bytes) == Some(Direction::Down);
    let mut bulk: Vec<&Facts> =
        g.targets.iter().filter(downloads).filter(|f| f.f.bins.is_some()).collect();
    // Without a download, the media. A call's steady rate is no plateau by itself: the
    // queue must show in the handshakes of most of the service's connections (their median
    // round trip; handshakes are unambiguous, where a stalled connection's retransmissions
    // are not).
    let media_only = bulk.is_empty();
    if media_only {
        bulk = g.targets.iter().filter(|f| media_down(f) && f.f.bins.is_some()).collect();
    }
    if bulk.is_empty() {
        return Outcome::NotApplicable;
    }
    let min_rtt = g.targets.iter().filter_map(|f| f.min_rtt_us()).min();
    // A queue per destination (Belarus 2020): the round trip grew towards some of the
    // service's addresses and not towards the others.
    let queued_at = |addr: std::net::IpAddr| {
        let flows = g.targets.iter().filter(|f| f.f.server.addr == addr);
        queue_grew(cfg, min_rtt, flows.filter_map(|f| f.max_rtt_us()).max())
    };
    let addresses = g.tcp_server_addresses();
    let queued_addrs: Vec<std::net::IpAddr> =
        addresses.iter().copied().filter(|a| queued_at(*a)).collect();
    let queued: Vec<String> = queued_addrs.iter().map(ToString::to_string).collect();
    // Some addresses queued and others not: the plateau is the queued ones'.
    let in_scope = |f: &Facts| {
        queued_addrs.is_empty()
            || queued_addrs.len() == addresses.len()
            || queued_addrs.contains(&f.f.server.addr)
    };
    let bulk: Vec<&Facts> = bulk.into_iter().filter(|f| in_scope(f)).collect();
    if bulk.is_empty() {
        return Outcome::NotApplicable;
    }
    // Busy bins: inside some bulk transfer's busy period, edges left out.
    let mut busy = BTreeMap::new();
    for f in &bulk {
        for bin in f.busy_interior(Direction::Down) {
            busy.insert(bin, 0u64);
        }
    }
    let bin_s = bulk[0].f.bins.as_ref().map_or(0.5, |b| b.bin_us as f64 / 1e6);
    for f in g.targets.iter().filter(|f| in_scope(f)) {
        for (bin, bytes) in f.bins(Direction::Down) {
            if let Some(sum) = busy.get_mut(&bin) {
                *sum += u64::from(bytes);
            }
        }
    }
    let rates: Vec<f64> = busy.values().map(|&b| b as f64 * 8.0 / bin_s).collect();
    let max_rtt = if media_only {
        let handshakes: Vec<f64> = g
            .targets
            .iter()
            .filter(|f| in_scope(f))
            .filter_map(|f| f.handshake_rtt_us())
            .map(|r| r as f64)
            .collect();
        median(&handshakes).map(|r| r as u64)
    } else {
        // The queue shows in every connection through it: a download's own samples are few
        // (its client sends pure ACKs, whose TSvals arm no probe: 2 samples in 11 s of a
        // download the lab's `shape` run 3801 held to 1.4 Mbit/s behind ~300 ms of queue),
        // the handshakes of the connections opened beside it to the same addresses are not.
        let beside = g.targets.iter().filter(|f| in_scope(f)).filter_map(queued_rtt_us).max();
        bulk.iter().filter_map(|f| f.max_rtt_us()).max().max(beside)
    };
    let grown =
        queue_grew(cfg, min_rtt, max_rtt) && (media_only || queue_shown(cfg, g.targets.iter()));
    // A shaper queues: without a grown round trip there is none, however short the
    // transfers; with one, a plateau needs enough busy bins to be seen.
    if !grown {
        return Outcome::Clean {
            detector: NAME,
            evidence: json!({ "busy_bins": rates.len(), "min_rtt_us": min_rtt,
                              "max_rtt_us": max_rtt, "rtt_grown": false }),
        };
    }
    let control_queue = most_queued_control(g);
    let service_growth_us = rtt_growth_us(&bulk)
        .unwrap_or_else(|| max_rtt.unwrap_or(0).saturating_sub(min_rtt.unwrap_or(0)));
    if let Some((lo, hi)) = one_queue_for_everything(control_queue, service_growth_us) {
        return Outcome::Clean {
            detector: NAME,
            evidence: json!({ "busy_bins": rates.len(), "min_rtt_us": min_rtt,
                              "max_rtt_us": max_rtt, "control_rtt_us": [lo, hi],
                              "note": "control connections queued as much: one queue for everything" }),
        };
    }
    // Too few busy bins to see a plateau: a doubt, unless the control connections lost
    // about as large a share of their packets (a third of the service's at least): one
    // bottleneck drops from everything (bursty cross traffic's 5-s windows, where the
    // controls' transfers missed the burst that queued the service's).
    let (service_loss, control_loss) =
        (super::loss::pooled_share(bulk.iter().copied()), super::loss::pooled_share(g.controls));
    if rates.len() < SHAPING_MIN_BUSY_BINS
        && control_loss >= cfg.loss_min_share
        && control_loss * 3.0 >= service_loss
    {
        return Outcome::Clean {
            detector: NAME,
            evidence: json!({ "busy_bins": rates.len(), "loss_share": service_loss,
                              "control_loss_share": control_loss }),
        };
    }
    if rates.len() < SHAPING_MIN_BUSY_BINS {
        return Outcome::Inconclusive(Doubt::ShapingTooFewBins {
            min_rtt_us: min_rtt.unwrap_or(0),
            max_rtt_us: max_rtt.unwrap_or(0),
            busy_bins: rates.len(),
        });
    }
    let plateau = median(&rates).unwrap_or(0.0);
    let m = mean(&rates).unwrap_or(0.0);
    let cv = (rates.iter().map(|r| (r - m).powi(2)).sum::<f64>() / rates.len() as f64).sqrt()
        / m.max(1.0);
    let control_bps = g
        .controls
        .iter()
        .filter_map(|c| c.bulk_dir(cfg.bulk_min_bytes).and_then(|d| c.goodput_bps(d)))
        .fold(0.0f64, f64::max);
    let evidence = json!({
        "plateau_bps": plateau.round(),
        "busy_bins": rates.len(),
        "bin_s": bin_s,
        "cv": (cv * 1000.0).round() / 1000.0,
        "min_rtt_us": min_rtt,
        "max_rtt_us": max_rtt,
        "control_max_goodput_bps": control_bps.round(),
        "note": "burst-intolerant shapers are hard to tell from a slow link passively",
    });
    // Towards some addresses only: their transfers against those to the service's other
    // addresses. A queue that slows them to half or less needs no flat plateau to show
    // (behind a long round trip TCP ramps up for seconds).
    let per_address = !queued_addrs.is_empty() && queued_addrs.len() < addresses.len();
    let goodput = |flows: &mut dyn Iterator<Item = &Facts>| {
        median(&flows.filter_map(|f| f.goodput_bps(Direction::Down)).collect::<Vec<_>>())
    };
    // Only towards an address of the same network as a faster one (one site: a few
    // hundred milliseconds more is no distance); a far site of the service is slower anyway.
    let same_site = queued_addrs
        .iter()
        .all(|q| addresses.iter().any(|a| !queued_addrs.contains(a) && network(*a) == network(*q)));
    let slowed = per_address
        && same_site
        && match (
            goodput(&mut bulk.iter().copied()),
            goodput(&mut g.targets.iter().filter(|f| {
                !in_scope(f) && f.bulk_dir(cfg.bulk_min_bytes) == Some(Direction::Down)
            })),
        ) {
            (Some(queued), Some(others)) => queued <= 0.5 * others,
            _ => false,
        };
    if cv > cfg.shaping_max_cv && !slowed {
        return Outcome::Clean { detector: NAME, evidence };
    }
    // A control that queued on a link no faster: one bottleneck for everything.
    if let Some((lo, hi)) = control_queue
        && queue_grew(cfg, Some(lo), Some(hi))
        && control_bps < cfg.control_margin * plateau
    {
        let mut evidence = evidence;
        evidence["control_rtt_us"] = json!([lo, hi]);
        return Outcome::Clean { detector: NAME, evidence };
    }
    if control_bps < cfg.control_margin * plateau {
        return Outcome::Inconclusive(Doubt::ShapingControlsNoFaster {
            plateau_bps: plateau,
            control_bps,
        });
    }
    let mut evidence = evidence;
    evidence["queued_addresses"] = json!(queued);
    evidence["addresses"] = json!(addresses.len());
    let towards = if queued.len() < addresses.len() {
        format!(
            " towards {} of {} addresses ({})",
            queued.len(),
            addresses.len(),
            queued.join(", ")
        )
    } else {
        String::new()
    };
    Outcome::Finding(Detected {
        finding: Finding::Throttled,
        mechanism: Some(Mechanism::Shaping),
        confidence: ((1.0 - cv).clamp(0.5, 0.9) * 100.0).round() / 100.0,
        evidence,
        flows: examples(bulk.iter().map(|f| f.id()), 20),
        summary: format!(
            "downloads shaped to {}{towards} (round trip up to {} ms from {} ms); control \
             traffic reached {}",
            rate_text(plateau),
            max_rtt.unwrap_or(0) / 1000,
            min_rtt.unwrap_or(0) / 1000,
            rate_text(control_bps)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue's growth is told the same on near and far paths: on a 20-ms path 70 ms of
    /// growth is allowed (a delayed ACK, a sample across a loss), on a 240-ms path no more
    /// than a queue's 100 ms, where the proportional allowance alone let a shaper's 200-ms
    /// queue pass for none.
    #[test]
    fn a_queue_grows_the_round_trip_by_its_own_length() {
        let cfg = DetectConfig::default();
        let grown = |lo_ms: f64, hi_ms: f64| grown_past_no_queue(&cfg, lo_ms * 1e3, hi_ms * 1e3);
        assert!(!grown(20.0, 85.0) && grown(20.0, 95.0));
        assert!(!grown(240.0, 330.0) && grown(240.0, 350.0) && grown(240.0, 414.0));
    }
}
