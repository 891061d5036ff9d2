//! IPv4 (options, fragments) and IPv6 (extension headers, fragments).
//!
//! Guarantees: the returned transport slice lies inside both the capture and the IP packet's
//! stated length; lengths that cannot be true (header longer than the packet, an extension
//! header chain longer than the packet) are [`SkipReason::IpBadLength`], lengths cut by the
//! capture are the `…Truncated` reasons.

#[cfg(test)]
use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_packet::ipv6::Ipv6Packet;

use super::{AddrWords, IpHeader, SkipReason};

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
/// Extension headers we walk before giving up (a real chain has two or three).
const MAX_EXT_HEADERS: usize = 8;

/// How a packet relates to IP fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragmentation {
    Whole,
    /// Offset zero with more fragments following: carries the transport header.
    First {
        id: u32,
    },
    /// Offset beyond zero: carries no transport header.
    Later {
        id: u32,
    },
}

/// An IP packet with its transport part located.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IpPacket<'a> {
    pub header: IpHeader,
    pub v6: bool,
    /// Transport protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Captured transport bytes, cut at the end of the IP packet.
    pub l4: &'a [u8],
    /// Transport bytes as the IP header states them.
    pub l4_len: u32,
    pub fragmentation: Fragmentation,
}

/// Parse the IP packet at the start of `data`. `wire_len` is the packet's length on the wire,
/// used when the length field is zero (TSO/GSO captures, jumbograms).
#[inline(always)]
pub(crate) fn parse(
    version_hint: Option<u8>,
    data: &[u8],
    wire_len: u32,
) -> Result<IpPacket<'_>, SkipReason> {
    let version = data.first().ok_or(SkipReason::IpTruncated)? >> 4;
    if version_hint.is_some_and(|hint| hint != version) {
        return Err(SkipReason::IpBadVersion);
    }
    match version {
        4 => parse_v4(data, wire_len),
        6 => parse_v6(data, wire_len),
        _ => Err(SkipReason::IpBadVersion),
    }
}

/// IPv4 (RFC 791). The fixed header is read from a 20-byte array: this is the hottest header
/// of all, and array reads need no per-byte bounds checks (pnet's generated accessors do).
#[inline(always)]
fn parse_v4(data: &[u8], wire_len: u32) -> Result<IpPacket<'_>, SkipReason> {
    let h: &[u8; IPV4_MIN_HEADER] = data.first_chunk().ok_or(SkipReason::IpTruncated)?;
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if header_len < IPV4_MIN_HEADER {
        return Err(SkipReason::IpBadLength);
    }
    let total_len = match u32::from(u16::from_be_bytes([h[2], h[3]])) {
        0 => wire_len,
        n => n,
    };
    if (total_len as usize) < header_len {
        return Err(SkipReason::IpBadLength);
    }
    if data.len() < header_len {
        return Err(SkipReason::IpTruncated);
    }
    let end = data.len().min(total_len as usize);
    let id = u32::from(u16::from_be_bytes([h[4], h[5]]));
    // Flags are the top 3 bits of the 16-bit word (MF = 0x2000), the offset the other 13.
    let flags_offset = u16::from_be_bytes([h[6], h[7]]);
    let fragmentation = match (flags_offset & 0x1fff, flags_offset & 0x2000 != 0) {
        (0, false) => Fragmentation::Whole,
        (0, true) => Fragmentation::First { id },
        _ => Fragmentation::Later { id },
    };
    Ok(IpPacket {
        header: IpHeader {
            src: AddrWords::v4([h[12], h[13], h[14], h[15]]),
            dst: AddrWords::v4([h[16], h[17], h[18], h[19]]),
            v6: false,
            ttl: h[8],
            ip_id: id,
            total_len,
            fragment: fragmentation != Fragmentation::Whole,
        },
        v6: false,
        proto: h[9],
        l4: &data[header_len..end],
        l4_len: total_len - header_len as u32,
        fragmentation,
    })
}

