//! Link layers: find where the IP packet starts in a captured frame.
//!
//! Ethernet (with any mix of 802.1Q, 802.1ad and old QinQ tags, PPPoE session frames as on
//! OpenWrt WANs, and MPLS label stacks), Linux cooked capture v1 and v2 (captures on `any`) and
//! raw IP (`pppoe-wan`, tun devices). Frames that carry something else are [`SkipReason::NotIp`].

use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::sll::SLLPacket;
use pnet_packet::sll2::SLL2Packet;

use super::SkipReason;

/// Link-layer header types we decode, by their pcap `DLT_`/`LINKTYPE_` numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    /// Raw IP, version from the first nibble.
    RawIp,
    Ipv4,
    Ipv6,
}

impl LinkType {
    /// Every supported link type.
    pub const ALL: [LinkType; 6] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Ipv4,
        LinkType::Ipv6,
    ];

    /// From the data link type libpcap reports for a file or interface.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        match dlt {
            1 => Some(LinkType::Ethernet),
            // DLT_RAW is 12 on most systems and 14 on OpenBSD; LINKTYPE_RAW is 101.
            12 | 14 | 101 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            228 => Some(LinkType::Ipv4),
            229 => Some(LinkType::Ipv6),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LinkType::Ethernet => "ethernet",
            LinkType::LinuxSll => "linux-sll",
            LinkType::LinuxSll2 => "linux-sll2",
            LinkType::RawIp => "raw-ip",
            LinkType::Ipv4 => "ipv4",
            LinkType::Ipv6 => "ipv6",
        }
    }

    /// The names of all supported link types, for error messages.
    pub const SUPPORTED: &'static str = "ethernet (1), raw IP (12, 14, 101), linux-sll (113), linux-sll2 (276), ipv4 (228), ipv6 (229)";
}

/// Where the network layer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network<'a> {
    /// Bytes of link-layer header before the IP packet.
    pub offset: usize,
    pub payload: &'a [u8],
    /// The IP version the link layer announced (ethertype, PPP protocol), if it did.
    pub version_hint: Option<u8>,
}

/// Linux cooked capture header lengths (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2).
const SLL_HEADER: usize = 16;
const SLL2_HEADER: usize = 20;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_QINQ_OLD2: u16 = 0x9200;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// VLAN tags plus MPLS labels we follow before giving up on a frame.
const MAX_LABELS: usize = 8;

#[inline(always)]
pub(crate) fn strip(link: LinkType, frame: &[u8]) -> Result<Network<'_>, SkipReason> {
    match link {
        LinkType::Ethernet => {
            let eth = EthernetPacket::new(frame).ok_or(SkipReason::LinkTruncated)?;
            from_ethertype(eth.get_ethertype().0, EthernetPacket::minimum_packet_size(), frame)
        }
        // pnet's minimum sizes leave out the fixed 8-byte address field, so the header lengths
        // are checked here before any accessor reads past them.
        LinkType::LinuxSll => {
            let sll = frame
                .get(..SLL_HEADER)
                .and_then(SLLPacket::new)
                .ok_or(SkipReason::LinkTruncated)?;
            from_ethertype(sll.get_protocol().0, SLL_HEADER, frame)
        }
        LinkType::LinuxSll2 => {
            let sll2 = frame
                .get(..SLL2_HEADER)
                .and_then(SLL2Packet::new)
                .ok_or(SkipReason::LinkTruncated)?;
            from_ethertype(sll2.get_protocol_type().0, SLL2_HEADER, frame)
        }
        LinkType::RawIp => Ok(Network { offset: 0, payload: frame, version_hint: None }),
        LinkType::Ipv4 => Ok(Network { offset: 0, payload: frame, version_hint: Some(4) }),
        LinkType::Ipv6 => Ok(Network { offset: 0, payload: frame, version_hint: Some(6) }),
    }
}

fn be16(frame: &[u8], at: usize) -> Result<u16, SkipReason> {
    match frame.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(SkipReason::LinkTruncated),
    }
}

/// Follow tags, PPPoE and MPLS from an ethertype found at `offset - 2` to the IP packet.
#[inline(always)]
fn from_ethertype(
    mut ethertype: u16,
    mut offset: usize,
    frame: &[u8],
) -> Result<Network<'_>, SkipReason> {
    for _ in 0..MAX_LABELS {
        match ethertype {
            ETHERTYPE_IPV4 => return network(frame, offset, Some(4)),
            ETHERTYPE_IPV6 => return network(frame, offset, Some(6)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD | ETHERTYPE_QINQ_OLD2 => {
                // Tag: 2 bytes TCI, then the inner ethertype.
                ethertype = be16(frame, offset + 2)?;
                offset += 4;
            }
            ETHERTYPE_PPPOE_SESSION => {
                // RFC 2516: ver/type, code, session id, length; then the PPP protocol.
                let protocol = be16(frame, offset + 6)?;
                let offset = offset + 8;
                return match protocol {
                    PPP_IPV4 => network(frame, offset, Some(4)),
                    PPP_IPV6 => network(frame, offset, Some(6)),
                    _ => Err(SkipReason::NotIp),
                };
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => return mpls(frame, offset),
            _ => return Err(SkipReason::NotIp),
        }
    }
    Err(SkipReason::LinkTooDeep)
}

/// RFC 3032 label stack; after the bottom label the payload is IP when its first nibble says
/// so (a pseudowire control word starts with 0 and is not followed).
fn mpls(frame: &[u8], mut offset: usize) -> Result<Network<'_>, SkipReason> {
    for _ in 0..MAX_LABELS {
        let label = frame.get(offset..offset + 4).ok_or(SkipReason::LinkTruncated)?;
        offset += 4;
        if label[2] & 0x01 != 0 {
            let first = *frame.get(offset).ok_or(SkipReason::LinkTruncated)?;
            return match first >> 4 {
                4 => network(frame, offset, Some(4)),
                6 => network(frame, offset, Some(6)),
                _ => Err(SkipReason::NotIp),
            };
        }
    }
    Err(SkipReason::LinkTooDeep)
}

