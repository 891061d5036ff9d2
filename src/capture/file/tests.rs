use std::io::Cursor;

use super::*;

/// Bytes of a 32- and a 16-bit word in the chosen byte order.
fn w32(be: bool, w: u32) -> [u8; 4] {
    if be { w.to_be_bytes() } else { w.to_le_bytes() }
}
fn w16(be: bool, w: u16) -> [u8; 2] {
    if be { w.to_be_bytes() } else { w.to_le_bytes() }
}

/// A raw-IP UDP packet (20 bytes of IPv4 header, no payload).
const RAW_IP: [u8; 20] = [0x45, 0, 0, 20, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];

/// A pcap of raw-IP frames stamped `(seconds, fraction)`, in byte order `be`, with
/// nanosecond fractions if `nanos`.
fn pcap(be: bool, nanos: bool, stamps: &[(u32, u32)]) -> Vec<u8> {
    let magic = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut bytes = [w32(be, magic), w32(be, 0), w32(be, 0), w32(be, 0), w32(be, 65_535)].concat();
    bytes.splice(4..8, [w16(be, 2), w16(be, 4)].concat());
    bytes.extend(w32(be, 101));
    for &(sec, frac) in stamps {
        for word in [sec, frac, 20, 20] {
            bytes.extend(w32(be, word));
        }
        bytes.extend(RAW_IP);
    }
    bytes
}

/// What a trace read from `bytes` delivers: (link, time, frame length, wire length) per packet,
/// and the error that stopped it.
type Delivered = Vec<(LinkType, u64, usize, u32)>;

fn read(bytes: &[u8]) -> (Delivered, Result<u64, CaptureError>) {
    let source = Box::new(Cursor::new(bytes.to_vec()));
    let read = deliver(TraceFile::from_reader(PathBuf::from("t.pcap"), source));
    // `analyze -j`: the same from buffers of any size, records across them included.
    #[cfg(feature = "jobs")]
    for part_bytes in [1, 5, 333, 4096].into_iter().filter(|&b| bytes.len() / b < 2_000) {
        let parts: Vec<std::io::Result<SharedBytes>> =
            bytes.chunks(part_bytes).map(|c| Ok(std::sync::Arc::new(c.to_vec()))).collect();
        let shared =
            deliver(TraceFile::from_shared(PathBuf::from("t.pcap"), Box::new(parts.into_iter())));
        assert_eq!(shared.0, read.0, "parts of {part_bytes} bytes");
        let message = |r: &Result<u64, CaptureError>| format!("{r:?}");
        assert_eq!(message(&shared.1), message(&read.1), "parts of {part_bytes} bytes");
    }
    read
}

fn deliver<I: Bytes>(
    file: Result<TraceFile<I>, CaptureError>,
) -> (Delivered, Result<u64, CaptureError>) {
    let mut out = Vec::new();
    let result = file.and_then(|mut file| {
        file.for_each_packet(|link, ts, frame, wire| {
            out.push((link, ts.micros(), frame.len(), wire));
        })
    });
    (out, result)
}

/// `analyze -j`: a read error in the middle of the shared buffers stops the read after the
/// packets before it, as it does a stream's.
#[cfg(feature = "jobs")]
#[test]
fn shared_buffers_deliver_what_precedes_a_read_error() {
    let bytes = pcap(false, false, &[(1, 0), (2, 0), (3, 0)]);
    let parts: Vec<std::io::Result<SharedBytes>> = vec![
        Ok(std::sync::Arc::new(bytes[..24 + 36 + 10].to_vec())),
        Err(std::io::Error::other("disk on fire")),
    ];
    let (got, result) =
        deliver(TraceFile::from_shared(PathBuf::from("t.pcap"), Box::new(parts.into_iter())));
    assert_eq!(got.len(), 1);
    let err = result.unwrap_err().to_string();
    assert_eq!(err, "t.pcap: packet 2: cannot read: disk on fire (1 packets before it were read)");
}

fn error(bytes: &[u8]) -> String {
    read(bytes).1.unwrap_err().to_string()
}

