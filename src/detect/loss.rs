//! Random-loss throttling: a share of a service's packets dropped at random, with no fixed rate
//! and no queue (Russia's per-protocol "capacity" throttling, 2024–2026: 2–10 % and more). Per
//! TCP connection in the window, the loss share is the segments lost or retransmitted (sequence
//! holes and retransmissions, as seen at the capture point) over its packets, in the direction
//! that lost the larger share.
//! The service's pooled share must be significantly above the control connections' (one-sided
//! Fisher's exact test, Bonferroni across services), at least `loss_min_share` and twice the
//! controls' pooled share, with at least `min_affected_flows` connections losing that much
//! (of the client's data: or every connection that sent enough to lose one segment at that
//! share, [`upstream_loss`]), and the round trip must not have grown (a congested or shaped path queues before it drops; a dropper does not).
//! Loss on everything (Wi-Fi, a congested link) raises the control share alike and finds
//! nothing. Stalled connections (see [`super::stall`]) and connections the server side reset
//! are left out: their retransmissions are the stall's or the reset's.

use serde_json::json;

use super::facts::Facts;
use super::stats::{fisher_exact_greater, median};
use super::{Detected, Detector, Doubt, Finding, Group, Mechanism, Outcome, examples, p_text};
use crate::config::DetectConfig;
use crate::flow::Direction;

/// Packets a connection needs in the window for its loss share to count.
const MIN_PACKETS: u64 = 20;

/// (lost or retransmitted segments, packets) of a TCP connection in the window, in the
/// direction that lost the larger share: a dropper takes its share of the packets going the
/// way it acts on, and the acknowledgments coming back would dilute it by half.
pub(super) fn loss(f: &Facts) -> Option<(u64, u64)> {
    f.tcp()?;
    if f.packets(Direction::Up) + f.packets(Direction::Down) < MIN_PACKETS {
        return None;
    }
    let of = |dir| {
        let (part, packets) = (f.tcp_part(dir), f.packets(dir));
        ((part.retransmissions + part.seq_gaps).min(packets), packets)
    };
    let (up, down) = (of(Direction::Up), of(Direction::Down));
    // up.0 / up.1 > down.0 / down.1, without dividing by an empty direction.
    Some(if up.0 * down.1 > down.0 * up.1 { up } else { down })
}

/// The share of their packets the given TCP connections lost or retransmitted, pooled (0
/// without a judgeable connection).
pub(super) fn pooled_share<'a>(flows: impl IntoIterator<Item = &'a Facts<'a>>) -> f64 {
    let (lost, packets) =
        flows.into_iter().filter_map(loss).fold((0u64, 0u64), |(l, p), (fl, fp)| (l + fl, p + fp));
    lost as f64 / packets.max(1) as f64
}

/// The round trip grew beyond what a path without a queue shows.
fn queued(f: &Facts, cfg: &DetectConfig) -> bool {
    match (f.min_rtt_us(), f.max_rtt_us()) {
        (Some(lo), Some(hi)) => super::throughput::grown_past_no_queue(cfg, lo as f64, hi as f64),
        _ => false,
    }
}

/// Lost (or sent again) and sent data segments of a TCP connection's client in the window. A
/// dropper past the capture point on the way up (the capture sees the client's side of a
/// router) shows only as the client sending its data again; its pure acknowledgments, most
/// of its packets on a download, show nothing (a lost ACK is covered by the next), and
/// diluted [`loss`]'s share to nothing when the dropper took 5 % of everything sent up. So
/// this share is of data segments at the server's MSS (what one segment carries, whatever
/// super-segments the capture shows): the sequence space sent, and the data sent again, each
/// resend a segment at least. (Resends counted one a packet, a capture with GRO on held a
/// 2-MB upload that resent 85 kB, 59 segments' worth, as 11 packets of 1,394: 0.8 %, under
/// the share that counts, where the dropper took 5 %.)
fn upstream_loss(f: &Facts) -> Option<(u64, u64)> {
    let t = f.tcp()?;
    if f.packets(Direction::Up) + f.packets(Direction::Down) < MIN_PACKETS {
        return None;
    }
    let part = f.tcp_part(Direction::Up);
    let mss = u64::from(
        match t.dirs.down.syn_mss {
            0 => t.dirs.up.max_payload_len,
            announced => announced,
        }
        .max(1),
    );
    // The data sent again, not all the data below the highest sequence: segments out of
    // order (a mirror port's second copies, reordering) are no loss. (Counted in, the copies
    // of a mirror port gave a control's clean upload 11 %.)
    let resent = part.retransmissions.max(part.resent_payload_bytes.div_ceil(mss));
    let segments = part.new_payload_bytes.div_ceil(mss) + resent;
    (segments > 0).then(|| ((resent + part.seq_gaps).min(segments), segments))
}

