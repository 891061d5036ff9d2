//! Flow keys: small `Copy` values with the direction normalised, so both directions of a
//! conversation find the same entry, and the rules that decide which side is the client.

use std::fmt;
use std::net::IpAddr;

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
    pub fn index(self) -> usize {
        self as usize
    }

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

/// A direction-free flow key: the two endpoints in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub proto: Proto,
    lo: Endpoint,
    hi: Endpoint,
}

impl FlowKey {
    pub fn new(proto: Proto, a: Endpoint, b: Endpoint) -> Self {
        if a <= b { FlowKey { proto, lo: a, hi: b } } else { FlowKey { proto, lo: b, hi: a } }
    }

    /// The endpoints in key order.
    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        (self.lo, self.hi)
    }
}

/// How a flow's client was decided, best evidence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientBy {
    /// The client sent the SYN (or the server the SYN/ACK).
    Handshake,
    /// The server's port is a well-known or service port and the client's is not.
    Port,
    /// The client sent the first packet seen.
    FirstPacket,
}

impl ClientBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientBy::Handshake => "handshake",
            ClientBy::Port => "port",
            ClientBy::FirstPacket => "first_packet",
        }
    }
}

/// Ports below this are system ports (RFC 6335) and taken as servers.
const SYSTEM_PORTS: u16 = 1024;

/// Decide which side of a new flow is the client, from its first packet. `syn`/`synack` are
/// the TCP flags of that packet; `is_service_port` names ports that servers listen on (the
/// catalogue's). Returns whether the packet's source is the client.
pub fn source_is_client(
    src_port: u16,
    dst_port: u16,
    syn: bool,
    synack: bool,
    is_service_port: impl Fn(u16) -> bool,
) -> (bool, ClientBy) {
    if syn {
        return (!synack, ClientBy::Handshake);
    }
    let server_like = |p: u16| p < SYSTEM_PORTS || is_service_port(p);
    match (server_like(src_port), server_like(dst_port)) {
        (true, false) => (false, ClientBy::Port),
        (false, true) => (true, ClientBy::Port),
        // Both system ports (DNS between servers, NTP 123↔123) or neither: the lower port
        // listens when exactly one is a system port was handled above; else first packet.
        _ => (true, ClientBy::FirstPacket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
    }

    #[test]
    fn key_is_direction_free() {
        let a = ep(1, 40000);
        let b = ep(2, 443);
        assert_eq!(FlowKey::new(Proto::Tcp, a, b), FlowKey::new(Proto::Tcp, b, a));
        assert_ne!(FlowKey::new(Proto::Tcp, a, b), FlowKey::new(Proto::Udp, a, b));
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
        assert_eq!(source_is_client(40000, 443, true, false, none), (true, ClientBy::Handshake));
        assert_eq!(source_is_client(443, 40000, true, true, none), (false, ClientBy::Handshake));
        assert_eq!(source_is_client(443, 40000, false, false, none), (false, ClientBy::Port));
        assert_eq!(source_is_client(50001, 54935, false, false, |p| p == 50001), (false, ClientBy::Port));
        assert_eq!(source_is_client(50001, 54935, false, false, none), (true, ClientBy::FirstPacket));
        assert_eq!(source_is_client(123, 123, false, false, none), (true, ClientBy::FirstPacket));
    }
}
