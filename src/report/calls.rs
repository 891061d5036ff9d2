//! Calls: the UDP legs of one service's call grouped into one object for the report
//! (docs/report.md, `calls[]`).
//!
//! A call is the set of a service's UDP flows from one client address whose spans overlap or
//! follow each other within [`CALL_LEG_GAP_US`] (its STUN exchanges, relay and peer-to-peer legs,
//! audio and video). A leg is `relay` when its far end is the service's by address (catalogue
//! or DNS), `p2p` otherwise; `stun` when it carried STUN and no media. A direction of a leg
//! carries media when RTP shows in it, or, for services whose media has no RTP header, from
//! 25 packets on. The outcome says whether media came both ways, and if not, what the legs
//! show.

use serde::Serialize;

use crate::classify::{CALL_LEG_GAP_US, Catalogue, Evidence, Role};
use crate::flow::{Direction, Proto};
use crate::measure::TransportMeasures;
use crate::measure::call::UdpMeasures;
use crate::pipeline::FinishedFlow;
use crate::time::Timestamp;

/// A call whose client sent at least this many media packets and got at most a twentieth of
/// them back has no media towards the client.
const ONE_WAY_MIN_PACKETS: u64 = 50;
/// A direction of a leg without RTP headers carries media (a service's own encrypted
/// framing, as Telegram's) from this many packets on.
const MEDIA_MIN_PACKETS: u64 = 25;

/// What a leg is in its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegKind {
    /// STUN and no RTP.
    Stun,
    /// Media (or other payload) with the service's own address.
    Relay,
    /// Media with an address that is not the service's: a peer.
    P2p,
}

/// How a call went, as its legs show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// RTP both ways.
    Ok,
    /// The client sent media; (next to) none came back.
    NoMediaDown,
    /// STUN requests went out and none was answered; no media.
    StunUnanswered,
    /// No media over UDP, and a TCP flow of the service from the client followed.
    FellBackToTcpRelay,
    /// Neither media nor a failure to tell: a setup that did not go on.
    NoMedia,
}

