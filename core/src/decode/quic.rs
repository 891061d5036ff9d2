//! QUIC client Initials: the CRYPTO stream (the TLS ClientHello, hence the server name) of the
//! Initial packets a client sends first (RFC 9000 §17.2.2). Initial keys derive from the
//! Destination Connection ID and a salt each version publishes (RFC 9001 §5.2), so anyone on
//! the path can remove their protection; nDPI and Wireshark read them the same way.
//!
//! Versions read: QUIC v1 (RFC 9000/9001), v2 (RFC 9369: its own salt, "quicv2" labels and
//! Initial type bits), drafts 29–32 and drafts 23–28 (their salts; the nDPI corpus holds
//! draft-27 and -28 Initials). Other versions (Google QUIC `Q0xx`/`T0xx`, mvfst's own) yield
//! nothing.
//!
//! Contract:
//! - The AEAD tag is not verified: reading needs no integrity, and a capture may hold only a
//!   prefix of the datagram. Whatever was captured of the first packet in the datagram is
//!   decrypted (AES-128 in GCM's counter mode), up to [`PLAINTEXT_BYTES`].
//! - Frames PADDING, PING, ACK and CRYPTO are walked; any other frame ends the walk. CRYPTO data
//!   lands in a [`CryptoStream`] at its offset, in any order (Chrome shuffles and splits its
//!   CRYPTO frames); the ClientHello is read from the bytes contiguous from offset 0. A
//!   ClientHello split over several Initials is assembled by adding each to the same stream.
//! - Bounded and allocation-free: two fixed buffers, at most [`CRYPTO_RANGES`] ranges; every
//!   length read from the wire is checked; no input panics.

mod crypto;

use crypto::{Aes128, hkdf_expand_label, hkdf_extract};

use super::tls::{Reader, handshake_sni};

/// Bytes of the CRYPTO stream kept, from offset 0: a ClientHello with a post-quantum key share
/// (about 1,900 bytes) fits whole.
pub const CRYPTO_STREAM_BYTES: usize = 4096;
/// CRYPTO frames (ranges of the stream) remembered; later ones are dropped.
pub const CRYPTO_RANGES: usize = 32;
/// Bytes of a packet's payload decrypted: a client Initial fills one datagram (RFC 9000 §14.1).
pub const PLAINTEXT_BYTES: usize = 2048;
/// Connection IDs are at most 20 bytes in the versions read (RFC 9000 §17.2).
const MAX_CID_BYTES: usize = 20;
/// The AEAD tag closing every protected payload (AES-128-GCM, RFC 9001 §5.3).
const TAG_BYTES: usize = 16;

/// A QUIC version whose Initials this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// RFC 9000/9001 (0x00000001).
    V1,
    /// RFC 9369 (0x6b3343cf).
    V2,
    /// draft-ietf-quic-tls-29 to -32 (0xff00001d–0xff000020).
    Draft29,
    /// draft-ietf-quic-tls-23 to -28 (0xff000017–0xff00001c).
    Draft23,
}

impl Version {
    fn from_wire(version: u32) -> Option<Version> {
        match version {
            0x0000_0001 => Some(Version::V1),
            0x6b33_43cf => Some(Version::V2),
            0xff00_001d..=0xff00_0020 => Some(Version::Draft29),
            0xff00_0017..=0xff00_001c => Some(Version::Draft23),
            _ => None,
        }
    }

    /// The initial salt (RFC 9001 §5.2, RFC 9369 §3.3.1, the drafts' §5.2).
    fn salt(self) -> [u8; 20] {
        match self {
            Version::V1 => {
                *b"\x38\x76\x2c\xf7\xf5\x59\x34\xb3\x4d\x17\x9a\xe6\xa4\xc8\x0c\xad\xcc\xbb\x7f\x0a"
            }
            Version::V2 => {
                *b"\x0d\xed\xe3\xde\xf7\x00\xa6\xdb\x81\x93\x81\xbe\x6e\x26\x9d\xcb\xf9\xbd\x2e\xd9"
            }
            Version::Draft29 => {
                *b"\xaf\xbf\xec\x28\x99\x93\xd2\x4c\x9e\x97\x86\xf1\x9c\x61\x11\xe0\x43\x90\xa8\x99"
            }
            Version::Draft23 => {
                *b"\xc3\xee\xf7\x12\xc7\x2e\xbb\x5a\x11\xa7\xd2\x43\x2b\xb4\x63\x65\xbe\xf9\xf5\x02"
            }
        }
    }

