//! The compiled service catalogue (ARCHITECTURE.md): which flows belong to which messenger
//! service, answered on the per-packet path.
//!
//! A [`Catalogue`] is built with a [`CatalogueBuilder`] from typed, already validated values:
//! the catalogue's file format (TOML), its validation and the messages that name the file, the
//! service and the key live in the main crate (`classify::catalogue_file`), off the per-packet
//! path. What a catalogue matches, strongest first among addresses: a port-qualified rule, then
//! a plain range, the longer prefix winning, then the service listed first; beside addresses,
//! DNS domains, TLS server names, STUN message types, attributes and realms, and payload
//! signatures. Lookups allocate nothing.

use super::prefix::{Prefix, PrefixTrie};
use crate::decode::dns::in_domain;
use crate::decode::stun::StunMessage;
use crate::flow::{Endpoint, Proto};

/// Index of a service in its catalogue.
pub type ServiceId = u16;

/// A service's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub name: String,
}

/// Ports as inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

impl PortSet {
    /// Adds the ports `first..=last` (none if `first > last`).
    pub fn insert_range(&mut self, first: u16, last: u16) {
        self.0.push((first, last));
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&(first, last)| first > last)
    }

    fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
    }
}

/// A port-qualified match.
#[derive(Debug, Clone)]
struct Rule {
    service: ServiceId,
    proto: Option<Proto>,
    ports: PortSet,
}

impl Rule {
    fn matches(&self, proto: Proto, port: u16) -> bool {
        self.proto.is_none_or(|p| p == proto) && self.ports.contains(port)
    }
}

/// What an address prefix says: the service, plainly or only under a rule.
#[derive(Debug, Clone, Copy)]
struct RangeEntry {
    service: ServiceId,
    rule: Option<u32>,
}

/// The first payload bytes of a flow that tie it to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSignature {
    pub proto: Proto,
    /// (value, mask) per byte from the payload's start: a byte `b` matches if `b & mask ==
    /// value` (mask 0: any byte).
    pub pattern: Vec<(u8, u8)>,
    /// The exact payload length, if the signature names one, in bytes.
    pub length: Option<u32>,
    /// Either port of the flow must be one of these; empty: any port.
    pub ports: PortSet,
}

/// How strongly an address match ties a flow to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressMatch {
    /// Inside one of the service's ranges.
    Range,
    /// Inside a range (or anywhere, for port-only rules) on one of the rule's ports.
    Rule,
}

/// A compiled catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    source_name: String,
    services: Vec<Service>,
    ranges: PrefixTrie<RangeEntry>,
    /// Every prefix of the ranges, none inside another (for a capture filter).
    prefixes: Vec<Prefix>,
    rules: Vec<Rule>,
    port_only_rules: Vec<u32>,
    dns: Vec<(Vec<u8>, ServiceId)>,
    sni: Vec<(Vec<u8>, ServiceId)>,
    stun_types: Vec<(u16, ServiceId)>,
    stun_attributes: Vec<(u16, ServiceId)>,
    stun_realms: Vec<(Vec<u8>, ServiceId)>,
    payloads: Vec<(PayloadSignature, ServiceId)>,
    /// One bit per port named by a rule or payload signature: ports servers listen on.
    service_ports: Vec<u64>,
    warnings: Vec<String>,
}

impl Catalogue {
    /// Every address prefix the catalogue names, without those inside another one.
    pub fn prefixes(&self) -> &[Prefix] {
        &self.prefixes
    }

