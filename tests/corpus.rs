//! Whole runs over the real captures of the nDPI corpus (`../shared/corpus/ndpi`, see its
//! README): everything decodes, every packet is accounted for, messenger flows get the service
//! nDPI's ground truth names, and byte counts and handshake RTTs equal what tshark computes
//! independently from the same files.

mod common;

fn main() -> std::process::ExitCode {
    common::run_trials(common::trials![
        corpus_decodes_without_error_and_accounts_for_every_packet,
        corpus_messenger_flows_agree_with_ndpi,
        corpus_byte_and_packet_counts_match_tshark,
        corpus_handshake_rtt_matches_tshark,
        corpus_timestamp_rtt_samples_are_ppings,
        corpus_quic_initials_read_as_tshark_reads_them,
        corpus_quic_flow_classified_by_server_name,
        corpus_gquic_client_hellos_read_as_tshark_reads_them,
        corpus_results_are_the_same_with_every_jobs,
    ])
}

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use throttlewatch::classify::{Catalogue, CatalogueFile, Evidence};
use throttlewatch::decode::gquic;
use throttlewatch::decode::quic::{CryptoStream, read_client_initial};
use throttlewatch::flow::{Direction, Endpoint, Proto};
use throttlewatch::measure::TransportMeasures;
use throttlewatch::measure::rtt::Leg;
use throttlewatch::pipeline::FinishedFlow;

type FlowKey = (Proto, [(IpAddr, u16); 2]);

fn key(proto: Proto, a: (IpAddr, u16), b: (IpAddr, u16)) -> FlowKey {
    let mut ends = [a, b];
    ends.sort();
    (proto, ends)
}

fn ends(e: Endpoint) -> (IpAddr, u16) {
    (e.addr, e.port)
}

fn flow_key(f: &FinishedFlow) -> FlowKey {
    key(f.proto, ends(f.client), ends(f.server))
}

/// nDPI application labels this test requires throttlewatch to agree with, and the service
/// id each maps to.
const LABELS: [(&str, &str); 10] = [
    ("WhatsApp", "whatsapp"),
    ("WhatsAppCall", "whatsapp"),
    ("Telegram", "telegram"),
    ("TelegramVoip", "telegram"),
    ("SignalVoip", "signal"),
    ("Viber", "viber"),
    ("ViberVoip", "viber"),
    ("Discord", "discord"),
    ("Skype_TeamsCall", "teams"),
    ("Zoom", "zoom"),
];

/// Required agreement per service.
const MIN_AGREEMENT: f64 = 0.90;

struct GroundTruth {
    file: String,
    flow: String,
    key: FlowKey,
    /// nDPI's protocol column, e.g. `78.45/STUN.WhatsAppCall`.
    ndpi: String,
    app: String,
    master_is_dns: bool,
}

fn ground_truth(dir: &Path) -> Vec<GroundTruth> {
    let text = std::fs::read_to_string(dir.join("FLOWS.tsv")).expect("FLOWS.tsv is readable");
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let proto = match c[2] {
            "TCP" => Proto::Tcp,
            "UDP" => Proto::Udp,
            _ => continue,
        };
        // A few rows carry endpoints nDPI printed unparseably; none is a messenger flow.
        let (Some(a), Some(b)) = (common::endpoint(c[3]), common::endpoint(c[5])) else {
            continue;
        };
        let ndpi = c[6].to_string();
        let (master, app) = ndpi.split_once('/').map_or(("", ndpi.as_str()), |(_, p)| {
            let app = p.rsplit('.').next().unwrap_or(p);
            (c[6].split('/').next().unwrap_or(""), app)
        });
        rows.push(GroundTruth {
            file: c[0].to_string(),
            flow: c[1].to_string(),
            key: key(proto, a, b),
            app: app.to_string(),
            master_is_dns: master == "5" || master.starts_with("5."),
            ndpi: ndpi.clone(),
        });
    }
    rows
}