    /// The packet-protection labels' prefix (RFC 9369 §3.3.2).
    fn label_prefix(self) -> &'static [u8] {
        if self == Version::V2 { b"quicv2 " } else { b"quic " }
    }

    /// The long header's packet type bits of an Initial (RFC 9369 §3.2).
    fn initial_type(self) -> u8 {
        if self == Version::V2 { 0b01 } else { 0b00 }
    }
}

/// The client's Initial packet protection keys (RFC 9001 §5.2).
struct InitialKeys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

impl InitialKeys {
    #[inline(never)]
    fn client(version: Version, dcid: &[u8]) -> InitialKeys {
        let initial_secret = hkdf_extract(&version.salt(), dcid);
        let secret: [u8; 32] = hkdf_expand_label(&initial_secret, b"", b"client in");
        let prefix = version.label_prefix();
        InitialKeys {
            key: hkdf_expand_label(&secret, prefix, b"key"),
            iv: hkdf_expand_label(&secret, prefix, b"iv"),
            hp: hkdf_expand_label(&secret, prefix, b"hp"),
        }
    }
}

/// The fields of a long-header Initial up to its (protected) packet number.
struct InitialHeader<'a> {
    version: Version,
    dcid: &'a [u8],
    /// Offset of the packet number in the datagram.
    pn_offset: usize,
    /// The Length field: packet number, payload and tag.
    length: usize,
}

impl<'a> InitialHeader<'a> {
    /// RFC 9000 §17.2.2. The fixed bit is not required (RFC 9287 lets it be greased).
    fn parse(datagram: &'a [u8]) -> Option<InitialHeader<'a>> {
        let version = initial_version(datagram)?;
        let mut r = Reader(datagram.get(5..)?);
        let dcid_len = usize::from(r.u8()?);
        let dcid = r.take(dcid_len)?;
        let scid_len = usize::from(r.u8()?);
        if dcid_len > MAX_CID_BYTES || scid_len > MAX_CID_BYTES {
            return None;
        }
        r.skip(scid_len)?;
        let token_len = varint(&mut r)?;
        r.skip(usize::try_from(token_len).ok()?)?;
        let length = usize::try_from(varint(&mut r)?).ok()?;
        Some(InitialHeader { version, dcid, pn_offset: datagram.len() - r.0.len(), length })
    }
}

/// Remove header protection (RFC 9001 §5.4): the packet number and its length in bytes. The
/// sample is the 16 bytes 4 bytes past the packet number's start.
fn unprotect_header(hp: &Aes128, datagram: &[u8], pn_offset: usize) -> Option<(u32, usize)> {
    let sample = datagram.get(pn_offset.checked_add(4)?..pn_offset.checked_add(20)?)?;
    let mut mask = [0u8; 16];
    mask.copy_from_slice(sample);
    hp.encrypt(&mut mask);
    let first = datagram.first()? ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 0b11) + 1;
    let protected = datagram.get(pn_offset..pn_offset + pn_len)?;
    let pn = protected.iter().zip(&mask[1..]).fold(0u32, |pn, (b, m)| pn << 8 | u32::from(b ^ m));
    Some((pn, pn_len))
}

