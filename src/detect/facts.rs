//! What the detectors read of a flow in one window: its transport part, bulk direction,
//! minimum RTT, busy-period throughput samples, loss events and how its TCP connection ended.
//!
//! A flow longer than a window is judged window by window: counters are the window's part (the
//! flow's measurements minus those at the window's start, [`FinishedFlow::prior`]), throughput
//! bins and loss events are those inside the window. What happened once for the whole
//! connection (the handshake, the first FIN or RST, bytes since the start for a freeze
//! threshold) is read from the whole flow.

use crate::flow::Direction;
use crate::measure::TransportMeasures;
use crate::measure::call::{RtpLoss, UdpMeasures};
use crate::measure::loss::LossEvent;
use crate::measure::tcp::{CloseEvent, TcpMeasures};
use crate::pipeline::{FinishedFlow, FlowEnd};
use crate::time::Timestamp;

use super::Window;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub f: &'a FinishedFlow,
    /// The window being judged.
    pub window: Window,
}

/// The window's part of one TCP direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpPart {
    pub payload_bytes: u64,
    pub new_payload_bytes: u64,
    pub retransmissions: u64,
    pub seq_gaps: u64,
    pub resent_payload_bytes: u64,
}

impl<'a> Facts<'a> {
    pub fn new(f: &'a FinishedFlow, window: Window) -> Self {
        Facts { f, window }
    }

