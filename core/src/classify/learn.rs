//! What the classifier learns from the wire, in bounded tables: server addresses from DNS
//! answers, and call endpoints from flows whose payload identified a service.
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

#[cfg(test)]
mod tests {
    use super::*;

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
