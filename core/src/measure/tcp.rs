//! TCP per-flow measurements (ARCHITECTURE.md): the handshake and its two RTT legs, continuing RTT
//! samples, sequence analysis (retransmissions, out-of-order segments, gaps), zero windows,
//! and FIN/RST with the forensic fields that tell an injected reset from a real one.
//!
//! Sequence numbers are compared with wrapping arithmetic. A flow picked up in the middle
//! starts its sequence analysis at the first segment seen. Short-lived times (probes, the
//! handshake) are kept as [`ShortTime`]s to keep the per-flow state small, and the FIN and RST
//! records, which most flows in the table do not have yet, out of line: allocated once, at a
//! flow's first FIN or RST, and freed with the flow.

use crate::decode::{IpHeader, TcpSegment, tcp_flags};
use crate::flow::{Direction, PerDir};
use crate::time::{ShortTime, Timestamp};

use super::rtt::{Leg, RttProbe, RttStats, seq_after};
use super::{COPY_WINDOW_US, DirCounters, IDENTIFICATION_REACH, RttSamples};

/// Below this gap after the highest segment, a segment that fills in below it counts as
/// reordered rather than retransmitted when no RTT is known yet (Wireshark uses the same 3 ms).
const DEFAULT_REORDER_WINDOW_US: u64 = 3_000;

/// A sequence jump credited to goodput at most this much beyond the segment's own payload:
/// larger jumps are capture drops or forged segments, not data in flight.
const MAX_HOLE_BYTES: u32 = 1 << 20;

/// The TCP part of a flow's measurements.
#[derive(Debug, Clone, Default)]
pub struct TcpMeasures {
    pub handshake: Handshake,
    pub dirs: PerDir<TcpDirection>,
    /// Indexed by [`Leg::index`].
    rtt: [RttStats; 2],
    /// The second largest external sample: a queue shows in several samples, one late echo
    /// (a server's think time behind an acknowledgement the capture missed) in one.
    external_second_max_us: u32,
    /// The highest acknowledgment number the client sent since the handshake completed (0
    /// before).
    client_ack: u32,
    /// The client's data the server asked for again ([`TcpMeasures::server_asks`]): from
    /// here, this many units of [`ASKED_UNIT_BYTES`] (0: none). In spare bytes of the
    /// struct's alignment.
    asked_from: u32,
    asked_units: u16,
    /// The first FIN and RST of each direction; `None` until the flow's first FIN or RST.
    closes: Option<Box<PerDir<Closes>>>,
    /// Some segment carried TCP timestamps; RTT then comes from them only.
    pub timestamps: bool,
}

/// The first FIN and the first RST one side sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Closes {
    fin: Option<CloseEvent>,
    rst: Option<CloseEvent>,
}

/// The three-way handshake as it passed the capture point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handshake {
    /// The last SYN before the SYN/ACK (the one most likely answered), the first SYN/ACK and
    /// the ACK that completed the handshake; each meaningful once its bit in `seen` is set.
    syn_at: ShortTime,
    synack_at: ShortTime,
    ack_at: ShortTime,
    /// Sequence number the client's ACK must acknowledge: the first SYN/ACK's ISN + 1.
    synack_next: u32,
    pub syns: u16,
    pub synacks: u16,
    /// Which of the three times were seen ([`SEEN_SYN`], [`SEEN_SYNACK`], [`SEEN_ACK`]): bits
    /// instead of three `Option`s keep the handshake in 24 bytes. [`OPENED_TLS`] and
    /// [`SYN_AMBIGUOUS`] too.
    seen: u8,
}

const SEEN_SYN: u8 = 1;
const SEEN_SYNACK: u8 = 2;
const SEEN_ACK: u8 = 4;
/// The client's first data after the handshake opened a TLS handshake (a record of type 22,
/// version 3.x): a ClientHello, which a server answers within a round trip.
const OPENED_TLS: u8 = 8;
/// The SYN/ACK came after the SYN was sent again and does not say which SYN it answers
/// (Karn): no round trip from the handshake.
const SYN_AMBIGUOUS: u8 = 16;

impl Handshake {
    pub fn completed(&self) -> bool {
        self.seen & SEEN_ACK != 0
    }

    /// Whether the client's first data after the handshake opened a TLS handshake (as far as
    /// the capture's snap length shows it).
    pub fn opened_tls(&self) -> bool {
        self.seen & OPENED_TLS != 0
    }

    /// SYN→SYN/ACK: the external leg; none when the SYN was sent again and the SYN/ACK's
    /// timestamps do not echo the last SYN's (it may answer an earlier one: behind a full
    /// queue, a SYN/ACK 1.5 s late came 14 ms after the third resend, and made a path of
    /// 300 ms look 14 ms long).
    pub fn external_us(&self) -> Option<u64> {
        if self.seen & SYN_AMBIGUOUS != 0 {
            return None;
        }
        Some(self.at(SEEN_SYN, self.syn_at)?.until_short(self.at(SEEN_SYNACK, self.synack_at)?))
    }

    /// SYN/ACK→ACK: the internal leg.
    pub fn internal_us(&self) -> Option<u64> {
        Some(self.at(SEEN_SYNACK, self.synack_at)?.until_short(self.at(SEEN_ACK, self.ack_at)?))
    }

    /// `time` when the step `bit` was seen.
    fn at(&self, bit: u8, time: ShortTime) -> Option<ShortTime> {
        (self.seen & bit != 0).then_some(time)
    }
}

