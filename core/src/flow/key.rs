//! Flow keys: small `Copy` values with the direction normalised, so both directions of a
//! conversation find the same entry, and the rules that decide which side is the client.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::decode::{AddrWords, IPPROTO_TCP, LinkType};

/// Transport protocols that make flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// An IP address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn new(addr: IpAddr, port: u16) -> Self {
        Endpoint { addr, port }
    }
}

/// `192.0.2.1:443` or `[2001:db8::1]:443`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Which way a packet travels relative to the flow's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

impl Direction {
    /// Both directions, up first.
    pub const BOTH: [Direction; 2] = [Direction::Up, Direction::Down];

    pub fn reverse(self) -> Direction {
        match self {
            Direction::Up => Direction::Down,
            Direction::Down => Direction::Up,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// One value per direction of a flow, indexed by [`Direction`]: `up` travels client to server,
/// `down` server to client. The same size as a two-element array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerDir<T> {
    pub up: T,
    pub down: T,
}

impl<T> PerDir<T> {
    pub const fn new(up: T, down: T) -> Self {
        PerDir { up, down }
    }

    /// Up, then down.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.up, &self.down].into_iter()
    }

    /// The value of `dir` and that of the other direction, both mutable.
    pub fn this_and_other_mut(&mut self, dir: Direction) -> (&mut T, &mut T) {
        match dir {
            Direction::Up => (&mut self.up, &mut self.down),
            Direction::Down => (&mut self.down, &mut self.up),
        }
    }
}

impl<T> std::ops::Index<Direction> for PerDir<T> {
    type Output = T;

    fn index(&self, dir: Direction) -> &T {
        match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }
}

impl<T> std::ops::IndexMut<Direction> for PerDir<T> {
    fn index_mut(&mut self, dir: Direction) -> &mut T {
        match dir {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }
}

/// A direction-free flow key: the two endpoints in a fixed order. Addresses are kept as
/// 128-bit numbers split in two words (IPv4 in the low 32 bits, the family in `kind`), so that
/// comparing and hashing a key, once per packet, is a few word operations, and a key with its
/// index entry fits in 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    addrs: [AddrWords; 2],
    ports: [u16; 2],
    /// Bit 0: UDP (else TCP); bit 1: IPv6.
    kind: u8,
}

const KIND_UDP: u8 = 1;
const KIND_V6: u8 = 2;

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether `src` is the key's first endpoint.
    pub fn oriented(proto: Proto, src: Endpoint, dst: Endpoint) -> (Self, bool) {
        let words = |e: Endpoint| (AddrWords::from_ip(e.addr), e.port);
        FlowKey::from_words(proto, src.addr.is_ipv6(), words(src), words(dst))
    }

    /// As [`FlowKey::oriented`], from the address words a decoded packet carries.
    pub fn from_words(
        proto: Proto,
        v6: bool,
        src: (AddrWords, u16),
        dst: (AddrWords, u16),
    ) -> (Self, bool) {
        let kind = u8::from(proto == Proto::Udp) * KIND_UDP + u8::from(v6) * KIND_V6;
        if src <= dst {
            (FlowKey { addrs: [src.0, dst.0], ports: [src.1, dst.1], kind }, true)
        } else {
            (FlowKey { addrs: [dst.0, src.0], ports: [dst.1, src.1], kind }, false)
        }
    }

    pub fn proto(&self) -> Proto {
        if self.kind & KIND_UDP != 0 { Proto::Udp } else { Proto::Tcp }
    }

