//! Second copies in a capture of several interfaces: `tcpdump -i any` on a router records a
//! forwarded packet where it came in and again where it went out, and a flow measured from
//! both copies would show every packet retransmitted. Each flow is measured at one side:
//! its first packet's capture point for that direction, the point facing it for the other
//! ([`CapturePoint::facing`]). Linux's cooked headers tell the points apart (v2 by interface
//! index, v1 only sent from received); the daemon tells which of its interfaces a frame of
//! another link type came from when it captures several (a router's LAN and WAN without NAT
//! show every forwarded packet twice, with the same addresses). A capture of one interface
//! of another link type has one point and never comes here.
//!
//! Bounded: the pins live in a table of a fixed number of slots (the flow table's size,
//! rounded up to a power of two), a slot per hash of the flow; a flow whose slot another
//! took pins again at its next packet (and may count a copy before it does).

use std::hash::BuildHasher;

use foldhash::fast::FixedState;

use super::{FlowKey, Proto};
use crate::decode::{AddrWords, LinkType};
use crate::time::Timestamp;

/// A flow silent this long at its point (either way; or, before a packet there, a pin this
/// old) is measured at the next point that shows it: an interface that went away and came
/// back with another index. Two copies of one packet are apart by a router's queue, far less.
pub const REPIN_AFTER_US: u64 = 2_000_000;

/// Where in a capture of several interfaces a frame was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapturePoint {
    /// An interface: a cooked v2 header's index, or the daemon's number for one of the
    /// interfaces it captures ([`crate::pipeline::Pipeline::set_interface`]).
    Interface(u32),
    /// A cooked v1 header names no interface, only whether the host sent the frame...
    Sent,
    /// ... or received it.
    Received,
}

