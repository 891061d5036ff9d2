//! Longest-prefix lookups of IPv4 and IPv6 addresses: a binary trie per family that reports
//! every prefix on the path to an address, so callers can weigh a specific prefix against a
//! port-qualified broader one. Built once from the catalogue; lookups do not allocate.

use std::cmp::Ordering;
use std::net::IpAddr;

/// An IP prefix (CIDR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    /// Parse `a.b.c.d/n`, `x:y::/n` or a bare address (a host prefix). Host bits must be zero.
    pub fn parse(text: &str) -> Result<Prefix, String> {
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not an IPv4 or IPv6 prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len_text {
            None => max,
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("'{text}': prefix length must be 0..={max}"))?,
        };
        let prefix = Prefix { addr, len };
        let masked = prefix.network();
        if masked != addr {
            return Err(format!("'{text}' has host bits set (the network is {masked}/{len})"));
        }
        Ok(prefix)
    }

    /// Whether `addr` lies inside the prefix (same family, same network bits).
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.addr.is_ipv4()
            && Prefix { addr, len: self.len }.network() == self.addr
    }

    /// The address with the host bits cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.len)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    child: [u32; 2],
    /// Range into `PrefixTrie::values` of the values stored at this node.
    values: (u32, u32),
}

#[derive(Debug, Clone)]
struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    fn new() -> Self {
        Trie { nodes: vec![Node { child: [NIL; 2], values: (0, 0) }] }
    }
}

/// The prefixes that no other in `prefixes` contains (duplicates once), shorter ones first
/// (by family, length, address).
pub fn outermost(mut prefixes: Vec<Prefix>) -> Vec<Prefix> {
    // In address order, a prefix comes after every prefix that contains it, and the ones kept
    // do not overlap: a prefix inside any kept one is inside the last one kept. One pass.
    // Both sorts through one comparator type: the sort is in the binary once.
    type Order = fn(&Prefix, &Prefix) -> Ordering;
    let by_address: Order = |a, b| (a.addr, a.len).cmp(&(b.addr, b.len));
    let by_length: Order =
        |a, b| (a.addr.is_ipv6(), a.len, a.addr).cmp(&(b.addr.is_ipv6(), b.len, b.addr));
    prefixes.sort_unstable_by(by_address);
    let mut outer: Vec<Prefix> = Vec::new();
    for p in prefixes {
        if !outer.last().is_some_and(|o| o.contains(p.addr) && o.len <= p.len) {
            outer.push(p);
        }
    }
    outer.sort_unstable_by(by_length);
    outer
}

/// Prefix → values, for both families.
#[derive(Debug, Clone)]
pub struct PrefixTrie<V> {
    v4: Trie,
    v6: Trie,
    values: Vec<V>,
}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

impl<V: Clone> PrefixTrie<V> {
    /// Build from (prefix, value) pairs. A prefix may carry several values.
    pub fn build(mut entries: Vec<(Prefix, V)>) -> Self {
        // Group the values of a node together, each prefix's in the order given (an unstable
        // sort with the position as the last key: less code than a stable sort).
        let mut keyed: Vec<(IpAddr, u8, usize, V)> = Vec::with_capacity(entries.len());
        keyed.extend(entries.drain(..).enumerate().map(|(i, (p, v))| (p.addr, p.len, i, v)));
        keyed.sort_unstable_by_key(|e| (e.0, e.1, e.2));
        entries.extend(keyed.into_iter().map(|(addr, len, _, v)| (Prefix { addr, len }, v)));
        let mut trie = PrefixTrie { v4: Trie::new(), v6: Trie::new(), values: Vec::new() };
        for (prefix, value) in entries {
            let (addr_bits, _) = bits(prefix.addr);
            let t = if prefix.addr.is_ipv4() { &mut trie.v4 } else { &mut trie.v6 };
            let mut node = 0usize;
            for i in 0..prefix.len {
                let bit = ((addr_bits >> (127 - i)) & 1) as usize;
                if t.nodes[node].child[bit] == NIL {
                    t.nodes.push(Node { child: [NIL; 2], values: (0, 0) });
                    let new = (t.nodes.len() - 1) as u32;
                    t.nodes[node].child[bit] = new;
                }
                node = t.nodes[node].child[bit] as usize;
            }
            let at = trie.values.len() as u32;
            let v = &mut t.nodes[node].values;
            if v.0 == v.1 {
                *v = (at, at + 1);
            } else {
                // Sorted input: this node's values are the last ones pushed.
                v.1 = at + 1;
            }
            trie.values.push(value);
        }
        trie
    }

