//! Classify: which service a flow belongs to, with what evidence, and which role it plays in
//! the comparison (target, control, other).
//!
//! Evidence, strongest first ([`Evidence`]): a signature in the flow's own payload (STUN type,
//! attribute or realm; payload bytes; a service's media framing; TLS server name, over TCP or
//! in QUIC client Initials); an endpoint shared with a UDP flow that showed a signature (the
//! peer-to-peer legs of a call use the same local socket as its STUN exchange with the relay)
//! or carried in the STUN messages of a flow of the service (XOR-MAPPED-, XOR-PEER-,
//! XOR-RELAYED-ADDRESS); a link to a call of the service (an ICE username fragment seen in a
//! flow of the service, or a datagram other than a plain STUN request from a socket that
//! exchanged packets with the service within [`CALL_SOCKET_MAX_AGE_US`]); a server address learned from a DNS answer for the service's
//! domains; a port-qualified address rule; an address range. Learned knowledge lives in bounded
//! tables ([`LearnedMap`]); payloads are inspected only in a flow's first packets, STUN messages
//! in every packet (they are few and carry the call's links). A QUIC ClientHello that continues
//! in the flow's next Initial waits in a small fixed table ([`initials`]), not in the flow's
//! state.

pub mod catalogue;
mod framing;
pub mod initials;
mod learn;
pub mod prefix;

use std::net::IpAddr;

use crate::decode::dns::{DnsResponse, DomainName};
use crate::decode::gquic;
use crate::decode::quic::{CryptoStream, initial_version, read_client_initial};
use crate::decode::stun::StunMessage;
use crate::decode::tls::client_hello_sni;
use crate::flow::{Direction, Endpoint, Proto, is_group_address, is_local_address};
use crate::time::Timestamp;

use initials::{FlowEnds, PendingInitials};

pub use catalogue::{
    AddressMatch, Catalogue, CatalogueBuilder, PayloadSignature, PortSet, Service, ServiceId,
};
pub use learn::LearnedMap;
use learn::Ufrag;
pub use prefix::Prefix;

/// Payload-carrying packets of a flow inspected for signatures (STUN messages are checked for
/// as long as the flow has no signature, since the telling attributes come late).
pub const INSPECT_PACKETS: u8 = 8;
/// Capacity of the table of addresses learned from DNS answers.
pub const DNS_LEARNED_CAPACITY: usize = 8192;
/// Capacity of the table of call endpoints learned from signatures.
pub const ENDPOINTS_LEARNED_CAPACITY: usize = 4096;
/// How long learned knowledge is trusted, in packet time.
pub const LEARNED_MAX_AGE_US: u64 = 3600 * 1_000_000;
/// Capacity of the table of ICE username fragments learned from flows of a service.
pub const UFRAGS_LEARNED_CAPACITY: usize = 4096;
/// Capacity of the table of sockets that exchanged UDP with a service.
pub const CALL_SOCKETS_CAPACITY: usize = 4096;
/// Capacity of the table of client addresses whose call legs belong to another address's call
/// ([`Classifier::call_host`]): a few devices in a call on two addresses at once.
pub const CALL_HOSTS_CAPACITY: usize = 64;
/// A socket's new call flow belongs to the service the socket exchanged UDP with at most
/// this long before (a call's media follows its setup within seconds).
pub const CALL_SOCKET_MAX_AGE_US: u64 = 60 * 1_000_000;
/// A service's UDP flows from one client address whose spans lie further apart than this are
/// legs of two calls (the report's `calls[]`, the call detector).
pub const CALL_LEG_GAP_US: u64 = 30 * 1_000_000;
/// The catalogue service whose media framing [`framing::is_zoom_media`] recognises.
const ZOOM_SERVICE_ID: &str = "zoom";
/// UDP flows with at least this many packets and this packet rate are real-time streams, the
/// control for calls.
pub const REALTIME_MIN_PACKETS: u64 = 50;
pub const REALTIME_MIN_PPS: f64 = 10.0;
/// A client's Initial fills a datagram of at least this many bytes (RFC 9000 §14.1): the UDP
/// payload length on the wire, whatever the capture kept of it.
pub const QUIC_INITIAL_MIN_BYTES: u32 = 1200;
/// QUIC's UDP port: its flows are no calls ([`Role`] makes them controls of their own kind).
pub const QUIC_PORT: u16 = 443;

/// How a flow was tied to its service, weakest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evidence {
    #[default]
    None,
    Range,
    Rule,
    Dns,
    /// Linked to a call of the service: an ICE username fragment, or media or an ICE check
    /// from a socket that just exchanged UDP with the service.
    Call,
    Endpoint,
    Signature,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::None => "none",
            Evidence::Range => "range",
            Evidence::Rule => "rule",
            Evidence::Dns => "dns",
            Evidence::Call => "call",
            Evidence::Endpoint => "endpoint",
            Evidence::Signature => "signature",
        }
    }
}

impl From<AddressMatch> for Evidence {
    fn from(m: AddressMatch) -> Self {
        match m {
            AddressMatch::Range => Evidence::Range,
            AddressMatch::Rule => Evidence::Rule,
        }
    }
}

/// A flow's service and the evidence for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classification {
    pub service: Option<ServiceId>,
    pub evidence: Evidence,
}

impl Classification {
    fn offer(&mut self, service: ServiceId, evidence: Evidence) {
        if evidence > self.evidence {
            *self = Classification { service: Some(service), evidence };
        }
    }
}

/// Two small per-flow counters in one byte (a flow-table entry stays within its size
/// budget): payload inspections left (low nibble) and packets that showed Zoom's media
/// framing (high nibble), each saturating at 15.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters(u8);

const _: () = assert!(INSPECT_PACKETS <= 15 && framing::ZOOM_MIN_PACKETS <= 15);

impl Counters {
    fn inspections_left(self) -> u8 {
        self.0 & 0x0f
    }

    fn set_inspections_left(&mut self, n: u8) {
        self.0 = (self.0 & 0xf0) | n.min(15);
    }

    fn zoom_packets(self) -> u8 {
        self.0 >> 4
    }

    fn add_zoom_packet(&mut self) {
        if self.zoom_packets() < 15 {
            self.0 += 0x10;
        }
    }
}

