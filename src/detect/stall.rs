//! Stalls: TCP connections that stop making progress without being closed, judged by
//! behaviour, not by size alone. Four shapes, seen from real middleboxes (2021–2026):
//!
//! - **Unacknowledged data**: the handshake completed, then one side sends data again and again
//!   and the other never acknowledges it (at least [`STUCK_RETRANSMISSIONS`] retransmissions
//!   since its sequence last moved, and no progress for `stall_silence_s`), with no FIN or RST
//!   from the server: the client's first
//!   application data dropped after the TLS handshake (Russia 2026, Iran 2025), the ServerHello
//!   dropped, "N packets then drop" (TSPU SNI-II) and allowlists (mobile networks, 2025–26).
//! - **Unanswered ClientHello**: the client's first data opened a TLS handshake and the
//!   server never sent a byte, silent for `stall_silence_s` since its last packet until the
//!   client gave up or the window ended: the ServerHello dropped by a middlebox that lets the
//!   server's bare acknowledgment of the ClientHello through (a server slower to answer than
//!   its delayed ACK sends one).
//! - **Freeze**: the server's data stops after `stall_min_bytes..=stall_max_bytes` of its
//!   sequence space (the TSPU's 12–64 kB, 2025–26; counted from sequence numbers, so that a
//!   capture that missed segments or merged them into super-segments counts alike), in the
//!   middle of a transfer (its last segment full-sized: at least the largest segment seen
//!   or, with GRO/GSO super-segments in the capture, the MSS the client announced; or,
//!   whatever its size, the client's later data or close sent again and never acknowledged),
//!   no FIN or RST follows from the server, and the server stays silent until the client
//!   gives up or the window ends.
//! - **Undelivered data**: a hole in the server's data that the client's acknowledgments never
//!   passed, the server's sequence still since for `stall_silence_s`: its data and every copy
//!   sent again dropped before the capture point (a bucket drained by the service's other
//!   traffic, a middlebox dropping downstream of the capture's view).
//!
//! A connection is judged in the window where its stall shows (it had a packet there). The
//! share of stalled connections is compared with the control share (one-sided Fisher's exact
//! test); a middlebox freezes every connection at the same byte count, so at least `min_affected_flows`
//! freezes within [`CLUSTER_BYTES`] of each other with no control freeze decide alone. When
//! the control connections stall as often as the service's, it is no "no interference": the
//! answer is `inconclusive`, naming what failed (an allowlist, or a broken link).

use std::collections::BTreeMap;

use serde_json::json;

use super::facts::{Facts, network};
use super::recent::Memory;
use super::{
    Comparison, Counts, Detected, Detector, Doubt, Finding, Group, Mechanism, Outcome, examples,
    p_text, share_outcome, versus_control,
};
use crate::classify::Role;
use crate::config::DetectConfig;
use crate::flow::Direction;
use crate::pipeline::{FinishedFlow, FlowEnd};
use crate::time::Timestamp;

/// Freeze byte counts this close together count as one freeze threshold.
pub const CLUSTER_BYTES: u64 = 2_000;

/// Retransmissions of never-acknowledged data that make a connection stuck (RFC 6298's
/// back-off puts the second one at least three RTOs, about 3 s, after the first).
pub const STUCK_RETRANSMISSIONS: u16 = 2;

/// TCP/IP header bytes a segment's payload may fall short of the MSS (options).
const MSS_SLACK_BYTES: u16 = 40;

/// How a connection stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stall {
    /// One side's data never acknowledged: which side kept sending.
    Unacknowledged(Direction),
    /// The client's ClientHello never answered: not a byte from the server, which went silent.
    Unanswered,
    /// The server's data stopped mid-transfer after this many bytes of its sequence space.
    Freeze(u64),
    /// The server's data lost before the client got it, and never sent through again: a hole
    /// in the server's sequence the client never acknowledged past, the server silent since
    /// (its retransmissions dropped before the capture point as well).
    Undelivered,
}

