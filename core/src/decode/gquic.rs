//! Google QUIC (gQUIC) client hellos: the `SNI` tag of the cleartext `CHLO` handshake message
//! that a client's first packet carries in versions `Q0xx` up to Q046 (Chromium's "QUIC Crypto"
//! protocol, before IETF QUIC's TLS handshake; Google's servers still answered it in 2020).
//!
//! Two header forms: the legacy public header (flags, an optional 8-byte connection ID, the
//! version, the packet number: Q025–Q043) and Q046's long header (IETF invariants). After it
//! come a 12-byte message hash, in versions before Q034 a private flags byte, and a STREAM
//! frame of stream 1 whose data starts with `CHLO`: the message is found within a few bytes
//! after the header (frame header forms differ by version), then its tag table is walked.
//!
//! Contract: only the captured bytes are read, every offset is checked, nothing allocates or
//! panics. Later gQUIC versions (Q050 with encrypted Initials, T0xx with TLS) yield nothing.

use super::tls::Reader;

/// Bytes after the header in which the `CHLO` tag is looked for: the hash (12), a private
/// flags byte, and a STREAM frame header (type, stream ID, offset and length: at most 1 + 4 +
/// 8 + 2).
const CHLO_SEARCH_BYTES: usize = 12 + 1 + 15 + 4;

/// The server name of a gQUIC client hello at the start of `datagram`, if the captured part
/// holds it.
pub fn client_hello_sni(datagram: &[u8]) -> Option<&[u8]> {
    let after_header = header_len(datagram)?;
    let window = datagram.get(after_header..)?;
    let window = window.get(..CHLO_SEARCH_BYTES).unwrap_or(window);
    let at = window.windows(4).position(|w| w == b"CHLO")?;
    tag_value(datagram.get(after_header + at..)?, *b"SNI\0")
}

/// Bytes of the public header of a client packet of a gQUIC version, or `None`.
fn header_len(datagram: &[u8]) -> Option<usize> {
    let first = *datagram.first()?;
    if first & 0x80 != 0 {
        // Q046: long header, version, connection ID lengths (DCIL and SCIL nibbles, each 0 or
        // n + 3), the IDs, a packet number of 1-4 bytes.
        let version = datagram.get(1..5)?;
        if !is_gquic_version(version) {
            return None;
        }
        let lengths = *datagram.get(5)?;
        let cid = |nibble: u8| if nibble == 0 { 0 } else { usize::from(nibble) + 3 };
        return Some(6 + cid(lengths >> 4) + cid(lengths & 0x0f) + usize::from(first & 0x03) + 1);
    }
    // Legacy public header: version present (0x01), not a reset (0x02), an 8-byte connection
    // ID if 0x08, packet number length in bits 0x30 (1, 2, 4 or 6 bytes).
    if first & 0x03 != 0x01 {
        return None;
    }
    let cid = if first & 0x08 != 0 { 8 } else { 0 };
    let version = datagram.get(1 + cid..5 + cid)?;
    if !is_gquic_version(version) {
        return None;
    }
    Some(5 + cid + [1, 2, 4, 6][usize::from((first >> 4) & 0x03)])
}

/// `Q0` and two digits, up to Q046 (later versions encrypt their Initials).
fn is_gquic_version(version: &[u8]) -> bool {
    match version {
        [b'Q', b'0', tens, ones] if tens.is_ascii_digit() && ones.is_ascii_digit() => {
            (tens - b'0') * 10 + (ones - b'0') <= 46
        }
        _ => false,
    }
}

/// The value of `tag` in a QUIC Crypto handshake message at the start of `message`: message
/// tag, entry count (little-endian u16), 2 bytes of padding, the entries (tag, end offset of
/// its value as a little-endian u32), then the values back to back.
fn tag_value(message: &[u8], tag: [u8; 4]) -> Option<&[u8]> {
    let mut r = Reader(message);
    r.skip(4)?;
    let count = usize::from(u16::from_le_bytes([r.u8()?, r.u8()?]));
    r.skip(2)?;
    let table = r.take(count.checked_mul(8)?)?;
    let values = r.0;
    let mut start = 0usize;
    for entry in table.chunks_exact(8) {
        let end = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]) as usize;
        if entry[..4] == tag {
            return values.get(start..end).filter(|v| !v.is_empty());
        }
        start = end;
    }
    None
}