    /// Call `f(prefix_len, value)` for every stored prefix containing `addr`, shortest first.
    pub fn for_each_match(&self, addr: IpAddr, mut f: impl FnMut(u8, &V)) {
        let (addr_bits, width) = bits(addr);
        let t = if addr.is_ipv4() { &self.v4 } else { &self.v6 };
        let mut node = 0usize;
        for depth in 0..=width {
            let (from, to) = t.nodes[node].values;
            for v in &self.values[from as usize..to as usize] {
                f(depth, v);
            }
            if depth == width {
                break;
            }
            let bit = ((addr_bits >> (127 - depth)) & 1) as usize;
            match t.nodes[node].child[bit] {
                NIL => break,
                next => node = next as usize,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    fn matches(t: &PrefixTrie<&'static str>, a: &str) -> Vec<(u8, &'static str)> {
        let mut out = Vec::new();
        t.for_each_match(a.parse().unwrap(), |len, v| out.push((len, *v)));
        out
    }

    #[test]
    fn outermost_drops_contained_and_duplicates() {
        let list = |texts: &[&str]| texts.iter().map(|t| p(t)).collect::<Vec<_>>();
        let given = list(&[
            "10.1.2.0/24",
            "2001:db8:1::/48",
            "10.0.0.0/8",
            "192.0.2.0/24",
            "10.0.0.0/8",
            "11.0.0.0/16",
            "192.0.2.128/25",
            "2001:db8::/32",
            "11.0.0.0/8",
            "10.255.0.0/16",
        ]);
        let want = list(&["10.0.0.0/8", "11.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]);
        assert_eq!(outermost(given), want);
    }

    #[test]
    fn parse_prefixes() {
        assert_eq!(p("10.0.0.0/8").len, 8);
        assert_eq!(p("192.0.2.7").len, 32);
        assert_eq!(p("2001:db8::/32").len, 32);
        assert!(Prefix::parse("10.0.0.1/8").unwrap_err().contains("host bits"));
        assert!(Prefix::parse("10.0.0.0/33").unwrap_err().contains("0..=32"));
        assert!(Prefix::parse("foo/8").unwrap_err().contains("not an IPv4"));
        assert_eq!(p("0.0.0.0/0").len, 0);
    }

    #[test]
    fn all_matches_on_the_path() {
        let t = PrefixTrie::build(vec![
            (p("31.13.64.0/18"), "meta"),
            (p("31.13.86.51/32"), "whatsapp"),
            (p("31.13.64.0/18"), "meta-rule"),
            (p("2a03:2880::/29"), "meta6"),
            (p("0.0.0.0/0"), "default"),
        ]);
        assert_eq!(
            matches(&t, "31.13.86.51"),
            [(0, "default"), (18, "meta"), (18, "meta-rule"), (32, "whatsapp")]
        );
        assert_eq!(matches(&t, "31.13.86.52"), [(0, "default"), (18, "meta"), (18, "meta-rule")]);
        assert_eq!(matches(&t, "8.8.8.8"), [(0, "default")]);
        assert_eq!(matches(&t, "2a03:2880:f12f:83:face:b00c:0:25de"), [(29, "meta6")]);
        assert!(matches(&t, "2001:db8::1").is_empty());
    }
}