    /// The endpoints in key order.
    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        let addr = |words: AddrWords| words.to_ip(self.kind & KIND_V6 != 0);
        (
            Endpoint::new(addr(self.addrs[0]), self.ports[0]),
            Endpoint::new(addr(self.addrs[1]), self.ports[1]),
        )
    }

    /// Which of `shards` workers measures this flow (`analyze -j`): a fixed hash of the key,
    /// the same from either direction, so both directions of a flow land on one worker in
    /// every run, spread evenly over the workers (the two endpoints' words added, then
    /// MurmurHash3's 64-bit finaliser; the range reduced by a multiplication, not a division).
    #[inline]
    pub fn shard(&self, shards: usize) -> usize {
        let [a, b] = self.addrs;
        let ends = endpoint_word(a, self.ports[0]).wrapping_add(endpoint_word(b, self.ports[1]));
        shard_of(ends, self.kind, shards)
    }

    /// [`FlowKey::shard`] of a TCP packet in an untagged Ethernet frame, IPv4 without
    /// fragmentation or IPv6 without extension headers: most packets, read at fixed offsets
    /// without decoding them or building their key (every worker of `analyze -j` reads it
    /// from every packet to find the packet's owner, and decodes only its own). Anything
    /// else (`None`) is to be decoded in full. A frame may have a shard here and still not
    /// decode as TCP. (Not inlined: it is compiled for speed with this crate, not for size
    /// with its caller.)
    #[inline(never)]
    pub fn plain_tcp_shard(link: LinkType, frame: &[u8], shards: usize) -> Option<usize> {
        const ETHERNET: usize = 14;
        if link != LinkType::Ethernet {
            return None;
        }
        // Ethernet and an IPv4 header without options: every test below reads within it.
        let head = frame.first_chunk::<{ ETHERNET + 20 }>()?;
        let be32 =
            |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        // The EtherType and the IP version, in one word.
        const IPV4: u32 = 0x0800 << 4 | 4;
        const IPV6: u32 = 0x86dd << 4 | 6;
        match be32(12) >> 12 {
            IPV4 => {
                // No fragment (more-fragments flag and offset clear), any TTL, protocol TCP.
                if be32(20) & 0x3fff_00ff != u32::from(IPPROTO_TCP) {
                    return None;
                }
                let tcp = ETHERNET + usize::from(head[14] & 0x0f) * 4;
                let ports = frame.get(tcp..tcp + 4)?;
                let port = |at: usize| u64::from(u16::from_be_bytes([ports[at], ports[at + 1]]));
                let src = u64::from(be32(26)) ^ port(0) << 48;
                let dst = u64::from(be32(30)) ^ port(2) << 48;
                Some(shard_of(src.wrapping_add(dst), 0, shards))
            }
            IPV6 => {
                let ip = frame.get(ETHERNET..ETHERNET + 44)?;
                if ip[6] != IPPROTO_TCP {
                    return None;
                }
                let word = |at: usize| {
                    let mut w = [0; 8];
                    w.copy_from_slice(&ip[at..at + 8]);
                    u64::from_be_bytes(w)
                };
                let port = |at: usize| u16::from_be_bytes([ip[at], ip[at + 1]]);
                let addr = |at: usize| AddrWords([word(at), word(at + 8)]);
                let src = endpoint_word(addr(8), port(40));
                let ends = src.wrapping_add(endpoint_word(addr(24), port(42)));
                Some(shard_of(ends, KIND_V6, shards))
            }
            _ => None,
        }
    }
}

/// One endpoint of a flow as a word, for [`FlowKey::shard`] (added to the other's: the sum
/// does not depend on the direction).
#[inline(always)]
fn endpoint_word(AddrWords([hi, lo]): AddrWords, port: u16) -> u64 {
    lo ^ hi.rotate_left(32) ^ u64::from(port) << 48
}

#[inline(always)]
fn shard_of(ends: u64, kind: u8, shards: usize) -> usize {
    let mut h = ends ^ u64::from(kind) << 40;
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    ((u128::from(h) * shards as u128) >> 64) as usize
}

impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        for AddrWords([hi, lo]) in self.addrs {
            state.write_u64(hi);
            state.write_u64(lo);
        }
        state.write_u64(
            u64::from(self.ports[0]) << 32 | u64::from(self.ports[1]) << 8 | u64::from(self.kind),
        );
    }
}

/// How a flow's client was decided, best evidence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientBy {
    /// The client sent the SYN (or the server the SYN/ACK).
    Handshake,
    /// The server's port is a well-known or service port and the client's is not.
    Port,
    /// The client has a site-local address and the server a global one (a router's LAN side
    /// opens the conversations it takes part in).
    Address,
    /// The client sent the first packet seen.
    FirstPacket,
}

impl ClientBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientBy::Handshake => "handshake",
            ClientBy::Port => "port",
            ClientBy::Address => "address",
            ClientBy::FirstPacket => "first_packet",
        }
    }
}

/// Ports below this are system ports (RFC 6335) and taken as servers.
const SYSTEM_PORTS: u16 = 1024;

/// Decide which side of a new flow is the client, from its first packet: the SYN's sender;
/// else the side whose port is not a system or service port (`is_service_port`, from the
/// catalogue) when the other's is; else the site-local side talking to a global address; else
/// the sender of the first packet. Returns whether the packet's source is the client.
pub fn source_is_client(
    src: Endpoint,
    dst: Endpoint,
    syn: bool,
    synack: bool,
    is_service_port: impl Fn(u16) -> bool,
) -> (bool, ClientBy) {
    if syn {
        return (!synack, ClientBy::Handshake);
    }
    let server_like = |p: u16| p < SYSTEM_PORTS || is_service_port(p);
    match (server_like(src.port), server_like(dst.port)) {
        (true, false) => return (false, ClientBy::Port),
        (false, true) => return (true, ClientBy::Port),
        _ => {}
    }
    match (is_local_address(src.addr), is_local_address(dst.addr)) {
        (true, false) => (true, ClientBy::Address),
        (false, true) => (false, ClientBy::Address),
        _ => (true, ClientBy::FirstPacket),
    }
}

