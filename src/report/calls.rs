//! Calls: the UDP legs of one service's call grouped into one object for the report
//! (docs/report.md, `calls[]`).
//!
//! A call is the set of a service's UDP flows from one client address whose spans overlap or
//! follow each other within [`CALL_LEG_GAP_US`] (its STUN exchanges, relay and peer-to-peer legs,
//! audio and video). A leg that an ICE fragment tied to a call from another address (a
//! dual-stack device's IPv4 and IPv6, a second interface: `FinishedFlow::call_host`) counts
//! as that address's. A leg is `relay` when its far end is the service's by address (catalogue
//! or DNS), `p2p` otherwise; `stun` when it carried STUN and no media. QUIC (UDP/443 without
//! STUN or RTP) is no leg. A direction of a leg carries media from 10 packets on when RTP
//! shows on the leg, else from 25 packets besides its STUN messages (a service's own framing
//! without RTP headers, as Telegram's). A call whose client sent media and got at
//! most a twentieth of it back is `no_media_down`, whatever trickle came back. The outcome says whether media came both ways, and if not, what the legs
//! show.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::classify::{CALL_LEG_GAP_US, Catalogue, Evidence, Role, ServiceId};
use crate::flow::{Direction, Proto};
use crate::measure::TransportMeasures;
use crate::measure::call::UdpMeasures;
use crate::pipeline::FinishedFlow;
use crate::time::Timestamp;

/// A call whose client sent at least this many media packets and got at most a twentieth of
/// them back has no media towards the client.
const ONE_WAY_MIN_PACKETS: u64 = 50;
/// A direction of a leg without RTP carries media from this many packets on besides its STUN
/// messages (half a second of audio in a service's own framing, as Telegram's).
const MEDIA_MIN_PACKETS: u64 = 25;
/// A direction of a leg where RTP shows carries media from this many packets on.
const MEDIA_MIN_RTP_LEG_PACKETS: u64 = 10;

/// What a leg is in its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegKind {
    /// STUN and no media.
    Stun,
    /// Media (or other payload) with the service's own address.
    Relay,
    /// Media with an address that is not the service's: a peer.
    P2p,
}

impl LegKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LegKind::Stun => "stun",
            LegKind::Relay => "relay",
            LegKind::P2p => "p2p",
        }
    }
}

/// How a call went, as its legs show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Media both ways on a leg.
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

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::NoMediaDown => "no_media_down",
            CallOutcome::StunUnanswered => "stun_unanswered",
            CallOutcome::FellBackToTcpRelay => "fell_back_to_tcp_relay",
            CallOutcome::NoMedia => "no_media",
        }
    }
}

fn udp(f: &FinishedFlow) -> Option<&UdpMeasures> {
    match &f.measures.transport {
        TransportMeasures::Udp(u) => Some(u),
        TransportMeasures::Tcp(_) => None,
    }
}

fn streams(u: &UdpMeasures, d: Direction) -> u8 {
    let dir = &u.dirs[d];
    u8::from(dir.rtp().is_some()) + u8::from(dir.rtp_second().is_some())
}

/// Whether a direction of a leg carried media: on a leg where RTP shows (in either
/// direction: SRTP is not always recognised both ways) at least [`MEDIA_MIN_RTP_LEG_PACKETS`],
/// elsewhere [`MEDIA_MIN_PACKETS`] besides its STUN messages.
fn media(f: &FinishedFlow, u: &UdpMeasures, d: Direction) -> bool {
    let packets = f.measures.dirs[d].packets;
    let stun = u.stun.requests + u.stun.request_retransmissions + u.stun.answered;
    let rtp = streams(u, Direction::Up) + streams(u, Direction::Down) > 0;
    (rtp && packets >= MEDIA_MIN_RTP_LEG_PACKETS)
        || packets.saturating_sub(u64::from(stun)) >= MEDIA_MIN_PACKETS
}

