//! The pipeline: decode → flow table → measure → classify, one packet at a time, on packet
//! time. `analyze` feeds it from files; the daemon will feed it from interfaces. Finished flows
//! come out as [`FinishedFlow`] records with their final classification and role.
//!
//! Per packet, once warm: no allocation (the table, the detail pool and the scratch buffer
//! are reused; only a flow that finishes becomes a new record, and a flow's out-of-line
//! records are allocated once, when it first needs them: see [`crate::measure`]), no lock, no
//! log line. Every packet is either measured or counted under a
//! [`SkipReason`], so `packets == measured + skipped` always holds.

use std::collections::HashMap;
use std::net::IpAddr;

use foldhash::fast::RandomState;
use hdrhistogram::Histogram;

use crate::classify::{
    Catalogue, ClassState, Classification, Classifier, Role, Routed, ServiceId, is_initial_ttl,
    role,
};
use crate::config::PipelineConfig;
use crate::decode::stun::StunMessage;
use crate::decode::{
    self, FragmentCache, IPPROTO_TCP, IPPROTO_UDP, IcmpError, IpHeader, LinkType, SkipCounts,
    SkipReason, Transport, tcp_flags,
};
use crate::flow::{
    CapturePoint, ClientBy, CopyFilter, Endpoint, FlowEntry, FlowKey, FlowTable, Proto, Removal,
    TableStats, source_is_client,
};
use crate::measure::loss::LossLog;
use crate::measure::rtt::Leg;
use crate::measure::throughput::BinSeries;
use crate::measure::{Detail, FlowMeasures, RttSamples, TransportMeasures};
use crate::time::Timestamp;

/// Packet time between two checks for idle flows: timeouts are kept to this precision.
pub const EXPIRY_INTERVAL_US: u64 = 100_000;

/// Highest RTT the per-service histograms record (larger samples saturate), in microseconds.
const HISTOGRAM_MAX_US: u64 = 60_000_000;

/// What the flow table stores per flow.
#[derive(Debug, Clone)]
pub struct FlowState {
    pub measures: FlowMeasures,
    pub class: ClassState,
    detail: Option<u32>,
}

/// How a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// FIN in both directions.
    Fin,
    Rst,
    /// Idle past its timeout.
    Idle,
    /// Pushed out of the full flow table.
    Evicted,
    /// Still open when the input ended.
    EndOfInput,
    /// Still open at a window's end (a daemon's snapshot); the flow goes on.
    Active,
}

impl FlowEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowEnd::Fin => "fin",
            FlowEnd::Rst => "rst",
            FlowEnd::Idle => "idle",
            FlowEnd::Evicted => "evicted",
            FlowEnd::EndOfInput => "end_of_input",
            FlowEnd::Active => "active",
        }
    }
}

/// A flow that left the table, with everything measured about it.
#[derive(Debug, Clone)]
pub struct FinishedFlow {
    pub id: u64,
    pub proto: Proto,
    pub client: Endpoint,
    pub server: Endpoint,
    pub client_by: ClientBy,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    pub measures: FlowMeasures,
    /// Throughput bins, for flows that had a detail slot.
    pub bins: Option<BinSeries>,
    /// Windowed (last ~10 s) minimum and maximum RTT per leg, indexed by [`Leg::index`].
    pub rtt_recent: Option<[(Option<u32>, Option<u32>); 2]>,
    /// TCP loss events towards the client, for flows that had a detail slot.
    pub losses: Option<LossLog>,
    pub class: Classification,
    /// The client address of the call this UDP flow is a leg of, when an ICE fragment tied it
    /// to a call from another address ([`Classifier::call_host`]); `None`: its own client's.
    pub call_host: Option<IpAddr>,
    pub role: Role,
    pub end: FlowEnd,
    /// The flow's measurements at the start of the window it is reported in, when it was
    /// already open then (see [`Pipeline::snapshot`]): the window's part of the flow is the
    /// difference. `None`: the flow started in the window, or no windows were cut.
    pub prior: Option<Box<FlowMeasures>>,
}

impl FinishedFlow {
    /// The client address of the call this flow is a leg of.
    pub fn call_client(&self) -> IpAddr {
        self.call_host.unwrap_or(self.client.addr)
    }
}

/// Counters of the whole run.
#[derive(Debug, Clone, Default)]
pub struct PipelineStats {
    /// Packets read: each is measured or skipped ([`PipelineStats::measured`]).
    pub packets: u64,
    pub skipped: SkipCounts,
    /// Earliest packet time of the decoded packets, and the latest time of any packet read
    /// or window cut, once a packet decoded (`last_at` is set by `finish`).
    pub first_at: Option<Timestamp>,
    pub last_at: Option<Timestamp>,
}

impl PipelineStats {
    /// Packets measured: those read and not skipped (counted so rather than one by one: an
    /// instruction a packet).
    pub fn measured(&self) -> u64 {
        self.packets - self.skipped.total()
    }
}

/// RTT histograms per leg: one per service, one for control TCP flows.
#[derive(Debug)]
pub struct RttHistograms {
    by_service: Vec<Option<Box<[Histogram<u32>; 2]>>>,
    control: Option<Box<[Histogram<u32>; 2]>>,
}

impl RttHistograms {
    fn new(services: usize) -> Self {
        RttHistograms { by_service: vec![None; services], control: None }
    }

    fn record(&mut self, service: Option<ServiceId>, samples: RttSamples) {
        let slot = match service {
            Some(s) => &mut self.by_service[usize::from(s)],
            None => &mut self.control,
        };
        let pair = slot.get_or_insert_with(|| {
            let h = || {
                Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 2).expect("valid histogram bounds")
            };
            Box::new([h(), h()])
        });
        if let Some(v) = samples.external_us {
            pair[Leg::External.index()].saturating_record(v.max(1));
        }
        if let Some(v) = samples.internal_us {
            pair[Leg::Internal.index()].saturating_record(v.max(1));
        }
    }

    /// Add another pipeline's histograms (the workers of a sharded run): the counts of the
    /// same buckets add up, so the sum is the histogram of all the samples.
    pub fn add(&mut self, other: &RttHistograms) {
        let slots = self.by_service.iter_mut().chain([&mut self.control]);
        for (mine, theirs) in slots.zip(other.by_service.iter().chain([&other.control])) {
            let Some(theirs) = theirs else { continue };
            match mine {
                Some(pair) => {
                    for (h, t) in pair.iter_mut().zip(theirs.iter()) {
                        h.add(t)
                            .expect("histograms of one pipeline configuration have equal bounds");
                    }
                }
                None => *mine = Some(theirs.clone()),
            }
        }
    }

    /// The histogram of a service's (or, with `None`, the control flows') leg.
    pub fn get(&self, service: Option<ServiceId>, leg: Leg) -> Option<&Histogram<u32>> {
        let slot = match service {
            Some(s) => self.by_service.get(usize::from(s))?,
            None => &self.control,
        };
        slot.as_ref().map(|pair| &pair[leg.index()])
    }
}