#[inline(always)]
fn parse_v6(data: &[u8], wire_len: u32) -> Result<IpPacket<'_>, SkipReason> {
    let ip = Ipv6Packet::new(data).ok_or(SkipReason::IpTruncated)?;
    let total_len = match u32::from(ip.get_payload_length()) {
        0 => wire_len.max(IPV6_HEADER as u32),
        n => n + IPV6_HEADER as u32,
    };
    let end = data.len().min(total_len as usize);
    let chain = walk_extensions(ip.get_next_header().0, data, IPV6_HEADER, total_len as usize)?;
    let (ip_id, fragmentation) = match chain.fragment {
        None => (0, Fragmentation::Whole),
        Some((id, 0, false)) => (id, Fragmentation::Whole),
        Some((id, 0, true)) => (id, Fragmentation::First { id }),
        Some((id, _, _)) => (id, Fragmentation::Later { id }),
    };
    Ok(IpPacket {
        header: IpHeader {
            src: AddrWords::v6(ip.get_source().octets()),
            dst: AddrWords::v6(ip.get_destination().octets()),
            v6: true,
            ttl: ip.get_hop_limit(),
            ip_id,
            total_len,
            fragment: fragmentation != Fragmentation::Whole,
        },
        v6: true,
        proto: chain.proto,
        l4: data.get(chain.offset..end).unwrap_or(&[]),
        l4_len: total_len - chain.offset as u32,
        fragmentation,
    })
}

/// The end of an IPv6 extension header chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtChain {
    pub proto: u8,
    /// Offset of the transport header from the start of the IPv6 header.
    pub offset: usize,
    /// Fragment header: (identification, offset in 8-byte units, more fragments).
    pub fragment: Option<(u32, u16, bool)>,
}

/// Walk IPv6 extension headers (RFC 8200 §4) starting at `offset` in `data`. `limit` is the
/// packet's stated length: a header reaching past it is impossible ([`SkipReason::IpBadLength`]),
/// one reaching past the capture is cut short ([`SkipReason::Ipv6ExtTruncated`]).
pub(crate) fn walk_extensions(
    mut next: u8,
    data: &[u8],
    mut offset: usize,
    limit: usize,
) -> Result<ExtChain, SkipReason> {
    let header = |offset: usize, len: usize| -> Result<&[u8], SkipReason> {
        if offset + len > limit {
            return Err(SkipReason::IpBadLength);
        }
        data.get(offset..offset + len).ok_or(SkipReason::Ipv6ExtTruncated)
    };
    let mut fragment = None;
    for _ in 0..MAX_EXT_HEADERS {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: length in
            // 8-byte units not counting the first 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let h = header(offset, 2)?;
                (usize::from(h[1]) + 1) * 8
            }
            // Fragment header: fixed 8 bytes.
            44 => {
                let h = header(offset, 8)?;
                let offset_flags = u16::from_be_bytes([h[2], h[3]]);
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                let frag_offset = offset_flags >> 3;
                fragment = Some((id, frag_offset, offset_flags & 1 != 0));
                if frag_offset != 0 {
                    // A later fragment: what follows is fragment data, not headers.
                    return Ok(ExtChain { proto: h[0], offset: offset + 8, fragment });
                }
                8
            }
            // Authentication header (RFC 4302): length in 4-byte units minus 2.
            51 => {
                let h = header(offset, 2)?;
                (usize::from(h[1]) + 2) * 4
            }
            proto => {
                return Ok(ExtChain { proto, offset, fragment });
            }
        };
        if offset + len > limit {
            return Err(SkipReason::IpBadLength);
        }
        next = data[offset];
        offset += len;
    }
    Err(SkipReason::Ipv6ExtTruncated)
}

/// Remembers the ports of recent first fragments so that later fragments of the same datagram
/// count towards their flow. Fixed size; the oldest entry is overwritten.
#[derive(Debug, Clone)]
pub struct FragmentCache {
    entries: [Option<FragmentEntry>; FRAGMENT_CACHE_SIZE],
    next: usize,
}

const FRAGMENT_CACHE_SIZE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FragmentEntry {
    src: AddrWords,
    dst: AddrWords,
    proto: u8,
    id: u32,
    src_port: u16,
    dst_port: u16,
}

impl Default for FragmentCache {
    fn default() -> Self {
        FragmentCache { entries: [None; FRAGMENT_CACHE_SIZE], next: 0 }
    }
}

