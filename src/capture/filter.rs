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

use super::bpf::{self, Instruction, Keep};
use crate::classify::Catalogue;
use crate::classify::prefix::{self, Prefix};
use crate::decode::LinkType;

/// The kernel takes classic BPF programs of at most this many instructions (BPF_MAXINSNS).
pub const KERNEL_MAX_INSTRUCTIONS: usize = 4096;

/// Prefix lengths the ranges are widened to, in turn, until the filter fits the kernel:
/// wider ranges let a few more packets through; the classifier still decides by the exact
/// ranges.
const WIDENING: [(u8, u8); 5] = [(32, 128), (24, 48), (20, 40), (16, 32), (8, 24)];

/// The kernel filter of the measuring captures, built once at start (milliseconds): its
/// program for every layout of frames a capture may have, and how far the ranges had to be
/// widened to fit the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFilter {
    keep: Keep,
    /// For each of [`LAYOUTS`].
    programs: Vec<Vec<Instruction>>,
    /// The catalogue's ranges that no other contains, after widening.
    pub ranges: usize,
    /// The prefix lengths (IPv4, IPv6) the ranges were widened to; `None`: exact.
    pub widened_to: Option<(u8, u8)>,
}

impl KernelFilter {
    /// The filter for `catalogue`, keeping `snaplen_bytes` of each packet, its ranges widened
    /// as needed; `None` without sampling (everything is captured), or when even the widest
    /// ranges do not fit.
    pub fn build(
        catalogue: &Catalogue,
        control_sample: u32,
        snaplen_bytes: u32,
    ) -> Option<KernelFilter> {
        if control_sample <= 1 {
            return None;
        }
        WIDENING.iter().enumerate().find_map(|(step, &widths)| {
            let ranges = widened(catalogue, widths);
            let keep = Keep {
                v4: bpf::intervals(&ranges, false),
                v6: bpf::intervals(&ranges, true),
                sample_mask: sample_mask(control_sample),
            };
            let mut programs = Vec::with_capacity(LAYOUTS.len());
            for link in LAYOUTS {
                let program = bpf::program(&keep, link, snaplen_bytes)?;
                if program.len() > KERNEL_MAX_INSTRUCTIONS {
                    return None;
                }
                programs.push(program);
            }
            let widened_to = (step > 0).then_some(widths);
            Some(KernelFilter { keep, programs, ranges: ranges.len(), widened_to })
        })
    }

    #[cfg(test)]
    pub(super) fn keep(&self) -> &Keep {
        &self.keep
    }

    /// The merged address intervals the programs search.
    pub fn intervals(&self) -> usize {
        self.keep.v4.len() + self.keep.v6.len()
    }

    /// The program for a capture of `link`.
    pub fn program(&self, link: LinkType) -> &[Instruction] {
        let layout = match link {
            LinkType::Ethernet => 0,
            LinkType::LinuxSll | LinkType::LinuxSll2 => 1,
            LinkType::RawIp => 2,
            LinkType::Ipv4 => 3,
            LinkType::Ipv6 => 4,
        };
        self.programs.get(layout).map_or(&[], Vec::as_slice)
    }
}

/// A link type of each layout, in the order of [`KernelFilter`]'s programs.
const LAYOUTS: [LinkType; 5] =
    [LinkType::Ethernet, LinkType::LinuxSll, LinkType::RawIp, LinkType::Ipv4, LinkType::Ipv6];

/// Fibonacci hashing (Knuth, TAOCP vol. 3, 6.4): 2^32 divided by the golden ratio, odd. The
/// top bits of the product spread any arithmetic progression of inputs (sequential or
/// even-only client ports) evenly.
pub(super) const SAMPLE_MULTIPLIER: u32 = 0x9e37_79b1;

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

/// The catalogue's ranges cut to at most `(v4, v6)` prefix bits, those inside others left out.
fn widened(catalogue: &Catalogue, (v4, v6): (u8, u8)) -> Vec<Prefix> {
    prefix::outermost(
        catalogue
            .prefixes()
            .iter()
            .map(|p| {
                let len = p.len.min(if p.addr.is_ipv4() { v4 } else { v6 });
                let wide = Prefix { addr: p.addr, len };
                Prefix { addr: wide.network(), len }
            })
            .collect(),
    )
}

/// The filter in libpcap's syntax, as the daemon compiled it before it generated its own
/// program: the tests' oracle. `None` without sampling.
#[cfg(test)]
pub(super) fn expression(catalogue: &Catalogue, control_sample: u32) -> Option<String> {
    expression_of(&widened(catalogue, WIDENING[0]), control_sample)
}

/// The control sample in libpcap's syntax, given the expressions of the two port loads.
#[cfg(test)]
fn sample_clause(port_a: &str, port_b: &str, control_sample: u32) -> String {
    format!(
        "((({port_a} + {port_b}) * {SAMPLE_MULTIPLIER:#x}) & {:#x}) = 0",
        sample_mask(control_sample)
    )
}

