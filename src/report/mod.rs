//! Report: the outputs of `analyze` (docs/report.md). [`Report`] is the JSON document, schema
//! `throttlewatch.report/1`; [`human`] renders the same data as a short table, `html` as a
//! page with plots (the `html` feature); [`jsonl`]
//! writes it as JSON lines while the trace is read. The JSON text of both is serde_json's,
//! byte for byte, written by the serializer of the private module `json`. Field names are a
//! contract: add fields freely, never rename them.

pub mod calls;
#[cfg(feature = "html")]
pub mod html;
pub mod human;
mod json;
pub mod jsonl;

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::classify::{Evidence, Role, ServiceId};
use crate::detect::Verdict;
use crate::flow::{Direction, Proto};
use crate::measure::call::{RtpSummary, StunStats, UdpDirection};
use crate::measure::rtt::{Leg, RttStats};
use crate::measure::tcp::{CloseEvent, TcpMeasures};
use crate::measure::{DirCounters, IpEvents, TransportMeasures};
use crate::pipeline::{Analysis, FinishedFlow};
use crate::time::Timestamp;
use json::{Layout, write_layout};

pub const SCHEMA: &str = "throttlewatch.report/1";

/// One input file as the report describes it.
#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    pub path: String,
    /// `pcap`, `pcap-ns` or `pcapng`; null when the file could not be opened.
    pub format: Option<String>,
    pub link_type: Option<String>,
    pub packets: u64,
    /// Why the file could not be read to the end, or null.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub schema: &'static str,
    pub summary: Summary,
    pub flows: Flows<'a>,
    pub verdicts: Vec<Verdict>,
    /// The calls: each service's UDP legs grouped per client and time.
    pub calls: Vec<serde_json::Value>,
}

/// The flows of a report, rendered one at a time as they are written (a trace's flows can be
/// many; their reports are never all held at once).
#[derive(Debug, Clone, Copy)]
pub struct Flows<'a> {
    analysis: &'a Analysis,
}

impl<'a> Flows<'a> {
    pub fn iter(&self) -> impl Iterator<Item = FlowReport> + 'a {
        let catalogue = self.analysis.classifier.catalogue();
        self.analysis
            .flows
            .iter()
            .map(move |f| FlowReport::build(f, |s| catalogue.service(s).id.clone()))
    }
}

impl Serialize for Flows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub tool: String,
    pub inputs: Vec<InputReport>,
    pub catalogue: CatalogueReport,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub duration_s: f64,
    pub packets: PacketCounts,
    pub flows: FlowCounts,
    pub learned: LearnedCounts,
    /// Services with at least one flow, in catalogue order.
    pub services: Vec<GroupSummary>,
    /// The control flows, as one group.
    pub control: GroupSummary,
    /// What the verdicts cover in this version.
    pub detectors: &'static str,
}

#[derive(Debug, Serialize)]
pub struct CatalogueReport {
    pub source: String,
    pub services: usize,
}

#[derive(Debug, Serialize)]
pub struct PacketCounts {
    pub read: u64,
    pub measured: u64,
    pub skipped: u64,
    /// Skipped because broken or cut short (a subset of `skipped`).
    pub malformed: u64,
    pub skip_reasons: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize)]
pub struct FlowCounts {
    pub total: usize,
    pub target: usize,
    pub control: usize,
    pub other: usize,
    pub max_flows: usize,
    pub peak: usize,
    pub expired: u64,
    pub evicted: u64,
    /// Packets that would have opened a flow while the table was full of active flows.
    pub refused: u64,
    pub detail_flows: usize,
    pub detail_refused: u64,
}

#[derive(Debug, Serialize)]
pub struct LearnedCounts {
    pub dns_answers: u64,
    pub dns_addresses: u64,
    pub endpoints: u64,
    /// Call endpoints learned from the addresses in a service's STUN messages, and flows
    /// tied to a call by an ICE username fragment or their LAN socket.
    pub stun_addresses: u64,
    pub call_links: u64,
}

/// Totals of a service's flows (or of the control flows).
#[derive(Debug, Serialize)]
pub struct GroupSummary {
    pub id: Option<String>,
    pub name: String,
    pub flows: usize,
    pub tcp_flows: usize,
    pub udp_flows: usize,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub rtt_external: Option<Quantiles>,
    pub rtt_internal: Option<Quantiles>,
}

