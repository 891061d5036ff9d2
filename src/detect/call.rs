//! Call degradation: the service's calls (UDP flows with RTP towards the client) against the
//! control calls of the window. Media loss (RTP sequence numbers; one-sided Fisher's exact
//! tests on lost packets and on runs of them against the control calls'; not when most runs
//! came with a control flow's loss, a queue they share), jitter beyond a jitter buffer and
//! three times the control calls', one-way silence (one direction stops for
//! `call_silence_s` while the other goes on), and a step down in the media rate at one change
//! point (delayed throttling; Wehe segments with PELT, one change point is its simplest case).
//! Without a control call the answer is `inconclusive`: a lossy radio link hurts every call.
//!
//! A call whose media towards the client never comes, or dies after its first packets (the
//! client sends RTP, next to nothing comes back: Russia's call blocking since August 2025,
//! inbound UDP cut after 4–6 packets on mobile networks), is a call too: `call_degraded`
//! against control calls whose media flows both ways, `inconclusive` without them; never
//! silence.
//!
//! Media is RTP, or, for call protocols of their own with no RTP header (Telegram's
//! reflectors), a steady stream of datagrams that are not STUN, to a port other than QUIC's
//! 443 ([`media`]). Without sequence numbers such a call's loss and jitter are not known; its
//! one-way media, silences and rate steps are judged as an RTP call's. That is judged per call, not per leg: a one-way leg beside another leg of the
//! same call (the service's, same client address or the call's host, within
//! [`CALL_LEG_GAP_US`](crate::classify::CALL_LEG_GAP_US)) with RTP both ways is ICE moving the
//! media to another path (peer to peer or relay), not a one-way call. Each window judges the window's part of a call (its media packets, losses and
//! rate there).

use serde_json::{Value, json};

use super::doubt::OneWayCalls;
use super::facts::Facts;
use super::policing::SHARED_LOSS_MIN_US;
use super::stats::{fisher_exact_greater, mean_change_point};
use super::{
    Detected, Detector, Doubt, Finding, Group, Mechanism, Outcome, examples, p_text, rate_text,
};
use crate::classify::QUIC_PORT;
use crate::flow::Direction;
use crate::measure::call::RtpLoss;

/// What one call showed.
struct Call<'a> {
    f: &'a Facts<'a>,
    /// Over both RTP streams towards the client (audio and video): lost packets, the runs
    /// they came in, expected packets.
    lost: u64,
    loss_runs: u64,
    expected: u64,
    jitter_us: Option<u64>,
    /// Seconds one direction was silent while the other went on, and which one.
    silence: Option<(&'static str, f64)>,
    /// (rate before, rate after, p) of a significant step down.
    step: Option<(f64, f64, f64)>,
    /// The lower rate over the higher at a significant change of the media rate, down or up.
    swing: Option<f64>,
    /// The share of its runs of lost media that came with a control flow's loss (a
    /// service's call with such runs; see [`lost_with_controls`]).
    lost_with_controls: Option<f64>,
}

/// The client's media packets in the window that make a call judgeable one way.
const ONE_WAY_MIN_PACKETS: u64 = 50;

/// The longest mean gap between a direction's datagrams that still makes them media when they
/// carry no RTP header: audio sends one every 20-60 ms.
const MEDIA_MAX_MEAN_GAP_US: u64 = 100_000;

/// Whether a direction of a UDP flow carries call media: RTP, or datagrams that are not all
/// STUN, at least one every [`MEDIA_MAX_MEAN_GAP_US`] on average, to a port other than 443
/// (QUIC, whose blocking the blocking detector judges).
fn media(f: &Facts, dir: Direction) -> bool {
    let Some(u) = f.udp() else { return false };
    let d = &u.dirs[dir];
    if d.rtp().is_some() {
        return true;
    }
    let stun = u64::from(u.stun.requests) + u64::from(u.stun.request_retransmissions);
    f.f.server.port != QUIC_PORT
        && f.f.measures.dirs[dir].packets > stun + u64::from(u.stun.answered)
        && d.mean_gap_us().is_some_and(|g| g <= MEDIA_MAX_MEAN_GAP_US)
}

/// Packets of a direction in the window that are not STUN (at most: the window's requests and
/// responses are taken off either direction).
fn media_packets(f: &Facts, dir: Direction) -> u64 {
    let (requests, answered) = f.stun_requests();
    f.packets(dir).saturating_sub(requests + answered)
}

/// A call in the window whose client sends media ([`sends_media`]) but which gets (next to)
/// none back: the client's packets and the ones that came back.
fn one_way(f: &Facts) -> Option<(u64, u64)> {
    let (up, down) = (f.packets(Direction::Up), f.packets(Direction::Down));
    (down * 20 <= up).then_some((up, down))
}

