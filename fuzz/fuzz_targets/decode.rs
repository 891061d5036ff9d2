//! One frame: the first byte picks the link type, the rest is the frame. Decodes it and runs
//! every application-layer view on its payload. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use throttlewatch::decode::dns::{DnsResponse, DomainName};
use throttlewatch::decode::quic::{CryptoStream, read_client_initial};
use throttlewatch::decode::rtp::RtpHeader;
use throttlewatch::decode::stun::StunMessage;
use throttlewatch::decode::tls::client_hello_sni;
use throttlewatch::decode::{FragmentCache, LinkType, Transport, decode};
use throttlewatch::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else { return };
    let link = LinkType::ALL[usize::from(selector) % LinkType::ALL.len()];
    let mut fragments = FragmentCache::default();
    let wire_len = frame.len() as u32 + u32::from(selector >> 4) * 100;
    let Ok(packet) = decode(link, Timestamp::from_micros(1), frame, wire_len, &mut fragments) else { return };
    let (payload, payload_len) = match packet.transport {
        Transport::Tcp(t) => (t.payload, t.payload_len),
        Transport::Udp(u) => (u.payload, u.payload_len),
        _ => return,
    };
    if let Some(m) = StunMessage::parse(payload, payload_len).or_else(|| StunMessage::parse_framed(payload, payload_len)) {
        let _ = m.class();
        let _ = m.attributes().count();
        let _ = m.realm();
    }
    let _ = RtpHeader::parse(payload);
    let _ = client_hello_sni(payload);
    let mut stream = CryptoStream::default();
    // Twice: the second Initial continues the first's stream.
    for _ in 0..2 {
        let _ = read_client_initial(payload, &mut stream);
    }
    let _ = (stream.server_name(), stream.incomplete());
    if let Some(r) = DnsResponse::parse(payload) {
        let mut name = DomainName::default();
        let _ = r.question(&mut name);
        for a in r.answers() {
            let _ = a.address();
        }
    }
});
