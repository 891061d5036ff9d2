//! A single change in the mean of a series (throughput over time).

use super::describe::mean;
use super::welch::welch_t_test;

/// A single change in the mean of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// First index of the second segment: the segments are `x[..index]` and `x[index..]`.
    pub index: usize,
    /// Mean of `x[..index]`, in the unit of the series.
    pub mean_before: f64,
    /// Mean of `x[index..]`, in the unit of the series.
    pub mean_after: f64,
    /// Two-sided Welch p-value between the segments; optimistic (see [`mean_change_point`]).
    pub p_value: f64,
}

/// The single change point in the mean: the split minimising the total within-segment sum of
/// squares, i.e. the one-change-point case of the segmentation that PELT solves in general
/// (Killick, Fearnhead & Eckley, JASA 2012) and that Wehe applies to throughput series (Li et
/// al., SIGCOMM 2019). Both segments are at least `min_segment` long (a `min_segment` of 0 is
/// taken as 1); ties go to the earliest split. Sums of squares are accumulated with Welford's
/// update in both directions, so large offsets (throughputs of 10⁹ bit/s) do not cancel.
///
/// The p-value is [`welch_t_test`] between the two segments. It is optimistic: the split was
/// chosen to maximise the difference between the segments, so under "no change" it is not
/// uniform and small values occur more often than their nominal rate. Use it to rank, or
/// against a stricter threshold, not as a calibrated test. It is 1.0 if a segment has a
/// single point.
///
/// None if `x` is shorter than 2·`min_segment`, is constant, or holds a NaN or ±∞ (indices
/// would be ambiguous if such points were dropped).
pub fn mean_change_point(x: &[f64], min_segment: usize) -> Option<ChangePoint> {
    let min_segment = min_segment.max(1);
    let n = x.len();
    if n < min_segment.checked_mul(2)? || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    if x.iter().all(|&v| v == x[0]) {
        return None;
    }
    let forward = prefix_sums_of_squares(x.iter().copied());
    let backward = prefix_sums_of_squares(x.iter().rev().copied());
    let mut best: Option<(usize, f64)> = None;
    for index in min_segment..=n - min_segment {
        let cost = forward[index] + backward[n - index];
        if best.is_none_or(|(_, c)| cost < c) {
            best = Some((index, cost));
        }
    }
    let (index, _) = best.filter(|&(_, c)| c.is_finite())?;
    let (before, after) = x.split_at(index);
    Some(ChangePoint {
        index,
        mean_before: mean(before)?,
        mean_after: mean(after)?,
        p_value: welch_t_test(before, after),
    })
}

/// `out[k]` = sum of squared deviations from their mean of the first k values (Welford).
fn prefix_sums_of_squares(values: impl ExactSizeIterator<Item = f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len() + 1);
    out.push(0.0);
    let (mut m, mut ss) = (0.0, 0.0);
    for (i, v) in values.enumerate() {
        let delta = v - m;
        m += delta / (i + 1) as f64;
        ss += delta * (v - m);
        out.push(ss);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::test_samples::close;

    #[test]
    fn change_point_on_a_step() {
        // scipy: ttest_ind(x[:6], x[6:], equal_var=False).pvalue = 5.855985551137326e-12
        let x = [10.0, 10.2, 9.9, 10.1, 9.8, 10.0, 14.1, 13.8, 14.2, 13.9, 14.0, 14.3];
        let cp = mean_change_point(&x, 2).unwrap();
        assert_eq!(cp.index, 6);
        assert!(close(cp.mean_before, 10.0, 1e-12));
        assert!(close(cp.mean_after, 14.05, 1e-12));
        assert!(close(cp.p_value, 5.855_985_551_137_326e-12, 1e-6), "{cp:?}");
        // Same shape on a large offset (10⁹ bit/s): found at the same index.
        let big: Vec<f64> = x.iter().map(|v| 1e9 + v).collect();
        assert_eq!(mean_change_point(&big, 2).unwrap().index, 6);
    }

    #[test]
    fn change_point_respects_min_segment() {
        let x = [10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(mean_change_point(&x, 1).unwrap().index, 1);
        // Splits 3..=5 allowed; costs 66.7, 75, 80 (hand-computed): index 3.
        assert_eq!(mean_change_point(&x, 3).unwrap().index, 3);
        assert_eq!(mean_change_point(&x, 4).unwrap().index, 4);
        assert_eq!(mean_change_point(&x, 5), None);
        // A single-point segment gets the neutral Welch p-value.
        assert_eq!(mean_change_point(&x, 0).unwrap().p_value, 1.0);
    }

    #[test]
    fn change_point_none_cases() {
        assert_eq!(mean_change_point(&[3.0; 20], 2), None);
        assert_eq!(mean_change_point(&[], 1), None);
        assert_eq!(mean_change_point(&[1.0, 2.0, f64::NAN, 4.0], 1), None);
        assert_eq!(mean_change_point(&[1.0, 2.0], usize::MAX), None);
    }
}