fn corpus_decodes_without_error_and_accounts_for_every_packet() -> common::Ran {
    let dir = common::corpus_dir()?;
    let files = common::corpus_files(&dir);
    assert!(files.len() >= 18, "expected the 18 captures of the corpus, found {}", files.len());
    for file in &files {
        let out = common::analyze(std::slice::from_ref(file), None);
        assert!(out.errors.is_empty(), "{}: {:?}", file.display(), out.errors);
        let s = &out.analysis.stats;
        assert!(s.packets > 0);
        // Each packet read is skipped or measured, and each measured one counted in one flow
        // (an ICMP error in the flow it is about).
        let in_flows: u64 = out
            .analysis
            .flows
            .iter()
            .map(|f| {
                let icmp = |d| u64::from(f.measures.ip_events(d).icmp_errors);
                let dirs = &f.measures.dirs;
                dirs.up.packets + dirs.down.packets + icmp(Direction::Up) + icmp(Direction::Down)
            })
            .sum();
        assert!(s.skipped.total() <= s.packets, "{}: {s:?}", file.display());
        assert_eq!(s.measured(), in_flows, "{}: packets unaccounted for", file.display());
        let malformed: u64 =
            s.skipped.nonzero().filter(|(r, _)| r.is_malformed()).map(|(_, n)| n).sum();
        assert_eq!(malformed, 0, "{}: {:?}", file.display(), s.skipped);
        assert!(!out.analysis.flows.is_empty());
        let reasons: Vec<String> =
            s.skipped.nonzero().map(|(r, n)| format!("{} {n}", r.as_str())).collect();
        eprintln!(
            "{:<26} {:>6} {:>5} packets, {:>3} flows, skipped: {}",
            file.file_name().unwrap().to_string_lossy(),
            out.inputs[0].format.as_deref().unwrap_or("?"),
            s.packets,
            out.analysis.flows.len(),
            if reasons.is_empty() { "none".into() } else { reasons.join(", ") }
        );
    }
    Ok(())
}

fn corpus_messenger_flows_agree_with_ndpi() -> common::Ran {
    let dir = common::corpus_dir()?;
    let truth = ground_truth(&dir);
    let mut by_file: BTreeMap<&str, Vec<&GroundTruth>> = BTreeMap::new();
    for t in &truth {
        by_file.entry(&t.file).or_default().push(t);
    }
    let labels: HashMap<&str, &str> = LABELS.into_iter().collect();
    // service -> (agreeing, total)
    let mut table: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    // Kind of the UDP flows among them -> (agreeing, total): `quic` when nDPI saw QUIC (its
    // protocol 188), else a call leg: `relay` when an end is in the catalogue's address space
    // (the service's relay or server), `p2p` otherwise.
    let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut dns_lookups = 0;
    let mut others: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (file, rows) in &by_file {
        let out = common::analyze(&[dir.join(file)], None);
        let catalogue = out.analysis.classifier.catalogue();
        let mut ours: HashMap<FlowKey, Vec<Option<&str>>> = HashMap::new();
        let mut ends: HashMap<FlowKey, (Endpoint, Endpoint)> = HashMap::new();
        for f in &out.analysis.flows {
            ends.insert(flow_key(f), (f.client, f.server));
            let service = f.class.service.map(|s| catalogue.service(s).id.as_str());
            ours.entry(flow_key(f)).or_default().push(service);
        }
        for row in rows {
            let got = ours.get(&row.key).cloned().unwrap_or_default();
            let Some(&want) = labels.get(row.app.as_str()) else {
                for s in got.iter().flatten() {
                    *others.entry((row.app.clone(), s.to_string())).or_default() += 1;
                }
                continue;
            };
            if row.master_is_dns {
                // "DNS.WhatsApp": a lookup of the service's names on the local resolver. The
                // flow goes to the resolver, not to the service; it teaches addresses instead.
                dns_lookups += 1;
                continue;
            }
            let agrees = got.contains(&Some(want));
            if row.key.0 == Proto::Udp {
                let by_address = row.key.1.iter().any(|&(addr, port)| {
                    catalogue.match_endpoint(Proto::Udp, Endpoint::new(addr, port)).is_some()
                });
                let kind = match () {
                    _ if row.ndpi.starts_with("188") => "quic",
                    _ if by_address => "relay",
                    _ => "p2p",
                };
                let kind = kinds.entry(kind).or_default();
                kind.1 += 1;
                kind.0 += usize::from(agrees);
            }
            let entry = table.entry(want).or_default();
            entry.1 += 1;
            if agrees {
                entry.0 += 1;
            } else {
                misses.push(format!(
                    "{file} flow {} ({}): {want} expected, got {got:?}",
                    row.flow, row.ndpi
                ));
            }
        }
    }
    eprintln!("\nservice agreement with nDPI's ground truth (flows nDPI labels with the service):");
    eprintln!("{:<10} {:>6} {:>6} {:>7}", "service", "agree", "flows", "rate");
    let (mut agree, mut total) = (0, 0);
    for (service, (a, n)) in &table {
        eprintln!("{service:<10} {a:>6} {n:>6} {:>6.1}%", 100.0 * *a as f64 / *n as f64);
        agree += a;
        total += n;
    }
    eprintln!("{:<10} {agree:>6} {total:>6} {:>6.1}%", "all", 100.0 * agree as f64 / total as f64);
    eprintln!(
        "({dns_lookups} DNS lookups of messenger names on local resolvers are not messenger traffic and not counted)"
    );
    eprintln!("UDP flows among them, by kind (QUIC, call legs to relays, to peers):");
    for (kind, (a, n)) in &kinds {
        eprintln!("{kind:<10} {a:>6} {n:>6} {:>6.1}%", 100.0 * *a as f64 / *n as f64);
    }
    eprintln!("flows nDPI labels otherwise that throttlewatch gives a service:");
    for ((app, service), n) in &others {
        eprintln!("  {n:>3} nDPI {app:<16} -> {service}");
    }
    for m in &misses {
        eprintln!("MISS {m}");
    }
    assert_eq!(table.len(), 7, "every required service occurs in the corpus: {table:?}");
    // No messenger flow of the corpus runs over QUIC (its QUIC flows are Google's; their
    // server names are checked against tshark's below).
    assert_eq!(kinds.len(), 2, "relay and peer-to-peer legs occur in the corpus: {kinds:?}");
    for (kind, (a, n)) in &kinds {
        assert_eq!(a, n, "{kind} call legs: {a}/{n} agree with nDPI");
    }
    for (service, (a, n)) in &table {
        let rate = *a as f64 / *n as f64;
        assert!(
            rate >= MIN_AGREEMENT,
            "{service}: {a}/{n} = {:.1}% < {:.0}%",
            rate * 100.0,
            MIN_AGREEMENT * 100.0
        );
    }
    Ok(())
}

