//! Measure: per-flow measurements in fixed-size state (ARCHITECTURE.md). Counters every flow keeps
//! ([`DirCounters`]), the TCP ([`tcp`]) or UDP/call ([`call`]) part, and for flows that matter a
//! [`Detail`] slot with throughput bins and windowed RTT extremes, taken from a bounded pool by
//! the flow table's owner.
//!
//! Nothing here reads the clock or trusts a length from the wire. Nothing allocates per
//! packet: what only some flows need (IP fragments and ICMP errors here, FIN and RST records
//! in [`tcp`], RTP trackers in [`call`]) is allocated at most once per flow, when the flow
//! first needs it, and freed with the flow, so the flow-table entry stays small
//! (ARCHITECTURE.md, Budgets) and that memory stays bounded by the table's `max_flows`.

pub mod call;
pub mod loss;
pub mod rtt;
pub mod tcp;
pub mod throughput;

use crate::decode::stun::StunMessage;
use crate::decode::{Decoded, IcmpError, IpHeader, Transport};
use crate::flow::{Direction, PerDir, Proto};
use crate::time::Timestamp;

use call::UdpMeasures;
use loss::LossLog;
use rtt::{Leg, WindowedExtreme};
use tcp::TcpMeasures;
use throughput::ThroughputBins;

/// Window of the per-flow RTT extremes.
pub const RTT_WINDOW_US: u64 = 10_000_000;

/// A mirror's second copy of a packet comes this soon after the latest packet of its
/// direction ([`FlowMeasures::repeats`]): a mirror port copies within microseconds, and a
/// sender repeats a packet (a retransmission, a keepalive) only after a timer of far longer,
/// and with a new IPv4 identification.
pub const COPY_WINDOW_US: u64 = 2_000;

/// ... and carries the identification of one of the latest this many numbers of the
/// direction, which a packet already carried (a copy that other packets overtook: the copies
/// of a burst interleave with it). A super-segment that GRO merged from N segments carries
/// the first of their N numbers, and the next packet the number after the last: one such
/// packet overtaking a copy puts it up to 45 numbers back (64 kB of 1,448-byte segments).
/// 16 numbers were too few: a mirror's copies of a cubic sender's bursts, captured with GRO
/// on, were counted again (19 and 23 numbers back).
pub const COPY_IDENTIFICATIONS: u16 = 64;

/// How far from a direction's highest IPv4 identification a packet's may be and still be
/// taken for one of its series. Ahead: a sender's next packet carries the next number from
/// Linux (a number per connection), a few more from a sender that numbers all its traffic in
/// one series (Windows); random numbers (macOS) fall this near seldom (`tcp`'s test of data
/// sent again). Below: an older packet's (reordered on the way, or a mirror's copy of a burst
/// longer than [`COPY_IDENTIFICATIONS`]), which leaves the highest where it is; farther
/// below is a jump.
pub(crate) const IDENTIFICATION_REACH: u16 = 1024;

/// The highest identification of a direction whose packets carry none (zero).
const UNNUMBERED_TOP_IP_ID: u16 = 1 << 15;

/// Counters of one direction of any flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirCounters {
    /// IP bytes as the headers state them.
    pub bytes: u64,
    pub packets: u64,
    /// Time of the latest packet (meaningless while `packets` is zero).
    pub last_at: Timestamp,
    ttl_min: u8,
    ttl_max: u8,
    last_ttl: u8,
    /// The highest IPv4 identification of the latest packets (in sequence space modulo
    /// 2^16), and which of the [`COPY_IDENTIFICATIONS`] numbers below it no packet carried
    /// (bit `k`: `top_ip_id - k`), as IPsec's anti-replay window keeps them (RFC 4303, 3.4.3).
    top_ip_id: u16,
    ip_id_holes: u64,
}

impl Default for DirCounters {
    fn default() -> Self {
        DirCounters {
            bytes: 0,
            packets: 0,
            last_at: Timestamp::default(),
            // So that the first packet's TTL is both, with no test of the count.
            ttl_min: u8::MAX,
            ttl_max: 0,
            last_ttl: 0,
            top_ip_id: 0,
            ip_id_holes: u64::MAX,
        }
    }
}