/// The server's last segment was a full one: mid-transfer, not the end of a response.
fn ended_mid_transfer(f: &Facts) -> bool {
    let Some(t) = f.tcp() else { return false };
    let (up, down) = (&t.dirs.up, &t.dirs.down);
    if down.max_payload_len < 500 {
        return false;
    }
    let full_as_largest =
        u32::from(down.last_payload_len) * 10 >= u32::from(down.max_payload_len) * 9;
    // GRO/GSO: the capture shows super-segments of several MSS; the last one may be shorter
    // than the largest but still holds whole segments.
    let full_as_mss =
        up.syn_mss > MSS_SLACK_BYTES && down.last_payload_len >= up.syn_mss - MSS_SLACK_BYTES;
    full_as_largest || full_as_mss
}

/// How a connection stalled in the window, if it did. (Called from several detectors: one
/// copy, for the router's size.)
#[inline(never)]
pub(super) fn stall(f: &Facts, cfg: &DetectConfig) -> Option<Stall> {
    let window_end = f.window.end;
    let t = f.tcp()?;
    let (up, down) = (&t.dirs.up, &t.dirs.down);
    if t.rst(Direction::Down).is_some()
        || t.fin(Direction::Down).is_some()
        || !t.handshake.completed()
    {
        return None;
    }
    // The client gave up (FIN or RST), or the flow went quiet until its end (or, still open,
    // until the window's end); its requests after a freeze may go unanswered.
    let gave_up =
        [t.fin(Direction::Up), t.rst(Direction::Up)].into_iter().flatten().min_by_key(|e| e.at_ms);
    let client_close = gave_up.map(|e| f.at(e));
    let quiet_until =
        if f.f.end == FlowEnd::Active { window_end.max(f.f.last_at) } else { f.f.last_at };
    // A FIN the server never acknowledged (the client sent it again) ends nothing: the server
    // stayed silent through it (a client that gives up sooner than `stall_silence_s`).
    let close_ignored = t.rst(Direction::Up).is_none() && up.stuck_retransmissions > 0;
    let end = client_close.filter(|_| !close_ignored).unwrap_or(quiet_until).min(window_end);
    let silence_us = (cfg.stall_silence_s * 1e6) as u64;
    // Shown in this window: silent since `at` long enough by its end, and not before its start.
    let silent_since =
        |at: Timestamp| end.since(at) >= silence_us && at.add_micros(silence_us) >= f.window.start;
    let down_bytes = down.new_payload_bytes;
    let until = f.known_until();
    let stuck = |d: &crate::measure::tcp::TcpDirection| {
        d.stuck_retransmissions >= STUCK_RETRANSMISSIONS
            && d.stuck_for_us(until).is_some_and(|us| us >= silence_us)
    };
    // Mid-transfer by its last segment; or by what followed: the client's request or close
    // sent again and never acknowledged, where a server that had finished its response
    // acknowledges it (a freeze may fall on the end of the server's write, a short segment).
    let froze = (cfg.stall_min_bytes..=cfg.stall_max_bytes).contains(&down_bytes)
        && up.payload_bytes > 0
        && down.payload_bytes > 0
        && (ended_mid_transfer(f) || stuck(up));
    if froze && silent_since(f.f.measures.dirs.down.last_at) {
        return Some(Stall::Freeze(down_bytes));
    }
    // A hole in the server's data that the client's acknowledgments never passed, and no new
    // data from the server since: what it sent again was lost before the capture point too.
    let advanced_at = down
        .since_advance_us(end)
        .map(|us| Timestamp::from_micros(end.micros().saturating_sub(us)));
    if down.seq_gaps > 0
        && t.server_bytes_unacknowledged() > 0
        && advanced_at.is_some_and(silent_since)
    {
        return Some(Stall::Undelivered);
    }
    // The client's ClientHello never answered: not one byte from the server, silent for
    // `stall_silence_s` since its last packet (its SYN/ACK, or its bare acknowledgment of the
    // ClientHello) until the client gave up or the window ended. A TLS server answers within
    // a round trip (other protocols' servers may hold a first request, as a long poll does);
    // a middlebox that drops the answer and lets the acknowledgment through leaves this.
    // (Data the client keeps sending again is unacknowledged data, below.)
    let (server_last, waited_until) = match gave_up {
        Some(e) => {
            let at = f.at(e);
            (Timestamp::from_micros(at.micros().saturating_sub(u64::from(e.since_peer_us))), at)
        }
        None => (f.f.measures.dirs.down.last_at, quiet_until),
    };
    if t.handshake.opened_tls()
        && down.payload_bytes == 0
        && up.payload_bytes > 0
        && !stuck(up)
        && waited_until.min(window_end).since(server_last) >= silence_us
        && server_last.add_micros(silence_us) >= f.window.start
    {
        return Some(Stall::Unanswered);
    }
    // Retransmissions show in a window where the flow had packets, once they have gone on
    // without progress for `stall_silence_s` by the window's end (or the flow's): a sender in
    // a loss's back-off is soon acknowledged, a stalled one never.
    if !f.active() {
        return None;
    }
    if stuck(up) && up.payload_bytes > 0 {
        return Some(Stall::Unacknowledged(Direction::Up));
    }
    (stuck(down) && t.fin(Direction::Up).is_none() && t.rst(Direction::Up).is_none())
        .then_some(Stall::Unacknowledged(Direction::Down))
}