/// Decrypt `ciphertext` into `out` (as much as fits) with AES-128-GCM's counter mode, the tag
/// unchecked: the nonce is the IV XOR the packet number (RFC 9001 §5.3), GCM's J0 the nonce
/// with counter 1, and the payload starts at counter 2 (NIST SP 800-38D §7.1). The packet
/// number is the truncated one: an Initial's number is small, far from any wrap (RFC 9000
/// §A.3 decodes it as is when nothing was received before). Returns the bytes written.
#[inline(never)]
fn decrypt(key: &Aes128, iv: &[u8; 12], pn: u32, ciphertext: &[u8], out: &mut [u8]) -> usize {
    let mut nonce = *iv;
    for (n, p) in nonce[8..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let n = ciphertext.len().min(out.len());
    for (counter, (o, c)) in (2u32..).zip(out[..n].chunks_mut(16).zip(ciphertext[..n].chunks(16))) {
        let mut block = [0u8; 16];
        block[..12].copy_from_slice(&nonce);
        block[12..].copy_from_slice(&counter.to_be_bytes());
        key.encrypt(&mut block);
        for ((o, c), k) in o.iter_mut().zip(c).zip(block) {
            *o = c ^ k;
        }
    }
    n
}

/// A variable-length integer (RFC 9000 §16).
fn varint(r: &mut Reader<'_>) -> Option<u64> {
    let first = r.u8()?;
    let extra = (1usize << (first >> 6)) - 1;
    r.take(extra)?.iter().try_fold(u64::from(first & 0x3f), |v, b| Some(v << 8 | u64::from(*b)))
}

/// Walk a decrypted payload's frames (RFC 9000 §19), adding CRYPTO data to `stream`; stop at
/// the first frame that is not PADDING, PING, ACK or CRYPTO, or where the capture ends.
#[inline(never)]
fn read_frames(plain: &[u8], stream: &mut CryptoStream) -> Option<()> {
    let mut r = Reader(plain);
    while let Some(kind) = r.u8() {
        match kind {
            0x00 | 0x01 => {}
            0x02 | 0x03 => {
                // Largest acknowledged, delay, range count, first range; then the ranges.
                let (_, _, ranges, _) =
                    (varint(&mut r)?, varint(&mut r)?, varint(&mut r)?, varint(&mut r)?);
                // Each range takes at least two bytes: a hostile count ends with the payload.
                for _ in 0..ranges {
                    varint(&mut r)?;
                    varint(&mut r)?;
                }
                if kind == 0x03 {
                    for _ in 0..3 {
                        varint(&mut r)?;
                    }
                }
            }
            0x06 => {
                let offset = varint(&mut r)?;
                let len = usize::try_from(varint(&mut r)?).ok()?;
                // A frame cut by the capture still gives its captured part.
                stream.add(offset, r.0.get(..len).unwrap_or(r.0));
                r.skip(len)?;
            }
            _ => return None,
        }
    }
    Some(())
}

/// The version of the client Initial at the start of `datagram`, if it is one of a version
/// read (a cheap look at the first bytes, before any key is derived).
pub fn initial_version(datagram: &[u8]) -> Option<Version> {
    let first = *datagram.first()?;
    let version = Version::from_wire(u32::from_be_bytes(datagram.get(1..5)?.try_into().ok()?))?;
    (first & 0x80 != 0 && (first >> 4) & 0b11 == version.initial_type()).then_some(version)
}

/// Read one client Initial: if `datagram` (a UDP payload from the client, possibly cut by the
/// capture) starts with an Initial of a version read, add its CRYPTO frames to `stream`.
#[inline(never)]
pub fn read_client_initial(datagram: &[u8], stream: &mut CryptoStream) -> Option<Version> {
    let header = InitialHeader::parse(datagram)?;
    let keys = InitialKeys::client(header.version, header.dcid);
    let (pn, pn_len) = unprotect_header(&Aes128::new(&keys.hp), datagram, header.pn_offset)?;
    let start = header.pn_offset + pn_len;
    let end = header.pn_offset.checked_add(header.length.checked_sub(TAG_BYTES)?)?;
    let ciphertext = datagram.get(start..end.min(datagram.len()))?;
    let mut plain = [0u8; PLAINTEXT_BYTES];
    let n = decrypt(&Aes128::new(&keys.key), &keys.iv, pn, ciphertext, &mut plain);
    // Frames after an unreadable one are lost; what came before still counts.
    let _ = read_frames(&plain[..n], stream);
    Some(header.version)
}

/// A QUIC connection's Initial CRYPTO stream, assembled from frames in any order into a fixed
/// buffer (bytes past [`CRYPTO_STREAM_BYTES`] are dropped).
#[derive(Clone)]
pub struct CryptoStream {
    bytes: [u8; CRYPTO_STREAM_BYTES],
    /// Ranges received, `(start, end)`.
    ranges: [(u16, u16); CRYPTO_RANGES],
    ranges_len: usize,
}

impl Default for CryptoStream {
    fn default() -> Self {
        CryptoStream {
            bytes: [0; CRYPTO_STREAM_BYTES],
            ranges: [(0, 0); CRYPTO_RANGES],
            ranges_len: 0,
        }
    }
}

impl std::fmt::Debug for CryptoStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoStream").field("ranges", &&self.ranges[..self.ranges_len]).finish()
    }
}