/// Per-flow classification state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassState {
    pub class: Classification,
    counters: Counters,
    /// The flow crosses the site's edge ([`crosses_site`]): comparable with messenger traffic.
    pub crosses_site: bool,
}

impl ClassState {
    /// Whether a packet sent from `sender_port` can teach the classifier anything: a DNS
    /// answer or a STUN message (if `stun`) always can; another payload can while the flow has
    /// no signature and inspection budget is left.
    pub fn wants(&self, proto: Proto, sender_port: u16, payload: &[u8], stun: bool) -> bool {
        is_dns_answer(proto, sender_port) || self.wants_payload(payload, stun)
    }

    /// Allow one more payload inspection: a full-size copy of a packet that was first seen
    /// truncated deserves a look of its own.
    pub fn grant_inspection(&mut self) {
        let left = self.counters.inspections_left().max(1);
        self.counters.set_inspections_left(left);
    }

    fn wants_payload(&self, payload: &[u8], stun: bool) -> bool {
        stun || (self.class.evidence != Evidence::Signature
            && !payload.is_empty()
            && self.counters.inspections_left() > 0)
    }
}

/// DNS answers come from port 53 over UDP.
fn is_dns_answer(proto: Proto, sender_port: u16) -> bool {
    proto == Proto::Udp && sender_port == 53
}

/// What a flow is in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Traffic of a catalogue service.
    Target,
    /// Comparable traffic of no service: TCP across the router, UDP real-time streams.
    Control,
    /// Neither: local traffic, multicast, short UDP exchanges (DNS, NTP…).
    Other,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Target => "target",
            Role::Control => "control",
            Role::Other => "other",
        }
    }
}

/// Counters of what the classifier learned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassifierStats {
    /// DNS answers whose name belonged to a service, and addresses learned from them.
    pub dns_answers: u64,
    pub dns_addresses: u64,
    /// Endpoints learned from flows with a signature.
    pub endpoints: u64,
    /// Endpoints learned from the XOR-…-ADDRESS attributes of a service's STUN messages.
    pub stun_addresses: u64,
    /// Flows tied to a call by an ICE username fragment or by their LAN socket.
    pub call_links: u64,
}

/// Client addresses tied to another address's call: at most [`CALL_HOSTS_CAPACITY`], the
/// oldest replaced first, each trusted for [`LEARNED_MAX_AGE_US`]. Searched in order: it is
/// empty unless a device calls from two addresses at once, and small (a table of its own
/// would cost the router binary more than the search costs).
#[derive(Debug, Default)]
struct CallHosts {
    /// (address, its call's host, when learned); `next` is the slot replaced next when full.
    links: Vec<(IpAddr, IpAddr, Timestamp)>,
    next: usize,
}

impl CallHosts {
    fn insert(&mut self, client: IpAddr, host: IpAddr, now: Timestamp) {
        if self.links.len() < CALL_HOSTS_CAPACITY {
            self.links.push((client, host, now));
        } else {
            self.links[self.next] = (client, host, now);
            self.next = (self.next + 1) % CALL_HOSTS_CAPACITY;
        }
    }

    fn get(&self, client: IpAddr, now: Timestamp) -> Option<IpAddr> {
        self.links
            .iter()
            .find(|&&(c, _, at)| c == client && now.since(at) <= LEARNED_MAX_AGE_US)
            .map(|&(_, host, _)| host)
    }
}

/// The classifier: the catalogue plus what was learned from the wire.
#[derive(Debug)]
pub struct Classifier {
    catalogue: Catalogue,
    dns_learned: LearnedMap<IpAddr, ServiceId>,
    endpoints: LearnedMap<Endpoint, ServiceId>,
    initials: PendingInitials,
    /// Each fragment's service, and the client address of the call that named it first.
    ufrags: LearnedMap<Ufrag, (ServiceId, IpAddr)>,
    call_sockets: LearnedMap<Endpoint, ServiceId>,
    /// A client address whose legs an ICE fragment tied to another address's call (a
    /// dual-stack device's IPv4 and IPv6, a second interface): that address.
    call_hosts: CallHosts,
    zoom: Option<ServiceId>,
    stats: ClassifierStats,
}

