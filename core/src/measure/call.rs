//! UDP and call measurements (ARCHITECTURE.md): inter-arrival gaps and silences per direction, RTP
//! sequence loss and interarrival jitter where an RTP header is visible (RFC 3550 A.1, A.3,
//! A.8), and STUN request→response RTT by transaction ID.
//!
//! The RTP clock rate is not on the wire for dynamic payload types; it is inferred from the
//! ratio of RTP timestamp progress to arrival time and snapped to a standard rate, and jitter
//! is reported only once that succeeded.
//!
//! RTP trackers are kept out of the flow-table entry: allocated at a direction's first packet
//! that parses as RTP (at most two per direction), freed with the flow.

use crate::decode::rtp::RtpHeader;
use crate::decode::stun::{StunClass, StunMessage};
use crate::flow::{Direction, PerDir};
use crate::time::Timestamp;

use super::rtt::RttStats;

/// RFC 3550 A.1 constants.
const MIN_SEQUENTIAL: u16 = 2;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;
/// Consecutive packets of another SSRC before the stream is taken to have switched to it.
const SSRC_SWITCH_RUN: u8 = 8;
/// Arrival time and packets needed before the clock rate is inferred.
const CLOCK_INFERENCE_MIN_US: u64 = 1_000_000;
const CLOCK_INFERENCE_MIN_PACKETS: u32 = 10;
/// RTP clock rates in use (RFC 3551 and common codecs: G.711/G.729 8 kHz, G.722/wideband
/// 16 kHz, Opus 48 kHz, video 90 kHz).
const STANDARD_CLOCKS_HZ: [u32; 6] = [8_000, 16_000, 32_000, 44_100, 48_000, 90_000];

/// UDP measurements of a flow.
#[derive(Debug, Clone, Default)]
pub struct UdpMeasures {
    pub dirs: PerDir<UdpDirection>,
    pub stun: StunStats,
}

/// One direction of a UDP flow.
#[derive(Debug, Clone, Default)]
pub struct UdpDirection {
    /// Longest silence between two packets of this direction.
    pub max_gap_us: u64,
    gap_sum_us: u64,
    gaps: u64,
    /// The dominant RTP stream, allocated at the first packet that parses as RTP, and a second
    /// one beside it (a call's video next to its audio, each with its own SSRC), allocated
    /// when a second SSRC first shows: most flows carry neither, and the flow entry stays
    /// small.
    rtp: Option<Box<RtpStream>>,
    rtp_second: Option<Box<RtpStream>>,
}

impl UdpDirection {
    /// The dominant RTP stream's measurements, once it passed the RFC's probation.
    pub fn rtp(&self) -> Option<RtpSummary> {
        self.rtp.as_ref()?.summary()
    }

    /// The second RTP stream's measurements, likewise.
    pub fn rtp_second(&self) -> Option<RtpSummary> {
        self.rtp_second.as_ref()?.summary()
    }

    /// Loss over both RTP streams (negative losses, from duplicates further back than the
    /// streams keep, count as none).
    pub fn rtp_loss(&self) -> Option<RtpLoss> {
        let streams = [self.rtp(), self.rtp_second()];
        let loss = streams.iter().flatten().fold(RtpLoss::default(), |a, s| RtpLoss {
            lost: a.lost + u64::try_from(s.lost.max(0)).unwrap_or(0),
            expected: a.expected + u64::from(s.expected),
            runs: a.runs + u64::from(s.loss_runs),
        });
        (loss.expected > 0).then_some(loss)
    }

    /// Mean inter-arrival time, once two packets were seen.
    pub fn mean_gap_us(&self) -> Option<u64> {
        (self.gaps > 0).then(|| self.gap_sum_us / self.gaps)
    }
}

