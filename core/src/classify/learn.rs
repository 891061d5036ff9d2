//! What the classifier learns from the wire, in bounded tables: server addresses from DNS
//! answers, call endpoints from flows whose payload identified a service (and the addresses
//! their STUN messages carry), ICE username fragments and client sockets of a service's calls.
//!
//! Each table holds at most its capacity; the oldest entry makes room for a new one, and
//! entries older than the table's maximum age (in packet time) are ignored.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use foldhash::fast::RandomState;

use crate::time::Timestamp;

/// A bounded map with first-in-first-out replacement and aging on packet time.
#[derive(Debug, Clone)]
pub struct LearnedMap<K, V> {
    map: HashMap<K, (V, Timestamp), RandomState>,
    order: VecDeque<K>,
    capacity: usize,
    max_age_us: u64,
    /// Entries replaced to make room.
    pub dropped: u64,
}

impl<K: Copy + Eq + Hash, V: Copy> LearnedMap<K, V> {
    pub fn new(capacity: usize, max_age_us: u64) -> Self {
        let capacity = capacity.max(1);
        LearnedMap {
            map: HashMap::with_capacity_and_hasher(capacity, RandomState::default()),
            order: VecDeque::with_capacity(capacity),
            capacity,
            max_age_us,
            dropped: 0,
        }
    }

    pub fn insert(&mut self, key: K, value: V, now: Timestamp) {
        if let Some(slot) = self.map.get_mut(&key) {
            *slot = (value, now);
            return;
        }
        if self.map.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.map.remove(&oldest);
            self.dropped += 1;
        }
        self.map.insert(key, (value, now));
        self.order.push_back(key);
    }

    /// The value learned for `key`, unless it is older than the maximum age at `now`.
    pub fn get(&self, key: &K, now: Timestamp) -> Option<V> {
        let (value, learned) = self.map.get(key)?;
        (now.since(*learned) <= self.max_age_us).then_some(*value)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// An ICE username fragment (RFC 8445 §5.3: 4 to 256 characters), kept to its first
/// [`Ufrag::MAX_LEN`] bytes: a fixed-size key, whatever the packet claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ufrag {
    len: u8,
    bytes: [u8; Ufrag::MAX_LEN],
}

impl Ufrag {
    pub const MAX_LEN: usize = 32;
    /// Shorter fragments are not unique enough to link two flows.
    pub const MIN_LEN: usize = 4;

    /// The two fragments of a STUN USERNAME `remote:local` (RFC 8445 §7.2.2), each if it is
    /// long enough.
    pub fn pair(username: &[u8]) -> [Option<Ufrag>; 2] {
        let mut parts = username.splitn(2, |&b| b == b':');
        let first = parts.next().and_then(Ufrag::new);
        let second = parts.next().and_then(Ufrag::new);
        [first, second]
    }

    fn new(part: &[u8]) -> Option<Ufrag> {
        if part.len() < Self::MIN_LEN {
            return None;
        }
        let n = part.len().min(Self::MAX_LEN);
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..n].copy_from_slice(&part[..n]);
        Some(Ufrag { len: n as u8, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ufrag_pairs() {
        let [a, b] = Ufrag::pair(b"R2d2:C3poC3po");
        assert_eq!(a, Ufrag::new(b"R2d2"));
        assert_eq!(b, Ufrag::new(b"C3poC3po"));
        assert_ne!(a, b);
        assert_eq!(Ufrag::pair(b"abc:defg"), [None, Ufrag::new(b"defg")]);
        assert_eq!(Ufrag::pair(b"abcdef"), [Ufrag::new(b"abcdef"), None]);
        assert_eq!(Ufrag::pair(b""), [None, None]);
        // Longer than the key: its first 32 bytes.
        let long = [b'x'; 300];
        assert_eq!(Ufrag::pair(&long)[0].unwrap().len, 32);
    }

    #[test]
    fn bounded_and_aging() {
        let mut m = LearnedMap::new(2, 100);
        let t = Timestamp::from_micros;
        m.insert(1, 'a', t(0));
        m.insert(2, 'b', t(0));
        m.insert(1, 'A', t(10)); // update, no growth
        assert_eq!((m.len(), m.get(&1, t(10))), (2, Some('A')));
        m.insert(3, 'c', t(20)); // evicts the oldest key (1)
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&1, t(20)), None);
        assert_eq!(m.get(&2, t(20)), Some('b'));
        assert_eq!(m.dropped, 1);
        assert_eq!(m.get(&3, t(121)), None, "aged out");
        for k in 10..10_000 {
            m.insert(k, 'x', t(30));
        }
        assert_eq!(m.len(), 2);
    }
}
