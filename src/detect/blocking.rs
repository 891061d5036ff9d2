//! Blocking: connection attempts that are never answered, against the control attempts of the
//! same kind (one-sided Fisher's exact test, Bonferroni across services). Kinds: TCP (SYNs sent
//! again and again without a SYN/ACK), STUN (requests without a response, e.g. to a call
//! relay's UDP 3478, 596–599 or 1400), QUIC (datagrams to UDP 443, such as Initials of 1,001
//! bytes and more, with nothing back), other UDP (datagrams to a relay port with nothing
//! back, e.g. the 40-byte probes of calls to UDP 596–599). Where too few flows make a share significant, behaviour
//! decides: several attempts of a kind all unanswered while every control attempt of that kind
//! was answered, or the service's STUN requests (almost) all unanswered beside a control call
//! whose media flows both ways.
//!
//! A block lasts, and a short window may hold a single attempt of a kind: a window judges its
//! own attempts of each kind together with those of the kind that windows ending less than
//! [`MEMORY_US`] before its end judged, of flows it does not judge again (an answer that comes
//! later makes an earlier attempt answered) ([`RecentAttempts`], part of the caller's
//! [`Recent`](super::recent::Recent)). Windows of a minute and longer judge only their own.

use serde_json::json;

use super::facts::Facts;
use super::stats::fisher_exact_greater;
use super::{
    Comparison, Counts, Detected, Detector, Doubt, Finding, Group, Mechanism, Outcome, examples,
    p_text, share_outcome, versus_control,
};
use crate::classify::{Catalogue, QUIC_PORT, Role, ServiceId};
use crate::flow::Direction;
use crate::pipeline::FinishedFlow;
use crate::time::Timestamp;

use super::recent::{MEMORY_MAX, MEMORY_US};

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

/// How an attempt was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// By the server, or not (yet) to be counted as unanswered.
    Answered,
    /// Never: nothing came back.
    Silent,
    /// In the server's place, with a refusal and nothing from the server: a TCP RST for the
    /// SYN, or an ICMP destination-unreachable error (a rejecting firewall's answers).
    Refused,
}

impl Answer {
    /// The attempt failed: silent or refused.
    fn failed(self) -> bool {
        self != Answer::Answered
    }
}

/// An ICMP error (type, code) that refuses, as a rejecting firewall answers: destination
/// unreachable for the port or protocol, or administratively prohibited. Not a routing
/// failure (no route, host or network unreachable: a broken path, such as the IPv6 of a
/// network without it gives a client racing IPv6 and IPv4), nor any other error.
fn refusal(v6: bool, (icmp_type, code): (u8, u8)) -> bool {
    match v6 {
        false => icmp_type == 3 && matches!(code, 2 | 3 | 9 | 10 | 13),
        true => icmp_type == 1 && matches!(code, 1 | 4 | 5 | 6),
    }
}