/// A UDP flow of the service that can be a call's leg: not QUIC (UDP/443 without STUN or RTP:
/// TURN servers listen on 443 too).
fn is_leg(f: &FinishedFlow) -> bool {
    f.role == Role::Target
        && f.class.service.is_some()
        && udp(f).is_some_and(|u| {
            f.server.port != 443
                || u.stun.requests > 0
                || streams(u, Direction::Up) + streams(u, Direction::Down) > 0
        })
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

/// When a service's TCP flow from a client started: what tells a call that fell back to a
/// TCP relay (32 bytes: a streaming analysis keeps one per messenger TCP flow, not the flow).
#[derive(Debug, Clone, Copy)]
pub struct TcpStart {
    pub service: ServiceId,
    pub client: IpAddr,
    pub at: Timestamp,
}

impl TcpStart {
    /// For a TCP flow of a service.
    pub fn of(f: &FinishedFlow) -> Option<TcpStart> {
        let service = f.class.service.filter(|_| f.proto == Proto::Tcp)?;
        Some(TcpStart { service, client: f.client.addr, at: f.first_at })
    }
}

/// The calls among `flows` (sorted by id, as an analysis holds them: ids follow creation,
/// so legs come in the order they started), each as its JSON object (docs/report.md).
pub fn calls(flows: &[FinishedFlow], catalogue: &Catalogue) -> Vec<Value> {
    let tcp: Vec<TcpStart> = flows.iter().filter_map(TcpStart::of).collect();
    calls_of(flows, &tcp, catalogue)
}

/// The calls among `legs` (sorted by id; other flows are passed over), with the service's
/// TCP flows known by their starts.
pub fn calls_of(legs: &[FinishedFlow], tcp: &[TcpStart], catalogue: &Catalogue) -> Vec<Value> {
    let flows = legs;
    // (latest end of a leg, legs) per call.
    let mut groups: Vec<(Timestamp, Vec<&FinishedFlow>)> = Vec::new();
    for f in flows.iter().filter(|f| is_leg(f)) {
        let same = |legs: &Vec<&FinishedFlow>| {
            legs[0].class.service == f.class.service && legs[0].call_client() == f.call_client()
        };
        match groups.iter_mut().rev().find(|(_, legs)| same(legs)) {
            Some((end, legs)) if f.first_at <= end.add_micros(CALL_LEG_GAP_US) => {
                *end = (*end).max(f.last_at);
                legs.push(f);
            }
            _ => groups.push((f.last_at, vec![f])),
        }
    }
    groups.iter().map(|(_, legs)| call(legs, tcp, catalogue)).collect()
}

fn call(group: &[&FinishedFlow], tcp: &[TcpStart], catalogue: &Catalogue) -> Value {
    let first = group[0];
    let service = first.class.service.expect("calls group flows with a service");
    let start = group.iter().map(|f| f.first_at).min().unwrap_or(first.first_at);
    let end = group.iter().map(|f| f.last_at).max().unwrap_or(first.last_at);
    // (packets, bytes) per direction.
    let (mut up, mut down) = ((0u64, 0u64), (0u64, 0u64));
    let (mut lost, mut expected, mut jitter_us) = (0u64, 0u64, None::<u64>);
    let (mut gap_up_us, mut gap_down_us) = (0u64, 0u64);
    let (mut stun_requests, mut stun_answered) = (0u32, 0u32);
    let (mut media_up_packets, mut media_at) = (0u64, None::<Timestamp>);
    let mut legs = Vec::with_capacity(group.len());
    let mut media_both_ways = false;
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
            up = (up.0 + d_up.packets, up.1 + d_up.bytes);
            down = (down.0 + d_down.packets, down.1 + d_down.bytes);
            gap_up_us = gap_up_us.max(u.dirs.up.max_gap_us);
            gap_down_us = gap_down_us.max(u.dirs.down.max_gap_us);
            media_at = Some(media_at.map_or(f.first_at, |t| t.min(f.first_at)));
        }
        if m_up {
            media_up_packets += d_up.packets;
        }
        if let Some(loss) = u.dirs.down.rtp_loss() {
            lost += loss.lost;
            expected += loss.expected;
        }
        let j = [u.dirs.down.rtp(), u.dirs.down.rtp_second()]
            .into_iter()
            .flatten()
            .filter_map(|s| s.jitter_us)
            .max();
        jitter_us = jitter_us.max(j);
        legs.push(json!({
            "flow": f.id,
            "kind": leg_kind(f, u, catalogue).as_str(),
            "client": f.client.addr.to_string(),
            "server": f.server.to_string(),
            "rtp_streams_up": s_up,
            "rtp_streams_down": s_down,
            "media_up": m_up,
            "media_down": m_down,
        }));
        media_both_ways |= m_up && m_down;
    }
    let tcp_after = tcp.iter().any(|t| {
        t.service == service
            && t.client == first.call_client()
            && t.at >= start
            && t.at <= end.add_micros(CALL_LEG_GAP_US)
    });
    let outcome = if media_up_packets >= ONE_WAY_MIN_PACKETS && down.0 * 20 <= media_up_packets {
        CallOutcome::NoMediaDown
    } else if media_both_ways {
        CallOutcome::Ok
    } else if tcp_after && media_up_packets == 0 {
        CallOutcome::FellBackToTcpRelay
    } else if stun_requests > 0 && stun_answered == 0 {
        CallOutcome::StunUnanswered
    } else {
        CallOutcome::NoMedia
    };
    let seconds = |us: u64| us as f64 / 1e6;
    json!({
        "service": catalogue.service(service).id,
        "client": first.call_client().to_string(),
        "start": start,
        "end": end,
        "legs": legs,
        "media_up": { "packets": up.0, "bytes": up.1 },
        "media_down": { "packets": down.0, "bytes": down.1 },
        "loss_down": (expected > 0).then(|| lost as f64 / expected as f64),
        "jitter_down_ms": jitter_us.map(|j| j as f64 / 1000.0),
        "longest_silence_up_s": seconds(gap_up_us),
        "longest_silence_down_s": seconds(gap_down_us),
        "setup_s": media_at.map(|t| seconds(t.since(start))),
        "outcome": outcome.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crate::detect::synthetic::{CLIENT, CTL, CallLeg, MSG, Sim};

    fn outcomes(sim: Sim) -> Vec<(String, Vec<String>)> {
        sim.calls()
            .iter()
            .map(|c| {
                let kinds = c["legs"].as_array().unwrap().iter();
                let kinds = kinds.map(|l| l["kind"].as_str().unwrap().to_string()).collect();
                (c["outcome"].as_str().unwrap().to_string(), kinds)
            })
            .collect()
    }

    fn one(outcome: &str, kinds: &[&str]) -> Vec<(String, Vec<String>)> {
        vec![(outcome.to_string(), kinds.iter().map(|k| k.to_string()).collect())]
    }

    #[test]
    fn a_call_with_media_both_ways_is_ok_and_control_calls_are_none() {
        let mut sim = Sim::default();
        sim.call(MSG, 0, 10, |_| true);
        sim.call(CTL, 0, 10, |_| true);
        let calls = sim.calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        let c = &calls[0];
        assert_eq!((c["service"].as_str(), c["outcome"].as_str()), (Some("msg"), Some("ok")));
        assert_eq!(c["legs"][0]["kind"], "relay");
        // 500 RTP packets and the STUN exchange each way.
        assert_eq!(
            (c["media_up"]["packets"].as_u64(), c["media_down"]["packets"].as_u64()),
            (Some(501), Some(501))
        );
        assert_eq!(c["loss_down"].as_f64(), Some(0.0));
        assert!(c["jitter_down_ms"].as_f64().is_some());
    }

    #[test]
    fn outcomes_of_failed_calls() {
        let mut sim = Sim::default();
        sim.call(MSG, 0, 10, |i| i < 5);
        assert_eq!(outcomes(sim), one("no_media_down", &["relay"]));
        let mut sim = Sim::default();
        sim.stun_probe(MSG, 3478, 0, 20, |_| false);
        assert_eq!(outcomes(sim), one("stun_unanswered", &["stun"]));
        let mut sim = Sim::default();
        sim.stun_probe(MSG, 3478, 0, 20, |_| false);
        sim.tcp(MSG, 12_000, 40).handshake().request(500);
        assert_eq!(outcomes(sim), one("fell_back_to_tcp_relay", &["stun"]));
    }

    /// A peer-to-peer leg from the device's other address (IPv4 beside IPv6, a second
    /// interface) that an ICE fragment ties to the call is one of its legs; without the
    /// fragment it is a call of its own.
    #[test]
    fn a_leg_from_another_address_joins_the_call_its_ice_fragment_names() {
        let other = Ipv4Addr::new(192, 168, 1, 3);
        let peer = (Ipv4Addr::new(203, 0, 113, 77), 50_000);
        let calls = |username: &'static [u8]| {
            let mut sim = Sim::default();
            let relay = CallLeg { client: CLIENT, far: (MSG, 3478), username: b"PeEr:L0c4" };
            sim.call_leg(relay, 0, 2, |_| true);
            sim.call_leg(CallLeg { client: other, far: peer, username }, 3_000, 10, |_| true);
            sim.calls()
        };
        let c = calls(b"L0c4:PeEr");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0]["client"], CLIENT.to_string());
        let legs = c[0]["legs"].as_array().unwrap();
        let kinds: Vec<_> =
            legs.iter().map(|l| (l["kind"].as_str(), l["client"].as_str())).collect();
        let (client, other) = (CLIENT.to_string(), other.to_string());
        assert_eq!(kinds, [(Some("relay"), Some(&*client)), (Some("p2p"), Some(&*other))]);
        assert_eq!(c[0]["outcome"], "ok");
        // Unlinked, the peer's flow is nobody's call.
        assert_eq!(calls(b"").len(), 1);
        assert_eq!(calls(b"Unkn:Own1").len(), 1);
        assert_eq!(calls(b"Unkn:Own1")[0]["legs"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn legs_join_within_the_gap_and_not_beyond() {
        let other = Ipv4Addr::new(198, 51, 100, 11);
        let mut sim = Sim::default();
        sim.call(MSG, 0, 10, |i| i < 5);
        sim.call(other, 25_000, 10, |_| true);
        assert_eq!(outcomes(sim), one("ok", &["relay", "relay"]));
        let mut sim = Sim::default();
        sim.call(MSG, 0, 10, |_| true);
        sim.call(other, 45_000, 10, |_| true);
        assert_eq!(outcomes(sim).len(), 2);
    }
}
