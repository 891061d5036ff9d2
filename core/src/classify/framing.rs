//! Media framings of services that wrap RTP in a header of their own, recognised on any
//! address (the peer-to-peer legs of a call go to a peer, not to the service).
//!
//! Zoom (as dissected by Princeton's zoom-analysis Wireshark plugin and nDPI's `zoom.c`): a
//! media header whose first byte is its type, RTP at a fixed offset behind it: audio (type
//! 15) at 19, video (16) at 20, or 24 when byte 20 is 2, peer-to-peer screen sharing (30) at
//! 20. Between a client and Zoom's servers (SFU) that header sits behind an 8-byte outer one
//! of type 5 whose byte 7 is the direction (0 towards Zoom, 4 from it). A random payload
//! passes one check about once in a thousand, so a flow is taken to be Zoom's only after
//! [`ZOOM_MIN_PACKETS`] of its packets passed.

use crate::decode::rtp::RtpHeader;

/// Packets of a flow that must show Zoom's media header before the flow is Zoom's.
pub const ZOOM_MIN_PACKETS: u8 = 2;

/// Zoom's outer (SFU) header type; the header is 8 bytes, the direction in byte 7.
const ZOOM_SFU_TYPE: u8 = 5;

/// Whether `payload` carries Zoom's media header with RTP behind it, directly (peer to peer)
/// or behind the SFU header.
pub fn is_zoom_media(payload: &[u8]) -> bool {
    match payload {
        [ZOOM_SFU_TYPE, _, _, _, _, _, _, 0 | 4, inner @ ..] => is_zoom_inner(inner),
        _ => is_zoom_inner(payload),
    }
}

fn is_zoom_inner(p: &[u8]) -> bool {
    let rtp_at = match p.first() {
        Some(15) => 19,
        Some(16) if p.get(20) == Some(&2) => 24,
        Some(16 | 30) => 20,
        _ => return false,
    };
    p.get(rtp_at..).and_then(RtpHeader::parse).is_some()
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::decode::rtp::fixtures::packet as rtp;

    /// A Zoom media packet of `kind` (15 audio, 16 video) carrying RTP, peer to peer.
    pub fn zoom_p2p(kind: u8, sequence: u16) -> Vec<u8> {
        let mut p = vec![kind, 0, 0, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&sequence.to_be_bytes());
        p.extend_from_slice(&(u32::from(sequence) * 960).to_be_bytes());
        let rtp_at = if kind == 15 { 19 } else { 20 };
        p.resize(rtp_at, 0);
        p.extend_from_slice(&rtp(if kind == 15 { 112 } else { 98 }, sequence, 0, 0x5a5a));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::zoom_p2p;
    use super::*;

    #[test]
    fn zoom_peer_to_peer_and_sfu() {
        assert!(is_zoom_media(&zoom_p2p(15, 7)));
        assert!(is_zoom_media(&zoom_p2p(16, 7)));
        let mut sfu = vec![5, 0, 1, 0, 0, 0, 0, 4];
        sfu.extend_from_slice(&zoom_p2p(15, 7));
        assert!(is_zoom_media(&sfu));
        sfu[7] = 1; // no such direction
        assert!(!is_zoom_media(&sfu));
    }

    #[test]
    fn zoom_truncated() {
        let p = zoom_p2p(15, 7);
        for n in 0..31 {
            assert!(!is_zoom_media(&p[..n]), "{n} bytes");
        }
        let mut sfu = vec![5, 0, 1, 0, 0, 0, 0, 0];
        sfu.extend_from_slice(&p);
        for n in 0..39 {
            assert!(!is_zoom_media(&sfu[..n]), "SFU, {n} bytes");
        }
        assert!(is_zoom_media(&sfu[..39]));
    }

    #[test]
    fn not_zoom() {
        let mut p = zoom_p2p(15, 7);
        p[19] = 0x40; // RTP version 1
        assert!(!is_zoom_media(&p));
        let mut p = zoom_p2p(15, 7);
        p[0] = 17;
        assert!(!is_zoom_media(&p));
        // Plain RTP is not Zoom's.
        assert!(!is_zoom_media(&crate::decode::rtp::fixtures::packet(0, 1, 2, 3)));
    }
}