impl UdpMeasures {
    /// Account one datagram. `last_at` is the time of the direction's previous packet. True
    /// when it is RTP that came after a run of lost packets of its stream.
    pub fn on_datagram(
        &mut self,
        dir: Direction,
        payload: &[u8],
        stun: Option<&StunMessage<'_>>,
        last_at: Option<Timestamp>,
        now: Timestamp,
    ) -> bool {
        let d = &mut self.dirs[dir];
        if let Some(last) = last_at {
            let gap = now.since(last);
            d.max_gap_us = d.max_gap_us.max(gap);
            d.gap_sum_us = d.gap_sum_us.saturating_add(gap);
            d.gaps += 1;
        }
        if let Some(msg) = stun {
            self.stun.on_message(dir, msg, now);
            false
        } else if let Some(rtp) = RtpHeader::parse(payload) {
            // Each SSRC to its own stream; a third one goes to the first, whose switching
            // rule decides whether it took over.
            // (A stream, once allocated, has started: it starts at its first packet.)
            let second_ssrc = d.rtp_second.as_ref().map(|s| s.ssrc);
            if d.rtp.as_ref().is_some_and(|first| first.ssrc != rtp.ssrc)
                && second_ssrc.is_none_or(|ssrc| ssrc == rtp.ssrc)
            {
                d.rtp_second.get_or_insert_default().on_packet(&rtp, now)
            } else {
                d.rtp.get_or_insert_default().on_packet(&rtp, now)
            }
        } else {
            false
        }
    }
}

/// Packets lost and expected over a direction's RTP streams, and the runs the lost ones came
/// in: a burst of consecutive losses (a queue overflowing once) is one run, random drops are
/// as many runs as packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpLoss {
    pub lost: u64,
    pub expected: u64,
    pub runs: u64,
}

impl RtpLoss {
    /// The share of the expected packets lost (0 with none expected).
    pub fn share(&self) -> f64 {
        self.lost as f64 / self.expected.max(1) as f64
    }
}

/// One RTP stream (the dominant SSRC of a direction).
#[derive(Debug, Clone, Default)]
pub struct RtpStream {
    ssrc: u32,
    payload_type: u8,
    started: bool,
    probation: u16,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u32,
    /// Which of the 64 sequence numbers up to `max_seq` were received (bit `k`: `max_seq -
    /// k`), so that a second copy of a packet (a mirror port's, where nothing else tells the
    /// copies apart: IPv6) is not counted as received, which would hide a loss.
    seen: u64,
    /// Times the sequence jumped past the next number: runs of lost packets.
    loss_runs: u32,
    /// Packets that were not of the tracked SSRC.
    pub other_ssrc_packets: u32,
    candidate: (u32, u8),
    clock_hz: u32,
    clock_base: Option<(Timestamp, u32)>,
    last: Option<(Timestamp, u32)>,
    /// Interarrival jitter in RTP timestamp units, times 16 (RFC 3550 A.8).
    jitter_x16: u64,
}

/// What an RTP stream measured, for reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RtpSummary {
    pub ssrc: u32,
    pub payload_type: u8,
    pub received: u32,
    pub expected: u32,
    /// Expected minus received (RFC 3550 A.3); duplicates are not received again, but for
    /// those of a packet more than 64 numbers back, which make it negative.
    pub lost: i64,
    /// Runs of consecutive lost packets (see [`RtpLoss::runs`]).
    pub loss_runs: u32,
    pub clock_hz: Option<u32>,
    pub jitter_us: Option<u64>,
}

impl RtpStream {
    /// Account one packet; true when it came after a run of lost packets.
    fn on_packet(&mut self, rtp: &RtpHeader, now: Timestamp) -> bool {
        let runs = self.loss_runs;
        if !self.started {
            self.start(rtp);
        } else if rtp.ssrc != self.ssrc {
            self.other_ssrc_packets = self.other_ssrc_packets.saturating_add(1);
            if self.candidate.0 == rtp.ssrc {
                self.candidate.1 += 1;
            } else {
                self.candidate = (rtp.ssrc, 1);
            }
            if self.candidate.1 >= SSRC_SWITCH_RUN {
                let other = self.other_ssrc_packets;
                *self = RtpStream { other_ssrc_packets: other, ..RtpStream::default() };
                self.start(rtp);
            }
            return false;
        }
        self.candidate = (0, 0);
        self.payload_type = rtp.payload_type;
        if self.update_seq(rtp.sequence) {
            self.timing(rtp.timestamp, now);
        }
        self.loss_runs > runs
    }

