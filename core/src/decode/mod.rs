//! Decode: one captured frame in, either a [`Decoded`] packet (addresses, IP fields and the
//! transport header the flow stage needs) or a [`SkipReason`] out. Never a panic and never an
//! allocation: every length read from the wire is checked against what was captured before it
//! is used, and every packet that is not measured is counted under a reason (ARCHITECTURE.md).
//!
//! Link layers: Ethernet with 802.1Q/802.1ad/QinQ tags, PPPoE session frames and MPLS, Linux
//! cooked SLL and SLL2, raw IP. Network: IPv4 with options and fragments (counted, not
//! reassembled; later fragments are attributed through a small [`FragmentCache`]) and IPv6 with
//! its extension headers walked. Transport: TCP, UDP, and ICMP/ICMPv6 errors, which quote the
//! header of the packet that caused them and are attributed to that packet's flow.
//!
//! Byte counts come from the IP header's length fields, not from the captured length, because
//! captures are cut at the snap length.
//!
//! The application-layer views ([`stun`], [`rtp`], [`dns`], [`tls`], [`quic`], [`gquic`]) are used
//! by the measure and
//! classify stages on payloads that the flow stage has already attributed.

pub mod dns;
pub mod gquic;
pub(crate) mod ip;
mod link;
pub mod quic;
pub mod rtp;
pub mod stun;
pub mod tls;
pub(crate) mod transport;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::time::Timestamp;

pub use ip::FragmentCache;
pub use link::LinkType;

/// IP protocol numbers this crate handles.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_ICMPV6: u8 = 58;

/// A decoded packet: what the flow and measure stages read. Borrowed from the frame.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub ts: Timestamp,
    pub ip: IpHeader,
    pub transport: Transport<'a>,
}

/// An IP address as two 64-bit words: the halves of an IPv6 address, or an IPv4 address in
/// the low 32 bits of the second word (the family travels beside it). Aligned and cheap to
/// copy, compare and hash, which the per-packet path does with every address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrWords(pub [u64; 2]);

impl AddrWords {
    pub fn v4(octets: [u8; 4]) -> Self {
        AddrWords([0, u64::from(u32::from_be_bytes(octets))])
    }

    pub fn v6(octets: [u8; 16]) -> Self {
        let bits = u128::from_be_bytes(octets);
        AddrWords([(bits >> 64) as u64, bits as u64])
    }

    pub fn from_ip(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => AddrWords::v4(a.octets()),
            IpAddr::V6(a) => AddrWords::v6(a.octets()),
        }
    }

    pub fn to_ip(self, v6: bool) -> IpAddr {
        let [hi, lo] = self.0;
        if v6 {
            IpAddr::V6(Ipv6Addr::from(u128::from(hi) << 64 | u128::from(lo)))
        } else {
            IpAddr::V4(Ipv4Addr::from(lo as u32))
        }
    }
}

/// The IP header fields kept for measurement and RST forensics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpHeader {
    pub src: AddrWords,
    pub dst: AddrWords,
    pub v6: bool,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification; for IPv6 the fragment identification when a fragment header is
    /// present, else zero.
    pub ip_id: u32,
    /// Bytes of the whole IP packet as its header states (not as captured).
    pub total_len: u32,
    /// The packet is a fragment (first or later) of a larger datagram.
    pub fragment: bool,
}

impl IpHeader {
    pub fn src_addr(&self) -> IpAddr {
        self.src.to_ip(self.v6)
    }

    pub fn dst_addr(&self) -> IpAddr {
        self.dst.to_ip(self.v6)
    }
}

/// The transport part of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(TcpSegment<'a>),
    Udp(UdpDatagram<'a>),
    /// An ICMP or ICMPv6 error about an earlier packet of some flow.
    IcmpError(IcmpError),
    /// A later fragment of a TCP/UDP datagram whose first fragment told us the ports.
    Fragment(FragmentOf),
}

