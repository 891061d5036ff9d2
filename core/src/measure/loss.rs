//! Loss events of the server-to-client direction of a TCP flow, for the policing detector
//! (Flach et al., SIGCOMM'16): when data went missing, with the IP bytes that had come through
//! by then. The capture point is on the client's side of any policer, so it sees what the
//! policer let through: a loss shows as a hole in the sequence space, or as the server's
//! retransmission (at most two events per lost segment). A UDP flow's log holds its calls'
//! losses towards the client: an event at each RTP packet that came after a run of lost ones,
//! so that a call's losses can be set beside other flows' (a queue they share).
//!
//! Kept for flows with a detail slot only; at most [`LOSS_LOG_LEN`] events are stored, the count
//! and the last event always. A full log drops its oldest event (a window of a long flow
//! judges its own, the latest), unless the others would span less than
//! [`LOSS_LOG_MIN_SPAN_US`]: then it drops an event of its older half where they lie closest,
//! so that it goes on covering that long, sparser into the past and the latest half whole (a policer far
//! below the sender's rate drops hundreds of segments a second, whose latest 64 would span too
//! short a stretch to test a token line).

use crate::time::Timestamp;

/// Loss events stored per direction.
pub const LOSS_LOG_LEN: usize = 64;

/// The least time a full log's events span: twice the second, and over three round trips of
/// up to 600 ms, that the policing detector tests a token line over at least.
pub const LOSS_LOG_MIN_SPAN_US: u64 = 2_000_000;

/// One loss: when it showed, and the IP bytes of the direction up to then (retransmissions
/// included: a policer counts every packet it passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossEvent {
    pub at: Timestamp,
    pub delivered_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LossLog {
    /// All loss events, stored or not.
    pub count: u32,
    pub last: Option<LossEvent>,
    /// The latest [`LOSS_LOG_LEN`] events, in order.
    pub events: Vec<LossEvent>,
    /// Largest external RTT sample before the first loss (queueing builds before a shaper's
    /// drops, not before a policer's).
    pub rtt_max_before_us: u32,
}

impl LossLog {
    pub fn record(&mut self, at: Timestamp, delivered_bytes: u64) {
        let event = LossEvent { at, delivered_bytes };
        self.count = self.count.saturating_add(1);
        self.last = Some(event);
        if self.events.len() == LOSS_LOG_LEN {
            // Without its oldest event, the log still spans as long when the next is as old.
            if at.since(self.events[1].at) < LOSS_LOG_MIN_SPAN_US {
                self.thin();
            } else {
                // Rare next to packets (a loss event per lost segment at most): a shift is
                // cheap.
                self.events.remove(0);
            }
        }
        self.events.push(event);
    }

    /// One event of the older half goes, not the oldest: the one whose neighbours lie
    /// closest together, so that the older half grows sparser evenly and keeps reaching back
    /// (module docs). Never for a log that never fills.
    #[cold]
    #[inline(never)]
    fn thin(&mut self) {
        let gap = |i: usize| self.events[i + 1].at.since(self.events[i - 1].at);
        if let Some(closest) = (1..LOSS_LOG_LEN / 2).min_by_key(|&i| gap(i)) {
            self.events.remove(closest);
        }
    }

    /// An external RTT sample of the flow.
    pub fn rtt(&mut self, rtt_us: u32) {
        if self.count == 0 {
            self.rtt_max_before_us = self.rtt_max_before_us.max(rtt_us);
        }
    }

    /// The stored events in `[from, to)`.
    pub fn between(&self, from: Timestamp, to: Timestamp) -> impl Iterator<Item = &LossEvent> {
        self.events.iter().filter(move |e| e.at >= from && e.at < to)
    }

    /// Ready for another flow, keeping the allocation.
    pub fn clear(&mut self) {
        self.count = 0;
        self.last = None;
        self.events.clear();
        self.rtt_max_before_us = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_events_the_count_and_the_last() {
        let mut log = LossLog::default();
        log.rtt(40_000);
        // One loss every 100 ms: the latest 64 span 6.3 s.
        for i in 0..100u64 {
            log.record(Timestamp::from_micros(i * 100_000), i * 1448);
            log.rtt(90_000);
        }
        assert_eq!(log.count, 100);
        assert_eq!(log.events.len(), LOSS_LOG_LEN);
        assert_eq!(log.events[0].delivered_bytes, 36 * 1448, "the latest 64 of 100");
        let t = Timestamp::from_micros;
        assert_eq!(log.between(t(5_000_000), t(6_000_000)).count(), 10);
        assert_eq!(log.last.unwrap().delivered_bytes, 99 * 1448);
        assert_eq!(log.rtt_max_before_us, 40_000, "samples after the first loss do not count");
        log.clear();
        assert_eq!((log.count, log.events.len(), log.last), (0, 0, None));
    }

    /// Losses too dense for the latest 64 to span two seconds: the log thins its older half
    /// and keeps covering them, back to the first (ever sparser into the past).
    #[test]
    fn dense_losses_keep_their_span() {
        let mut log = LossLog::default();
        // One loss a millisecond for 1.5 s.
        for i in 0..1_500u64 {
            log.record(Timestamp::from_micros(i * 1000), i * 1448);
        }
        assert_eq!(log.count, 1_500);
        assert!(log.events.len() <= LOSS_LOG_LEN);
        assert_eq!(log.events[0].delivered_bytes, 0, "the first loss stays");
        assert!(log.events.windows(2).all(|w| w[0].at < w[1].at), "in order");
        let t = Timestamp::from_micros;
        assert!(log.between(t(1_468_000), t(1_500_000)).count() >= 32, "the latest 32 all there");
        // Beyond two seconds the oldest go again, never below two seconds.
        for i in 1_500..6_000u64 {
            log.record(Timestamp::from_micros(i * 1000), i * 1448);
            let span_us = log.last.unwrap().at.since(log.events[0].at);
            assert!(span_us >= LOSS_LOG_MIN_SPAN_US.min(i * 1000), "at {i} ms: {span_us}");
        }
        assert!(log.events[0].at > t(0), "no longer the first loss");
        assert!(log.between(t(5_968_000), t(6_000_000)).count() >= 32, "the latest 32 all there");
    }
}
