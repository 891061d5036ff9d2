//! RTT estimators and the passive samplers that feed them.
//!
//! From the router's vantage point a round trip splits into two legs: the *external* one
//! (router → server → router) and the *internal* one (router → client → router). The TCP
//! handshake gives one sample of each (SYN→SYN/ACK, SYN/ACK→ACK); afterwards samples come from
//! TCP timestamps (a TSval seen for the first time, matched with the TSecr that echoes it, as
//! Kathleen Nichols' pping does) or, on flows without timestamps, from a data segment matched
//! with the ACK that covers it. Each sampler keeps one probe in flight per direction, so a flow
//! yields about one sample per RTT in constant space. Retransmitted data invalidates a pending
//! sequence probe (Karn's algorithm); pure ACKs never arm a probe because nothing obliges the
//! peer to answer them promptly (ePPing does the same).

use crate::time::{ShortTime, Timestamp};

/// Wrapping comparison of 32-bit sequence-like numbers (RFC 1982 serial arithmetic).
pub fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Which part of the path a sample measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// Router → server → router.
    External,
    /// Router → client → router.
    Internal,
}

impl Leg {
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Count, min, max, last and the RFC 6298 smoothed RTT and variation of one leg, in
/// microseconds (saturating at about 71 minutes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttStats {
    samples: u32,
    min_us: u32,
    max_us: u32,
    last_us: u32,
    srtt_us: u32,
    rttvar_us: u32,
}

impl RttStats {
    pub fn add(&mut self, rtt_us: u64) {
        let r = u32::try_from(rtt_us).unwrap_or(u32::MAX);
        if self.samples == 0 {
            // RFC 6298 §2.2.
            self.min_us = r;
            self.max_us = r;
            self.srtt_us = r;
            self.rttvar_us = r / 2;
        } else {
            // RFC 6298 §2.3 with alpha = 1/8, beta = 1/4.
            let diff = self.srtt_us.abs_diff(r);
            self.rttvar_us = ((u64::from(self.rttvar_us) * 3 + u64::from(diff)) / 4) as u32;
            self.srtt_us = ((u64::from(self.srtt_us) * 7 + u64::from(r)) / 8) as u32;
            self.min_us = self.min_us.min(r);
            self.max_us = self.max_us.max(r);
        }
        self.last_us = r;
        self.samples = self.samples.saturating_add(1);
    }

    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// `None` until the first sample.
    pub fn min_us(&self) -> Option<u32> {
        (self.samples > 0).then_some(self.min_us)
    }

    pub fn max_us(&self) -> Option<u32> {
        (self.samples > 0).then_some(self.max_us)
    }

    pub fn last_us(&self) -> Option<u32> {
        (self.samples > 0).then_some(self.last_us)
    }

    pub fn srtt_us(&self) -> Option<u32> {
        (self.samples > 0).then_some(self.srtt_us)
    }

    pub fn rttvar_us(&self) -> Option<u32> {
        (self.samples > 0).then_some(self.rttvar_us)
    }
}

/// Minimum (or maximum) over a sliding window of packet time in constant space: Kathleen
/// Nichols' algorithm as used by BBR, keeping the best, second-best and third-best samples of
/// sub-windows so that the estimate ages out within one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowedExtreme {
    window_us: u64,
    keep_max: bool,
    best: [(Timestamp, u32); 3],
    filled: bool,
}

impl WindowedExtreme {
    pub fn min(window_us: u64) -> Self {
        WindowedExtreme {
            window_us,
            keep_max: false,
            best: [(Timestamp::default(), 0); 3],
            filled: false,
        }
    }

    pub fn max(window_us: u64) -> Self {
        WindowedExtreme { keep_max: true, ..WindowedExtreme::min(window_us) }
    }

    fn better(&self, a: u32, b: u32) -> bool {
        if self.keep_max { a >= b } else { a <= b }
    }