/// (proto, source, destination) of one direction of a flow.
type DirectedKey = (Proto, (IpAddr, u16), (IpAddr, u16));

/// Per direction bytes (IP lengths) and packets, from tshark's dissection; without second
/// copies, which the pipeline skips (`second_copy`): an IPv4 packet of the same direction,
/// identification and length as one within the 2 ms before it (some captures hold a
/// duplicate of a packet, 60 µs later).
fn tshark_counts(file: &Path) -> HashMap<DirectedKey, (u64, u64)> {
    let rows = common::tshark_fields(
        file,
        None,
        &[
            "ip.src",
            "ipv6.src",
            "ip.dst",
            "ipv6.dst",
            "ip.len",
            "ipv6.plen",
            "tcp.srcport",
            "tcp.dstport",
            "udp.srcport",
            "udp.dstport",
            "icmp.type",
            "icmpv6.type",
            "frame.time_epoch",
            "ip.id",
        ],
    );
    let mut counts = HashMap::new();
    let mut latest: HashMap<(DirectedKey, String), (f64, u64)> = HashMap::new();
    for f in rows {
        // ICMP errors quote another packet (fields repeat, comma-separated): not flow bytes.
        if f.len() < 14
            || f.iter().any(|x| x.contains(','))
            || !f[10].is_empty()
            || !f[11].is_empty()
        {
            continue;
        }
        let (src, dst) = (
            if f[0].is_empty() { &f[1] } else { &f[0] },
            if f[2].is_empty() { &f[3] } else { &f[2] },
        );
        let (Ok(src), Ok(dst)) = (src.parse::<IpAddr>(), dst.parse::<IpAddr>()) else {
            continue;
        };
        let len: u64 =
            if f[4].is_empty() { f[5].parse::<u64>().unwrap() + 40 } else { f[4].parse().unwrap() };
        let (proto, sp, dp) = if !f[6].is_empty() {
            (Proto::Tcp, &f[6], &f[7])
        } else if !f[8].is_empty() {
            (Proto::Udp, &f[8], &f[9])
        } else {
            continue;
        };
        let key = (proto, (src, sp.parse().unwrap()), (dst, dp.parse().unwrap()));
        let at: f64 = f[12].parse().unwrap();
        if !f[13].is_empty() && f[13] != "0x0000" {
            let before = latest.insert((key, f[13].clone()), (at, len));
            if before.is_some_and(|(t, l)| l == len && at - t <= 0.002) {
                continue;
            }
        }
        let e = counts.entry(key).or_insert((0, 0));
        e.0 += len;
        e.1 += 1;
    }
    counts
}