/// The share of the service's connections' loss events (towards the client) that came within
/// a round trip of a control flow's loss, pooled over the connections (0 without any).
fn lost_with_controls(g: &Group, targets: &[(&Facts, (u64, u64))]) -> f64 {
    let control_losses = super::policing::control_loss_times(g);
    let (together, all) = targets.iter().fold((0, 0), |(together, all), (f, _)| {
        let rtt_us = f.min_rtt_us().unwrap_or(0);
        let (near, events) = super::policing::lost_with(f, &control_losses, rtt_us);
        (together + near, all + events)
    });
    if all == 0 { 0.0 } else { together as f64 / all as f64 }
}

/// The level under which a p-value is rare by chance for one test alone: the conventional 5 %,
/// before the corrections for the windows and services a finding's level makes.
const SUGGESTIVE_P: f64 = 0.05;

/// What the shares count: every packet in the direction that lost more, or the client's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Packets,
    DataSentUp,
}

impl Counted {
    /// The evidence's `counted`.
    fn key(self) -> &'static str {
        match self {
            Counted::Packets => "packets",
            Counted::DataSentUp => "data_sent_up",
        }
    }

    /// What a count of them is a count of.
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Counted::Packets => "packets",
            Counted::DataSentUp => "segments of the data they send",
        }
    }

    /// What the summary says was lost.
    fn what(self) -> &'static str {
        match self {
            Counted::Packets => "their packets",
            Counted::DataSentUp => "the data they send",
        }
    }
}

pub(super) fn detect(g: &Group) -> Outcome {
    // A stalled connection retransmits what never arrives, a reset one what the reset cut
    // off: their loss is the stall's or the reset's.
    let judged = |f: &&Facts| !super::stall::stalled_or_stuck(f, g) && f.server_reset().is_none();
    let by_packets = judge(g, &judged, loss, Counted::Packets, g.alpha());
    // A dropper on the way up only: the client's data, tested at half the level (two tests),
    // of connections whose client is not stuck.
    let client_judged = |f: &&Facts| {
        !super::stall::stalled_or_stuck_sending(f, g, &[Direction::Up])
            && f.server_reset().is_none()
    };
    let too_few =
        |o: &Outcome| matches!(o, Outcome::Inconclusive(Doubt::LossNotSignificant { .. }));
    if !matches!(by_packets, Outcome::Clean { .. }) && !too_few(&by_packets) {
        return by_packets;
    }
    match judge(g, &client_judged, upstream_loss, Counted::DataSentUp, g.alpha() / 2.0) {
        found @ Outcome::Finding(_) => found,
        doubt @ Outcome::Inconclusive(_) if !too_few(&by_packets) => doubt,
        _ => by_packets,
    }
}