impl CapturePoint {
    /// The point of a frame of `link`; `None` for link types with one point.
    pub fn of(link: LinkType, frame: &[u8]) -> Option<Self> {
        /// `PACKET_OUTGOING`, the packet type of a frame the host sent.
        const OUTGOING: [u8; 2] = [0, 4];
        match link {
            LinkType::LinuxSll2 => {
                let b = frame.get(4..8)?;
                Some(CapturePoint::Interface(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            LinkType::LinuxSll if frame.get(..2)? == OUTGOING => Some(CapturePoint::Sent),
            LinkType::LinuxSll => Some(CapturePoint::Received),
            _ => None,
        }
    }

    /// Where the other direction of a flow seen here shows on the same side: the same
    /// interface; for a v1 header, sent for received and received for sent (a router receives
    /// the client's packets where it sends the server's; a host sends the one and receives
    /// the other).
    pub fn facing(self) -> Self {
        match self {
            CapturePoint::Sent => CapturePoint::Received,
            CapturePoint::Received => CapturePoint::Sent,
            interface => interface,
        }
    }
}

/// The flow of a frame's TCP or UDP packet, and whether its source is the key's first
/// endpoint: a few header fields, not the full decode (whose code the router's size budget
/// holds once). Ethernet with at most one VLAN tag; a frame of another kind is none.
fn flow_of(link: LinkType, frame: &[u8]) -> Option<(FlowKey, bool)> {
    let be16 = |at: usize| frame.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (ethertype, ip) = match link {
        LinkType::LinuxSll2 => (be16(0)?, frame.get(20..)?),
        LinkType::LinuxSll => (be16(14)?, frame.get(16..)?),
        LinkType::Ethernet => match be16(12)? {
            0x8100 | 0x88a8 => (be16(16)?, frame.get(18..)?),
            ethertype => (ethertype, frame.get(14..)?),
        },
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => match frame.first()? >> 4 {
            4 => (0x0800, frame),
            _ => (0x86dd, frame),
        },
    };
    let (v6, proto, src, dst, transport) = match (ethertype, ip.first()? >> 4) {
        (0x0800, 4) => {
            let header = usize::from(ip[0] & 0x0f) * 4;
            let later_fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff != 0;
            if header < 20 || later_fragment {
                return None;
            }
            let octets = |at: usize| -> Option<[u8; 4]> { ip.get(at..at + 4)?.try_into().ok() };
            let (src, dst) = (AddrWords::v4(octets(12)?), AddrWords::v4(octets(16)?));
            (false, *ip.get(9)?, src, dst, ip.get(header..)?)
        }
        (0x86dd, 6) => {
            let octets = |at: usize| -> Option<[u8; 16]> { ip.get(at..at + 16)?.try_into().ok() };
            let (src, dst) = (AddrWords::v6(octets(8)?), AddrWords::v6(octets(24)?));
            (true, *ip.get(6)?, src, dst, ip.get(40..)?)
        }
        _ => return None,
    };
    let proto = match proto {
        6 => Proto::Tcp,
        17 => Proto::Udp,
        _ => return None,
    };
    let ports = transport.get(..4)?;
    let (sport, dport) =
        (u16::from_be_bytes([ports[0], ports[1]]), u16::from_be_bytes([ports[2], ports[3]]));
    Some(FlowKey::from_words(proto, v6, (src, sport), (dst, dport)))
}

/// Where a flow is measured.
#[derive(Debug, Clone, Copy)]
struct Pin {
    /// The flow's hash (never 0: 0 marks a free slot).
    flow: u64,
    /// The orientation (source is the key's first endpoint) of the flow's first packet, and
    /// the point that direction is measured at.
    first_src_first: bool,
    point: CapturePoint,
    /// The latest packet measured at the point, either way, or the time the flow moved there.
    last_at: Timestamp,
}

const FREE: Pin = Pin {
    flow: 0,
    first_src_first: true,
    point: CapturePoint::Received,
    last_at: Timestamp::from_micros(0),
};

/// The pins of a capture's flows.
#[derive(Debug)]
pub struct CopyFilter {
    pins: Vec<Pin>,
    hasher: FixedState,
}

impl CopyFilter {
    /// Room for about `flows` flows.
    pub fn new(flows: usize) -> Self {
        CopyFilter {
            pins: vec![FREE; flows.max(1).next_power_of_two()],
            hasher: FixedState::default(),
        }
    }

    /// Whether the frame, seen at `point`, is a copy of a packet its flow is measured at
    /// another point. Frames that are not TCP or UDP (or not a first fragment, or behind IPv6
    /// extension headers) never are.
    pub fn is_second_copy(
        &mut self,
        point: CapturePoint,
        link: LinkType,
        ts: Timestamp,
        frame: &[u8],
    ) -> bool {
        let Some((key, src_first)) = flow_of(link, frame) else { return false };
        let hash = self.hasher.hash_one(key);
        let flow = hash | 1;
        let slot = (hash >> 1) as usize & (self.pins.len() - 1);
        let pin = &mut self.pins[slot];
        if pin.flow != flow {
            *pin = Pin { flow, first_src_first: src_first, point, last_at: ts };
            return false;
        }
        let here = if src_first == pin.first_src_first { point } else { point.facing() };
        // Another point while the flow's own was quiet long enough: the flow moves there.
        if here != pin.point && ts.since(pin.last_at) < REPIN_AFTER_US {
            return true;
        }
        pin.point = here;
        pin.last_at = pin.last_at.max(ts);
        false
    }

    /// Flows pinned now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pins.iter().filter(|p| p.flow != 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::ip::fixtures::ipv4;
    use crate::decode::tcp_flags::{ACK, SYN};
    use crate::decode::transport::fixtures::tcp;

    /// A TCP segment of the test flow in a cooked header: from the client (`up`) or to it,
    /// seen at interface `ifindex` (v2) or as sent or received (v1).
    fn frame(link: LinkType, ifindex: u32, sent: bool, up: bool, flags: u8) -> Vec<u8> {
        let mut ip = ipv4(6, 40, 1, 0);
        if up {
            ip.extend_from_slice(&tcp(40_000, 443, 1, 1, flags, &[]));
        } else {
            let (src, dst) = (ip[12..16].to_vec(), ip[16..20].to_vec());
            ip[12..16].copy_from_slice(&dst);
            ip[16..20].copy_from_slice(&src);
            ip.extend_from_slice(&tcp(443, 40_000, 1, 2, flags, &[]));
        }
        let kind = if sent { 4 } else { 0 };
        let mut f = if link == LinkType::LinuxSll2 {
            let mut f = vec![8, 0, 0, 0];
            f.extend_from_slice(&ifindex.to_be_bytes());
            f.extend_from_slice(&[0, 1, kind, 6]);
            f
        } else {
            vec![0, kind, 0, 1, 0, 6]
        };
        f.extend_from_slice(&[0; 8]);
        if link == LinkType::LinuxSll {
            f.extend_from_slice(&[8, 0]);
        }
        f.extend_from_slice(&ip);
        f
    }

    /// A router's `-i any`: each packet where it came in and where it went out. The flow is
    /// measured on the client's side (its packets from the client where they come in, to the
    /// client where they go out); a direction silent for [`REPIN_AFTER_US`] is taken where it
    /// shows next (the LAN interface came back with another index).
    #[test]
    fn copies_at_other_interfaces_are_found() {
        let (lan, wan, lan_again) = (2u32, 3u32, 5u32);
        for link in [LinkType::LinuxSll2, LinkType::LinuxSll] {
            let mut f = CopyFilter::new(16);
            let mut copy = |at_us: u64, ifindex: u32, sent: bool, up: bool, flags: u8| {
                let at = Timestamp::from_micros(1_700_000_000_000_000 + at_us);
                let fr = frame(link, ifindex, sent, up, flags);
                let point = CapturePoint::of(link, &fr).unwrap();
                f.is_second_copy(point, link, at, &fr)
            };
            let seen = [
                copy(0, lan, false, true, SYN),
                copy(40, wan, true, true, SYN),
                copy(20_000, wan, false, false, SYN | ACK),
                copy(20_040, lan, true, false, SYN | ACK),
                copy(20_100, lan, false, true, ACK),
                copy(20_140, wan, true, true, ACK),
                // Silent for 3 s; then the LAN interface has another index.
                copy(3_020_100, lan_again, false, true, ACK),
                copy(3_020_140, wan, true, true, ACK),
                copy(3_040_000, wan, false, false, ACK),
                copy(3_040_040, lan_again, true, false, ACK),
            ];
            let expected = [false, true, true, false, false, true, false, true, true, false];
            assert_eq!(seen, expected, "{link:?}");
        }
        assert_eq!(CapturePoint::of(LinkType::Ethernet, &[0; 64]), None);
    }

    /// The daemon on a router's LAN and WAN without NAT (Ethernet, the WAN's frames with a
    /// VLAN tag; and raw IP): each packet at both, the flow measured where its first packet
    /// showed. A frame that is no TCP or UDP is never a copy.
    #[test]
    fn copies_at_the_daemons_interfaces_are_found() {
        let ip =
            |up: bool, flags: u8| frame(LinkType::LinuxSll2, 0, false, up, flags)[20..].to_vec();
        let eth = |vlan: bool, ip: Vec<u8>| {
            let tag: &[u8] = if vlan { &[0x81, 0, 0, 7] } else { &[] };
            [[0u8; 12].as_slice(), tag, &[8, 0], &ip].concat()
        };
        let (lan, wan) = (CapturePoint::Interface(0), CapturePoint::Interface(1));
        for link in [LinkType::Ethernet, LinkType::RawIp] {
            let mut f = CopyFilter::new(16);
            let mut copy = |at_us: u64, point: CapturePoint, up: bool, flags: u8| {
                let at = Timestamp::from_micros(1_700_000_000_000_000 + at_us);
                let fr = match link {
                    LinkType::Ethernet => eth(point == wan, ip(up, flags)),
                    _ => ip(up, flags),
                };
                f.is_second_copy(point, link, at, &fr)
            };
            let seen = [
                copy(0, lan, true, SYN),
                copy(40, wan, true, SYN),
                copy(20_000, wan, false, SYN | ACK),
                copy(20_040, lan, false, SYN | ACK),
                copy(20_100, lan, true, ACK),
                copy(20_140, wan, true, ACK),
            ];
            assert_eq!(seen, [false, true, true, false, false, true], "{link:?}");
        }
        let mut f = CopyFilter::new(16);
        let mut icmp = ipv4(1, 28, 1, 0);
        icmp.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0]);
        for (at, point) in [(1, CapturePoint::Interface(0)), (2, CapturePoint::Interface(1))] {
            let at = Timestamp::from_micros(at);
            assert!(!f.is_second_copy(point, LinkType::RawIp, at, &icmp));
        }
        assert_eq!(f.len(), 0);
    }

    /// The pins stay within their slots under a flood of flows.
    #[test]
    fn pins_are_bounded() {
        let mut f = CopyFilter::new(100);
        for port in 0..1_000u16 {
            let mut fr = frame(LinkType::LinuxSll2, 2, false, true, SYN);
            fr[20 + 20..20 + 22].copy_from_slice(&(10_000 + port).to_be_bytes());
            let point = CapturePoint::Interface(2);
            f.is_second_copy(
                point,
                LinkType::LinuxSll2,
                Timestamp::from_micros(u64::from(port)),
                &fr,
            );
            assert!(f.len() <= 128);
        }
        assert!(f.len() > 120, "{} of 128 slots", f.len());
    }
}