impl FragmentCache {
    pub(crate) fn remember(&mut self, header: &IpHeader, proto: u8, id: u32, ports: (u16, u16)) {
        self.entries[self.next] = Some(FragmentEntry {
            src: header.src,
            dst: header.dst,
            proto,
            id,
            src_port: ports.0,
            dst_port: ports.1,
        });
        self.next = (self.next + 1) % FRAGMENT_CACHE_SIZE;
    }

    pub(crate) fn ports_of(&self, header: &IpHeader, proto: u8, id: u32) -> Option<(u16, u16)> {
        self.entries.iter().flatten().find_map(|e| {
            (e.id == id && e.proto == proto && e.src == header.src && e.dst == header.dst)
                .then_some((e.src_port, e.dst_port))
        })
    }
}

/// Unused-address placeholders for tests and fuzz seeds.
#[cfg(test)]
pub(crate) const TEST_V4: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(192, 168, 1, 2), Ipv4Addr::new(198, 51, 100, 10));
#[cfg(test)]
pub(crate) const TEST_V6: (Ipv6Addr, Ipv6Addr) = (
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x10),
);

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// An IPv4 header (no options) with the given protocol, total length and fragment field.
    pub fn ipv4(proto: u8, total_len: u16, id: u16, frag_field: u16) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&total_len.to_be_bytes());
        h[4..6].copy_from_slice(&id.to_be_bytes());
        h[6..8].copy_from_slice(&frag_field.to_be_bytes());
        h.extend_from_slice(&TEST_V4.0.octets());
        h.extend_from_slice(&TEST_V4.1.octets());
        h
    }

    /// An IPv6 header with the given next header and payload length.
    pub fn ipv6(next: u8, payload_len: u16) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&payload_len.to_be_bytes());
        h.push(next);
        h.push(57);
        h.extend_from_slice(&TEST_V6.0.octets());
        h.extend_from_slice(&TEST_V6.1.octets());
        h
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn ipv4_basic() {
        let mut p = ipv4(17, 28, 7, 0);
        p.extend_from_slice(&[0; 8]);
        let ip = parse(Some(4), &p, 28).unwrap();
        assert_eq!(ip.proto, 17);
        assert_eq!(ip.l4.len(), 8);
        assert_eq!(ip.l4_len, 8);
        assert_eq!(ip.header.ttl, 64);
        assert_eq!(ip.header.ip_id, 7);
        assert_eq!(ip.fragmentation, Fragmentation::Whole);
    }

    #[test]
    fn ipv4_options_are_skipped() {
        let mut p = ipv4(6, 44, 1, 0);
        p[0] = 0x46; // IHL 6: 4 bytes of options.
        p.extend_from_slice(&[1, 1, 1, 0]);
        p.extend_from_slice(&[0xaa; 20]);
        let ip = parse(None, &p, 44).unwrap();
        assert_eq!(ip.l4.len(), 20);
        assert_eq!(ip.l4[0], 0xaa);
    }

    #[test]
    fn ipv4_snaplen_cut_keeps_stated_length() {
        let mut p = ipv4(6, 1500, 1, 0);
        p.extend_from_slice(&[0; 40]);
        let ip = parse(None, &p, 1500).unwrap();
        assert_eq!(ip.header.total_len, 1500);
        assert_eq!(ip.l4_len, 1480);
        assert_eq!(ip.l4.len(), 40);
    }

    #[test]
    fn ipv4_zero_length_uses_wire_length() {
        let mut p = ipv4(6, 0, 1, 0);
        p.extend_from_slice(&[0; 20]);
        let ip = parse(None, &p, 9000).unwrap();
        assert_eq!(ip.header.total_len, 9000);
    }

    #[test]
    fn ipv4_truncated() {
        let p = ipv4(6, 40, 1, 0);
        assert_eq!(parse(None, &p[..19], 40).unwrap_err(), SkipReason::IpTruncated);
        assert_eq!(parse(None, &[], 0).unwrap_err(), SkipReason::IpTruncated);
        // IHL says 60 bytes but only 20 were captured.
        let mut p = ipv4(6, 100, 1, 0);
        p[0] = 0x4f;
        assert_eq!(parse(None, &p, 100).unwrap_err(), SkipReason::IpTruncated);
    }

    #[test]
    fn ipv4_impossible_len() {
        let mut p = ipv4(6, 40, 1, 0);
        p[0] = 0x44; // IHL 4 = 16 bytes < 20.
        assert_eq!(parse(None, &p, 40).unwrap_err(), SkipReason::IpBadLength);
        let p = ipv4(6, 12, 1, 0); // total length below header length.
        assert_eq!(parse(None, &p, 40).unwrap_err(), SkipReason::IpBadLength);
    }

    #[test]
    fn version_mismatch() {
        let p = ipv4(6, 20, 1, 0);
        assert_eq!(parse(Some(6), &p, 20).unwrap_err(), SkipReason::IpBadVersion);
        assert_eq!(parse(None, &[0x55; 20], 20).unwrap_err(), SkipReason::IpBadVersion);
    }

    #[test]
    fn ipv4_fragments() {
        let first = ipv4(17, 28, 9, 0x2000);
        let ip = parse(None, &first, 28).unwrap();
        assert_eq!(ip.fragmentation, Fragmentation::First { id: 9 });
        let later = ipv4(17, 28, 9, 0x0003);
        let ip = parse(None, &later, 28).unwrap();
        assert_eq!(ip.fragmentation, Fragmentation::Later { id: 9 });
        assert!(ip.header.fragment);
    }

    #[test]
    fn ipv6_with_extension_headers() {
        // Hop-by-hop (8 bytes) then destination options (16 bytes) then UDP.
        let mut p = ipv6(0, 8 + 16 + 8);
        p.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x11; 8]);
        let ip = parse(Some(6), &p, 72).unwrap();
        assert_eq!(ip.proto, 17);
        assert_eq!(ip.l4, &[0x11; 8]);
        assert_eq!(ip.l4_len, 8);
        assert_eq!(ip.header.ttl, 57);
    }

    #[test]
    fn ipv6_fragment_header() {
        let mut p = ipv6(44, 16);
        p.extend_from_slice(&[17, 0, 0x00, 0x01, 0, 0, 0, 42]); // offset 0, MF, id 42
        p.extend_from_slice(&[0; 8]);
        let ip = parse(None, &p, 56).unwrap();
        assert_eq!(ip.fragmentation, Fragmentation::First { id: 42 });
        assert_eq!(ip.proto, 17);
        let mut p = ipv6(44, 16);
        p.extend_from_slice(&[17, 0, 0x00, 0x10, 0, 0, 0, 42]); // offset 2
        p.extend_from_slice(&[0; 8]);
        let ip = parse(None, &p, 56).unwrap();
        assert_eq!(ip.fragmentation, Fragmentation::Later { id: 42 });
    }

    #[test]
    fn ipv6_truncated() {
        let p = ipv6(17, 8);
        assert_eq!(parse(None, &p[..39], 48).unwrap_err(), SkipReason::IpTruncated);
        // Extension header announced but cut off.
        let mut p = ipv6(0, 8);
        p.push(17);
        assert_eq!(parse(None, &p, 48).unwrap_err(), SkipReason::Ipv6ExtTruncated);
    }

    #[test]
    fn ipv6_impossible_len() {
        // A hop-by-hop header claiming 2048 bytes inside an 8-byte payload.
        let mut p = ipv6(0, 8);
        p.extend_from_slice(&[17, 255, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse(None, &p, 48).unwrap_err(), SkipReason::IpBadLength);
        // An endless chain of empty hop-by-hop headers.
        let mut p = ipv6(0, 80);
        for _ in 0..10 {
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        }
        assert_eq!(parse(None, &p, 120).unwrap_err(), SkipReason::Ipv6ExtTruncated);
    }

    #[test]
    fn fragment_cache_remembers_ports() {
        let p = ipv4(17, 28, 5, 0x2000);
        let ip = parse(None, &p, 28).unwrap();
        let mut cache = FragmentCache::default();
        assert_eq!(cache.ports_of(&ip.header, 17, 5), None);
        cache.remember(&ip.header, 17, 5, (1000, 53));
        assert_eq!(cache.ports_of(&ip.header, 17, 5), Some((1000, 53)));
        assert_eq!(cache.ports_of(&ip.header, 6, 5), None);
        // Overwritten after the cache wraps.
        for id in 100..100 + FRAGMENT_CACHE_SIZE as u32 {
            cache.remember(&ip.header, 17, id, (1, 2));
        }
        assert_eq!(cache.ports_of(&ip.header, 17, 5), None);
    }
}