fn corpus_byte_and_packet_counts_match_tshark() -> common::Ran {
    let dir = common::corpus_dir()?;
    common::tshark()?;
    let (mut flows, mut bytes) = (0, 0u64);
    for file in common::corpus_files(&dir) {
        let want = tshark_counts(&file);
        let out = common::analyze(std::slice::from_ref(&file), None);
        for f in &out.analysis.flows {
            let (c, s) = (ends(f.client), ends(f.server));
            let up = want.get(&(f.proto, c, s)).copied().unwrap_or_default();
            let down = want.get(&(f.proto, s, c)).copied().unwrap_or_default();
            let (u, d) = (&f.measures.dirs.up, &f.measures.dirs.down);
            assert_eq!(
                (u.bytes, u.packets, d.bytes, d.packets),
                (up.0, up.1, down.0, down.1),
                "{} flow {} {:?} {} -> {}: (bytes, packets) up and down differ from tshark's",
                file.display(),
                f.id,
                f.proto,
                f.client,
                f.server
            );
            flows += 1;
            bytes += u.bytes + d.bytes;
        }
    }
    eprintln!("byte and packet counts of {flows} flows ({bytes} bytes) equal tshark's");
    assert!(flows > 400);
    Ok(())
}

/// (sender, receiver) of a segment.
type Ends = ((IpAddr, u16), (IpAddr, u16));

/// One TCP segment as tshark dissected it.
struct Segment {
    /// Capture time in microseconds (tshark's nanoseconds cut, as libpcap delivers them).
    micros: u64,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    flags: u8,
    seq: u32,
    ack: u32,
    /// (TSval, TSecr).
    timestamps: Option<(u32, u32)>,
}

fn tshark_segments(file: &Path) -> Vec<Segment> {
    let fields = [
        "frame.time_epoch",
        "ip.src",
        "ipv6.src",
        "tcp.srcport",
        "ip.dst",
        "ipv6.dst",
        "tcp.dstport",
        "tcp.flags",
        "tcp.seq_raw",
        "tcp.ack_raw",
        "tcp.options.timestamp.tsval",
        "tcp.options.timestamp.tsecr",
    ];
    let mut segments = Vec::new();
    for f in common::tshark_fields(file, Some("tcp"), &fields) {
        // ICMP errors quoting TCP repeat the fields, comma-separated: not segments.
        if f.len() < fields.len() || f.iter().any(|x| x.contains(',')) {
            continue;
        }
        let (secs, frac) = f[0].split_once('.').unwrap_or((&f[0], "0"));
        let micros = secs.parse::<u64>().unwrap() * 1_000_000
            + format!("{frac:0<6}")[..6].parse::<u64>().unwrap();
        let addr =
            |v4: &str, v6: &str| (if v4.is_empty() { v6 } else { v4 }).parse::<IpAddr>().unwrap();
        segments.push(Segment {
            micros,
            src: (addr(&f[1], &f[2]), f[3].parse().unwrap()),
            dst: (addr(&f[4], &f[5]), f[6].parse().unwrap()),
            flags: u8::from_str_radix(f[7].trim_start_matches("0x").trim_start_matches("00"), 16)
                .unwrap_or(0),
            seq: f[8].parse().unwrap(),
            ack: f[9].parse().unwrap(),
            timestamps: f[10].parse().ok().zip(f[11].parse().ok()),
        });
    }
    segments
}