/// A bounded pool of [`Detail`] slots. A quarter is kept for target flows.
#[derive(Debug)]
struct DetailPool {
    slots: Vec<Detail>,
    free: Vec<u32>,
    capacity: usize,
    bin_us: u64,
    /// Target flows that found the pool exhausted.
    refused: u64,
}

impl DetailPool {
    fn acquire(&mut self, target: bool) -> Option<u32> {
        let in_use = self.slots.len() - self.free.len();
        if !target && in_use * 4 >= self.capacity * 3 {
            return None;
        }
        if let Some(idx) = self.free.pop() {
            return Some(idx);
        }
        if self.slots.len() < self.capacity {
            self.slots.push(Detail::new(self.bin_us));
            return Some((self.slots.len() - 1) as u32);
        }
        self.refused += u64::from(target);
        None
    }

    fn release(&mut self, idx: u32) {
        self.slots[idx as usize].reset();
        self.free.push(idx);
    }
}

/// The packet pipeline.
#[derive(Debug)]
pub struct Pipeline {
    classifier: Classifier,
    table: FlowTable<FlowState>,
    details: DetailPool,
    fragments: FragmentCache,
    stats: PipelineStats,
    clock: Timestamp,
    next_expiry: Timestamp,
    /// The flow of the previous packet: consecutive packets often share one.
    last_flow: Option<(FlowKey, u32)>,
    removed: Vec<(FlowEntry<FlowState>, Removal)>,
    finished: Vec<FinishedFlow>,
    histograms: RttHistograms,
    /// For windows (the daemon): keep only target and control flows, at most this many
    /// between snapshots; the rest are counted.
    window_retention: Option<usize>,
    finished_dropped: u64,
    /// Windows: the time of the previous snapshot, the finished flows already handed to one
    /// (without retention they stay for the report), and the measurements of every open
    /// target or control flow as of the previous snapshot.
    last_cut: Option<Timestamp>,
    finished_reported: usize,
    priors: HashMap<u64, Box<FlowMeasures>, RandomState>,
    /// Where each flow is measured, in a capture of several interfaces (made at its first
    /// frame with a cooked header, or from one of several interfaces), as many flows as the
    /// table holds.
    copies: Option<Box<CopyFilter>>,
    /// Which of the daemon's interfaces the next frames come from, when it captures several
    /// ([`Pipeline::set_interface`]).
    interface: Option<u32>,
}

/// Everything a run measured, for the report.
#[derive(Debug)]
pub struct Analysis {
    pub flows: Vec<FinishedFlow>,
    pub stats: PipelineStats,
    pub table: TableStats,
    pub max_flows: usize,
    pub detail_flows: usize,
    /// Target flows that found the detail pool exhausted.
    pub detail_refused: u64,
    pub classifier: Classifier,
    pub histograms: RttHistograms,
}

impl Pipeline {
    pub fn new(config: PipelineConfig, classifier: Classifier) -> Self {
        let services = classifier.catalogue().services().len();
        Pipeline {
            classifier,
            table: FlowTable::new(config.max_flows, config.timeouts),
            details: DetailPool {
                slots: Vec::new(),
                free: Vec::new(),
                capacity: config.detail_flows,
                bin_us: config.bin_us,
                refused: 0,
            },
            fragments: FragmentCache::default(),
            stats: PipelineStats::default(),
            clock: Timestamp::default(),
            next_expiry: Timestamp::default(),
            last_flow: None,
            removed: Vec::new(),
            finished: Vec::new(),
            histograms: RttHistograms::new(services),
            window_retention: None,
            finished_dropped: 0,
            last_cut: None,
            finished_reported: 0,
            priors: HashMap::default(),
            copies: None,
            interface: None,
        }
    }

    /// Hand finished flows to snapshots, not to a report of everything: flows of no role are
    /// not kept, and at most `max` finished flows wait for the next snapshot (a flood of new
    /// flows between two windows cannot grow memory; what does not fit is counted).
    pub fn retain_for_windows(&mut self, max: usize) {
        self.window_retention = Some(max);
    }