impl DirCounters {
    pub fn count(&mut self, ip: &IpHeader, now: Timestamp) {
        self.ttl_min = self.ttl_min.min(ip.ttl);
        self.ttl_max = self.ttl_max.max(ip.ttl);
        self.bytes += u64::from(ip.total_len);
        self.packets += 1;
        self.last_at = now;
        self.last_ttl = ip.ttl;
        // IPv4's number is 16 bits (IPv6's, of fragments only, is cut to them).
        let id = ip.ip_id as u16;
        if id.wrapping_sub(self.top_ip_id) == 1 {
            // The usual packet: the next number.
            self.ip_id_holes <<= 1;
            self.top_ip_id = id;
        } else if id != 0 {
            self.note_ip_id(id);
        } else {
            // A direction without numbers: far from zero, so that its packets are told from
            // copies by one test. Its first packet (a SYN, a Linux SYN/ACK) stays comparable.
            // No packet carried that highest.
            self.top_ip_id = if self.packets > 1 { UNNUMBERED_TOP_IP_ID } else { 0 };
            self.ip_id_holes = u64::MAX;
        }
    }

    /// The rest of [`DirCounters::count`]'s window of numbers (packets without one, zero,
    /// stay out of it): holes below the highest, a number skipped (a sender that numbers its
    /// other traffic in the same series; a super-segment of several), the same number again,
    /// an older one (reordering on the way, a mirror's copy), a jump.
    #[cold]
    #[inline(never)]
    fn note_ip_id(&mut self, id: u16) {
        let ahead = id.wrapping_sub(self.top_ip_id);
        let back = self.top_ip_id.wrapping_sub(id);
        if ahead != 0 && ahead < COPY_IDENTIFICATIONS {
            // The numbers passed over are holes.
            let skipped = (1u64 << ahead).wrapping_sub(2);
            self.ip_id_holes = (self.ip_id_holes << ahead) | skipped;
            self.top_ip_id = id;
        } else if back < COPY_IDENTIFICATIONS {
            self.ip_id_holes &= !(1u64 << back);
        } else if back >= IDENTIFICATION_REACH || self.ip_id_holes | 1 == u64::MAX {
            // Far below, or below a highest no packet carried (the first number of a
            // direction, or one after packets without numbers), or below one that came
            // alone (numbers drawn at random, as middleboxes' injected RSTs and macOS
            // carry them, so that the packet's own copy is told): a jump.
            // Nothing of the window is known below a number far from it.
            (self.top_ip_id, self.ip_id_holes) = (id, u64::MAX - 1);
        }
    }

    /// Whether a packet carried the IPv4 identification `back` numbers below the highest of
    /// the direction's latest, when `back` is below [`COPY_IDENTIFICATIONS`].
    fn ip_id_seen(&self, back: u16) -> bool {
        back < COPY_IDENTIFICATIONS && self.ip_id_holes & (1u64 << back) == 0
    }

    /// Smallest and largest TTL (hop limit) seen.
    pub fn ttl_range(&self) -> Option<(u8, u8)> {
        (self.packets > 0).then_some((self.ttl_min, self.ttl_max))
    }

    pub fn last_ttl(&self) -> Option<u8> {
        (self.packets > 0).then_some(self.last_ttl)
    }

    /// The highest IPv4 identification of the latest packets: the previous packet's, unless
    /// packets came reordered.
    pub fn last_ip_id(&self) -> Option<u32> {
        (self.packets > 0).then_some(u32::from(self.top_ip_id))
    }
}

/// What few flows see, in one direction: IP fragments and ICMP errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpEvents {
    /// Packets that were IP fragments.
    pub fragments: u32,
    /// ICMP errors about packets of this direction.
    pub icmp_errors: u32,
    /// Type and code of the latest of them.
    pub last_icmp: Option<(u8, u8)>,
}

/// The transport-specific part of a flow's measurements.
#[derive(Debug, Clone)]
pub enum TransportMeasures {
    Tcp(TcpMeasures),
    Udp(UdpMeasures),
}

