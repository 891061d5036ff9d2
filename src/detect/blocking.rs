//! Blocking: connection attempts that are never answered, against the control share
//! (one-sided Fisher's exact test). TCP: SYNs sent again and again without a SYN/ACK. UDP:
//! STUN requests without a response, UDP to port 443 (QUIC) without any packet back. Where
//! too few flows make the share significant, unanswered STUN requests are compared with the
//! control calls' requests instead.

use serde_json::json;

use super::facts::Facts;
use super::stats::fisher_exact_greater;
use super::{
    Comparison, Counts, Finding, Group, Outcome, examples, p_text, share_outcome, versus_control,
};
use crate::flow::Direction;

/// Whether a flow's attempt in the window went unanswered; `None` when it attempted nothing we
/// can judge there. TCP: the connection's SYNs (judged where the flow had packets). UDP: the
/// window's STUN requests, or datagrams to port 443 (QUIC Initials) with nothing back.
fn attempt(f: &Facts) -> Option<bool> {
    if !f.active() {
        return None;
    }
    let down_packets = f.packets(Direction::Down);
    if let Some(t) = f.tcp() {
        let hs = &t.handshake;
        let down_ever = f.f.measures.dirs[1].packets;
        return (hs.syns > 0).then_some(hs.synacks == 0 && down_ever == 0 && hs.syns >= 2);
    }
    let (requests, answered) = f.stun_requests();
    if requests > 0 {
        return Some(answered == 0 && down_packets == 0 && requests >= 2);
    }
    let up_packets = f.packets(Direction::Up);
    let quic = f.f.server.port == 443 && up_packets > 0;
    quic.then_some(down_packets == 0 && up_packets >= 2)
}

pub(super) fn detect(g: &Group) -> Outcome {
    const NAME: &str = "blocking";
    let targets: Vec<(&Facts, bool)> =
        g.targets.iter().filter_map(|f| attempt(f).map(|b| (f, b))).collect();
    if targets.is_empty() {
        return Outcome::NotApplicable;
    }
    let controls: Vec<bool> = g.controls.iter().filter_map(attempt).collect();
    let blocked: Vec<&Facts> = targets.iter().filter(|(_, b)| *b).map(|(f, _)| *f).collect();
    let t = Counts { hits: blocked.len() as u64, total: targets.len() as u64 };
    let c = Counts {
        hits: controls.iter().filter(|b| **b).count() as u64,
        total: controls.len() as u64,
    };
    let tcp = blocked.iter().filter(|f| f.tcp().is_some()).count();
    let evidence = |p: Option<f64>| {
        json!({
            "unanswered": t.hits,
            "attempts": t.total,
            "unanswered_tcp": tcp,
            "unanswered_udp": t.hits as usize - tcp,
            "control_unanswered": c.hits,
            "control_attempts": c.total,
            "fisher_p": p,
        })
    };
    // A STUN client retransmits an unanswered Binding request (RFC 8489: up to 7 times over
    // 39.5 s): where too few flows make the share significant, the share of unanswered
    // requests against the control calls' decides.
    let requests = |flows: &mut dyn Iterator<Item = &Facts>| {
        flows.map(Facts::stun_requests).fold((0u64, 0u64), |(unanswered, all), (r, a)| {
            (unanswered + r.saturating_sub(a), all + r)
        })
    };
    let (t_unanswered, t_requests) = requests(&mut g.targets.iter());
    let (c_unanswered, c_requests) = requests(&mut g.controls.iter());
    // A control call whose media flows both ways shows that the path carries UDP: STUN to
    // the service that stays (almost) unanswered beside it decides even with few requests.
    let working_call = g.controls.iter().any(|f| {
        f.udp().is_some() && f.packets(Direction::Up) >= 50 && f.packets(Direction::Down) >= 50
    });
    let stun_dead = t_unanswered >= 4
        && t_unanswered * 10 >= t_requests * 8
        && c_unanswered * 5 < c_requests.max(1);
    let comparison = match versus_control(g, t, c) {
        Comparison::Nothing | Comparison::NotHigher { .. }
            if t_unanswered >= 4 && c_requests > 0 =>
        {
            g.judge(fisher_exact_greater(t_unanswered, t_requests, c_unanswered, c_requests))
                .or_decided_by(stun_dead && working_call)
        }
        other => other,
    };
    share_outcome(
        NAME,
        comparison,
        evidence,
        || {
            format!(
                "{} of {} connection attempts never answered, but no control attempt to \
                 compare with",
                t.hits, t.total
            )
        },
        |p, evidence| Finding {
            finding: "blocked",
            mechanism: Some("drop"),
            confidence: (((1.0 - p) * 0.95) * 100.0).round() / 100.0,
            evidence,
            flows: examples(blocked.iter().map(|f| f.id()), 20),
            summary: format!(
                "{} of {} connection attempts never answered ({tcp} TCP SYN, {} STUN/QUIC; {}); \
                 control {} of {}",
                t.hits,
                t.total,
                t.hits as usize - tcp,
                p_text(p),
                c.hits,
                c.total
            ),
        },
    )
}
