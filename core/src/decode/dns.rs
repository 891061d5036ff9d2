//! DNS response view (RFC 1035 §4), for learning which server addresses belong to which
//! service from the answers the router forwards.
//!
//! Names are read into a fixed 255-byte buffer, lowercased; compression pointers must point
//! backwards and are followed at most [`MAX_POINTERS`] times, so a hostile message can neither
//! loop nor allocate. Record counts are capped at [`MAX_RECORDS`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const HEADER_LEN: usize = 12;
/// Longest presentation name (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;
/// Compression pointers followed while reading one name.
pub const MAX_POINTERS: usize = 16;
/// Questions plus answers read from one message.
pub const MAX_RECORDS: usize = 64;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;

/// A domain name in lowercase dotted form without the trailing dot.
#[derive(Clone)]
pub struct DomainName {
    bytes: [u8; MAX_NAME],
    len: usize,
}

impl Default for DomainName {
    fn default() -> Self {
        DomainName { bytes: [0; MAX_NAME], len: 0 }
    }
}

impl std::fmt::Debug for DomainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl DomainName {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// True when `name` is `domain` or a subdomain of it (`chat.signal.org` is in `signal.org`,
/// `notsignal.org` is not). Both lowercase.
pub fn in_domain(name: &[u8], domain: &[u8]) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name[name.len() - domain.len() - 1] == b'.')
}

/// A DNS response with NOERROR and at least one question.
#[derive(Debug, Clone, Copy)]
pub struct DnsResponse<'a> {
    msg: &'a [u8],
    questions: usize,
    answers: usize,
}

/// One answer record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    pub rtype: u16,
    pub ttl_s: u32,
    pub rdata: &'a [u8],
}

impl Answer<'_> {
    /// The address of an A or AAAA record.
    pub fn address(&self) -> Option<IpAddr> {
        match (self.rtype, self.rdata.len()) {
            (TYPE_A, 4) => {
                let r = self.rdata;
                Some(IpAddr::V4(Ipv4Addr::new(r[0], r[1], r[2], r[3])))
            }
            (TYPE_AAAA, 16) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(self.rdata);
                Some(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            _ => None,
        }
    }
}

impl<'a> DnsResponse<'a> {
    pub fn parse(msg: &'a [u8]) -> Option<Self> {
        let h = msg.get(..HEADER_LEN)?;
        let is_response = h[2] & 0x80 != 0;
        let opcode = (h[2] >> 3) & 0x0f;
        let rcode = h[3] & 0x0f;
        let questions = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let answers = usize::from(u16::from_be_bytes([h[6], h[7]]));
        if !is_response || opcode != 0 || rcode != 0 || questions == 0 {
            return None;
        }
        Some(DnsResponse { msg, questions, answers })
    }

    /// Read the first question's name into `name`.
    pub fn question(&self, name: &mut DomainName) -> Option<()> {
        read_name(self.msg, HEADER_LEN, name).map(|_| ())
    }

    /// The answer records, as far as they were captured and well-formed.
    pub fn answers(&self) -> Answers<'a> {
        let mut offset = Some(HEADER_LEN);
        for _ in 0..self.questions.min(MAX_RECORDS) {
            offset = offset.and_then(|o| skip_name(self.msg, o)).map(|o| o + 4);
        }
        Answers {
            msg: self.msg,
            offset: offset.unwrap_or(usize::MAX),
            left: self.answers.min(MAX_RECORDS),
        }
    }
}

/// Iterator over answer records.
#[derive(Debug, Clone)]
pub struct Answers<'a> {
    msg: &'a [u8],
    offset: usize,
    left: usize,
}

impl<'a> Iterator for Answers<'a> {
    type Item = Answer<'a>;

    fn next(&mut self) -> Option<Answer<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let record = skip_name(self.msg, self.offset).and_then(|at| {
            let fixed = self.msg.get(at..at + 10)?;
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            let rdata = self.msg.get(at + 10..at + 10 + rdlen)?;
            let answer = Answer {
                rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
                ttl_s: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
                rdata,
            };
            Some((answer, at + 10 + rdlen))
        });
        match record {
            Some((answer, next)) => {
                self.offset = next;
                Some(answer)
            }
            None => {
                self.left = 0;
                None
            }
        }
    }
}

/// Offset just past the name starting at `offset` (a pointer ends the name in place).
fn skip_name(msg: &[u8], mut offset: usize) -> Option<usize> {
    for _ in 0..=MAX_NAME / 2 {
        let len = *msg.get(offset)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(offset + 1),
            0x00 => offset += 1 + usize::from(len),
            0xc0 => return Some(offset + 2),
            _ => return None,
        }
    }
    None
}