    pub fn add(&mut self, now: Timestamp, value: u32) {
        let sample = (now, value);
        if !self.filled
            || self.better(value, self.best[0].1)
            || now.since(self.best[2].0) > self.window_us
        {
            self.best = [sample; 3];
            self.filled = true;
            return;
        }
        if self.better(value, self.best[1].1) {
            self.best[1] = sample;
            self.best[2] = sample;
        } else if self.better(value, self.best[2].1) {
            self.best[2] = sample;
        }
        let age = now.since(self.best[0].0);
        if age > self.window_us {
            // The best expired: promote the others and take the new sample as third.
            self.best = [self.best[1], self.best[2], sample];
            if now.since(self.best[0].0) > self.window_us {
                self.best = [self.best[1], self.best[2], sample];
            }
        } else if self.best[1].0 == self.best[0].0 && age > self.window_us / 4 {
            // A quarter of the window passed without a second choice: take one.
            self.best[1] = sample;
            self.best[2] = sample;
        } else if self.best[2].0 == self.best[1].0 && age > self.window_us / 2 {
            self.best[2] = sample;
        }
    }

    /// The extreme over roughly the last window, `None` before any sample.
    pub fn get(&self) -> Option<u32> {
        self.filled.then_some(self.best[0].1)
    }
}

/// One RTT probe per direction. On flows with TCP timestamps (pping): the first packet that
/// carries a new TSval arms it, and the peer's first TSecr equal to that value is one RTT
/// later. On flows without: the end sequence number of a new data segment arms it, and the
/// first ACK covering it answers; a retransmission makes the pending sample ambiguous and
/// disarms it (Karn).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttProbe {
    /// The armed value (TSval or end sequence number) and when it passed.
    value: u32,
    at: ShortTime,
    armed: bool,
    /// Highest TSval seen from this side, once `tsval_seen`.
    last_tsval: u32,
    tsval_seen: bool,
}

impl RttProbe {
    /// The highest TSval seen from this side, if any.
    pub fn last_tsval(&self) -> Option<u32> {
        self.tsval_seen.then_some(self.last_tsval)
    }

    /// `tsval` is newer than every TSval seen from this side before.
    pub fn newer_tsval(&self, tsval: u32) -> bool {
        self.tsval_seen && seq_after(tsval, self.last_tsval)
    }

    /// A packet from this side carrying `tsval`. `may_arm` is false for pure ACKs and SYNs;
    /// `opening` is true for a SYN, whose TSval cannot have been sent before the capture.
    pub fn sent_tsval(&mut self, tsval: u32, now: Timestamp, may_arm: bool, opening: bool) {
        let new_value = if self.tsval_seen { seq_after(tsval, self.last_tsval) } else { opening };
        if new_value && may_arm && !self.armed {
            self.arm(tsval, now);
        }
        if !self.tsval_seen || seq_after(tsval, self.last_tsval) {
            self.last_tsval = tsval;
            self.tsval_seen = true;
        }
    }

    /// The peer echoed `tsecr`; returns the RTT when it matches the armed TSval.
    pub fn echoed(&mut self, tsecr: u32, now: Timestamp) -> Option<u64> {
        if !self.armed {
            return None;
        }
        if tsecr == self.value {
            self.armed = false;
            Some(self.at.until(now))
        } else {
            if seq_after(tsecr, self.value) {
                // The echo passed our value without matching it: re-arm on the next one.
                self.armed = false;
            }
            None
        }
    }

    /// New data up to `seq_end` passed (flows without timestamps).
    pub fn sent_data(&mut self, seq_end: u32, now: Timestamp) {
        if !self.armed {
            self.arm(seq_end, now);
        }
    }

    pub fn retransmission(&mut self) {
        self.armed = false;
    }

    /// The peer acknowledged up to `ack`; returns the RTT when that covers the armed data.
    pub fn acked(&mut self, ack: u32, now: Timestamp) -> Option<u64> {
        if self.armed && (ack == self.value || seq_after(ack, self.value)) {
            self.armed = false;
            Some(self.at.until(now))
        } else {
            None
        }
    }