#[inline(always)]
fn network(
    frame: &[u8],
    offset: usize,
    version_hint: Option<u8>,
) -> Result<Network<'_>, SkipReason> {
    let payload = frame.get(offset..).ok_or(SkipReason::LinkTruncated)?;
    Ok(Network { offset, payload, version_hint })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    fn eth(rest: &[u8]) -> Vec<u8> {
        let mut v = MACS.to_vec();
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn ethernet_ipv4() {
        let f = eth(&[0x08, 0x00, 0x45, 0x00]);
        let n = strip(LinkType::Ethernet, &f).unwrap();
        assert_eq!(n.offset, 14);
        assert_eq!(n.version_hint, Some(4));
        assert_eq!(n.payload, &[0x45, 0x00]);
    }

    #[test]
    fn ethernet_qinq_then_ipv6() {
        let f = eth(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x86, 0xdd, 0x60]);
        let n = strip(LinkType::Ethernet, &f).unwrap();
        assert_eq!(n.offset, 22);
        assert_eq!(n.version_hint, Some(6));
    }

    #[test]
    fn ethernet_pppoe_session() {
        let f = eth(&[0x88, 0x64, 0x11, 0x00, 0x12, 0x34, 0x00, 0x20, 0x00, 0x21, 0x45]);
        let n = strip(LinkType::Ethernet, &f).unwrap();
        assert_eq!(n.offset, 22);
        assert_eq!(n.version_hint, Some(4));
        // LCP is not IP.
        let f = eth(&[0x88, 0x64, 0x11, 0x00, 0x12, 0x34, 0x00, 0x20, 0xc0, 0x21, 0x01]);
        assert_eq!(strip(LinkType::Ethernet, &f), Err(SkipReason::NotIp));
    }

    #[test]
    fn ethernet_mpls_two_labels() {
        let f = eth(&[0x88, 0x47, 0, 0x01, 0x00, 64, 0, 0x02, 0x01, 64, 0x45, 0]);
        let n = strip(LinkType::Ethernet, &f).unwrap();
        assert_eq!(n.offset, 22);
        assert_eq!(n.version_hint, Some(4));
    }

    #[test]
    fn ethernet_truncated() {
        assert_eq!(strip(LinkType::Ethernet, &MACS), Err(SkipReason::LinkTruncated));
        // A VLAN tag cut in half.
        let f = eth(&[0x81, 0x00, 0x00]);
        assert_eq!(strip(LinkType::Ethernet, &f), Err(SkipReason::LinkTruncated));
        // PPPoE header cut short.
        let f = eth(&[0x88, 0x64, 0x11, 0x00]);
        assert_eq!(strip(LinkType::Ethernet, &f), Err(SkipReason::LinkTruncated));
    }

    #[test]
    fn ethernet_impossible_tag_depth() {
        let mut rest = Vec::new();
        for _ in 0..20 {
            rest.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        let f = eth(&rest);
        assert_eq!(strip(LinkType::Ethernet, &f), Err(SkipReason::LinkTooDeep));
    }

    #[test]
    fn ethernet_arp_is_not_ip() {
        let f = eth(&[0x08, 0x06, 0x00, 0x01]);
        assert_eq!(strip(LinkType::Ethernet, &f), Err(SkipReason::NotIp));
    }

    #[test]
    fn sll_and_sll2() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00, 0x45]);
        let n = strip(LinkType::LinuxSll, &sll).unwrap();
        assert_eq!((n.offset, n.version_hint), (16, Some(4)));
        for cut in 0..16 {
            assert_eq!(strip(LinkType::LinuxSll, &sll[..cut]), Err(SkipReason::LinkTruncated));
        }

        let mut sll2 = vec![0x86, 0xdd];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.push(0x60);
        let n = strip(LinkType::LinuxSll2, &sll2).unwrap();
        assert_eq!((n.offset, n.version_hint), (20, Some(6)));
        assert_eq!(strip(LinkType::LinuxSll2, &sll2[..19]), Err(SkipReason::LinkTruncated));
    }

    #[test]
    fn dlt_numbers() {
        assert_eq!(LinkType::from_dlt(1), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_dlt(113), Some(LinkType::LinuxSll));
        assert_eq!(LinkType::from_dlt(276), Some(LinkType::LinuxSll2));
        assert_eq!(LinkType::from_dlt(12), Some(LinkType::RawIp));
        assert_eq!(LinkType::from_dlt(105), None);
    }
}