#[derive(Debug, Serialize)]
pub struct CallLeg {
    pub flow: u64,
    pub kind: LegKind,
    pub server: String,
    /// RTP streams (SSRCs) seen, towards the server and towards the client.
    pub rtp_streams_up: u8,
    pub rtp_streams_down: u8,
    /// Media (RTP, or without RTP at least 25 packets) towards the server and the client.
    pub media_up: bool,
    pub media_down: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct MediaCounts {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct CallReport {
    pub service: String,
    pub client: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub legs: Vec<CallLeg>,
    /// Packets and bytes of the legs' media directions.
    pub media_up: MediaCounts,
    pub media_down: MediaCounts,
    /// RTP loss towards the client over every leg (lost / expected), null without RTP.
    pub loss_down: Option<f64>,
    /// Largest RTP interarrival jitter towards the client, in milliseconds.
    pub jitter_down_ms: Option<f64>,
    /// Longest gap between two packets of a media leg, per direction, in seconds.
    pub longest_silence_up_s: f64,
    pub longest_silence_down_s: f64,
    /// From the call's first packet to the first leg with media, in seconds.
    pub setup_s: Option<f64>,
    pub outcome: CallOutcome,
}

fn udp(f: &FinishedFlow) -> Option<&UdpMeasures> {
    match &f.measures.transport {
        TransportMeasures::Udp(u) => Some(u),
        TransportMeasures::Tcp(_) => None,
    }
}

fn streams(u: &UdpMeasures, d: Direction) -> u8 {
    let dir = &u.dirs[d];
    u8::from(dir.rtp.summary().is_some())
        + u8::from(dir.rtp_second.as_ref().and_then(|s| s.summary()).is_some())
}

/// Whether a direction of a leg carried media.
fn media(f: &FinishedFlow, u: &UdpMeasures, d: Direction) -> bool {
    streams(u, d) > 0 || f.measures.dirs[d].packets >= MEDIA_MIN_PACKETS
}

fn leg_kind(f: &FinishedFlow, u: &UdpMeasures, catalogue: &Catalogue) -> LegKind {
    let media = media(f, u, Direction::Up) || media(f, u, Direction::Down);
    if u.stun.requests > 0 && !media {
        return LegKind::Stun;
    }
    let by_address = matches!(f.class.evidence, Evidence::Dns | Evidence::Range | Evidence::Rule)
        || catalogue.match_endpoint(Proto::Udp, f.server).is_some();
    if by_address { LegKind::Relay } else { LegKind::P2p }
}

/// The calls among `flows` (sorted by id, as an analysis holds them).
pub fn calls(flows: &[FinishedFlow], catalogue: &Catalogue) -> Vec<CallReport> {
    let mut legs: Vec<&FinishedFlow> = flows
        .iter()
        .filter(|f| f.role == Role::Target && f.proto == Proto::Udp && f.class.service.is_some())
        .collect();
    legs.sort_by_key(|f| (f.class.service, f.client.addr, f.first_at));
    let mut out = Vec::new();
    let mut group: Vec<&FinishedFlow> = Vec::new();
    for f in legs {
        let joins = group.last().is_some_and(|g| {
            g.class.service == f.class.service
                && g.client.addr == f.client.addr
                && f.first_at.since(group.iter().map(|l| l.last_at).max().unwrap_or(g.last_at))
                    <= CALL_LEG_GAP_US
        });
        if !joins && !group.is_empty() {
            out.push(call(&group, flows, catalogue));
            group.clear();
        }
        group.push(f);
    }
    if !group.is_empty() {
        out.push(call(&group, flows, catalogue));
    }
    out
}

fn call(group: &[&FinishedFlow], all: &[FinishedFlow], catalogue: &Catalogue) -> CallReport {
    let first = group[0];
    let service = first.class.service.expect("calls group flows with a service");
    let start = group.iter().map(|f| f.first_at).min().unwrap_or(first.first_at);
    let end = group.iter().map(|f| f.last_at).max().unwrap_or(first.last_at);
    let (mut up, mut down) = (MediaCounts::default(), MediaCounts::default());
    let (mut lost, mut expected, mut jitter_us) = (0u64, 0u64, None::<u64>);
    let (mut gap_up_us, mut gap_down_us) = (0u64, 0u64);
    let (mut stun_requests, mut stun_answered) = (0u32, 0u32);
    let (mut media_up_packets, mut media_at) = (0u64, None::<Timestamp>);
    let mut legs = Vec::with_capacity(group.len());
    for f in group {
        let Some(u) = udp(f) else { continue };
        stun_requests += u.stun.requests;
        stun_answered += u.stun.answered;
        let (s_up, s_down) = (streams(u, Direction::Up), streams(u, Direction::Down));
        let (m_up, m_down) = (media(f, u, Direction::Up), media(f, u, Direction::Down));
        let (d_up, d_down) = (&f.measures.dirs.up, &f.measures.dirs.down);
        if m_up || m_down {
            // The far side's packets of a leg whose client sends media count, however few:
            // they are what came back.
            up.packets += d_up.packets;
            up.bytes += d_up.bytes;
            down.packets += d_down.packets;
            down.bytes += d_down.bytes;
            gap_up_us = gap_up_us.max(u.dirs.up.max_gap_us);
            gap_down_us = gap_down_us.max(u.dirs.down.max_gap_us);
            media_at = Some(media_at.map_or(f.first_at, |t| t.min(f.first_at)));
        }
        if m_up {
            media_up_packets += d_up.packets;
        }
        if let Some((l, e)) = u.dirs.down.rtp_loss() {
            lost += l;
            expected += e;
        }
        let j =
            [u.dirs.down.rtp.summary(), u.dirs.down.rtp_second.as_ref().and_then(|s| s.summary())]
                .into_iter()
                .flatten()
                .filter_map(|s| s.jitter_us)
                .max();
        jitter_us = jitter_us.max(j);
        legs.push(CallLeg {
            flow: f.id,
            kind: leg_kind(f, u, catalogue),
            server: f.server.to_string(),
            rtp_streams_up: s_up,
            rtp_streams_down: s_down,
            media_up: m_up,
            media_down: m_down,
        });
    }
    let media_both_ways = legs.iter().any(|l| l.media_up && l.media_down);
    let tcp_after = all.iter().any(|t| {
        t.proto == Proto::Tcp
            && t.class.service == Some(service)
            && t.client.addr == first.client.addr
            && t.first_at >= start
            && t.first_at <= end.add_micros(CALL_LEG_GAP_US)
    });
    let outcome = if media_both_ways {
        CallOutcome::Ok
    } else if media_up_packets >= ONE_WAY_MIN_PACKETS && down.packets * 20 <= media_up_packets {
        CallOutcome::NoMediaDown
    } else if tcp_after && media_up_packets == 0 {
        CallOutcome::FellBackToTcpRelay
    } else if stun_requests > 0 && stun_answered == 0 {
        CallOutcome::StunUnanswered
    } else {
        CallOutcome::NoMedia
    };
    let seconds = |us: u64| us as f64 / 1e6;
    CallReport {
        service: catalogue.service(service).id.clone(),
        client: first.client.addr.to_string(),
        start,
        end,
        legs,
        media_up: up,
        media_down: down,
        loss_down: (expected > 0).then(|| lost as f64 / expected as f64),
        jitter_down_ms: jitter_us.map(|j| j as f64 / 1000.0),
        longest_silence_up_s: seconds(gap_up_us),
        longest_silence_down_s: seconds(gap_down_us),
        setup_s: media_at.map(|t| seconds(t.since(start))),
        outcome,
    }
}
