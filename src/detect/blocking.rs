//! Blocking: connection attempts that are never answered, against the control attempts of the
//! same kind (one-sided Fisher's exact test, Bonferroni across services). Kinds: TCP (SYNs sent
//! again and again without a SYN/ACK), STUN (requests without a response, e.g. to a call
//! relay's UDP 3478, 596–599 or 1400), QUIC (datagrams to UDP 443, such as Initials of 1,001
//! bytes and more, with nothing back), other UDP (datagrams to a relay port with nothing
//! back, e.g. the 40-byte probes of calls to UDP 596–599). Where too few flows make a share significant, behaviour
//! decides: several attempts of a kind all unanswered while every control attempt of that kind
//! was answered, or the service's STUN requests (almost) all unanswered beside a control call
//! whose media flows both ways.

use serde_json::json;

use super::facts::Facts;
use super::stats::fisher_exact_greater;
use super::{
    Comparison, Counts, Detected, Detector, Doubt, Finding, Group, Mechanism, Outcome, examples,
    p_text, share_outcome, versus_control,
};
use crate::flow::Direction;

/// The kinds of connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Stun,
    Quic,
    Udp,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Tcp, Kind::Stun, Kind::Quic, Kind::Udp];

    fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Stun => "stun",
            Kind::Quic => "quic",
            Kind::Udp => "udp",
        }
    }
}

/// A flow's attempt in the window and whether it went unanswered; `None` when the flow
/// attempted nothing we can judge there. TCP: the connection's SYNs (judged where the flow had
/// packets), unanswered for `stall_silence_s` by the window's end (a queue may hold the answer
/// for a while). UDP: the window's STUN requests, datagrams to port 443, or other datagrams (at
/// least two), with nothing back.
fn attempt(f: &Facts, silence_us: u64) -> Option<(Kind, bool)> {
    if !f.active() {
        return None;
    }
    let down_packets = f.packets(Direction::Down);
    if let Some(t) = f.tcp() {
        let hs = &t.handshake;
        let down_ever = f.f.measures.dirs.down.packets;
        let waited = f.known_until().since(f.f.first_at) >= silence_us;
        return (hs.syns > 0)
            .then_some((Kind::Tcp, hs.synacks == 0 && down_ever == 0 && hs.syns >= 2 && waited));
    }
    let (requests, answered) = f.stun_requests();
    if requests > 0 {
        return Some((Kind::Stun, answered == 0 && down_packets == 0 && requests >= 2));
    }
    let up_packets = f.packets(Direction::Up);
    if f.f.server.port == 443 && up_packets > 0 {
        return Some((Kind::Quic, down_packets == 0 && up_packets >= 2));
    }
    (up_packets >= 2).then_some((Kind::Udp, down_packets == 0))
}

/// A UDP flow with media both ways in the window: a call that works.
fn two_way_call(f: &Facts) -> bool {
    f.udp().is_some() && f.packets(Direction::Up) >= 50 && f.packets(Direction::Down) >= 50
}

/// One kind's attempts: the service's and the controls'.
struct Tally<'a> {
    kind: Kind,
    blocked: Vec<&'a Facts<'a>>,
    t: Counts,
    c: Counts,
}

