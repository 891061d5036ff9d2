//! Statistics for the differentiation detectors: two-sample tests on per-flow measurements.
//!
//! Contract:
//! - every function is pure, takes slices (or counts) and never panics on any input;
//! - degenerate input (empty slices, too few points, zero totals) yields a documented neutral
//!   value — `p = 1.0`, statistic `0`, or `None` — never an error;
//! - NaNs are treated as missing values and ignored unless a function says otherwise
//!   ([`mean_change_point`], where positions matter, refuses non-finite input with `None`);
//! - statistics are dimensionless unless stated; means and quantiles carry the unit of the
//!   input (bit/s in, bit/s out);
//! - randomness ([`resample_agreement`]) is a seeded splitmix64, so results are reproducible.
//!
//! One module per topic: `ecdf` (Kolmogorov–Smirnov, Wehe's area), `fisher` (Fisher's exact
//! test), `describe` (mean, quantiles), `welch` (Welch's t-test), `change_point`, `resample`
//! (Wehe's resampling guard), `slope` (Theil–Sen), and the `special` functions they rest on.

mod change_point;
mod describe;
mod ecdf;
mod fisher;
mod resample;
mod slope;
mod special;
mod welch;

pub use change_point::{ChangePoint, mean_change_point};
pub use describe::{mean, median, quantile};
pub use ecdf::{KsTest, cdf_area, ks_two_sample};
pub use fisher::{fisher_exact_greater, fisher_exact_two_sided};
pub use resample::resample_agreement;
pub use slope::theil_sen_slope;
pub use welch::welch_t_test;

/// The values without NaNs, sorted.
fn sorted_without_nan(x: &[f64]) -> Vec<f64> {
    sorted_kept(x, |v| !v.is_nan())
}

/// The finite values, sorted.
fn sorted_finite(x: &[f64]) -> Vec<f64> {
    sorted_kept(x, |v| v.is_finite())
}

/// The values `keep` keeps, sorted (one copy of the code for both: the router's size).
fn sorted_kept(x: &[f64], keep: fn(&f64) -> bool) -> Vec<f64> {
    let mut v: Vec<f64> = x.iter().copied().filter(keep).collect();
    v.sort_unstable_by(f64::total_cmp);
    normalise_zero_signs(&mut v);
    v
}

/// total_cmp orders −0 before +0; they are equal values, so make them one value for tie
/// handling.
fn normalise_zero_signs(v: &mut [f64]) {
    for x in v.iter_mut() {
        if *x == 0.0 {
            *x = 0.0;
        }
    }
}

/// Samples and a tolerance shared by the topics' tests.
#[cfg(test)]
mod test_samples {
    pub(super) fn close(actual: f64, expected: f64, rel: f64) -> bool {
        (actual - expected).abs() <= rel * expected.abs().max(f64::MIN_POSITIVE)
    }

    /// Two samples of 25 and 24 values with ties across the samples (0.05, 0.39, 0.51, 0.59,
    /// 1.06, 1.31, 1.64 occur in both).
    pub(super) const KS_A: [f64; 25] = [
        0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64, -0.82,
        0.37, 1.77, 1.09, -1.28, 2.36, 1.31, 1.05, -0.32, -0.40, 1.06, -2.47,
    ];
    pub(super) const KS_B: [f64; 24] = [
        2.20, 1.66, 1.38, 0.20, 1.17, 0.66, 0.59, 1.50, 0.81, 0.05, 1.64, 0.39, 1.06, 2.78, 1.31,
        0.86, 1.33, 1.70, 0.51, 0.88, 1.21, 1.59, 0.39, 0.90,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_panics_on_degenerate_input() {
        let nan = [f64::NAN, f64::NAN];
        let inf = [f64::INFINITY, f64::NEG_INFINITY, 1.0];
        let huge = [f64::MAX, -f64::MAX, f64::MAX];
        let inputs: [&[f64]; 5] = [&[], &nan, &inf, &huge, &[1.0]];
        for a in inputs {
            for b in inputs {
                let ks = ks_two_sample(a, b);
                assert!((0.0..=1.0).contains(&ks.d) && (0.0..=1.0).contains(&ks.p_value));
                let area = cdf_area(a, b);
                assert!(area >= 0.0 && area.is_finite(), "{area}");
                let p = welch_t_test(a, b);
                assert!((0.0..=1.0).contains(&p), "{p}");
                let r = resample_agreement(a, b, 3, 0.5, 0, |x, y| x.len() <= y.len());
                assert!((0.0..=1.0).contains(&r));
                let _ = resample_agreement(a, b, 3, f64::NAN, 0, |_, _| true);
                let _ = resample_agreement(a, b, 3, -1.0, 0, |_, _| true);
            }
            let _ = (mean(a), median(a), quantile(a, 0.3), mean_change_point(a, 0));
        }
        assert_eq!(ks_two_sample(&[], &[1.0]), KsTest { d: 0.0, p_value: 1.0 });
        assert_eq!(ks_two_sample(&nan, &[1.0]), KsTest { d: 0.0, p_value: 1.0 });
        assert_eq!(cdf_area(&[], &[]), 0.0);
        assert_eq!((mean(&[]), median(&nan), quantile(&[], 0.5)), (None, None, None));
        assert_eq!(welch_t_test(&[], &[1.0, 2.0]), 1.0);
        assert_eq!(welch_t_test(&inf, &[1.0, 2.0]), 1.0);
        for (ah, at, bh, bt) in
            [(0, 0, 0, 0), (5, 3, 0, 0), (u64::MAX, 1, u64::MAX, 1), (1, 1, 0, 1)]
        {
            let g = fisher_exact_greater(ah, at, bh, bt);
            let t = fisher_exact_two_sided(ah, at, bh, bt);
            assert!((0.0..=1.0).contains(&g) && (0.0..=1.0).contains(&t));
        }
    }
}