/// A flow's attempt in the window and how it was answered; `None` when the flow attempted
/// nothing we can judge there. TCP: the connection's SYNs (judged where the flow had
/// packets), unanswered for `stall_silence_s` by the window's end (a queue may hold the answer
/// for a while), or refused at once: a RST or a refusing ICMP error ([`refusal`]) and no
/// SYN/ACK. UDP: the window's STUN requests, datagrams to port 443, or other datagrams, with
/// nothing back in the window, and at least two of them there or, for a flow never answered,
/// since it began (a client sends again less and less often: one try may fall in a window);
/// refused where a refusing ICMP error came back for them.
fn attempt(f: &Facts, silence_us: u64) -> Option<(Kind, Answer)> {
    if !f.active() {
        return None;
    }
    let down_ever = f.f.measures.dirs.down.packets;
    let v6 = f.f.server.addr.is_ipv6();
    let refused_by_icmp = [Direction::Up, Direction::Down]
        .into_iter()
        .filter_map(|dir| f.f.measures.ip_events(dir).last_icmp)
        .any(|error| refusal(v6, error));
    if let Some(t) = f.tcp() {
        let hs = &t.handshake;
        if hs.syns == 0 {
            return None;
        }
        let waited = f.known_until().since(f.f.first_at) >= silence_us;
        let refused = hs.synacks == 0
            && t.dirs.down.payload_bytes == 0
            && (t.dirs.down.rsts > 0 || refused_by_icmp);
        let answer = if refused {
            Answer::Refused
        } else if hs.synacks == 0 && down_ever == 0 && hs.syns >= 2 && waited {
            Answer::Silent
        } else {
            Answer::Answered
        };
        return Some((Kind::Tcp, answer));
    }
    let silent = f.packets(Direction::Down) == 0;
    let tries = |now: u64, ever: u64| match silent && (now >= 2 || (down_ever == 0 && ever >= 2)) {
        true if refused_by_icmp => Answer::Refused,
        true => Answer::Silent,
        false => Answer::Answered,
    };
    let (requests, answered) = f.stun_requests();
    if requests > 0 {
        let ever = f.udp().map_or(0, |u| u64::from(u.stun.requests));
        let answer = if answered == 0 { tries(requests, ever) } else { Answer::Answered };
        return Some((Kind::Stun, answer));
    }
    let (up_packets, up_ever) = (f.packets(Direction::Up), f.f.measures.dirs.up.packets);
    if f.f.server.port == QUIC_PORT && up_packets > 0 {
        return Some((Kind::Quic, tries(up_packets, up_ever)));
    }
    (up_packets >= 2).then_some((Kind::Udp, tries(up_packets, up_ever)))
}

/// What a window says anew of flows' attempts, for what earlier windows said of them.
struct Anew {
    /// Flows with an attempt judged in the window (sorted ids): their earlier one no longer
    /// counts.
    attempted: Vec<u64>,
    /// Flows with no attempt there but something coming back (sorted ids): an answer, late
    /// or not, to what they tried before.
    answered: Vec<u64>,
}

impl Anew {
    /// `attempted`: the ids of the window's flows whose attempt it judged, among `flows`.
    fn of<'f>(flows: impl Iterator<Item = &'f Facts<'f>>, mut attempted: Vec<u64>) -> Anew {
        attempted.sort_unstable();
        let mut answered = Vec::new();
        for f in flows {
            let late = f.active() && f.packets(Direction::Down) > 0;
            if late && attempted.binary_search(&f.id()).is_err() {
                answered.push(f.id());
            }
        }
        answered.sort_unstable();
        Anew { attempted, answered }
    }

    /// An earlier attempt as this window leaves it: `None` when the window judged the flow's
    /// attempt again.
    fn update(&self, r: &Remembered) -> Option<Remembered> {
        if self.attempted.binary_search(&r.flow).is_ok() {
            return None;
        }
        let answer = match self.answered.binary_search(&r.flow) {
            Ok(_) => Answer::Answered,
            Err(_) => r.answer,
        };
        Some(Remembered { answer, ..*r })
    }
}

/// The attempts of the latest windows (module docs), from one window to the next.
#[derive(Debug, Default)]
pub(crate) struct RecentAttempts {
    /// Oldest first.
    list: Vec<Remembered>,
    /// The catalogue's service ids the list's services index: a catalogue that changes them
    /// (the daemon reloads it) empties the list.
    services: Vec<String>,
}

/// One flow's attempt as the latest window it was active in judged it.
#[derive(Debug, Clone, Copy)]
struct Remembered {
    /// That window's end.
    end: Timestamp,
    /// `None`: a control flow.
    service: Option<ServiceId>,
    flow: u64,
    kind: Kind,
    answer: Answer,
}

impl RecentAttempts {
    /// Before a window is judged: forget everything if the catalogue's services are not those
    /// the list's service ids index.
    pub fn follow(&mut self, catalogue: &Catalogue) {
        let ids = catalogue.services().iter().map(|s| s.id.as_str());
        if !self.services.iter().map(String::as_str).eq(ids) {
            self.list.clear();
            self.services = catalogue.services().iter().map(|s| s.id.clone()).collect();
        }
    }