    fn start(&mut self, rtp: &RtpHeader) {
        self.started = true;
        self.ssrc = rtp.ssrc;
        self.payload_type = rtp.payload_type;
        self.init_seq(rtp.sequence);
        self.max_seq = rtp.sequence.wrapping_sub(1);
        self.probation = MIN_SEQUENTIAL;
        // The first packet goes through probation like the RFC's, so it is counted below.
        self.update_seq(rtp.sequence);
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        // The sequential packets that led here (probation's, or two after a jump) came.
        self.seen = (1 << MIN_SEQUENTIAL) - 1;
        self.loss_runs = 0;
    }

    /// RFC 3550 A.1 `update_seq`: true when the packet counts for the stream.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        }
        // A number received already (the highest, or one of the 63 below it) is a duplicate:
        // not counted.
        let back = self.max_seq.wrapping_sub(seq);
        if back < 64 && self.seen & (1 << back) != 0 {
            return false;
        }
        if udelta < MAX_DROPOUT {
            if udelta > 1 {
                self.loss_runs = self.loss_runs.saturating_add(1);
            }
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
            self.seen = self.seen.checked_shl(u32::from(udelta)).unwrap_or(0) | 1;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        } else if let Some(bit) = 1u64.checked_shl(u32::from(back)) {
            // A reordered packet: counted, max unchanged.
            self.seen |= bit;
        }
        self.received = self.received.saturating_add(1);
        true
    }

    fn timing(&mut self, rtp_ts: u32, now: Timestamp) {
        if self.clock_hz == 0 {
            self.infer_clock(rtp_ts, now);
        }
        if self.clock_hz != 0
            && let Some((last_at, last_ts)) = self.last
        {
            // D(i-1, i) = (R_i - R_{i-1}) - (S_i - S_{i-1}) in timestamp units (RFC 3550 6.4.1).
            let arrival_units = (u128::from(now.since(last_at)) * u128::from(self.clock_hz)
                / 1_000_000)
                .min(i64::MAX as u128) as i64;
            let sent_units = i64::from(rtp_ts.wrapping_sub(last_ts) as i32);
            let d = arrival_units.saturating_sub(sent_units).unsigned_abs();
            // J += (|D| - J) / 16, kept times 16 (RFC 3550 A.8).
            self.jitter_x16 = (self.jitter_x16 + d).saturating_sub((self.jitter_x16 + 8) >> 4);
        }
        self.last = Some((now, rtp_ts));
    }

    fn infer_clock(&mut self, rtp_ts: u32, now: Timestamp) {
        let Some((base_at, base_ts)) = self.clock_base else {
            self.clock_base = Some((now, rtp_ts));
            return;
        };
        let elapsed_us = now.since(base_at);
        if elapsed_us < CLOCK_INFERENCE_MIN_US || self.received < CLOCK_INFERENCE_MIN_PACKETS {
            return;
        }
        let units = f64::from(rtp_ts.wrapping_sub(base_ts));
        let rate = units * 1e6 / elapsed_us as f64;
        match STANDARD_CLOCKS_HZ.iter().find(|&&hz| (rate / f64::from(hz) - 1.0).abs() < 0.2) {
            Some(&hz) => self.clock_hz = hz,
            // Try again from here: silence suppression or a restart spoiled this base.
            None => self.clock_base = Some((now, rtp_ts)),
        }
    }

    /// `None` until a stream passed the RFC's probation.
    pub fn summary(&self) -> Option<RtpSummary> {
        if !self.started || self.received == 0 {
            return None;
        }
        let extended_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = extended_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let clock_hz = (self.clock_hz != 0).then_some(self.clock_hz);
        Some(RtpSummary {
            ssrc: self.ssrc,
            payload_type: self.payload_type,
            received: self.received,
            expected,
            lost: i64::from(expected) - i64::from(self.received),
            loss_runs: self.loss_runs,
            clock_hz,
            jitter_us: clock_hz.map(|hz| (self.jitter_x16 / 16) * 1_000_000 / u64::from(hz)),
        })
    }
}