/// Multicast, broadcast and unspecified addresses: not one peer of a conversation.
pub fn is_group_address(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.is_unspecified(),
        IpAddr::V6(a) => a.is_multicast() || a.is_unspecified(),
    }
}

/// Addresses that do not leave the site: private, shared (CGN, RFC 6598), loopback,
/// link-local, unique local.
pub fn is_local_address(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            let s = a.segments()[0];
            a.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Both directions of a flow go to one worker; many flows spread over all workers, each
    /// within 10 % of its fair share.
    #[test]
    fn shards_are_direction_free_and_spread() {
        const FLOWS: u16 = 12_000;
        for shards in [1, 2, 3, 7] {
            let mut counts = vec![0u32; shards];
            for port in 0..FLOWS {
                let (client, server) = (ep(2, 30_000 + port), ep(9, 443));
                let proto = if port % 2 == 0 { Proto::Tcp } else { Proto::Udp };
                let up = FlowKey::oriented(proto, client, server).0.shard(shards);
                let down = FlowKey::oriented(proto, server, client).0.shard(shards);
                assert_eq!(up, down, "port {port}");
                counts[up] += 1;
            }
            let fair = u32::from(FLOWS) / shards as u32;
            assert!(counts.iter().all(|&n| n.abs_diff(fair) * 10 <= fair), "{shards}: {counts:?}");
        }
        let v6 = |last: u16| {
            Endpoint::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)), 443)
        };
        let hits: std::collections::HashSet<usize> =
            (0..64).map(|n| FlowKey::oriented(Proto::Tcp, v6(n), v6(1000)).0.shard(4)).collect();
        assert_eq!(hits.len(), 4, "addresses alone spread flows too");
    }

    /// The shard read from a plain TCP frame is its key's, in both directions; other frames
    /// have none.
    #[test]
    fn plain_tcp_frames_give_their_keys_shard() {
        let frame = |ethertype: [u8; 2], ip: Vec<u8>| {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&ethertype);
            f.extend(ip);
            f
        };
        let v4 = |src: [u8; 4], dst: [u8; 4], proto: u8, frag: u8, ports: (u16, u16)| {
            let mut ip = vec![0x45, 0, 0, 40, 0, 0, frag, 0, 64, proto, 0, 0];
            ip.extend_from_slice(&src);
            ip.extend_from_slice(&dst);
            ip.extend_from_slice(&ports.0.to_be_bytes());
            ip.extend_from_slice(&ports.1.to_be_bytes());
            ip.extend_from_slice(&[0; 16]);
            frame([0x08, 0x00], ip)
        };
        let v6 = |src: u16, dst: u16, next: u8, ports: (u16, u16)| {
            let mut ip = vec![0x60, 0, 0, 0, 0, 20, next, 64];
            for last in [src, dst] {
                ip.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                ip.extend_from_slice(&[0; 10]);
                ip.extend_from_slice(&last.to_be_bytes());
            }
            ip.extend_from_slice(&ports.0.to_be_bytes());
            ip.extend_from_slice(&ports.1.to_be_bytes());
            ip.extend_from_slice(&[0; 16]);
            frame([0x86, 0xdd], ip)
        };
        let six = |last: u16, port: u16| {
            Endpoint::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)), port)
        };
        let shard = |f: &[u8], n| FlowKey::plain_tcp_shard(LinkType::Ethernet, f, n);
        for shards in [1, 2, 3, 7] {
            for port in 40_000..40_050 {
                let key = FlowKey::oriented(Proto::Tcp, ep(2, port), ep(9, 443)).0.shard(shards);
                let up = v4([10, 0, 0, 2], [10, 0, 0, 9], IPPROTO_TCP, 0, (port, 443));
                let down = v4([10, 0, 0, 9], [10, 0, 0, 2], IPPROTO_TCP, 0x40, (443, port));
                assert_eq!((shard(&up, shards), shard(&down, shards)), (Some(key), Some(key)));
                let key = FlowKey::oriented(Proto::Tcp, six(7, port), six(1, 443)).0.shard(shards);
                let up = v6(7, 1, IPPROTO_TCP, (port, 443));
                let down = v6(1, 7, IPPROTO_TCP, (443, port));
                assert_eq!((shard(&up, shards), shard(&down, shards)), (Some(key), Some(key)));
            }
        }
        let tcp = v4([10, 0, 0, 2], [10, 0, 0, 9], IPPROTO_TCP, 0, (40_000, 443));
        let fragment = v4([10, 0, 0, 2], [10, 0, 0, 9], IPPROTO_TCP, 0x20, (40_000, 443));
        let udp = v4([10, 0, 0, 2], [10, 0, 0, 9], 17, 0, (40_000, 443));
        let extension = v6(7, 1, 0, (40_000, 443));
        for other in [&fragment, &udp, &extension, &tcp[..14 + 21], &tcp[..13]] {
            assert_eq!(shard(other, 2), None, "{other:?}");
        }
        assert_eq!(FlowKey::plain_tcp_shard(LinkType::RawIp, &tcp[14..], 2), None);
    }

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
    }

    #[test]
    fn per_dir_is_indexed_by_direction() {
        let mut pair = PerDir::new(1u32, 2);
        assert_eq!((pair[Direction::Up], pair[Direction::Down]), (1, 2));
        pair[Direction::Down] += 10;
        let (this, other) = pair.this_and_other_mut(Direction::Down);
        (*this, *other) = (*this + 1, *other + 1);
        assert_eq!(pair, PerDir { up: 2, down: 13 });
        assert_eq!(pair.iter().copied().collect::<Vec<_>>(), [2, 13]);
        assert_eq!(std::mem::size_of::<PerDir<u64>>(), std::mem::size_of::<[u64; 2]>());
    }

    #[test]
    fn key_is_direction_free() {
        let a = ep(1, 40000);
        let b = ep(2, 443);
        let (k, a_first) = FlowKey::oriented(Proto::Tcp, a, b);
        assert_eq!((k, !a_first), FlowKey::oriented(Proto::Tcp, b, a));
        assert_ne!(k, FlowKey::oriented(Proto::Udp, a, b).0);
        assert_eq!((k.proto(), k.endpoints()), (Proto::Tcp, (a, b)));
        // An IPv4 address and the IPv6 address with the same low bits are different keys.
        let v6 = |last: u16, port| {
            Endpoint::new(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0x0a00, last)), port)
        };
        let k6 = FlowKey::oriented(Proto::Tcp, v6(1, 40000), v6(2, 443)).0;
        assert_ne!(k, k6);
        assert_eq!(k6.endpoints(), (v6(1, 40000), v6(2, 443)));
    }

    #[test]
    fn endpoint_display() {
        assert_eq!(ep(1, 80).to_string(), "10.0.0.1:80");
        let v6 = Endpoint::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 53);
        assert_eq!(v6.to_string(), "[::1]:53");
    }

    #[test]
    fn client_rules() {
        let none = |_| false;
        let (lan, wan) =
            (|p| ep(2, p), |p| Endpoint::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), p));
        assert_eq!(
            source_is_client(lan(40000), wan(443), true, false, none),
            (true, ClientBy::Handshake)
        );
        assert_eq!(
            source_is_client(wan(443), lan(40000), true, true, none),
            (false, ClientBy::Handshake)
        );
        assert_eq!(
            source_is_client(wan(443), lan(40000), false, false, none),
            (false, ClientBy::Port)
        );
        let discord = |p| p == 50001;
        assert_eq!(
            source_is_client(wan(50001), wan(54935), false, false, discord),
            (false, ClientBy::Port)
        );
        assert_eq!(
            source_is_client(wan(32704), lan(56328), false, false, none),
            (false, ClientBy::Address)
        );
        assert_eq!(
            source_is_client(wan(50001), wan(54935), false, false, none),
            (true, ClientBy::FirstPacket)
        );
        assert_eq!(
            source_is_client(lan(123), ep(9, 123), false, false, none),
            (true, ClientBy::FirstPacket)
        );
    }

    #[test]
    fn address_kinds() {
        let local = |s: &str| is_local_address(s.parse().unwrap());
        assert!(
            local("192.168.1.1")
                && local("10.1.2.3")
                && local("100.64.0.1")
                && local("fe80::1")
                && local("fd00::1")
        );
        assert!(!local("203.0.113.1") && !local("100.128.0.1") && !local("2001:db8::1"));
        assert!(
            is_group_address("224.0.0.251".parse().unwrap())
                && is_group_address("ff02::fb".parse().unwrap())
        );
    }
}