    /// The flows finished so far that a snapshot has seen (without window retention a
    /// snapshot copies them and they stay for [`Pipeline::finish`]): a streaming reader writes
    /// them out and memory no longer holds them. Call right after [`Pipeline::snapshot`].
    pub fn drain_finished(&mut self) -> std::vec::Drain<'_, FinishedFlow> {
        let seen = std::mem::take(&mut self.finished_reported);
        self.finished.drain(..seen)
    }

    /// Leave the checks for idle flows to the caller's [`Pipeline::expire`] (a sharded
    /// `analyze`, whose workers each see every packet's time and check at the same times).
    pub fn expire_externally(&mut self) {
        self.next_expiry = Timestamp::from_micros(u64::MAX);
    }

    /// Check for idle flows at packet time `now`, as [`Pipeline::process`] does every
    /// [`EXPIRY_INTERVAL_US`] of packet time on its own.
    pub fn expire(&mut self, now: Timestamp) {
        self.clock = self.clock.max(now);
        self.table.expire(self.clock, &mut self.removed);
        self.finish_removed();
    }

    /// Learn from a DNS answer whose packet another pipeline measures (in a sharded `analyze`
    /// every worker learns from every answer: they label the flows that follow, on any worker).
    pub fn learn_dns(&mut self, payload: &[u8], ts: Timestamp) {
        self.classifier.learn_dns(payload, ts);
    }

    /// Flows the table has created so far.
    #[inline]
    pub fn flows_created(&self) -> u64 {
        self.table.created()
    }

    /// Flows in the table now.
    pub fn open_flows(&self) -> usize {
        self.table.len()
    }

    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// The latest packet time seen (or snapshot taken).
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// Feed one captured frame. `wire_len` is its length on the wire.
    pub fn process(&mut self, link: LinkType, ts: Timestamp, frame: &[u8], wire_len: u32) {
        self.stats.packets += 1;
        // The table ages on the latest time seen (of every packet read, whatever it holds:
        // a sharded `analyze`'s workers keep this clock without decoding every packet), so a
        // packet stamped in the past cannot resurrect expired state or make the clock run
        // backwards.
        self.clock = self.clock.max(ts);
        if self.clock >= self.next_expiry {
            self.next_expiry = self.clock.add_micros(EXPIRY_INTERVAL_US);
            self.expire(self.clock);
        }
        if (matches!(link, LinkType::LinuxSll | LinkType::LinuxSll2) || self.interface.is_some())
            && self.is_second_copy(link, ts, frame)
        {
            return self.stats.skipped.add(SkipReason::SecondCopy);
        }
        // Borrowed from the result, not moved out of it: the packet is measured by reference,
        // and a moved-out copy is rebuilt field by field (about 18 instructions per packet).
        let decoded = decode::decode(link, ts, frame, wire_len, &mut self.fragments);
        let packet = match &decoded {
            Ok(p) => p,
            Err(reason) => return self.stats.skipped.add(*reason),
        };
        if self.stats.first_at.is_none_or(|t| ts < t) {
            self.stats.first_at = Some(ts);
        }

        let (proto, src_port, dst_port, payload, payload_len, flags) = match packet.transport {
            Transport::Tcp(t) => {
                (Proto::Tcp, t.src_port, t.dst_port, t.payload, t.payload_len, t.flags)
            }
            Transport::Udp(u) => (Proto::Udp, u.src_port, u.dst_port, u.payload, u.payload_len, 0),
            Transport::Fragment(f) => {
                let proto = if f.proto == IPPROTO_TCP { Proto::Tcp } else { Proto::Udp };
                debug_assert!(f.proto == IPPROTO_TCP || f.proto == IPPROTO_UDP);
                (proto, f.src_port, f.dst_port, &[][..], 0, 0)
            }
            Transport::IcmpError(e) => return self.icmp_error(&e),
        };
        let ip = &packet.ip;
        let (key, src_first) =
            FlowKey::from_words(proto, ip.v6, (ip.src, src_port), (ip.dst, dst_port));
        let idx = match self.last_flow {
            Some((last, idx)) if last == key => idx,
            // Not the previous packet's flow: look it up (or start it), and remember it for
            // the next packet (a hit leaves `last_flow` as it is).
            _ => {
                let found = self.table.find(&key);
                let Some(idx) =
                    found.or_else(|| self.new_flow(key, ip, src_port, dst_port, flags, ts))
                else {
                    return self.stats.skipped.add(SkipReason::FlowTableFull);
                };
                self.last_flow = Some((key, idx));
                idx
            }
        };
        let entry = self.table.get_mut(idx);
        let dir = entry.direction(src_first);
        if entry.state.measures.repeats(dir, packet) {
            return self.stats.skipped.add(SkipReason::SecondCopy);
        }
        let stun = stun_message(proto, payload, payload_len);
        let inspect = !matches!(packet.transport, Transport::Fragment(_))
            && entry.state.class.wants(proto, src_port, payload, stun.is_some());
        let ends = inspect.then(|| (entry.client(), entry.server()));
        let flow_start = entry.first_at;
        let state = &mut entry.state;
        let was_target = state.class.class.service.is_some();
        let detail = state.detail.map(|d| &mut self.details.slots[d as usize]);
        let samples = state.measures.on_packet(dir, packet, stun.as_ref(), flow_start, detail);
        if let Some(ends) = ends {
            self.classifier.inspect(
                &mut state.class,
                proto,
                ends,
                dir,
                payload,
                payload_len,
                stun.as_ref(),
                ts,
            );
        }
        // RTT distributions: per service, and for the control flows (which need not be
        // classified to be known as comparable: not local, not multicast; or local, but
        // through a router, as a decremented TTL shows: see `Routed`; group addresses have
        // no round trips).
        if samples != RttSamples::default() {
            state.class.crosses_site |= !is_initial_ttl(packet.ip.ttl);
            if state.class.class.service.is_some() || state.class.crosses_site {
                self.histograms.record(state.class.class.service, samples);
            }
        }
        if !was_target && state.class.class.service.is_some() && state.detail.is_none() {
            state.detail = self.details.acquire(true);
        }
        if flags & (tcp_flags::FIN | tcp_flags::RST) != 0
            && let TransportMeasures::Tcp(tcp) = &state.measures.transport
        {
            entry.closed = tcp.closed();
            self.table.touch(idx, ts);
        } else {
            entry.seen_at(ts);
        }
    }

    /// The frames processed from now on come from the daemon's interface number `interface`
    /// of several it captures (`None`: one interface). A router forwarding without NAT shows
    /// each packet at two, and a flow is measured at one of them ([`CopyFilter`]).
    pub fn set_interface(&mut self, interface: Option<u32>) {
        self.interface = interface;
    }

    /// A capture of several interfaces (Linux's cooked headers, or the daemon's interfaces):
    /// whether the frame is a copy of a packet whose flow is measured at another
    /// ([`CopyFilter`]).
    #[cold]
    #[inline(never)]
    fn is_second_copy(&mut self, link: LinkType, ts: Timestamp, frame: &[u8]) -> bool {
        let point = CapturePoint::of(link, frame).or(self.interface.map(CapturePoint::Interface));
        let Some(point) = point else { return false };
        let max_flows = self.table.max_flows();
        let copies = self.copies.get_or_insert_with(|| Box::new(CopyFilter::new(max_flows)));
        copies.is_second_copy(point, link, ts, frame)
    }

    /// Start the flow of a packet the table does not hold: its index, or `None` when the
    /// table is full and refuses it. Cold and never inlined: few packets start a flow, and
    /// the per-packet path stays small.
    #[cold]
    #[inline(never)]
    fn new_flow(
        &mut self,
        key: FlowKey,
        ip: &IpHeader,
        src_port: u16,
        dst_port: u16,
        flags: u8,
        ts: Timestamp,
    ) -> Option<u32> {
        let proto = key.proto();
        let src = Endpoint::new(ip.src_addr(), src_port);
        let dst = Endpoint::new(ip.dst_addr(), dst_port);
        let syn = flags & tcp_flags::SYN != 0;
        let synack = syn && flags & tcp_flags::ACK != 0;
        let catalogue = self.classifier.catalogue();
        let (src_is_client, client_by) =
            source_is_client(src, dst, syn, synack, |p| catalogue.is_service_port(p));
        let (client, server) = if src_is_client { (src, dst) } else { (dst, src) };
        let class = self.classifier.on_new_flow(proto, client, server, ts);
        let detail = self.details.acquire(class.class.service.is_some());
        let state = FlowState { measures: FlowMeasures::new(proto), class, detail };
        match self.table.insert(key, client, client_by, ts, state, &mut self.removed) {
            Some(idx) => {
                self.finish_removed();
                Some(idx)
            }
            None => {
                if let Some(d) = detail {
                    self.details.release(d);
                }
                None
            }
        }
    }

    /// A full-size copy of a packet that the measuring capture saw truncated (the daemon's
    /// narrow classification capture: DNS answers, TLS ClientHellos, QUIC Initials, STUN):
    /// only the classifier looks at it, and only for a flow the table already holds (the
    /// measuring capture creates flows and counts packets; nothing is counted twice).
    /// (Cold and never inlined: it must not change how the per-packet path is compiled.)
    #[cold]
    #[inline(never)]
    pub fn inspect_full(&mut self, link: LinkType, ts: Timestamp, frame: &[u8], wire_len: u32) {
        let Ok(packet) = decode::decode(link, ts, frame, wire_len, &mut self.fragments) else {
            return;
        };
        let (proto, src_port, dst_port, payload, payload_len) = match packet.transport {
            Transport::Tcp(t) => (Proto::Tcp, t.src_port, t.dst_port, t.payload, t.payload_len),
            Transport::Udp(u) => (Proto::Udp, u.src_port, u.dst_port, u.payload, u.payload_len),
            _ => return,
        };
        let ip = &packet.ip;
        let (key, src_first) =
            FlowKey::from_words(proto, ip.v6, (ip.src, src_port), (ip.dst, dst_port));
        let Some(idx) = self.table.find(&key) else { return };
        let entry = self.table.get_mut(idx);
        let dir = entry.direction(src_first);
        let stun = stun_message(proto, payload, payload_len);
        entry.state.class.grant_inspection();
        if !entry.state.class.wants(proto, src_port, payload, stun.is_some()) {
            return;
        }
        let ends = (entry.client(), entry.server());
        let state = &mut entry.state;
        let was_target = state.class.class.service.is_some();
        self.classifier.inspect(
            &mut state.class,
            proto,
            ends,
            dir,
            payload,
            payload_len,
            stun.as_ref(),
            ts,
        );
        if !was_target && state.class.class.service.is_some() && state.detail.is_none() {
            state.detail = self.details.acquire(true);
        }
    }

    /// An ICMP error counts for the flow of the packet it quotes, if the table holds it.
    fn icmp_error(&mut self, e: &IcmpError) {
        let proto = if e.quoted_proto == IPPROTO_TCP { Proto::Tcp } else { Proto::Udp };
        let (src, dst) = ((e.quoted_src, e.quoted_src_port), (e.quoted_dst, e.quoted_dst_port));
        let (key, src_first) = FlowKey::from_words(proto, e.v6, src, dst);
        match self.table.find(&key) {
            Some(idx) => {
                let entry = self.table.get_mut(idx);
                let dir = entry.direction(src_first);
                entry.state.measures.on_icmp_error(dir, e);
            }
            None => self.stats.skipped.add(SkipReason::IcmpErrorNoFlow),
        }
    }

    /// End of input: finish every flow, give late knowledge (an endpoint or DNS answer learned
    /// after a flow ended) to the flows it concerns, and return the analysis.
    pub fn finish(mut self) -> Analysis {
        self.stats.last_at = self.stats.first_at.map(|_| self.clock);
        // In batches, so that a large table is not held twice over.
        while self.table.drain(1024, &mut self.removed) {
            self.finish_removed();
        }
        self.finish_removed();
        let clock = self.clock;
        for flow in &mut self.finished {
            let class =
                self.classifier.resolve(flow.class, flow.proto, flow.client, flow.server, clock);
            if class != flow.class {
                flow.class = class;
                flow.role = flow_role(flow);
            }
            flow.call_host = call_host(&self.classifier, flow.proto, flow.client, clock);
        }
        let mut flows = self.finished;
        sort_by_id(&mut flows);
        Analysis {
            flows,
            stats: self.stats,
            table: self.table.stats(),
            max_flows: self.table.max_flows(),
            detail_flows: self.details.capacity,
            detail_refused: self.details.refused,
            classifier: self.classifier,
            histograms: self.histograms,
        }
    }

    fn finish_removed(&mut self) {
        if self.removed.is_empty() {
            return;
        }
        if self.last_flow.is_some_and(|(k, _)| self.removed.iter().any(|(e, _)| e.key == k)) {
            self.last_flow = None;
        }
        for (entry, removal) in self.removed.drain(..) {
            let (client, server) = (entry.client(), entry.server());
            let FlowEntry { id, key, client_by, first_at, last_at, closed, state, .. } = entry;
            let (bins, rtt_recent, losses) = match state.detail {
                Some(d) => {
                    let detail = &mut self.details.slots[d as usize];
                    let recent =
                        [0, 1].map(|leg| (detail.rtt_min[leg].get(), detail.rtt_max[leg].get()));
                    let losses = std::mem::take(&mut detail.losses);
                    let out = (detail.bins.series(), Some(recent), Some(losses));
                    self.details.release(d);
                    out
                }
                None => (None, None, None),
            };
            let end = match (&state.measures.transport, removal) {
                (TransportMeasures::Tcp(tcp), _) if closed => {
                    if tcp.rst_seen() {
                        FlowEnd::Rst
                    } else {
                        FlowEnd::Fin
                    }
                }
                (_, Removal::Idle) => FlowEnd::Idle,
                (_, Removal::Evicted) => FlowEnd::Evicted,
                (_, Removal::EndOfInput) => FlowEnd::EndOfInput,
            };
            let class =
                self.classifier.resolve(state.class.class, key.proto(), client, server, self.clock);
            let flow = FinishedFlow {
                id,
                proto: key.proto(),
                client,
                server,
                client_by,
                first_at,
                last_at,
                measures: state.measures,
                bins,
                rtt_recent,
                losses,
                class,
                call_host: call_host(&self.classifier, key.proto(), client, self.clock),
                role: Role::Other,
                end,
                prior: self.priors.remove(&id),
            };
            let flow = with_role(flow);
            match self.window_retention {
                Some(_) if flow.role == Role::Other => {}
                Some(max) if self.finished.len() >= max => self.finished_dropped += 1,
                _ => self.finished.push(flow),
            }
        }
    }

    /// A window's end at packet time `now` (the daemon's and `analyze`'s windows alike): the
    /// flows finished since the previous snapshot, and a copy of every open target or control
    /// flow (`end` = `active`) that had a packet in the window or in the one before (a flow
    /// that went silent is still judged once its silence can show), as measured so far.
    /// Each carries in `prior` its measurements at the previous snapshot, so that the window
    /// judges its own part of flows longer than a window. The table and its flows go on.
    ///
    /// With [`Pipeline::retain_for_windows`] finished flows are handed over and dropped;
    /// without, they are copied and stay for [`Pipeline::finish`].
    pub fn snapshot(&mut self, now: Timestamp) -> Snapshot {
        self.clock = self.clock.max(now);
        self.table.expire(self.clock, &mut self.removed);
        self.finish_removed();
        let mut flows = match self.window_retention {
            Some(_) => std::mem::take(&mut self.finished),
            None => {
                let new = self.finished[self.finished_reported..]
                    .iter()
                    .filter(|f| f.role != Role::Other)
                    .cloned()
                    .collect();
                self.finished_reported = self.finished.len();
                new
            }
        };
        let previous = self.last_cut.unwrap_or(Timestamp::from_micros(0));
        // Active since the cut before the previous one: twice the last window's length.
        let recent = Timestamp::from_micros(
            previous.micros().saturating_sub(now.micros().saturating_sub(previous.micros())),
        );
        let mut priors = HashMap::default();
        for entry in self.table.entries() {
            let (client, server) = (entry.client(), entry.server());
            let proto = entry.key.proto();
            let class =
                self.classifier.resolve(entry.state.class.class, proto, client, server, self.clock);
            let measures = &entry.state.measures;
            let packets = measures.dirs.iter().map(|d| d.packets).sum();
            let duration_us = entry.last_at.since(entry.first_at);
            let role =
                role(class, proto, (client, server), (packets, duration_us), routed(measures));
            // Only target and control flows are judged; their measurements now are the next
            // window's prior.
            if role == Role::Other {
                continue;
            }
            let prior = self.priors.remove(&entry.id);
            priors.insert(entry.id, Box::new(measures.clone()));
            if entry.last_at < recent {
                continue;
            }
            let detail = entry.state.detail.map(|d| &self.details.slots[d as usize]);
            flows.push(FinishedFlow {
                id: entry.id,
                proto,
                client,
                server,
                client_by: entry.client_by,
                first_at: entry.first_at,
                last_at: entry.last_at,
                measures: measures.clone(),
                bins: detail.and_then(|d| d.bins.series()),
                rtt_recent: detail
                    .map(|d| [0, 1].map(|leg| (d.rtt_min[leg].get(), d.rtt_max[leg].get()))),
                losses: detail.map(|d| d.losses.clone()),
                class,
                call_host: call_host(&self.classifier, proto, client, self.clock),
                role,
                end: FlowEnd::Active,
                prior,
            });
        }
        self.priors = priors;
        self.last_cut = Some(self.clock);
        sort_by_id(&mut flows);
        Snapshot {
            flows,
            unreported_flows: self.finished_dropped,
            at: self.clock,
            stats: self.stats.clone(),
            table: self.table.stats(),
            active_flows: self.table.len(),
            max_flows: self.table.max_flows(),
        }
    }

    /// The catalogue changed (the daemon reloaded it): new flows are classified with it;
    /// open and finished flows keep their service if the new catalogue has a service of the
    /// same id, and lose it otherwise. What the classifier learned from the wire (DNS answers,
    /// call endpoints) starts afresh.
    pub fn set_catalogue(&mut self, catalogue: Catalogue) {
        let old = self.classifier.catalogue();
        let map: Vec<Option<ServiceId>> = old
            .services()
            .iter()
            .map(|s| {
                let new = catalogue.services().iter().position(|n| n.id == s.id);
                new.and_then(|i| ServiceId::try_from(i).ok())
            })
            .collect();
        let remap = |c: &mut Classification| {
            if let Some(sid) = c.service {
                *c = match map.get(usize::from(sid)).copied().flatten() {
                    Some(new) => Classification { service: Some(new), ..*c },
                    None => Classification::default(),
                };
            }
        };
        for state in self.table.states_mut() {
            remap(&mut state.class.class);
        }
        for flow in &mut self.finished {
            remap(&mut flow.class);
            flow.role = flow_role(flow);
        }
        self.histograms = RttHistograms::new(catalogue.services().len());
        self.classifier = Classifier::new(catalogue);
    }

    pub fn catalogue(&self) -> &Catalogue {
        self.classifier.catalogue()
    }
}

