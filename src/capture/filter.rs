//! The kernel filter of a live capture (ARCHITECTURE.md): every packet that can belong to a
//! service, and one flow in `control_sample` of the rest as control traffic.
//!
//! Kept: the catalogue's address ranges, DNS (answers teach the classifier), STUN (call
//! signalling, also on relays outside the ranges), ICMP (errors about any flow), and the TCP/UDP
//! flows that [`control_sampled`] picks: a multiplicative hash of the sum of the two ports, the
//! same in both directions (a sampled flow is seen whole) and unbiased whatever ports the
//! client's system picks (Linux and Android connect from even ports only, so the port sum alone
//! would never sample a flow to an odd server port such as 443). With a sample of 1 there is no
//! filter at all.

use crate::classify::Catalogue;
use crate::classify::prefix::{self, Prefix};

/// The kernel takes classic BPF programs of at most this many instructions (BPF_MAXINSNS);
/// libpcap filters longer ones in userspace, after copying every packet.
pub const KERNEL_MAX_INSTRUCTIONS: usize = 4096;

/// Prefix lengths the ranges are widened to, in turn, until the filter fits the kernel:
/// wider ranges let a few more packets through; the classifier still decides by the exact
/// ranges.
const WIDENING: [(u8, u8); 5] = [(32, 128), (24, 48), (20, 40), (16, 32), (8, 24)];

/// The filter expression (libpcap syntax), or `None` to capture everything.
pub fn expression(catalogue: &Catalogue, control_sample: u32) -> Option<String> {
    widened(catalogue, control_sample, WIDENING[0])
}

/// The filter that fits the kernel, widening the ranges as needed, with the number of BPF
/// instructions; `None` without sampling, or when even the widest ranges do not fit.
pub fn fitting(catalogue: &Catalogue, control_sample: u32) -> Option<(String, usize)> {
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).ok()?;
    WIDENING.iter().find_map(|&widths| {
        let f = widened(catalogue, control_sample, widths)?;
        let n = dead.compile(&f, true).ok()?.get_instructions().len();
        (n <= KERNEL_MAX_INSTRUCTIONS).then_some((f, n))
    })
}

/// Fibonacci hashing (Knuth, TAOCP vol. 3, 6.4): 2^32 divided by the golden ratio, odd. The
/// top bits of the product spread any arithmetic progression of inputs (sequential or
/// even-only client ports) evenly.
const SAMPLE_MULTIPLIER: u32 = 0x9e37_79b1;

/// The top bits of the hash that must be zero for a flow to be sampled: `log2(control_sample)`
/// of them (`control_sample` is a power of two, at most 64).
fn sample_mask(control_sample: u32) -> u32 {
    !(u32::MAX >> control_sample.trailing_zeros())
}

/// Whether the control sample keeps the flow between these ports (either order): what the
/// kernel filter computes, in classic BPF's 32-bit unsigned arithmetic.
pub fn control_sampled(port_a: u16, port_b: u16, control_sample: u32) -> bool {
    let sum = u32::from(port_a) + u32::from(port_b);
    sum.wrapping_mul(SAMPLE_MULTIPLIER) & sample_mask(control_sample) == 0
}

/// The control sample in libpcap's syntax, given the expressions of the two port loads.
fn sample_clause(port_a: &str, port_b: &str, control_sample: u32) -> String {
    format!(
        "((({port_a} + {port_b}) * {SAMPLE_MULTIPLIER:#x}) & {:#x}) = 0",
        sample_mask(control_sample)
    )
}

