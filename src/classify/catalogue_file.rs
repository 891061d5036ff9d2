//! The service catalogue's file format (ARCHITECTURE.md): which flows belong to which
//! messenger service.
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
//! sni = ["whatsapp.net"]             # ClientHello server names, TLS and QUIC (and subdomains)
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
//! Loading validates everything and names the file, the service and the key in its errors;
//! what loads but is probably a mistake becomes one of the catalogue's warnings. The result is
//! the core crate's compiled [`Catalogue`], which the per-packet path matches against.

use std::path::Path;

use serde::Deserialize;

use super::{Catalogue, CatalogueBuilder, PayloadSignature, PortSet, Prefix, Service, ServiceId};
use crate::flow::Proto;

/// The catalogue that ships with throttlewatch: `data/services.toml` without its comments and
/// indentation (`build.rs`).
pub const BUILTIN: &str = include_str!(concat!(env!("OUT_DIR"), "/services.toml"));

/// A catalogue that failed to load.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct CatalogueError {
    pub source_name: String,
    pub message: String,
}

/// Loading a [`Catalogue`] from its file format: `Catalogue::from_file(path)` and the like,
/// with this trait imported (`use throttlewatch::classify::CatalogueFile`).
pub trait CatalogueFile: Sized {
    /// The shipped catalogue.
    fn builtin() -> Self;
    /// The catalogue in the file at `path`.
    fn from_file(path: &Path) -> Result<Self, CatalogueError>;
    /// The catalogue in `text`; `source_name` names it in errors and reports.
    fn parse(text: &str, source_name: &str) -> Result<Self, CatalogueError>;
}

impl CatalogueFile for Catalogue {
    fn builtin() -> Catalogue {
        Catalogue::parse(BUILTIN, "built-in (data/services.toml)")
            .expect("the shipped catalogue is valid (checked by its unit test)")
    }

    fn from_file(path: &Path) -> Result<Catalogue, CatalogueError> {
        let text = std::fs::read_to_string(path).map_err(|e| CatalogueError {
            source_name: path.display().to_string(),
            message: format!("cannot read the service catalogue: {e}"),
        })?;
        Catalogue::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, source_name: &str) -> Result<Catalogue, CatalogueError> {
        let err =
            |message: String| CatalogueError { source_name: source_name.to_string(), message };
        // A table first (syntax errors keep their line), then the declaration (the toml
        // crate's table deserializer is in the binary already, for the configuration).
        let table: toml::Table = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let file: FileFormat = table.try_into().map_err(|e: toml::de::Error| {
            // The message does not say where: name the first service that fails alone, in
            // the text parsed again (the conversion consumed the table: a copy kept for this
            // rare case cost every start 0.55 million instructions, a tenth of the load).
            let table: toml::Table = toml::from_str(text).expect("parsed once already");
            let services = table.get("service").and_then(toml::Value::as_array);
            let culprit = services.into_iter().flatten().enumerate().find_map(|(i, s)| {
                let e = s.clone().try_into::<ServiceFormat>().err()?;
                let id = s.get("id").and_then(toml::Value::as_str).unwrap_or("?");
                Some(format!("service #{} ('{id}'): {}", i + 1, e.message().trim()))
            });
            err(culprit.unwrap_or_else(|| e.message().trim().to_string()))
        })?;
        if file.service.is_empty() {
            return Err(err(
                "no [[service]] tables: the catalogue must name at least one service".into()
            ));
        }
        if file.service.len() > CatalogueBuilder::MAX_SERVICES {
            return Err(err(format!(
                "{} services is more than the {} supported",
                file.service.len(),
                CatalogueBuilder::MAX_SERVICES
            )));
        }
        let mut builder = CatalogueBuilder::new(source_name);
        let mut ids: Vec<String> = Vec::with_capacity(file.service.len());
        for (i, service) in file.service.into_iter().enumerate() {
            let what = format!("service #{} ('{}')", i + 1, service.id);
            let id = service.id.clone();
            add_service(&mut builder, &ids, service).map_err(|m| err(format!("{what}: {m}")))?;
            ids.push(id);
        }
        Ok(builder.finish())
    }
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

/// Validates one service (`earlier_ids`: the ids of the services before it) and adds it.
fn add_service(
    builder: &mut CatalogueBuilder,
    earlier_ids: &[String],
    s: ServiceFormat,
) -> Result<(), String> {
    if s.id.is_empty()
        || !s
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!("id '{}' must be lowercase letters, digits, '_' or '-'", s.id));
    }
    if earlier_ids.contains(&s.id) {
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
    let sid = builder
        .add_service(Service { id: s.id.clone(), name: s.name })
        .ok_or_else(|| format!("more than {} services", CatalogueBuilder::MAX_SERVICES))?;
    for prefix in prefixes(&s.ranges)? {
        builder.add_range(sid, prefix);
    }
    for name in &s.dns {
        builder.add_dns_domain(sid, &domain(name).map_err(|m| format!("dns: {m}"))?);
    }
    for name in &s.sni {
        builder.add_sni_domain(sid, &domain(name).map_err(|m| format!("sni: {m}"))?);
    }
    for &t in &s.stun_message_types {
        if t & 0xc000 != 0 {
            return Err(format!(
                "stun_message_types: {t:#06x} has one of the top two bits set, which no STUN message has"
            ));
        }
        builder.add_stun_message_type(sid, t);
    }
    for &a in &s.stun_attributes {
        builder.add_stun_attribute(sid, a);
    }
    for realm in &s.stun_realms {
        if realm.is_empty() {
            return Err("stun_realms: an empty realm would match every REALM".into());
        }
        builder.add_stun_realm(sid, realm);
    }
    for (i, rule) in s.rule.iter().enumerate() {
        add_rule(builder, sid, &s.id, rule).map_err(|m| format!("rule #{}: {m}", i + 1))?;
    }
    for (i, p) in s.payload.iter().enumerate() {
        let signature = payload(p).map_err(|m| format!("payload #{}: {m}", i + 1))?;
        builder.add_payload(sid, signature);
    }
    Ok(())
}

