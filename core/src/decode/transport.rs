//! TCP, UDP and ICMP/ICMPv6 errors.
//!
//! A transport header whose fixed part is cut by the capture is skipped; TCP options cut by a
//! small snap length are read as far as they were captured and the segment is still measured.

use super::ip::{self, Fragmentation, IpPacket};
use super::{
    AddrWords, FragmentCache, FragmentOf, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
    IcmpError, SkipReason, TcpOptions, TcpSegment, Transport, UdpDatagram,
};

const TCP_MIN_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
const ICMP_HEADER: usize = 8;

#[inline(always)]
pub(crate) fn parse<'a>(
    packet: &IpPacket<'a>,
    fragments: &mut FragmentCache,
) -> Result<Transport<'a>, SkipReason> {
    if let Fragmentation::Later { id } = packet.fragmentation {
        let (src_port, dst_port) = fragments
            .ports_of(&packet.header, packet.proto, id)
            .ok_or(SkipReason::FragmentUnattributed)?;
        return Ok(Transport::Fragment(FragmentOf { proto: packet.proto, src_port, dst_port }));
    }
    let transport = match (packet.proto, packet.v6) {
        (IPPROTO_TCP, _) => Transport::Tcp(tcp(packet.l4, packet.l4_len)?),
        (IPPROTO_UDP, _) => {
            let first_fragment = matches!(packet.fragmentation, Fragmentation::First { .. });
            Transport::Udp(udp(packet.l4, packet.l4_len, first_fragment)?)
        }
        (IPPROTO_ICMP, false) => Transport::IcmpError(icmp_v4(packet.l4)?),
        (IPPROTO_ICMPV6, true) => Transport::IcmpError(icmp_v6(packet.l4)?),
        _ => return Err(SkipReason::OtherIpProto),
    };
    if let Fragmentation::First { id } = packet.fragmentation {
        let ports = match transport {
            Transport::Tcp(t) => Some((t.src_port, t.dst_port)),
            Transport::Udp(u) => Some((u.src_port, u.dst_port)),
            _ => None,
        };
        if let Some(ports) = ports {
            fragments.remember(&packet.header, packet.proto, id, ports);
        }
    }
    Ok(transport)
}

/// TCP (RFC 9293): the fixed header from a 20-byte array, as for IPv4.
#[inline(always)]
fn tcp(l4: &[u8], l4_len: u32) -> Result<TcpSegment<'_>, SkipReason> {
    if (l4_len as usize) < TCP_MIN_HEADER {
        return Err(SkipReason::TcpBadOffset);
    }
    let h: &[u8; TCP_MIN_HEADER] = l4.first_chunk().ok_or(SkipReason::TcpTruncated)?;
    let header_len = usize::from(h[12] >> 4) * 4;
    if header_len < TCP_MIN_HEADER || header_len > l4_len as usize {
        return Err(SkipReason::TcpBadOffset);
    }
    // Options and payload as far as they were captured.
    let options = l4.get(TCP_MIN_HEADER..header_len.min(l4.len())).unwrap_or(&[]);
    Ok(TcpSegment {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
        seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        flags: h[13],
        window: u16::from_be_bytes([h[14], h[15]]),
        options: tcp_options(options),
        payload_len: l4_len - header_len as u32,
        payload: l4.get(header_len..).unwrap_or(&[]),
    })
}