/// Client-sent media in the window: a call that could have been one-way.
fn sends_media(f: &&Facts) -> bool {
    media(f, Direction::Up) && media_packets(f, Direction::Up) >= ONE_WAY_MIN_PACKETS
}

/// Another leg of `f`'s call carries RTP both ways.
fn media_moved(f: &Facts, g: &Group) -> bool {
    use crate::classify::CALL_LEG_GAP_US;
    g.targets.iter().any(|o| {
        o.id() != f.id()
            && o.f.call_client() == f.f.call_client()
            && o.f.first_at <= f.f.last_at.add_micros(CALL_LEG_GAP_US)
            && f.f.first_at <= o.f.last_at.add_micros(CALL_LEG_GAP_US)
            && media(o, Direction::Up)
            && media(o, Direction::Down)
    })
}

fn call<'a>(f: &'a Facts<'a>, g: &Group) -> Option<Call<'a>> {
    let cfg = g.cfg;
    let u = f.udp()?;
    let jitter_us = match u.dirs.down.rtp() {
        Some(rtp) => rtp.jitter_us,
        // Media of a protocol of its own: no loss or jitter to tell, the rest as RTP's.
        None if media(f, Direction::Down) && media(f, Direction::Up) => None,
        None => return None,
    };
    let RtpLoss { lost, expected, runs: loss_runs } = match f.rtp_loss_down() {
        Some(loss) if loss.expected >= 50 => loss,
        Some(_) => return None,
        None if media_packets(f, Direction::Down) >= 50 => RtpLoss::default(),
        None => return None,
    };
    let dirs = &f.f.measures.dirs;
    let silence_us = (cfg.call_silence_s * 1e6) as u64;
    // Media towards the client stopped while the client went on sending, or a gap in either
    // direction mid-call. (The far side sending on for a moment after the client hung up is
    // how calls end, not a silence.)
    let silence = if dirs.up.last_at.since(dirs.down.last_at) >= silence_us {
        Some(("towards the client", dirs.up.last_at.since(dirs.down.last_at) as f64 / 1e6))
    } else if u.dirs.down.max_gap_us >= silence_us {
        Some(("towards the client", u.dirs.down.max_gap_us as f64 / 1e6))
    } else if u.dirs.up.max_gap_us >= silence_us {
        Some(("towards the server", u.dirs.up.max_gap_us as f64 / 1e6))
    } else {
        None
    };
    let change = f.f.bins.as_ref().and_then(|b| {
        let s: Vec<u32> = f.bins(Direction::Down).map(|(_, v)| v).collect();
        let (a, z) = (s.iter().position(|&v| v > 0)?, s.iter().rposition(|&v| v > 0)?);
        let bin_s = b.bin_us as f64 / 1e6;
        let rates: Vec<f64> = s[a..=z].iter().map(|&v| f64::from(v) * 8.0 / bin_s).collect();
        mean_change_point(&rates, 4).filter(|cp| cp.p_value < g.alpha())
    });
    let step = change
        .filter(|cp| cp.mean_after < cfg.call_step_ratio * cp.mean_before)
        .map(|cp| (cp.mean_before, cp.mean_after, cp.p_value));
    let swing = change.map(|cp| {
        cp.mean_before.min(cp.mean_after) / cp.mean_before.max(cp.mean_after).max(f64::MIN_POSITIVE)
    });
    Some(Call {
        f,
        lost,
        loss_runs,
        expected,
        jitter_us,
        silence,
        step,
        swing,
        lost_with_controls: None,
    })
}

/// The times of the control flows' losses towards the client in the window, sorted: their
/// TCP loss events and their calls' runs of lost media.
fn control_loss_times(g: &Group) -> Vec<u64> {
    let mut times = super::policing::control_loss_times(g);
    times.extend(g.controls.iter().flat_map(|c| c.media_losses()).map(|e| e.at.micros()));
    times.sort_unstable();
    times
}

/// The share of the call's runs of lost media towards the client that came with a control
/// flow's loss: one within the time from two packet gaps (the call's mean) and
/// [`SHARED_LOSS_MIN_US`] before the packet that showed the run (the run was dropped in
/// between) to that much after it. `None` without such runs in the window.
fn lost_with_controls(c: &Call, control_losses: &[u64]) -> Option<f64> {
    let events = c.f.media_losses();
    let gap_us = c.f.udp().and_then(|u| u.dirs.down.mean_gap_us()).unwrap_or(0);
    let reach_us = (SHARED_LOSS_MIN_US + 2 * gap_us, SHARED_LOSS_MIN_US);
    let together = super::policing::near_controls(&events, control_losses, reach_us);
    (!events.is_empty()).then(|| together as f64 / events.len() as f64)
}