fn add_rule(
    builder: &mut CatalogueBuilder,
    sid: ServiceId,
    id: &str,
    rule: &RuleFormat,
) -> Result<(), String> {
    let proto = rule.proto.as_deref().map(proto).transpose()?;
    let ports = ports(&rule.ports)?;
    if ports.is_empty() {
        return Err("ports must name at least one port".into());
    }
    let ranges = rule.ranges.as_deref().map(prefixes).transpose()?;
    if ranges.is_none() {
        builder.warn(format!(
            "service '{id}': a rule without ranges matches every address on its ports"
        ));
    }
    builder.add_rule(sid, proto, ports, ranges.as_deref());
    Ok(())
}

fn prefixes(texts: &[String]) -> Result<Vec<Prefix>, String> {
    texts.iter().map(|text| Prefix::parse(text).map_err(|m| format!("ranges: {m}"))).collect()
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
        let (first, last) = match p {
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
        if first > last {
            return Err(format!("port range {first}-{last} runs backwards"));
        }
        set.insert_range(first, last);
    }
    Ok(set)
}

/// A domain name as the matchers take it: lowercase, without a leading `*.` or trailing dot.
fn domain(name: &str) -> Result<String, String> {
    let d = name.trim().trim_start_matches("*.").trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty()
        || d.len() > 253
        || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(format!("'{name}' is not a domain name"));
    }
    Ok(d)
}

fn payload(p: &PayloadFormat) -> Result<PayloadSignature, String> {
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
        proto: proto(&p.proto)?,
        pattern,
        length: p.length,
        ports: ports(&p.ports)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::AddressMatch;
    use crate::decode::stun::StunMessage;
    use crate::flow::Endpoint;
    use std::net::IpAddr;

    /// A STUN message (RFC 8489 §5) of `message_type` with one attribute, if any; values of a
    /// multiple of 4 bytes.
    fn stun_message(message_type: u16, attribute: Option<(u16, &[u8])>) -> Vec<u8> {
        let mut body = Vec::new();
        if let Some((kind, value)) = attribute {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
        }
        let mut m = message_type.to_be_bytes().to_vec();
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[1; 12]);
        m.extend_from_slice(&body);
        m
    }

    fn stun_service(c: &Catalogue, message: &[u8]) -> Option<ServiceId> {
        c.match_stun(&StunMessage::parse(message, message.len() as u32).unwrap())
    }

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

    /// The binary's copy of the catalogue, without comments and indentation, is the file's.
    #[test]
    fn builtin_catalogue_is_the_files() {
        let file = include_str!("../../data/services.toml");
        assert!(BUILTIN.len() < file.len() * 9 / 10, "{} of {} bytes", BUILTIN.len(), file.len());
        let parsed = |text| format!("{:?}", Catalogue::parse(text, "services.toml").unwrap());
        assert_eq!(parsed(BUILTIN), parsed(file));
    }

    /// Telegram's call relay packets (nDPI telegram.c): a 16-byte peer tag, then twelve 0xff
    /// bytes, on any port; eleven are not the framing.
    #[test]
    fn builtin_catalogue_knows_telegram_relay_packets() {
        let c = Catalogue::builtin();
        let telegram = c.services().iter().position(|s| s.id == "telegram").unwrap() as u16;
        let mut p = vec![0x3c; 16];
        p.extend_from_slice(&[0xff; 12]);
        p.extend_from_slice(&[0x0a, 0x1b, 0x2c, 0x3d, 0, 0, 0, 0, 0x77, 0x66, 0x55, 0x44]);
        let len = p.len() as u32;
        assert_eq!(c.match_payload(Proto::Udp, &p, len, (40_123, 61_000)), Some(telegram));
        assert_eq!(c.match_payload(Proto::Udp, &p[..27], 27, (40_123, 61_000)), None);
        p[27] = 0xfe;
        assert_eq!(c.match_payload(Proto::Udp, &p, len, (40_123, 61_000)), None);
        assert_eq!(c.match_payload(Proto::Tcp, &[0xff; 40], 40, (40_123, 443)), None);
    }

    #[test]
    fn rules_and_port_ranges_reach_their_matcher() {
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
    fn signatures_reach_their_matchers() {
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
        assert_eq!(stun_service(&c, &stun_message(0x0800, None)), Some(0));
        assert_eq!(stun_service(&c, &stun_message(0x0003, Some((0x4000, &[0; 4])))), Some(0));
        let realm = stun_message(0x0113, Some((0x0014, b"turn.SIGNAL.org ")));
        assert_eq!(stun_service(&c, &realm), Some(1));
        assert_eq!(stun_service(&c, &stun_message(0x0001, None)), None);
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
            (
                r#"[[service]]
id = "x"
name = "X"
ranges = ["1.0.0.0/8"]
[[service]]
id = "y"
name = "Y"
stun_attributes = ["big"]"#,
                "service #2 ('y'): invalid type: string \"big\", expected u16",
            ),
            ("[[service]\nid = 1\n", "line 1"),
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