pub(super) fn detect(g: &Group) -> Outcome {
    const NAME: Detector = Detector::Blocking;
    let silence_us = (g.cfg.stall_silence_s * 1e6) as u64;
    let targets: Vec<(&Facts, (Kind, bool))> =
        g.targets.iter().filter_map(|f| attempt(f, silence_us).map(|a| (f, a))).collect();
    if targets.is_empty() {
        return Outcome::NotApplicable;
    }
    let controls: Vec<(Kind, bool)> =
        g.controls.iter().filter_map(|f| attempt(f, silence_us)).collect();
    let count = |kind: Kind, list: &mut dyn Iterator<Item = (Kind, bool)>| {
        list.filter(|(k, _)| *k == kind).fold(Counts { hits: 0, total: 0 }, |c, (_, b)| Counts {
            hits: c.hits + u64::from(b),
            total: c.total + 1,
        })
    };
    let tallies: Vec<Tally> = Kind::ALL
        .iter()
        .map(|&kind| Tally {
            kind,
            blocked: targets.iter().filter(|(_, a)| *a == (kind, true)).map(|(f, _)| *f).collect(),
            t: count(kind, &mut targets.iter().map(|(_, a)| *a)),
            c: count(kind, &mut controls.iter().copied()),
        })
        .collect();
    let t = Counts {
        hits: tallies.iter().map(|k| k.t.hits).sum(),
        total: tallies.iter().map(|k| k.t.total).sum(),
    };
    let c = Counts {
        hits: tallies.iter().map(|k| k.c.hits).sum(),
        total: tallies.iter().map(|k| k.c.total).sum(),
    };
    // A STUN client retransmits an unanswered Binding request (RFC 8489: up to 7 times over
    // 39.5 s): the window's requests, unanswered and all, of the service and of the controls.
    let requests = |flows: &mut dyn Iterator<Item = &Facts>| {
        flows.map(Facts::stun_requests).fold((0u64, 0u64), |(unanswered, all), (r, a)| {
            (unanswered + r.saturating_sub(a), all + r)
        })
    };
    let (t_unanswered, t_requests) = requests(&mut g.targets.iter());
    let (c_unanswered, c_requests) = requests(&mut g.controls.iter());
    let evidence = |p: Option<f64>| {
        let kinds: serde_json::Map<String, serde_json::Value> = tallies
            .iter()
            .map(|k| {
                let v = json!({ "unanswered": k.t.hits, "attempts": k.t.total,
                    "control_unanswered": k.c.hits, "control_attempts": k.c.total });
                (k.kind.name().to_string(), v)
            })
            .collect();
        json!({
            "unanswered": t.hits,
            "attempts": t.total,
            "control_unanswered": c.hits,
            "control_attempts": c.total,
            "by_kind": kinds,
            "stun_requests": t_requests,
            "stun_requests_unanswered": t_unanswered,
            "control_stun_requests": c_requests,
            "control_stun_requests_unanswered": c_unanswered,
            "fisher_p": p,
        })
    };
    // Per kind, the strongest comparison: a significant share, or several attempts all
    // unanswered while every control attempt of the kind was answered.
    let mut decided: Option<(f64, String)> = None;
    let mut no_control = false;
    for k in &tallies {
        let behaviour = k.t.hits >= g.cfg.min_affected_flows && k.c.hits == 0 && k.c.total >= 1;
        match versus_control(g, k.t, k.c).or_decided_by(behaviour) {
            Comparison::Higher { p } if decided.as_ref().is_none_or(|d| p < d.0) => {
                let text = format!(
                    "{} of {} {} attempts never answered; control {} of {}",
                    k.t.hits,
                    k.t.total,
                    k.kind.name().to_uppercase(),
                    k.c.hits,
                    k.c.total
                );
                decided = Some((p, text));
            }
            Comparison::NoControl => no_control = true,
            _ => {}
        }
    }
    // A control call whose media flows both ways shows that the path carries UDP: STUN to
    // the service that stays (almost) unanswered beside it decides even with few requests;
    // unless the service's own call carries media towards the client: then its relay
    // answers, and lost requests are the path's (a full queue drops them too).
    let own_call_works = g.targets.iter().any(two_way_call);
    if decided.is_none() && t_unanswered >= 4 && c_requests > 0 && !own_call_works {
        let working_call = g.controls.iter().any(two_way_call);
        let stun_dead = t_unanswered * 10 >= t_requests * 8 && c_unanswered * 5 < c_requests;
        let p = fisher_exact_greater(t_unanswered, t_requests, c_unanswered, c_requests);
        if let Comparison::Higher { p } = g.judge(p).or_decided_by(stun_dead && working_call) {
            let text = format!(
                "{t_unanswered} of {t_requests} STUN requests never answered; control calls \
                 {c_unanswered} of {c_requests}"
            );
            decided = Some((p, text));
        }
    }
    let blocked: Vec<&Facts> = tallies.iter().flat_map(|k| k.blocked.iter().copied()).collect();
    let comparison = match &decided {
        Some((p, _)) => Comparison::Higher { p: *p },
        None if no_control => Comparison::NoControl,
        None => versus_control(g, t, c),
    };
    let what = decided.map(|(_, text)| text).unwrap_or_default();
    // A kind without any control attempt: none of that kind to compare with.
    let control_attempts = if matches!(comparison, Comparison::NoControl) { 0 } else { c.total };
    share_outcome(
        NAME,
        comparison,
        evidence,
        || Doubt::UnansweredWithoutControl {
            unanswered: t.hits,
            attempts: t.total,
            control_attempts,
        },
        |p, evidence| Detected {
            finding: Finding::Blocked,
            mechanism: Some(Mechanism::Drop),
            confidence: (((1.0 - p) * 0.95) * 100.0).round() / 100.0,
            evidence,
            flows: examples(blocked.iter().map(|f| f.id()), 20),
            summary: format!("{what} ({})", p_text(p)),
        },
    )
}