    /// The flow's measurements at the window's start, if it was open then.
    fn prior(&self) -> Option<&'a crate::measure::FlowMeasures> {
        self.f.prior.as_deref()
    }

    /// Up to when the flow is known to have gone on: the window's end if it was still open
    /// then (or when the input ended), else its last packet.
    pub fn known_until(&self) -> Timestamp {
        match self.f.end {
            FlowEnd::Active | FlowEnd::EndOfInput => self.window.end,
            _ => self.f.last_at.min(self.window.end),
        }
    }

    /// Packets of a direction in the window.
    pub fn packets(&self, dir: Direction) -> u64 {
        let before = self.prior().map_or(0, |p| p.dirs[dir].packets);
        self.f.measures.dirs[dir].packets.saturating_sub(before)
    }

    /// The window's part of a TCP direction.
    pub fn tcp_part(&self, dir: Direction) -> TcpPart {
        let Some(t) = self.tcp() else { return TcpPart::default() };
        let part = |t: &TcpMeasures| {
            let d = &t.dirs[dir];
            TcpPart {
                payload_bytes: d.payload_bytes,
                new_payload_bytes: d.new_payload_bytes,
                retransmissions: u64::from(d.retransmissions),
                seq_gaps: u64::from(d.seq_gaps),
                resent_payload_bytes: u64::from(d.resent_payload_bytes),
            }
        };
        let now = part(t);
        let before = match self.prior().map(|p| &p.transport) {
            Some(TransportMeasures::Tcp(p)) => part(p),
            _ => TcpPart::default(),
        };
        TcpPart {
            payload_bytes: now.payload_bytes.saturating_sub(before.payload_bytes),
            new_payload_bytes: now.new_payload_bytes.saturating_sub(before.new_payload_bytes),
            retransmissions: now.retransmissions.saturating_sub(before.retransmissions),
            seq_gaps: now.seq_gaps.saturating_sub(before.seq_gaps),
            resent_payload_bytes: now
                .resent_payload_bytes
                .saturating_sub(before.resent_payload_bytes),
        }
    }

    /// STUN requests sent in the window, and how many of them were answered.
    pub fn stun_requests(&self) -> (u64, u64) {
        let Some(u) = self.udp() else { return (0, 0) };
        let (before_requests, before_answered) = match self.prior().map(|p| &p.transport) {
            Some(TransportMeasures::Udp(p)) => (p.stun.requests, p.stun.answered),
            _ => (0, 0),
        };
        (
            u64::from(u.stun.requests.saturating_sub(before_requests)),
            u64::from(u.stun.answered.saturating_sub(before_answered)),
        )
    }

    /// RTP loss towards the client in the window (over both streams).
    pub fn rtp_loss_down(&self) -> Option<RtpLoss> {
        let now = self.udp()?.dirs.down.rtp_loss()?;
        let before = match self.prior().map(|p| &p.transport) {
            Some(TransportMeasures::Udp(p)) => p.dirs.down.rtp_loss().unwrap_or_default(),
            _ => RtpLoss::default(),
        };
        let expected = now.expected.saturating_sub(before.expected);
        (expected > 0).then_some(RtpLoss {
            lost: now.lost.saturating_sub(before.lost).min(expected),
            expected,
            runs: now.runs.saturating_sub(before.runs).min(expected),
        })
    }

    /// Whether the flow had a packet in the window (a flow reported because it was active in
    /// the window before may have had none).
    pub fn active(&self) -> bool {
        self.f.last_at >= self.window.start
    }

    /// A TCP flow's loss events towards the client inside the window (flows with a detail
    /// slot).
    pub fn losses(&self) -> Vec<LossEvent> {
        self.losses_since(self.window.start)
    }

    /// A TCP flow's loss events towards the client from `from` (which may lie before the
    /// window: the flow keeps its latest events) to the window's end.
    pub fn losses_since(&self, from: Timestamp) -> Vec<LossEvent> {
        match self.tcp() {
            Some(_) => self.logged_since(from),
            None => Vec::new(),
        }
    }

    /// A UDP flow's losses of call media towards the client inside the window: the times of
    /// the RTP packets that came after a run of lost ones (flows with a detail slot).
    pub fn media_losses(&self) -> Vec<LossEvent> {
        match self.udp() {
            Some(_) => self.logged_since(self.window.start),
            None => Vec::new(),
        }
    }

    fn logged_since(&self, from: Timestamp) -> Vec<LossEvent> {
        self.f
            .losses
            .as_ref()
            .map_or_else(Vec::new, |l| l.between(from, self.end_bound()).copied().collect())
    }

    /// The window's end as an exclusive bound that still takes in a flow's last packet when
    /// the window ends at it (the last window of a trace).
    fn end_bound(&self) -> Timestamp {
        self.window.end.add_micros(1)
    }

    pub fn id(&self) -> u64 {
        self.f.id
    }

    pub fn tcp(&self) -> Option<&'a TcpMeasures> {
        match &self.f.measures.transport {
            TransportMeasures::Tcp(t) => Some(t),
            TransportMeasures::Udp(_) => None,
        }
    }

    pub fn udp(&self) -> Option<&'a UdpMeasures> {
        match &self.f.measures.transport {
            TransportMeasures::Udp(u) => Some(u),
            TransportMeasures::Tcp(_) => None,
        }
    }

    /// The smallest round trip to the server: the handshake's external leg, the smallest TCP
    /// external sample, or the smallest STUN transaction.
    pub fn min_rtt_us(&self) -> Option<u64> {
        if let Some(t) = self.tcp() {
            let sample = t.rtt(crate::measure::rtt::Leg::External).min_us().map(u64::from);
            return match (t.handshake.external_us(), sample) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        self.udp()?.stun.rtt.min_us().map(u64::from)
    }

    /// The external round trip of the TCP handshake (unambiguous: no data is retransmitted
    /// yet).
    pub fn handshake_rtt_us(&self) -> Option<u64> {
        self.tcp()?.handshake.external_us()
    }

    /// The largest external RTT sample (queueing shows here).
    pub fn max_rtt_us(&self) -> Option<u64> {
        self.tcp()?.rtt(crate::measure::rtt::Leg::External).max_us().map(u64::from)
    }

    /// The second largest external RTT sample.
    pub fn second_max_rtt_us(&self) -> Option<u64> {
        self.tcp()?.second_largest_external_us().map(u64::from)
    }

    /// The direction in which a TCP flow moved at least `min_bytes` of new payload, the larger
    /// one if both did.
    pub fn bulk_dir(&self, min_bytes: u64) -> Option<Direction> {
        self.tcp()?;
        let down = self.tcp_part(Direction::Down).new_payload_bytes;
        let up = self.tcp_part(Direction::Up).new_payload_bytes;
        if down.max(up) < min_bytes {
            None
        } else if down >= up {
            Some(Direction::Down)
        } else {
            Some(Direction::Up)
        }
    }

    /// Throughput samples (bit/s) of one direction in the window: the flow's bins from its
    /// first to its last busy one, the two partial edge bins left out. Empty without a detail
    /// slot.
    pub fn busy_rates_bps(&self, dir: Direction) -> Vec<f64> {
        let Some(bins) = &self.f.bins else { return Vec::new() };
        let series: Vec<u32> = self.bins(dir).map(|(_, b)| b).collect();
        let (Some(first), Some(last)) =
            (series.iter().position(|&b| b > 0), series.iter().rposition(|&b| b > 0))
        else {
            return Vec::new();
        };
        let bin_s = bins.bin_us as f64 / 1e6;
        if last < first + 2 {
            return Vec::new();
        }
        series[first + 1..last].iter().map(|&b| f64::from(b) * 8.0 / bin_s).collect()
    }

    /// The bins of `dir` inside the flow's busy period in the window: from the bin after its
    /// first with bytes to the one before its last, the partial edge bins left out (empty
    /// where fewer than three).
    pub fn busy_interior(&self, dir: Direction) -> std::ops::Range<u64> {
        let mut busy = self.bins(dir).filter(|b| b.1 > 0).map(|b| b.0);
        match busy.next() {
            Some(first) => first + 1..busy.last().unwrap_or(first),
            None => 0..0,
        }
    }

    /// Absolute bin index (packet time / bin width) and bytes of every bin of a direction
    /// that starts inside the window.
    pub fn bins(&self, dir: Direction) -> impl Iterator<Item = (u64, u32)> + 'a {
        let bins = self.f.bins.as_ref();
        let width = bins.map_or(1, |b| b.bin_us.max(1));
        let first = bins.map_or(0, |b| b.start.micros() / width);
        let (from, to) = (self.window.start.micros(), self.end_bound().micros());
        bins.into_iter().flat_map(move |b| {
            b.bytes[dir]
                .iter()
                .enumerate()
                .map(move |(i, &v)| (first + i as u64, v))
                .filter(move |(bin, _)| (from..to).contains(&(bin * width)))
        })
    }

    /// Mean goodput (bit/s) of a TCP direction over its busy period (bins when present, else
    /// the flow's duration).
    pub fn goodput_bps(&self, dir: Direction) -> Option<f64> {
        self.tcp()?;
        let bytes = self.tcp_part(dir).new_payload_bytes as f64;
        let busy_s = match &self.f.bins {
            Some(b) => {
                let busy: Vec<u64> =
                    self.bins(dir).filter(|&(_, v)| v > 0).map(|(i, _)| i).collect();
                let busy = match (busy.first(), busy.last()) {
                    (Some(a), Some(z)) => z - a + 1,
                    _ => 0,
                };
                busy as f64 * b.bin_us as f64 / 1e6
            }
            None => {
                let from = self.f.first_at.max(self.window.start);
                self.f.last_at.since(from) as f64 / 1e6
            }
        };
        (busy_s > 0.0 && bytes > 0.0).then(|| bytes * 8.0 / busy_s)
    }

    /// The absolute time of a close event.
    pub fn at(&self, e: &CloseEvent) -> Timestamp {
        self.f.first_at.add_micros(u64::from(e.at_ms) * 1000)
    }

    /// The server's RST, if the server side reset the connection before the client closed it.
    pub fn server_reset(&self) -> Option<&'a CloseEvent> {
        let t = self.tcp()?;
        let rst = t.rst(Direction::Down)?;
        let client_closed_first = [t.rst(Direction::Up), t.fin(Direction::Up)]
            .into_iter()
            .flatten()
            .any(|c| c.at_ms < rst.at_ms);
        (!client_closed_first).then_some(rst)
    }
}

/// The initial TTL a sender most likely used (the common ones: 32, 64, 128, 255) and the hops
/// travelled since.
pub(crate) fn hops(ttl: u8) -> (u8, u8) {
    let initial = [32u8, 64, 128, 255].into_iter().find(|&i| i >= ttl).unwrap_or(255);
    (initial, initial - ttl)
}

/// The address's network: its /24 (IPv4) or /48 (IPv6), e.g. `198.51.100.0/24`.
pub(crate) fn network(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}