/// A connection that stalled in the window, or that is retransmitting data never
/// acknowledged (not yet long enough to call it a stall): its retransmissions are one piece
/// of data sent again, not independent losses.
pub(super) fn stalled_or_stuck(f: &Facts, g: &Group) -> bool {
    stalled_or_stuck_sending(f, g, &Direction::BOTH)
}

/// [`stalled_or_stuck`] with the retransmissions of the sides in `senders` only: of the
/// client's data, a server's response sent again at its end is nothing (a 600-kB upload
/// through Wi-Fi loss, whose short response was lost twice and then came through, was left
/// out of the client's data where its twin to a control server was not).
pub(super) fn stalled_or_stuck_sending(f: &Facts, g: &Group, senders: &[Direction]) -> bool {
    stall(f, g.cfg).is_some() || sending_again(f, senders)
}

/// A side of `senders` sent the same data again at least [`STUCK_RETRANSMISSIONS`] times
/// since the sequence last moved.
fn sending_again(f: &Facts, senders: &[Direction]) -> bool {
    f.tcp().is_some_and(|t| {
        senders.iter().any(|&d| t.dirs[d].stuck_retransmissions >= STUCK_RETRANSMISSIONS)
    })
}

/// The most byte counts within [`CLUSTER_BYTES`] of each other. Not all of them: a
/// connection whose last segments the capture missed stopped at a lower count.
fn largest_cluster(bytes: &[u64]) -> usize {
    let near = |a: u64| bytes.iter().filter(|&&b| b >= a && b - a <= CLUSTER_BYTES).count();
    bytes.iter().map(|&a| near(a)).max().unwrap_or(0)
}

/// A completed TCP connection whose stall shows in the window, or that had a packet in it
/// and either carried new data or waited on nothing. Not one still waiting, without new data,
/// after its stall showed in an earlier window (it only closed or sent old data again here):
/// it was judged in that one, and is no working connection in this one.
fn could_stall(f: &Facts, cfg: &DetectConfig) -> bool {
    let Some(t) = f.tcp().filter(|t| t.handshake.completed()) else { return false };
    if stall(f, cfg).is_some() {
        return true;
    }
    let (up, down) = (&t.dirs.up, &t.dirs.down);
    let progressed =
        [Direction::Up, Direction::Down].iter().any(|&d| f.tcp_part(d).new_payload_bytes > 0);
    let waiting = up.stuck_retransmissions > 0
        || down.stuck_retransmissions > 0
        || (down.payload_bytes == 0 && up.payload_bytes > 0);
    f.active() && (progressed || !waiting) && !undecided(f, cfg)
}

