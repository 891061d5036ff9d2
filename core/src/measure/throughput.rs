//! Throughput in fixed time bins per direction, on packet time: the samples that Wehe-style
//! comparisons (KS test, area test) work on. A ring of [`BIN_COUNT`] bins keeps the most recent
//! ones; bins too old for the ring are counted as late, never written out of place.

use crate::flow::{Direction, PerDir};
use crate::time::Timestamp;

/// Bins kept per flow: with the default 500 ms bins, 64 s, a little more than the default
/// 60 s evaluation window.
pub const BIN_COUNT: usize = 128;

/// Bytes per bin per direction for one flow.
#[derive(Debug, Clone)]
pub struct ThroughputBins {
    bin_us: u64,
    /// Absolute index (packet time / bin width) of the first and of the latest bin.
    first_bin: u64,
    last_bin: u64,
    /// Packet time at which the latest bin starts (`last_bin × bin_us`): a packet that falls
    /// in it, as most do, is added without a division.
    last_bin_start_us: u64,
    bytes: [PerDir<u32>; BIN_COUNT],
    started: bool,
    /// Bytes that arrived for bins already dropped from the ring (time went backwards).
    pub late_bytes: u64,
    /// Largest bin per direction among the bins that left the ring.
    peak_bytes: PerDir<u32>,
}

/// The bins of a flow, oldest first, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinSeries {
    pub bin_us: u64,
    /// Start time of the first bin.
    pub start: Timestamp,
    pub bytes: PerDir<Vec<u32>>,
    /// Largest bin per direction over the whole flow, including bins no longer in `bytes`.
    pub peak_bytes: PerDir<u32>,
}

impl ThroughputBins {
    pub fn new(bin_us: u64) -> Self {
        ThroughputBins {
            bin_us: bin_us.max(1),
            first_bin: 0,
            last_bin: 0,
            last_bin_start_us: 0,
            bytes: [PerDir::default(); BIN_COUNT],
            started: false,
            late_bytes: 0,
            peak_bytes: PerDir::default(),
        }
    }

    pub fn bin_us(&self) -> u64 {
        self.bin_us
    }

    pub fn add(&mut self, now: Timestamp, dir: Direction, bytes: u32) {
        let now_us = now.micros();
        if self.started
            && now_us.checked_sub(self.last_bin_start_us).is_some_and(|us| us < self.bin_us)
        {
            // In the latest bin, which the ring always holds.
            let slot = &mut self.bytes[(self.last_bin % BIN_COUNT as u64) as usize][dir];
            *slot = slot.saturating_add(bytes);
            return;
        }
        let bin = now_us / self.bin_us;
        if !self.started {
            self.started = true;
            self.first_bin = bin;
            self.last_bin = bin;
            self.last_bin_start_us = bin * self.bin_us;
        }
        if bin > self.last_bin {
            // Clear the slots the ring moves over, at most once around.
            let steps = (bin - self.last_bin).min(BIN_COUNT as u64);
            for k in 1..=steps {
                let slot = &mut self.bytes[((self.last_bin + k) % BIN_COUNT as u64) as usize];
                for dir in Direction::BOTH {
                    self.peak_bytes[dir] = self.peak_bytes[dir].max(slot[dir]);
                }
                *slot = PerDir::default();
            }
            self.last_bin = bin;
            self.last_bin_start_us = bin * self.bin_us;
        }
        if self.last_bin - bin >= BIN_COUNT as u64 || bin < self.first_bin {
            self.late_bytes += u64::from(bytes);
            return;
        }
        let slot = &mut self.bytes[(bin % BIN_COUNT as u64) as usize][dir];
        *slot = slot.saturating_add(bytes);
    }

    pub fn series(&self) -> Option<BinSeries> {
        if !self.started {
            return None;
        }
        let oldest = self.first_bin.max((self.last_bin + 1).saturating_sub(BIN_COUNT as u64));
        let mut bytes = PerDir::<Vec<u32>>::default();
        let mut peak_bytes = self.peak_bytes;
        for bin in oldest..=self.last_bin {
            let slot = self.bytes[(bin % BIN_COUNT as u64) as usize];
            for dir in Direction::BOTH {
                bytes[dir].push(slot[dir]);
                peak_bytes[dir] = peak_bytes[dir].max(slot[dir]);
            }
        }
        Some(BinSeries {
            bin_us: self.bin_us,
            start: Timestamp::from_micros(oldest * self.bin_us),
            bytes,
            peak_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    #[test]
    fn bins_by_packet_time() {
        let mut b = ThroughputBins::new(500_000);
        b.add(ms(1_000), Direction::Down, 1000);
        b.add(ms(1_400), Direction::Down, 500);
        b.add(ms(1_600), Direction::Up, 40);
        b.add(ms(3_100), Direction::Down, 7);
        let s = b.series().unwrap();
        assert_eq!(s.start, ms(1_000));
        assert_eq!(s.bytes.down, [1500, 0, 0, 0, 7]);
        assert_eq!(s.bytes.up, [0, 40, 0, 0, 0]);
        assert_eq!(s.peak_bytes, PerDir::new(40, 1500));
    }

    #[test]
    fn ring_keeps_the_latest_bins_and_the_peak() {
        let mut b = ThroughputBins::new(1_000_000);
        b.add(ms(0), Direction::Down, 9999);
        for sec in 1..300u64 {
            b.add(ms(sec * 1000), Direction::Down, 10);
        }
        let s = b.series().unwrap();
        assert_eq!(s.bytes.down.len(), BIN_COUNT);
        assert_eq!(s.start, ms((300 - BIN_COUNT as u64) * 1000));
        assert_eq!(s.peak_bytes.down, 9999);
        // Time going far backwards is counted, not written into a wrong slot.
        b.add(ms(5_000), Direction::Down, 77);
        assert_eq!(b.late_bytes, 77);
        // A jump of hours clears the ring in bounded work.
        b.add(ms(10_000_000), Direction::Down, 1);
        assert_eq!(b.series().unwrap().bytes.down.iter().sum::<u32>(), 1);
    }
}
