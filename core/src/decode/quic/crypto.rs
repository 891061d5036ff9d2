//! The primitives that unprotect a QUIC Initial, written out compactly (a few hundred bytes of
//! code instead of a cryptography library in the router binary): SHA-256 (FIPS 180-4), HMAC
//! (RFC 2104), HKDF-Extract and TLS 1.3's HKDF-Expand-Label (RFC 5869, RFC 8446 §7.1) for
//! outputs of at most one hash block, and AES-128 encryption (FIPS 197), which is all that
//! header protection (ECB on one block) and GCM's counter mode need.
//!
//! Only public values go through here (the Initial keys derive from a connection ID on the
//! wire), so nothing needs to run in constant time. No allocation; nothing panics on any input.
//! Not inlined: the code runs for a few datagrams per QUIC connection and is kept small in the
//! binary, which compiles the per-packet crate for speed.

/// SHA-256 round constants (FIPS 180-4 §4.2.2).
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 initial hash value (FIPS 180-4 §5.3.3).
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const BLOCK_BYTES: usize = 64;

/// A SHA-256 computation over data given in pieces.
struct Sha256 {
    state: [u32; 8],
    block: [u8; BLOCK_BYTES],
    filled: usize,
    total_bytes: u64,
}

impl Sha256 {
    fn new() -> Self {
        Sha256 { state: H0, block: [0; BLOCK_BYTES], filled: 0, total_bytes: 0 }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.total_bytes = self.total_bytes.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let n = (BLOCK_BYTES - self.filled).min(data.len());
            let (head, rest) = data.split_at(n);
            self.block[self.filled..self.filled + n].copy_from_slice(head);
            self.filled += n;
            data = rest;
            if self.filled == BLOCK_BYTES {
                self.compress();
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> [u8; 32] {
        let bits = self.total_bytes.wrapping_mul(8);
        self.update(&[0x80]);
        while self.filled != BLOCK_BYTES - 8 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// FIPS 180-4 §6.2.2.
    #[inline(never)]
    fn compress(&mut self) {
        let mut w = [0u32; 64];
        for (word, chunk) in w.iter_mut().zip(self.block.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        for t in 16..64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16].wrapping_add(s0).wrapping_add(w[t - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = self.state;
        for (k, w) in K.iter().zip(w) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(*k).wrapping_add(w);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            (h, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts`. Keys here are salts (20 bytes) and
/// secrets (32 bytes); a key longer than a block is hashed first, as the RFC says.
#[inline(never)]
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut padded = [0u8; BLOCK_BYTES];
    if key.len() > BLOCK_BYTES {
        let mut h = Sha256::new();
        h.update(key);
        padded[..32].copy_from_slice(&h.finish());
    } else {
        padded[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(&padded.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(&padded.map(|b| b ^ 0x5c));
    outer.update(&inner.finish());
    outer.finish()
}

/// HKDF-Extract (RFC 5869 §2.2).
pub fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> [u8; 32] {
    hmac_sha256(salt, &[ikm])
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context and the label `prefix` + `label`,
/// for `N` ≤ 32 output bytes (one HKDF-Expand block, RFC 5869 §2.3).
pub fn hkdf_expand_label<const N: usize>(
    secret: &[u8; 32],
    prefix: &[u8],
    label: &[u8],
) -> [u8; N] {
    const TLS13: &[u8] = b"tls13 ";
    let out_len = (N as u16).to_be_bytes();
    let label_len = [(TLS13.len() + prefix.len() + label.len()) as u8];
    // HkdfLabel { length, "tls13 " + label, context = "" }, then HKDF-Expand's counter 1.
    let t1 = hmac_sha256(secret, &[&out_len, &label_len, TLS13, prefix, label, &[0, 1]]);
    let mut out = [0u8; N];
    for (o, t) in out.iter_mut().zip(t1) {
        *o = t;
    }
    out
}

/// The AES S-box (FIPS 197 §5.1.1), computed at compile time: the multiplicative inverse in
/// GF(2^8) walked by powers of the generator 3, then the affine transformation.
const SBOX: [u8; 256] = {
    let mut sbox = [0u8; 256];
    let (mut p, mut q) = (1u8, 1u8);
    loop {
        // p *= 3, q /= 3: q stays p's inverse.
        p ^= (p << 1) ^ if p & 0x80 != 0 { 0x1b } else { 0 };
        q ^= q << 1;
        q ^= q << 2;
        q ^= q << 4;
        if q & 0x80 != 0 {
            q ^= 0x09;
        }
        let affine = q ^ q.rotate_left(1) ^ q.rotate_left(2) ^ q.rotate_left(3) ^ q.rotate_left(4);
        sbox[p as usize] = affine ^ 0x63;
        if p == 1 {
            break;
        }
    }
    sbox[0] = 0x63;
    sbox
};

/// Multiplication by x in GF(2^8) (FIPS 197 §4.2.1).
const fn xtime(b: u8) -> u8 {
    (b << 1) ^ if b & 0x80 != 0 { 0x1b } else { 0 }
}

/// SubBytes and MixColumns of one byte in row 0, as a column word (rows 0-3 from the most
/// significant byte): (2·S, S, S, 3·S). The other rows' contributions are this word rotated
/// by one, two and three bytes (the usual "T-table" form of FIPS 197 §5.1, one table of 1 KiB).
const TE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let s = SBOX[i];
        let s2 = xtime(s);
        table[i] = (s2 as u32) << 24 | (s as u32) << 16 | (s as u32) << 8 | (s2 ^ s) as u32;
        i += 1;
    }
    table
};

/// The S-box applied to each byte of a word.
fn sub_word(w: u32) -> u32 {
    u32::from_be_bytes(w.to_be_bytes().map(|b| SBOX[usize::from(b)]))
}

/// Byte `row` (0 = most significant) of a column word, as a table index.
fn byte(w: u32, row: u32) -> usize {
    ((w >> (24 - 8 * row)) & 0xff) as usize
}

/// AES-128, encryption direction only (FIPS 197 §5.1): header protection is ECB on one block
/// and GCM decrypts with the block cipher's forward direction. The state is four column words.
pub struct Aes128 {
    round_keys: [[u32; 4]; 11],
}

impl Aes128 {
    /// Key expansion (FIPS 197 §5.2).
    #[inline(never)]
    pub fn new(key: &[u8; 16]) -> Self {
        let mut words = [0u32; 44];
        for (word, chunk) in words.iter_mut().zip(key.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let mut rcon = 1u8;
        for i in 4..44 {
            let mut t = words[i - 1];
            if i % 4 == 0 {
                t = sub_word(t.rotate_left(8)) ^ u32::from(rcon) << 24;
                rcon = xtime(rcon);
            }
            words[i] = words[i - 4] ^ t;
        }
        let mut round_keys = [[0u32; 4]; 11];
        for (round_key, four) in round_keys.iter_mut().zip(words.chunks_exact(4)) {
            round_key.copy_from_slice(four);
        }
        Aes128 { round_keys }
    }

    /// Encrypt one block in place (FIPS 197 §5.1): each round's SubBytes, ShiftRows (row r
    /// of column c comes from column c + r) and MixColumns as four table lookups per column;
    /// the last round without MixColumns.
    #[inline(never)]
    pub fn encrypt(&self, block: &mut [u8; 16]) {
        let mut s = [0u32; 4];
        for (c, chunk) in block.chunks_exact(4).enumerate() {
            s[c] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])
                ^ self.round_keys[0][c];
        }
        for round_key in &self.round_keys[1..10] {
            let mut t = [0u32; 4];
            for (c, word) in t.iter_mut().enumerate() {
                *word = TE[byte(s[c], 0)]
                    ^ TE[byte(s[(c + 1) % 4], 1)].rotate_right(8)
                    ^ TE[byte(s[(c + 2) % 4], 2)].rotate_right(16)
                    ^ TE[byte(s[(c + 3) % 4], 3)].rotate_right(24)
                    ^ round_key[c];
            }
            s = t;
        }
        for (c, chunk) in block.chunks_exact_mut(4).enumerate() {
            let word = u32::from_be_bytes([
                SBOX[byte(s[c], 0)],
                SBOX[byte(s[(c + 1) % 4], 1)],
                SBOX[byte(s[(c + 2) % 4], 2)],
                SBOX[byte(s[(c + 3) % 4], 3)],
            ]) ^ self.round_keys[10][c];
            chunk.copy_from_slice(&word.to_be_bytes());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn sha256(data: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(data);
        h.finish()
    }

    /// FIPS 180-4 examples (NIST CSRC "SHA256.pdf"): one block, two blocks; and a million
    /// `a`s fed in uneven pieces, which crosses block boundaries in every position.
    #[test]
    fn sha256_known_answers() {
        assert_eq!(
            sha256(b"abc").to_vec(),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").to_vec(),
            hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        );
        let mut h = Sha256::new();
        let a = [b'a'; 997];
        let mut left = 1_000_000;
        while left > 0 {
            let n = left.min(a.len());
            h.update(&a[..n]);
            left -= n;
        }
        assert_eq!(
            h.finish().to_vec(),
            hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        );
    }

    /// RFC 4231 test cases 2 (short key) and 6 (a key longer than a block).
    #[test]
    fn hmac_known_answers() {
        assert_eq!(
            hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]).to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(
            hmac_sha256(&[0xaa; 131], &[b"Test Using Larger Than Block-Size Key - Hash Key First"])
                .to_vec(),
            hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }

    /// RFC 5869 test case 1's PRK.
    #[test]
    fn hkdf_extract_known_answer() {
        let prk = hkdf_extract(&hex("000102030405060708090a0b0c"), &[0x0b; 22]);
        assert_eq!(
            prk.to_vec(),
            hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        );
    }

    /// FIPS 197 appendix C.1, and the S-box's corners (§5.1.1, figure 7).
    #[test]
    fn aes128_known_answer() {
        assert_eq!((SBOX[0x00], SBOX[0x01], SBOX[0x53], SBOX[0xff]), (0x63, 0x7c, 0xed, 0x16));
        let key: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let mut block: [u8; 16] = hex("00112233445566778899aabbccddeeff").try_into().unwrap();
        Aes128::new(&key).encrypt(&mut block);
        assert_eq!(block.to_vec(), hex("69c4e0d86a7b0430d8cdb78070b4c55a"));
    }
}