/// All measurements of one flow.
#[derive(Debug, Clone)]
pub struct FlowMeasures {
    pub dirs: PerDir<DirCounters>,
    pub transport: TransportMeasures,
    /// `None` until the flow's first fragment or ICMP error.
    ip_events: Option<Box<PerDir<IpEvents>>>,
}

/// RTT samples one packet produced, by leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttSamples {
    pub external_us: Option<u64>,
    pub internal_us: Option<u64>,
}

impl RttSamples {
    pub fn set(&mut self, leg: Leg, rtt_us: u64) {
        match leg {
            Leg::External => self.external_us = Some(rtt_us),
            Leg::Internal => self.internal_us = Some(rtt_us),
        }
    }
}

/// Per-flow series kept only for flows that matter, from a bounded pool.
#[derive(Debug, Clone)]
pub struct Detail {
    pub bins: ThroughputBins,
    /// Windowed minimum and maximum RTT per leg, indexed by [`Leg::index`].
    pub rtt_min: [WindowedExtreme; 2],
    pub rtt_max: [WindowedExtreme; 2],
    /// Loss events towards the client: TCP's, or a call's runs of lost RTP packets.
    pub losses: LossLog,
}

impl Detail {
    pub fn new(bin_us: u64) -> Self {
        Detail {
            bins: ThroughputBins::new(bin_us),
            rtt_min: [WindowedExtreme::min(RTT_WINDOW_US); 2],
            rtt_max: [WindowedExtreme::max(RTT_WINDOW_US); 2],
            losses: LossLog::default(),
        }
    }

    /// Make a slot returned to the pool ready for the next flow (keeping the loss logs'
    /// allocations).
    pub fn reset(&mut self) {
        let mut losses = std::mem::take(&mut self.losses);
        losses.clear();
        *self = Detail { losses, ..Detail::new(self.bins.bin_us()) };
    }

    fn rtt(&mut self, leg: Leg, now: Timestamp, rtt_us: u64) {
        let v = u32::try_from(rtt_us).unwrap_or(u32::MAX);
        self.rtt_min[leg.index()].add(now, v);
        self.rtt_max[leg.index()].add(now, v);
        if leg == Leg::External {
            self.losses.rtt(v);
        }
    }
}

impl FlowMeasures {
    pub fn new(proto: Proto) -> Self {
        let transport = match proto {
            Proto::Tcp => TransportMeasures::Tcp(TcpMeasures::default()),
            Proto::Udp => TransportMeasures::Udp(UdpMeasures::default()),
        };
        FlowMeasures { dirs: Default::default(), transport, ip_events: None }
    }

    /// Fragments and ICMP errors of one direction (all zero for most flows).
    pub fn ip_events(&self, dir: Direction) -> IpEvents {
        self.ip_events.as_ref().map_or_else(IpEvents::default, |events| events[dir])
    }

    /// Whether a packet of this flow travelling in `dir` is a second copy of one already
    /// counted: a mirror port (SPAN) that copies the traffic of two switch ports, or both
    /// directions of a router's port, shows each packet twice, and counting both would double
    /// the bytes and show every segment resent. A copy comes within [`COPY_WINDOW_US`] of the
    /// direction's latest packet and carries an IPv4 identification a packet of the direction
    /// carried, among the latest [`COPY_IDENTIFICATIONS`] numbers (RFC 791's number, up by one
    /// per packet in Linux, Windows and BSD; a retransmission gets a new one; reordering on
    /// the way brings an older number, but not one seen), and a TCP copy carries no sequence
    /// space beyond what was seen. Of packets without a number (IPv6; senders that leave it
    /// zero, as Linux does in a SYN/ACK) only the copy of a direction's first TCP segment (a
    /// SYN, a SYN/ACK) is told, by its sequence; the others are counted, as are copies of a
    /// number the sender's other traffic moved on by more than [`COPY_IDENTIFICATIONS`] in
    /// between (Windows numbers all its packets in one series). A TCP segment counted so that
    /// repeats the direction's latest one within [`COPY_WINDOW_US`] is not counted as resent
    /// ([`tcp::TcpMeasures`]), nor is a SYN or SYN/ACK again as another.
    pub fn repeats(&self, dir: Direction, packet: &Decoded<'_>) -> bool {
        let back = self.dirs[dir].top_ip_id.wrapping_sub(packet.ip.ip_id as u16);
        back < COPY_IDENTIFICATIONS && self.repeats_recent(dir, packet, back)
    }