impl Classifier {
    pub fn new(catalogue: Catalogue) -> Self {
        let zoom = catalogue.services().iter().position(|s| s.id == ZOOM_SERVICE_ID);
        Classifier {
            dns_learned: LearnedMap::new(DNS_LEARNED_CAPACITY, LEARNED_MAX_AGE_US),
            endpoints: LearnedMap::new(ENDPOINTS_LEARNED_CAPACITY, LEARNED_MAX_AGE_US),
            initials: PendingInitials::default(),
            ufrags: LearnedMap::new(UFRAGS_LEARNED_CAPACITY, LEARNED_MAX_AGE_US),
            call_sockets: LearnedMap::new(CALL_SOCKETS_CAPACITY, CALL_SOCKET_MAX_AGE_US),
            call_hosts: CallHosts::default(),
            zoom: zoom.and_then(|i| ServiceId::try_from(i).ok()),
            catalogue,
            stats: ClassifierStats::default(),
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn stats(&self) -> ClassifierStats {
        self.stats
    }

    /// Classification of a new flow from its addresses and what was learned so far.
    pub fn on_new_flow(
        &self,
        proto: Proto,
        client: Endpoint,
        server: Endpoint,
        now: Timestamp,
    ) -> ClassState {
        ClassState {
            class: self.resolve(Classification::default(), proto, client, server, now),
            counters: Counters(INSPECT_PACKETS),
            crosses_site: crosses_site(client, server),
        }
    }

    /// The best classification of a flow given its own evidence and everything learned up to
    /// `now`. Address matches try the server side first; the client side counts too, because
    /// a flow picked up mid-stream may have its sides the wrong way round.
    pub fn resolve(
        &self,
        own: Classification,
        proto: Proto,
        client: Endpoint,
        server: Endpoint,
        now: Timestamp,
    ) -> Classification {
        let mut class = own;
        // A flow tied to a call taught the endpoints table its own sockets: what it would
        // find there is what it already knows.
        if class.evidence >= Evidence::Call {
            return class;
        }
        if proto == Proto::Udp {
            for ep in [client, server] {
                if let Some(s) = self.endpoints.get(&ep, now) {
                    class.offer(s, Evidence::Endpoint);
                    return class;
                }
            }
        }
        for ep in [server, client] {
            if let Some(s) = self.dns_learned.get(&ep.addr, now) {
                class.offer(s, Evidence::Dns);
                return class;
            }
        }
        for ep in [server, client] {
            if let Some((s, m)) = self.catalogue.match_endpoint(proto, ep) {
                class.offer(s, m.into());
                break;
            }
        }
        class
    }

    /// Look at one packet of a flow: learn from DNS answers, and search the first payloads
    /// (and any STUN message) for a service's signature.
    #[allow(clippy::too_many_arguments)]
    pub fn inspect(
        &mut self,
        state: &mut ClassState,
        proto: Proto,
        (client, server): (Endpoint, Endpoint),
        dir: Direction,
        payload: &[u8],
        payload_len: u32,
        stun: Option<&StunMessage<'_>>,
        now: Timestamp,
    ) {
        let sender = if dir == Direction::Up { client } else { server };
        if is_dns_answer(proto, sender.port) {
            self.learn_dns(payload, now);
        }
        if !state.wants_payload(payload, stun.is_some()) {
            return;
        }
        let mut found = None;
        let mut server_name = false;
        let unknown_udp = proto == Proto::Udp && state.class.service.is_none();
        if state.class.evidence != Evidence::Signature {
            found =
                stun.and_then(|m| self.catalogue.match_stun(m)).map(|s| (s, Evidence::Signature));
            let left = state.counters.inspections_left();
            if found.is_none() && left > 0 {
                state.counters.set_inspections_left(left - 1);
                let ports = (client.port, server.port);
                found = self
                    .catalogue
                    .match_payload(proto, payload, payload_len, ports)
                    .or_else(|| self.zoom_framing(state, proto, payload))
                    .map(|s| (s, Evidence::Signature));
                if found.is_none() && proto == Proto::Tcp {
                    found = StunMessage::parse_framed(payload, payload_len)
                        .and_then(|m| self.catalogue.match_stun(&m))
                        .or_else(|| {
                            let sni =
                                (dir == Direction::Up).then(|| client_hello_sni(payload)).flatten();
                            sni.and_then(|name| self.catalogue.match_sni(name))
                        })
                        .map(|s| (s, Evidence::Signature));
                } else if found.is_none()
                    && proto == Proto::Udp
                    && dir == Direction::Up
                    && payload_len >= QUIC_INITIAL_MIN_BYTES
                {
                    found = self
                        .quic_client_hello((client, server), payload, now)
                        .map(|s| (s, Evidence::Signature));
                    server_name = found.is_some();
                }
                // Links to a call are for flows that nothing else ties to a service.
                if found.is_none() && unknown_udp && stun.is_none() {
                    found = self.socket_link(client, server, now);
                }
            }
            if found.is_none() && unknown_udp {
                found = stun.and_then(|m| {
                    self.ufrag_link(m, client.addr, now).or_else(|| {
                        m.username().and_then(|_| self.socket_link(client, server, now))
                    })
                });
            }
        }
        if let Some((service, evidence)) = found {
            let before = state.class;
            state.class.offer(service, evidence);
            // UDP call setups share their sockets with the call's other legs. TCP and QUIC
            // servers are often shared (CDNs), so server names teach nothing beyond their own
            // flow.
            if proto == Proto::Udp && !server_name && state.class != before {
                self.endpoints.insert(client, service, now);
                self.endpoints.insert(server, service, now);
                self.stats.endpoints += 2;
                self.stats.call_links += u64::from(evidence == Evidence::Call);
            }
        }
        if proto == Proto::Udp
            && let Some(service) = state.class.service
        {
            self.learn_call(service, (client, server), stun, now);
        }
    }

    /// Zoom's media framing in two packets of a flow.
    fn zoom_framing(
        &self,
        state: &mut ClassState,
        proto: Proto,
        payload: &[u8],
    ) -> Option<ServiceId> {
        let zoom = self.zoom.filter(|_| proto == Proto::Udp && framing::is_zoom_media(payload))?;
        state.counters.add_zoom_packet();
        (state.counters.zoom_packets() >= framing::ZOOM_MIN_PACKETS).then_some(zoom)
    }

    /// The service of a call's packet between a socket that just exchanged UDP with a service
    /// and a new peer: its media (RTP, DTLS or a protocol of its own, as Telegram's) or an ICE
    /// connectivity check (a STUN message with a USERNAME). A plain STUN request from that
    /// socket asks another STUN server for its address and is not linked. The socket is the
    /// call's: another application gets another port. It may have any address: a global IPv6 one on a network without
    /// NAT, a public IPv4 one behind a carrier's NAT.
    fn socket_link(
        &self,
        client: Endpoint,
        server: Endpoint,
        now: Timestamp,
    ) -> Option<(ServiceId, Evidence)> {
        [client, server]
            .into_iter()
            .find_map(|ep| self.call_sockets.get(&ep, now))
            .map(|s| (s, Evidence::Call))
    }

    /// A STUN USERNAME with an ICE fragment seen in a flow of a service. When the call that
    /// named the fragment came from another client address, `client` is that call's host from
    /// now on ([`Classifier::call_host`]); the first such link of an address holds.
    fn ufrag_link(
        &mut self,
        msg: &StunMessage<'_>,
        client: IpAddr,
        now: Timestamp,
    ) -> Option<(ServiceId, Evidence)> {
        let pair = Ufrag::pair(msg.username()?);
        let (service, host) = pair.iter().flatten().find_map(|u| self.ufrags.get(u, now))?;
        if host != self.call_host(client, now) && self.call_hosts.get(client, now).is_none() {
            self.call_hosts.insert(client, host, now);
        }
        Some((service, Evidence::Call))
    }

    /// The client address whose call the legs of `client` belong to at `at`: the address
    /// itself, unless an ICE fragment tied one of its legs to a call from another address.
    pub fn call_host(&self, client: IpAddr, at: Timestamp) -> IpAddr {
        self.call_hosts.get(client, at).unwrap_or(client)
    }

    /// What a UDP flow of `service` teaches about the rest of its call: its LAN socket, the
    /// ICE fragments and the addresses its STUN messages carry.
    fn learn_call(
        &mut self,
        service: ServiceId,
        (client, server): (Endpoint, Endpoint),
        stun: Option<&StunMessage<'_>>,
        now: Timestamp,
    ) {
        // Both ends: which one is the user's socket the addresses cannot tell in general
        // (IPv6 without NAT, a carrier's NAT); the service's end only ever meets flows its
        // address classifies already. QUIC (UDP 443) is no call: its sockets teach nothing.
        for ep in [client, server] {
            if !is_group_address(ep.addr) && ![client.port, server.port].contains(&QUIC_PORT) {
                self.call_sockets.insert(ep, service, now);
            }
        }
        let Some(msg) = stun else { return };
        if let Some(username) = msg.username() {
            let host = self.call_host(client.addr, now);
            for u in Ufrag::pair(username).into_iter().flatten() {
                // A fragment keeps the call that named it first.
                let named = self.ufrags.get(&u, now).filter(|&(s, _)| s == service);
                self.ufrags.insert(u, named.unwrap_or((service, host)), now);
            }
        }
        for (addr, port) in msg.xor_addresses() {
            let ep = Endpoint::new(addr, port);
            if ep != client && ep != server {
                self.endpoints.insert(ep, service, now);
                self.stats.stun_addresses += 1;
            }
        }
    }

    /// The service named by the server name of a QUIC client hello in a datagram from the
    /// client: an IETF QUIC Initial (read with what the flow's earlier Initials left, if
    /// anything), else a Google QUIC CHLO.
    // Cold: it runs for a few large datagrams per UDP flow.
    #[cold]
    #[inline(never)]
    fn quic_client_hello(
        &mut self,
        flow: FlowEnds,
        datagram: &[u8],
        now: Timestamp,
    ) -> Option<ServiceId> {
        if initial_version(datagram).is_some() {
            return self.quic_initial(flow, datagram, now);
        }
        gquic::client_hello_sni(datagram).and_then(|name| self.catalogue.match_sni(name))
    }

    fn quic_initial(
        &mut self,
        flow: FlowEnds,
        datagram: &[u8],
        now: Timestamp,
    ) -> Option<ServiceId> {
        let mut fresh = CryptoStream::default();
        let earlier = self.initials.find(flow, now);
        let continued = earlier.is_some();
        let stream = earlier.unwrap_or(&mut fresh);
        read_client_initial(datagram, stream)?;
        let name = stream.server_name();
        let (service, named, incomplete) =
            (name.and_then(|n| self.catalogue.match_sni(n)), name.is_some(), stream.incomplete());
        match (continued, named || !incomplete) {
            (true, true) => self.initials.forget(flow),
            (false, false) => self.initials.keep(flow, &fresh, now),
            _ => {}
        }
        service
    }

    /// Learn the addresses of a DNS answer (a UDP payload from port 53) that names a service.
    pub fn learn_dns(&mut self, payload: &[u8], now: Timestamp) {
        let Some(response) = DnsResponse::parse(payload) else {
            return;
        };
        let mut name = DomainName::default();
        if response.question(&mut name).is_none() {
            return;
        }
        let Some(service) = self.catalogue.match_dns_name(name.as_bytes()) else {
            return;
        };
        self.stats.dns_answers += 1;
        for answer in response.answers() {
            if let Some(addr) = answer.address() {
                self.dns_learned.insert(addr, service, now);
                self.stats.dns_addresses += 1;
            }
        }
    }
}

/// A conversation between these endpoints crosses the site's edge: neither is a group address
/// and not both are site-local. Only such flows are comparable with messenger traffic. (Two
/// global IPv6 addresses of one LAN are not told apart from a LAN host and a server: a
/// prefix shared by the two sides of a router is no proof of one link.)
pub fn crosses_site(a: Endpoint, b: Endpoint) -> bool {
    let group = is_group_address(a.addr) || is_group_address(b.addr);
    let local = is_local_address(a.addr) && is_local_address(b.addr);
    !group && !local
}

/// Whether a flow's packets came through a router before the capture point, by their hop
/// limits: a TTL below every initial value systems use (32, 64, 128, 255) was decremented on
/// the way. Two hosts of one LAN talk with initial TTLs; a server behind the router answers
/// with a decremented one, whatever its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    Yes,
    No,
}

impl Routed {
    /// From the lowest and highest TTL seen each way (`None`: no packet that way).
    pub fn from_ttls(ranges: [Option<(u8, u8)>; 2]) -> Self {
        let decremented =
            ranges.iter().flatten().any(|&(lo, hi)| !is_initial_ttl(lo) || !is_initial_ttl(hi));
        if decremented { Routed::Yes } else { Routed::No }
    }
}

/// A TTL (or IPv6 hop limit) a system starts its packets with: no router has decremented it.
pub fn is_initial_ttl(ttl: u8) -> bool {
    matches!(ttl, 32 | 64 | 128 | 255)
}

/// The role of a finished flow. `packets` and `duration_us` cover both directions; `routed`:
/// a packet of it came through a router before the capture point ([`Routed`]). Control flows:
/// TCP, QUIC (UDP to port 443) and real-time UDP streams crossing the site's edge, or between
/// two site-local addresses through a router (a network numbered privately on both sides).
pub fn role(
    class: Classification,
    proto: Proto,
    (client, server): (Endpoint, Endpoint),
    (packets, duration_us): (u64, u64),
    routed: Routed,
) -> Role {
    if class.service.is_some() {
        return Role::Target;
    }
    if !crosses_site(client, server)
        && (routed == Routed::No || is_group_address(client.addr) || is_group_address(server.addr))
    {
        return Role::Other;
    }
    match proto {
        Proto::Tcp => Role::Control,
        // QUIC: what the service's blocked QUIC is compared with.
        Proto::Udp if server.port == QUIC_PORT => Role::Control,
        Proto::Udp => {
            let pps = packets as f64 * 1e6 / duration_us.max(1) as f64;
            if packets >= REALTIME_MIN_PACKETS && pps >= REALTIME_MIN_PPS {
                Role::Control
            } else {
                Role::Other
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::dns::fixtures::response as dns_response;
    use crate::decode::stun::fixtures::message as stun_message;
    use crate::decode::tls::fixtures::client_hello;

    /// WhatsApp by range, DNS, SNI and a STUN attribute; Signal by its STUN realm.
    fn classifier() -> Classifier {
        let mut b = CatalogueBuilder::new("t");
        let service = |id: &str| Service { id: id.into(), name: id.into() };
        let wa = b.add_service(service("wa")).unwrap();
        b.add_range(wa, Prefix::parse("157.240.0.0/16").unwrap());
        b.add_dns_domain(wa, "whatsapp.net");
        b.add_sni_domain(wa, "whatsapp.com");
        b.add_stun_attribute(wa, 0x4000);
        let signal = b.add_service(service("signal")).unwrap();
        b.add_stun_realm(signal, "signal.org");
        Classifier::new(b.finish())
    }

    fn ep(s: &str) -> Endpoint {
        let (a, p) = s.rsplit_once(':').unwrap();
        Endpoint::new(a.trim_matches(['[', ']']).parse().unwrap(), p.parse().unwrap())
    }

    const T0: Timestamp = Timestamp::from_micros(1_000_000);

    #[test]
    fn range_at_creation() {
        let c = classifier();
        let s = c.on_new_flow(Proto::Tcp, ep("192.168.1.2:40000"), ep("157.240.1.1:443"), T0);
        assert_eq!(s.class, Classification { service: Some(0), evidence: Evidence::Range });
        let s = c.on_new_flow(Proto::Tcp, ep("192.168.1.2:40000"), ep("8.8.8.8:443"), T0);
        assert_eq!(s.class.service, None);
    }

    #[test]
    fn dns_answers_teach_addresses() {
        let mut c = classifier();
        let (client, resolver) = (ep("192.168.1.2:5000"), ep("192.168.1.1:53"));
        let mut st = c.on_new_flow(Proto::Udp, client, resolver, T0);
        let answer = dns_response("mmg.whatsapp.net", &[[203, 0, 113, 5]]);
        c.inspect(
            &mut st,
            Proto::Udp,
            (client, resolver),
            Direction::Down,
            &answer,
            answer.len() as u32,
            None,
            T0,
        );
        assert_eq!(st.class.service, None, "the DNS flow itself is not WhatsApp traffic");
        let s = c.on_new_flow(Proto::Tcp, ep("192.168.1.2:40001"), ep("203.0.113.5:443"), T0);
        assert_eq!(s.class, Classification { service: Some(0), evidence: Evidence::Dns });
        assert_eq!(c.stats().dns_addresses, 1);
    }

    #[test]
    fn stun_realm_then_endpoint_association() {
        let mut c = classifier();
        let (local, turn, google, peer) = (
            ep("192.168.12.169:39518"),
            ep("35.158.183.167:3478"),
            ep("172.253.121.127:19302"),
            ep("18.195.131.143:61156"),
        );
        // The flow to Google's STUN server starts before anything says "Signal".
        let early = c.on_new_flow(Proto::Udp, local, google, T0);
        assert_eq!(early.class.service, None);
        let mut st = c.on_new_flow(Proto::Udp, local, turn, T0);
        let m = stun_message(0x0113, 1, &[(0x0014, b"signal.org")]);
        let msg = StunMessage::parse(&m, m.len() as u32).unwrap();
        c.inspect(
            &mut st,
            Proto::Udp,
            (local, turn),
            Direction::Down,
            &m,
            m.len() as u32,
            Some(&msg),
            T0,
        );
        assert_eq!(st.class, Classification { service: Some(1), evidence: Evidence::Signature });
        // Resolving later gives the early flow, and new peer-to-peer legs, the service.
        let resolved = c.resolve(early.class, Proto::Udp, local, google, T0);
        assert_eq!(resolved, Classification { service: Some(1), evidence: Evidence::Endpoint });
        let p2p = c.on_new_flow(Proto::Udp, local, peer, T0);
        assert_eq!(p2p.class.evidence, Evidence::Endpoint);
    }

    #[test]
    fn sni_and_inspection_budget() {
        let mut c = classifier();
        let (client, server) = (ep("192.168.1.2:40000"), ep("203.0.113.9:443"));
        let send = |c: &mut Classifier, st: &mut ClassState, payload: &[u8]| {
            let len = payload.len() as u32;
            c.inspect(st, Proto::Tcp, (client, server), Direction::Up, payload, len, None, T0);
        };
        let hello = client_hello("web.whatsapp.com");
        let mut st = c.on_new_flow(Proto::Tcp, client, server, T0);
        for _ in 0..INSPECT_PACKETS {
            send(&mut c, &mut st, b"x");
        }
        send(&mut c, &mut st, &hello);
        assert_eq!(st.class.service, None, "past the inspection budget");
        let mut st = c.on_new_flow(Proto::Tcp, client, server, T0);
        send(&mut c, &mut st, &hello);
        assert_eq!(st.class, Classification { service: Some(0), evidence: Evidence::Signature });
        assert_eq!(c.stats().endpoints, 0, "TCP signatures teach no endpoints");
    }

    /// A classifier with Zoom (for its framing) besides WhatsApp and Signal.
    fn with_zoom() -> Classifier {
        let mut b = CatalogueBuilder::new("t");
        let service = |id: &str| Service { id: id.into(), name: id.into() };
        let wa = b.add_service(service("wa")).unwrap();
        b.add_range(wa, Prefix::parse("157.240.0.0/16").unwrap());
        b.add_range(wa, Prefix::parse("2a03:2880::/29").unwrap());
        b.add_stun_attribute(wa, 0x4000);
        b.add_service(service(ZOOM_SERVICE_ID)).unwrap();
        Classifier::new(b.finish())
    }

    fn udp(
        c: &mut Classifier,
        st: &mut ClassState,
        ends: (Endpoint, Endpoint),
        p: &[u8],
        t: Timestamp,
    ) {
        let stun = StunMessage::parse(p, p.len() as u32);
        c.inspect(st, Proto::Udp, ends, Direction::Up, p, p.len() as u32, stun.as_ref(), t);
    }

    #[test]
    fn ice_username_links_a_new_leg() {
        let mut c = with_zoom();
        let (lan, relay, peer) =
            (ep("192.168.1.2:50000"), ep("157.240.1.1:3478"), ep("100.70.1.2:40000"));
        // A binding check with the relay, known by its range, names the ICE fragments.
        let mut st = c.on_new_flow(Proto::Udp, lan, relay, T0);
        udp(&mut c, &mut st, (lan, relay), &stun_message(0x0001, 1, &[(0x0006, b"PeEr:L0c4")]), T0);
        // A leg from another socket to a peer whose check carries the same fragments.
        let other = ep("192.168.1.2:50002");
        let mut p2p = c.on_new_flow(Proto::Udp, other, peer, T0);
        assert_eq!(p2p.class.service, None);
        let check = stun_message(0x0001, 2, &[(0x0006, b"L0c4:PeEr")]);
        udp(&mut c, &mut p2p, (other, peer), &check, T0);
        assert_eq!(p2p.class, Classification { service: Some(0), evidence: Evidence::Call });
        assert_eq!(c.stats().call_links, 1);
        // Its sockets are the call's now: a sibling flow to the same peer socket.
        let sibling = c.on_new_flow(Proto::Udp, ep("192.168.1.3:1"), peer, T0);
        assert_eq!(sibling.class.evidence, Evidence::Endpoint);
        // Unknown fragments link nothing; short fragments are ignored.
        let mut none = c.on_new_flow(Proto::Udp, ep("192.168.1.2:50004"), ep("8.8.4.4:9"), T0);
        let ends = (ep("192.168.1.2:50004"), ep("8.8.4.4:9"));
        udp(&mut c, &mut none, ends, &stun_message(0x0001, 3, &[(0x0006, b"abc:zzzz")]), T0);
        assert_eq!(none.class.service, None);
    }

    /// A leg from another client address (a dual-stack device's other address) whose ICE
    /// check carries a fragment a call named is that call's leg: its host is the call's
    /// client. The first such link holds, and a leg from the call's own address has none.
    #[test]
    fn an_ice_fragment_ties_a_leg_from_another_address_to_its_call() {
        let mut c = with_zoom();
        let (lan, relay) = (ep("192.168.1.2:50000"), ep("157.240.1.1:3478"));
        let mut st = c.on_new_flow(Proto::Udp, lan, relay, T0);
        udp(&mut c, &mut st, (lan, relay), &stun_message(0x0001, 1, &[(0x0006, b"PeEr:L0c4")]), T0);
        let v6 = ep("[2001:db8::2]:50002");
        let peer = ep("[2001:db8:77::9]:40000");
        let mut p2p = c.on_new_flow(Proto::Udp, v6, peer, T0);
        udp(&mut c, &mut p2p, (v6, peer), &stun_message(0x0001, 2, &[(0x0006, b"L0c4:PeEr")]), T0);
        assert_eq!(p2p.class, Classification { service: Some(0), evidence: Evidence::Call });
        assert_eq!(c.call_host(v6.addr, T0), lan.addr);
        assert_eq!(c.call_host(lan.addr, T0), lan.addr, "the call's own address");
        // The leg's own checks name the same fragments again: they stay the first call's.
        let mut again = c.on_new_flow(Proto::Udp, v6, ep("[2001:db8:77::9]:40001"), T0);
        let check = stun_message(0x0001, 3, &[(0x0006, b"L0c4:PeEr")]);
        udp(&mut c, &mut again, (v6, ep("[2001:db8:77::9]:40001")), &check, T0);
        let other = ep("192.168.1.9:50000");
        let far = ep("203.0.113.50:1");
        let mut third = c.on_new_flow(Proto::Udp, other, far, T0);
        udp(&mut c, &mut third, (other, far), &check, T0);
        assert_eq!(c.call_host(other.addr, T0), lan.addr, "not the linked leg's address");
        // An address linked once keeps its call.
        let (lan2, relay2) = (ep("192.168.1.3:50000"), ep("157.240.1.2:3478"));
        let mut st2 = c.on_new_flow(Proto::Udp, lan2, relay2, T0);
        udp(
            &mut c,
            &mut st2,
            (lan2, relay2),
            &stun_message(0x0001, 4, &[(0x0006, b"XyZw:QrSt")]),
            T0,
        );
        let (v6_socket, far) = (ep("[2001:db8::2]:50010"), ep("[2001:db8:77::8]:1"));
        let mut moved = c.on_new_flow(Proto::Udp, v6_socket, far, T0);
        let check = stun_message(0x0001, 5, &[(0x0006, b"QrSt:XyZw")]);
        udp(&mut c, &mut moved, (v6_socket, far), &check, T0);
        assert_eq!(moved.class.evidence, Evidence::Call);
        assert_eq!(c.call_host(v6.addr, T0), lan.addr);
        // The link ages out with what was learned.
        assert_eq!(c.call_host(v6.addr, T0.add_micros(LEARNED_MAX_AGE_US + 1)), v6.addr);
    }

    /// The table of call hosts stays within its capacity under any number of links, the
    /// oldest link replaced first.
    #[test]
    fn call_hosts_are_bounded_oldest_first() {
        let mut t = CallHosts::default();
        let host: IpAddr = "192.168.1.2".parse().unwrap();
        let addr = |i: usize| IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
        for i in 0..CALL_HOSTS_CAPACITY + 10 {
            t.insert(addr(i), host, T0);
        }
        assert_eq!(t.links.len(), CALL_HOSTS_CAPACITY);
        assert_eq!(t.get(addr(9), T0), None, "replaced");
        assert_eq!(t.get(addr(10), T0), Some(host));
        assert_eq!(t.get(addr(CALL_HOSTS_CAPACITY + 9), T0), Some(host));
    }

    #[test]
    fn stun_addresses_label_their_flows() {
        let mut c = with_zoom();
        let (lan, relay) = (ep("192.168.1.2:50000"), ep("157.240.1.1:3478"));
        let mut st = c.on_new_flow(Proto::Udp, lan, relay, T0);
        // XOR-PEER-ADDRESS 203.0.113.7:50123 in a CreatePermission request.
        let port = (50123u16 ^ 0x2112).to_be_bytes();
        let addr = [203 ^ 0x21, 0x12, 113 ^ 0xa4, 7 ^ 0x42];
        let value = [0, 1, port[0], port[1], addr[0], addr[1], addr[2], addr[3]];
        udp(&mut c, &mut st, (lan, relay), &stun_message(0x0008, 4, &[(0x0012, &value)]), T0);
        assert_eq!(c.stats().stun_addresses, 1);
        let p2p = c.on_new_flow(Proto::Udp, ep("192.168.1.2:50001"), ep("203.0.113.7:50123"), T0);
        assert_eq!(p2p.class, Classification { service: Some(0), evidence: Evidence::Endpoint });
    }

    #[test]
    fn media_from_a_socket_that_just_talked_to_the_service() {
        media_from_a_socket_that_just_talked_to_the_service_at(
            ep("192.168.1.2:50000"),
            ep("157.240.1.1:3478"),
            ep("203.0.113.9:61000"),
        );
    }

    /// The socket need not be site-local: a global IPv6 address (no NAT), a public IPv4 one
    /// (a capture past a carrier's NAT).
    #[test]
    fn media_from_a_global_socket_that_just_talked_to_the_service() {
        media_from_a_socket_that_just_talked_to_the_service_at(
            ep("[2a02:6b8:50::2]:50000"),
            ep("[2a03:2880:f200::1]:3478"),
            ep("[2001:db8:9::9]:61000"),
        );
        media_from_a_socket_that_just_talked_to_the_service_at(
            ep("95.24.7.2:50000"),
            ep("157.240.1.1:3478"),
            ep("203.0.113.9:61000"),
        );
        media_from_a_socket_that_just_talked_to_the_service_at(
            ep("198.18.7.2:50000"),
            ep("157.240.1.1:3478"),
            ep("203.0.113.9:61000"),
        );
    }

    fn media_from_a_socket_that_just_talked_to_the_service_at(
        lan: Endpoint,
        relay: Endpoint,
        peer: Endpoint,
    ) {
        let rtp = crate::decode::rtp::fixtures::packet(111, 1, 0, 7);
        // RTP, and media of a protocol of its own, likewise.
        for media in [&rtp[..], b"\x5a opaque media of its own"] {
            let mut c = with_zoom();
            let mut st = c.on_new_flow(Proto::Udp, lan, relay, T0);
            udp(&mut c, &mut st, (lan, relay), b"\x17\xfe\xfd opaque relay payload", T0);
            let mut p2p = c.on_new_flow(Proto::Udp, lan, peer, T0);
            // A plain Binding request (another STUN server asked for the socket's address):
            // nothing.
            udp(&mut c, &mut p2p, (lan, peer), &stun_message(0x0001, 9, &[]), T0);
            assert_eq!(p2p.class.service, None);
            udp(&mut c, &mut p2p, (lan, peer), media, T0);
            assert_eq!(p2p.class, Classification { service: Some(0), evidence: Evidence::Call });
            // Past the socket's age, another socket's media gets nothing.
            let late = T0.add_micros(CALL_SOCKET_MAX_AGE_US + 1);
            let other = Endpoint { port: lan.port + 10, ..lan };
            let mut st2 = c.on_new_flow(Proto::Udp, other, relay, T0);
            udp(&mut c, &mut st2, (other, relay), b"x", T0);
            let far = ep("198.51.100.1:9");
            let mut p = c.on_new_flow(Proto::Udp, other, far, late);
            udp(&mut c, &mut p, (other, far), media, late);
            assert_eq!(p.class.service, None, "the socket's exchange is too old");
        }
        // A QUIC flow's socket is no call's: its next flow is not linked.
        let mut c = with_zoom();
        let quic_server = Endpoint { port: 443, ..relay };
        let mut st = c.on_new_flow(Proto::Udp, lan, quic_server, T0);
        udp(&mut c, &mut st, (lan, quic_server), b"\x45 short header", T0);
        assert_eq!(st.class.service, Some(0));
        let mut p = c.on_new_flow(Proto::Udp, lan, peer, T0);
        udp(&mut c, &mut p, (lan, peer), &rtp, T0);
        assert_eq!(p.class.service, None, "a QUIC socket");
    }

    /// A call whose media is not RTP (a protocol of its own) may open its peer-to-peer leg
    /// with ICE checks: a STUN request with a USERNAME from the socket that talked to the
    /// service is the service's (a leg whose media never comes is linked by its checks). A plain
    /// Binding request from it (asking another STUN server for the socket's address) is not,
    /// nor a check from another socket.
    #[test]
    fn an_ice_check_from_a_socket_that_just_talked_to_the_service() {
        let mut c = with_zoom();
        let (lan, relay) = (ep("192.168.1.2:50000"), ep("157.240.1.1:3478"));
        let mut st = c.on_new_flow(Proto::Udp, lan, relay, T0);
        udp(&mut c, &mut st, (lan, relay), &stun_message(0x0001, 1, &[]), T0);
        let stun_server = ep("198.51.100.1:19302");
        let mut other_server = c.on_new_flow(Proto::Udp, lan, stun_server, T0);
        udp(&mut c, &mut other_server, (lan, stun_server), &stun_message(0x0001, 2, &[]), T0);
        assert_eq!(other_server.class.service, None);
        let check = stun_message(0x0001, 3, &[(0x0006, b"a1b2c3d4:e5f6a7b8")]);
        let (other, peer) = (ep("192.168.1.2:50002"), ep("203.0.113.9:61000"));
        let mut elsewhere = c.on_new_flow(Proto::Udp, other, peer, T0);
        udp(&mut c, &mut elsewhere, (other, peer), &check, T0);
        assert_eq!(elsewhere.class.service, None, "another socket");
        let mut p2p = c.on_new_flow(Proto::Udp, lan, peer, T0);
        udp(&mut c, &mut p2p, (lan, peer), &check, T0);
        assert_eq!(p2p.class, Classification { service: Some(0), evidence: Evidence::Call });
    }

    #[test]
    fn zoom_media_framing_between_peers() {
        use framing::fixtures::zoom_p2p;
        let mut c = with_zoom();
        let (a, b) = (ep("192.168.1.2:50000"), ep("203.0.113.9:61000"));
        let mut st = c.on_new_flow(Proto::Udp, a, b, T0);
        udp(&mut c, &mut st, (a, b), &zoom_p2p(15, 1), T0);
        assert_eq!(st.class.service, None, "one packet is not enough");
        udp(&mut c, &mut st, (a, b), &zoom_p2p(16, 2), T0);
        assert_eq!(st.class, Classification { service: Some(1), evidence: Evidence::Signature });
        // Without a Zoom service in the catalogue, no framing is looked for.
        let mut plain = classifier();
        let mut st = plain.on_new_flow(Proto::Udp, a, b, T0);
        for seq in 0..4 {
            udp(&mut plain, &mut st, (a, b), &zoom_p2p(15, seq), T0);
        }
        assert_eq!(st.class.service, None);
    }

    #[test]
    fn counters_share_a_byte_without_mixing() {
        let mut c = Counters(INSPECT_PACKETS);
        for _ in 0..40 {
            c.add_zoom_packet();
        }
        assert_eq!((c.inspections_left(), c.zoom_packets()), (INSPECT_PACKETS, 15));
        c.set_inspections_left(200);
        assert_eq!((c.inspections_left(), c.zoom_packets()), (15, 15));
        c.set_inspections_left(0);
        assert_eq!((c.inspections_left(), c.zoom_packets()), (0, 15));
    }

    #[test]
    fn quic_initials_classify_by_server_name() {
        use crate::decode::quic::Version;
        use crate::decode::quic::fixtures::{client_initial, crypto_frame};
        let mut c = classifier();
        let (client, server) = (ep("192.168.1.2:50000"), ep("203.0.113.9:443"));
        let send = |c: &mut Classifier, st: &mut ClassState, dir, payload: &[u8], len: u32| {
            c.inspect(st, Proto::Udp, (client, server), dir, payload, len, None, T0);
        };
        let hello = &client_hello("web.whatsapp.com")[5..];
        let initial = |pn, frames: Vec<u8>| {
            let mut frames = frames;
            frames.resize(1200, 0);
            client_initial(Version::V1, &[9; 8], pn, &frames)
        };
        let whole = initial(0, crypto_frame(0, hello));
        let len = whole.len() as u32;
        // From the server, or a datagram shorter than a client Initial: not read.
        let mut st = c.on_new_flow(Proto::Udp, client, server, T0);
        send(&mut c, &mut st, Direction::Down, &whole, len);
        send(&mut c, &mut st, Direction::Up, &whole[..1100], 1100);
        assert_eq!(st.class.service, None);
        // A capture cut at the snap length still has the name: the wire length counts.
        send(&mut c, &mut st, Direction::Up, &whole[..300], len);
        assert_eq!(st.class, Classification { service: Some(0), evidence: Evidence::Signature });
        assert_eq!(c.stats().endpoints, 0, "QUIC servers are shared: no endpoints learned");

        // The name in the second of two Initials.
        let cut = hello.len() - 8;
        let first = initial(0, crypto_frame(0, &hello[..cut]));
        let second = initial(1, crypto_frame(cut, &hello[cut..]));
        let mut st = c.on_new_flow(Proto::Udp, client, server, T0);
        send(&mut c, &mut st, Direction::Up, &first, len);
        assert_eq!(st.class.service, None);
        send(&mut c, &mut st, Direction::Up, &second, len);
        assert_eq!(st.class.service, Some(0));
        // The second Initial alone (its flow's first one unseen) names nothing.
        let other = (ep("192.168.1.3:50001"), server);
        let mut st = c.on_new_flow(Proto::Udp, other.0, other.1, T0);
        c.inspect(&mut st, Proto::Udp, other, Direction::Up, &second, len, None, T0);
        assert_eq!(st.class.service, None);
        // Google QUIC's cleartext CHLO.
        let chlo = crate::decode::gquic::fixtures::q046("web.whatsapp.com");
        let mut st = c.on_new_flow(Proto::Udp, client, server, T0);
        send(&mut c, &mut st, Direction::Up, &chlo, chlo.len() as u32);
        assert_eq!(st.class, Classification { service: Some(0), evidence: Evidence::Signature });
    }

    #[test]
    fn roles() {
        let wa = Classification { service: Some(0), evidence: Evidence::Range };
        let none = Classification::default();
        let (lan, wan) = (ep("192.168.1.2:5000"), ep("203.0.113.1:443"));
        let r = |class, proto, server, packets, duration| {
            role(class, proto, (lan, server), (packets, duration), Routed::Yes)
        };
        assert_eq!(r(wa, Proto::Udp, wan, 1, 1), Role::Target);
        assert_eq!(r(none, Proto::Tcp, wan, 3, 1_000_000), Role::Control);
        assert_eq!(r(none, Proto::Udp, wan, 3, 1_000_000), Role::Control, "QUIC");
        assert_eq!(r(none, Proto::Udp, ep("203.0.113.1:3478"), 3, 1_000_000), Role::Other);
        assert_eq!(r(none, Proto::Udp, wan, 500, 10_000_000), Role::Control);
        assert_eq!(r(none, Proto::Udp, ep("239.255.255.250:1900"), 500, 1), Role::Other);
        assert_eq!(r(none, Proto::Udp, ep("[ff02::fb]:5353"), 500, 1), Role::Other);
        // Between site-local addresses: inside the LAN with the TTLs it started with, a
        // control through a router (a network numbered privately on both sides).
        let (nas, cgn) = (ep("192.168.1.9:445"), (ep("100.64.0.2:5"), ep("10.0.0.1:5")));
        let local = |a, b, routed| role(none, Proto::Tcp, (a, b), (500, 1), routed);
        assert_eq!(local(lan, nas, Routed::No), Role::Other);
        assert_eq!(local(lan, nas, Routed::Yes), Role::Control);
        assert_eq!(local(cgn.0, cgn.1, Routed::No), Role::Other);
        // IPv6 without NAT: a global LAN address talking to a global server is a control;
        // unique local addresses on both sides stay inside.
        let v6 = ep("[2a02:6b8:50::2]:50000");
        assert_eq!(local(v6, ep("[2a02:6b8:51::9]:443"), Routed::No), Role::Control);
        assert_eq!(local(ep("[fd00::2]:5"), ep("[fd00:1::9]:445"), Routed::No), Role::Other);
    }

    /// A TTL below 32, 64, 128 and 255 in either direction was decremented by a router.
    #[test]
    fn routed_by_ttl() {
        assert_eq!(Routed::from_ttls([Some((64, 64)), Some((128, 128))]), Routed::No);
        assert_eq!(Routed::from_ttls([Some((64, 64)), None]), Routed::No);
        assert_eq!(Routed::from_ttls([Some((64, 64)), Some((63, 63))]), Routed::Yes);
        assert_eq!(Routed::from_ttls([Some((255, 255)), Some((52, 64))]), Routed::Yes);
        assert_eq!(Routed::from_ttls([None, None]), Routed::No);
    }
}