/// STUN transactions of a flow: requests, answered requests and their RTT.
#[derive(Debug, Clone, Default)]
pub struct StunStats {
    /// Distinct requests (by transaction ID).
    pub requests: u32,
    /// Requests whose response (success or error) came back.
    pub answered: u32,
    pub request_retransmissions: u32,
    /// Request → response, over transactions that were not retransmitted (Karn).
    pub rtt: RttStats,
    pending: [Option<PendingTransaction>; 2],
    next_slot: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingTransaction {
    id: [u8; 12],
    from: Direction,
    sent: Timestamp,
    retransmitted: bool,
}

impl StunStats {
    fn on_message(&mut self, dir: Direction, msg: &StunMessage<'_>, now: Timestamp) {
        let slot = self.pending.iter().position(|p| p.is_some_and(|p| p.id == msg.transaction_id));
        match msg.class() {
            StunClass::Request => match slot {
                Some(i) => {
                    self.request_retransmissions = self.request_retransmissions.saturating_add(1);
                    if let Some(p) = &mut self.pending[i] {
                        p.retransmitted = true;
                    }
                }
                None => {
                    self.requests = self.requests.saturating_add(1);
                    self.pending[self.next_slot] = Some(PendingTransaction {
                        id: msg.transaction_id,
                        from: dir,
                        sent: now,
                        retransmitted: false,
                    });
                    self.next_slot = (self.next_slot + 1) % self.pending.len();
                }
            },
            StunClass::Success | StunClass::Error => {
                if let Some(i) = slot
                    && let Some(p) = self.pending[i]
                    && p.from != dir
                {
                    self.answered = self.answered.saturating_add(1);
                    if !p.retransmitted {
                        self.rtt.add(now.since(p.sent));
                    }
                    self.pending[i] = None;
                }
            }
            StunClass::Indication => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::rtp::fixtures::packet as rtp_packet;
    use crate::decode::stun::fixtures::message as stun_message;

    fn ms(ms: u64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    /// One datagram; true when it came after a run of lost RTP packets.
    fn feed(
        u: &mut UdpMeasures,
        dir: Direction,
        at: Timestamp,
        payload: &[u8],
        last: Option<Timestamp>,
    ) -> bool {
        let stun = StunMessage::parse(payload, payload.len() as u32);
        u.on_datagram(dir, payload, stun.as_ref(), last, at)
    }

    /// The packet after each run of lost ones says so, once a run: what the flow's loss log
    /// records for a call. Duplicates, a packet out of order and another SSRC's do not.
    #[test]
    fn the_packet_after_a_run_of_losses_says_so() {
        let mut u = UdpMeasures::default();
        let mut after_loss = Vec::new();
        let mut last = None;
        for (n, seq) in [1u16, 2, 3, 4, 7, 8, 8, 10, 9, 11, 12, 20].into_iter().enumerate() {
            let at = ms(n as u64 * 20);
            if feed(
                &mut u,
                Direction::Down,
                at,
                &rtp_packet(111, seq, u32::from(seq) * 960, 7),
                last,
            ) {
                after_loss.push(seq);
            }
            last = Some(at);
        }
        assert!(!feed(&mut u, Direction::Down, ms(300), &rtp_packet(111, 40, 0, 8), last));
        assert_eq!(after_loss, [7, 10, 20]);
        assert_eq!(u.dirs.down.rtp().unwrap().loss_runs, 3);
    }

    #[test]
    fn audio_and_video_each_tracked_and_lost_together() {
        let mut u = UdpMeasures::default();
        let mut last = None;
        // Audio (SSRC 7) every 20 ms with no loss; video (SSRC 9) beside it losing every
        // fourth packet; a third SSRC's stray packet changes neither.
        for i in 0u32..200 {
            let at = ms(u64::from(i) * 20);
            feed(&mut u, Direction::Down, at, &rtp_packet(111, i as u16, i * 960, 7), last);
            if i % 4 != 3 {
                feed(
                    &mut u,
                    Direction::Down,
                    at,
                    &rtp_packet(96, 500 + i as u16, i * 1800, 9),
                    last,
                );
            }
            last = Some(at);
        }
        feed(&mut u, Direction::Down, ms(4000), &rtp_packet(0, 1, 1, 11), last);
        let d = &u.dirs.down;
        assert_eq!(d.rtp().unwrap().ssrc, 7);
        assert_eq!(d.rtp().unwrap().lost, 0);
        let video = d.rtp_second().unwrap();
        assert_eq!((video.ssrc, video.payload_type), (9, 96));
        assert_eq!(video.lost, 49, "every fourth packet up to the last one received");
        let loss = d.rtp_loss().unwrap();
        assert_eq!((loss.lost, loss.expected), (49, 199 + 198));
        assert_eq!(loss.runs, 49, "every fourth packet: each loss a run of its own");
        assert_eq!(d.rtp.as_ref().unwrap().other_ssrc_packets, 1);
    }

    #[test]
    fn rtp_loss_and_jitter_at_8khz() {
        let mut u = UdpMeasures::default();
        let mut last = None;
        // 20 ms packets, 160 timestamp units each; seq 10..=200 with 5 packets lost and
        // arrival alternating 2 ms early and late.
        for i in 0u32..=190 {
            if [50, 51, 52, 100, 150].contains(&i) {
                continue;
            }
            let jitter_ms = if i % 2 == 0 { 0 } else { 2 };
            let at = ms(1000 + u64::from(i) * 20 + jitter_ms);
            let p = rtp_packet(0, 10 + i as u16, 8000 + i * 160, 42);
            feed(&mut u, Direction::Down, at, &p, last);
            last = Some(at);
        }
        let s = u.dirs.down.rtp().unwrap();
        assert_eq!(s.ssrc, 42);
        assert_eq!(s.clock_hz, Some(8000));
        // RFC 3550 A.1 counts from the second packet, the one that ends probation.
        assert_eq!(s.expected, 190);
        assert_eq!(s.received, 185);
        assert_eq!(s.lost, 5);
        assert_eq!(s.loss_runs, 3, "50-52 in one run, 100 and 150 alone");
        // |D| alternates around 16 units (2 ms): jitter converges near 2 ms.
        let j = s.jitter_us.unwrap();
        assert!((1_500..=2_100).contains(&j), "jitter {j} us");
        assert_eq!(u.dirs.down.max_gap_us, 80_000);
    }

    /// A mirror port's second copy of each packet, right after it or a few packets later, is
    /// no packet received: the loss (5 %, one in twenty) stays what it is; a packet that came
    /// out of order is received once.
    #[test]
    fn rtp_duplicates_do_not_hide_loss() {
        let summary = |order: &[u16]| {
            let mut s = RtpStream::default();
            for (i, &seq) in order.iter().enumerate() {
                let p = rtp_packet(0, seq, u32::from(seq) * 160, 42);
                s.on_packet(&RtpHeader::parse(&p).unwrap(), ms(i as u64));
            }
            s.summary().unwrap()
        };
        let once: Vec<u16> =
            (65_500..65_500 + 200u32).map(|n| n as u16).filter(|n| n % 20 != 7).collect();
        let single = summary(&once);
        assert_eq!((single.lost, single.loss_runs), (10, 10));
        for copy_after in [0, 1, 5] {
            let mut twice: Vec<(usize, u16)> = once.iter().copied().enumerate().collect();
            twice.extend(once.iter().enumerate().map(|(i, &seq)| (i + copy_after, seq)));
            twice.sort_by_key(|(at, _)| *at);
            let order: Vec<u16> = twice.into_iter().map(|(_, seq)| seq).collect();
            let s = summary(&order);
            let got = (s.expected, s.received, s.lost, s.loss_runs);
            let want = (single.expected, single.received, single.lost, single.loss_runs);
            assert_eq!(got, want, "copies {copy_after} packets later");
        }
        let mut reordered = once.clone();
        reordered.swap(100, 101);
        assert_eq!(summary(&reordered).lost, single.lost);
    }

    #[test]
    fn rtp_sequence_wraps_and_restarts() {
        let mut s = RtpStream::default();
        for i in 0..20u16 {
            s.on_packet(
                &RtpHeader::parse(&rtp_packet(96, 65530u16.wrapping_add(i), 0, 7)).unwrap(),
                ms(u64::from(i)),
            );
        }
        let sum = s.summary().unwrap();
        assert_eq!((sum.expected, sum.received, sum.lost), (19, 19, 0));
        // A jump of 10000 needs two sequential packets to be accepted as a restart.
        s.on_packet(&RtpHeader::parse(&rtp_packet(96, 20000, 0, 7)).unwrap(), ms(30));
        assert_eq!(s.summary().unwrap().received, 19);
        s.on_packet(&RtpHeader::parse(&rtp_packet(96, 20001, 0, 7)).unwrap(), ms(31));
        assert_eq!(s.summary().unwrap().received, 1);
    }

    #[test]
    fn rtp_switches_to_a_new_ssrc_after_a_run() {
        let mut s = RtpStream::default();
        for i in 0..5u16 {
            s.on_packet(&RtpHeader::parse(&rtp_packet(0, i, 0, 1)).unwrap(), ms(u64::from(i)));
        }
        for i in 0..10u16 {
            s.on_packet(
                &RtpHeader::parse(&rtp_packet(0, 100 + i, 0, 2)).unwrap(),
                ms(10 + u64::from(i)),
            );
        }
        let sum = s.summary().unwrap();
        assert_eq!(sum.ssrc, 2);
        assert_eq!(s.other_ssrc_packets, 8);
    }

    #[test]
    fn random_payload_never_validates() {
        let mut s = RtpStream::default();
        let mut x: u32 = 12345;
        for i in 0..200 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let mut p = rtp_packet(0, (x >> 8) as u16, x, x.rotate_left(7));
            p[0] = 0x80;
            if let Some(h) = RtpHeader::parse(&p) {
                s.on_packet(&h, ms(i));
            }
        }
        assert!(s.summary().is_none_or(|s| s.received < 8), "{:?}", s.summary());
    }

    #[test]
    fn stun_transaction_rtt() {
        let mut u = UdpMeasures::default();
        let req = stun_message(0x0001, 1, &[]);
        let resp = stun_message(0x0101, 1, &[]);
        feed(&mut u, Direction::Up, ms(0), &req, None);
        feed(&mut u, Direction::Down, ms(25), &resp, None);
        let req2 = stun_message(0x0001, 2, &[]);
        feed(&mut u, Direction::Up, ms(100), &req2, None);
        feed(&mut u, Direction::Up, ms(600), &req2, Some(ms(100))); // retransmitted
        feed(&mut u, Direction::Down, ms(620), &stun_message(0x0101, 2, &[]), Some(ms(25)));
        feed(&mut u, Direction::Up, ms(700), &stun_message(0x0001, 3, &[]), Some(ms(600)));
        let s = &u.stun;
        assert_eq!((s.requests, s.answered, s.request_retransmissions), (3, 2, 1));
        assert_eq!((s.rtt.samples(), s.rtt.min_us()), (1, Some(25_000)));
        // A "response" from the requester's own side is not an answer.
        feed(&mut u, Direction::Up, ms(710), &stun_message(0x0101, 3, &[]), Some(ms(700)));
        assert_eq!(u.stun.answered, 2);
    }
}
