//! STUN message view (RFC 8489), also as framed on TCP by a 2-byte length (RFC 4571, as
//! Microsoft Teams does).
//!
//! Only messages with the RFC 5389 magic cookie are accepted: classic RFC 3489 STUN has no
//! fixed field and would match random encrypted payloads. The attribute iterator stays inside
//! the captured bytes and ends at the first attribute that does not fit.

use std::net::IpAddr;

const HEADER_LEN: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// The class bits of a STUN message type (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunClass {
    Request,
    Indication,
    Success,
    Error,
}

/// A STUN message header and its attributes, borrowed from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunMessage<'a> {
    pub message_type: u16,
    pub transaction_id: [u8; 12],
    attributes: &'a [u8],
}

/// REALM attribute type (RFC 8489 §14.9).
pub const ATTR_REALM: u16 = 0x0014;
/// USERNAME attribute type (RFC 8489 §14.3); ICE writes `remote_ufrag:local_ufrag` (RFC 8445
/// §7.2.2).
pub const ATTR_USERNAME: u16 = 0x0006;
/// Attributes carrying an address XOR-ed with the cookie (and the transaction id for IPv6):
/// XOR-MAPPED-ADDRESS (RFC 8489 §14.2), XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS (RFC 8656
/// §18.3, §18.5).
pub const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
pub const ATTR_XOR_PEER_ADDRESS: u16 = 0x0012;
pub const ATTR_XOR_RELAYED_ADDRESS: u16 = 0x0016;

impl<'a> StunMessage<'a> {
    /// Parse a STUN message filling a whole UDP payload of `payload_len` bytes on the wire, of
    /// which `captured` were captured.
    pub fn parse(captured: &'a [u8], payload_len: u32) -> Option<Self> {
        let header = captured.get(..HEADER_LEN)?;
        let message_type = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        // The two top bits of every STUN message are zero; the length counts whole
        // 4-byte-aligned attributes and must fill the datagram exactly.
        if message_type & 0xc000 != 0
            || length % 4 != 0
            || HEADER_LEN + length != payload_len as usize
            || header[4..8] != MAGIC_COOKIE
        {
            return None;
        }
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(&header[8..20]);
        let end = captured.len().min(HEADER_LEN + length);
        Some(StunMessage { message_type, transaction_id, attributes: &captured[HEADER_LEN..end] })
    }

    /// Parse a STUN message in a TCP segment framed by a 2-byte length (RFC 4571).
    pub fn parse_framed(captured: &'a [u8], payload_len: u32) -> Option<Self> {
        let frame_len = u16::from_be_bytes([*captured.first()?, *captured.get(1)?]);
        if u32::from(frame_len) + 2 > payload_len {
            return None;
        }
        StunMessage::parse(captured.get(2..)?, u32::from(frame_len))
    }

    pub fn class(&self) -> StunClass {
        match self.message_type & 0x0110 {
            0x0000 => StunClass::Request,
            0x0010 => StunClass::Indication,
            0x0100 => StunClass::Success,
            _ => StunClass::Error,
        }
    }

    /// The attributes as (type, value) pairs.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes { rest: self.attributes }
    }

    /// The REALM attribute's value, if present and captured.
    pub fn realm(&self) -> Option<&'a [u8]> {
        self.attributes().find(|(t, _)| *t == ATTR_REALM).map(|(_, v)| v)
    }

    /// The USERNAME attribute's value, if present and captured.
    pub fn username(&self) -> Option<&'a [u8]> {
        self.attributes().find(|(t, _)| *t == ATTR_USERNAME).map(|(_, v)| v)
    }

    /// The addresses of the XOR-MAPPED-, XOR-PEER- and XOR-RELAYED-ADDRESS attributes that
    /// are well formed, decoded (RFC 8489 §14.2).
    pub fn xor_addresses(&self) -> impl Iterator<Item = (IpAddr, u16)> + '_ {
        self.attributes().filter_map(|(kind, value)| {
            matches!(
                kind,
                ATTR_XOR_MAPPED_ADDRESS | ATTR_XOR_PEER_ADDRESS | ATTR_XOR_RELAYED_ADDRESS
            )
            .then(|| self.xor_address(value))
            .flatten()
        })
    }

    fn xor_address(&self, value: &[u8]) -> Option<(IpAddr, u16)> {
        let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ 0x2112;
        let mut key = [0u8; 16];
        key[..4].copy_from_slice(&MAGIC_COOKIE);
        key[4..].copy_from_slice(&self.transaction_id);
        match (value.get(1), value.len()) {
            (Some(1), 8) => {
                let mut a = [0u8; 4];
                for (i, b) in a.iter_mut().enumerate() {
                    *b = value[4 + i] ^ key[i];
                }
                Some((IpAddr::from(a), port))
            }
            (Some(2), 20) => {
                let mut a = [0u8; 16];
                for (i, b) in a.iter_mut().enumerate() {
                    *b = value[4 + i] ^ key[i];
                }
                Some((IpAddr::from(a), port))
            }
            _ => None,
        }
    }
}