/// Read a possibly compressed name at `offset` into `out`.
fn read_name(msg: &[u8], mut offset: usize, out: &mut DomainName) -> Option<()> {
    out.len = 0;
    let mut pointers = 0;
    loop {
        let len = *msg.get(offset)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(()),
            0x00 => {
                let label = msg.get(offset + 1..offset + 1 + usize::from(len))?;
                let dot = usize::from(out.len > 0);
                if out.len + dot + label.len() > MAX_NAME {
                    return None;
                }
                if dot == 1 {
                    out.bytes[out.len] = b'.';
                }
                for (i, b) in label.iter().enumerate() {
                    out.bytes[out.len + dot + i] = b.to_ascii_lowercase();
                }
                out.len += dot + label.len();
                offset += 1 + label.len();
            }
            0xc0 => {
                let target = usize::from(u16::from_be_bytes([len, *msg.get(offset + 1)?]) & 0x3fff);
                pointers += 1;
                // Pointers go to earlier data only (RFC 1035 §4.1.4 "prior occurrence").
                if target >= offset || pointers > MAX_POINTERS {
                    return None;
                }
                offset = target;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    /// A response to `name` with the given A addresses, using a compression pointer for the
    /// answer owner names.
    pub fn response(name: &str, addresses: &[[u8; 4]]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1];
        m.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        for a in addresses {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
            m.extend_from_slice(a);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_question_and_answers() {
        let m = fixtures::response("Media.CDN.viber.com", &[[54, 230, 93, 96], [54, 230, 93, 53]]);
        let r = DnsResponse::parse(&m).unwrap();
        let mut name = DomainName::default();
        r.question(&mut name).unwrap();
        assert_eq!(name.as_bytes(), b"media.cdn.viber.com");
        let addrs: Vec<IpAddr> = r.answers().filter_map(|a| a.address()).collect();
        assert_eq!(
            addrs,
            ["54.230.93.96".parse::<IpAddr>().unwrap(), "54.230.93.53".parse().unwrap()]
        );
        assert_eq!(r.answers().next().unwrap().ttl_s, 3600);
    }

    #[test]
    fn domain_suffix_on_label_boundary() {
        assert!(in_domain(b"chat.signal.org", b"signal.org"));
        assert!(in_domain(b"signal.org", b"signal.org"));
        assert!(!in_domain(b"notsignal.org", b"signal.org"));
        assert!(!in_domain(b"org", b"signal.org"));
    }

    #[test]
    fn queries_and_errors_are_not_responses() {
        let mut m = fixtures::response("a.b", &[[1, 2, 3, 4]]);
        m[2] = 0x01; // a query
        assert!(DnsResponse::parse(&m).is_none());
        let mut m = fixtures::response("a.b", &[[1, 2, 3, 4]]);
        m[3] = 0x83; // NXDOMAIN
        assert!(DnsResponse::parse(&m).is_none());
    }

    #[test]
    fn dns_truncated() {
        let m = fixtures::response("whatsapp.net", &[[1, 2, 3, 4]]);
        assert!(DnsResponse::parse(&m[..11]).is_none());
        // Cut in the middle of the answer: the question still reads, no answer is yielded.
        let r = DnsResponse::parse(&m[..m.len() - 2]).unwrap();
        assert_eq!(r.answers().count(), 0);
        let mut name = DomainName::default();
        assert!(r.question(&mut name).is_some());
        let r = DnsResponse::parse(&m[..15]).unwrap();
        assert!(r.question(&mut name).is_none());
    }

    #[test]
    fn dns_impossible_len() {
        let mut m = fixtures::response("whatsapp.net", &[[1, 2, 3, 4]]);
        // Answer rdlength far beyond the message.
        let at = m.len() - 6;
        m[at..at + 2].copy_from_slice(&0xffffu16.to_be_bytes());
        let r = DnsResponse::parse(&m).unwrap();
        assert_eq!(r.answers().count(), 0);
        // Claims 65535 answers: iteration stops at the end of the data.
        let mut m = fixtures::response("whatsapp.net", &[[1, 2, 3, 4]]);
        m[6..8].copy_from_slice(&0xffffu16.to_be_bytes());
        let r = DnsResponse::parse(&m).unwrap();
        assert_eq!(r.answers().count(), 1);
    }

    #[test]
    fn compression_loops_are_refused() {
        // The question name is a pointer to itself.
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        let r = DnsResponse::parse(&m).unwrap();
        let mut name = DomainName::default();
        assert!(r.question(&mut name).is_none());
        // A forward pointer.
        m[13] = 14;
        let r = DnsResponse::parse(&m).unwrap();
        assert!(r.question(&mut name).is_none());
    }

    #[test]
    fn overlong_names_are_refused() {
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.push(0);
        let r = DnsResponse::parse(&m).unwrap();
        let mut name = DomainName::default();
        assert!(r.question(&mut name).is_none());
    }
}