/// RTT distribution from the per-service histogram (2 significant digits).
#[derive(Debug, Serialize)]
pub struct Quantiles {
    pub samples: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[derive(Debug, Serialize)]
pub struct FlowReport {
    pub id: u64,
    pub proto: &'static str,
    pub client: String,
    pub server: String,
    /// How the client side was decided: `handshake`, `port` or `first_packet`.
    pub client_by: &'static str,
    pub service: Option<String>,
    /// `signature`, `endpoint`, `dns`, `rule`, `range`, or `none`.
    pub service_by: &'static str,
    pub role: &'static str,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub packets_up: u64,
    pub packets_down: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration_s: f64,
    /// `fin`, `rst`, `idle`, `evicted` or `end_of_input`.
    pub end_reason: &'static str,
    pub up: DirReport,
    pub down: DirReport,
    pub tcp: Option<TcpReport>,
    pub udp: Option<UdpReport>,
    pub throughput: Option<ThroughputReport>,
}

#[derive(Debug, Serialize)]
pub struct DirReport {
    pub bytes: u64,
    pub packets: u64,
    /// Mean over the flow's duration.
    pub bitrate_bps: f64,
    pub ttl_min: Option<u8>,
    pub ttl_max: Option<u8>,
    pub fragments: u32,
    pub icmp_errors: u32,
    pub last_icmp: Option<IcmpReport>,
}

#[derive(Debug, Serialize)]
pub struct IcmpReport {
    #[serde(rename = "type")]
    pub icmp_type: u8,
    pub code: u8,
}

#[derive(Debug, Serialize)]
pub struct TcpReport {
    pub handshake: HandshakeReport,
    /// `timestamps` (TSval/TSecr matching) or `seq_ack`.
    pub rtt_source: &'static str,
    pub rtt_external: RttReport,
    pub rtt_internal: RttReport,
    pub up: TcpDirReport,
    pub down: TcpDirReport,
}

#[derive(Debug, Serialize)]
pub struct HandshakeReport {
    pub syns: u16,
    pub synacks: u16,
    pub completed: bool,
    /// SYN→SYN/ACK.
    pub external_rtt_us: Option<u64>,
    /// SYN/ACK→ACK.
    pub internal_rtt_us: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct RttReport {
    pub samples: u32,
    pub min_us: Option<u32>,
    pub srtt_us: Option<u32>,
    pub rttvar_us: Option<u32>,
    pub max_us: Option<u32>,
    pub last_us: Option<u32>,
    /// Minimum and maximum over the last ~10 s of the flow (flows with a detail slot).
    pub recent_min_us: Option<u32>,
    pub recent_max_us: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct TcpDirReport {
    pub payload_bytes: u64,
    pub goodput_bytes: u64,
    pub retransmissions: u32,
    pub resent_bytes: u32,
    pub out_of_order: u32,
    pub seq_gaps: u32,
    pub zero_windows: u32,
    pub rsts: u32,
    pub packets_after_rst: u32,
    pub fin: Option<CloseReport>,
    pub rst: Option<CloseReport>,
}

#[derive(Debug, Serialize)]
pub struct CloseReport {
    /// Millisecond precision.
    pub at: Timestamp,
    pub ttl: u8,
    pub prev_ttl: Option<u8>,
    pub ip_id: u32,
    pub prev_ip_id: Option<u32>,
    pub seq: u32,
    pub ack: Option<u32>,
    pub payload_len: u16,
    pub since_prev_us: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct UdpReport {
    pub up: UdpDirReport,
    pub down: UdpDirReport,
    pub stun: Option<StunReport>,
}

#[derive(Debug, Serialize)]
pub struct UdpDirReport {
    pub packets_per_s: f64,
    pub max_gap_us: u64,
    pub mean_gap_us: Option<u64>,
    pub rtp: Option<RtpReport>,
    /// A second RTP stream of the same direction (video beside audio).
    pub rtp_second: Option<RtpReport>,
}

#[derive(Debug, Serialize)]
pub struct RtpReport {
    pub ssrc: u32,
    pub payload_type: u8,
    pub received: u32,
    pub expected: u32,
    pub lost: i64,
    pub loss_ratio: f64,
    /// Runs of consecutive lost packets: one per queue overflow, one per packet for random
    /// drops.
    pub loss_runs: u32,
    pub clock_hz: Option<u32>,
    pub jitter_us: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct StunReport {
    pub requests: u32,
    pub answered: u32,
    pub request_retransmissions: u32,
    pub rtt: RttReport,
}

#[derive(Debug, Serialize)]
pub struct ThroughputReport {
    pub bin_ms: f64,
    /// Start of the first bin.
    pub start: Timestamp,
    pub peak_up_bps: f64,
    pub peak_down_bps: f64,
    pub up_bytes: Vec<u32>,
    pub down_bytes: Vec<u32>,
}

/// Counts of the flows a report covers, one flow at a time: a streaming analysis writes its
/// flows out as they finish and keeps only these.
#[derive(Debug, Clone)]
pub struct Tally {
    target: usize,
    control: usize,
    other: usize,
    /// One per service of the catalogue, in its order; the control flows' last.
    groups: Vec<GroupTally>,
}

#[derive(Debug, Clone, Copy, Default)]
struct GroupTally {
    flows: usize,
    tcp_flows: usize,
    udp_flows: usize,
    bytes_up: u64,
    bytes_down: u64,
}

impl Tally {
    pub fn new(services: usize) -> Tally {
        Tally { target: 0, control: 0, other: 0, groups: vec![GroupTally::default(); services + 1] }
    }

    pub fn add(&mut self, f: &FinishedFlow) {
        *match f.role {
            Role::Target => &mut self.target,
            Role::Control => &mut self.control,
            Role::Other => &mut self.other,
        } += 1;
        let control = self.groups.len() - 1;
        let group = match (f.class.service, f.role) {
            (Some(s), _) => usize::from(s),
            (None, Role::Control) => control,
            (None, _) => return,
        };
        let Some(g) = self.groups.get_mut(group) else { return };
        g.flows += 1;
        g.tcp_flows += usize::from(f.proto == Proto::Tcp);
        g.udp_flows += usize::from(f.proto == Proto::Udp);
        g.bytes_up += f.measures.dirs.up.bytes;
        g.bytes_down += f.measures.dirs.down.bytes;
    }

    fn total(&self) -> usize {
        self.target + self.control + self.other
    }
}

impl<'a> Report<'a> {
    pub fn build(
        analysis: &'a Analysis,
        inputs: Vec<InputReport>,
        verdicts: Vec<Verdict>,
    ) -> Report<'a> {
        let catalogue = analysis.classifier.catalogue();
        let mut tally = Tally::new(catalogue.services().len());
        for f in &analysis.flows {
            tally.add(f);
        }
        Report {
            schema: SCHEMA,
            summary: Summary::build(analysis, inputs, &tally),
            flows: Flows { analysis },
            verdicts,
            calls: calls::calls(&analysis.flows, catalogue),
        }
    }

    /// Write the report as pretty-printed JSON followed by a newline.
    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        write_layout(out, self, Layout::Indented)?;
        out.write_all(b"\n")
    }
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

impl Summary {
    /// The summary of a run whose flows are `tally` (the counters, the table, what was
    /// learned and the RTT histograms are the analysis's).
    pub fn build(analysis: &Analysis, inputs: Vec<InputReport>, tally: &Tally) -> Summary {
        let catalogue = analysis.classifier.catalogue();
        let stats = &analysis.stats;
        let skip_reasons = stats.skipped.nonzero().map(|(r, n)| (r.as_str(), n)).collect();
        let malformed =
            stats.skipped.nonzero().filter(|(r, _)| r.is_malformed()).map(|(_, n)| n).sum();
        let control = tally.groups.len() - 1;
        let services = catalogue
            .services()
            .iter()
            .enumerate()
            .filter(|&(i, _)| tally.groups[i].flows > 0)
            .map(|(i, s)| {
                let group = tally.groups[i];
                group_summary(analysis, group, Some(i as ServiceId), Some(s.id.clone()), &s.name)
            })
            .collect();
        let control = group_summary(analysis, tally.groups[control], None, None, "control flows");
        let learned = analysis.classifier.stats();
        let (start, end) = (stats.first_at, stats.last_at);
        Summary {
            tool: format!("throttlewatch {}", env!("CARGO_PKG_VERSION")),
            inputs,
            catalogue: CatalogueReport {
                source: catalogue.source_name().to_string(),
                services: catalogue.services().len(),
            },
            start,
            end,
            duration_s: match (start, end) {
                (Some(s), Some(e)) => seconds(e.since(s)),
                _ => 0.0,
            },
            packets: PacketCounts {
                read: stats.packets,
                measured: stats.measured(),
                skipped: stats.skipped.total(),
                malformed,
                skip_reasons,
            },
            flows: FlowCounts {
                total: tally.total(),
                target: tally.target,
                control: tally.control,
                other: tally.other,
                max_flows: analysis.max_flows,
                peak: analysis.table.peak,
                expired: analysis.table.expired,
                evicted: analysis.table.evicted,
                refused: analysis.table.refused,
                detail_flows: analysis.detail_flows,
                detail_refused: analysis.detail_refused,
            },
            learned: LearnedCounts {
                dns_answers: learned.dns_answers,
                dns_addresses: learned.dns_addresses,
                endpoints: learned.endpoints,
                stun_addresses: learned.stun_addresses,
                call_links: learned.call_links,
            },
            services,
            control,
            detectors: "policing, shaping, throughput_differentiation, resets, stall, blocking, calls: each service against the control flows of the same window",
        }
    }
}

fn group_summary(
    analysis: &Analysis,
    g: GroupTally,
    service: Option<ServiceId>,
    id: Option<String>,
    name: &str,
) -> GroupSummary {
    let quantiles = |leg: Leg| {
        let h = analysis.histograms.get(service, leg)?;
        (!h.is_empty()).then(|| Quantiles {
            samples: h.len(),
            min_us: h.min(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        })
    };
    GroupSummary {
        id,
        name: name.to_string(),
        flows: g.flows,
        tcp_flows: g.tcp_flows,
        udp_flows: g.udp_flows,
        bytes_up: g.bytes_up,
        bytes_down: g.bytes_down,
        rtt_external: quantiles(Leg::External),
        rtt_internal: quantiles(Leg::Internal),
    }
}

impl FlowReport {
    pub(crate) fn build(f: &FinishedFlow, service_id: impl Fn(ServiceId) -> String) -> FlowReport {
        let duration_us = f.last_at.since(f.first_at);
        let dir = |d: Direction| {
            DirReport::build(&f.measures.dirs[d], f.measures.ip_events(d), duration_us)
        };
        let (tcp, udp) = match &f.measures.transport {
            TransportMeasures::Tcp(t) => {
                (Some(TcpReport::build(t, f.rtt_recent, f.first_at)), None)
            }
            TransportMeasures::Udp(u) => {
                let udp_dir = |d: Direction| {
                    UdpDirReport::build(&u.dirs[d], f.measures.dirs[d].packets, duration_us)
                };
                let stun = (u.stun.requests > 0 || u.stun.answered > 0)
                    .then(|| StunReport::build(&u.stun));
                (
                    None,
                    Some(UdpReport {
                        up: udp_dir(Direction::Up),
                        down: udp_dir(Direction::Down),
                        stun,
                    }),
                )
            }
        };
        let throughput = f.bins.as_ref().map(|b| {
            let bps = |bytes: u32| f64::from(bytes) * 8.0 * 1e6 / b.bin_us as f64;
            ThroughputReport {
                bin_ms: b.bin_us as f64 / 1000.0,
                start: b.start,
                peak_up_bps: bps(b.peak_bytes.up),
                peak_down_bps: bps(b.peak_bytes.down),
                up_bytes: b.bytes.up.clone(),
                down_bytes: b.bytes.down.clone(),
            }
        });
        let (up, down) = (&f.measures.dirs.up, &f.measures.dirs.down);
        FlowReport {
            id: f.id,
            proto: f.proto.as_str(),
            client: f.client.to_string(),
            server: f.server.to_string(),
            client_by: f.client_by.as_str(),
            service: f.class.service.map(service_id),
            service_by: if f.class.service.is_some() {
                f.class.evidence.as_str()
            } else {
                Evidence::None.as_str()
            },
            role: f.role.as_str(),
            bytes_up: up.bytes,
            bytes_down: down.bytes,
            packets_up: up.packets,
            packets_down: down.packets,
            start: f.first_at,
            end: f.last_at,
            duration_s: seconds(duration_us),
            end_reason: f.end.as_str(),
            up: dir(Direction::Up),
            down: dir(Direction::Down),
            tcp,
            udp,
            throughput,
        }
    }
}

impl DirReport {
    fn build(d: &DirCounters, ip_events: IpEvents, duration_us: u64) -> DirReport {
        let (ttl_min, ttl_max) = d.ttl_range().unzip();
        DirReport {
            bytes: d.bytes,
            packets: d.packets,
            bitrate_bps: if duration_us > 0 {
                d.bytes as f64 * 8.0 * 1e6 / duration_us as f64
            } else {
                0.0
            },
            ttl_min,
            ttl_max,
            fragments: ip_events.fragments,
            icmp_errors: ip_events.icmp_errors,
            last_icmp: ip_events.last_icmp.map(|(icmp_type, code)| IcmpReport { icmp_type, code }),
        }
    }
}

impl RttReport {
    fn build(s: &RttStats, recent: Option<(Option<u32>, Option<u32>)>) -> RttReport {
        let (recent_min_us, recent_max_us) = recent.unwrap_or((None, None));
        RttReport {
            samples: s.samples(),
            min_us: s.min_us(),
            srtt_us: s.srtt_us(),
            rttvar_us: s.rttvar_us(),
            max_us: s.max_us(),
            last_us: s.last_us(),
            recent_min_us,
            recent_max_us,
        }
    }
}

impl TcpReport {
    fn build(
        t: &TcpMeasures,
        recent: Option<[(Option<u32>, Option<u32>); 2]>,
        flow_start: Timestamp,
    ) -> TcpReport {
        let hs = &t.handshake;
        let leg = |l: Leg| RttReport::build(t.rtt(l), recent.map(|r| r[l.index()]));
        TcpReport {
            handshake: HandshakeReport {
                syns: hs.syns,
                synacks: hs.synacks,
                completed: hs.completed(),
                external_rtt_us: hs.external_us(),
                internal_rtt_us: hs.internal_us(),
            },
            rtt_source: if t.timestamps { "timestamps" } else { "seq_ack" },
            rtt_external: leg(Leg::External),
            rtt_internal: leg(Leg::Internal),
            up: TcpDirReport::build(t, Direction::Up, flow_start),
            down: TcpDirReport::build(t, Direction::Down, flow_start),
        }
    }
}

impl TcpDirReport {
    fn build(t: &TcpMeasures, dir: Direction, flow_start: Timestamp) -> TcpDirReport {
        let d = &t.dirs[dir];
        TcpDirReport {
            payload_bytes: d.payload_bytes,
            goodput_bytes: d.new_payload_bytes,
            retransmissions: d.retransmissions,
            resent_bytes: d.resent_payload_bytes,
            out_of_order: d.out_of_order,
            seq_gaps: d.seq_gaps,
            zero_windows: d.zero_windows.into(),
            rsts: d.rsts.into(),
            packets_after_rst: d.packets_after_rst.into(),
            fin: t.fin(dir).map(|c| CloseReport::build(c, flow_start)),
            rst: t.rst(dir).map(|c| CloseReport::build(c, flow_start)),
        }
    }
}

impl CloseReport {
    fn build(c: &CloseEvent, flow_start: Timestamp) -> CloseReport {
        CloseReport {
            at: flow_start.add_micros(u64::from(c.at_ms) * 1000),
            ttl: c.ttl,
            prev_ttl: c.has_prev.then_some(c.prev_ttl),
            ip_id: c.ip_id,
            prev_ip_id: c.has_prev.then_some(c.prev_ip_id),
            seq: c.seq,
            ack: c.has_ack.then_some(c.ack),
            payload_len: c.payload_len,
            since_prev_us: c.has_prev.then_some(c.since_prev_us),
        }
    }
}

impl UdpDirReport {
    fn build(d: &UdpDirection, packets: u64, duration_us: u64) -> UdpDirReport {
        UdpDirReport {
            packets_per_s: if duration_us > 0 {
                packets as f64 * 1e6 / duration_us as f64
            } else {
                0.0
            },
            max_gap_us: d.max_gap_us,
            mean_gap_us: d.mean_gap_us(),
            rtp: d.rtp().map(RtpReport::build),
            rtp_second: d.rtp_second().map(RtpReport::build),
        }
    }
}

impl RtpReport {
    fn build(r: RtpSummary) -> RtpReport {
        RtpReport {
            ssrc: r.ssrc,
            payload_type: r.payload_type,
            received: r.received,
            expected: r.expected,
            lost: r.lost,
            loss_ratio: if r.expected > 0 {
                r.lost.max(0) as f64 / f64::from(r.expected)
            } else {
                0.0
            },
            loss_runs: r.loss_runs,
            clock_hz: r.clock_hz,
            jitter_us: r.jitter_us,
        }
    }
}

impl StunReport {
    fn build(s: &StunStats) -> StunReport {
        StunReport {
            requests: s.requests,
            answered: s.answered,
            request_retransmissions: s.request_retransmissions,
            rtt: RttReport::build(&s.rtt, None),
        }
    }
}