/// One direction of a TCP flow.
#[derive(Debug, Clone, Default)]
pub struct TcpDirection {
    /// Payload bytes of all segments, retransmissions included.
    pub payload_bytes: u64,
    /// Sequence space advanced by this side's segments: goodput, each byte counted once.
    pub new_payload_bytes: u64,
    pub retransmissions: u32,
    /// Payload bytes sent again (saturating): of the segments counted in `retransmissions`,
    /// and the part below the highest sequence of a segment that also carries new data (a
    /// super-segment of a capture with GRO on that starts with data sent again). Segments
    /// out of order and a mirror's second copies are not in it.
    pub resent_payload_bytes: u32,
    pub out_of_order: u32,
    /// Segments that started beyond the highest sequence seen: data missing at the capture
    /// point, lost (or reordered) between the sender and here.
    pub seq_gaps: u32,
    /// Times the advertised window dropped to zero.
    pub zero_windows: u16,
    /// Payload of the latest data segment, and the largest one (an estimate of the MSS): a
    /// transfer cut mid-stream ends on a full segment, a finished response seldom does.
    pub last_payload_len: u16,
    pub max_payload_len: u16,
    /// The MSS this side announced in its SYN (what the other side may send in one segment);
    /// 0 when not seen.
    pub syn_mss: u16,
    /// Retransmissions since this side's sequence last advanced: data it keeps sending again
    /// because the other side never acknowledged it (a stalled connection).
    pub stuck_retransmissions: u16,
    pub rsts: u16,
    /// Packets from this side after its own first RST (a real RST ends the sender's part).
    pub packets_after_rst: u16,
    /// Meaningful once `seq_started` (a flag beside it rather than an `Option`: four bytes
    /// less per direction).
    seq: SeqTrack,
    seq_started: bool,
    probe: RttProbe,
    zero_window_now: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SeqTrack {
    highest_end: u32,
    last_seq: u32,
    highest_at: ShortTime,
    /// Where the latest hole (sequence space that had not passed here when later data did)
    /// ended, meaningful once `seq_gaps` counts one: every byte from it up to `highest_end`
    /// passed the capture point, below it some may not have.
    hole_end: u32,
}

/// A FIN or RST with what is needed to judge whether its sender was the real endpoint
/// (Weaver et al., NDSS'09): its TTL and IP ID against the same side's previous packet, its
/// sequence numbers, and how soon it followed that packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseEvent {
    /// Milliseconds after the flow's first packet.
    pub at_ms: u32,
    pub seq: u32,
    /// The acknowledgment number, meaningful when `has_ack`.
    pub ack: u32,
    pub ip_id: u32,
    /// IP ID and TTL of the previous packet from the same side, meaningful when `has_prev`.
    pub prev_ip_id: u32,
    /// Microseconds since the previous packet from the same side (saturating).
    pub since_prev_us: u32,
    /// Microseconds since the latest packet from the other side (saturating; `u32::MAX` when
    /// there was none): an RST sooner after the client's packet than the round trip to the
    /// server cannot come from the server.
    pub since_peer_us: u32,
    /// Payload bytes carried (saturating).
    pub payload_len: u16,
    pub ttl: u8,
    pub prev_ttl: u8,
    pub has_ack: bool,
    pub has_prev: bool,
}

impl TcpMeasures {
    /// Whether `seg` from `dir` repeats that side's latest segment that carried sequence
    /// space (data, a SYN or a FIN): the same sequence number and end.
    pub fn repeats_latest(&self, dir: Direction, seg: &TcpSegment<'_>) -> bool {
        let side = &self.dirs[dir];
        let seq_len = seq_len(seg);
        !seg.has(tcp_flags::RST)
            && side.seq_started
            && seq_len > 0
            && seg.seq == side.seq.last_seq
            && seg.seq.wrapping_add(seq_len) == side.seq.highest_end
    }

    /// Whether the sequence space `seg` from `dir` carries (none for a pure ACK or an RST)
    /// was all seen before.
    pub fn covers(&self, dir: Direction, seg: &TcpSegment<'_>) -> bool {
        let side = &self.dirs[dir];
        let seq_len = if seg.has(tcp_flags::RST) { 0 } else { seq_len(seg) };
        seq_len == 0
            || (side.seq_started && !seq_after(seg.seq.wrapping_add(seq_len), side.seq.highest_end))
    }

    /// Account one segment from `dir`. `counters` hold both directions' counters before this
    /// packet (last TTL, IP ID and time); `flow_start` is the flow's first packet time.
    /// Returns the RTT samples the segment completed.
    pub fn on_segment(
        &mut self,
        dir: Direction,
        ip: &IpHeader,
        seg: &TcpSegment<'_>,
        counters: &PerDir<DirCounters>,
        flow_start: Timestamp,
        now: Timestamp,
    ) -> RttSamples {
        let syn = seg.has(tcp_flags::SYN);
        let ack = seg.has(tcp_flags::ACK);
        let mut samples = RttSamples::default();
        if let Some((leg, rtt)) = self.handshake_step(dir, seg, now) {
            self.add_rtt(leg, rtt);
            samples.set(leg, rtt);
        }

        let close_event = || CloseEvent::new(ip, seg, dir, counters, flow_start, now);
        if seg.has(tcp_flags::RST) {
            let mine = &mut self.dirs[dir];
            mine.rsts = mine.rsts.saturating_add(1);
            let closes = &mut self.closes.get_or_insert_default()[dir];
            if closes.rst.is_none() {
                closes.rst = Some(close_event());
            }
            return samples;
        }
        if ack && self.handshake.completed() {
            match dir {
                Direction::Up => {
                    if self.client_ack == 0 || seq_after(seg.ack, self.client_ack) {
                        self.client_ack = seg.ack;
                    }
                }
                Direction::Down => self.server_asks(seg),
            }
        }
        let asked_again = dir == Direction::Up && self.asked_for(seg);
        let mine = &mut self.dirs[dir];
        if mine.rsts > 0 {
            mine.packets_after_rst = mine.packets_after_rst.saturating_add(1);
        }
        if seg.has(tcp_flags::FIN) && self.fin(dir).is_none() {
            self.closes.get_or_insert_default()[dir].fin = Some(close_event());
        }
        if dir == Direction::Up
            && seg.payload_len > 0
            && self.dirs.up.payload_bytes == 0
            && self.handshake.completed()
            && seg.payload.starts_with(&[0x16, 0x03])
        {
            self.handshake.seen |= OPENED_TLS;
        }
        let reorder_window_us = reorder_window_us(&self.rtt);
        let (mine, theirs) = self.dirs.this_and_other_mut(dir);
        if syn && let Some(mss) = seg.options.mss {
            mine.syn_mss = mss;
        }
        mine.payload_bytes += u64::from(seg.payload_len);
        if seg.payload_len > 0 {
            let len = u16::try_from(seg.payload_len).unwrap_or(u16::MAX);
            mine.last_payload_len = len;
            mine.max_payload_len = mine.max_payload_len.max(len);
        }
        let numbered_later = || numbered_later(ip, &counters[dir]);
        let retransmitted = mine.sequence(seg, now, reorder_window_us, asked_again, numbered_later);
        if !syn {
            mine.window(seg.window);
        }

        // RTT samples: a probe from the other side answered by this segment, then maybe a new
        // probe of our own. The leg is fixed by who sent the probe. SYNs never arm a probe:
        // the handshake already measures them.
        let data = !syn && (seg.payload_len > 0 || seg.has(tcp_flags::FIN));
        let mut echoed = None;
        if let Some((tsval, tsecr)) = seg.options.timestamps {
            self.timestamps = true;
            if ack {
                echoed = theirs.probe.echoed(tsecr, now);
            }
            mine.probe.sent_tsval(tsval, now, data, syn);
        } else if !self.timestamps {
            if ack {
                echoed = theirs.probe.acked(seg.ack, now);
            }
            match retransmitted {
                Some(true) => mine.probe.retransmission(),
                Some(false) if data => {
                    // A FIN takes a sequence number of its own: only an ACK past it answers.
                    let end = seg.seq.wrapping_add(seg.payload_len);
                    mine.probe.sent_data(end.wrapping_add(u32::from(seg.has(tcp_flags::FIN))), now)
                }
                _ => {}
            }
        }
        if let Some(rtt) = echoed {
            let leg = leg_of(dir.reverse());
            self.add_rtt(leg, rtt);
            samples.set(leg, rtt);
        }
        if retransmitted == Some(true) && asked_again {
            self.asked_came(seg);
        }
        samples
    }

