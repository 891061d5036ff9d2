//! The service catalogue (ARCHITECTURE.md): which flows belong to which messenger service.
//!
//! A TOML file of `[[service]]` tables. The minimal form, which every version keeps accepting:
//!
//! ```toml
//! [[service]]
//! id = "msg"
//! name = "Lab messenger"
//! ranges = ["198.51.100.10/32"]
//! ```
//!
//! Optional matchers, for what address ranges cannot tell (peer-to-peer call legs, relays on
//! shared clouds):
//!
//! ```toml
//! dns = ["whatsapp.net"]             # answers for these domains teach server addresses
//! sni = ["whatsapp.net"]             # TLS ClientHello server names (and subdomains)
//! stun_message_types = [0x0800]      # STUN message types only this service uses
//! stun_attributes = [0x4000]         # STUN attribute types only this service uses
//! stun_realms = ["signal.org"]       # text contained in a STUN REALM (any case)
//!
//! [[service.rule]]                   # addresses that count only on some ports
//! proto = "tcp"                      # "tcp", "udp", or absent for both
//! ports = [5222, "3478-3481"]        # server ports
//! ranges = ["157.240.0.0/16"]        # absent: the ports alone decide (weak, avoid)
//!
//! [[service.payload]]                # first payload bytes of a flow
//! proto = "udp"
//! hex = "00010046"                   # "??" matches any byte
//! length = 74                        # exact payload length, optional
//! ports = ["50000-50100"]            # either port, optional
//! ```
//!
//! Loading validates everything and names the file, the service and the key in its errors.

use std::path::Path;

use serde::Deserialize;

use super::prefix::{Prefix, PrefixTrie};
use crate::decode::dns::in_domain;
use crate::decode::stun::StunMessage;
use crate::flow::{Endpoint, Proto};

/// Index of a service in its catalogue.
pub type ServiceId = u16;

/// The catalogue that ships with throttlewatch (`data/services.toml`).
pub const BUILTIN: &str = include_str!("../../../data/services.toml");

/// A service's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub name: String,
}