    /// The rest of [`FlowMeasures::repeats`], for the few packets whose number is not above
    /// the direction's highest (and those without one).
    #[cold]
    #[inline(never)]
    fn repeats_recent(&self, dir: Direction, packet: &Decoded<'_>, back: u16) -> bool {
        let counters = &self.dirs[dir];
        // Fragments of one datagram share its number.
        if counters.packets == 0
            || packet.ip.fragment
            || packet.ts.since(counters.last_at) > COPY_WINDOW_US
        {
            return false;
        }
        let tcp = match (&self.transport, &packet.transport) {
            (TransportMeasures::Tcp(tcp), Transport::Tcp(seg)) => Some((tcp, seg)),
            _ => None,
        };
        if packet.ip.ip_id == 0 {
            // The first packet of a direction without numbers, again.
            return tcp.is_some_and(|(t, seg)| t.repeats_latest(dir, seg));
        }
        // A copy's segment never moves the sequence on: its original did.
        counters.ip_id_seen(back) && tcp.is_none_or(|(t, seg)| t.covers(dir, seg))
    }

    /// Account one packet of this flow travelling in `dir`. `stun` is the packet's STUN
    /// message when it carries one; `flow_start` the time of the flow's first packet.
    pub fn on_packet(
        &mut self,
        dir: Direction,
        packet: &Decoded<'_>,
        stun: Option<&StunMessage<'_>>,
        flow_start: Timestamp,
        mut detail: Option<&mut Detail>,
    ) -> RttSamples {
        let now = packet.ts;
        let prev = &self.dirs[dir];
        let mut lost = false;
        let samples = match (&mut self.transport, &packet.transport) {
            (TransportMeasures::Tcp(tcp), Transport::Tcp(seg)) => {
                let losses = tcp.down_loss_events();
                let samples = tcp.on_segment(dir, &packet.ip, seg, &self.dirs, flow_start, now);
                lost = tcp.down_loss_events() != losses;
                samples
            }
            (TransportMeasures::Udp(udp), Transport::Udp(datagram)) => {
                let last_at = (prev.packets > 0).then_some(prev.last_at);
                let after_loss = udp.on_datagram(dir, datagram.payload, stun, last_at, now);
                // (Recorded here, not through `lost`: that way the TCP path compiles as it
                // did without it, 2.4 instructions a packet cheaper on the bench trace.)
                if after_loss
                    && dir == Direction::Down
                    && let Some(detail) = detail.as_deref_mut()
                {
                    detail.losses.record(now, self.dirs.down.bytes);
                }
                RttSamples::default()
            }
            // Later fragments only count bytes.
            _ => RttSamples::default(),
        };
        self.dirs[dir].count(&packet.ip, now);
        if packet.ip.fragment {
            let events = &mut self.ip_events.get_or_insert_default()[dir];
            events.fragments = events.fragments.saturating_add(1);
        }
        if let Some(detail) = detail {
            detail.bins.add(now, dir, packet.ip.total_len);
            if lost {
                detail.losses.record(now, self.dirs.down.bytes);
            }
            if let Some(rtt) = samples.external_us {
                detail.rtt(Leg::External, now, rtt);
            }
            if let Some(rtt) = samples.internal_us {
                detail.rtt(Leg::Internal, now, rtt);
            }
        }
        samples
    }

    /// An ICMP error about a packet this flow sent in `dir`.
    pub fn on_icmp_error(&mut self, dir: Direction, error: &IcmpError) {
        let events = &mut self.ip_events.get_or_insert_default()[dir];
        events.icmp_errors = events.icmp_errors.saturating_add(1);
        events.last_icmp = Some((error.icmp_type, error.code));
    }
}
