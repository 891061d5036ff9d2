//! Tests on the empirical CDFs of two samples: Kolmogorov–Smirnov and Wehe's area test.

use super::{sorted_finite, sorted_without_nan};

/// Result of a two-sample Kolmogorov–Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// Largest absolute difference between the two empirical CDFs, in [0, 1].
    pub d: f64,
    /// Asymptotic two-sided p-value, in [0, 1].
    pub p_value: f64,
}

/// Two-sample Kolmogorov–Smirnov test.
///
/// `d` is the supremum over x of |F_a(x) − F_b(x)| of the empirical CDFs; tied values (within
/// or across samples) are stepped over together, so a tie never creates a spurious gap. The
/// p-value is the asymptotic one of Numerical Recipes (Press et al., 2nd ed. §14.3, `kstwo`,
/// with Stephens' 1970 small-sample correction): with en = √(n·m/(n+m)),
/// p = Q_KS((en + 0.12 + 0.11/en)·D). It is conservative-to-accurate for n·m/(n+m) ≳ 4.
///
/// NaNs are ignored; ±∞ are ordinary (extreme) values. If either sample is empty after that,
/// returns `D = 0, p = 1`.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> KsTest {
    let sa = sorted_without_nan(a);
    let sb = sorted_without_nan(b);
    if sa.is_empty() || sb.is_empty() {
        return KsTest { d: 0.0, p_value: 1.0 };
    }
    let (n, m) = (sa.len() as f64, sb.len() as f64);
    let mut d: f64 = 0.0;
    walk_ecdfs(&sa, &sb, |_, fa, fb| d = d.max((fa - fb).abs()));
    let en = (n * m / (n + m)).sqrt();
    let p_value = q_ks((en + 0.12 + 0.11 / en) * d);
    KsTest { d, p_value }
}

/// Kolmogorov survival function Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} exp(−2 j² λ²)
/// (Numerical Recipes 2nd ed. §14.3, `probks`, same stopping rules).
///
/// Returns 1.0 for λ < 0.3 (where Q_KS > 0.99999 and the series converges slowly), for NaN,
/// and if the series has not converged after 100 terms; the result is clamped to [0, 1].
fn q_ks(lambda: f64) -> f64 {
    const EPS1: f64 = 1e-3;
    const EPS2: f64 = 1e-8;
    if lambda.is_nan() || lambda < 0.3 {
        return 1.0;
    }
    let a2 = -2.0 * lambda * lambda;
    let mut fac = 2.0;
    let mut sum = 0.0;
    let mut term_before: f64 = 0.0;
    for j in 1..=100u32 {
        let j = f64::from(j);
        let term = fac * (a2 * j * j).exp();
        sum += term;
        if term.abs() <= EPS1 * term_before || term.abs() <= EPS2 * sum {
            return sum.clamp(0.0, 1.0);
        }
        fac = -fac;
        term_before = term.abs();
    }
    1.0
}

/// Wehe's area test statistic (Li et al., "A large-scale analysis of deployed traffic
/// differentiation practices", SIGCOMM 2019, §4): the area between the two empirical CDFs,
/// ∫ |F_a(x) − F_b(x)| dx, divided by the larger of the two samples' ranges (max − min).
///
/// If both samples are constant (both ranges 0) the area is divided by the larger absolute
/// mean instead, and if that is 0 too the result is 0. The result is ≥ 0 and has no unit; it
/// is in [0, 1] when the samples overlap, and exceeds 1 when they are disjoint with a gap
/// (e.g. `a` shifted by its own range gives exactly 1).
///
/// Non-finite values (NaN, ±∞) are ignored, since an area with infinite abscissae is
/// undefined. Returns 0.0 (no difference) if either sample is empty after that, or if the
/// computation overflows f64 (ranges near ±f64::MAX).
pub fn cdf_area(a: &[f64], b: &[f64]) -> f64 {
    let sa = sorted_finite(a);
    let sb = sorted_finite(b);
    let (Some((&a_min, &a_max)), Some((&b_min, &b_max))) =
        (sa.first().zip(sa.last()), sb.first().zip(sb.last()))
    else {
        return 0.0;
    };
    let mut area = 0.0;
    let mut previous: Option<(f64, f64)> = None; // (x, |F_a − F_b| on [x, next x))
    walk_ecdfs(&sa, &sb, |x, fa, fb| {
        if let Some((x0, gap)) = previous {
            area += gap * (x - x0);
        }
        previous = Some((x, (fa - fb).abs()));
    });
    let width = (a_max - a_min).max(b_max - b_min);
    let scale = if width > 0.0 {
        width
    } else {
        // Both constant: mean = the value itself.
        a_min.abs().max(b_min.abs())
    };
    let result = if scale > 0.0 { area / scale } else { 0.0 };
    if result.is_finite() { result.max(0.0) } else { 0.0 }
}