/// Iterator over STUN attributes; stops at the first one that is cut short.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let head = self.rest.get(..4)?;
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some(value) = self.rest.get(4..4 + len) else {
            self.rest = &[];
            return None;
        };
        let padded = 4 + len.div_ceil(4) * 4;
        self.rest = self.rest.get(padded..).unwrap_or(&[]);
        Some((kind, value))
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    /// A STUN message with the cookie, a transaction id of `tid` repeated and the attributes.
    pub fn message(message_type: u16, tid: u8, attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attributes {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = Vec::new();
        m.extend_from_slice(&message_type.to_be_bytes());
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&super::MAGIC_COOKIE);
        m.extend_from_slice(&[tid; 12]);
        m.extend_from_slice(&body);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::message;
    use super::*;

    #[test]
    fn binding_request_with_realm() {
        let m = message(0x0003, 7, &[(0x0019, &[17, 0, 0, 0]), (ATTR_REALM, b"signal.org")]);
        let s = StunMessage::parse(&m, m.len() as u32).unwrap();
        assert_eq!(s.message_type, 0x0003);
        assert_eq!(s.class(), StunClass::Request);
        assert_eq!(s.transaction_id, [7; 12]);
        assert_eq!(s.realm(), Some(&b"signal.org"[..]));
        let kinds: Vec<u16> = s.attributes().map(|(k, _)| k).collect();
        assert_eq!(kinds, [0x0019, ATTR_REALM]);
    }

    #[test]
    fn username_and_xor_addresses() {
        // 192.0.2.1:32853 XOR-ed with the cookie (RFC 5769 §2.2 uses the same address).
        let v4 = [0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43];
        let mut v6 = vec![0x00, 0x02, 0xa1, 0x47];
        let addr: std::net::Ipv6Addr = "2001:db8:1234:5678:11:2233:4455:6677".parse().unwrap();
        let mut key = MAGIC_COOKIE.to_vec();
        key.extend_from_slice(&[9; 12]);
        v6.extend(addr.octets().iter().zip(&key).map(|(a, k)| a ^ k));
        let m = message(
            0x0101,
            9,
            &[
                (ATTR_USERNAME, b"abcd:wxyz"),
                (ATTR_XOR_MAPPED_ADDRESS, &v4),
                (ATTR_XOR_PEER_ADDRESS, &v6),
                (ATTR_XOR_RELAYED_ADDRESS, &v4[..7]),
            ],
        );
        let s = StunMessage::parse(&m, m.len() as u32).unwrap();
        assert_eq!(s.username(), Some(&b"abcd:wxyz"[..]));
        let got: Vec<(IpAddr, u16)> = s.xor_addresses().collect();
        assert_eq!(got, [("192.0.2.1".parse().unwrap(), 32853), (IpAddr::V6(addr), 32853)]);
    }

    #[test]
    fn classes() {
        let class = |t| {
            let m = message(t, 0, &[]);
            StunMessage::parse(&m, 20).unwrap().class()
        };
        assert_eq!(class(0x0001), StunClass::Request);
        assert_eq!(class(0x0011), StunClass::Indication);
        assert_eq!(class(0x0101), StunClass::Success);
        assert_eq!(class(0x0113), StunClass::Error);
    }

    #[test]
    fn framed_on_tcp() {
        let m = message(0x0001, 1, &[(0x8054, &[0x31, 0, 0, 0])]);
        let mut framed = (m.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&m);
        let s = StunMessage::parse_framed(&framed, framed.len() as u32).unwrap();
        assert_eq!(s.attributes().next().unwrap().0, 0x8054);
    }

    #[test]
    fn stun_truncated() {
        let m = message(0x0001, 1, &[(0x4000, &[1; 8])]);
        assert!(StunMessage::parse(&m[..19], m.len() as u32).is_none());
        // Captured only partly: header parses, the cut attribute is not yielded.
        let s = StunMessage::parse(&m[..26], m.len() as u32).unwrap();
        assert_eq!(s.attributes().count(), 0);
        assert!(StunMessage::parse_framed(&[0], 1).is_none());
    }

    #[test]
    fn stun_impossible_len() {
        let mut m = message(0x0001, 1, &[]);
        // Length not a multiple of 4.
        m[3] = 2;
        assert!(StunMessage::parse(&m, 22).is_none());
        // Length disagrees with the datagram.
        m[3] = 4;
        assert!(StunMessage::parse(&m, 20).is_none());
        // An attribute claiming more bytes than the message holds.
        let m = message(0x0001, 1, &[(0x0006, &[1, 2, 3, 4])]);
        let mut bad = m.clone();
        bad[22..24].copy_from_slice(&1000u16.to_be_bytes());
        let s = StunMessage::parse(&bad, bad.len() as u32).unwrap();
        assert_eq!(s.attributes().count(), 0);
        // Framing length beyond the segment.
        let mut framed = vec![0xff, 0xff];
        framed.extend_from_slice(&m);
        assert!(StunMessage::parse_framed(&framed, framed.len() as u32).is_none());
    }

    #[test]
    fn not_stun() {
        // Top bits set (RTP), and no magic cookie (classic STUN or noise).
        let mut m = message(0x0001, 1, &[]);
        m[0] = 0x80;
        assert!(StunMessage::parse(&m, 20).is_none());
        let mut m = message(0x0001, 1, &[]);
        m[4] = 0;
        assert!(StunMessage::parse(&m, 20).is_none());
    }
}