/// A catalogue that failed to load.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct CatalogueError {
    pub source_name: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    service: Vec<ServiceFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFormat {
    id: String,
    name: String,
    #[serde(default)]
    ranges: Vec<String>,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    sni: Vec<String>,
    #[serde(default)]
    stun_message_types: Vec<u16>,
    #[serde(default)]
    stun_attributes: Vec<u16>,
    #[serde(default)]
    stun_realms: Vec<String>,
    #[serde(default)]
    rule: Vec<RuleFormat>,
    #[serde(default)]
    payload: Vec<PayloadFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFormat {
    proto: Option<String>,
    ports: Vec<PortFormat>,
    ranges: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadFormat {
    proto: String,
    hex: String,
    length: Option<u32>,
    #[serde(default)]
    ports: Vec<PortFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PortFormat {
    One(u16),
    Text(String),
}

/// Ports as inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PortSet(Vec<(u16, u16)>);

impl PortSet {
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

#[derive(Debug, Clone)]
struct PayloadSignature {
    service: ServiceId,
    proto: Proto,
    /// (value, mask) per byte.
    pattern: Vec<(u8, u8)>,
    length: Option<u32>,
    ports: PortSet,
}

/// How strongly an address match ties a flow to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressMatch {
    /// Inside one of the service's ranges.
    Range,
    /// Inside a range (or anywhere, for port-only rules) on one of the rule's ports.
    Rule,
}

/// A loaded, validated catalogue.
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
    payloads: Vec<PayloadSignature>,
    /// One bit per port named by a rule or payload signature: ports servers listen on.
    service_ports: Vec<u64>,
    warnings: Vec<String>,
}

impl Catalogue {
    /// Every address prefix the catalogue names, without those inside another one.
    pub fn prefixes(&self) -> &[Prefix] {
        &self.prefixes
    }

    /// The shipped catalogue.
    pub fn builtin() -> Catalogue {
        Catalogue::parse(BUILTIN, "built-in (data/services.toml)")
            .expect("the shipped catalogue is valid (checked by its unit test)")
    }

    pub fn from_file(path: &Path) -> Result<Catalogue, CatalogueError> {
        let text = std::fs::read_to_string(path).map_err(|e| CatalogueError {
            source_name: path.display().to_string(),
            message: format!("cannot read the service catalogue: {e}"),
        })?;
        Catalogue::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Catalogue, CatalogueError> {
        let err =
            |message: String| CatalogueError { source_name: source_name.to_string(), message };
        let file: FileFormat = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if file.service.is_empty() {
            return Err(err(
                "no [[service]] tables: the catalogue must name at least one service".into()
            ));
        }
        if file.service.len() > usize::from(ServiceId::MAX) {
            return Err(err(format!(
                "{} services is more than the {} supported",
                file.service.len(),
                ServiceId::MAX
            )));
        }
        // One bit per port.
        let mut builder = Builder { service_ports: vec![0; 1024], ..Builder::default() };
        for (i, service) in file.service.into_iter().enumerate() {
            let what = format!("service #{} ('{}')", i + 1, service.id);
            builder.add(i as ServiceId, service).map_err(|m| err(format!("{what}: {m}")))?;
        }
        Ok(builder.finish(source_name))
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

    /// Things that load but are probably not what the author meant.
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
            .find(|sig| {
                sig.proto == proto
                    && sig.length.is_none_or(|l| l == payload_len)
                    && (sig.ports.0.is_empty()
                        || sig.ports.contains(ports.0)
                        || sig.ports.contains(ports.1))
                    && payload.len() >= sig.pattern.len()
                    && sig.pattern.iter().zip(payload).all(|(&(v, m), &b)| b & m == v)
            })
            .map(|sig| sig.service)
    }

    /// A port some service's server listens on (for deciding which side is the server).
    pub fn is_service_port(&self, port: u16) -> bool {
        self.service_ports[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

#[derive(Default)]
struct Builder {
    services: Vec<Service>,
    ranges: Vec<(Prefix, RangeEntry)>,
    rules: Vec<Rule>,
    port_only_rules: Vec<u32>,
    dns: Vec<(Vec<u8>, ServiceId)>,
    sni: Vec<(Vec<u8>, ServiceId)>,
    stun_types: Vec<(u16, ServiceId)>,
    stun_attributes: Vec<(u16, ServiceId)>,
    stun_realms: Vec<(Vec<u8>, ServiceId)>,
    payloads: Vec<PayloadSignature>,
    service_ports: Vec<u64>,
    warnings: Vec<String>,
}

impl Builder {
    fn add(&mut self, sid: ServiceId, s: ServiceFormat) -> Result<(), String> {
        if s.id.is_empty()
            || !s
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(format!("id '{}' must be lowercase letters, digits, '_' or '-'", s.id));
        }
        if self.services.iter().any(|other| other.id == s.id) {
            return Err(format!("id '{}' is used by an earlier service", s.id));
        }
        if s.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        let matches_something = !(s.ranges.is_empty()
            && s.dns.is_empty()
            && s.sni.is_empty()
            && s.stun_message_types.is_empty()
            && s.stun_attributes.is_empty()
            && s.stun_realms.is_empty()
            && s.rule.is_empty()
            && s.payload.is_empty());
        if !matches_something {
            return Err("matches nothing: give ranges or at least one matcher".into());
        }
        for text in &s.ranges {
            let prefix = Prefix::parse(text).map_err(|m| format!("ranges: {m}"))?;
            self.ranges.push((prefix, RangeEntry { service: sid, rule: None }));
        }
        for name in &s.dns {
            self.dns.push((domain(name).map_err(|m| format!("dns: {m}"))?, sid));
        }
        for name in &s.sni {
            self.sni.push((domain(name).map_err(|m| format!("sni: {m}"))?, sid));
        }
        for t in &s.stun_message_types {
            if t & 0xc000 != 0 {
                return Err(format!(
                    "stun_message_types: {t:#06x} has one of the top two bits set, which no STUN message has"
                ));
            }
            self.stun_types.push((*t, sid));
        }
        self.stun_attributes.extend(s.stun_attributes.iter().map(|a| (*a, sid)));
        for realm in &s.stun_realms {
            if realm.is_empty() {
                return Err("stun_realms: an empty realm would match every REALM".into());
            }
            self.stun_realms.push((realm.to_ascii_lowercase().into_bytes(), sid));
        }
        for (i, rule) in s.rule.iter().enumerate() {
            self.add_rule(sid, &s.id, rule).map_err(|m| format!("rule #{}: {m}", i + 1))?;
        }
        for (i, p) in s.payload.iter().enumerate() {
            let sig = payload(sid, p).map_err(|m| format!("payload #{}: {m}", i + 1))?;
            self.mark_ports(&sig.ports);
            self.payloads.push(sig);
        }
        self.services.push(Service { id: s.id, name: s.name });
        Ok(())
    }

    fn add_rule(&mut self, sid: ServiceId, id: &str, rule: &RuleFormat) -> Result<(), String> {
        let proto = rule.proto.as_deref().map(proto).transpose()?;
        let ports = ports(&rule.ports)?;
        if ports.0.is_empty() {
            return Err("ports must name at least one port".into());
        }
        self.mark_ports(&ports);
        let index = self.rules.len() as u32;
        self.rules.push(Rule { service: sid, proto, ports });
        match &rule.ranges {
            Some(ranges) => {
                for text in ranges {
                    let prefix = Prefix::parse(text).map_err(|m| format!("ranges: {m}"))?;
                    self.ranges.push((prefix, RangeEntry { service: sid, rule: Some(index) }));
                }
            }
            None => {
                self.port_only_rules.push(index);
                self.warnings.push(format!(
                    "service '{id}': a rule without ranges matches every address on its ports"
                ));
            }
        }
        Ok(())
    }

    fn mark_ports(&mut self, ports: &PortSet) {
        for &(lo, hi) in &ports.0 {
            for p in lo..=hi {
                self.service_ports[usize::from(p / 64)] |= 1 << (p % 64);
            }
        }
    }

    fn finish(self, source_name: &str) -> Catalogue {
        let mut prefixes: Vec<Prefix> = self.ranges.iter().map(|(p, _)| *p).collect();
        // Shorter prefixes first, so that a prefix meets every prefix that could contain it.
        prefixes.sort_by_key(|p| (p.addr.is_ipv6(), p.len, p.addr));
        let mut outermost: Vec<Prefix> = Vec::new();
        for p in prefixes {
            if !outermost.iter().any(|o| o.contains(p.addr) && o.len <= p.len) {
                outermost.push(p);
            }
        }
        Catalogue {
            source_name: source_name.to_string(),
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

fn proto(text: &str) -> Result<Proto, String> {
    match text {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        other => Err(format!("proto '{other}' must be \"tcp\" or \"udp\"")),
    }
}

fn ports(list: &[PortFormat]) -> Result<PortSet, String> {
    let mut set = PortSet::default();
    for p in list {
        let range = match p {
            PortFormat::One(p) => (*p, *p),
            PortFormat::Text(t) => {
                let parse = |s: &str| {
                    s.trim().parse::<u16>().map_err(|_| format!("port '{t}' is not a port or a range like \"3478-3481\" (ports are 0..=65535)"))
                };
                match t.split_once('-') {
                    Some((lo, hi)) => (parse(lo)?, parse(hi)?),
                    None => (parse(t)?, parse(t)?),
                }
            }
        };
        if range.0 > range.1 {
            return Err(format!("port range {}-{} runs backwards", range.0, range.1));
        }
        set.0.push(range);
    }
    Ok(set)
}

fn domain(name: &str) -> Result<Vec<u8>, String> {
    let d = name.trim().trim_start_matches("*.").trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty()
        || d.len() > 253
        || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(format!("'{name}' is not a domain name"));
    }
    Ok(d.into_bytes())
}

fn payload(sid: ServiceId, p: &PayloadFormat) -> Result<PayloadSignature, String> {
    let hex = p.hex.replace(' ', "");
    if hex.is_empty() || !hex.len().is_multiple_of(2) || hex.len() > 128 {
        return Err(format!(
            "hex '{}' must be 1 to 64 bytes written as pairs of hex digits or '??'",
            p.hex
        ));
    }
    let mut pattern = Vec::with_capacity(hex.len() / 2);
    for pair in hex.as_bytes().chunks(2) {
        let pair = std::str::from_utf8(pair).unwrap_or("");
        if pair == "??" {
            pattern.push((0, 0));
        } else {
            let v = u8::from_str_radix(pair, 16)
                .map_err(|_| format!("hex '{}': '{pair}' is not a byte", p.hex))?;
            pattern.push((v, 0xff));
        }
    }
    if pattern.iter().all(|(_, m)| *m == 0) {
        return Err(format!("hex '{}' would match any payload", p.hex));
    }
    Ok(PayloadSignature {
        service: sid,
        proto: proto(&p.proto)?,
        pattern,
        length: p.length,
        ports: ports(&p.ports)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::stun::fixtures::message as stun_message;
    use std::net::IpAddr;

    const MINIMAL: &str = r#"
        [[service]]
        id = "msg"
        name = "Lab messenger"
        ranges = ["198.51.100.10/32"]
    "#;

    fn ep(addr: &str, port: u16) -> Endpoint {
        Endpoint::new(addr.parse::<IpAddr>().unwrap(), port)
    }

    #[test]
    fn minimal_format_is_accepted() {
        let c = Catalogue::parse(MINIMAL, "lab.toml").unwrap();
        assert_eq!(c.services(), [Service { id: "msg".into(), name: "Lab messenger".into() }]);
        assert_eq!(
            c.match_endpoint(Proto::Tcp, ep("198.51.100.10", 1)),
            Some((0, AddressMatch::Range))
        );
        assert_eq!(c.match_endpoint(Proto::Udp, ep("198.51.100.11", 1)), None);
        assert!(c.warnings().is_empty());
    }

    #[test]
    fn builtin_catalogue_loads() {
        let c = Catalogue::builtin();
        let ids: Vec<&str> = c.services().iter().map(|s| s.id.as_str()).collect();
        for want in [
            "whatsapp",
            "telegram",
            "signal",
            "facetime",
            "viber",
            "discord",
            "teams",
            "zoom",
            "google_meet",
        ] {
            assert!(ids.contains(&want), "{want} missing from {ids:?}");
        }
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[test]
    fn rules_beat_ranges_and_longer_prefixes_win() {
        let c = Catalogue::parse(
            r#"
            [[service]]
            id = "meta"
            name = "Meta"
            ranges = ["31.13.64.0/18"]
            [[service]]
            id = "wa"
            name = "WhatsApp"
            ranges = ["31.13.86.51/32"]
            [[service.rule]]
            proto = "tcp"
            ports = [5222]
            ranges = ["31.13.64.0/18"]
            [[service]]
            id = "ft"
            name = "FaceTime"
            [[service.rule]]
            proto = "udp"
            ports = ["3478-3497", 16384]
            ranges = ["17.0.0.0/8"]
            "#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.match_endpoint(Proto::Tcp, ep("31.13.70.1", 443)),
            Some((0, AddressMatch::Range))
        );
        assert_eq!(
            c.match_endpoint(Proto::Tcp, ep("31.13.70.1", 5222)),
            Some((1, AddressMatch::Rule))
        );
        assert_eq!(
            c.match_endpoint(Proto::Udp, ep("31.13.70.1", 5222)),
            Some((0, AddressMatch::Range))
        );
        assert_eq!(
            c.match_endpoint(Proto::Tcp, ep("31.13.86.51", 443)),
            Some((1, AddressMatch::Range))
        );
        assert_eq!(
            c.match_endpoint(Proto::Udp, ep("17.1.2.3", 3490)),
            Some((2, AddressMatch::Rule))
        );
        assert_eq!(c.match_endpoint(Proto::Udp, ep("17.1.2.3", 5223)), None);
        assert!(c.is_service_port(16384) && c.is_service_port(3478) && !c.is_service_port(3498));
    }

    #[test]
    fn signatures() {
        let c = Catalogue::parse(
            r#"
            [[service]]
            id = "wa"
            name = "WhatsApp"
            dns = ["whatsapp.net"]
            sni = ["*.whatsapp.com"]
            stun_message_types = [0x0800]
            stun_attributes = [0x4000]
            [[service.payload]]
            proto = "tcp"
            hex = "5741 01 ??"
            [[service]]
            id = "signal"
            name = "Signal"
            stun_realms = ["Signal.org"]
            [[service]]
            id = "discord"
            name = "Discord"
            [[service.payload]]
            proto = "udp"
            hex = "00010046"
            length = 74
            "#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.match_dns_name(b"e1.whatsapp.net"), Some(0));
        assert_eq!(c.match_dns_name(b"whatsapp.network"), None);
        assert_eq!(c.match_sni(b"Web.WhatsApp.com"), Some(0));
        assert_eq!(
            c.match_stun(&StunMessage::parse(&stun_message(0x0800, 1, &[]), 20).unwrap()),
            Some(0)
        );
        let m = stun_message(0x0003, 1, &[(0x4000, &[0; 4])]);
        assert_eq!(c.match_stun(&StunMessage::parse(&m, m.len() as u32).unwrap()), Some(0));
        let m = stun_message(0x0113, 1, &[(0x0014, b"turn.SIGNAL.org")]);
        assert_eq!(c.match_stun(&StunMessage::parse(&m, m.len() as u32).unwrap()), Some(1));
        let m = stun_message(0x0001, 1, &[]);
        assert_eq!(c.match_stun(&StunMessage::parse(&m, m.len() as u32).unwrap()), None);
        assert_eq!(c.match_payload(Proto::Tcp, b"WA\x01\x05rest", 100, (1, 2)), Some(0));
        assert_eq!(c.match_payload(Proto::Udp, b"WA\x01\x05rest", 100, (1, 2)), None);
        let mut disc = vec![0, 1, 0, 0x46];
        disc.resize(74, 0);
        assert_eq!(c.match_payload(Proto::Udp, &disc, 74, (1, 2)), Some(2));
        assert_eq!(c.match_payload(Proto::Udp, &disc, 75, (1, 2)), None);
    }

    #[test]
    fn errors_name_the_service_and_key() {
        let cases = [
            (
                r#"[[service]]
id = "x"
name = "X"
ranges = ["1.2.3.4/40"]"#,
                "service #1 ('x'): ranges: '1.2.3.4/40': prefix length must be 0..=32",
            ),
            (
                r#"[[service]]
id = "X"
name = "X"
ranges = []"#,
                "id 'X' must be lowercase",
            ),
            (
                r#"[[service]]
id = "x"
name = "X""#,
                "matches nothing",
            ),
            (
                r#"[[service]]
id = "x"
name = "X"
ranges = ["1.0.0.0/8"]
[[service]]
id = "x"
name = "Y"
ranges = ["2.0.0.0/8"]"#,
                "service #2 ('x'): id 'x' is used by an earlier service",
            ),
            (
                r#"[[service]]
id = "x"
name = "X"
[[service.rule]]
ports = ["99999"]
ranges = ["1.0.0.0/8"]"#,
                "rule #1: port '99999' is not a port",
            ),
            (
                r#"[[service]]
id = "x"
name = "X"
[[service.payload]]
proto = "udp"
hex = "zz""#,
                "payload #1: hex 'zz': 'zz' is not a byte",
            ),
            (
                r#"[[service]]
id = "x"
name = "X"
colour = "red""#,
                "unknown field `colour`",
            ),
            ("", "no [[service]] tables"),
        ];
        for (text, want) in cases {
            let e = Catalogue::parse(text, "bad.toml").unwrap_err().to_string();
            assert!(e.starts_with("bad.toml: "), "{e}");
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }

    #[test]
    fn port_only_rules_warn() {
        let c = Catalogue::parse(
            "[[service]]\nid = \"x\"\nname = \"X\"\n[[service.rule]]\nproto = \"udp\"\nports = [7985]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.match_endpoint(Proto::Udp, ep("8.8.8.8", 7985)),
            Some((0, AddressMatch::Rule))
        );
        assert_eq!(c.warnings().len(), 1);
    }
}