fn row(c: &Call) -> Value {
    json!({
        "flow": c.f.id(),
        "rtp_expected": c.expected,
        "rtp_lost": c.lost,
        "rtp_loss_runs": c.loss_runs,
        "loss": (c.lost as f64 / c.expected.max(1) as f64 * 1e4).round() / 1e4,
        "jitter_ms": c.jitter_us.map(|j| j as f64 / 1000.0),
        "silence": c.silence.map(|(d, s)| json!({ "direction": d, "seconds": s })),
        "rate_step_bps": c.step.map(|(b, a, p)| json!({ "before": b.round(), "after": a.round(), "p": p })),
        "lost_with_controls": c.lost_with_controls.map(|s| (s * 1000.0).round() / 1000.0),
    })
}

pub(super) fn detect(g: &Group) -> Outcome {
    let one_way = one_way_calls(g);
    match (two_way_calls(g), one_way) {
        (found @ Outcome::Finding(_), _) => found,
        (_, found @ Outcome::Finding(_)) => found,
        (Outcome::NotApplicable | Outcome::Clean { .. }, doubt @ Outcome::Inconclusive(_)) => doubt,
        (two_way, _) => two_way,
    }
}

/// Calls with media towards the client: loss, jitter, silences, rate steps.
fn two_way_calls(g: &Group) -> Outcome {
    const NAME: Detector = Detector::Calls;
    let cfg = g.cfg;
    let mut calls: Vec<Call> = g.targets.iter().filter_map(|f| call(f, g)).collect();
    if calls.is_empty() {
        return Outcome::NotApplicable;
    }
    let control_losses = control_loss_times(g);
    for c in &mut calls {
        c.lost_with_controls = lost_with_controls(c, &control_losses);
    }
    let controls: Vec<Call> = g.controls.iter().filter_map(|f| call(f, g)).collect();
    let (c_lost, c_runs, c_expected) = controls
        .iter()
        .fold((0, 0, 0), |(l, r, e), c| (l + c.lost, r + c.loss_runs, e + c.expected));
    let c_loss = c_lost as f64 / c_expected.max(1) as f64;
    let alpha = g.alpha();
    let mut doubtful = Vec::new();
    let mut degraded = Vec::new();
    for c in &calls {
        let loss = c.lost as f64 / c.expected.max(1) as f64;
        let mut why = Vec::new();
        // At least three times the control calls' loss, and significantly more both in lost
        // packets and in runs of them: losses on a congested link come in bursts (one queue
        // overflow takes several packets of one call and none of another), so a packet-level
        // test alone calls two calls on one link different; a dropper's losses are runs of
        // their own.
        // And not lost with the controls (at least `SHARED_LOSS_SHARE` of its runs): a queue
        // every flow crosses drops from all of them when it overflows, more from one call
        // than from another as their packets fall (a 10-s window of the lab's congestion,
        // offloads on: the service's call lost 8 % against the control call's 2.2 %,
        // p=2e-5); a dropper on the service drops its media alone.
        let shared = c.lost_with_controls.is_some_and(|s| s >= super::policing::SHARED_LOSS_SHARE);
        if loss >= cfg.call_loss && loss >= 3.0 * c_loss && !shared {
            let p = fisher_exact_greater(c.lost, c.expected, c_lost, c_expected)
                .max(fisher_exact_greater(c.loss_runs, c.expected, c_runs, c_expected));
            if c_expected > 0 && p < alpha {
                why.push(format!(
                    "loses {:.0}% of its media towards the client (control calls {:.1}%, {})",
                    loss * 100.0,
                    c_loss * 100.0,
                    p_text(p)
                ));
            }
        }
        if let Some((dir, s)) = c.silence
            && !controls.is_empty()
            && !controls.iter().any(|k| k.silence.is_some_and(|(d, _)| d == dir))
        {
            why.push(format!("went silent {dir} for {s:.1} s while the other side went on"));
        }
        let control_jitter_ms =
            controls.iter().filter_map(|k| k.jitter_us).max().map(|j| j as f64 / 1000.0);
        if let (Some(j), Some(cj)) = (c.jitter_us.map(|j| j as f64 / 1000.0), control_jitter_ms)
            && j >= cfg.call_jitter_ms
            && j >= 3.0 * cj
        {
            why.push(format!("arrives with {j:.0} ms of jitter (control calls {cj:.0} ms)"));
        }
        // A rate step beside control calls that lose media themselves (`call_loss`) is the
        // link's trouble: on a congested link, one call's sender backed off and the other's
        // did not (a 5-s window of the lab's congestion: 307 to 139 kbit/s while the control
        // call lost 12 % of its media). Control calls without RTP cannot show that they lost
        // none (a congested link's 10-s window: 307 to 179 kbit/s beside such a call). Nor is
        // it one where a control call's media rate changed as much, down or up: a video
        // encoder's rate follows the picture (2026-12-06: ffmpeg's VP8 call fell from 395 to
        // 211 kbit/s in a clean run, its control call rose from 150 to 900 and fell back).
        // And a call with sequence numbers must have lost media too, more than the control
        // calls: a throttler drops what it holds back; an encoder lowering its rate on its own
        // loses nothing (the same call fell likewise in a window where the control call's
        // swings showed no single change).
        let lost_too = c.expected == 0 || (c.lost > 0 && loss > c_loss);
        let control_step = |after_over_before: f64| {
            controls
                .iter()
                .any(|k| k.step.is_some() || k.swing.is_some_and(|r| r <= after_over_before))
        };
        if let Some((before, after, p)) = c.step
            && c_expected > 0
            && lost_too
            && !control_step(after / before)
            && c_loss < cfg.call_loss
        {
            why.push(format!(
                "media rate fell from {} to {} mid-call ({})",
                rate_text(before),
                rate_text(after),
                p_text(p)
            ));
        }
        let jittery = c.jitter_us.is_some_and(|j| j as f64 / 1000.0 >= cfg.call_jitter_ms);
        let suspicious =
            loss >= cfg.call_loss || c.silence.is_some() || c.step.is_some() || jittery;
        if !why.is_empty() {
            degraded.push((c, why));
        } else if suspicious && controls.is_empty() {
            doubtful.push(c.f.id());
        }
    }
    let evidence = json!({
        "calls": calls.iter().map(row).collect::<Vec<_>>(),
        "control_calls": controls.len(),
        "control_loss": (c_loss * 1e4).round() / 1e4,
        "control_rows": controls.iter().take(5).map(row).collect::<Vec<_>>(),
    });
    if degraded.is_empty() {
        if !doubtful.is_empty() {
            return Outcome::Inconclusive(Doubt::CallsWithoutControl { calls: doubtful.len() });
        }
        return Outcome::Clean { detector: NAME, evidence };
    }
    let drops = degraded.iter().any(|(c, _)| c.lost > 0 || c.silence.is_some());
    let first = degraded[0].1.join("; ");
    Outcome::Finding(Detected {
        finding: Finding::CallDegraded,
        mechanism: drops.then_some(Mechanism::Drop),
        confidence: ((0.6 + 0.1 * degraded.len() as f64 + 0.1 * controls.len().min(2) as f64)
            .min(0.95)
            * 100.0)
            .round()
            / 100.0,
        evidence,
        flows: examples(degraded.iter().map(|(c, _)| c.f.id()), 20),
        summary: format!(
            "{} of {} call(s) degraded: the call {first}; {} control call(s) fine",
            degraded.len(),
            calls.len(),
            controls.len()
        ),
    })
}

