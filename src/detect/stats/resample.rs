//! Wehe's resampling guard: whether a decision survives random subsets of its samples.

/// Wehe's jackknife-style guard against verdicts driven by a few samples (Li et al., SIGCOMM
/// 2019): the share of `rounds` in which `decide` on random subsets of the samples agrees
/// with `decide` on the full samples. 1.0 means the decision is stable under resampling.
///
/// Each round draws, without replacement, round(`fraction`·len) elements of each sample
/// (`fraction` clamped to [0, 1], NaN taken as 0), but at least min(2, len) of them; the
/// drawn elements keep their original order, so order-sensitive decisions still make sense.
/// The draws come from a splitmix64 generator (Steele, Lea & Flood, OOPSLA 2014) seeded with
/// `seed`, with Lemire's (2019) multiply-shift reduction, so the result is a deterministic
/// function of the arguments. Returns 0.0 when `rounds` is 0. Values are passed to `decide`
/// as they are (NaNs included).
pub fn resample_agreement(
    a: &[f64],
    b: &[f64],
    rounds: u32,
    fraction: f64,
    seed: u64,
    decide: impl Fn(&[f64], &[f64]) -> bool,
) -> f64 {
    if rounds == 0 {
        return 0.0;
    }
    let full = decide(a, b);
    let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    let mut rng = SplitMix64(seed);
    let mut indices_a: Vec<usize> = (0..a.len()).collect();
    let mut indices_b: Vec<usize> = (0..b.len()).collect();
    let mut sub_a = Vec::new();
    let mut sub_b = Vec::new();
    let mut agreements = 0u32;
    for _ in 0..rounds {
        draw_subset(a, fraction, &mut rng, &mut indices_a, &mut sub_a);
        draw_subset(b, fraction, &mut rng, &mut indices_b, &mut sub_b);
        if decide(&sub_a, &sub_b) == full {
            agreements += 1;
        }
    }
    f64::from(agreements) / f64::from(rounds)
}

/// Fills `out` with a random subset of `x` (size per [`resample_agreement`]) in original
/// order. `indices` is a permutation of 0..x.len() reused across rounds.
fn draw_subset(
    x: &[f64],
    fraction: f64,
    rng: &mut SplitMix64,
    indices: &mut [usize],
    out: &mut Vec<f64>,
) {
    let n = x.len();
    let wanted = (fraction * n as f64).round() as usize; // saturating cast
    let k = wanted.max(n.min(2)).min(n);
    // Partial Fisher–Yates: the first k slots become a uniform random k-subset.
    for i in 0..k {
        let j = i + rng.below(n - i);
        indices.swap(i, j);
    }
    let chosen = &mut indices[..k];
    chosen.sort_unstable();
    out.clear();
    out.extend(chosen.iter().map(|&i| x[i]));
}

/// splitmix64 (Steele, Lea & Flood 2014; constants as in Vigna's reference code).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough integer in 0..bound (Lemire's multiply-shift; bias < bound/2⁶⁴).
    /// Returns 0 for bound 0.
    fn below(&mut self, bound: usize) -> usize {
        let wide = u128::from(self.next_u64()) * bound as u128;
        (wide >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::describe::mean;
    use crate::detect::stats::test_samples::{KS_A, KS_B};
    use std::cell::RefCell;

    #[test]
    fn splitmix64_reference_vector() {
        // Vigna's splitmix64.c seeded with 0: first outputs 0xe220a8397b1dcdaf,
        // 0x6e789e6aa1b965f4.
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn resample_agreement_basics() {
        assert_eq!(resample_agreement(&KS_A, &KS_B, 50, 0.5, 7, |_, _| true), 1.0);
        assert_eq!(resample_agreement(&KS_A, &KS_B, 0, 0.5, 7, |_, _| true), 0.0);
        // Full samples give a < b by mean, but subsets sometimes disagree.
        let decide = |a: &[f64], b: &[f64]| mean(a) < mean(b);
        let first = resample_agreement(&KS_A, &KS_B, 200, 0.2, 42, decide);
        let again = resample_agreement(&KS_A, &KS_B, 200, 0.2, 42, decide);
        assert_eq!(first, again);
        assert!(first > 0.5 && first <= 1.0, "{first}");
        // A decision that only holds on the full samples never agrees.
        let full_only = |a: &[f64], b: &[f64]| a.len() == KS_A.len() && b.len() == KS_B.len();
        assert_eq!(resample_agreement(&KS_A, &KS_B, 10, 0.5, 1, full_only), 0.0);
    }

    #[test]
    fn resample_subsets_are_sized_ordered_and_distinct() {
        let a: Vec<f64> = (0..10).map(f64::from).collect();
        let b = [100.0, 200.0];
        let seen = RefCell::new(Vec::new());
        resample_agreement(&a, &b, 30, 0.5, 3, |x, y| {
            seen.borrow_mut().push((x.to_vec(), y.to_vec()));
            true
        });
        let seen = seen.into_inner();
        assert_eq!(seen.len(), 31); // the full decision, then 30 rounds
        let mut distinct_subsets = std::collections::HashSet::new();
        for (x, y) in &seen[1..] {
            assert_eq!(x.len(), 5);
            assert!(x.windows(2).all(|w| w[0] < w[1]), "{x:?}"); // original order, no repeats
            assert_eq!(y, &b); // at least 2 of a sample of 2
            distinct_subsets.insert(x.iter().map(|v| *v as u8).collect::<Vec<_>>());
        }
        assert!(distinct_subsets.len() > 10);
        // Tiny fractions still keep two elements; a sample of one keeps its one.
        let sizes = RefCell::new(Vec::new());
        resample_agreement(&a, &[1.0], 3, 0.01, 3, |x, y| {
            sizes.borrow_mut().push((x.len(), y.len()));
            true
        });
        assert_eq!(sizes.into_inner()[1..], [(2, 1); 3]);
    }
}