/// TCP flag bits (RFC 9293).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: TcpOptions,
    /// Payload bytes as the IP header states them (the segment's length on the wire).
    pub payload_len: u32,
    /// The captured part of the payload (may be shorter than `payload_len`).
    pub payload: &'a [u8],
}

impl TcpSegment<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The TCP options the measurements use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    /// RFC 7323 timestamps: (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// The highest left edge of the option's SACK blocks (RFC 2018): the receiver holds data
    /// from there on, and lacks some below it down to its acknowledgment unless every block
    /// is at or below that (a D-SACK, RFC 2883, of data it had twice).
    pub sack_left: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// Payload bytes as the headers state them.
    pub payload_len: u32,
    /// The captured part of the payload.
    pub payload: &'a [u8],
}

/// An ICMP/ICMPv6 error and the transport endpoints of the packet it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// Protocol of the quoted packet (TCP or UDP).
    pub quoted_proto: u8,
    /// Source of the quoted packet: the flow side whose packet met the error. In address
    /// words (of family `v6`), as [`IpHeader`]'s: aligned, so that a decoded packet is
    /// assembled with a few word moves rather than byte by byte.
    pub quoted_src: AddrWords,
    pub quoted_src_port: u16,
    pub quoted_dst: AddrWords,
    pub quoted_dst_port: u16,
}

/// A later IP fragment attributed to the datagram its first fragment started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentOf {
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Why a packet was not measured. Counted per reason and reported in the summary; the names
/// (`as_str`) are part of the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The frame is shorter than its link-layer header.
    LinkTruncated,
    /// More VLAN/MPLS labels than the decoder follows.
    LinkTooDeep,
    /// Not IP: ARP, LLDP, PPPoE discovery, PPP control, IPX…
    NotIp,
    /// Shorter than the IP header claims to start with.
    IpTruncated,
    /// The version nibble is neither 4 nor 6 (or disagrees with the link layer).
    IpBadVersion,
    /// IPv4 header length below 20 bytes, or total length below the header length.
    IpBadLength,
    /// IPv6 extension header chain runs past the capture or is longer than we follow.
    Ipv6ExtTruncated,
    /// A later fragment whose first fragment was not seen.
    FragmentUnattributed,
    /// IP protocol other than TCP, UDP and ICMP (GRE, ESP, IGMP, OSPF, SCTP…).
    OtherIpProto,
    /// TCP header cut short by the capture.
    TcpTruncated,
    /// TCP data offset below 5 words or past the end of the IP packet.
    TcpBadOffset,
    /// UDP header cut short by the capture.
    UdpTruncated,
    /// UDP length field below 8 or beyond the IP packet.
    UdpBadLength,
    /// ICMP message that is not an error about a flow (echo, router advertisement…).
    IcmpInfo,
    /// ICMP error whose quoted packet is cut short or is not TCP/UDP.
    IcmpQuoteUnusable,
    /// ICMP error about a flow the table does not hold.
    IcmpErrorNoFlow,
    /// The flow table was full and the packet's new flow was refused.
    FlowTableFull,
    /// A second copy of a packet, seen at another point of the same capture: `tcpdump -i
    /// any` on a router shows a forwarded packet on the interface it came in by and on the
    /// one it left by. Each flow is measured at one side ([`crate::flow::copies`]).
    SecondCopy,
}