    /// After a window is judged: keep the attempts of its flows, in place of what earlier
    /// windows said of the same flows, and forget what is too old to count at the next.
    pub fn remember(
        &mut self,
        flows: &[&FinishedFlow],
        window: super::Window,
        cfg: &crate::config::DetectConfig,
    ) {
        let silence_us = (cfg.stall_silence_s * 1e6) as u64;
        let judged: Vec<(Option<ServiceId>, Facts)> = flows
            .iter()
            .filter_map(|f| match (f.role, f.class.service) {
                (Role::Control, _) => Some((None, Facts::new(f, window))),
                (_, Some(sid)) => Some((Some(sid), Facts::new(f, window))),
                (_, None) => None,
            })
            .collect();
        let fresh: Vec<Remembered> = (judged.iter())
            .filter_map(|(service, f)| {
                let (kind, answer) = attempt(f, silence_us)?;
                let end = window.end;
                Some(Remembered { end, service: *service, flow: f.id(), kind, answer })
            })
            .collect();
        let anew = Anew::of(judged.iter().map(|(_, f)| f), fresh.iter().map(|r| r.flow).collect());
        let oldest = window.end.micros().saturating_sub(MEMORY_US);
        let kept = self.list.iter().filter(|r| r.end.micros() > oldest);
        let mut list: Vec<Remembered> = kept.filter_map(|r| anew.update(r)).collect();
        list.extend(fresh);
        let excess = list.len().saturating_sub(MEMORY_MAX);
        list.drain(..excess);
        self.list = list;
    }

    /// The attempts of a service (`None`: of the controls) of the given kinds that earlier
    /// windows judged, less than [`MEMORY_US`] before `end`, as the window (`anew`) leaves
    /// them.
    fn earlier<'r>(
        &'r self,
        service: Option<ServiceId>,
        kinds: &'r [Kind],
        end: Timestamp,
        anew: &'r Anew,
    ) -> impl Iterator<Item = (u64, (Kind, Answer))> + 'r {
        self.list
            .iter()
            .filter(move |r| {
                r.service == service
                    && kinds.contains(&r.kind)
                    && r.end < end
                    && end.micros() - r.end.micros() < MEMORY_US
            })
            .filter_map(|r| anew.update(r))
            .map(|r| (r.flow, (r.kind, r.answer)))
    }
}

/// A UDP flow with media both ways in the window: a call that works.
fn two_way_call(f: &Facts) -> bool {
    f.udp().is_some() && f.packets(Direction::Up) >= 50 && f.packets(Direction::Down) >= 50
}

/// One kind's attempts: the service's and the controls'.
struct Tally {
    kind: Kind,
    /// The service's flows whose attempt failed.
    blocked: Vec<u64>,
    /// How many of them were refused ([`Answer::Refused`]).
    refused: u64,
    t: Counts,
    c: Counts,
}

