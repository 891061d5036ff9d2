//! QUIC ClientHellos that continue in a later Initial (Chrome's, with a post-quantum key share,
//! fill two): the CRYPTO stream read so far waits here for the next Initial of its flow.
//!
//! Bounded and kept out of the flow table: [`PENDING_SLOTS`] streams of fixed size (about
//! 4 KiB each, allocated once), replaced oldest first; a stream older than
//! [`PENDING_MAX_AGE_US`] of packet time is not continued (a client sends its Initials back
//! to back, or retransmits them within a few seconds).

use crate::decode::quic::CryptoStream;
use crate::flow::Endpoint;
use crate::time::Timestamp;

/// Flows whose ClientHello waits for its next Initial.
pub const PENDING_SLOTS: usize = 8;
/// How long a partial ClientHello waits, in packet time.
pub const PENDING_MAX_AGE_US: u64 = 10_000_000;

/// A flow by its client and server endpoints.
pub type FlowEnds = (Endpoint, Endpoint);

#[derive(Debug)]
struct Pending {
    flow: FlowEnds,
    since: Timestamp,
    stream: CryptoStream,
}

/// The partial ClientHellos.
#[derive(Debug)]
pub struct PendingInitials {
    slots: Vec<Pending>,
    /// The slot the next new stream replaces once all are taken.
    next: usize,
}

impl Default for PendingInitials {
    fn default() -> Self {
        PendingInitials { slots: Vec::with_capacity(PENDING_SLOTS), next: 0 }
    }
}

impl PendingInitials {
    /// The stream `flow`'s earlier Initials left, if it is recent.
    pub fn find(&mut self, flow: FlowEnds, now: Timestamp) -> Option<&mut CryptoStream> {
        self.slots
            .iter_mut()
            .find(|p| p.flow == flow && now.since(p.since) <= PENDING_MAX_AGE_US)
            .map(|p| &mut p.stream)
    }

    /// Keep `stream` for `flow`'s next Initial.
    pub fn keep(&mut self, flow: FlowEnds, stream: &CryptoStream, now: Timestamp) {
        let pending = Pending { flow, since: now, stream: stream.clone() };
        if self.slots.len() < PENDING_SLOTS {
            self.slots.push(pending);
        } else {
            self.slots[self.next] = pending;
            self.next = (self.next + 1) % PENDING_SLOTS;
        }
    }

    /// `flow`'s ClientHello is done with (read, or complete without a name).
    pub fn forget(&mut self, flow: FlowEnds) {
        // The vector keeps its capacity: no slot is allocated again.
        if let Some(i) = self.slots.iter().position(|p| p.flow == flow) {
            self.slots.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(port: u16) -> FlowEnds {
        let ep = |s: &str, port| Endpoint::new(s.parse().unwrap(), port);
        (ep("192.168.1.2", port), ep("203.0.113.9", 443))
    }

    #[test]
    fn bounded_oldest_replaced_and_aged() {
        let t0 = Timestamp::from_micros(1_000_000);
        let mut p = PendingInitials::default();
        let stream = CryptoStream::default();
        for port in 0..PENDING_SLOTS as u16 + 3 {
            p.keep(flow(port), &stream, t0);
        }
        assert_eq!(p.slots.len(), PENDING_SLOTS);
        assert_eq!(p.slots.capacity(), PENDING_SLOTS);
        assert!(p.find(flow(0), t0).is_none(), "the oldest made room");
        assert!(p.find(flow(3), t0).is_some());
        assert!(p.find(flow(3), t0.add_micros(PENDING_MAX_AGE_US + 1)).is_none(), "too old");
        p.forget(flow(3));
        assert!(p.find(flow(3), t0).is_none());
        p.keep(flow(100), &stream, t0);
        assert_eq!(p.slots.capacity(), PENDING_SLOTS, "no slot allocated again");
    }
}