    /// Follow the server's acknowledgments (`seg` carries one, after the handshake): an ACK
    /// with SACK blocks beyond its acknowledgment says the client's data from there to the
    /// highest block lacks a part at the server (RFC 2018; up to 4 MB of it counts), and a
    /// segment of the client's that starts in that range is data sent again, whatever it
    /// carries (over IPv6 from a client without timestamps, nothing else tells): the data
    /// the server holds there passed the capture a round trip before, and so did a mirror's
    /// copies of it. The same ACK again, or a mirror port's copy of it, asks for nothing
    /// more, and once the data at the start of the range came, the range starts after it
    /// ([`TcpMeasures::asked_came`]). (The server's own data, lost before the capture, shows
    /// as holes.)
    fn server_asks(&mut self, seg: &TcpSegment<'_>) {
        if self.asked_from == 0 || seq_after(seg.ack, self.asked_from) {
            self.asked_from = seg.ack;
            self.asked_units = 0;
        }
        if let Some(left) = seg.options.sack_left
            && seq_after(left, self.asked_from)
        {
            // Whole units below the block: a segment of the data held there is not asked for.
            let units =
                (left.wrapping_sub(self.asked_from) / ASKED_UNIT_BYTES).min(u32::from(u16::MAX));
            self.asked_units = self.asked_units.max(units as u16);
        }
    }

    /// The client's `seg`, asked for, was sent again: when it starts the range, the range
    /// starts after it, so that a mirror's copy of it is not asked for. (A later hole's may be
    /// taken twice: a mirror without IPv4 numbers shows a resend and its copy, when nothing
    /// came between them, as two.)
    fn asked_came(&mut self, seg: &TcpSegment<'_>) {
        if seg.seq != self.asked_from {
            return;
        }
        let end = self.asked_end();
        let came = seq_len(seg).min(end.wrapping_sub(self.asked_from));
        self.asked_from = self.asked_from.wrapping_add(came);
        self.asked_units = (end.wrapping_sub(self.asked_from) / ASKED_UNIT_BYTES) as u16;
    }

    /// The end of the range the server asked for.
    fn asked_end(&self) -> u32 {
        self.asked_from.wrapping_add(u32::from(self.asked_units) * ASKED_UNIT_BYTES)
    }

    /// Whether the client's `seg` starts in the range the server asked for
    /// ([`TcpMeasures::server_asks`]).
    fn asked_for(&self, seg: &TcpSegment<'_>) -> bool {
        seg.seq.wrapping_sub(self.asked_from) < self.asked_end().wrapping_sub(self.asked_from)
    }

    /// Advance the handshake; returns the RTT sample of a leg it completed.
    fn handshake_step(
        &mut self,
        dir: Direction,
        seg: &TcpSegment<'_>,
        now: Timestamp,
    ) -> Option<(Leg, u64)> {
        let hs = &mut self.handshake;
        let syn = seg.has(tcp_flags::SYN);
        let ack = seg.has(tcp_flags::ACK);
        match (syn, ack, dir) {
            // A SYN or SYN/ACK again within the copy window is a mirror's second copy that
            // carried nothing to tell it by (`FlowMeasures::repeats`): a sender repeats one
            // after a second.
            (true, false, Direction::Up)
                if hs.seen & SEEN_SYN != 0 && hs.syn_at.until(now) <= COPY_WINDOW_US => {}
            (true, true, Direction::Down)
                if hs.seen & SEEN_SYNACK != 0
                    && seg.seq.wrapping_add(1) == hs.synack_next
                    && hs.synack_at.until(now) <= COPY_WINDOW_US => {}
            (true, false, Direction::Up) => {
                hs.syns = hs.syns.saturating_add(1);
                if hs.seen & SEEN_SYNACK == 0 {
                    hs.syn_at = ShortTime::of(now);
                    hs.seen |= SEEN_SYN;
                }
            }
            (true, true, Direction::Down) => {
                hs.synacks = hs.synacks.saturating_add(1);
                if hs.seen & SEEN_SYNACK == 0 {
                    hs.synack_at = ShortTime::of(now);
                    hs.seen |= SEEN_SYNACK;
                    let echoes_last_syn = seg
                        .options
                        .timestamps
                        .is_some_and(|(_, tsecr)| self.dirs.up.probe.last_tsval() == Some(tsecr));
                    if hs.syns > 1 && !echoes_last_syn {
                        hs.seen |= SYN_AMBIGUOUS;
                    }
                    hs.synack_next = seg.seq.wrapping_add(1);
                    return hs.external_us().map(|rtt| (Leg::External, rtt));
                }
            }
            // The ACK that completes the handshake acknowledges the first SYN/ACK.
            (false, true, Direction::Up)
                if hs.seen & (SEEN_ACK | SEEN_SYNACK) == SEEN_SYNACK
                    && seg.ack == hs.synack_next =>
            {
                hs.ack_at = ShortTime::of(now);
                hs.seen |= SEEN_ACK;
                return hs.internal_us().map(|rtt| (Leg::Internal, rtt));
            }
            _ => {}
        }
        None
    }

    /// Loss events towards the client so far: holes in what the server sent, and its
    /// retransmissions.
    pub fn down_loss_events(&self) -> u32 {
        let d = &self.dirs.down;
        d.seq_gaps.saturating_add(d.retransmissions)
    }

    /// The connection ended on the wire: FIN from both sides, or an RST.
    pub fn closed(&self) -> bool {
        self.rst_seen() || Direction::BOTH.iter().all(|&dir| self.fin(dir).is_some())
    }

    /// The first FIN `dir`'s side sent.
    pub fn fin(&self, dir: Direction) -> Option<&CloseEvent> {
        self.closes.as_ref()?[dir].fin.as_ref()
    }