#[cfg(test)]
pub(super) fn expression_of(ranges: &[Prefix], control_sample: u32) -> Option<String> {
    if control_sample <= 1 {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    let nets: Vec<String> = ranges.iter().map(|p| format!("net {p}")).collect();
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
    use std::net::IpAddr;

    fn catalogue(ranges: &str) -> Catalogue {
        let text = format!("[[service]]\nid = \"msg\"\nname = \"M\"\nranges = [{ranges}]\n");
        Catalogue::parse(&text, "test").unwrap()
    }

    #[test]
    fn no_filter_without_sampling() {
        let c = catalogue("\"198.51.100.10/32\"");
        assert_eq!(KernelFilter::build(&c, 1, 256), None);
        assert_eq!(expression(&c, 1), None);
        assert!(KernelFilter::build(&c, 2, 256).is_some());
    }

    /// Ranges inside others are left out; adjacent ones are merged into one interval.
    #[test]
    fn ranges_inside_others_are_left_out() {
        let c = catalogue(
            "\"10.0.0.0/8\", \"10.1.0.0/16\", \"11.0.0.0/8\", \"2001:db8::/32\", \"2001:db8:1::/48\"",
        );
        let f = expression(&c, 4).unwrap();
        assert!(
            f.starts_with("(net 10.0.0.0/8 or net 11.0.0.0/8 or net 2001:db8::/32) or port 53")
        );
        assert!(f.contains("* 0x9e3779b1) & 0xc0000000) = 0"), "{f}");
        let kernel = KernelFilter::build(&c, 4, 256).unwrap();
        assert_eq!((kernel.ranges, kernel.intervals(), kernel.widened_to), (3, 2, None));
        let v6 = 0x2001_0db8u128 << 96;
        assert_eq!(kernel.keep().v4, [(0x0a00_0000, 0x0bff_ffff)]);
        assert_eq!(kernel.keep().v6, [(v6, v6 | (u128::MAX >> 32))]);
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

    /// The kernel filter's program for Ethernet frames, run as the kernel runs it.
    struct Generated(Vec<Instruction>);

    impl Generated {
        fn new(control_sample: u32) -> Generated {
            let kernel =
                KernelFilter::build(&catalogue("\"198.51.100.10/32\""), control_sample, 256);
            Generated(kernel.unwrap().program(LinkType::Ethernet).to_vec())
        }

        fn filter(&self, frame: &[u8]) -> bool {
            bpf::tests::run(&self.0, frame, 0) > 0
        }
    }

    /// The sample keeps or drops whole flows: every packet of a flow, whatever its IP ID,
    /// header length or direction, gets the same answer, decided by its ports alone; the
    /// kernel filter answers as [`control_sampled`] does.
    #[test]
    fn the_control_sample_keeps_whole_flows() {
        let program = Generated::new(4);
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
    /// and without options, IPv6) pushed through the kernel filter: each answer equals the
    /// reference function's.
    #[test]
    fn the_kernel_filter_control_sample_is_unbiased() {
        for n in [2u32, 4, 8, 16, 32, 64] {
            let program = Generated::new(n);
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
                    println!("kernel filter: {choice} → {server}, 1/{n}: {share:.4}");
                    assert!(
                        within_binomial(sampled, ports.len(), n),
                        "{choice} → {server}: {share}"
                    );
                }
            }
        }
    }

    /// The built-in catalogue's ranges fit the kernel exactly, in a few milliseconds; a
    /// catalogue too big for it is widened until it fits, every exact range inside a widened
    /// one.
    #[test]
    fn the_filter_fits_the_kernel() {
        let builtin = Catalogue::builtin();
        let started = std::time::Instant::now();
        let kernel = KernelFilter::build(&builtin, 4, 256).unwrap();
        let took = started.elapsed();
        let ethernet = kernel.program(LinkType::Ethernet).len();
        println!(
            "built-in: {} ranges, {} intervals, {ethernet} instructions (ethernet), {took:?}",
            kernel.ranges,
            kernel.intervals(),
        );
        assert_eq!(kernel.widened_to, None);
        for link in LinkType::ALL {
            let program = kernel.program(link);
            assert!(program.len() <= ethernet, "{link:?}: {}", program.len());
            bpf::tests::kernel_accepts(program).unwrap();
        }
        // 1,200 single addresses, every other one of ten /24s: 1,200 intervals do not fit.
        let singles: Vec<String> =
            (0..1200).map(|i| format!("\"198.18.{}.{}/32\"", i / 120, 2 * (i % 120))).collect();
        let big = catalogue(&singles.join(", "));
        let widened = KernelFilter::build(&big, 4, 256).unwrap();
        assert_eq!(widened.widened_to, Some((24, 48)), "{}", widened.intervals());
        for link in LinkType::ALL {
            bpf::tests::kernel_accepts(widened.program(link)).unwrap();
        }
        for p in big.prefixes() {
            let IpAddr::V4(a) = p.addr else { panic!("{p}") };
            let a = u128::from(u32::from(a));
            assert!(widened.keep().v4.iter().any(|&(lo, hi)| lo <= a && a <= hi), "{p}");
        }
    }
}
