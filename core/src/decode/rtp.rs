//! RTP fixed header view (RFC 3550 §5.1), found in UDP payloads by the demultiplexing rule of
//! RFC 7983 (first byte 128–191) and RFC 5761 (payload types 72–76 are RTCP). SRTP leaves this
//! header in the clear, so loss and jitter are measurable on encrypted calls.
//!
//! A random encrypted payload passes these checks one time in four; the measure stage only
//! trusts a stream after the sequence validation of RFC 3550 Appendix A.1.

/// The RTP header fields the call measurements use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

const FIXED_HEADER: usize = 12;

impl RtpHeader {
    pub fn parse(payload: &[u8]) -> Option<RtpHeader> {
        let h = payload.get(..FIXED_HEADER)?;
        if h[0] >> 6 != 2 {
            return None;
        }
        let payload_type = h[1] & 0x7f;
        if (72..=76).contains(&payload_type) {
            return None;
        }
        let csrc_count = usize::from(h[0] & 0x0f);
        if payload.len() < FIXED_HEADER + 4 * csrc_count {
            return None;
        }
        Some(RtpHeader {
            payload_type,
            marker: h[1] & 0x80 != 0,
            sequence: u16::from_be_bytes([h[2], h[3]]),
            timestamp: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            ssrc: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        })
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    pub fn packet(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, payload_type];
        p.extend_from_slice(&sequence.to_be_bytes());
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xab; 20]);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header() {
        let p = fixtures::packet(111, 65535, 48000, 0xdeadbeef);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(h.payload_type, 111);
        assert_eq!(h.sequence, 65535);
        assert_eq!(h.timestamp, 48000);
        assert_eq!(h.ssrc, 0xdeadbeef);
        assert!(!h.marker);
    }

    #[test]
    fn rtp_truncated() {
        let p = fixtures::packet(0, 1, 2, 3);
        assert!(RtpHeader::parse(&p[..11]).is_none());
    }

    #[test]
    fn rtp_impossible_len() {
        // 15 CSRCs announced in a 32-byte packet.
        let mut p = fixtures::packet(0, 1, 2, 3);
        p[0] = 0x8f;
        assert!(RtpHeader::parse(&p).is_none());
    }

    #[test]
    fn rtcp_and_other_versions_rejected() {
        let mut p = fixtures::packet(0, 1, 2, 3);
        p[1] = 200; // RTCP sender report: marker bit + 72.
        assert!(RtpHeader::parse(&p).is_none());
        p[1] = 0;
        p[0] = 0x40; // version 1
        assert!(RtpHeader::parse(&p).is_none());
    }
}