/// What a daemon's window end hands to the detectors and the outputs.
#[derive(Debug)]
pub struct Snapshot {
    /// Finished since the last snapshot, and the open flows that matter, by id.
    pub flows: Vec<FinishedFlow>,
    /// Target and control flows that finished while the retention limit was full, so far.
    pub unreported_flows: u64,
    /// Packet time of the snapshot.
    pub at: Timestamp,
    pub stats: PipelineStats,
    pub table: TableStats,
    pub active_flows: usize,
    pub max_flows: usize,
}

/// The STUN message a UDP payload carries (RFC 7983: a first byte of 0-3 is STUN).
#[inline]
fn stun_message(proto: Proto, payload: &[u8], payload_len: u32) -> Option<StunMessage<'_>> {
    match (proto, payload.first()) {
        (Proto::Udp, Some(0..=3)) => StunMessage::parse(payload, payload_len),
        _ => None,
    }
}

/// [`FinishedFlow::call_host`] of a flow at `now`.
fn call_host(
    classifier: &Classifier,
    proto: Proto,
    client: Endpoint,
    now: Timestamp,
) -> Option<IpAddr> {
    let host = classifier.call_host(client.addr, now);
    (proto == Proto::Udp && host != client.addr).then_some(host)
}

/// Put flows in the order of their ids (the order they started in): every list of flows
/// the reports show is in this order. One function, so that the sort's code is in the
/// binary once.
#[inline(never)]
pub fn sort_by_id(flows: &mut [FinishedFlow]) {
    flows.sort_unstable_by_key(|f| f.id);
}