/// Undecided at the window's end ([`undecided`]) with data sent again ([`sending_again`]): a
/// stall under way, or a loss's back-off that an acknowledgment soon ends.
fn resending_undecided(f: &Facts, cfg: &DetectConfig) -> bool {
    sending_again(f, &Direction::BOTH) && undecided(f, cfg)
}

/// Still open at the window's end and waiting on the other side for less than
/// `stall_silence_s`: data sent again and not yet acknowledged, or a first request the server
/// has not answered. Too soon to tell a stall from a slow answer; the next window, where the
/// wait goes on or ends, judges it. (Counted here as working, such connections diluted the
/// share of those that stalled: in 5-s windows, the attempts of a window's last second.)
fn undecided(f: &Facts, cfg: &DetectConfig) -> bool {
    let Some(t) = f.tcp() else { return false };
    if !matches!(f.f.end, FlowEnd::Active | FlowEnd::EndOfInput) {
        return false;
    }
    let silence_us = (cfg.stall_silence_s * 1e6) as u64;
    let end = f.window.end;
    let (up, down) = (&t.dirs.up, &t.dirs.down);
    let unanswered = down.payload_bytes == 0
        && up.payload_bytes > 0
        && end.since(f.f.measures.dirs.down.last_at) < silence_us;
    let resending = |d: &crate::measure::tcp::TcpDirection| {
        d.stuck_for_us(end).is_some_and(|us| us < silence_us)
    };
    unanswered || resending(up) || resending(down)
}