/// Issue 11: a packet stamped after 2038 (pcap's seconds are unsigned) showed as 1970.
#[test]
fn times_after_2038_are_read_as_such() {
    let path = std::env::temp_dir().join(format!("tw-2038-{}.pcap", std::process::id()));
    let stamps = [(0x7fff_ffff, 0), (0x9000_0000, 5), (u32::MAX, 999_999)];
    std::fs::write(&path, pcap(false, false, &stamps)).unwrap();
    let mut file = TraceFile::open(&path).unwrap();
    let mut times = Vec::new();
    file.for_each_packet(|_, ts, _, _| times.push(ts.to_string())).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        times,
        [
            "2038-01-19T03:14:07.000000Z",
            "2046-07-23T00:38:24.000005Z",
            "2106-02-07T06:28:15.999999Z"
        ]
    );
}

#[test]
fn pcap_of_both_byte_orders_and_resolutions() {
    for be in [false, true] {
        let (got, result) = read(&pcap(be, false, &[(1_700_000_000, 123_456), (1_700_000_001, 7)]));
        assert_eq!(result.unwrap(), 2);
        let times: Vec<u64> = got.iter().map(|p| p.1).collect();
        assert_eq!(times, [1_700_000_000_123_456, 1_700_000_001_000_007], "be {be}");
        assert!(got.iter().all(|p| p.0 == LinkType::RawIp && p.2 == 20 && p.3 == 20));
        // Nanoseconds are cut to microseconds.
        let (got, result) = read(&pcap(be, true, &[(1_700_000_000, 123_456_789)]));
        assert_eq!(result.unwrap(), 1);
        assert_eq!(got[0].1, 1_700_000_000_123_456, "be {be}");
    }
    let mut nano = pcap(true, true, &[]);
    nano.truncate(4);
    assert_eq!(TraceFormat::from_magic(nano.try_into().unwrap()), Some(TraceFormat::PcapNano));
}

#[test]
fn pcap_truncated_or_impossible_records_name_the_packet() {
    let whole = pcap(false, false, &[(1, 0), (2, 0), (3, 0)]);
    // Cut inside the third record's data, then inside its header.
    for cut in [whole.len() - 5, whole.len() - 36 + 10] {
        let (got, result) = read(&whole[..cut]);
        assert_eq!(got.len(), 2, "the packets before the cut are delivered");
        let err = result.unwrap_err().to_string();
        assert!(err.starts_with("t.pcap: packet 3: the file ends inside"), "{err}");
        assert!(err.contains("truncated or corrupt; 2 packets before it were read"), "{err}");
    }
    // A captured length beyond libpcap's limit: refused, not allocated.
    let mut bad = whole.clone();
    bad[24 + 36 + 8..24 + 36 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = error(&bad);
    assert!(err.contains("packet 2: captured length 4294967295 is larger than the limit"), "{err}");
    // A short file header, a version that is not 2.
    assert!(error(&whole[..20]).contains("ends inside its 24-byte header"));
    let mut v3 = whole;
    v3[4] = 3;
    assert!(error(&v3).contains("unsupported pcap version 3.4"));
}

#[test]
fn unsupported_link_types_are_named() {
    let mut wifi = pcap(false, false, &[(1, 0)]);
    wifi[20..24].copy_from_slice(&105u32.to_le_bytes());
    let err = error(&wifi);
    assert!(err.contains("link type 105 (IEEE802_11) is not supported; supported: ethernet"));
    // The FCS bits above the link type are not part of it.
    let mut fcs = pcap(false, false, &[(1, 0)]);
    fcs[20..24].copy_from_slice(&(101u32 | 0x1400_0000).to_le_bytes());
    assert_eq!(read(&fcs).1.unwrap(), 1);
}

#[test]
fn magic_bytes() {
    assert_eq!(TraceFormat::from_magic([0xd4, 0xc3, 0xb2, 0xa1]), Some(TraceFormat::Pcap));
    assert_eq!(TraceFormat::from_magic([0xa1, 0xb2, 0xc3, 0xd4]), Some(TraceFormat::Pcap));
    assert_eq!(TraceFormat::from_magic([0x4d, 0x3c, 0xb2, 0xa1]), Some(TraceFormat::PcapNano));
    assert_eq!(TraceFormat::from_magic([0x0a, 0x0d, 0x0d, 0x0a]), Some(TraceFormat::PcapNg));
    assert_eq!(TraceFormat::from_magic(*b"GET "), None);
    assert!(error(b"GET / HTTP/1.1").contains("not a pcap or pcapng file: it starts with bytes"));
    assert!(error(b"").contains("empty file"));
    assert!(error(&[0x1f, 0x8b, 8]).contains("gzip"));
}

/// A pcapng block in byte order `be`.
fn block(be: bool, kind: u32, body: &[u8]) -> Vec<u8> {
    let length = 12 + body.len() as u32;
    [&w32(be, kind)[..], &w32(be, length), body, &w32(be, length)].concat()
}

fn section_header(be: bool) -> Vec<u8> {
    block(
        be,
        0x0a0d_0d0a,
        &[&w32(be, 0x1a2b_3c4d)[..], &w16(be, 1), &w16(be, 0), &[0xff; 8]].concat(),
    )
}

/// An interface description: link type and options (code, value), padded here.
fn interface(be: bool, link: u16, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = [&w16(be, link)[..], &w16(be, 0), &w32(be, 65_535)].concat();
    for (code, value) in options {
        body.extend(w16(be, *code));
        body.extend(w16(be, value.len() as u16));
        body.extend(*value);
        body.resize(body.len().next_multiple_of(4), 0);
    }
    if !options.is_empty() {
        body.extend([0; 4]);
    }
    block(be, 1, &body)
}

/// An enhanced packet block on `interface` at `ticks`, its frame padded to 4 bytes.
fn enhanced(be: bool, interface: u32, ticks: u64, frame: &[u8]) -> Vec<u8> {
    let len = frame.len() as u32;
    let fields = [interface, (ticks >> 32) as u32, ticks as u32, len, len].map(|w| w32(be, w));
    let mut body = [&fields.concat()[..], frame].concat();
    body.resize(body.len().next_multiple_of(4), 0);
    block(be, 6, &body)
}

/// An Ethernet frame around [`RAW_IP`].
fn ethernet_frame() -> Vec<u8> {
    [&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00][..], &RAW_IP].concat()
}