impl CryptoStream {
    fn add(&mut self, offset: u64, data: &[u8]) {
        let Ok(start) = usize::try_from(offset) else { return };
        if start >= CRYPTO_STREAM_BYTES || data.is_empty() {
            return;
        }
        let end = start.saturating_add(data.len()).min(CRYPTO_STREAM_BYTES);
        if self.ranges_len == CRYPTO_RANGES {
            self.merge_prefix();
        }
        if self.ranges_len < CRYPTO_RANGES {
            self.bytes[start..end].copy_from_slice(&data[..end - start]);
            self.ranges[self.ranges_len] = (start as u16, end as u16);
            self.ranges_len += 1;
        }
    }

    /// Replace the ranges covering the contiguous prefix by one.
    fn merge_prefix(&mut self) {
        let prefix = self.contiguous().len() as u16;
        let mut kept = 0;
        for i in 0..self.ranges_len {
            if self.ranges[i].1 > prefix {
                self.ranges[kept] = self.ranges[i];
                kept += 1;
            }
        }
        if prefix > 0 && kept < CRYPTO_RANGES {
            self.ranges[kept] = (0, prefix);
            kept += 1;
        }
        self.ranges_len = kept;
    }

    /// The stream's bytes from offset 0 up to the first gap.
    #[inline(never)]
    pub fn contiguous(&self) -> &[u8] {
        let ranges = &self.ranges[..self.ranges_len];
        let mut end = 0u16;
        // Each pass extends the prefix by one range, so at most `ranges.len()` passes.
        while let Some(next) =
            ranges.iter().filter(|(s, e)| *s <= end && *e > end).map(|(_, e)| *e).max()
        {
            end = next;
        }
        &self.bytes[..usize::from(end)]
    }

    /// The server name of the ClientHello at the stream's start, if the bytes received so far
    /// hold it.
    pub fn server_name(&self) -> Option<&[u8]> {
        handshake_sni(self.contiguous())
    }