/// Independent handshake legs per flow: last SYN before the first SYN/ACK → that SYN/ACK
/// (external; none by Karn's rule when the SYN was sent again and the SYN/ACK's TSecr is not
/// the last SYN's TSval); that SYN/ACK → the first ACK from the other side acknowledging it
/// (internal).
fn handshake_legs(segments: &[Segment]) -> HashMap<FlowKey, (Option<u64>, Option<u64>)> {
    #[derive(Default)]
    struct Hs {
        syn: Option<u64>,
        syns: u32,
        syn_tsval: Option<u32>,
        ambiguous: bool,
        synack: Option<(u64, (IpAddr, u16), u32)>,
        ack: Option<u64>,
    }
    let mut hs: HashMap<FlowKey, Hs> = HashMap::new();
    for seg in segments {
        let h = hs.entry(key(Proto::Tcp, seg.src, seg.dst)).or_default();
        let (syn, ackf) = (seg.flags & 0x02 != 0, seg.flags & 0x10 != 0);
        if syn && !ackf && h.synack.is_none() {
            h.syn = Some(seg.micros);
            h.syns += 1;
            h.syn_tsval = seg.timestamps.map(|t| t.0);
        } else if syn && ackf && h.synack.is_none() {
            h.synack = Some((seg.micros, seg.src, seg.seq.wrapping_add(1)));
            let echoes_last = seg.timestamps.is_some_and(|t| Some(t.1) == h.syn_tsval);
            h.ambiguous = h.syns > 1 && !echoes_last;
        } else if let (false, true, Some((_, server, next)), None) = (syn, ackf, h.synack, h.ack)
            && seg.src != server
            && seg.ack == next
        {
            h.ack = Some(seg.micros);
        }
    }
    hs.into_iter()
        .map(|(k, h)| {
            let external =
                h.syn.zip(h.synack).filter(|_| !h.ambiguous).map(|(s, (sa, _, _))| sa - s);
            let internal = h.synack.zip(h.ack).map(|((sa, _, _), a)| a - sa);
            (k, (external, internal))
        })
        .collect()
}

fn corpus_handshake_rtt_matches_tshark() -> common::Ran {
    let dir = common::corpus_dir()?;
    common::tshark()?;
    let mut checked = 0;
    for file in common::corpus_files(&dir) {
        let mut legs = handshake_legs(&tshark_segments(&file));
        let out = common::analyze(std::slice::from_ref(&file), None);
        for f in out.analysis.flows.iter().filter(|f| f.proto == Proto::Tcp) {
            let TransportMeasures::Tcp(tcp) = &f.measures.transport else { unreachable!() };
            let (external, internal) = legs.remove(&flow_key(f)).unwrap_or_default();
            assert_eq!(
                (tcp.handshake.external_us(), tcp.handshake.internal_us()),
                (external, internal),
                "{} flow {} {} -> {}: handshake legs (external, internal) in µs",
                file.display(),
                f.id,
                f.client,
                f.server
            );
            checked += usize::from(external.is_some());
        }
    }
    eprintln!("SYN→SYN/ACK and SYN/ACK→ACK legs of {checked} handshakes equal tshark's");
    assert!(checked >= 100, "only {checked} handshakes checked");
    Ok(())
}

