//! What the detectors read of a finished flow, derived once: its transport part, bulk
//! direction, minimum RTT, busy-period throughput samples and how its TCP connection ended.

use crate::flow::Direction;
use crate::measure::TransportMeasures;
use crate::measure::call::UdpMeasures;
use crate::measure::tcp::{CloseEvent, TcpMeasures};
use crate::pipeline::FinishedFlow;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub f: &'a FinishedFlow,
}

impl<'a> Facts<'a> {
    pub fn new(f: &'a FinishedFlow) -> Self {
        Facts { f }
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

    /// The largest external RTT sample (queueing shows here).
    pub fn max_rtt_us(&self) -> Option<u64> {
        self.tcp()?.rtt(crate::measure::rtt::Leg::External).max_us().map(u64::from)
    }

    /// The direction in which a TCP flow moved at least `min_bytes` of new payload, the larger
    /// one if both did.
    pub fn bulk_dir(&self, min_bytes: u64) -> Option<Direction> {
        let t = self.tcp()?;
        let (down, up) = (t.dirs[1].new_payload_bytes, t.dirs[0].new_payload_bytes);
        if down.max(up) < min_bytes {
            None
        } else if down >= up {
            Some(Direction::Down)
        } else {
            Some(Direction::Up)
        }
    }

    /// Throughput samples (bit/s) of one direction: the flow's bins from its first to its last
    /// busy one, the two partial edge bins left out. Empty without a detail slot.
    pub fn busy_rates_bps(&self, dir: Direction) -> Vec<f64> {
        let Some(bins) = &self.f.bins else { return Vec::new() };
        let series = &bins.bytes[dir.index()];
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

    /// Absolute bin index (packet time / bin width) and bytes of every bin of a direction.
    pub fn bins(&self, dir: Direction) -> impl Iterator<Item = (u64, u32)> + 'a {
        let bins = self.f.bins.as_ref();
        let first = bins.map_or(0, |b| b.start.micros() / b.bin_us.max(1));
        bins.into_iter().flat_map(move |b| {
            b.bytes[dir.index()].iter().enumerate().map(move |(i, &v)| (first + i as u64, v))
        })
    }

    /// Mean goodput (bit/s) of a TCP direction over its busy period (bins when present, else
    /// the flow's duration).
    pub fn goodput_bps(&self, dir: Direction) -> Option<f64> {
        let t = self.tcp()?;
        let bytes = t.dirs[dir.index()].new_payload_bytes as f64;
        let busy_s = match &self.f.bins {
            Some(b) => {
                let s = &b.bytes[dir.index()];
                let busy = match (s.iter().position(|&v| v > 0), s.iter().rposition(|&v| v > 0)) {
                    (Some(a), Some(z)) => z - a + 1,
                    _ => 0,
                };
                busy as f64 * b.bin_us as f64 / 1e6
            }
            None => self.f.last_at.since(self.f.first_at) as f64 / 1e6,
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
        let rst = t.dirs[1].rst.as_ref()?;
        let client_closed_first = [t.dirs[0].rst.as_ref(), t.dirs[0].fin.as_ref()]
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
