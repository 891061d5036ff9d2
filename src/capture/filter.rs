//! The kernel filter of a live capture (ARCHITECTURE.md): every packet that can belong to a
//! service, and one flow in `control_sample` of the rest as control traffic.
//!
//! Kept: the catalogue's address ranges, DNS (answers teach the classifier), STUN (call
//! signalling, also on relays outside the ranges), ICMP (errors about any flow), and TCP/UDP
//! flows whose port sum is a multiple of the sample: the sum is the same in both directions, so
//! a sampled flow is seen whole. With a sample of 1 there is no filter at all.

use crate::classify::Catalogue;
use crate::classify::prefix::Prefix;

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

fn widened(catalogue: &Catalogue, control_sample: u32, (v4, v6): (u8, u8)) -> Option<String> {
    if control_sample <= 1 {
        return None;
    }
    let mask = control_sample - 1;
    let mut parts: Vec<String> = Vec::new();
    let mut prefixes: Vec<Prefix> = catalogue
        .prefixes()
        .iter()
        .map(|p| {
            let len = p.len.min(if p.addr.is_ipv4() { v4 } else { v6 });
            let wide = Prefix { addr: p.addr, len };
            Prefix { addr: wide.network(), len }
        })
        .collect();
    prefixes.sort_by_key(|p| (p.addr.is_ipv6(), p.len, p.addr));
    prefixes.dedup();
    let mut outermost: Vec<Prefix> = Vec::new();
    for p in prefixes {
        if !outermost.iter().any(|o| o.contains(p.addr) && o.len <= p.len) {
            outermost.push(p);
        }
    }
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
    parts.push(format!(
        "(ip and (tcp or udp) and ((ip[(ip[0] & 0xf) << 2 : 2] + ip[((ip[0] & 0xf) << 2) + 2 : 2]) \
         & {mask}) = 0)"
    ));
    // IPv6 without extension headers: TCP (6) or UDP (17) right after the fixed header.
    parts.push(format!(
        "(ip6 and (ip6[6] = 6 or ip6[6] = 17) and ((ip6[40:2] + ip6[42:2]) & {mask}) = 0)"
    ));
    Some(parts.join(" or "))
}

/// The narrow filter of the full-size classification capture (ARCHITECTURE.md): DNS answers, STUN
/// messages, and TLS handshake records holding a ClientHello (IPv4: libpcap cannot index
/// TCP payloads behind IPv6 headers). Their full copies go to the classifier only.
pub fn classification_expression() -> String {
    format!(
        "udp src port 53 or {STUN} \
         or (ip and tcp \
             and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) >= 6 \
             and tcp[((tcp[12] & 0xf0) >> 2)] = 0x16 and tcp[((tcp[12] & 0xf0) >> 2) + 5] = 1)"
    )
}

/// A STUN message over IPv4, its length checked before its header is read.
const STUN: &str =
    "(ip and udp and udp[4:2] >= 28 and udp[8] & 0xc0 = 0 and udp[12:4] = 0x2112a442)";

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(f.contains("& 3) = 0"), "{f}");
    }

    #[test]
    fn the_classification_filter_compiles() {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let n = dead.compile(&classification_expression(), true).unwrap().get_instructions().len();
        assert!(n < 100, "{n}");
    }

    /// The sample keeps or drops whole flows: every packet of a flow, whatever its IP ID,
    /// header length or direction, gets the same answer, decided by the sum of its ports.
    #[test]
    fn the_control_sample_keeps_whole_flows() {
        let f = expression(&catalogue("\"198.51.100.10/32\""), 4).unwrap();
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let program = dead.compile(&f, true).unwrap();
        let frame = |sport: u16, dport: u16, ip_id: u16, options: usize| {
            let mut ip = vec![0x45 + (options / 4) as u8, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
            ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
            ip.extend_from_slice(&[192, 168, 1, 2, 203, 0, 113, 9]);
            ip.extend(std::iter::repeat_n(1u8, options)); // NOP options
            let mut udp = sport.to_be_bytes().to_vec();
            udp.extend_from_slice(&dport.to_be_bytes());
            udp.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
            let total = (ip.len() + udp.len()) as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            let mut eth = vec![0u8; 12];
            eth.extend_from_slice(&[0x08, 0x00]);
            eth.extend(ip);
            eth.extend(udp);
            eth
        };
        for id in [0u16, 1, 2, 3, 0x1234, 0xffff] {
            for options in [0, 4, 8] {
                // 40000 + 12 is a multiple of 4; 40001 + 12 is not.
                assert!(program.filter(&frame(40000, 12, id, options)), "kept: id {id}");
                assert!(program.filter(&frame(12, 40000, id, options)), "both ways: id {id}");
                assert!(!program.filter(&frame(40001, 12, id, options)), "dropped: id {id}");
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