    /// More Initials could complete the ClientHello: something was received, and the bytes
    /// contiguous from offset 0 are short of the handshake message's stated length and of the
    /// buffer's end.
    pub fn incomplete(&self) -> bool {
        let have = self.contiguous();
        match have {
            [_, a, b, c, ..] => {
                let stated = 4 + (usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c));
                have.len() < stated.min(CRYPTO_STREAM_BYTES)
            }
            _ => self.ranges_len > 0,
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::crypto::Aes128;
    use super::*;

    /// A client Initial of `version` carrying `frames` (a plaintext payload), protected with
    /// the keys of `dcid`; the AEAD tag is left zero (it is not read).
    pub fn client_initial(version: Version, dcid: &[u8], pn: u32, frames: &[u8]) -> Vec<u8> {
        let wire = match version {
            Version::V1 => 1u32,
            Version::V2 => 0x6b33_43cf,
            Version::Draft29 => 0xff00_001d,
            Version::Draft23 => 0xff00_001c,
        };
        let keys = InitialKeys::client(version, dcid);
        let mut packet = vec![0xc3 | version.initial_type() << 4];
        packet.extend_from_slice(&wire.to_be_bytes());
        packet.push(dcid.len() as u8);
        packet.extend_from_slice(dcid);
        packet.extend_from_slice(&[0, 0]); // no source connection ID, no token
        let length = 4 + frames.len() + TAG_BYTES;
        packet.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
        let pn_offset = packet.len();
        packet.extend_from_slice(&pn.to_be_bytes());
        let mut sealed = vec![0u8; frames.len()];
        // Counter mode is its own inverse.
        decrypt(&Aes128::new(&keys.key), &keys.iv, pn, frames, &mut sealed);
        packet.extend_from_slice(&sealed);
        packet.extend_from_slice(&[0; TAG_BYTES]);
        let mut mask: [u8; 16] = packet[pn_offset + 4..pn_offset + 20].try_into().unwrap();
        Aes128::new(&keys.hp).encrypt(&mut mask);
        packet[0] ^= mask[0] & 0x0f;
        for (b, m) in packet[pn_offset..pn_offset + 4].iter_mut().zip(&mask[1..]) {
            *b ^= m;
        }
        packet
    }

    /// A CRYPTO frame with two-byte varints.
    pub fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06];
        f.extend_from_slice(&(0x4000 | offset as u16).to_be_bytes());
        f.extend_from_slice(&(0x4000 | data.len() as u16).to_be_bytes());
        f.extend_from_slice(data);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::crypto::tests::hex;
    use super::fixtures::{client_initial, crypto_frame};
    use super::*;
    use crate::decode::tls::fixtures::client_hello;

    const DCID: &str = "8394c8f03e515708";

    /// RFC 9001 appendix A.2: the client Initial, 1,200 bytes as sent.
    const RFC9001_A2: &str = "
        c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11
        d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399
        1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c
        8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212
        30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5
        457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208
        4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec
        4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3
        485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db
        059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c
        7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8
        9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556
        be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74
        68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a
        c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00
        f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632
        291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964
        25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd
        14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff
        ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198
        e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
        c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73
        203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f
        cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e
        fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade
        a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047
        90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2
        162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4
        40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0
        6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e
        8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0
        be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400
        54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab
        760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9
        f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4
        056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064
        7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
        e221af44860018ab0856972e194cd934";

    /// RFC 9369 appendix A.2: the same Initial in QUIC v2.
    const RFC9369_A2: &str = "
        d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485
        dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04
        9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d
        250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a
        12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500
        cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68
        18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33
        12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3
        d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd
        6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520
        bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045
        636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f
        ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12
        16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5
        4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4
        fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b
        8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7
        14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9
        9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91
        abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd
        80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db
        848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18
        d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15
        c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc
        7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61
        f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710
        10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b
        3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e
        06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce
        8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1
        34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1
        e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd
        5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3
        8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89
        d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53
        6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19
        9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b
        a18b2faa745b6fe189cf772a9f84cbfc";

    /// RFC 9001 A.2 (and RFC 9369 A.2): the unprotected payload, a CRYPTO frame with the
    /// ClientHello for example.com, then 917 bytes of PADDING.
    const A2_PAYLOAD_HEAD: &str = "
        060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
        04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
        616d706c652e636f6dff01000100000a00080006001d00170018001000070005
        04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
        baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
        0d0010000e0403050306030203080408050806002d00020101001c0002400100
        3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
        75300901100f088394c8f03e51570806048000ffff";

    fn sni(datagram: &[u8]) -> Option<Vec<u8>> {
        let mut stream = CryptoStream::default();
        read_client_initial(datagram, &mut stream)?;
        stream.server_name().map(<[u8]>::to_vec)
    }