pub(super) fn detect(g: &Group) -> Outcome {
    const NAME: Detector = Detector::Stall;
    let cfg = g.cfg;
    let targets: Vec<&Facts> = g.targets.iter().filter(|f| could_stall(f, cfg)).collect();
    if targets.is_empty() {
        return Outcome::NotApplicable;
    }
    let controls: Vec<&Facts> = g.controls.iter().filter(|f| could_stall(f, cfg)).collect();
    let hit: Vec<(&Facts, Stall)> =
        targets.iter().filter_map(|f| stall(f, cfg).map(|s| (*f, s))).collect();
    let c_hits = controls.iter().filter(|f| stall(f, cfg).is_some()).count() as u64;
    let t = Counts { hits: hit.len() as u64, total: targets.len() as u64 };
    let mut c = Counts { hits: c_hits, total: controls.len() as u64 };
    // Too few control connections in the window (a short one, or the controls' traffic
    // ended while the service's connections went on failing): those the windows of the
    // minute before judged count with them.
    let mut earlier_controls = 0;
    if c.total < cfg.min_affected_flows {
        let judged: Vec<u64> = controls.iter().map(|f| f.id()).collect();
        for stalled in g.recent.connections.earlier(g.end, &judged) {
            earlier_controls += 1;
            c = Counts { hits: c.hits + u64::from(stalled), total: c.total + 1 };
        }
    }
    let mut networks = BTreeMap::new();
    for (f, _) in &hit {
        *networks.entry(network(f.f.server.addr)).or_insert(0u64) += 1;
    }
    let freeze_bytes: Vec<u64> = hit
        .iter()
        .filter_map(|(_, s)| match s {
            Stall::Freeze(b) => Some(*b),
            Stall::Unacknowledged(_) | Stall::Unanswered | Stall::Undelivered => None,
        })
        .collect();
    // Server bytes at which every stalled connection's server data stopped (for the
    // unacknowledged ones too: after a freeze the client's next request is never
    // acknowledged either); one byte count shared by many is a middlebox's threshold.
    let stopped_at: Vec<u64> = hit
        .iter()
        .filter_map(|(f, _)| Some(f.tcp()?.dirs.down.new_payload_bytes))
        .filter(|b| (cfg.stall_min_bytes..=cfg.stall_max_bytes).contains(b))
        .collect();
    let unacked = |dir| hit.iter().filter(|(_, s)| *s == Stall::Unacknowledged(dir)).count();
    let (client_unacked, server_unacked) = (unacked(Direction::Up), unacked(Direction::Down));
    let unanswered = hit.iter().filter(|(_, s)| *s == Stall::Unanswered).count();
    let undelivered = hit.iter().filter(|(_, s)| *s == Stall::Undelivered).count();
    let same_threshold = largest_cluster(&stopped_at) as u64 >= cfg.min_affected_flows;
    let evidence = |p: Option<f64>| {
        json!({
            "stalled_flows": t.hits,
            "connections": t.total,
            "control_stalled_flows": c.hits,
            "control_connections": c.total,
            "earlier_control_connections": earlier_controls,
            "fisher_p": p,
            "client_data_unacknowledged": client_unacked,
            "client_data_unanswered": unanswered,
            "server_data_unacknowledged": server_unacked,
            "server_data_undelivered": undelivered,
            "frozen": freeze_bytes.len(),
            "server_bytes_before_freeze": freeze_bytes,
            "server_bytes_when_stopped": stopped_at,
            "by_network": networks,
            "freeze_window_bytes": [cfg.stall_min_bytes, cfg.stall_max_bytes],
            "same_threshold": same_threshold,
            "min_silence_s": cfg.stall_silence_s,
        })
    };
    let what = Stalls {
        freezes: freeze_bytes.iter().min().zip(freeze_bytes.iter().max()).map(|(&least, &most)| {
            Freezes { count: freeze_bytes.len(), least_bytes: least, most_bytes: most }
        }),
        client_unacknowledged: client_unacked,
        client_unanswered: unanswered,
        server_unacknowledged: server_unacked,
        server_undelivered: undelivered,
    };
    // Behaviour decides where too few connections make the share significant: one byte count
    // shared by several freezes, or several connections whose data was never acknowledged
    // while every control connection went through.
    // Behind a queue of seconds (a shaper's: the service's round trip grew) a starved
    // connection retransmits unacknowledged too; then only a significant share decides.
    let queued = super::throughput::queue_shown(cfg, g.targets.iter());
    let stuck = (client_unacked + unanswered + server_unacked + undelivered) as u64
        >= cfg.min_affected_flows
        && c.total >= cfg.min_affected_flows
        && !queued;
    let comparison =
        versus_control(g, t, c).or_decided_by((same_threshold || stuck) && c.hits == 0);
    // A single freeze with none among the controls: too few to decide, too specific to keep
    // quiet about (a middlebox may freeze only some connections).
    if matches!(comparison, Comparison::Nothing) && freeze_bytes.len() == 1 && c.hits == 0 {
        return Outcome::Inconclusive(Doubt::SingleFreeze {
            connections: t.total,
            server_bytes: freeze_bytes[0],
        });
    }
    // Stalls under way as the window ended: a connection stalled, and more sending data
    // again, unanswered, too recently to be judged here (`undecided`), enough together for a
    // verdict, and no control connection stalled or doing so. Not "no interference": the
    // next window tells. (Without a stall shown, resending at a window's end is what a
    // congested link does: a 1-Mbit/s bottleneck left two such connections of the service
    // and none of the controls.)
    if matches!(comparison, Comparison::Nothing) && c.hits == 0 && t.hits > 0 {
        let resending = |flows: &[Facts]| -> u64 {
            flows.iter().filter(|f| resending_undecided(f, cfg)).count() as u64
        };
        let resending_flows = resending(&g.targets);
        if resending_flows > 0
            && t.hits + resending_flows >= cfg.min_affected_flows
            && resending(g.controls) == 0
        {
            return Outcome::Inconclusive(Doubt::StallsBegun {
                stalled_flows: t.hits,
                resending_flows,
                connections: t.total + resending_flows,
            });
        }
    }
    // The controls stall as often: the whole path fails (an allowlist lets only domestic
    // destinations through), which is not "no interference".
    if let Comparison::NotHigher { p } = comparison
        && c.hits >= cfg.min_affected_flows
        && c.hits * 2 >= c.total
    {
        return Outcome::Inconclusive(Doubt::ControlsStallToo {
            stalled_flows: t.hits,
            connections: t.total,
            stalls: what,
            control_stalled_flows: c.hits,
            control_connections: c.total,
            fisher_p: p,
        });
    }
    share_outcome(
        NAME,
        comparison,
        evidence,
        || Doubt::StallsWithoutControl {
            stalled_flows: t.hits,
            connections: t.total,
            stalls: what,
            control_connections: c.total,
        },
        |p, evidence| Detected {
            finding: Finding::Stalled,
            mechanism: Some(if stopped_at.len() * 2 > hit.len() {
                Mechanism::Freeze
            } else {
                Mechanism::Drop
            }),
            confidence: (((1.0 - p) * 0.9) * 100.0).round() / 100.0,
            evidence,
            flows: examples(hit.iter().map(|(f, _)| f.id()), 20),
            summary: format!(
                "{} of {} connections stalled: {what}, no RST ({}); control {} of {}",
                t.hits,
                t.total,
                p_text(p),
                c.hits,
                c.total
            ),
        },
    )
}