/// TCP timestamp RTT samples as Kathleen Nichols' pping defines them, computed from tshark's
/// dissection: for each direction, the first time each TSval is seen; a packet of the other
/// direction with the ACK flag whose TSecr equals a TSval not yet used gives one sample.
/// throttlewatch keeps one probe per direction, so its samples are a subset of these plus the
/// handshake legs (measured even when the SYN/ACK carries no timestamps): its minimum, maximum
/// and latest sample per leg must each be one of those.
fn corpus_timestamp_rtt_samples_are_ppings() -> common::Ran {
    let dir = common::corpus_dir()?;
    common::tshark()?;
    let (mut flows, mut values) = (0, 0);
    for file in common::corpus_files(&dir) {
        // ((sender, receiver), TSval) -> (first seen, used)
        let mut first_seen: HashMap<(Ends, u32), (u64, bool)> = HashMap::new();
        // (sender of the TSval, receiver) -> samples
        let mut samples: HashMap<Ends, Vec<u64>> = HashMap::new();
        let segments = tshark_segments(&file);
        let legs = handshake_legs(&segments);
        for seg in &segments {
            let Some((tsval, tsecr)) = seg.timestamps else { continue };
            if seg.flags & 0x10 != 0
                && let Some((at, used)) = first_seen.get_mut(&((seg.dst, seg.src), tsecr))
                && !*used
            {
                *used = true;
                samples.entry((seg.dst, seg.src)).or_default().push(seg.micros - *at);
            }
            first_seen.entry(((seg.src, seg.dst), tsval)).or_insert((seg.micros, false));
        }
        let out = common::analyze(std::slice::from_ref(&file), None);
        for f in out.analysis.flows.iter().filter(|f| f.proto == Proto::Tcp) {
            let TransportMeasures::Tcp(tcp) = &f.measures.transport else { unreachable!() };
            if !tcp.timestamps {
                continue;
            }
            let (c, s) = (ends(f.client), ends(f.server));
            let (external, internal) = legs.get(&flow_key(f)).copied().unwrap_or_default();
            for (leg, prober, echoer, handshake) in
                [(Leg::External, c, s, external), (Leg::Internal, s, c, internal)]
            {
                let stats = tcp.rtt(leg);
                let mut pping = samples.get(&(prober, echoer)).cloned().unwrap_or_default();
                pping.extend(handshake);
                for (what, value) in
                    [("min", stats.min_us()), ("max", stats.max_us()), ("last", stats.last_us())]
                {
                    let Some(v) = value else { continue };
                    assert!(
                        pping.contains(&u64::from(v)),
                        "{} flow {} {:?} {what} {v} µs is not among pping's samples {pping:?}",
                        file.display(),
                        f.id,
                        leg
                    );
                    values += 1;
                }
            }
            flows += 1;
        }
    }
    eprintln!("{values} RTT extremes of {flows} flows with TCP timestamps are pping samples");
    assert!(flows >= 50 && values >= 200, "{flows} flows, {values} values");
    Ok(())
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// Every QUIC Initial of the corpus (as tshark finds them), decrypted by the decoder on its own:
/// where tshark reads a server name we read the same one, and where we read one tshark does
/// not, tshark read that name earlier in the flow (it shows a ClientHello sent again once).
/// The corpus's IETF QUIC is quic-28.pcap (drafts 27 and 28); the Google QUIC flows of
/// telegram.pcap and http_ipv6.pcap (`Q0xx` versions, no Initials) are read below.
fn corpus_quic_initials_read_as_tshark_reads_them() -> common::Ran {
    let dir = common::corpus_dir()?;
    common::tshark()?;
    let fields = [
        "ip.src",
        "ipv6.src",
        "udp.srcport",
        "quic.version",
        "udp.payload",
        "tls.handshake.extensions_server_name",
    ];
    let (mut initials, mut named) = (0, 0);
    let mut versions = BTreeMap::new();
    for file in common::corpus_files(&dir) {
        let rows = common::tshark_fields(&file, Some("quic.long.packet_type == 0"), &fields);
        let mut seen: HashMap<(String, String), Vec<String>> = HashMap::new();
        for r in &rows {
            let sender = (format!("{}{}", r[0], r[1]), r[2].clone());
            let mut stream = CryptoStream::default();
            read_client_initial(&unhex(&r[4]), &mut stream);
            let ours = stream.server_name().map(|n| String::from_utf8_lossy(n).into_owned());
            let theirs = (!r[5].is_empty()).then(|| r[5].clone());
            let earlier = seen.entry(sender).or_default();
            match (&ours, &theirs) {
                (Some(o), Some(t)) => assert_eq!(o, t, "{}: {r:?}", file.display()),
                (Some(o), None) => {
                    assert!(
                        earlier.contains(o),
                        "{}: {o} read, tshark read none: {r:?}",
                        file.display()
                    )
                }
                (None, Some(t)) => panic!("{}: tshark read {t}, we did not: {r:?}", file.display()),
                (None, None) => {}
            }
            initials += 1;
            if let Some(name) = ours {
                named += 1;
                *versions.entry(r[3].clone()).or_insert(0) += 1;
                earlier.push(name);
            }
        }
    }
    eprintln!("{initials} QUIC Initials; server names read from {named}, by version: {versions:?}");
    assert!(named >= 2, "quic-28.pcap holds a draft-28 and a draft-27 ClientHello");
    assert!(versions.contains_key("0xff00001c") && versions.contains_key("0xff00001b"));
    Ok(())
}

/// Every Google QUIC packet of the corpus: the CHLO server names we read are the ones tshark
/// reads (`gquic.tag.sni`), packet by packet (Q046 in telegram.pcap, Q025 in http_ipv6.pcap);
/// and a catalogue naming google.com classifies those flows.
fn corpus_gquic_client_hellos_read_as_tshark_reads_them() -> common::Ran {
    let dir = common::corpus_dir()?;
    common::tshark()?;
    let fields = ["gquic.version", "udp.payload", "gquic.tag.sni"];
    let mut read = BTreeMap::new();
    for file in common::corpus_files(&dir) {
        for r in common::tshark_fields(&file, Some("gquic"), &fields) {
            let ours = gquic::client_hello_sni(&unhex(&r[1]))
                .map(|n| String::from_utf8_lossy(n).into_owned());
            let theirs = (!r[2].is_empty()).then(|| r[2].clone());
            assert_eq!(ours, theirs, "{}: {r:?}", file.display());
            if let Some(name) = ours {
                *read
                    .entry((
                        file.file_name().unwrap().to_string_lossy().into_owned(),
                        r[0].clone(),
                        name,
                    ))
                    .or_insert(0) += 1;
            }
        }
    }
    eprintln!("gQUIC CHLO server names read (file, version, name): {read:?}");
    assert_eq!(read.len(), 2, "Q046 in telegram.pcap, Q025 in http_ipv6.pcap");
    let text = "[[service]]\nid = \"g\"\nname = \"Google\"\n\
                ranges = [\"198.51.100.0/24\"]\nsni = [\"google.com\", \"google.it\"]\n";
    for (file, flows) in [("telegram.pcap", 2), ("http_ipv6.pcap", 1)] {
        let out = common::analyze(&[dir.join(file)], Some(Catalogue::parse(text, "test").unwrap()));
        let named: Vec<_> = out
            .analysis
            .flows
            .iter()
            .filter(|f| f.class.service.is_some())
            .map(|f| (f.proto, f.server.port, f.class.evidence))
            .collect();
        assert_eq!(named, vec![(Proto::Udp, 443, Evidence::Signature); flows], "{file}");
    }
    Ok(())
}

/// A catalogue naming the server of quic-28.pcap's QUIC flow classifies it by its Initial's
/// server name (the built-in catalogue has no service there).
fn corpus_quic_flow_classified_by_server_name() -> common::Ran {
    let dir = common::corpus_dir()?;
    let text = "[[service]]\nid = \"ws\"\nname = \"Wireshark\"\n\
                ranges = [\"198.51.100.0/24\"]\nsni = [\"wireshark.org\"]\n";
    let catalogue = Catalogue::parse(text, "test").unwrap();
    let out = common::analyze(&[dir.join("quic-28.pcap")], Some(catalogue));
    let server: IpAddr = "104.26.11.240".parse().unwrap();
    let quic: Vec<_> = out
        .analysis
        .flows
        .iter()
        .filter(|f| f.proto == Proto::Udp && f.server.addr == server && f.server.port == 443)
        .collect();
    assert_eq!(quic.len(), 1, "{:?}", quic.iter().map(|f| f.client).collect::<Vec<_>>());
    assert_eq!((quic[0].class.service, quic[0].class.evidence), (Some(0), Evidence::Signature));
    let others = out.analysis.flows.iter().filter(|f| f.class.service.is_some()).count();
    assert_eq!(others, 1, "only the QUIC flow is the catalogue's");
    Ok(())
}

/// Issue 14: `analyze -j 2` and `-j 3` give what `-j 1` gives, byte for byte, on every
/// capture of the corpus (calls, QUIC, DNS, IPv6, fragments, out-of-order timestamps).
fn corpus_results_are_the_same_with_every_jobs() -> common::Ran {
    let dir = common::corpus_dir()?;
    for trace in common::corpus_files(&dir) {
        common::same_with_every_jobs(&trace, None);
    }
    Ok(())
}