    /// RFC 9001 A.1 and RFC 9369 A.1: the client's key, IV and header protection key.
    #[test]
    fn initial_keys_match_the_rfcs() {
        let k = InitialKeys::client(Version::V1, &hex(DCID));
        assert_eq!(k.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let k = InitialKeys::client(Version::V2, &hex(DCID));
        assert_eq!(k.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(k.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(k.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    /// RFC 9001 A.2 and RFC 9369 A.2: header, header protection, payload, server name.
    #[test]
    fn rfc_client_initials_decrypt_step_by_step() {
        for (version, packet) in [(Version::V1, RFC9001_A2), (Version::V2, RFC9369_A2)] {
            let packet = hex(packet);
            assert_eq!(packet.len(), 1200);
            let header = InitialHeader::parse(&packet).unwrap();
            assert_eq!((header.version, header.dcid), (version, &hex(DCID)[..]));
            assert_eq!((header.pn_offset, header.length), (18, 1182));
            let keys = InitialKeys::client(version, header.dcid);
            let hp = Aes128::new(&keys.hp);
            assert_eq!(unprotect_header(&hp, &packet, 18), Some((2, 4)), "{version:?}");
            let mut plain = [0u8; PLAINTEXT_BYTES];
            let n = decrypt(&Aes128::new(&keys.key), &keys.iv, 2, &packet[22..1184], &mut plain);
            assert_eq!(n, 1162);
            let head = hex(A2_PAYLOAD_HEAD);
            assert_eq!(&plain[..head.len()], &head[..], "{version:?}");
            assert!(plain[head.len()..n].iter().all(|b| *b == 0), "PADDING");
            assert_eq!(sni(&packet).as_deref(), Some(&b"example.com"[..]), "{version:?}");
        }
    }

    /// The test fixture builder protects as the RFC does: it reproduces A.2 but for the tag.
    #[test]
    fn fixture_matches_the_rfc() {
        let mut payload = hex(A2_PAYLOAD_HEAD);
        payload.resize(1162, 0);
        for (version, packet) in [(Version::V1, RFC9001_A2), (Version::V2, RFC9369_A2)] {
            let built = client_initial(version, &hex(DCID), 2, &payload);
            assert_eq!(built[..1184], hex(packet)[..1184], "{version:?}");
        }
    }

    #[test]
    fn drafts_use_their_salts() {
        let hello = &client_hello("chat.example.org")[5..];
        for version in [Version::Draft29, Version::Draft23] {
            let mut frames = crypto_frame(0, hello);
            frames.resize(1100, 0);
            let packet = client_initial(version, &[7; 8], 0, &frames);
            assert_eq!(sni(&packet).as_deref(), Some(&b"chat.example.org"[..]), "{version:?}");
            // The same packet read with another version's salt gives garbage, no name.
            let mut other = packet.clone();
            other[1..5].copy_from_slice(&1u32.to_be_bytes());
            assert_eq!(sni(&other), None, "{version:?}");
        }
    }

    /// Chrome's "chaos protection": the ClientHello cut into CRYPTO frames sent out of order,
    /// with PING and PADDING between them.
    #[test]
    fn crypto_frames_out_of_order() {
        let hello = &client_hello("rr3---sn.googlevideo.com")[5..];
        let (a, b, c) = (&hello[..20], &hello[20..50], &hello[50..]);
        let mut frames = crypto_frame(50, c);
        frames.extend_from_slice(&[0x01, 0, 0, 0x01]);
        frames.extend_from_slice(&crypto_frame(0, a));
        frames.extend_from_slice(&[0; 30]);
        frames.extend_from_slice(&crypto_frame(20, b));
        frames.resize(1100, 0);
        let packet = client_initial(Version::V1, &[1; 8], 0, &frames);
        assert_eq!(sni(&packet).as_deref(), Some(&b"rr3---sn.googlevideo.com"[..]));
        // Without the middle piece, the prefix stops at 20 bytes: no name yet.
        let mut frames = crypto_frame(50, c);
        frames.extend_from_slice(&crypto_frame(0, a));
        frames.resize(1100, 0);
        let mut stream = CryptoStream::default();
        read_client_initial(&client_initial(Version::V1, &[1; 8], 0, &frames), &mut stream);
        assert_eq!((stream.contiguous().len(), stream.server_name()), (20, None));
        assert!(stream.incomplete());
    }

    /// A ClientHello over two Initials (Chrome with a post-quantum key share): the second
    /// packet completes the stream.
    #[test]
    fn client_hello_over_two_initials() {
        let hello = &client_hello("web.telegram.org")[5..];
        let cut = hello.len() - 10; // the name lies in the second packet
        let mut first = crypto_frame(0, &hello[..cut]);
        first.resize(1100, 0);
        let mut second = vec![0x02, 0, 0, 0, 0]; // an ACK first, as after a server reply
        second.extend_from_slice(&crypto_frame(cut, &hello[cut..]));
        second.resize(1100, 0);
        let mut stream = CryptoStream::default();
        assert_eq!(
            read_client_initial(&client_initial(Version::V1, &[3; 8], 0, &first), &mut stream),
            Some(Version::V1)
        );
        assert_eq!(stream.server_name(), None);
        assert!(stream.incomplete());
        read_client_initial(&client_initial(Version::V1, &[3; 8], 1, &second), &mut stream);
        assert_eq!(stream.server_name(), Some(&b"web.telegram.org"[..]));
        assert!(!stream.incomplete());
    }

    /// A capture cut anywhere yields the name exactly when the captured part holds the
    /// server_name extension, and never panics.
    #[test]
    fn quic_truncated() {
        let packet = hex(RFC9001_A2);
        // Header (22 bytes), CRYPTO frame header (4), ClientHello up to the end of the name.
        let name_end =
            22 + 4 + hex(A2_PAYLOAD_HEAD).windows(11).position(|w| w == b"example.com").unwrap()
                - 4
                + 11;
        for cut in 0..packet.len() {
            let found = sni(&packet[..cut]);
            assert_eq!(found.is_some(), cut >= name_end, "cut at {cut}");
        }
    }

    /// Every byte of the RFC's Initial with one bit flipped (all eight in the header), and
    /// impossible lengths: no panic, and the header's checks refuse what they must.
    #[test]
    fn quic_bit_flips_and_impossible_len() {
        let packet = hex(RFC9001_A2);
        for i in 0..packet.len() {
            let bits = if i < 22 { 0..8 } else { (i % 8)..(i % 8 + 1) };
            for bit in bits {
                let mut p = packet.clone();
                p[i] ^= 1 << bit;
                let _ = sni(&p);
            }
        }
        let mut p = packet.clone();
        p[0] &= 0x7f; // a short header
        assert_eq!(sni(&p), None);
        let mut p = packet.clone();
        p[0] ^= 0x10; // a 0-RTT packet in v1
        assert_eq!(sni(&p), None);
        let mut p = packet.clone();
        p[5] = 21; // connection ID over 20 bytes
        assert_eq!(sni(&p), None);
        let mut p = packet.clone();
        p[16..18].copy_from_slice(&[0x40, 0x0f]); // Length shorter than the tag
        assert_eq!(sni(&p), None);
        let mut p = packet;
        p[15] = 0xff; // a token length past the datagram
        assert_eq!(sni(&p), None);
    }

    #[test]
    fn hostile_frames() {
        let hello = &client_hello("a.example")[5..];
        // CRYPTO offsets past the buffer and near u64::MAX, an ACK with a huge range count.
        let mut frames = vec![0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x41];
        frames.extend_from_slice(&crypto_frame(4000, &[9; 200]));
        frames.extend_from_slice(&crypto_frame(0, hello));
        frames.extend_from_slice(&[0x02, 0, 0, 0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
        frames.resize(1100, 0);
        let mut stream = CryptoStream::default();
        read_client_initial(&client_initial(Version::V1, &[5; 8], 0, &frames), &mut stream);
        assert_eq!(stream.server_name(), Some(&b"a.example"[..]));
        // More frames than ranges kept: the prefix is merged and later frames still count.
        let mut stream = CryptoStream::default();
        for (i, byte) in hello.iter().enumerate() {
            stream.add(i as u64, &[*byte]);
        }
        assert_eq!(stream.server_name(), Some(&b"a.example"[..]));
        // An unknown frame type ends the walk.
        let mut frames = vec![0x1c];
        frames.extend_from_slice(&crypto_frame(0, hello));
        frames.resize(1100, 0);
        assert_eq!(sni(&client_initial(Version::V1, &[5; 8], 0, &frames)), None);
    }
}