/// Freezes of the server's data: how many, and the least and most server bytes before one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Freezes {
    pub count: usize,
    pub least_bytes: u64,
    pub most_bytes: u64,
}

/// What the stalled connections of a window did, as a verdict says it: "3 froze after 16-17 kB
/// from the server; 2 with the client's data retransmitted and never acknowledged".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stalls {
    pub freezes: Option<Freezes>,
    pub client_unacknowledged: usize,
    pub client_unanswered: usize,
    pub server_unacknowledged: usize,
    pub server_undelivered: usize,
}

impl std::fmt::Display for Stalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(Freezes { count, least_bytes, most_bytes }) = self.freezes {
            let (lo, hi) = (least_bytes / 1000, most_bytes / 1000);
            let range = if lo == hi { format!("{lo} kB") } else { format!("{lo}-{hi} kB") };
            parts.push(format!("{count} froze after {range} from the server"));
        }
        if self.client_unacknowledged > 0 {
            parts.push(format!(
                "{} with the client's data retransmitted and never acknowledged",
                self.client_unacknowledged
            ));
        }
        if self.client_unanswered > 0 {
            parts.push(format!(
                "{} with the client's ClientHello never answered (not a byte from the server)",
                self.client_unanswered
            ));
        }
        if self.server_unacknowledged > 0 {
            parts.push(format!(
                "{} with the server's data retransmitted and never acknowledged",
                self.server_unacknowledged
            ));
        }
        if self.server_undelivered > 0 {
            parts.push(format!(
                "{} waiting for server data lost before it reached the client and never sent \
                 through again",
                self.server_undelivered
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// The control connections the latest windows judged (could stall: [`could_stall`]) and
/// whether each stalled there, from one window to the next (part of the caller's
/// [`Recent`](super::recent::Recent)).
#[derive(Debug, Default)]
pub(crate) struct RecentConnections {
    /// Entries flow id << 1 | stalled.
    memory: Memory,
}

impl RecentConnections {
    /// After a window is judged: keep its control connections, in place of what earlier
    /// windows said of the same flows, and forget what is too old to count at the next.
    pub fn remember(&mut self, flows: &[&FinishedFlow], window: super::Window, cfg: &DetectConfig) {
        let fresh: Vec<u64> = (flows.iter())
            .filter(|f| f.role == Role::Control)
            .map(|f| Facts::new(f, window))
            .filter(|f| could_stall(f, cfg))
            .map(|f| f.id() << 1 | u64::from(stall(&f, cfg).is_some()))
            .collect();
        self.memory.remember(window.end, fresh, |entry| entry >> 1);
    }

    /// Whether each control connection that windows ending less than [`MEMORY_US`](super::recent::MEMORY_US) before
    /// `end` judged stalled, but for those the window judges again (`judged`).
    fn earlier<'r>(&'r self, end: Timestamp, judged: &'r [u64]) -> impl Iterator<Item = bool> + 'r {
        (self.memory.before(end))
            .filter(move |entry| !judged.contains(&(entry >> 1)))
            .map(|entry| entry & 1 == 1)
    }
}