fn widened(catalogue: &Catalogue, control_sample: u32, (v4, v6): (u8, u8)) -> Option<String> {
    if control_sample <= 1 {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    let outermost = prefix::outermost(
        catalogue
            .prefixes()
            .iter()
            .map(|p| {
                let len = p.len.min(if p.addr.is_ipv4() { v4 } else { v6 });
                let wide = Prefix { addr: p.addr, len };
                Prefix { addr: wide.network(), len }
            })
            .collect(),
    );
    let nets: Vec<String> = outermost.iter().map(|p| format!("net {p}")).collect();
    if !nets.is_empty() {
        parts.push(format!("({})", nets.join(" or ")));
    }
    parts.push("port 53".into());
    parts.push("icmp or icmp6".into());
    // STUN: a message type with the top two bits clear and the magic cookie (RFC 8489). The
    // length check comes first: a load beyond a packet's end rejects the packet outright, so
    // an unguarded look into a short datagram would drop it whatever the other clauses say.
    parts.push(STUN.into());
    // The ports right after the IPv4 header; `<<` binds tighter than `&` in libpcap.
    let ports = ("ip[(ip[0] & 0xf) << 2 : 2]", "ip[((ip[0] & 0xf) << 2) + 2 : 2]");
    parts.push(format!(
        "(ip and (tcp or udp) and {})",
        sample_clause(ports.0, ports.1, control_sample)
    ));
    // IPv6 without extension headers: TCP (6) or UDP (17) right after the fixed header.
    parts.push(format!(
        "(ip6 and (ip6[6] = 6 or ip6[6] = 17) and {})",
        sample_clause("ip6[40:2]", "ip6[42:2]", control_sample)
    ));
    Some(parts.join(" or "))
}

/// The narrow filter of the full-size classification capture (ARCHITECTURE.md): DNS answers, STUN
/// messages, TLS handshake records holding a ClientHello (IPv4: libpcap cannot index TCP
/// payloads behind IPv6 headers), and datagrams that may be QUIC Initials (a long header with
/// the fixed bit and packet type 0 or 1, which covers v1's and v2's Initials, in a UDP
/// datagram of at least 1,200 bytes; IPv6 without extension headers). Their full copies go to
/// the classifier only.
pub fn classification_expression() -> String {
    format!(
        "udp src port 53 or {STUN} \
         or (ip and tcp \
             and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) >= 6 \
             and tcp[((tcp[12] & 0xf0) >> 2)] = 0x16 and tcp[((tcp[12] & 0xf0) >> 2) + 5] = 1) \
         or (ip and udp and udp[4:2] >= 1208 and udp[8] & 0xe0 = 0xc0) \
         or (ip6 and ip6[6] = 17 and ip6[44:2] >= 1208 and ip6[48] & 0xe0 = 0xc0)"
    )
}

/// A STUN message over IPv4, its length checked before its header is read.
const STUN: &str =
    "(ip and udp and udp[4:2] >= 28 and udp[8] & 0xc0 = 0 and udp[12:4] = 0x2112a442)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::CatalogueFile;

    fn catalogue(ranges: &str) -> Catalogue {
        let text = format!("[[service]]\nid = \"msg\"\nname = \"M\"\nranges = [{ranges}]\n");
        Catalogue::parse(&text, "test").unwrap()
    }

    #[test]
    fn no_filter_without_sampling() {
        assert_eq!(expression(&catalogue("\"198.51.100.10/32\""), 1), None);
    }

    #[test]
    fn ranges_inside_others_are_left_out() {
        let c =
            catalogue("\"10.0.0.0/8\", \"10.1.0.0/16\", \"2001:db8::/32\", \"2001:db8:1::/48\"");
        let f = expression(&c, 4).unwrap();
        assert!(f.starts_with("(net 10.0.0.0/8 or net 2001:db8::/32) or port 53"), "{f}");
        assert!(f.contains("* 0x9e3779b1) & 0xc0000000) = 0"), "{f}");
    }

    #[test]
    fn the_classification_filter_compiles() {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let n = dead.compile(&classification_expression(), true).unwrap().get_instructions().len();
        assert!(n < 100, "{n}");
    }

    /// QUIC v1 and v2 Initials of 1,200 bytes pass the classification filter over IPv4 and
    /// IPv6; RTP video (version 2: the top bit set, the next clear), short headers, Handshake
    /// packets and short long-header datagrams do not.
    #[test]
    fn the_classification_filter_takes_quic_initials() {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let program = dead.compile(&classification_expression(), true).unwrap();
        let datagram = |v6: bool, first: u8, len: usize| {
            let mut f = frame(v6, false, (50000, 443), 1, 0);
            let header = f.len() - 8 - 4; // the helper's UDP header and 4-byte payload
            f.truncate(header + 8);
            f.extend(std::iter::once(first).chain(std::iter::repeat_n(0, len - 1)));
            let udp_len = (8 + len) as u16;
            f[header + 4..header + 6].copy_from_slice(&udp_len.to_be_bytes());
            if v6 {
                f[18..20].copy_from_slice(&udp_len.to_be_bytes());
            } else {
                f[16..18].copy_from_slice(&(20 + udp_len).to_be_bytes());
            }
            f
        };
        for v6 in [false, true] {
            assert!(program.filter(&datagram(v6, 0xc3, 1200)), "v1 Initial, v6 {v6}");
            assert!(program.filter(&datagram(v6, 0xd3, 1250)), "v2 Initial, v6 {v6}");
            assert!(!program.filter(&datagram(v6, 0xc3, 1199)), "too short, v6 {v6}");
            assert!(!program.filter(&datagram(v6, 0x80, 1200)), "RTP, v6 {v6}");
            assert!(!program.filter(&datagram(v6, 0x43, 1200)), "short header, v6 {v6}");
            assert!(!program.filter(&datagram(v6, 0xe3, 1200)), "Handshake, v6 {v6}");
        }
    }

    /// An Ethernet frame of an IPv4 (with `options` bytes of IP options) or IPv6 packet between
    /// a client and a control server outside the catalogue's ranges, TCP or UDP.
    fn frame(v6: bool, tcp: bool, ports: (u16, u16), ip_id: u16, options: usize) -> Vec<u8> {
        let mut l4 = ports.0.to_be_bytes().to_vec();
        l4.extend_from_slice(&ports.1.to_be_bytes());
        if tcp {
            // seq, ack, data offset 5, ACK, window, checksum, urgent pointer.
            l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            l4.extend_from_slice(&[0, 12, 0, 0]);
        }
        l4.extend_from_slice(&[1, 2, 3, 4]);
        let proto = if tcp { 6 } else { 17 };
        let mut eth = vec![0u8; 12];
        if v6 {
            eth.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            eth.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            eth.extend_from_slice(&[proto, 64]);
            eth.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            eth.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        } else {
            let mut ip = vec![0x45 + (options / 4) as u8, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
            ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
            ip.extend_from_slice(&[192, 168, 1, 2, 203, 0, 113, 9]);
            ip.extend(std::iter::repeat_n(1u8, options)); // NOP options
            let total = (ip.len() + l4.len()) as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            eth.extend_from_slice(&[0x08, 0x00]);
            eth.extend(ip);
        }
        eth.extend(l4);
        eth
    }

    fn compiled(control_sample: u32) -> pcap::BpfProgram {
        let f = expression(&catalogue("\"198.51.100.10/32\""), control_sample).unwrap();
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        dead.compile(&f, true).unwrap()
    }

    /// The sample keeps or drops whole flows: every packet of a flow, whatever its IP ID,
    /// header length or direction, gets the same answer, decided by its ports alone; the
    /// filter that libpcap compiles answers as [`control_sampled`] does.
    #[test]
    fn the_control_sample_keeps_whole_flows() {
        let program = compiled(4);
        let kept = (40000u16..).find(|&p| control_sampled(p, 443, 4)).unwrap();
        let dropped = (40000u16..).find(|&p| !control_sampled(p, 443, 4)).unwrap();
        for id in [0u16, 1, 2, 3, 0x1234, 0xffff] {
            for options in [0, 4, 8] {
                for tcp in [false, true] {
                    let f = |ports| program.filter(&frame(false, tcp, ports, id, options));
                    assert!(f((kept, 443)) && f((443, kept)), "kept: id {id}");
                    assert!(!f((dropped, 443)) && !f((443, dropped)), "dropped: id {id}");
                }
            }
        }
        for tcp in [false, true] {
            let f = |ports| program.filter(&frame(true, tcp, ports, 0, 0));
            assert!(f((kept, 443)) && f((443, kept)) && !f((dropped, 443)) && !f((443, dropped)));
        }
    }

    /// Client ports as systems pick them: Linux and Android connect from even ports of
    /// 32768-60999 only; macOS, iOS and Windows from 49152-65535, at random or in sequence.
    fn client_port_choices() -> Vec<(&'static str, Vec<u16>)> {
        // splitmix64, seeded: the same draws every run.
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let random: Vec<u16> = (0..8000).map(|_| 49152 + (next() % 16384) as u16).collect();
        let start = 49152 + (next() % 16384) as u16;
        let sequential: Vec<u16> =
            (0..8000u32).map(|i| 49152 + ((u32::from(start) - 49152 + i) % 16384) as u16).collect();
        vec![
            ("even 32768-60999", (32768..=60999).step_by(2).collect()),
            ("random 49152-65535", random),
            ("sequential", sequential),
        ]
    }

    const SERVER_PORTS: [u16; 10] = [443, 80, 5222, 3478, 8443, 5228, 1400, 597, 19302, 993];

    /// Whether `sampled` of `n` flows is the share 1/`control_sample` within four binomial
    /// standard deviations.
    fn within_binomial(sampled: usize, n: usize, control_sample: u32) -> bool {
        let p = 1.0 / f64::from(control_sample);
        let tolerance = 4.0 * (p * (1.0 - p) / n as f64).sqrt();
        (sampled as f64 / n as f64 - p).abs() <= tolerance
    }

    /// The share of flows sampled to every common server port, from every way of picking
    /// client ports, is 1/N within binomial tolerance, for every allowed sample; the port sum
    /// the sample used to test fails the same check (an odd server port from Linux: never).
    #[test]
    fn the_control_sample_is_unbiased() {
        let mut table = String::new();
        for (choice, ports) in client_port_choices() {
            for server in SERVER_PORTS {
                for n in [2u32, 4, 8, 16, 32, 64] {
                    let sampled = ports.iter().filter(|&&c| control_sampled(c, server, n)).count();
                    let share = sampled as f64 / ports.len() as f64;
                    table += &format!("{choice} → {server}, 1/{n}: {share:.4}\n");
                    assert!(within_binomial(sampled, ports.len(), n), "{table}");
                }
            }
        }
        println!("{table}");
        let linux: Vec<u16> = (32768..=60999).step_by(2).collect();
        let by_sum = linux.iter().filter(|&&c| (u32::from(c) + 443) % 4 == 0).count();
        assert!(!within_binomial(by_sum, linux.len(), 4), "the check cannot fail: {by_sum}");
    }

    /// The same shares, with every flow's packets (both directions, TCP and UDP, IPv4 with
    /// and without options, IPv6) pushed through the filter that libpcap compiles: each
    /// answer equals the reference function's.
    #[test]
    fn the_compiled_control_sample_is_unbiased() {
        for n in [4u32, 64] {
            let program = compiled(n);
            for (choice, ports) in client_port_choices() {
                for (i, server) in SERVER_PORTS.into_iter().enumerate() {
                    let (v6, tcp, options) = (i % 3 == 2, i % 2 == 0, 4 * (i % 3));
                    let mut sampled = 0;
                    for &client in &ports {
                        let up = program.filter(&frame(v6, tcp, (client, server), 7, options));
                        let down = program.filter(&frame(v6, tcp, (server, client), 9, options));
                        assert_eq!(up, down, "{client} ↔ {server}");
                        assert_eq!(up, control_sampled(client, server, n), "{client} → {server}");
                        sampled += usize::from(up);
                    }
                    let share = sampled as f64 / ports.len() as f64;
                    println!("libpcap: {choice} → {server}, 1/{n}: {share:.4}");
                    assert!(
                        within_binomial(sampled, ports.len(), n),
                        "{choice} → {server}: {share}"
                    );
                }
            }
        }
    }

    /// libpcap compiles what is built; the shipped catalogue's ranges (445 outermost
    /// prefixes, over 6,000 instructions exact) are widened until the kernel takes them.
    #[test]
    fn the_filter_fits_the_kernel() {
        let (f, n) = fitting(&catalogue("\"198.51.100.10/32\""), 4).unwrap();
        assert!(f.contains("net 198.51.100.10/32") && n < 100, "{n}: {f}");
        let builtin = Catalogue::builtin();
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let exact = expression(&builtin, 4).unwrap();
        assert!(
            dead.compile(&exact, true).unwrap().get_instructions().len() > KERNEL_MAX_INSTRUCTIONS
        );
        let (wide, n) = fitting(&builtin, 4).unwrap();
        assert!(n <= KERNEL_MAX_INSTRUCTIONS && wide.len() < exact.len(), "{n}");
        // Every exact range is inside a widened one.
        for p in builtin.prefixes() {
            let inside = wide
                .split(" or ")
                .filter_map(|w| w.trim_start_matches('(').strip_prefix("net "))
                .map(|w| Prefix::parse(w.trim_end_matches(')')).unwrap())
                .any(|w| w.contains(p.addr) && w.len <= p.len);
            assert!(inside, "{p} is not captured");
        }
    }
}