/// Walks the union of two sorted, NaN-free samples in increasing order. At each distinct
/// value x, after stepping over every copy of x in both samples, calls `visit(x, F_a(x),
/// F_b(x))` with the right-continuous empirical CDFs. Both slices must be non-empty.
fn walk_ecdfs(sa: &[f64], sb: &[f64], mut visit: impl FnMut(f64, f64, f64)) {
    let (n, m) = (sa.len(), sb.len());
    let (nf, mf) = (n as f64, m as f64);
    let (mut i, mut j) = (0usize, 0usize);
    while i < n || j < m {
        let x = match (sa.get(i), sb.get(j)) {
            (Some(&xa), Some(&xb)) => xa.min(xb),
            (Some(&xa), None) => xa,
            (None, Some(&xb)) => xb,
            (None, None) => break,
        };
        while i < n && sa[i] == x {
            i += 1;
        }
        while j < m && sb[j] == x {
            j += 1;
        }
        visit(x, i as f64 / nf, j as f64 / mf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::test_samples::{KS_A, KS_B, close};

    #[test]
    fn ks_identical_samples() {
        let x = [3.0, 1.0, 2.0, 2.0, 5.0];
        assert_eq!(ks_two_sample(&x, &x), KsTest { d: 0.0, p_value: 1.0 });
    }

    #[test]
    fn ks_disjoint_samples() {
        let r = ks_two_sample(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(r.d, 1.0);
        // NR/Stephens: en = √2.5, Q_KS((en + 0.12 + 0.11/en)·1) = 0.003781354059370101
        // (scipy.special.kolmogorov).
        assert!(close(r.p_value, 0.003_781_354_059_370_101, 1e-9), "{r:?}");
        assert!(r.p_value < 0.01);
    }

    #[test]
    fn ks_ties_are_stepped_over_together() {
        // scipy.stats.ks_2samp([1,1,2],[1,2,2]).statistic == 1/3; splitting the tie at 1
        // would report 2/3.
        let r = ks_two_sample(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]);
        assert!(close(r.d, 1.0 / 3.0, 1e-15), "{r:?}");
        // −0 and +0 are the same value.
        assert_eq!(ks_two_sample(&[-0.0], &[0.0]).d, 0.0);
    }

    #[test]
    fn ks_matches_scipy_reference() {
        let r = ks_two_sample(&KS_A, &KS_B);
        // scipy 1.17.1: ks_2samp(KS_A, KS_B, method="asymp").statistic == 0.47.
        assert!(close(r.d, 0.47, 1e-12), "{r:?}");
        // NR kstwo: en = √(25·24/49), λ = (en + 0.12 + 0.11/en)·0.47 = 1.7158319043577352,
        // scipy.special.kolmogorov(λ) = 0.005544154836817612.
        assert!(close(r.p_value, 0.005_544_154_836_817_612, 1e-8), "{r:?}");
        // scipy's own asymptotic mode uses the one-sample kstwo distribution at
        // n = round(n·m/(n+m)) instead of Stephens' correction and gives 0.0059437220394227275;
        // the two approximations agree to within 10 %.
        assert!(close(r.p_value, 0.005_943_722_039_422_728, 0.1), "{r:?}");
    }

    #[test]
    fn q_ks_edges() {
        assert_eq!(q_ks(0.0), 1.0);
        assert_eq!(q_ks(0.29), 1.0);
        assert_eq!(q_ks(f64::NAN), 1.0);
        assert_eq!(q_ks(f64::INFINITY), 0.0);
        // scipy.special.kolmogorov(1.0) = 0.26999967167735456
        assert!(close(q_ks(1.0), 0.269_999_671_677_354_56, 1e-7));
    }

    #[test]
    fn cdf_area_identical_is_zero() {
        assert_eq!(cdf_area(&KS_A, &KS_A), 0.0);
    }

    #[test]
    fn cdf_area_disjoint_and_known_values() {
        // b is a shifted by its own range: area = shift = range, so exactly 1.
        let a: Vec<f64> = (0..=1000).map(|i| f64::from(i) / 1000.0).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 1.0).collect();
        assert!(close(cdf_area(&a, &b), 1.0, 1e-9), "{}", cdf_area(&a, &b));
        // With a gap: area = mean difference 5, range 4 (hand-computed).
        let r = cdf_area(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!(close(r, 1.25, 1e-12), "{r}");
        // Overlapping shift by 1, range 3.
        assert!(close(cdf_area(&[0.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]), 1.0 / 3.0, 1e-12));
        // scipy.stats.wasserstein_distance(KS_A, KS_B) = 0.8990166666666666 (the same area),
        // larger range 4.83 (KS_A).
        assert!(close(cdf_area(&KS_A, &KS_B), 0.899_016_666_666_666_6 / 4.83, 1e-12));
        // Symmetric.
        assert_eq!(cdf_area(&KS_A, &KS_B), cdf_area(&KS_B, &KS_A));
    }

    #[test]
    fn cdf_area_constant_samples() {
        // Both ranges 0: area |2 − 3| = 1 over the larger absolute mean 3.
        assert!(close(cdf_area(&[2.0, 2.0], &[3.0]), 1.0 / 3.0, 1e-15));
        assert_eq!(cdf_area(&[0.0], &[0.0, 0.0]), 0.0);
        assert_eq!(cdf_area(&[4.0], &[4.0]), 0.0);
    }
}