/// A section (header, one Ethernet interface) with UDP packets stamped at `micros`.
fn section(be: bool, micros: &[u64]) -> Vec<u8> {
    let mut out = section_header(be);
    out.extend(interface(be, 1, &[]));
    for &t in micros {
        out.extend(enhanced(be, 0, t, &ethernet_frame()));
    }
    out
}

/// Issue 11: a pcapng whose second section has the other byte order was rejected as
/// corrupt after the first section's packets.
#[test]
fn sections_of_both_byte_orders_are_read() {
    let t = 1_700_000_000_000_000u64;
    let mut bytes = section(false, &[t]);
    bytes.extend(section(true, &[t + 1, t + 2]));
    bytes.extend(section(true, &[t + 3]));
    bytes.extend(section(false, &[t + 4]));
    let (got, result) = read(&bytes);
    assert_eq!(result.unwrap(), 5);
    assert_eq!(got.iter().map(|p| p.1 - t).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    // A block cut short in the second run is still an error, after what came before it.
    bytes.truncate(bytes.len() - section(false, &[t + 4]).len() - 10);
    let (got, result) = read(&bytes);
    assert_eq!(got.len(), 3);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("packet 4:"), "{err}");
}

#[test]
fn interfaces_have_their_own_link_type_and_clock() {
    let be = true;
    let mut bytes = section_header(be);
    bytes.extend(interface(be, 1, &[(9, &[9])])); // Ethernet, nanoseconds
    bytes.extend(block(be, 0x0bad, &[0xee; 40])); // an unknown block, skipped
    let offset = 10i64.to_be_bytes();
    bytes.extend(interface(be, 101, &[(14, &offset), (9, &[0x80 | 10])])); // raw IP, 2^-10 s
    bytes.extend(enhanced(be, 0, 1_700_000_000_123_456_789, &ethernet_frame()));
    bytes.extend(enhanced(be, 1, 1024 * 5 + 512, &RAW_IP));
    // Simple packet block: interface 0, the previous packet's time.
    bytes.extend(block(be, 3, &[&w32(be, 34)[..], &ethernet_frame(), &[0, 0]].concat()));
    // Obsolete packet block: 16-bit interface, 16-bit drop count.
    let fields = [&w16(be, 1)[..], &w16(be, 0), &w32(be, 0), &w32(be, 2048), &w32(be, 20)];
    bytes.extend(block(be, 2, &[&fields.concat()[..], &w32(be, 20), &RAW_IP].concat()));
    let (got, result) = read(&bytes);
    assert_eq!(result.unwrap(), 4);
    assert_eq!(
        got,
        [
            (LinkType::Ethernet, 1_700_000_000_123_456, 34, 34),
            (LinkType::RawIp, 15_500_000, 20, 20),
            (LinkType::Ethernet, 15_500_000, 34, 34),
            (LinkType::RawIp, 12_000_000, 20, 20),
        ]
    );
    // A packet on an interface of a link type the decoder lacks stops the read there.
    let mut wifi = section_header(false);
    wifi.extend(interface(false, 1, &[]));
    wifi.extend(interface(false, 105, &[]));
    wifi.extend(enhanced(false, 0, 1, &ethernet_frame()));
    wifi.extend(enhanced(false, 1, 2, &[0; 24]));
    let err = error(&wifi);
    assert!(err.contains("packet 2: link type 105 (IEEE802_11) is not supported"), "{err}");
    // ... and as the first interface, the file is refused when opened.
    let mut first = section_header(false);
    first.extend(interface(false, 105, &[]));
    assert!(error(&first).contains("t.pcap: link type 105 (IEEE802_11) is not supported"));
}