pub(super) fn detect(g: &Group) -> Outcome {
    const NAME: Detector = Detector::Blocking;
    let silence_us = (g.cfg.stall_silence_s * 1e6) as u64;
    let now = |flows: &[Facts]| -> Vec<(u64, (Kind, Answer))> {
        flows.iter().filter_map(|f| attempt(f, silence_us).map(|a| (f.id(), a))).collect()
    };
    let (mut targets, mut controls) = (now(&g.targets), now(g.controls));
    if targets.is_empty() {
        return Outcome::NotApplicable;
    }
    // The recent attempts of the kinds the service attempts in the window.
    let kinds: Vec<Kind> =
        Kind::ALL.into_iter().filter(|k| targets.iter().any(|t| t.1.0 == *k)).collect();
    let attempted = targets.iter().chain(&controls).map(|(id, _)| *id).collect();
    let anew = Anew::of(g.targets.iter().chain(g.controls), attempted);
    let (targets_now, controls_now) = (targets.len(), controls.len());
    targets.extend(g.recent.attempts.earlier(Some(g.service), &kinds, g.end, &anew));
    controls.extend(g.recent.attempts.earlier(None, &kinds, g.end, &anew));
    let earlier_targets = targets.len() - targets_now;
    let earlier_controls = controls.len() - controls_now;
    let count = |kind: Kind, list: &[(u64, (Kind, Answer))]| {
        list.iter().filter(|(_, (k, _))| *k == kind).fold(
            Counts { hits: 0, total: 0 },
            |c, (_, (_, a))| Counts { hits: c.hits + u64::from(a.failed()), total: c.total + 1 },
        )
    };
    let tallies: Vec<Tally> = Kind::ALL
        .iter()
        .map(|&kind| Tally {
            kind,
            blocked: targets
                .iter()
                .filter(|(_, (k, a))| *k == kind && a.failed())
                .map(|(id, _)| *id)
                .collect(),
            refused: (targets.iter()).filter(|(_, a)| *a == (kind, Answer::Refused)).count() as u64,
            t: count(kind, &targets),
            c: count(kind, &controls),
        })
        .collect();
    let refused: u64 = tallies.iter().map(|k| k.refused).sum();
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
                let v = json!({ "unanswered": k.t.hits, "refused": k.refused,
                    "attempts": k.t.total, "control_unanswered": k.c.hits,
                    "control_attempts": k.c.total });
                (k.kind.name().to_string(), v)
            })
            .collect();
        json!({
            "unanswered": t.hits,
            "refused": refused,
            "attempts": t.total,
            "control_unanswered": c.hits,
            "control_attempts": c.total,
            "by_kind": kinds,
            "stun_requests": t_requests,
            "stun_requests_unanswered": t_unanswered,
            "control_stun_requests": c_requests,
            "control_stun_requests_unanswered": c_unanswered,
            "fisher_p": p,
            "earlier_attempts": earlier_targets,
            "earlier_control_attempts": earlier_controls,
        })
    };
    // Per kind, the strongest comparison: a significant share, or several attempts
    // unanswered while every control attempt of the kind was answered. Behind a queue of
    // seconds (a shaper's: the service's round trip grew) the answers may still be queued
    // as the window ends; then only a significant share decides, as for stalls.
    let queued = super::throughput::queue_shown(g.cfg, g.targets.iter());
    let mut decided: Option<(f64, String)> = None;
    let mut no_control = false;
    for k in &tallies {
        let behaviour =
            k.t.hits >= g.cfg.min_affected_flows && k.c.hits == 0 && k.c.total >= 1 && !queued;
        match versus_control(g, k.t, k.c).or_decided_by(behaviour) {
            Comparison::Higher { p } if decided.as_ref().is_none_or(|d| p < d.0) => {
                let how = match k.refused {
                    0 => "never answered".to_string(),
                    n if n == k.t.hits => "refused in the server's place".to_string(),
                    n => format!("never answered ({n} refused in the server's place)"),
                };
                let text = format!(
                    "{} of {} {} attempts {how}{}; control {} of {}",
                    k.t.hits,
                    k.t.total,
                    k.kind.name().to_uppercase(),
                    if earlier_targets > 0 {
                        " (this window and the minute before it)"
                    } else {
                        ""
                    },
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
            let refused = tallies.iter().filter(|k| k.kind == Kind::Stun).map(|k| k.refused);
            let refused = match refused.sum::<u64>() {
                0 => String::new(),
                n => format!(" (ICMP errors in the server's place for {n} call(s))"),
            };
            let text = format!(
                "{t_unanswered} of {t_requests} STUN requests never answered{refused}; control \
                 calls {c_unanswered} of {c_requests}"
            );
            decided = Some((p, text));
        }
    }
    let blocked: Vec<u64> = tallies.iter().flat_map(|k| k.blocked.iter().copied()).collect();
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
            // Refused where most failed attempts were (a rejecting firewall's RST or ICMP
            // error), dropped where most got nothing back.
            mechanism: Some(match refused * 2 > blocked.len() as u64 {
                true => Mechanism::Reject,
                false => Mechanism::Drop,
            }),
            confidence: (((1.0 - p) * 0.95) * 100.0).round() / 100.0,
            evidence,
            flows: examples(blocked.iter().copied(), 20),
            summary: format!("{what} ({})", p_text(p)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remembered attempt is 24 bytes (README, Memory: at most [`MEMORY_MAX`] of them).
    #[test]
    fn a_remembered_attempt_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Remembered>(), 24);
    }
}