/// The random-loss test on the service's and the control connections' (lost, counted)
/// shares as `share_of` gives them, at level `alpha`.
fn judge(
    g: &Group,
    judged: &dyn Fn(&&Facts) -> bool,
    share_of: fn(&Facts) -> Option<(u64, u64)>,
    counted: Counted,
    alpha: f64,
) -> Outcome {
    const NAME: Detector = Detector::RandomLoss;
    let cfg = g.cfg;
    let targets: Vec<(&Facts, (u64, u64))> =
        g.targets.iter().filter(judged).filter_map(|f| share_of(f).map(|l| (f, l))).collect();
    if targets.is_empty() {
        return Outcome::NotApplicable;
    }
    let controls: Vec<(u64, u64)> = g.controls.iter().filter(judged).filter_map(share_of).collect();
    let share = |(l, p): (u64, u64)| l as f64 / p.max(1) as f64;
    let sum = |v: &mut dyn Iterator<Item = (u64, u64)>| {
        v.fold((0u64, 0u64), |(a, b), (l, p)| (a + l, b + p))
    };
    let (t_lost, t_packets) = sum(&mut targets.iter().map(|(_, l)| *l));
    let (c_lost, c_packets) = sum(&mut controls.iter().copied());
    let t_shares: Vec<f64> = targets.iter().map(|(_, l)| share(*l)).collect();
    let c_shares: Vec<f64> = controls.iter().map(|l| share(*l)).collect();
    let t_median = median(&t_shares).unwrap_or(0.0);
    let c_median = median(&c_shares).unwrap_or(0.0);
    let lossy: Vec<&Facts> =
        targets.iter().filter(|(_, l)| share(*l) >= cfg.loss_min_share).map(|(f, _)| *f).collect();
    let queueing = targets.iter().filter(|(f, _)| queued(f, cfg)).count();
    let round = |x: f64| (x * 1e4).round() / 1e4;
    let evidence = |p: Option<f64>| {
        json!({
            "loss_share": round(share((t_lost, t_packets))),
            "lost_segments": t_lost,
            "packets": t_packets,
            "connections": targets.len(),
            "lossy_connections": lossy.len(),
            "median_connection_loss": round(t_median),
            "control_loss_share": round(share((c_lost, c_packets))),
            "control_connections": controls.len(),
            "control_median_connection_loss": round(c_median),
            "connections_with_queueing": queueing,
            "fisher_p": p,
            "counted": counted.key(),
        })
    };
    // Pooled over the connections: many short connections lose nothing by chance, and GRO
    // super-segments make packets fewer; the pooled share follows the dropper's rate.
    let (t_share, c_share) = (share((t_lost, t_packets)), share((c_lost, c_packets)));
    // `min_affected_flows` connections losing, or, of the client's data, every connection
    // that sent enough of it to lose one segment at the pooled share: a client's upload beside
    // requests of a segment each is one connection that can show a dropper on the way up.
    let able = targets.iter().filter(|(_, (_, n))| *n as f64 * t_share >= 1.0).count();
    let needed = match counted {
        Counted::Packets => cfg.min_affected_flows,
        Counted::DataSentUp => cfg.min_affected_flows.min(able.max(1) as u64),
    };
    if (lossy.len() as u64) < needed || t_share < cfg.loss_min_share {
        return Outcome::Clean { detector: NAME, evidence: evidence(None) };
    }
    if controls.is_empty() {
        return Outcome::Inconclusive(Doubt::LossWithoutControl {
            lossy_connections: lossy.len(),
            connections: targets.len(),
            loss_share: t_share,
        });
    }
    let p = fisher_exact_greater(t_lost, t_packets, c_lost, c_packets);
    let above_controls = t_share >= 2.0 * c_share && p < alpha;
    if !above_controls {
        // The controls lost nothing, and the service's loss would be rare by chance for one
        // test, but not at the level a finding needs: too few segments to tell, which is not
        // "no interference". (The curl generator's 5.9 % dropper on the way up, requests
        // only: 7 of the clients' 16 segments sent again, the controls' 0 of 9, p = 0.024,
        // where a finding needed 0.005.)
        if c_lost == 0 && p < SUGGESTIVE_P {
            return Outcome::Inconclusive(Doubt::LossNotSignificant {
                lost: t_lost,
                counted: t_packets,
                control_counted: c_packets,
                what: counted,
                p,
                alpha,
            });
        }
        return Outcome::Clean { detector: NAME, evidence: evidence(Some(p)) };
    }
    // A queue every flow crosses drops from all of them at once when it overflows; a dropper
    // on the service drops from its flows alone (as for policing: the service's loss events
    // within a round trip of a control flow's, pooled). A service nearer than the controls
    // loses more at a shared queue: bursty cross traffic's 5-s windows said `random_loss`.
    let together = lost_with_controls(g, &targets);
    if together >= super::policing::SHARED_LOSS_SHARE {
        let mut evidence = evidence(Some(p));
        evidence["lost_with_controls"] = json!((together * 1000.0).round() / 1000.0);
        return Outcome::Clean { detector: NAME, evidence };
    }
    // The service's connections started behind a standing queue (a shaper's or a congested
    // link's, which drop when full): the typical one's least round trip well above the least
    // of all the service's connections to the same servers in the window (also those too
    // short to judge: where the judged ones were all born into the queue, a short
    // connection's handshake between the queue's fills shows the path without it; a shaper's
    // 10-s window of the curl generator said `random_loss`). (The largest samples are no
    // guide: a sample across a lost segment is long.)
    let mins: Vec<f64> =
        targets.iter().filter_map(|(f, _)| f.min_rtt_us()).map(|r| r as f64).collect();
    let judged_server =
        |o: &&Facts| targets.iter().any(|(f, _)| f.f.server.addr == o.f.server.addr);
    let lo = (g.targets.iter().filter(judged_server).filter_map(Facts::min_rtt_us))
        .map(|r| r as f64)
        .fold(f64::INFINITY, f64::min);
    let typical = median(&mins).unwrap_or(lo);
    let grew = super::throughput::grown_past_no_queue(cfg, lo, typical);
    // Behind the queue: connections whose round trip grew, and those born into it (their
    // least round trip already past the least). In a shaper's first 10-s window (the lab's
    // `shape` run 2200) three of six grew and two were born into it: `random_loss` "with no
    // queue" when only the first counted.
    let born_queued = |f: &Facts| {
        f.min_rtt_us().is_some_and(|m| super::throughput::grown_past_no_queue(cfg, lo, m as f64))
    };
    let behind = targets.iter().filter(|(f, _)| queued(f, cfg) || born_queued(f)).count();
    if behind * 2 > targets.len() || grew {
        return Outcome::Inconclusive(Doubt::LossWithQueueing {
            loss_share: t_share,
            control_loss_share: c_share,
            queued_connections: behind,
            connections: targets.len(),
            least_min_rtt_us: lo,
            typical_min_rtt_us: typical,
        });
    }
    Outcome::Finding(Detected {
        finding: Finding::Throttled,
        mechanism: Some(Mechanism::RandomLoss),
        confidence: (((1.0 - p) * (0.6 + 0.1 * lossy.len() as f64).min(0.9)) * 100.0).round()
            / 100.0,
        evidence: evidence(Some(p)),
        flows: examples(lossy.iter().map(|f| f.id()), 20),
        summary: format!(
            "{} of {} connections lose {:.1}% of {} at random with no queue ({}); control \
             connections {:.1}%",
            lossy.len(),
            targets.len(),
            t_share * 100.0,
            counted.what(),
            p_text(p),
            c_share * 100.0
        ),
    })
}