    /// The first RST `dir`'s side sent.
    pub fn rst(&self, dir: Direction) -> Option<&CloseEvent> {
        self.closes.as_ref()?[dir].rst.as_ref()
    }

    pub fn rst_seen(&self) -> bool {
        self.dirs.iter().any(|d| d.rsts > 0)
    }

    /// RTT statistics of one leg.
    pub fn rtt(&self, leg: Leg) -> &RttStats {
        &self.rtt[leg.index()]
    }

    /// Bytes of the server's sequence space (up to its highest segment seen) that the client
    /// never acknowledged: data lost on the way to the client, or still in flight.
    pub fn server_bytes_unacknowledged(&self) -> u32 {
        let server = &self.dirs.down;
        if !server.seq_started || self.client_ack == 0 {
            return 0;
        }
        let ahead = server.seq.highest_end.wrapping_sub(self.client_ack);
        if seq_after(server.seq.highest_end, self.client_ack) { ahead } else { 0 }
    }

    /// The second largest external sample: `None` until there are two.
    pub fn second_largest_external_us(&self) -> Option<u32> {
        (self.rtt[Leg::External.index()].samples() > 1).then_some(self.external_second_max_us)
    }

    fn add_rtt(&mut self, leg: Leg, rtt_us: u64) {
        let stats = &mut self.rtt[leg.index()];
        if leg == Leg::External
            && let Some(max) = stats.max_us()
        {
            let r = u32::try_from(rtt_us).unwrap_or(u32::MAX);
            self.external_second_max_us =
                if r >= max { max } else { self.external_second_max_us.max(r) };
        }
        stats.add(rtt_us);
    }
}

/// The smallest full round trip seen, or the default reordering window. Computed only for
/// segments that do not advance the sequence, the rare case.
/// The sequence space a segment takes: its payload, and one each for a SYN and a FIN.
fn seq_len(seg: &TcpSegment<'_>) -> u32 {
    seg.payload_len + u32::from(seg.has(tcp_flags::SYN)) + u32::from(seg.has(tcp_flags::FIN))
}

/// The unit of the range of the client's data the server asked for again
/// ([`TcpMeasures::server_asks`]): 64 bytes, 4 MB in a `u16`.
const ASKED_UNIT_BYTES: u32 = 64;

fn reorder_window_us(rtt: &[RttStats; 2]) -> impl Fn() -> u64 + '_ {
    move || match (rtt[0].min_us(), rtt[1].min_us()) {
        (Some(a), Some(b)) => u64::from(a) + u64::from(b),
        (Some(a), None) | (None, Some(a)) => u64::from(a),
        (None, None) => DEFAULT_REORDER_WINDOW_US,
    }
}

/// A numbered IPv4 packet whose identification is one of the next after every one its
/// direction carried before (`counters`: before this packet).
fn numbered_later(ip: &IpHeader, counters: &DirCounters) -> bool {
    let ahead = |top: u32| (ip.ip_id as u16).wrapping_sub(top as u16);
    !ip.v6
        && ip.ip_id != 0
        && counters.last_ip_id().is_some_and(|top| (1..IDENTIFICATION_REACH).contains(&ahead(top)))
}

fn leg_of(prober: Direction) -> Leg {
    match prober {
        Direction::Up => Leg::External,
        Direction::Down => Leg::Internal,
    }
}

impl TcpDirection {
    /// Microseconds from the last advance of this side's sequence to `now`, while it keeps
    /// retransmitting what was not acknowledged (none otherwise).
    pub fn stuck_for_us(&self, now: Timestamp) -> Option<u64> {
        (self.stuck_retransmissions > 0).then(|| self.since_advance_us(now)).flatten()
    }

    /// Microseconds from the last advance of this side's sequence to `now`.
    pub fn since_advance_us(&self, now: Timestamp) -> Option<u64> {
        self.seq_started.then(|| self.seq.highest_at.until(now))
    }

    /// Sequence analysis of one non-RST segment. Returns whether a segment carrying sequence
    /// space was a retransmission (`None` for pure ACKs). `asked_again`: the receiver asked
    /// for what `seg` carries again ([`TcpMeasures::server_asks`]).
    fn sequence(
        &mut self,
        seg: &TcpSegment<'_>,
        now: Timestamp,
        reorder_window_us: impl Fn() -> u64,
        asked_again: bool,
        numbered_later: impl Fn() -> bool,
    ) -> Option<bool> {
        let seq_len = seq_len(seg);
        if seq_len == 0 {
            return None;
        }
        let end = seg.seq.wrapping_add(seq_len);
        if !self.seq_started {
            self.seq_started = true;
            self.seq = SeqTrack {
                highest_end: end,
                last_seq: seg.seq,
                highest_at: ShortTime::of(now),
                hole_end: 0,
            };
            self.new_payload_bytes += u64::from(seg.payload_len);
            return Some(false);
        }
        let track = &mut self.seq;
        let retransmitted = if seq_after(end, track.highest_end) {
            if seq_after(seg.seq, track.highest_end) {
                self.seq_gaps = self.seq_gaps.saturating_add(1);
                track.hole_end = seg.seq;
            } else if seg.seq != track.highest_end {
                // Starts below the highest: the bytes up to it are sent again.
                let again = track.highest_end.wrapping_sub(seg.seq).min(seg.payload_len);
                self.resent_payload_bytes = self.resent_payload_bytes.saturating_add(again);
            }
            // Sequence space newly covered, holes included: their bytes reach the receiver
            // later as retransmissions, which are not counted again. (A FIN's number is no
            // data.)
            let advance = end
                .wrapping_sub(track.highest_end)
                .saturating_sub(u32::from(seg.has(tcp_flags::FIN)));
            self.new_payload_bytes +=
                u64::from(advance.min(seg.payload_len.saturating_add(MAX_HOLE_BYTES)));
            track.highest_end = end;
            track.highest_at = ShortTime::of(now);
            self.stuck_retransmissions = 0;
            false
        } else if seg.seq != track.last_seq
            && track.highest_at.until(now) < reorder_window_us()
            && !((self.seq_gaps == 0 || !seq_after(track.hole_end, seg.seq))
                && (asked_again
                    || match seg.options.timestamps {
                        Some((tsval, _)) => self.probe.newer_tsval(tsval),
                        None => numbered_later(),
                    }))
        {
            // Filled in below the highest segment sooner than a sender could have noticed a
            // loss: reordering on the way here. Not a segment sent after every one seen
            // before it from where no hole was left behind it (no hole ever opened, or it
            // starts at or past the latest hole's end): every byte from there up to the
            // highest passed here, and this is that data sent again (lost past the capture
            // point: a client's upload behind a dropper upstream, resent on duplicate ACKs
            // while its later data still flows), where a mirror's copy or a reordered segment
            // was sent earlier. (Below the latest hole's end it may be the hole's filler,
            // which `seq_gaps` counted: a capture with GRO on that showed one super-segment
            // ahead of the one before it hid every later resend of a 2-MB upload.)
            // Sent later: after the receiver asked for it again (a SACK block beyond its
            // acknowledgment), or with a TSval newer than any from this side (a mirror's
            // second copy carries its original's, a reordered segment an older one); without
            // timestamps (none sent, or cut off by a short snap length), an IPv4
            // identification among the next.
            self.out_of_order = self.out_of_order.saturating_add(1);
            false
        } else if seg.seq == track.last_seq
            && end == track.highest_end
            && track.highest_at.until(now) <= COPY_WINDOW_US
        {
            // The latest segment again, sooner than any sender repeats one (a tail loss probe
            // waits 2 ms at least, a timeout 200 ms): a second copy that carried nothing to
            // tell it by (`FlowMeasures::repeats`).
            false
        } else {
            self.retransmissions = self.retransmissions.saturating_add(1);
            self.resent_payload_bytes = self.resent_payload_bytes.saturating_add(seg.payload_len);
            self.stuck_retransmissions = self.stuck_retransmissions.saturating_add(1);
            true
        };
        track.last_seq = seg.seq;
        Some(retransmitted)
    }