    /// Where the catalogue came from, for reports.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[usize::from(id)]
    }

    /// What its loader noted: things that load but are probably not what the author meant.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The service an endpoint's address (and port) belongs to: a rule beats a plain range,
    /// then the longer prefix wins, then the service listed first.
    pub fn match_endpoint(
        &self,
        proto: Proto,
        endpoint: Endpoint,
    ) -> Option<(ServiceId, AddressMatch)> {
        let mut best: Option<(AddressMatch, u8, ServiceId)> = None;
        let mut consider = |kind: AddressMatch, len: u8, service: ServiceId| {
            let better = match best {
                None => true,
                Some((k, l, s)) => (kind, len) > (k, l) || ((kind, len) == (k, l) && service < s),
            };
            if better {
                best = Some((kind, len, service));
            }
        };
        self.ranges.for_each_match(endpoint.addr, |len, entry| match entry.rule {
            None => consider(AddressMatch::Range, len, entry.service),
            Some(r) if self.rules[r as usize].matches(proto, endpoint.port) => {
                consider(AddressMatch::Rule, len, entry.service)
            }
            Some(_) => {}
        });
        for &r in &self.port_only_rules {
            let rule = &self.rules[r as usize];
            if rule.matches(proto, endpoint.port) {
                consider(AddressMatch::Rule, 0, rule.service);
            }
        }
        best.map(|(kind, _, service)| (service, kind))
    }

    /// The service whose DNS domains contain `name` (lowercase).
    pub fn match_dns_name(&self, name: &[u8]) -> Option<ServiceId> {
        self.dns.iter().find(|(d, _)| in_domain(name, d)).map(|(_, s)| *s)
    }

    /// The service whose TLS server names contain `name`.
    pub fn match_sni(&self, name: &[u8]) -> Option<ServiceId> {
        let mut lower = [0u8; 255];
        let n = name.len().min(lower.len());
        for (dst, src) in lower.iter_mut().zip(&name[..n]) {
            *dst = src.to_ascii_lowercase();
        }
        let name = &lower[..n];
        self.sni.iter().find(|(d, _)| in_domain(name, d)).map(|(_, s)| *s)
    }

    /// The service a STUN message's type, attributes or realm belong to.
    pub fn match_stun(&self, msg: &StunMessage<'_>) -> Option<ServiceId> {
        if let Some(&(_, s)) = self.stun_types.iter().find(|(t, _)| *t == msg.message_type) {
            return Some(s);
        }
        for (kind, _) in msg.attributes() {
            if let Some(&(_, s)) = self.stun_attributes.iter().find(|(a, _)| *a == kind) {
                return Some(s);
            }
        }
        let realm = msg.realm()?;
        self.stun_realms
            .iter()
            .find(|(needle, _)| contains_ignore_case(realm, needle))
            .map(|(_, s)| *s)
    }

    /// The service whose payload signature matches a flow's payload. `ports` are the flow's
    /// two ports.
    pub fn match_payload(
        &self,
        proto: Proto,
        payload: &[u8],
        payload_len: u32,
        ports: (u16, u16),
    ) -> Option<ServiceId> {
        self.payloads
            .iter()
            .find(|(sig, _)| {
                sig.proto == proto
                    && sig.length.is_none_or(|l| l == payload_len)
                    && (sig.ports.0.is_empty()
                        || sig.ports.contains(ports.0)
                        || sig.ports.contains(ports.1))
                    && payload.len() >= sig.pattern.len()
                    && sig.pattern.iter().zip(payload).all(|(&(v, m), &b)| b & m == v)
            })
            .map(|&(_, service)| service)
    }

    /// A port some service's server listens on (for deciding which side is the server).
    pub fn is_service_port(&self, port: u16) -> bool {
        self.service_ports[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Builds a [`Catalogue`] from validated values. Every `service` argument is an id that
/// [`CatalogueBuilder::add_service`] returned.
#[derive(Debug)]
pub struct CatalogueBuilder {
    source_name: String,
    services: Vec<Service>,
    ranges: Vec<(Prefix, RangeEntry)>,
    rules: Vec<Rule>,
    port_only_rules: Vec<u32>,
    dns: Vec<(Vec<u8>, ServiceId)>,
    sni: Vec<(Vec<u8>, ServiceId)>,
    stun_types: Vec<(u16, ServiceId)>,
    stun_attributes: Vec<(u16, ServiceId)>,
    stun_realms: Vec<(Vec<u8>, ServiceId)>,
    payloads: Vec<(PayloadSignature, ServiceId)>,
    service_ports: Vec<u64>,
    warnings: Vec<String>,
}

impl CatalogueBuilder {
    /// The most services a catalogue holds.
    pub const MAX_SERVICES: usize = ServiceId::MAX as usize;

    /// An empty catalogue; `source_name` says where it comes from (a file, "built-in").
    pub fn new(source_name: &str) -> Self {
        CatalogueBuilder {
            source_name: source_name.to_string(),
            services: Vec::new(),
            ranges: Vec::new(),
            rules: Vec::new(),
            port_only_rules: Vec::new(),
            dns: Vec::new(),
            sni: Vec::new(),
            stun_types: Vec::new(),
            stun_attributes: Vec::new(),
            stun_realms: Vec::new(),
            payloads: Vec::new(),
            // One bit per port.
            service_ports: vec![0; 1024],
            warnings: Vec::new(),
        }
    }

    /// Adds a service; None once [`Self::MAX_SERVICES`] are in.
    pub fn add_service(&mut self, service: Service) -> Option<ServiceId> {
        if self.services.len() >= Self::MAX_SERVICES {
            return None;
        }
        let id = self.services.len() as ServiceId;
        self.services.push(service);
        Some(id)
    }

    /// Addresses inside `prefix` belong to `service`.
    pub fn add_range(&mut self, service: ServiceId, prefix: Prefix) {
        self.ranges.push((prefix, RangeEntry { service, rule: None }));
    }

    /// Addresses inside `ranges` belong to `service` on `ports` (and `proto`, if given);
    /// without ranges, every address on those ports does. The ports become service ports.
    pub fn add_rule(
        &mut self,
        service: ServiceId,
        proto: Option<Proto>,
        ports: PortSet,
        ranges: Option<&[Prefix]>,
    ) {
        self.mark_ports(&ports);
        let index = self.rules.len() as u32;
        self.rules.push(Rule { service, proto, ports });
        match ranges {
            Some(ranges) => {
                for &prefix in ranges {
                    self.ranges.push((prefix, RangeEntry { service, rule: Some(index) }));
                }
            }
            None => self.port_only_rules.push(index),
        }
    }

    /// DNS answers for `domain` and its subdomains teach `service`'s server addresses.
    pub fn add_dns_domain(&mut self, service: ServiceId, domain: &str) {
        self.dns.push((domain.to_ascii_lowercase().into_bytes(), service));
    }

    /// TLS server names in `domain` (and its subdomains) belong to `service`.
    pub fn add_sni_domain(&mut self, service: ServiceId, domain: &str) {
        self.sni.push((domain.to_ascii_lowercase().into_bytes(), service));
    }

    /// STUN messages of this type belong to `service`.
    pub fn add_stun_message_type(&mut self, service: ServiceId, message_type: u16) {
        self.stun_types.push((message_type, service));
    }

    /// STUN messages with an attribute of this type belong to `service`.
    pub fn add_stun_attribute(&mut self, service: ServiceId, attribute_type: u16) {
        self.stun_attributes.push((attribute_type, service));
    }

    /// STUN messages whose REALM contains `realm` (in any case) belong to `service`.
    pub fn add_stun_realm(&mut self, service: ServiceId, realm: &str) {
        self.stun_realms.push((realm.to_ascii_lowercase().into_bytes(), service));
    }

    /// Flows whose first payload matches `signature` belong to `service`. Its ports become
    /// service ports.
    pub fn add_payload(&mut self, service: ServiceId, signature: PayloadSignature) {
        self.mark_ports(&signature.ports);
        self.payloads.push((signature, service));
    }

    /// Notes something that loads but is probably not what the author meant.
    pub fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    fn mark_ports(&mut self, ports: &PortSet) {
        for &(lo, hi) in &ports.0 {
            for p in lo..=hi {
                self.service_ports[usize::from(p / 64)] |= 1 << (p % 64);
            }
        }
    }

    pub fn finish(self) -> Catalogue {
        let outermost = super::prefix::outermost(self.ranges.iter().map(|(p, _)| *p).collect());
        Catalogue {
            source_name: self.source_name,
            services: self.services,
            ranges: PrefixTrie::build(self.ranges),
            prefixes: outermost,
            rules: self.rules,
            port_only_rules: self.port_only_rules,
            dns: self.dns,
            sni: self.sni,
            stun_types: self.stun_types,
            stun_attributes: self.stun_attributes,
            stun_realms: self.stun_realms,
            payloads: self.payloads,
            service_ports: self.service_ports,
            warnings: self.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::stun::fixtures::message as stun_message;
    use std::net::IpAddr;

    fn ep(addr: &str, port: u16) -> Endpoint {
        Endpoint::new(addr.parse::<IpAddr>().unwrap(), port)
    }

    fn prefix(text: &str) -> Prefix {
        Prefix::parse(text).unwrap()
    }

    fn service(builder: &mut CatalogueBuilder, id: &str) -> ServiceId {
        builder.add_service(Service { id: id.into(), name: id.to_uppercase() }).unwrap()
    }

    fn ports(ranges: &[(u16, u16)]) -> PortSet {
        let mut set = PortSet::default();
        for &(first, last) in ranges {
            set.insert_range(first, last);
        }
        set
    }

    #[test]
    fn rules_beat_ranges_and_longer_prefixes_win() {
        let mut b = CatalogueBuilder::new("t");
        let meta = service(&mut b, "meta");
        b.add_range(meta, prefix("31.13.64.0/18"));
        let wa = service(&mut b, "wa");
        b.add_range(wa, prefix("31.13.86.51/32"));
        b.add_rule(wa, Some(Proto::Tcp), ports(&[(5222, 5222)]), Some(&[prefix("31.13.64.0/18")]));
        let ft = service(&mut b, "ft");
        let udp = Some(Proto::Udp);
        b.add_rule(ft, udp, ports(&[(3478, 3497), (16384, 16384)]), Some(&[prefix("17.0.0.0/8")]));
        let c = b.finish();
        assert_eq!(c.source_name(), "t");
        assert_eq!(c.services().len(), 3);
        assert_eq!(
            c.match_endpoint(Proto::Tcp, ep("31.13.70.1", 443)),
            Some((meta, AddressMatch::Range))
        );
        assert_eq!(
            c.match_endpoint(Proto::Tcp, ep("31.13.70.1", 5222)),
            Some((wa, AddressMatch::Rule))
        );
        assert_eq!(
            c.match_endpoint(Proto::Udp, ep("31.13.70.1", 5222)),
            Some((meta, AddressMatch::Range))
        );
        assert_eq!(
            c.match_endpoint(Proto::Tcp, ep("31.13.86.51", 443)),
            Some((wa, AddressMatch::Range))
        );
        assert_eq!(
            c.match_endpoint(Proto::Udp, ep("17.1.2.3", 3490)),
            Some((ft, AddressMatch::Rule))
        );
        assert_eq!(c.match_endpoint(Proto::Udp, ep("17.1.2.3", 5223)), None);
        assert!(c.is_service_port(16384) && c.is_service_port(3478) && !c.is_service_port(3498));
        assert_eq!(c.prefixes(), [prefix("17.0.0.0/8"), prefix("31.13.64.0/18")]);
    }

    #[test]
    fn port_only_rules_match_every_address() {
        let mut b = CatalogueBuilder::new("t");
        let x = service(&mut b, "x");
        b.add_rule(x, Some(Proto::Udp), ports(&[(7985, 7985)]), None);
        let c = b.finish();
        assert_eq!(
            c.match_endpoint(Proto::Udp, ep("8.8.8.8", 7985)),
            Some((x, AddressMatch::Rule))
        );
        assert_eq!(c.match_endpoint(Proto::Tcp, ep("8.8.8.8", 7985)), None);
        assert!(c.prefixes().is_empty());
    }

    #[test]
    fn signatures() {
        let mut b = CatalogueBuilder::new("t");
        let wa = service(&mut b, "wa");
        b.add_dns_domain(wa, "whatsapp.net");
        b.add_sni_domain(wa, "WhatsApp.com");
        b.add_stun_message_type(wa, 0x0800);
        b.add_stun_attribute(wa, 0x4000);
        let any = (0, 0);
        let pattern = vec![(b'W', 0xff), (b'A', 0xff), (1, 0xff), any];
        let signature = PayloadSignature {
            proto: Proto::Tcp,
            pattern,
            length: None,
            ports: PortSet::default(),
        };
        b.add_payload(wa, signature);
        let signal = service(&mut b, "signal");
        b.add_stun_realm(signal, "Signal.org");
        let discord = service(&mut b, "discord");
        let pattern = vec![(0, 0xff), (1, 0xff), (0, 0xff), (0x46, 0xff)];
        let signature = PayloadSignature {
            proto: Proto::Udp,
            pattern,
            length: Some(74),
            ports: ports(&[(50_000, 50_100)]),
        };
        b.add_payload(discord, signature);
        let c = b.finish();
        assert_eq!(c.match_dns_name(b"e1.whatsapp.net"), Some(wa));
        assert_eq!(c.match_dns_name(b"whatsapp.network"), None);
        assert_eq!(c.match_sni(b"Web.WhatsApp.com"), Some(wa));
        assert_eq!(
            c.match_stun(&StunMessage::parse(&stun_message(0x0800, 1, &[]), 20).unwrap()),
            Some(wa)
        );
        let m = stun_message(0x0003, 1, &[(0x4000, &[0; 4])]);
        assert_eq!(c.match_stun(&StunMessage::parse(&m, m.len() as u32).unwrap()), Some(wa));
        let m = stun_message(0x0113, 1, &[(0x0014, b"turn.SIGNAL.org")]);
        assert_eq!(c.match_stun(&StunMessage::parse(&m, m.len() as u32).unwrap()), Some(signal));
        let m = stun_message(0x0001, 1, &[]);
        assert_eq!(c.match_stun(&StunMessage::parse(&m, m.len() as u32).unwrap()), None);
        assert_eq!(c.match_payload(Proto::Tcp, b"WA\x01\x05rest", 100, (1, 2)), Some(wa));
        assert_eq!(c.match_payload(Proto::Udp, b"WA\x01\x05rest", 100, (1, 2)), None);
        let mut disc = vec![0, 1, 0, 0x46];
        disc.resize(74, 0);
        assert_eq!(c.match_payload(Proto::Udp, &disc, 74, (40_000, 50_050)), Some(discord));
        assert_eq!(c.match_payload(Proto::Udp, &disc, 75, (40_000, 50_050)), None);
        assert_eq!(c.match_payload(Proto::Udp, &disc, 74, (40_000, 443)), None);
        assert!(c.is_service_port(50_100) && !c.is_service_port(50_101));
    }

    #[test]
    fn service_ids_are_bounded() {
        let mut b = CatalogueBuilder::new("t");
        for _ in 0..CatalogueBuilder::MAX_SERVICES {
            assert!(b.add_service(Service { id: "s".into(), name: "S".into() }).is_some());
        }
        assert_eq!(b.add_service(Service { id: "s".into(), name: "S".into() }), None);
        let c = b.finish();
        assert_eq!(c.service(ServiceId::MAX - 1).id, "s");
    }

    #[test]
    fn warnings_are_kept() {
        let mut b = CatalogueBuilder::new("t");
        b.warn("careful".into());
        assert_eq!(b.finish().warnings(), ["careful"]);
    }
}