    fn arm(&mut self, value: u32, now: Timestamp) {
        self.value = value;
        self.at = ShortTime::of(now);
        self.armed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    #[test]
    fn rfc6298_estimator() {
        let mut s = RttStats::default();
        assert_eq!(s.srtt_us(), None);
        s.add(100_000);
        assert_eq!((s.srtt_us(), s.rttvar_us()), (Some(100_000), Some(50_000)));
        s.add(200_000);
        // rttvar = 3/4*50000 + 1/4*100000 = 62500; srtt = 7/8*100000 + 1/8*200000 = 112500
        assert_eq!((s.srtt_us(), s.rttvar_us()), (Some(112_500), Some(62_500)));
        assert_eq!(
            (s.min_us(), s.max_us(), s.last_us()),
            (Some(100_000), Some(200_000), Some(200_000))
        );
        assert_eq!(s.samples(), 2);
        s.add(u64::MAX);
        assert_eq!(s.max_us(), Some(u32::MAX));
    }

    #[test]
    fn sequence_comparison_wraps() {
        assert!(seq_after(5, 1));
        assert!(!seq_after(1, 5));
        assert!(seq_after(3, u32::MAX - 2));
        assert!(!seq_after(7, 7));
    }

    #[test]
    fn windowed_min_ages_out() {
        let mut w = WindowedExtreme::min(10_000_000);
        w.add(t(0), 50);
        w.add(t(1000), 80);
        assert_eq!(w.get(), Some(50));
        w.add(t(3000), 70);
        w.add(t(6000), 90);
        assert_eq!(w.get(), Some(50));
        // 11 s later the 50 ms sample is out of the window; the best of the rest remains.
        w.add(t(11_000), 95);
        assert!(w.get().unwrap() > 50, "{:?}", w.get());
        w.add(t(12_000), 40);
        assert_eq!(w.get(), Some(40));
    }

    #[test]
    fn windowed_max() {
        let mut w = WindowedExtreme::max(1_000_000);
        w.add(t(0), 5);
        w.add(t(100), 9);
        w.add(t(200), 7);
        assert_eq!(w.get(), Some(9));
        w.add(t(1500), 3);
        assert!(w.get().unwrap() < 9);
    }

    #[test]
    fn timestamp_probe_first_sighting_only() {
        let mut p = RttProbe::default();
        p.sent_tsval(100, t(0), true, true);
        // Later packets with the same TSval do not move the probe's time.
        p.sent_tsval(100, t(5), true, false);
        assert_eq!(p.echoed(99, t(20)), None);
        assert_eq!(p.echoed(100, t(40)), Some(40_000));
        // Used: a second echo of the same value gives nothing.
        assert_eq!(p.echoed(100, t(41)), None);
    }

    #[test]
    fn timestamp_probe_ignores_mid_flow_first_value_and_pure_acks() {
        let mut p = RttProbe::default();
        p.sent_tsval(100, t(0), true, false);
        assert_eq!(p.echoed(100, t(10)), None);
        p.sent_tsval(101, t(20), false, false);
        assert_eq!(p.echoed(101, t(30)), None);
        p.sent_tsval(102, t(40), true, false);
        assert_eq!(p.echoed(102, t(45)), Some(5000));
    }

    #[test]
    fn timestamp_probe_rearms_after_a_missed_echo() {
        let mut p = RttProbe::default();
        p.sent_tsval(10, t(0), true, true);
        assert_eq!(p.echoed(11, t(5)), None);
        p.sent_tsval(12, t(6), true, false);
        assert_eq!(p.echoed(12, t(9)), Some(3000));
    }

    #[test]
    fn ack_probe_and_karn() {
        let mut p = RttProbe::default();
        p.sent_data(1000, t(0));
        p.sent_data(2000, t(1));
        assert_eq!(p.acked(999, t(5)), None);
        assert_eq!(p.acked(1500, t(7)), Some(7000));
        p.sent_data(3000, t(10));
        p.retransmission();
        assert_eq!(p.acked(3000, t(20)), None);
    }
}