/// RFC 9293 §3.1 option list; stops at the end-of-list option or at the first malformed option.
#[inline(always)]
fn tcp_options(mut bytes: &[u8]) -> TcpOptions {
    let mut options = TcpOptions::default();
    // Fast path for the layout nearly every data segment carries: NOP, NOP, timestamps.
    if let Some(o) = bytes.first_chunk::<12>()
        && bytes.len() == 12
        && o[..4] == [1, 1, 8, 10]
    {
        options.timestamps = Some((
            u32::from_be_bytes([o[4], o[5], o[6], o[7]]),
            u32::from_be_bytes([o[8], o[9], o[10], o[11]]),
        ));
        return options;
    }
    while let Some(&kind) = bytes.first() {
        match kind {
            0 => break,
            1 => {
                bytes = &bytes[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = bytes.get(1) else { break };
        let len = usize::from(len);
        let Some(option) = bytes.get(..len).filter(|_| len >= 2) else {
            break;
        };
        match (kind, len) {
            (2, 4) => options.mss = Some(u16::from_be_bytes([option[2], option[3]])),
            (8, 10) => {
                let tsval = u32::from_be_bytes([option[2], option[3], option[4], option[5]]);
                let tsecr = u32::from_be_bytes([option[6], option[7], option[8], option[9]]);
                options.timestamps = Some((tsval, tsecr));
            }
            (5, 10 | 18 | 26 | 34) => {
                for block in option[2..].chunks_exact(8) {
                    let left = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
                    if options
                        .sack_left
                        .is_none_or(|highest| (left.wrapping_sub(highest) as i32) > 0)
                    {
                        options.sack_left = Some(left);
                    }
                }
            }
            _ => {}
        }
        bytes = &bytes[len..];
    }
    options
}

#[inline(always)]
fn udp(l4: &[u8], l4_len: u32, first_fragment: bool) -> Result<UdpDatagram<'_>, SkipReason> {
    if (l4_len as usize) < UDP_HEADER {
        return Err(SkipReason::UdpBadLength);
    }
    let h: &[u8; UDP_HEADER] = l4.first_chunk().ok_or(SkipReason::UdpTruncated)?;
    let udp_len = match u32::from(u16::from_be_bytes([h[4], h[5]])) {
        // Zero: a jumbogram (RFC 2675) or a GSO capture; the IP length is the truth.
        0 => l4_len,
        n => n,
    };
    // A first fragment carries only part of the datagram, so its UDP length may exceed it.
    if (udp_len as usize) < UDP_HEADER || (udp_len > l4_len && !first_fragment) {
        return Err(SkipReason::UdpBadLength);
    }
    let end = l4.len().min(udp_len as usize);
    Ok(UdpDatagram {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
        payload_len: udp_len - UDP_HEADER as u32,
        payload: l4.get(UDP_HEADER..end).unwrap_or(&[]),
    })
}

/// ICMP errors (RFC 792): destination unreachable, source quench, redirect, time exceeded,
/// parameter problem. The quoted IPv4 header plus 8 bytes name the flow.
fn icmp_v4(l4: &[u8]) -> Result<IcmpError, SkipReason> {
    let header = l4.get(..ICMP_HEADER).ok_or(SkipReason::IcmpQuoteUnusable)?;
    let (icmp_type, code) = (header[0], header[1]);
    if !matches!(icmp_type, 3 | 4 | 5 | 11 | 12) {
        return Err(SkipReason::IcmpInfo);
    }
    let quoted = &l4[ICMP_HEADER..];
    let first = *quoted.first().ok_or(SkipReason::IcmpQuoteUnusable)?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 {
        return Err(SkipReason::IcmpQuoteUnusable);
    }
    let ip = quoted.get(..header_len).ok_or(SkipReason::IcmpQuoteUnusable)?;
    let src = AddrWords::v4([ip[12], ip[13], ip[14], ip[15]]);
    let dst = AddrWords::v4([ip[16], ip[17], ip[18], ip[19]]);
    quoted_flow(false, icmp_type, code, ip[9], src, dst, &quoted[header_len..])
}

/// ICMPv6 errors (RFC 4443): destination unreachable, packet too big, time exceeded,
/// parameter problem. Everything else (echo, neighbour discovery, MLD) is informational.
fn icmp_v6(l4: &[u8]) -> Result<IcmpError, SkipReason> {
    let header = l4.get(..ICMP_HEADER).ok_or(SkipReason::IcmpQuoteUnusable)?;
    let (icmp_type, code) = (header[0], header[1]);
    if !(1..=4).contains(&icmp_type) {
        return Err(SkipReason::IcmpInfo);
    }
    let quoted = &l4[ICMP_HEADER..];
    let ip = quoted.get(..40).ok_or(SkipReason::IcmpQuoteUnusable)?;
    if ip[0] >> 4 != 6 {
        return Err(SkipReason::IcmpQuoteUnusable);
    }
    let addr = |at: usize| {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&ip[at..at + 16]);
        AddrWords::v6(octets)
    };
    let chain = ip::walk_extensions(ip[6], quoted, 40, quoted.len())
        .map_err(|_| SkipReason::IcmpQuoteUnusable)?;
    let rest = quoted.get(chain.offset..).unwrap_or(&[]);
    quoted_flow(true, icmp_type, code, chain.proto, addr(8), addr(24), rest)
}

fn quoted_flow(
    v6: bool,
    icmp_type: u8,
    code: u8,
    proto: u8,
    src: AddrWords,
    dst: AddrWords,
    l4: &[u8],
) -> Result<IcmpError, SkipReason> {
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Err(SkipReason::IcmpQuoteUnusable);
    }
    let ports = l4.get(..4).ok_or(SkipReason::IcmpQuoteUnusable)?;
    Ok(IcmpError {
        v6,
        icmp_type,
        code,
        quoted_proto: proto,
        quoted_src: src,
        quoted_src_port: u16::from_be_bytes([ports[0], ports[1]]),
        quoted_dst: dst,
        quoted_dst_port: u16::from_be_bytes([ports[2], ports[3]]),
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    /// A TCP header with the given ports, flags, sequence numbers and options (padded).
    pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, options: &[u8]) -> Vec<u8> {
        let mut opts = options.to_vec();
        while !opts.len().is_multiple_of(4) {
            opts.push(1);
        }
        let mut h = Vec::new();
        h.extend_from_slice(&sport.to_be_bytes());
        h.extend_from_slice(&dport.to_be_bytes());
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&ack.to_be_bytes());
        h.push((((20 + opts.len()) / 4) as u8) << 4);
        h.push(flags);
        h.extend_from_slice(&1024u16.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        h.extend_from_slice(&opts);
        h
    }

    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&sport.to_be_bytes());
        h.extend_from_slice(&dport.to_be_bytes());
        h.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(payload);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures;
    use super::*;
    use crate::decode::ip::fixtures::{ipv4, ipv6};
    use crate::decode::ip::{TEST_V4, TEST_V6};
    use crate::decode::{LinkType, decode, tcp_flags};
    use crate::time::Timestamp;
    use std::net::IpAddr;

    fn run(frame: &[u8]) -> Result<Transport<'_>, SkipReason> {
        let mut cache = FragmentCache::default();
        decode(LinkType::RawIp, Timestamp::default(), frame, frame.len() as u32, &mut cache)
            .map(|d| d.transport)
    }

    fn v4_packet(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = ipv4(proto, (20 + l4.len()) as u16, 1, 0);
        p.extend_from_slice(l4);
        p
    }

    #[test]
    fn tcp_with_timestamps_and_payload() {
        let ts = [8, 10, 0, 0, 0, 5, 0, 0, 0, 9];
        let mss = [2, 4, 0x05, 0xb4];
        let mut seg =
            fixtures::tcp(40000, 443, 100, 200, tcp_flags::ACK, &[&mss[..], &ts[..]].concat());
        seg.extend_from_slice(b"hello");
        let p = v4_packet(6, &seg);
        let Transport::Tcp(t) = run(&p).unwrap() else { panic!() };
        assert_eq!((t.src_port, t.dst_port, t.seq, t.ack), (40000, 443, 100, 200));
        assert_eq!(t.options.timestamps, Some((5, 9)));
        assert_eq!(t.options.mss, Some(1460));
        assert_eq!(t.payload, b"hello");
        assert_eq!(t.payload_len, 5);
        assert!(t.has(tcp_flags::ACK));
    }

    #[test]
    fn tcp_truncated() {
        let seg = fixtures::tcp(1, 2, 3, 4, tcp_flags::SYN, &[]);
        let mut p = ipv4(6, 40, 1, 0);
        p.extend_from_slice(&seg[..10]);
        assert_eq!(run(&p).unwrap_err(), SkipReason::TcpTruncated);
    }

    #[test]
    fn tcp_options_cut_by_snaplen_still_measured() {
        let ts = [8, 10, 0, 0, 0, 5, 0, 0, 0, 9];
        let seg = fixtures::tcp(1, 2, 3, 4, tcp_flags::ACK, &ts);
        let mut p = ipv4(6, (20 + seg.len() + 100) as u16, 1, 0);
        p.extend_from_slice(&seg[..24]);
        let Transport::Tcp(t) = run(&p).unwrap() else { panic!() };
        assert_eq!(t.options.timestamps, None);
        assert_eq!(t.payload_len, 100);
        assert!(t.payload.is_empty());
    }

    #[test]
    fn tcp_impossible_len() {
        // Data offset 15 words (60 bytes) in a 40-byte IP packet.
        let mut seg = fixtures::tcp(1, 2, 3, 4, 0, &[]);
        seg[12] = 0xf0;
        assert_eq!(run(&v4_packet(6, &seg)).unwrap_err(), SkipReason::TcpBadOffset);
        // Data offset below 5 words.
        seg[12] = 0x40;
        assert_eq!(run(&v4_packet(6, &seg)).unwrap_err(), SkipReason::TcpBadOffset);
        // IP says the segment is 10 bytes long.
        let mut p = ipv4(6, 30, 1, 0);
        p.extend_from_slice(&seg);
        assert_eq!(run(&p).unwrap_err(), SkipReason::TcpBadOffset);
    }

    /// SACK blocks (RFC 2018): the highest left edge of the blocks, after timestamps as Linux
    /// sends them; an option of the wrong length is no SACK.
    #[test]
    fn sack_blocks_give_the_highest_left_edge() {
        let block = |l: u32, r: u32| [l.to_be_bytes(), r.to_be_bytes()].concat();
        let two = [[1, 1, 8, 10].as_slice(), &[0, 0, 0, 5, 0, 0, 0, 9], &[1, 1, 5, 18]]
            .concat()
            .into_iter()
            .chain(block(100, 200))
            .chain(block(300, 400))
            .collect::<Vec<u8>>();
        let options = tcp_options(&two);
        assert_eq!((options.timestamps, options.sack_left), (Some((5, 9)), Some(300)));
        let wrapped = [[5u8, 18].as_slice(), &block(u32::MAX - 10, 2), &block(5, 9)].concat();
        assert_eq!(tcp_options(&wrapped).sack_left, Some(5));
        let one = [[5u8, 10].as_slice(), &block(7, 8)].concat();
        assert_eq!(tcp_options(&one).sack_left, Some(7));
        let odd = [[5u8, 12].as_slice(), &block(7, 8), &[0, 0]].concat();
        assert_eq!(tcp_options(&odd).sack_left, None);
    }

    #[test]
    fn tcp_malformed_options_do_not_loop() {
        // Zero-length option: parsing stops, no panic, no endless loop.
        assert_eq!(tcp_options(&[5, 0, 1, 1]), TcpOptions::default());
        // Option longer than what is left.
        assert_eq!(tcp_options(&[8, 10, 0, 0]), TcpOptions::default());
        assert_eq!(tcp_options(&[1, 1, 1]), TcpOptions::default());
    }

    #[test]
    fn udp_basic() {
        let d = fixtures::udp(5353, 53, b"abc");
        let p = v4_packet(17, &d);
        let Transport::Udp(u) = run(&p).unwrap() else { panic!() };
        assert_eq!((u.src_port, u.dst_port, u.payload_len), (5353, 53, 3));
        assert_eq!(u.payload, b"abc");
    }

    #[test]
    fn udp_truncated() {
        let d = fixtures::udp(1, 2, b"abc");
        let mut p = ipv4(17, 31, 1, 0);
        p.extend_from_slice(&d[..5]);
        assert_eq!(run(&p).unwrap_err(), SkipReason::UdpTruncated);
    }

    #[test]
    fn udp_impossible_len() {
        let mut d = fixtures::udp(1, 2, b"abc");
        d[4..6].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(run(&v4_packet(17, &d)).unwrap_err(), SkipReason::UdpBadLength);
        d[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(run(&v4_packet(17, &d)).unwrap_err(), SkipReason::UdpBadLength);
    }

    #[test]
    fn udp_fragments_are_attributed() {
        let mut cache = FragmentCache::default();
        let mut first = ipv4(17, 28, 77, 0x2000);
        let mut d = fixtures::udp(4000, 3478, &[0; 2000]);
        d.truncate(8);
        first.extend_from_slice(&d);
        let t = decode(LinkType::RawIp, Timestamp::default(), &first, 28, &mut cache).unwrap();
        assert!(matches!(t.transport, Transport::Udp(u) if u.payload_len == 2000));
        let mut later = ipv4(17, 520, 77, 0x0001);
        later.extend_from_slice(&[0; 500]);
        let t = decode(LinkType::RawIp, Timestamp::default(), &later, 520, &mut cache).unwrap();
        assert_eq!(
            t.transport,
            Transport::Fragment(FragmentOf { proto: 17, src_port: 4000, dst_port: 3478 })
        );
        assert_eq!(t.ip.total_len, 520);
        let stray = ipv4(17, 520, 78, 0x0001);
        let err = decode(LinkType::RawIp, Timestamp::default(), &stray, 520, &mut cache);
        assert_eq!(err.unwrap_err(), SkipReason::FragmentUnattributed);
    }

    #[test]
    fn icmp_port_unreachable_quotes_udp_flow() {
        // The quoted packet went from TEST_V4.1 to TEST_V4.0; we re-use the fixture with
        // swapped roles by building the quote by hand.
        let mut quote = ipv4(17, 28, 1, 0);
        quote[12..16].copy_from_slice(&TEST_V4.0.octets());
        quote[16..20].copy_from_slice(&TEST_V4.1.octets());
        quote.extend_from_slice(&fixtures::udp(5000, 3478, &[])[..8]);
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quote);
        let p = v4_packet(1, &icmp);
        let Transport::IcmpError(e) = run(&p).unwrap() else { panic!() };
        assert_eq!((e.icmp_type, e.code, e.quoted_proto), (3, 3, 17));
        assert_eq!(e.quoted_src.to_ip(e.v6), IpAddr::V4(TEST_V4.0));
        assert_eq!((e.quoted_src_port, e.quoted_dst_port), (5000, 3478));
    }

    #[test]
    fn icmp_echo_is_info_and_short_quote_unusable() {
        assert_eq!(
            run(&v4_packet(1, &[8, 0, 0, 0, 0, 0, 0, 0])).unwrap_err(),
            SkipReason::IcmpInfo
        );
        let icmp = [11, 0, 0, 0, 0, 0, 0, 0, 0x45, 0, 0];
        assert_eq!(run(&v4_packet(1, &icmp)).unwrap_err(), SkipReason::IcmpQuoteUnusable);
        assert_eq!(run(&v4_packet(1, &[3, 1, 0])).unwrap_err(), SkipReason::IcmpQuoteUnusable);
    }

    #[test]
    fn icmpv6_time_exceeded_quotes_tcp_flow() {
        let mut quote = ipv6(6, 20);
        quote.extend_from_slice(&fixtures::tcp(40000, 443, 1, 0, tcp_flags::SYN, &[])[..8]);
        let mut icmp = vec![3, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quote);
        let mut p = ipv6(58, icmp.len() as u16);
        p.extend_from_slice(&icmp);
        let Transport::IcmpError(e) = run(&p).unwrap() else { panic!() };
        assert!(e.v6);
        assert_eq!(e.quoted_src.to_ip(e.v6), IpAddr::V6(TEST_V6.0));
        assert_eq!((e.quoted_proto, e.quoted_src_port, e.quoted_dst_port), (6, 40000, 443));
        // Neighbour solicitation is informational.
        let mut p = ipv6(58, 8);
        p.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(run(&p).unwrap_err(), SkipReason::IcmpInfo);
    }

    #[test]
    fn other_protocols_are_counted_not_measured() {
        assert_eq!(run(&v4_packet(47, &[0; 8])).unwrap_err(), SkipReason::OtherIpProto);
        // ICMPv4 inside IPv6 is not a thing.
        let mut p = ipv6(1, 8);
        p.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(run(&p).unwrap_err(), SkipReason::OtherIpProto);
    }
}