#[cfg(test)]
pub(crate) mod fixtures {
    /// A CHLO with PAD, SNI and VER entries.
    fn chlo(host: &str) -> Vec<u8> {
        let mut m = b"CHLO\x03\x00\x00\x00".to_vec();
        let pad = 20u32;
        let sni = pad + host.len() as u32;
        for (tag, end) in [(b"PAD\0", pad), (b"SNI\0", sni), (b"VER\0", sni + 4)] {
            m.extend_from_slice(tag);
            m.extend_from_slice(&end.to_le_bytes());
        }
        m.extend_from_slice(&[0x2d; 20]);
        m.extend_from_slice(host.as_bytes());
        m.extend_from_slice(b"Q043");
        m
    }

    /// Q025's legacy header (flags 0x0d: version, 8-byte connection ID, 1-byte packet number),
    /// the hash, a private flags byte and a STREAM frame with little-endian length.
    pub fn q025(host: &str) -> Vec<u8> {
        let mut p = vec![0x0d];
        p.extend_from_slice(&[0x49; 8]);
        p.extend_from_slice(b"Q025");
        p.push(1);
        p.extend_from_slice(&[0x77; 12]);
        p.extend_from_slice(&[0x00, 0xa0, 0x01, 0x00, 0x04]);
        p.extend_from_slice(&chlo(host));
        p.resize(1350, 0);
        p
    }

    /// Q046's long header (0xc3: 4-byte packet number; DCIL 5 = 8 bytes).
    pub fn q046(host: &str) -> Vec<u8> {
        let mut p = vec![0xc3];
        p.extend_from_slice(b"Q046");
        p.push(0x50);
        p.extend_from_slice(&[0xa3; 8]);
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&[0x74; 12]);
        p.extend_from_slice(&[0xa0, 0x01, 0x04, 0x00]);
        p.extend_from_slice(&chlo(host));
        p.resize(1350, 0);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{q025, q046};
    use super::*;

    #[test]
    fn reads_both_header_forms() {
        assert_eq!(client_hello_sni(&q025("www.google.it")), Some(&b"www.google.it"[..]));
        assert_eq!(client_hello_sni(&q046("www.google.com")), Some(&b"www.google.com"[..]));
    }

    #[test]
    fn gquic_truncated() {
        for packet in [q025("a.example"), q046("a.example")] {
            let end = packet.windows(9).position(|w| w == b"a.example").unwrap() + 9;
            for cut in 0..packet.len() {
                assert_eq!(client_hello_sni(&packet[..cut]).is_some(), cut >= end, "cut {cut}");
            }
        }
    }

    #[test]
    fn gquic_impossible_len_and_other_versions() {
        let mut p = q046("a.example");
        p[1..5].copy_from_slice(b"Q050"); // encrypted Initials
        assert_eq!(client_hello_sni(&p), None);
        let mut p = q025("a.example");
        p[0] |= 0x02; // a public reset
        assert_eq!(client_hello_sni(&p), None);
        let at = q025("a.example").windows(4).position(|w| w == b"CHLO").unwrap();
        let mut p = q025("a.example");
        p[at + 4..at + 6].copy_from_slice(&[0xff, 0xff]); // more entries than bytes
        assert_eq!(client_hello_sni(&p), None);
        let mut p = q025("a.example");
        p[at + 8 + 8 + 4..at + 8 + 8 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(client_hello_sni(&p), None, "a value past the message");
        // Every byte of the header region flipped: no panic.
        for i in 0..80 {
            for bit in 0..8 {
                let mut p = q046("a.example");
                p[i] ^= 1 << bit;
                let _ = client_hello_sni(&p);
            }
        }
    }
}
