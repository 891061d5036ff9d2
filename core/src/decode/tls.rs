//! TLS ClientHello server name (RFC 8446 §4.1.2, RFC 6066 §3), read from the first client
//! segment of a TCP flow.
//!
//! Every length is checked against the captured bytes; a ClientHello that continues in a later
//! segment yields no name if the extension is not in the captured part.

/// The host name in the `server_name` extension of a ClientHello at the start of `payload`.
pub fn client_hello_sni(payload: &[u8]) -> Option<&[u8]> {
    let mut r = Reader(payload);
    // Record header: handshake (22), legacy version 3.x, length.
    if r.u8()? != 22 || r.u8()? != 3 {
        return None;
    }
    r.skip(1)?;
    let record_len = r.u16()?;
    handshake_sni(r.0.get(..usize::from(record_len)).unwrap_or(r.0))
}

/// The host name of a ClientHello handshake message at the start of `handshake`, without a
/// record layer around it (QUIC carries handshake messages in CRYPTO frames, RFC 9001 §4).
pub fn handshake_sni(handshake: &[u8]) -> Option<&[u8]> {
    let mut r = Reader(handshake);
    // Handshake header: client_hello (1), 24-bit length.
    if r.u8()? != 1 {
        return None;
    }
    r.skip(3)?;
    r.skip(2 + 32)?; // legacy_version, random
    let session_id = usize::from(r.u8()?);
    r.skip(session_id)?;
    let cipher_suites = usize::from(r.u16()?);
    r.skip(cipher_suites)?;
    let compression = usize::from(r.u8()?);
    r.skip(compression)?;
    let extensions_len = usize::from(r.u16()?);
    let mut ext = Reader(r.0.get(..extensions_len).unwrap_or(r.0));
    while let (Some(kind), Some(len)) = (ext.u16(), ext.u16()) {
        let body = ext.take(usize::from(len))?;
        if kind == 0 {
            return server_name(body);
        }
    }
    None
}

/// ServerNameList: the first host_name entry.
fn server_name(body: &[u8]) -> Option<&[u8]> {
    let mut r = Reader(body);
    let list_len = usize::from(r.u16()?);
    let mut list = Reader(r.take(list_len)?);
    while let Some(name_type) = list.u8() {
        let len = usize::from(list.u16()?);
        let name = list.take(len)?;
        if name_type == 0 && !name.is_empty() {
            return Some(name);
        }
    }
    None
}

/// A bounds-checked cursor (shared with the QUIC decoder).
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    pub(super) fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    /// A minimal ClientHello with one cipher suite, an unrelated extension and the SNI.
    pub fn client_hello(host: &str) -> Vec<u8> {
        let mut ext = Vec::new();
        // supported_versions first, so the parser has to walk past an extension.
        ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
        let name = host.as_bytes();
        ext.extend_from_slice(&[0x00, 0x00]);
        ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
        ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        ext.extend_from_slice(name);
        let mut hello = vec![0x03, 0x03];
        hello.extend_from_slice(&[0x11; 32]);
        hello.push(0); // session id
        hello.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]);
        hello.extend_from_slice(&[0x01, 0x00]);
        hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        hello.extend_from_slice(&ext);
        let mut hs = vec![0x01, 0x00];
        hs.extend_from_slice(&(hello.len() as u16).to_be_bytes());
        hs.extend_from_slice(&hello);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::client_hello;
    use super::*;

    #[test]
    fn finds_server_name() {
        let ch = client_hello("dl-media.viber.com");
        assert_eq!(client_hello_sni(&ch), Some(&b"dl-media.viber.com"[..]));
    }

    #[test]
    fn tls_truncated() {
        let ch = client_hello("chat.signal.org");
        for cut in 0..ch.len() {
            assert_eq!(client_hello_sni(&ch[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn tls_impossible_len() {
        let mut ch = client_hello("chat.signal.org");
        // Cipher suite length running past the record.
        ch[5 + 4 + 2 + 32 + 1] = 0xff;
        assert_eq!(client_hello_sni(&ch), None);
        let mut ch = client_hello("chat.signal.org");
        let n = ch.len();
        // Host name length past the extension.
        ch[n - 16] = 0xff;
        assert_eq!(client_hello_sni(&ch), None);
    }

    #[test]
    fn not_a_client_hello() {
        let mut ch = client_hello("a.b");
        ch[5] = 2; // ServerHello
        assert_eq!(client_hello_sni(&ch), None);
        assert_eq!(client_hello_sni(b"GET / HTTP/1.1\r\n"), None);
    }
}