impl SkipReason {
    pub const ALL: [SkipReason; 18] = [
        SkipReason::LinkTruncated,
        SkipReason::LinkTooDeep,
        SkipReason::NotIp,
        SkipReason::IpTruncated,
        SkipReason::IpBadVersion,
        SkipReason::IpBadLength,
        SkipReason::Ipv6ExtTruncated,
        SkipReason::FragmentUnattributed,
        SkipReason::OtherIpProto,
        SkipReason::TcpTruncated,
        SkipReason::TcpBadOffset,
        SkipReason::UdpTruncated,
        SkipReason::UdpBadLength,
        SkipReason::IcmpInfo,
        SkipReason::IcmpQuoteUnusable,
        SkipReason::IcmpErrorNoFlow,
        SkipReason::FlowTableFull,
        SkipReason::SecondCopy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::LinkTruncated => "link_truncated",
            SkipReason::LinkTooDeep => "link_too_deep",
            SkipReason::NotIp => "not_ip",
            SkipReason::IpTruncated => "ip_truncated",
            SkipReason::IpBadVersion => "ip_bad_version",
            SkipReason::IpBadLength => "ip_bad_length",
            SkipReason::Ipv6ExtTruncated => "ipv6_ext_truncated",
            SkipReason::FragmentUnattributed => "fragment_unattributed",
            SkipReason::OtherIpProto => "other_ip_proto",
            SkipReason::TcpTruncated => "tcp_truncated",
            SkipReason::TcpBadOffset => "tcp_bad_offset",
            SkipReason::UdpTruncated => "udp_truncated",
            SkipReason::UdpBadLength => "udp_bad_length",
            SkipReason::IcmpInfo => "icmp_info",
            SkipReason::IcmpQuoteUnusable => "icmp_quote_unusable",
            SkipReason::IcmpErrorNoFlow => "icmp_error_no_flow",
            SkipReason::FlowTableFull => "flow_table_full",
            SkipReason::SecondCopy => "second_copy",
        }
    }

    /// True for packets that are broken or cut short, as opposed to packets that are fine but
    /// are not something this tool measures (ARP, ICMP echo, GRE…).
    pub fn is_malformed(self) -> bool {
        matches!(
            self,
            SkipReason::LinkTruncated
                | SkipReason::LinkTooDeep
                | SkipReason::IpTruncated
                | SkipReason::IpBadVersion
                | SkipReason::IpBadLength
                | SkipReason::Ipv6ExtTruncated
                | SkipReason::TcpTruncated
                | SkipReason::TcpBadOffset
                | SkipReason::UdpTruncated
                | SkipReason::UdpBadLength
                | SkipReason::IcmpQuoteUnusable
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_are_listed_in_declaration_order_with_unique_names() {
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        let mut names: Vec<&str> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SkipReason::ALL.len());
    }
}

/// Per-reason skip counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts([u64; SkipReason::ALL.len()]);

impl SkipCounts {
    pub fn add(&mut self, reason: SkipReason) {
        self.0[reason.index()] += 1;
    }

    pub fn get(&self, reason: SkipReason) -> u64 {
        self.0[reason.index()]
    }

    /// Add another set of counters (the workers of a sharded run).
    pub fn add_all(&mut self, other: &SkipCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Reasons with a non-zero count, in declaration order.
    pub fn nonzero(&self) -> impl Iterator<Item = (SkipReason, u64)> + '_ {
        SkipReason::ALL.iter().map(|r| (*r, self.get(*r))).filter(|(_, n)| *n > 0)
    }
}

/// Decode one frame of the given link type. `wire_len` is the frame's length on the wire (the
/// pcap record's `len`), used when an IP length field is zero (TSO captures).
// Inlined into both callers (the per-packet path and the classification copies): as a call,
// the per-packet path loses about 4 % of its speed.
#[inline(always)]
pub fn decode<'a>(
    link: LinkType,
    ts: Timestamp,
    frame: &'a [u8],
    wire_len: u32,
    fragments: &mut FragmentCache,
) -> Result<Decoded<'a>, SkipReason> {
    let net = link::strip(link, frame)?;
    // Bytes of the IP packet on the wire, for TSO captures whose length fields are zero.
    let wire_ip_len = wire_len.saturating_sub(net.offset as u32);
    let packet = ip::parse(net.version_hint, net.payload, wire_ip_len)?;
    let transport = transport::parse(&packet, fragments)?;
    Ok(Decoded { ts, ip: packet.header, transport })
}
