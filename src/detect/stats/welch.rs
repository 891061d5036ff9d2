//! Welch's t-test for a difference in means.

use super::describe::mean_var;
use super::special::student_t_two_sided;

/// Welch's two-sample t-test (Welch, Biometrika 1947) for a difference in means without
/// assuming equal variances; returns the two-sided p-value from the Student t distribution
/// with Welch–Satterthwaite degrees of freedom, evaluated as I_{ν/(ν+t²)}(ν/2, 1/2) with the
/// regularized incomplete beta function (Numerical Recipes 2nd ed. §6.4).
///
/// NaNs are ignored. Neutral p = 1.0 if either sample has fewer than 2 values or the result is
/// undefined (infinite values). If both samples have zero variance the p-value is 1.0 for
/// equal means and 0.0 for different ones (the limit t → ∞).
pub fn welch_t_test(a: &[f64], b: &[f64]) -> f64 {
    let (Some((na, ma, va)), Some((nb, mb, vb))) = (mean_var(a), mean_var(b)) else {
        return 1.0;
    };
    let (sa, sb) = (va / na, vb / nb);
    let se2 = sa + sb;
    if !se2.is_finite() || !ma.is_finite() || !mb.is_finite() {
        return 1.0;
    }
    if se2 == 0.0 {
        return if ma == mb { 1.0 } else { 0.0 };
    }
    let t = (ma - mb) / se2.sqrt();
    // Welch–Satterthwaite ν = se⁴ / Σ s_i⁴/(n_i − 1), written in shares of se² so that tiny
    // variances cannot underflow to ν = ∞.
    let (ra, rb) = (sa / se2, sb / se2);
    let df = 1.0 / (ra * ra / (na - 1.0) + rb * rb / (nb - 1.0));
    let p = student_t_two_sided(t, df);
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::test_samples::{KS_A, KS_B, close};

    #[test]
    fn welch_against_scipy() {
        // scipy.stats.ttest_ind(KS_A, KS_B, equal_var=False).pvalue = 0.0012519128502368098
        assert!(close(welch_t_test(&KS_A, &KS_B), 0.001_251_912_850_236_809_8, 1e-8));
        // ttest_ind([1,2,3,4], [1.5,...,6.5], equal_var=False).pvalue = 0.17227907729130926
        let p = welch_t_test(&[1.0, 2.0, 3.0, 4.0], &[1.5, 2.5, 3.5, 4.5, 5.5, 6.5]);
        assert!(close(p, 0.172_279_077_291_309_26, 1e-8), "{p}");
    }

    #[test]
    fn welch_identical_and_separated() {
        let a: Vec<f64> = (0..200).map(|i| (f64::from(i) * 0.37).sin()).collect();
        let mut b = a.clone();
        b.reverse();
        assert!(welch_t_test(&a, &b) > 0.999);
        assert_eq!(welch_t_test(&a, &a), 1.0);
        let far: Vec<f64> = a.iter().map(|v| v + 10.0).collect();
        assert!(welch_t_test(&a, &far) < 1e-12);
        // Zero variance on both sides.
        assert_eq!(welch_t_test(&[1.0, 1.0], &[1.0, 1.0, 1.0]), 1.0);
        assert_eq!(welch_t_test(&[1.0, 1.0], &[2.0, 2.0]), 0.0);
        // Scale invariance down to tiny values (no underflow of the degrees of freedom).
        let tiny_a: Vec<f64> = [1.0, 2.0, 3.0, 4.0].iter().map(|v| v * 1e-150).collect();
        let tiny_b: Vec<f64> = [1.5, 2.5, 3.5, 4.5, 5.5, 6.5].iter().map(|v| v * 1e-150).collect();
        assert!(close(welch_t_test(&tiny_a, &tiny_b), 0.172_279_077_291_309_26, 1e-6));
    }
}