#[test]
fn impossible_pcapng_blocks_are_refused_with_the_packet_named() {
    let good = section(false, &[1, 2]);
    let second = good.len() - enhanced(false, 0, 2, &ethernet_frame()).len();
    type Corrupt<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
    let cases: [(&str, Corrupt); 6] = [
        ("impossible length of 13", Box::new(|b| b[second + 4] = 13)),
        (
            "more than the limit of 16777216 bytes",
            Box::new(|b| b[second + 4..second + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes())),
        ),
        (
            "as 68 bytes at its start and 72 at its end",
            Box::new(|b| {
                let end = b.len() - 4;
                b[end] += 4;
            }),
        ),
        ("captured length 200 is larger than its block's", Box::new(|b| b[second + 20] = 200)),
        ("names interface 7, and its section describes 1", Box::new(|b| b[second + 8] = 7)),
        ("ends inside the block", Box::new(|b| b.truncate(b.len() - 1))),
    ];
    for (expected, corrupt) in cases {
        let mut bytes = good.clone();
        corrupt(&mut bytes);
        let (got, result) = read(&bytes);
        assert_eq!(got.len(), 1, "{expected}");
        let err = result.unwrap_err().to_string();
        assert!(err.contains("packet 2: ") && err.contains(expected), "{expected}: {err}");
    }
    // A packet before any interface, a file with none.
    let mut early = section_header(false);
    early.extend(enhanced(false, 0, 1, &RAW_IP));
    assert!(error(&early).contains("comes before any interface description block"));
    assert!(error(&section_header(false)).contains("no interface description block"));
    // A time resolution finer than 64 bits can count.
    let mut fine = section_header(false);
    fine.extend(interface(false, 1, &[(9, &[20])]));
    assert!(error(&fine).contains("time resolution 10^-20 s is not supported"));
}

/// Fuzz-safety on real traces: every sample cut at many points and with bits flipped at many
/// places, deterministically. Nothing may panic; the packets before an error are delivered and
/// the error names the packet after them.
#[test]
fn cut_and_bit_flipped_samples_never_panic_and_name_the_packet() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut samples = vec![std::fs::read(root.join("samples/lab/rst-midflow.pcap")).unwrap()];
    // The same packets as pcapng, both byte orders, several sections.
    let t = 1_700_000_000_000_000u64;
    samples.push([section(false, &[t, t + 5]), section(true, &[t + 9, t + 10])].concat());
    let mut variants = 0;
    for original in &samples {
        let (whole, result) = read(original);
        let total = result.unwrap();
        assert_eq!(whole.len() as u64, total);
        // xorshift: a fixed sequence of positions and bits.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for round in 0..300 {
            let mut bytes = original.clone();
            if round % 3 == 0 {
                bytes.truncate(next(original.len()));
            } else {
                for _ in 0..1 + round % 4 {
                    let at = next(bytes.len());
                    bytes[at] ^= 1 << next(8);
                }
            }
            variants += 1;
            let (got, result) = read(&bytes);
            match result {
                Ok(n) => assert_eq!(n, got.len() as u64),
                Err(CaptureError::Packet { packet, .. }) => {
                    assert_eq!(packet, got.len() as u64 + 1, "round {round}")
                }
                Err(CaptureError::Open { .. }) => assert!(got.is_empty()),
            }
            if round % 3 == 0 && !bytes.is_empty() {
                assert!(got.len() as u64 <= total, "a cut file delivers no more than the whole");
            }
        }
    }
    assert_eq!(variants, 600);
}