fn with_role(mut flow: FinishedFlow) -> FinishedFlow {
    flow.role = flow_role(&flow);
    flow
}

fn flow_role(flow: &FinishedFlow) -> Role {
    let packets = flow.measures.dirs.iter().map(|d| d.packets).sum();
    let duration_us = flow.last_at.since(flow.first_at);
    let ends = (flow.client, flow.server);
    role(flow.class, flow.proto, ends, (packets, duration_us), routed(&flow.measures))
}

/// Whether a flow's packets came through a router before the capture point, by their TTLs.
fn routed(measures: &FlowMeasures) -> Routed {
    Routed::from_ttls([measures.dirs.up.ttl_range(), measures.dirs.down.ttl_range()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{CatalogueBuilder, Prefix, Service};
    use crate::decode::ip::fixtures::ipv4;
    use crate::decode::tls::fixtures::client_hello;
    use crate::decode::transport::fixtures::tcp;
    use crate::flow::{Direction, FlowEntry};

    /// A raw-IP TCP segment with `payload`, cut to `snaplen` bytes as a capture would.
    fn segment(flags: u8, payload: &[u8], snaplen: usize) -> (Vec<u8>, u32) {
        let tcp = tcp(50_000, 443, 1, 1, flags, &[]);
        let total = 20 + tcp.len() + payload.len();
        let mut frame = ipv4(6, total as u16, 1, 0);
        frame.extend_from_slice(&tcp);
        frame.extend_from_slice(payload);
        frame.truncate(snaplen);
        (frame, total as u32)
    }

    /// A TCP segment of the test connection (port 50000 to 443) in raw IP: from the client
    /// (`up`) or the server, with IPv4 identification `id` (`None`: over IPv6), `len`
    /// payload bytes (not captured).
    fn packet(up: bool, id: Option<u16>, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
        let header = if up {
            tcp(50_000, 443, seq, ack, flags, &[])
        } else {
            tcp(443, 50_000, seq, ack, flags, &[])
        };
        let mut frame = match id {
            Some(id) => ipv4(6, (20 + header.len() + len) as u16, id, 0x4000),
            None => crate::decode::ip::fixtures::ipv6(6, (header.len() + len) as u16),
        };
        if !up {
            let addrs = if id.is_some() { 12..20 } else { 8..40 };
            let half = addrs.len() / 2;
            frame[addrs].rotate_left(half);
        }
        frame.extend_from_slice(&header);
        frame
    }

    /// Frames and their times in µs.
    type Frames = Vec<(u64, Vec<u8>)>;

    /// The analysis of `frames`, with the frames' IP lengths as the wire's.
    fn analyse(frames: &[(u64, Vec<u8>)]) -> Analysis {
        let classifier = Classifier::new(CatalogueBuilder::new("none").finish());
        let mut p = Pipeline::new(PipelineConfig::default(), classifier);
        for (at, frame) in frames {
            let t = Timestamp::from_micros(1_700_000_000_000_000 + at);
            let wire = match frame[0] >> 4 {
                4 => u32::from(u16::from_be_bytes([frame[2], frame[3]])),
                _ => 40 + u32::from(u16::from_be_bytes([frame[4], frame[5]])),
            };
            p.process(LinkType::RawIp, t, frame, wire);
        }
        p.finish()
    }

    /// A connection as a mirror port of two switch ports shows it: every packet again
    /// `copy_after_us` later, so that the copies of a burst interleave with it. Over IPv4 it is
    /// measured as the connection itself, each copy counted as `second_copy` (the Linux
    /// SYN/ACK, which carries no identification, by its sequence). Over IPv6, where no packet
    /// carries one, the copies after the SYN and the SYN/ACK are counted, and those that come
    /// before the next packet are not counted as resent.
    #[test]
    fn a_mirror_ports_second_copies_are_skipped() {
        use tcp_flags::{ACK, FIN, PSH, SYN};
        for v6 in [false, true] {
            let id = |n: u16| (!v6).then_some(n);
            let mut once = vec![
                (0, packet(true, id(700), 1, 0, SYN, 0)),
                (5_000, packet(false, id(0), 9, 2, SYN | ACK, 0)),
                (10_000, packet(true, id(701), 2, 10, ACK, 0)),
                (10_010, packet(true, id(702), 2, 10, ACK | PSH, 300)),
            ];
            // A burst of 20 segments 10 µs apart, the client's ACK of each pair after it.
            for k in 0..20u16 {
                let (at, seq) = (15_000 + u64::from(k) * 10, 10 + u32::from(k) * 1448);
                once.push((at, packet(false, id(1 + k), seq, 302, ACK, 1448)));
                if k % 2 == 1 {
                    once.push((at + 205, packet(true, id(703 + k / 2), 302, seq + 1448, ACK, 0)));
                }
            }
            once.push((40_000, packet(false, id(21), 28_970, 302, FIN | ACK, 0)));
            once.push((45_000, packet(true, id(713), 302, 28_971, FIN | ACK, 0)));
            let single = analyse(&once);
            let delays: &[u64] = if v6 { &[1] } else { &[1, 25, 90] };
            for &copy_after_us in delays {
                let mut mirrored = once.clone();
                mirrored.extend(once.iter().map(|(at, f)| (at + copy_after_us, f.clone())));
                mirrored.sort_by_key(|(at, _)| *at);
                let twice = analyse(&mirrored);
                let what = format!("IPv6 {v6}, copies {copy_after_us} µs after");
                // Over IPv6 only the first packets each way (SYN, SYN/ACK) are told.
                let counted = if v6 { once.len() - 2 } else { 0 };
                let skipped = twice.stats.skipped.get(SkipReason::SecondCopy);
                assert_eq!(skipped, (once.len() - counted) as u64, "{what}");
                assert_eq!(twice.flows.len(), 1, "{what}");
                let (a, b) = (&single.flows[0].measures, &twice.flows[0].measures);
                if v6 {
                    assert_eq!(b.dirs.down.packets, 2 * a.dirs.down.packets - 1, "{what}");
                } else {
                    assert_eq!((&a.dirs.up, &a.dirs.down), (&b.dirs.up, &b.dirs.down), "{what}");
                }
                let (TransportMeasures::Tcp(a), TransportMeasures::Tcp(b)) =
                    (&a.transport, &b.transport)
                else {
                    panic!("{what}: not TCP");
                };
                for d in [Direction::Up, Direction::Down] {
                    let (a, b) = (&a.dirs[d], &b.dirs[d]);
                    let counts = (b.retransmissions, b.seq_gaps, b.out_of_order);
                    assert_eq!(counts, (0, 0, 0), "{what}");
                    assert_eq!(a.new_payload_bytes, b.new_payload_bytes, "{what}");
                    if !v6 {
                        assert_eq!(a.payload_bytes, b.payload_bytes, "{what}");
                    }
                }
            }
        }
    }

    /// A mirror's copies of a burst longer than [`COPY_IDENTIFICATIONS`] carry numbers too
    /// far below the highest to be told as copies: they are counted, but as reordering, not
    /// as data sent again (each copy one number after the copy before it, the one after the
    /// highest of the burst, is no later packet of the sender's).
    #[test]
    fn copies_of_a_long_burst_are_not_resent() {
        use tcp_flags::{ACK, PSH};
        let burst: Frames = (0..100u16)
            .map(|k| {
                (
                    u64::from(k),
                    packet(false, Some(1 + k), 1 + u32::from(k) * 1448, 1, ACK | PSH, 1448),
                )
            })
            .collect();
        let mut mirrored = burst.clone();
        mirrored.extend(burst.iter().map(|(at, f)| (at + 80, f.clone())));
        mirrored.sort_by_key(|(at, _)| *at);
        let flows = analyse(&mirrored).flows;
        let TransportMeasures::Tcp(tcp) = &flows[0].measures.transport else { panic!("not TCP") };
        let down = &tcp.dirs.down;
        assert_eq!((down.retransmissions, down.seq_gaps), (0, 0));
        assert!(down.out_of_order > 0, "copies 80 numbers back are not told as copies");
    }

    /// A mirror's copies of super-segments (GRO merged 20 segments into each, so each carries
    /// the first of its 20 numbers) are told when one or two of the next super-segments
    /// overtook them: 20 and 40 numbers back.
    #[test]
    fn copies_of_super_segments_are_told() {
        use tcp_flags::{ACK, PSH};
        const SEGMENTS: u16 = 20;
        let burst: Frames = (0..12u16)
            .map(|k| {
                let (id, seq) = (1 + k * SEGMENTS, 1 + u32::from(k * SEGMENTS) * 1448);
                (u64::from(k) * 10, packet(false, Some(id), seq, 1, ACK | PSH, 20 * 1448))
            })
            .collect();
        let once = analyse(&burst).flows;
        for copy_after_us in [15, 25] {
            let mut mirrored = burst.clone();
            mirrored.extend(burst.iter().map(|(at, f)| (at + copy_after_us, f.clone())));
            mirrored.sort_by_key(|(at, _)| *at);
            let twice = analyse(&mirrored);
            let what = format!("copies {copy_after_us} µs after");
            let skipped = twice.stats.skipped.get(SkipReason::SecondCopy);
            assert_eq!(skipped, burst.len() as u64, "{what}");
            assert_eq!(once[0].measures.dirs, twice.flows[0].measures.dirs, "{what}");
        }
    }

    /// Copies of a direction's first numbered packets are told whatever their numbers: the
    /// first number just below zero's reach (a highest no packet carried is no series to be
    /// older than), and a number just below the highest a packet without one left (whose own
    /// copy is told by its sequence).
    #[test]
    fn copies_of_first_numbers_are_told() {
        use tcp_flags::{ACK, PSH};
        for ids in [[65_000u16, 65_001], [0, 32_000]] {
            let once: Frames = (0..2u16)
                .map(|k| {
                    let seq = 1 + u32::from(k) * 1448;
                    (
                        u64::from(k) * 100,
                        packet(false, Some(ids[usize::from(k)]), seq, 1, ACK | PSH, 1448),
                    )
                })
                .collect();
            let mut mirrored = once.clone();
            mirrored.extend(once.iter().map(|(at, f)| (at + 1, f.clone())));
            mirrored.sort_by_key(|(at, _)| *at);
            let analysis = analyse(&mirrored);
            let skipped = analysis.stats.skipped.get(SkipReason::SecondCopy);
            assert_eq!(skipped, 2, "{ids:?}");
            assert_eq!(analysis.flows[0].measures.dirs.down.packets, 2, "{ids:?}");
        }
    }

    /// Copies of packets whose numbers are drawn at random are told when each comes right
    /// after its original: a number below the one before it by less than
    /// [`crate::measure::IDENTIFICATION_REACH`] is no older packet of a series when that one
    /// came alone (the RSTs a middlebox injected for each of the server's packets, numbers as
    /// one recorded).
    #[test]
    fn copies_of_random_numbers_are_told() {
        use tcp_flags::{ACK, RST};
        let ids = [8105u16, 53_859, 37_111, 28_774, 28_137, 32_188, 31_511, 60_833, 65_341];
        let once: Frames = (ids.iter().enumerate())
            .map(|(k, &id)| (k as u64 * 1_000, packet(false, Some(id), 1, 518, RST | ACK, 0)))
            .collect();
        let mut mirrored = once.clone();
        mirrored.extend(once.iter().map(|(at, f)| (at + 1, f.clone())));
        mirrored.sort_by_key(|(at, _)| *at);
        let analysis = analyse(&mirrored);
        assert_eq!(analysis.stats.skipped.get(SkipReason::SecondCopy), ids.len() as u64);
        assert_eq!(analysis.flows[0].measures.dirs.down.packets, ids.len() as u64);
    }

    /// What looks like a copy but is not one is measured: an older number that no packet
    /// carried (reordering), a number again after the copy window, numbers of IPv4
    /// fragments, a segment that moves the sequence on; and what carries nothing to tell a
    /// copy by is measured too (the copies of pure ACKs and RSTs without an identification).
    #[test]
    fn what_only_looks_like_a_copy_is_measured() {
        use tcp_flags::{ACK, PSH, RST};
        let data = |at: u64, id: Option<u16>, k: u32| {
            (at, packet(false, id, 1 + k * 1000, 1, ACK | PSH, 1000))
        };
        let cases: Vec<(&str, Frames)> = vec![
            ("reordered", vec![data(0, Some(5), 0), data(10, Some(7), 2), data(20, Some(6), 1)]),
            (
                "after the window",
                vec![data(0, Some(5), 0), (2_500, packet(false, Some(5), 1, 1, ACK | PSH, 1000))],
            ),
            ("new data, one number", vec![data(0, Some(5), 0), data(10, Some(5), 1)]),
            (
                "no number, pure ACKs",
                vec![
                    (0, packet(true, Some(0), 1, 1, ACK, 0)),
                    (10, packet(true, Some(0), 1, 1, ACK, 0)),
                ],
            ),
            (
                "no number, RSTs",
                vec![
                    (0, packet(true, Some(0), 1, 0, RST, 0)),
                    (10, packet(true, Some(0), 1, 0, RST, 0)),
                ],
            ),
            (
                "IPv6 pure ACKs",
                vec![(0, packet(true, None, 1, 1, ACK, 0)), (10, packet(true, None, 1, 1, ACK, 0))],
            ),
        ];
        for (what, frames) in cases {
            let a = analyse(&frames);
            assert_eq!(a.stats.skipped.get(SkipReason::SecondCopy), 0, "{what}");
            assert_eq!(a.stats.measured(), frames.len() as u64, "{what}");
        }
        // Fragments of one datagram share its number (and here a length).
        let fragments: Frames = (0..3u16)
            .map(|k| {
                let mut f = ipv4(17, 1020, 9, 0x2000 | (k * 125));
                f.extend_from_slice(&[0u8; 8]);
                (u64::from(k) * 5, f)
            })
            .collect();
        let a = analyse(&fragments);
        assert_eq!(a.stats.skipped.get(SkipReason::SecondCopy), 0, "fragments");
    }

    /// For windows, finished flows wait for the next snapshot up to a limit; more are
    /// counted, not kept.
    #[test]
    fn window_retention_bounds_the_finished_flows() {
        let mut b = CatalogueBuilder::new("t");
        let x = b.add_service(Service { id: "x".into(), name: "X".into() }).unwrap();
        b.add_range(x, Prefix::parse("10.9.9.9/32").unwrap());
        let catalogue = b.finish();
        let mut p = Pipeline::new(PipelineConfig::default(), Classifier::new(catalogue));
        p.retain_for_windows(2);
        let t = |s: u64| Timestamp::from_micros(1_700_000_000_000_000 + s * 1_000_000);
        for port in 0..5u16 {
            let tcp = tcp(40_000 + port, 443, 1, 0, tcp_flags::SYN, &[]);
            let mut frame = ipv4(6, 40, 1, 0);
            frame.extend_from_slice(&tcp);
            p.process(LinkType::RawIp, t(0), &frame, 40);
        }
        // Long after the TCP idle timeout: all five expire, two are kept.
        let snap = p.snapshot(t(100_000));
        let kept = snap.flows.iter().filter(|f| f.end != FlowEnd::Active).count();
        assert_eq!((kept, snap.unreported_flows), (2, 3));
        assert!(
            snap.flows.iter().all(|f| f.role == Role::Control),
            "{:?}",
            snap.flows.iter().map(|f| f.role).collect::<Vec<_>>()
        );
        // Drained by the snapshot: room again.
        assert_eq!(p.snapshot(t(100_001)).flows.len(), 0);
    }

    /// A streaming reader drains what snapshots have seen, whatever the role; flows that
    /// finish later wait for the next snapshot, and `finish` gives the rest.
    #[test]
    fn drained_flows_leave_the_pipeline() {
        let catalogue = CatalogueBuilder::new("t").finish();
        let mut p = Pipeline::new(PipelineConfig::default(), Classifier::new(catalogue));
        let t = |s: u64| Timestamp::from_micros(1_700_000_000_000_000 + s * 1_000_000);
        let syn = |p: &mut Pipeline, port: u16, at| {
            let tcp = tcp(40_000 + port, 443, 1, 0, tcp_flags::SYN, &[]);
            let mut frame = ipv4(6, 40, 1, 0);
            frame.extend_from_slice(&tcp);
            p.process(LinkType::RawIp, at, &frame, 40);
        };
        for port in 0..5 {
            syn(&mut p, port, t(0));
        }
        p.snapshot(t(100_000));
        assert_eq!(p.drain_finished().count(), 5);
        assert_eq!(p.drain_finished().count(), 0, "drained once");
        syn(&mut p, 9, t(100_001));
        p.snapshot(t(100_002));
        assert_eq!(p.drain_finished().count(), 0, "still open");
        let rest = p.finish();
        assert_eq!(rest.flows.len(), 1);
        assert_eq!(rest.flows[0].server.port, 443);
    }

    /// The SNI beyond a short snap length is found in the full-size copy; the copy is not
    /// counted as a packet of the flow.
    #[test]
    fn a_full_size_copy_classifies_without_counting() {
        let mut b = CatalogueBuilder::new("t");
        let wa = b.add_service(Service { id: "wa".into(), name: "W".into() }).unwrap();
        b.add_sni_domain(wa, "whatsapp.net");
        let catalogue = b.finish();
        let mut p = Pipeline::new(PipelineConfig::default(), Classifier::new(catalogue));
        let hello = client_hello("media.whatsapp.net");
        let t = |ms: u64| Timestamp::from_micros(1_700_000_000_000_000 + ms * 1000);
        let (syn, len) = segment(tcp_flags::SYN, &[], 1500);
        p.process(LinkType::RawIp, t(0), &syn, len);
        let (short, len) = segment(tcp_flags::ACK | tcp_flags::PSH, &hello, 60);
        p.process(LinkType::RawIp, t(1), &short, len);
        let (full, len) = segment(tcp_flags::ACK | tcp_flags::PSH, &hello, 1500);
        p.inspect_full(LinkType::RawIp, t(1), &full, len);
        // A copy of a flow the table does not hold changes nothing.
        let (stray, len) = segment(tcp_flags::ACK, &hello, 1500);
        let mut other = stray.clone();
        other[19] ^= 1; // another destination address
        p.inspect_full(LinkType::RawIp, t(2), &other, len);
        let a = p.finish();
        assert_eq!(a.flows.len(), 1);
        assert_eq!(a.flows[0].class.service, Some(0), "classified by the full copy's SNI");
        assert_eq!(a.flows[0].measures.dirs.up.packets, 2, "the copy is not counted");
        assert_eq!(a.stats.packets, 2);
    }

    /// Issue 11: short connections filled the table (closed flows stayed 10 s and could be
    /// evicted only after 1 s idle): of 10,000 at 2,500 per second through 1,000 entries only
    /// 4,000 were recorded. Every one must be, at the rate the flow table's contract states
    /// (2,500/s × 70 ms open = 175 open at once, far below 1,000).
    #[test]
    fn short_connections_pass_a_small_table_at_the_stated_rate() {
        const FLOWS: u32 = 10_000;
        const GAP_US: u64 = 400; // 2,500 new connections per second
        const STEP_US: u64 = 10_000;
        let config = PipelineConfig { max_flows: 1000, ..PipelineConfig::default() };
        let mut p = Pipeline::new(config, Classifier::new(CatalogueBuilder::new("none").finish()));
        let (ack, syn, fin) = (tcp_flags::ACK, tcp_flags::SYN, tcp_flags::FIN);
        // (from the client, flags, payload bytes), one step apart.
        let steps: [(bool, u8, usize); 8] = [
            (true, syn, 0),
            (false, syn | ack, 0),
            (true, ack, 0),
            (true, ack | tcp_flags::PSH, 100),
            (false, ack | tcp_flags::PSH, 1000),
            (true, fin | ack, 0),
            (false, fin | ack, 0),
            (true, ack, 0),
        ];
        let mut order: Vec<(u64, u32, usize)> = (0..FLOWS)
            .flat_map(|n| {
                (0..steps.len()).map(move |k| (u64::from(n) * GAP_US + k as u64 * STEP_US, n, k))
            })
            .collect();
        order.sort_unstable();
        let t0 = 1_700_000_000_000_000u64;
        for (at, n, k) in order {
            let (up, flags, len) = steps[k];
            let port = 20_000 + n as u16;
            // Sequence numbers as a real connection has them: the FINs and the last ACK
            // follow the data.
            let (client_seq, server_seq) =
                (1 + u32::from(k >= 4) * 100, 1 + u32::from(k >= 5) * 1000);
            let segment = if up {
                tcp(port, 443, client_seq, server_seq, flags, &[])
            } else {
                tcp(443, port, server_seq, client_seq, flags, &[])
            };
            let total = 20 + segment.len() + len;
            let mut frame = ipv4(6, total as u16, 1, 0);
            if !up {
                frame[12..20].rotate_left(4); // swap the addresses
            }
            frame.extend_from_slice(&segment);
            frame.resize(total.min(96), 0);
            p.process(LinkType::RawIp, Timestamp::from_micros(t0 + at), &frame, total as u32);
        }
        let a = p.finish();
        assert_eq!(a.stats.skipped.get(SkipReason::FlowTableFull), 0, "{:?}", a.table);
        assert_eq!(a.stats.measured(), u64::from(FLOWS) * steps.len() as u64);
        assert_eq!(a.flows.len(), FLOWS as usize, "one record per connection");
        assert!(a.flows.iter().all(|f| f.end == FlowEnd::Fin));
        assert_eq!((a.table.refused, a.table.peak), (0, 1000), "{:?}", a.table);
    }

    /// ARCHITECTURE.md aims at 400 bytes per tracked flow. This guards what was reached (see the
    /// README's memory figures) against silent growth: 432 bytes per entry on 64-bit targets
    /// (416 before the window of IPv4 identifications for mirror copies grew from 16 numbers
    /// to 64, for GRO's super-segments; 400 before each direction counted the bytes it sent
    /// again, 392 before the client's
    /// highest acknowledgment was kept; 384 on ARMv7 then), and a
    /// 4-byte index bucket (issue 13; 576 and 48 before the FIN/RST
    /// records, the RTP trackers, and the fragment and ICMP counters moved out of line and the
    /// index kept slot numbers only). Those records are allocated only for flows that need
    /// them, and their sizes are guarded here too (an RTP tracker 112 bytes, 104 before it
    /// kept which of the latest numbers came, for duplicates); the slots' list links are
    /// guarded in `flow::table`.
    #[test]
    fn per_flow_state_stays_bounded() {
        use crate::measure::call::RtpStream;
        use crate::measure::tcp::CloseEvent;
        use crate::measure::{IpEvents, TransportMeasures};
        use std::mem::size_of;
        let entry = size_of::<FlowEntry<FlowState>>();
        let detail = size_of::<Detail>();
        let index = crate::flow::INDEX_BUCKET_BYTES;
        let transport = size_of::<TransportMeasures>();
        let closes = 4 * size_of::<Option<CloseEvent>>();
        let rtp = size_of::<RtpStream>();
        let ip_events = 2 * size_of::<IpEvents>();
        eprintln!(
            "flow entry {entry} bytes (+{index} per index bucket; transport part {transport}), \
             detail slot {detail} bytes; out of line: FIN/RST records {closes}, RTP tracker \
             {rtp} (at most two per direction), fragment and ICMP counters {ip_events}"
        );
        assert!(entry <= 432, "a flow table entry grew to {entry} bytes");
        assert!(index <= 4, "a flow index bucket grew to {index} bytes");
        assert!(detail <= 1400, "a detail slot grew to {detail} bytes");
        assert!(closes <= 144 && rtp <= 112 && ip_events <= 24, "{closes} {rtp} {ip_events}");
    }
}