/// Calls with no RTP towards the client to judge: the ones whose client sent media that got
/// (next to) nothing back, against the control calls.
fn one_way_calls(g: &Group) -> Outcome {
    let sending: Vec<&Facts> = g.targets.iter().filter(sends_media).collect();
    let dead: Vec<(&Facts, (u64, u64))> = sending
        .iter()
        .filter(|f| !media_moved(f, g))
        .filter_map(|f| one_way(f).map(|p| (*f, p)))
        .collect();
    if dead.is_empty() {
        return Outcome::NotApplicable;
    }
    let controls: Vec<&Facts> = g.controls.iter().filter(sends_media).collect();
    let c_dead = controls.iter().filter(|f| one_way(f).is_some()).count();
    let rows: Vec<Value> = dead
        .iter()
        .map(
            |(f, (up, down))| json!({ "flow": f.id(), "client_packets": up, "packets_back": down }),
        )
        .collect();
    let (packets_sent, packets_back) =
        dead.iter().fold((0, 0), |(u, d), (_, (a, b))| (u + a, d + b));
    let what = OneWayCalls {
        one_way_calls: dead.len(),
        calls_sending_media: sending.len(),
        packets_back,
        packets_sent,
    };
    let healthy_controls = controls.len() - c_dead;
    if healthy_controls == 0 {
        return Outcome::Inconclusive(if controls.is_empty() {
            Doubt::OneWayCallsWithoutControl(what)
        } else {
            Doubt::OneWayCallsEverywhere(what)
        });
    }
    Outcome::Finding(Detected {
        finding: Finding::CallDegraded,
        mechanism: Some(Mechanism::Drop),
        confidence: ((0.7
            + 0.1 * dead.len().min(2) as f64
            + 0.05 * healthy_controls.min(2) as f64)
            .min(0.95)
            * 100.0)
            .round()
            / 100.0,
        evidence: json!({
            "one_way_calls": rows,
            "calls_sending_media": sending.len(),
            "control_calls": controls.len(),
            "control_one_way_calls": c_dead,
        }),
        flows: examples(dead.iter().map(|(f, _)| f.id()), 20),
        summary: format!("{what}; {healthy_controls} control call(s) had media both ways"),
    })
}