    fn window(&mut self, window: u16) {
        if window == 0 {
            if !self.zero_window_now {
                self.zero_windows = self.zero_windows.saturating_add(1);
            }
            self.zero_window_now = true;
        } else {
            self.zero_window_now = false;
        }
    }
}

impl CloseEvent {
    fn new(
        ip: &IpHeader,
        seg: &TcpSegment<'_>,
        dir: Direction,
        counters: &PerDir<DirCounters>,
        flow_start: Timestamp,
        now: Timestamp,
    ) -> Self {
        let prev = &counters[dir];
        let peer = &counters[dir.reverse()];
        let peer_last_at = (peer.packets > 0).then_some(peer.last_at);
        let has_prev = prev.packets > 0;
        CloseEvent {
            at_ms: u32::try_from(now.since(flow_start) / 1000).unwrap_or(u32::MAX),
            seq: seg.seq,
            ack: seg.ack,
            ip_id: ip.ip_id,
            prev_ip_id: prev.last_ip_id().unwrap_or(0),
            since_prev_us: if has_prev {
                u32::try_from(now.since(prev.last_at)).unwrap_or(u32::MAX)
            } else {
                0
            },
            since_peer_us: peer_last_at
                .map_or(u32::MAX, |at| u32::try_from(now.since(at)).unwrap_or(u32::MAX)),
            payload_len: u16::try_from(seg.payload_len).unwrap_or(u16::MAX),
            ttl: ip.ttl,
            prev_ttl: prev.last_ttl().unwrap_or(0),
            has_ack: seg.has(tcp_flags::ACK),
            has_prev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{AddrWords, TcpOptions};
    use std::net::{IpAddr, Ipv4Addr};

    const C: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2));
    const S: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));

    struct Run {
        m: TcpMeasures,
        prev: PerDir<DirCounters>,
    }

    impl Run {
        fn new() -> Self {
            Run { m: TcpMeasures::default(), prev: Default::default() }
        }

        #[allow(clippy::too_many_arguments)]
        fn seg(
            &mut self,
            ms: u64,
            dir: Direction,
            flags: u8,
            seq: u32,
            ack: u32,
            len: u32,
            ts: Option<(u32, u32)>,
        ) {
            self.seg_ttl(ms, dir, (flags, seq, ack, len), ts, 64, 1);
        }

        /// After a handshake at 0–31 ms, the client's 10 segments of `len` bytes from
        /// sequence 1, one a millisecond from 100 ms, without timestamps.
        fn upload(len: u32) -> Self {
            let mut r = Run::new();
            r.seg(0, Up, SYN, 0, 0, 0, None);
            r.seg(30, Down, SYN | ACK, 0, 1, 0, None);
            r.seg(31, Up, ACK, 1, 1, 0, None);
            for i in 0..10 {
                r.seg(100 + u64::from(i), Up, ACK, 1 + i * len, 1, len, None);
            }
            r
        }

        /// A pure ACK of `ack`, with a SACK block from `sack_left` when given.
        fn ack(&mut self, ms: u64, dir: Direction, ack: u32, sack_left: Option<u32>) {
            self.segment(ms, dir, (ACK, 1, ack, 0), None, sack_left, (64, 1));
        }

        fn seg_ttl(
            &mut self,
            ms: u64,
            dir: Direction,
            tcp: (u8, u32, u32, u32),
            ts: Option<(u32, u32)>,
            ttl: u8,
            ip_id: u32,
        ) {
            self.segment(ms, dir, tcp, ts, None, (ttl, ip_id));
        }

        fn segment(
            &mut self,
            ms: u64,
            dir: Direction,
            tcp: (u8, u32, u32, u32),
            ts: Option<(u32, u32)>,
            sack_left: Option<u32>,
            (ttl, ip_id): (u8, u32),
        ) {
            let (flags, seq, ack, len) = tcp;
            let now = Timestamp::from_micros(ms * 1000);
            let (src, dst) = if dir == Direction::Up { (C, S) } else { (S, C) };
            let (src, dst) = (AddrWords::from_ip(src), AddrWords::from_ip(dst));
            let ip =
                IpHeader { src, dst, v6: false, ttl, ip_id, total_len: 40 + len, fragment: false };
            let seg = TcpSegment {
                src_port: 1,
                dst_port: 2,
                seq,
                ack,
                flags,
                window: 1000,
                options: TcpOptions { timestamps: ts, sack_left, ..Default::default() },
                payload_len: len,
                payload: &[],
            };
            let counters = self.prev.clone();
            self.m.on_segment(dir, &ip, &seg, &counters, Timestamp::default(), now);
            self.prev[dir].count(&ip, now);
        }
    }

    use crate::decode::tcp_flags::{ACK, FIN, RST, SYN};
    use Direction::{Down, Up};

    #[test]
    fn handshake_legs() {
        let mut r = Run::new();
        r.seg(0, Up, SYN, 1000, 0, 0, None);
        r.seg(1000, Up, SYN, 1000, 0, 0, Some((1_010, 0))); // retransmitted SYN
        // Its timestamps echo the resent SYN's: it answers that one.
        r.seg(1040, Down, SYN | ACK, 5000, 1001, 0, Some((7, 1_010)));
        r.seg(1042, Up, ACK, 1001, 5001, 0, None);
        let hs = r.m.handshake;
        assert_eq!((hs.syns, hs.synacks), (2, 1));
        assert_eq!(hs.external_us(), Some(40_000));
        assert_eq!(hs.internal_us(), Some(2_000));
        assert!(hs.completed());
        assert_eq!(r.m.rtt(Leg::External).samples(), 1);
        assert_eq!(r.m.rtt(Leg::Internal).min_us(), Some(2_000));
    }

    #[test]
    fn seq_ack_samples_without_timestamps() {
        let mut r = Run::new();
        r.seg(0, Up, SYN, 0, 0, 0, None);
        r.seg(50, Down, SYN | ACK, 0, 1, 0, None);
        r.seg(51, Up, ACK, 1, 1, 0, None);
        r.seg(60, Up, ACK, 1, 1, 100, None); // request
        r.seg(110, Down, ACK, 1, 101, 1000, None); // response acks the request: 50 ms external
        r.seg(112, Up, ACK, 101, 1001, 0, None); // client acks: 2 ms internal
        assert_eq!(r.m.rtt(Leg::External).samples(), 2);
        assert_eq!(r.m.rtt(Leg::External).last_us(), Some(50_000));
        assert_eq!(r.m.rtt(Leg::Internal).last_us(), Some(2_000));
    }

    /// The second largest external sample, the handshake's included: a queue shows in
    /// several, one late echo in one.
    #[test]
    fn the_two_largest_external_samples() {
        let mut r = Run::new();
        r.seg(0, Up, SYN, 0, 0, 0, None);
        r.seg(50, Down, SYN | ACK, 0, 1, 0, None);
        r.seg(51, Up, ACK, 1, 1, 0, None);
        assert_eq!(r.m.second_largest_external_us(), None);
        let exchange = |r: &mut Run, at: u64, seq: u32, rtt: u64| {
            r.seg(at, Up, ACK, seq, 1, 100, None);
            r.seg(at + rtt, Down, ACK, 1, seq + 100, 0, None);
        };
        exchange(&mut r, 100, 1, 40);
        exchange(&mut r, 200, 101, 350);
        exchange(&mut r, 600, 201, 45);
        assert_eq!(r.m.rtt(Leg::External).max_us(), Some(350_000));
        assert_eq!(r.m.second_largest_external_us(), Some(50_000));
        exchange(&mut r, 700, 301, 400);
        assert_eq!(r.m.second_largest_external_us(), Some(350_000));
        assert_eq!(r.m.rtt(Leg::Internal).samples(), 1);
    }

    /// The server's data past the client's highest acknowledgment: a hole lost before the
    /// client stays unacknowledged until the data comes; an RST's acknowledgment counts not.
    #[test]
    fn server_data_the_client_never_acknowledged() {
        let mut r = Run::new();
        r.seg(0, Up, SYN, 0, 0, 0, None);
        r.seg(50, Down, SYN | ACK, 0, 1, 0, None);
        assert_eq!(r.m.server_bytes_unacknowledged(), 0);
        r.seg(51, Up, ACK, 1, 1, 0, None);
        r.seg(100, Down, ACK, 1, 1, 1000, None);
        r.seg(101, Down, ACK, 2001, 1, 500, None); // 1001..2001 lost on the way
        r.seg(102, Up, ACK, 1, 1001, 0, None);
        assert_eq!(r.m.server_bytes_unacknowledged(), 1500);
        r.seg(103, Up, ACK, 1, 900, 0, None); // an older acknowledgment, reordered
        r.seg(104, Up, RST | ACK, 1, 2501, 0, None);
        assert_eq!(r.m.server_bytes_unacknowledged(), 1500);
        r.seg(300, Down, ACK, 1001, 1, 1000, None);
        r.seg(301, Up, ACK, 1, 2501, 0, None);
        assert_eq!(r.m.server_bytes_unacknowledged(), 0);
    }

    /// A FIN's sequence number is answered only by an ACK past it: the server's data in
    /// flight, which acknowledges what came before the FIN, is no answer (it made a 16-ms
    /// "round trip" of a 150-ms path on a capture without TCP timestamps).
    #[test]
    fn a_fin_is_answered_past_its_own_sequence_number() {
        let mut r = Run::new();
        r.seg(0, Up, SYN, 0, 0, 0, None);
        r.seg(150, Down, SYN | ACK, 0, 1, 0, None);
        r.seg(151, Up, ACK, 1, 1, 0, None);
        r.seg(200, Up, FIN | ACK, 1, 1, 0, None);
        r.seg(216, Down, ACK, 1, 1, 1000, None); // in flight: acknowledges up to the FIN
        assert_eq!(r.m.rtt(Leg::External).samples(), 1, "the handshake's only");
        r.seg(350, Down, ACK, 1001, 2, 0, None); // the FIN acknowledged: 150 ms
        assert_eq!(r.m.rtt(Leg::External).samples(), 2);
        assert_eq!(r.m.rtt(Leg::External).last_us(), Some(150_000));
    }

    #[test]
    fn karn_drops_ambiguous_samples() {
        let mut r = Run::new();
        r.seg(0, Down, ACK, 1, 1, 100, None);
        r.seg(10, Down, ACK, 101, 1, 100, None);
        r.seg(500, Down, ACK, 101, 1, 100, None); // retransmission
        r.seg(520, Up, ACK, 1, 201, 0, None);
        assert_eq!(r.m.rtt(Leg::Internal).samples(), 0);
        assert_eq!(r.m.dirs.down.retransmissions, 1);
    }

    #[test]
    fn timestamp_samples_per_leg() {
        let mut r = Run::new();
        r.seg(0, Up, SYN, 0, 0, 0, Some((10, 0)));
        r.seg(30, Down, SYN | ACK, 0, 1, 0, Some((500, 10)));
        r.seg(31, Up, ACK, 1, 1, 0, Some((10, 500)));
        r.seg(40, Up, ACK, 1, 1, 50, Some((11, 500))); // new TSval with data: probe
        r.seg(75, Down, ACK, 1, 51, 1000, Some((501, 11))); // echo 35 ms later
        r.seg(80, Up, ACK, 51, 1001, 0, Some((12, 501))); // echo of the server's probe: 5 ms
        assert!(r.m.timestamps);
        let ext = r.m.rtt(Leg::External);
        assert_eq!((ext.samples(), ext.last_us()), (2, Some(35_000)));
        let int = r.m.rtt(Leg::Internal);
        assert_eq!((int.samples(), int.last_us()), (2, Some(5_000)));
    }

    /// Karn's rule on the handshake: the SYN sent again, then a SYN/ACK 14 ms after the last
    /// SYN. Without timestamps it may answer either: no round trip. Its timestamps say which:
    /// echoing the last SYN's TSval, 14 ms; echoing the first's, none. One SYN: timed.
    #[test]
    fn a_synack_after_a_syn_sent_again_is_timed_only_when_it_says_which() {
        let external = |syns: &[(u64, Option<(u32, u32)>)], synack: (u64, Option<(u32, u32)>)| {
            let mut r = Run::new();
            for &(at, ts) in syns {
                r.seg(at, Up, SYN, 0, 0, 0, ts);
            }
            r.seg(synack.0, Down, SYN | ACK, 0, 1, 0, synack.1);
            r.m.handshake.external_us()
        };
        let resent = [(0, None), (1_000, None)];
        assert_eq!(external(&resent, (1_014, None)), None);
        let resent = [(0, Some((10, 0))), (1_000, Some((1_010, 0)))];
        assert_eq!(external(&resent, (1_014, Some((500, 1_010)))), Some(14_000));
        assert_eq!(external(&resent, (1_014, Some((500, 10)))), None);
        assert_eq!(external(&[(0, None)], (40, None)), Some(40_000));
    }

    /// A client's upload whose segment a dropper past the capture point took: the capture saw
    /// the segment, then the client sends it again on duplicate ACKs while its later data still
    /// flows, sooner than the reordering window, with a TSval newer than any before. No hole
    /// ever opened, so it is data sent again, not reordering; without timestamps, an IPv4
    /// identification newer than any before tells so. A mirror's second copy of a segment
    /// (its original's TSval), or a segment with nothing to tell by, is not taken for one;
    /// once a hole opens, a filler that soon is reordering again.
    #[test]
    fn data_seen_here_and_sent_again_is_no_reordering() {
        let mut r = Run::new();
        for i in 0..10 {
            r.seg(i, Up, ACK, 1 + i as u32 * 100, 1, 100, Some((100 + i as u32, 7)));
        }
        r.seg(10, Up, ACK, 201, 1, 100, Some((110, 8))); // 201..301 again, newer TSval
        r.seg(10, Up, ACK, 801, 1, 100, Some((108, 7))); // a copy of 801..901, interleaved
        r.seg(11, Up, ACK, 301, 1, 100, None); // 301..401 again, nothing to tell by
        // 401..501 again without timestamps (cut off by a short snap length), its IPv4
        // identification the next one.
        r.seg_ttl(11, Up, (ACK, 401, 1, 100), None, 64, 2);
        r.seg(11, Up, ACK, 1001, 1, 100, Some((111, 8)));
        let d = &r.m.dirs.up;
        assert_eq!((d.seq_gaps, d.out_of_order, d.retransmissions), (0, 2, 2));
        r.seg(12, Up, ACK, 1201, 1, 100, Some((112, 8))); // a hole: 1101..1201 not seen here
        r.seg(13, Up, ACK, 1101, 1, 100, Some((113, 8))); // filled 1 ms later: reordering
        let d = &r.m.dirs.up;
        assert_eq!((d.seq_gaps, d.out_of_order, d.retransmissions), (1, 3, 2));
        assert_eq!(d.resent_payload_bytes, 200, "the two resends, not the copies or fillers");
    }

    /// One hole leaves the rest of the flow judged: a capture with GRO on shows a client's
    /// super-segment ahead of the one before it (filled 23 µs later with an older TSval:
    /// reordering), and later data that a dropper past the capture point took is sent again,
    /// above that hole, with a newer TSval: a resend (in a lab upload of 2 MB, 42 of them were
    /// taken for reordering and the dropper's 5 % went unseen). A newer filler of the hole
    /// itself is what `seq_gaps` counted, and stays reordering.
    #[test]
    fn a_hole_filled_by_reordering_leaves_later_resends_counted() {
        let mut r = Run::new();
        for i in 0..4 {
            r.seg(i, Up, ACK, 1 + i as u32 * 100, 1, 100, Some((100 + i as u32, 7)));
        }
        r.seg(4, Up, ACK, 501, 1, 100, Some((104, 7))); // 401..501 not seen yet: a hole
        r.seg(4, Up, ACK, 401, 1, 100, Some((104, 7))); // filled, same TSval: reordering
        for i in 6..10 {
            r.seg(i, Up, ACK, 1 + i as u32 * 100, 1, 100, Some((100 + i as u32, 7)));
        }
        r.seg(10, Up, ACK, 701, 1, 100, Some((110, 8))); // 701..801 again, newer TSval
        let d = &r.m.dirs.up;
        assert_eq!((d.seq_gaps, d.out_of_order, d.retransmissions), (1, 1, 1));
        r.seg(11, Up, ACK, 1201, 1, 100, Some((111, 8))); // 1001..1201 not seen: a hole
        r.seg(12, Up, ACK, 1001, 1, 100, Some((112, 8))); // its filler, newer: a gap's
        r.seg(13, Up, ACK, 1201, 1, 100, Some((113, 8))); // above it, newer: sent again
        let d = &r.m.dirs.up;
        assert_eq!((d.seq_gaps, d.out_of_order, d.retransmissions), (2, 2, 2));
        assert_eq!(d.resent_payload_bytes, 200);
    }

    /// The same upload with nothing in the client's segments to tell a resend by (no
    /// timestamps, no IPv4 identification: IPv6 from a sender without timestamps, as Windows
    /// by default): once the server's ACK at 201 carries a SACK block beyond it, 201 on is
    /// missing there, and the client's segment from 201 is data sent again; after a partial
    /// ACK to 401 with a SACK block beyond, the segment from 401 too. A repeated ACK without a
    /// SACK block (a mirror's copy), a D-SACK below the acknowledgment, a segment elsewhere
    /// than where the data is missing, or one from there again once it came (a mirror's copy
    /// of the resend), is reordering as before. (ACKs count after the handshake, as those of
    /// `server_bytes_unacknowledged`.)
    #[test]
    fn data_the_receiver_asks_for_again_is_no_reordering() {
        let mut r = Run::upload(100);
        r.seg(109, Up, ACK, 601, 1, 100, None); // before any ACK asks: reordering
        r.ack(110, Down, 201, None);
        r.ack(111, Down, 201, None); // the same ACK again, no SACK block
        r.seg(111, Up, ACK, 201, 1, 100, None); // not asked for: reordering
        r.ack(112, Down, 201, Some(301)); // SACK 301..: 201 on is missing there
        r.seg(112, Up, ACK, 101, 1, 100, None); // below it: reordering
        r.seg(112, Up, ACK, 301, 1, 100, None); // what the receiver holds: reordering
        let d = &r.m.dirs.up;
        assert_eq!((d.out_of_order, d.retransmissions), (4, 0));
        r.seg(113, Up, ACK, 201, 1, 100, None); // asked for: sent again
        r.seg(113, Up, ACK, 1001, 1, 100, None);
        r.ack(113, Down, 201, Some(301)); // a mirror's copy of the ACK that asked
        r.seg(113, Up, ACK, 201, 1, 100, None); // a mirror's copy of the resend
        let d = &r.m.dirs.up;
        assert_eq!((d.out_of_order, d.retransmissions), (5, 1), "the resend, once");
        r.ack(114, Down, 401, Some(501)); // a partial ACK: 401 on is missing now
        r.seg(115, Up, ACK, 401, 1, 100, None);
        r.ack(120, Down, 1101, Some(201)); // all acknowledged; a D-SACK below
        r.seg(121, Up, ACK, 1101, 1, 100, None);
        r.seg(121, Up, ACK, 801, 1, 100, None);
        let d = &r.m.dirs.up;
        assert_eq!((d.seq_gaps, d.out_of_order, d.retransmissions), (0, 6, 2));
    }

    /// Several holes at once: the SACK blocks of the server's later ACKs at the same number
    /// reach higher, and a resend of a later hole, between blocks, is asked for too; data the
    /// server holds beyond the highest block's start is not.
    #[test]
    fn later_holes_between_sack_blocks_are_asked_for() {
        let mut r = Run::upload(1000);
        r.ack(110, Down, 1001, Some(2001)); // 1001..2001 missing
        r.ack(111, Down, 1001, Some(4001)); // and 3001..4001: blocks from 2001 and 4001
        r.seg(112, Up, ACK, 3001, 1, 1000, None); // the later hole, marked lost first
        r.seg(112, Up, ACK, 1001, 1, 1000, None); // the first
        r.seg(113, Up, ACK, 5001, 1, 1000, None); // held by the server: reordering
        let d = &r.m.dirs.up;
        assert_eq!((d.seq_gaps, d.out_of_order, d.retransmissions), (0, 1, 2));
    }

    #[test]
    fn retransmission_reordering_and_gaps() {
        let mut r = Run::new();
        r.seg(0, Down, ACK, 1000, 1, 100, None);
        r.seg(1, Down, ACK, 1200, 1, 100, None); // gap: 1100..1200 missing here
        r.seg(2, Down, ACK, 1100, 1, 100, None); // fills in 1 ms later: reordering
        r.seg(300, Down, ACK, 1200, 1, 100, None); // 298 ms later: retransmission
        let d = &r.m.dirs.down;
        assert_eq!((d.seq_gaps, d.out_of_order, d.retransmissions), (1, 1, 1));
        assert_eq!(d.payload_bytes, 400);
        assert_eq!(d.new_payload_bytes, 300);
        assert_eq!(d.resent_payload_bytes, 100);
    }

    /// A capture with GRO on holds super-segments: a resend of several segments at once
    /// counts all its bytes, and one that starts with data sent again and goes on with new
    /// data counts the part below the highest sequence.
    #[test]
    fn data_sent_again_is_counted_in_bytes_whatever_the_segments() {
        let mut r = Run::new();
        for i in 0..6 {
            r.seg(i, Up, ACK, 1 + i as u32 * 1000, 1, 1000, None);
        }
        r.seg(300, Up, ACK, 2001, 1, 3000, None); // 2001..5001 again, one super-segment
        r.seg(600, Up, ACK, 5001, 1, 3000, None); // 5001..6001 again, then 6001..8001 new
        let d = &r.m.dirs.up;
        assert_eq!((d.retransmissions, d.seq_gaps), (1, 0));
        assert_eq!(d.resent_payload_bytes, 4000);
        assert_eq!(d.new_payload_bytes, 8000);
    }

    #[test]
    fn a_fin_is_no_new_data() {
        let mut r = Run::new();
        r.seg(0, Up, ACK, 1, 1, 517, None);
        r.seg(1, Up, ACK | FIN, 518, 1, 0, None);
        r.seg(2, Down, ACK, 1, 518, 100, None);
        r.seg(3, Down, ACK | FIN, 101, 518, 20, None);
        let (up, down) = (&r.m.dirs.up, &r.m.dirs.down);
        assert_eq!((up.payload_bytes, up.new_payload_bytes), (517, 517));
        assert_eq!((down.payload_bytes, down.new_payload_bytes), (120, 120));
    }

    #[test]
    fn sequence_wraps() {
        let mut r = Run::new();
        r.seg(0, Down, ACK, u32::MAX - 49, 1, 100, None);
        r.seg(1, Down, ACK, 50, 1, 100, None);
        let d = &r.m.dirs.down;
        assert_eq!((d.seq_gaps, d.retransmissions, d.new_payload_bytes), (0, 0, 200));
    }

    #[test]
    fn rst_forensics() {
        let mut r = Run::new();
        r.seg_ttl(0, Down, (ACK, 1, 1, 100), None, 52, 7000);
        r.seg_ttl(38, Up, (ACK, 1, 101, 0), None, 64, 1);
        r.seg_ttl(40, Down, (RST | ACK, 101, 1, 0), None, 61, 0); // TTL jumps, IP ID resets
        r.seg_ttl(41, Down, (ACK, 101, 1, 100), None, 52, 7001); // the real server goes on
        let d = &r.m.dirs.down;
        let rst = *r.m.rst(Down).unwrap();
        assert_eq!(
            (rst.ttl, rst.prev_ttl, rst.ip_id, rst.prev_ip_id, rst.has_prev),
            (61, 52, 0, 7000, true)
        );
        assert_eq!(
            (rst.seq, rst.ack, rst.has_ack, rst.since_prev_us, rst.at_ms),
            (101, 1, true, 40_000, 40)
        );
        assert_eq!((d.rsts, d.packets_after_rst), (1, 1));
        assert_eq!(rst.since_peer_us, 2_000, "2 ms after the client's packet");
    }

    #[test]
    fn fin_and_zero_window() {
        let mut r = Run::new();
        r.seg(0, Up, ACK | FIN, 10, 1, 0, None);
        let fin = r.m.fin(Up).unwrap();
        assert!(r.m.fin(Down).is_none() && r.m.rst(Up).is_none());
        assert_eq!((fin.seq, fin.has_prev), (10, false));
        let mut d = TcpDirection::default();
        d.window(0);
        d.window(0);
        d.window(10);
        d.window(0);
        assert_eq!(d.zero_windows, 2);
    }
}
