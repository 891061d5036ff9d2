//! Location of one sample: mean, quantiles, median (and the variance the t-test needs).

use super::sorted_without_nan;

/// Arithmetic mean, NaNs ignored; None if no value remains. Computed as a running mean
/// (Welford 1962), so it does not overflow on large finite values. Same unit as the input.
pub fn mean(x: &[f64]) -> Option<f64> {
    let mut m = 0.0;
    let mut count = 0u64;
    for &v in x.iter().filter(|v| !v.is_nan()) {
        count += 1;
        m += (v - m) / count as f64;
    }
    (count > 0).then_some(m)
}

/// Sample quantile by linear interpolation between order statistics (Hyndman & Fan 1996,
/// definition 7; the default of R and NumPy): with the n sorted values x₀..x_{n−1},
/// h = q·(n − 1), Q = x_⌊h⌋ + (h − ⌊h⌋)(x_⌊h⌋+1 − x_⌊h⌋).
///
/// `q` is clamped to [0, 1]; NaNs in `x` are ignored. None if no value remains or `q` is NaN.
/// Same unit as the input.
pub fn quantile(x: &[f64], q: f64) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    let sorted = sorted_without_nan(x);
    let last = sorted.len().checked_sub(1)?;
    let h = q.clamp(0.0, 1.0) * last as f64;
    let below = (h.floor() as usize).min(last);
    let frac = h - below as f64;
    let lo = sorted[below];
    let hi = sorted[(below + 1).min(last)];
    if frac == 0.0 || lo == hi { Some(lo) } else { Some(lo + frac * (hi - lo)) }
}

/// Median: [`quantile`] at 0.5 (mean of the two middle values for even n). NaNs ignored;
/// None if no value remains.
pub fn median(x: &[f64]) -> Option<f64> {
    quantile(x, 0.5)
}

/// (count, mean, unbiased variance) of the non-NaN values, if there are at least 2.
pub(super) fn mean_var(x: &[f64]) -> Option<(f64, f64, f64)> {
    let m = mean(x)?;
    let (count, ss) = x
        .iter()
        .filter(|v| !v.is_nan())
        .fold((0u64, 0.0), |(c, s), &v| (c + 1, s + (v - m) * (v - m)));
    (count >= 2).then(|| (count as f64, m, ss / (count - 1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::test_samples::close;

    #[test]
    fn location_statistics() {
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        // numpy.quantile(x, [0, 0.1, 0.25, 0.5, 0.9, 1]) = [1, 1, 1.75, 3.5, 6.9, 9].
        assert_eq!(mean(&x), Some(31.0 / 8.0));
        assert_eq!(quantile(&x, 0.0), Some(1.0));
        assert_eq!(quantile(&x, 0.1), Some(1.0));
        assert_eq!(quantile(&x, 0.25), Some(1.75));
        assert_eq!(median(&x), Some(3.5));
        assert!(close(quantile(&x, 0.9).unwrap(), 6.9, 1e-12));
        assert_eq!(quantile(&x, 1.0), Some(9.0));
        assert_eq!(quantile(&x, -3.0), Some(1.0));
        assert_eq!(quantile(&x, 7.0), Some(9.0));
        assert_eq!(quantile(&x, f64::NAN), None);
        assert_eq!(median(&[5.0, f64::NAN, 1.0, 3.0]), Some(3.0));
        assert_eq!(mean(&[f64::NAN, 2.0, 4.0]), Some(3.0));
        assert_eq!(mean(&[f64::MAX, f64::MAX]), Some(f64::MAX));
        assert_eq!(median(&[f64::INFINITY, f64::INFINITY]), Some(f64::INFINITY));
    }
}
