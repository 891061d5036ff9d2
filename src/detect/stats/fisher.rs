//! Fisher's exact test on 2×2 tables of counts (hits out of totals in two groups).

use super::special::ln_gamma;

/// One-sided Fisher's exact test (Fisher, "The Design of Experiments", 1935; Agresti,
/// "Categorical Data Analysis" §3.5) for H1: group a's share of hits is greater than b's.
///
/// Conditioning on the margins, the number of hits in group a is hypergeometric; the p-value
/// is P(X ≥ a_hits), summed from log-probabilities built on ln Γ, so totals of 10⁷ and more
/// are handled without overflow and in time proportional to the spread of the distribution,
/// not its size. Matches `scipy.stats.fisher_exact(..., alternative="greater")` and R's
/// `fisher.test(alternative = "greater")`.
///
/// Hits above their total are clamped to the total. Degenerate tables (a zero total, no hits
/// at all, all hits) give p = 1.0, as does a combined total above 2⁵³ (beyond exact counting
/// in f64; not reachable by packet counts).
pub fn fisher_exact_greater(a_hits: u64, a_total: u64, b_hits: u64, b_total: u64) -> f64 {
    match Hypergeometric::from_table(a_hits, a_total, b_hits, b_total) {
        Some((h, x)) => h.upper_tail(x).clamp(0.0, 1.0),
        None => 1.0,
    }
}

/// Two-sided Fisher's exact test, same arguments and clamping as [`fisher_exact_greater`].
///
/// The p-value is the total probability of all tables with the observed margins that are no
/// more probable than the observed one, where "no more" allows a relative tolerance of 1e-7
/// (the convention of R's `fisher.test` and `scipy.stats.fisher_exact`). Degenerate tables
/// give p = 1.0.
pub fn fisher_exact_two_sided(a_hits: u64, a_total: u64, b_hits: u64, b_total: u64) -> f64 {
    let Some((h, x)) = Hypergeometric::from_table(a_hits, a_total, b_hits, b_total) else {
        return 1.0;
    };
    let threshold = h.ln_pmf(x) + 1e-7_f64.ln_1p();
    let mode = h.mode();
    if h.ln_pmf(mode) <= threshold {
        return 1.0;
    }
    // ln_pmf rises on [lo, mode] and falls on [mode, hi]: find the last point of the lower
    // tail and the first point of the upper tail at or below the threshold.
    let lower_end = if h.ln_pmf(h.lo) <= threshold {
        // Invariant: ln_pmf(l) <= threshold < ln_pmf(r).
        let (mut l, mut r) = (h.lo, mode);
        while r - l > 1 {
            let mid = l + (r - l) / 2;
            if h.ln_pmf(mid) <= threshold { l = mid } else { r = mid }
        }
        Some(l)
    } else {
        None
    };
    let upper_start = if h.ln_pmf(h.hi) <= threshold {
        // Invariant: ln_pmf(l) > threshold >= ln_pmf(r).
        let (mut l, mut r) = (mode, h.hi);
        while r - l > 1 {
            let mid = l + (r - l) / 2;
            if h.ln_pmf(mid) <= threshold { r = mid } else { l = mid }
        }
        Some(r)
    } else {
        None
    };
    let p =
        lower_end.map_or(0.0, |l| h.lower_tail(l)) + upper_start.map_or(0.0, |u| h.upper_tail(u));
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

/// Hypergeometric distribution of the hits in group a given the table's margins:
/// population `n_pop` = a_total + b_total, `k_hits` = a_hits + b_hits, `n_draw` = a_total.
/// Support is `lo..=hi`.
#[derive(Debug, Clone, Copy)]
struct Hypergeometric {
    n_pop: u64,
    k_hits: u64,
    n_draw: u64,
    lo: u64,
    hi: u64,
    ln_norm: f64,
}

impl Hypergeometric {
    /// The distribution and the observed a_hits, or None if the table is degenerate (a single
    /// possible table) or too large to count in f64.
    fn from_table(a_hits: u64, a_total: u64, b_hits: u64, b_total: u64) -> Option<(Self, u64)> {
        const MAX_EXACT: u64 = 1 << 53;
        let a_hits = a_hits.min(a_total);
        let b_hits = b_hits.min(b_total);
        let n_pop = a_total.checked_add(b_total).filter(|&n| n <= MAX_EXACT)?;
        let k_hits = a_hits + b_hits; // <= n_pop, cannot overflow
        let n_draw = a_total;
        let lo = n_draw.saturating_sub(n_pop - k_hits);
        let hi = n_draw.min(k_hits);
        if lo >= hi {
            return None;
        }
        let ln_norm = ln_choose(n_pop, n_draw);
        Some((Hypergeometric { n_pop, k_hits, n_draw, lo, hi, ln_norm }, a_hits))
    }

    fn ln_pmf(&self, y: u64) -> f64 {
        ln_choose(self.k_hits, y) + ln_choose(self.n_pop - self.k_hits, self.n_draw - y)
            - self.ln_norm
    }

    /// floor((n+1)(K+1)/(N+2)), clamped into the support.
    fn mode(&self) -> u64 {
        let m = (u128::from(self.n_draw) + 1) * (u128::from(self.k_hits) + 1)
            / (u128::from(self.n_pop) + 2);
        u64::try_from(m).unwrap_or(u64::MAX).clamp(self.lo, self.hi)
    }

    /// p(y+1) / p(y), for lo <= y < hi.
    fn ratio_up(&self, y: u64) -> f64 {
        let (k, n, pop) = (self.k_hits as f64, self.n_draw as f64, self.n_pop as f64);
        let y = y as f64;
        (k - y) * (n - y) / ((y + 1.0) * (pop - k - n + y + 1.0))
    }

    /// p(y−1) / p(y), for lo < y <= hi.
    fn ratio_down(&self, y: u64) -> f64 {
        let (k, n, pop) = (self.k_hits as f64, self.n_draw as f64, self.n_pop as f64);
        let y = y as f64;
        y * (pop - k - n + y) / ((k - y + 1.0) * (n - y + 1.0))
    }

    /// Σ_{y ≥ y0} p(y), any y0.
    fn upper_tail(&self, y0: u64) -> f64 {
        if y0 <= self.lo {
            1.0
        } else if y0 > self.hi {
            0.0
        } else if y0 >= self.mode() {
            self.sum_up_from(y0)
        } else {
            1.0 - self.sum_down_from(y0 - 1)
        }
    }

    /// Σ_{y ≤ y0} p(y), any y0.
    fn lower_tail(&self, y0: u64) -> f64 {
        if y0 >= self.hi {
            1.0
        } else if y0 < self.lo {
            0.0
        } else if y0 <= self.mode() {
            self.sum_down_from(y0)
        } else {
            1.0 - self.sum_up_from(y0 + 1)
        }
    }

    /// Σ_{y0 ≤ y ≤ hi} p(y) for y0 >= mode, where the terms only fall: stops once they no
    /// longer change the sum.
    fn sum_up_from(&self, y0: u64) -> f64 {
        let mut term = self.ln_pmf(y0).exp();
        let mut sum = term;
        let mut y = y0;
        while y < self.hi && term > sum * 1e-18 {
            term *= self.ratio_up(y);
            y += 1;
            sum += term;
        }
        sum
    }

    /// Σ_{lo ≤ y ≤ y0} p(y) for y0 <= mode, where the terms only fall going down.
    fn sum_down_from(&self, y0: u64) -> f64 {
        let mut term = self.ln_pmf(y0).exp();
        let mut sum = term;
        let mut y = y0;
        while y > self.lo && term > sum * 1e-18 {
            term *= self.ratio_down(y);
            y -= 1;
            sum += term;
        }
        sum
    }
}

/// ln C(n, k) for k <= n.
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::test_samples::close;

    #[test]
    fn fisher_tea_tasting() {
        // Fisher's lady tasting tea: [[3, 1], [1, 3]]. scipy.stats.fisher_exact gives
        // greater 0.24285714285714283 (= 17/70), two-sided 0.48571428571428565 (= 34/70).
        assert!(close(fisher_exact_greater(3, 4, 1, 4), 17.0 / 70.0, 1e-12));
        assert!(close(fisher_exact_two_sided(3, 4, 1, 4), 34.0 / 70.0, 1e-12));
        // The other direction: P(X >= 1) = 1 − 1/70.
        assert!(close(fisher_exact_greater(1, 4, 3, 4), 69.0 / 70.0, 1e-12));
    }

    #[test]
    fn fisher_small_asymmetric_table() {
        // scipy: fisher_exact([[2, 8], [7, 3]]) greater 0.9972612526792093,
        // two-sided 0.06977851869492736.
        assert!(close(fisher_exact_greater(2, 10, 7, 10), 0.997_261_252_679_209_3, 1e-10));
        assert!(close(fisher_exact_two_sided(2, 10, 7, 10), 0.069_778_518_694_927_36, 1e-10));
    }

    #[test]
    fn fisher_two_sided_with_empty_lower_tail() {
        // Unequal totals: no table on the low side is as improbable as the observed one.
        // scipy: fisher_exact([[7, 93], [2, 198]]) greater = two-sided = 0.007443362848289248.
        assert!(close(fisher_exact_greater(7, 100, 2, 200), 0.007_443_362_848_289_248, 1e-10));
        assert!(close(fisher_exact_two_sided(7, 100, 2, 200), 0.007_443_362_848_289_248, 1e-10));
    }

    #[test]
    fn fisher_large_tables() {
        // scipy: fisher_exact([[1200, 98800], [1000, 99000]]) greater 9.819753401194035e-06,
        // two-sided 1.9639506802388064e-05.
        let g = fisher_exact_greater(1200, 100_000, 1000, 100_000);
        let t = fisher_exact_two_sided(1200, 100_000, 1000, 100_000);
        assert!(close(g, 9.819_753_401_194_035e-6, 1e-6), "{g}");
        assert!(close(t, 1.963_950_680_238_806_4e-5, 1e-6), "{t}");
        // Totals of 10⁷: scipy: fisher_exact([[5006000, 4994000], [5000000, 5000000]])
        // greater 0.0036500508293798467, two-sided 0.00730010165875969.
        let g = fisher_exact_greater(5_006_000, 10_000_000, 5_000_000, 10_000_000);
        let t = fisher_exact_two_sided(5_006_000, 10_000_000, 5_000_000, 10_000_000);
        assert!(close(g, 0.003_650_050_829_379_846_7, 1e-5), "{g}");
        assert!(close(t, 0.007_300_101_658_759_69, 1e-5), "{t}");
        // Below the mode the upper tail goes through the complement. scipy:
        // fisher_exact([[4994000, 5006000], [5000000, 5000000]]) greater 0.9963596989404048,
        // two-sided 0.007300101658759693.
        let g = fisher_exact_greater(4_994_000, 10_000_000, 5_000_000, 10_000_000);
        let t = fisher_exact_two_sided(4_994_000, 10_000_000, 5_000_000, 10_000_000);
        assert!(close(g, 0.996_359_698_940_404_8, 1e-7), "{g}");
        assert!(close(t, 0.007_300_101_658_759_693, 1e-5), "{t}");
    }

    #[test]
    fn fisher_degenerate_tables() {
        assert_eq!(fisher_exact_greater(0, 0, 0, 0), 1.0);
        assert_eq!(fisher_exact_two_sided(0, 0, 5, 10), 1.0);
        assert_eq!(fisher_exact_greater(0, 10, 0, 10), 1.0);
        assert_eq!(fisher_exact_two_sided(10, 10, 10, 10), 1.0);
        // Hits above the total are clamped: same as [[4, 0], [1, 3]], greater
        // P(X = 4) = C(5,4)·C(3,0)/C(8,4) = 5/70 (scipy: 0.07142857142857142).
        assert!(close(fisher_exact_greater(9, 4, 1, 4), 5.0 / 70.0, 1e-12));
        assert_eq!(fisher_exact_greater(1, u64::MAX, 1, u64::MAX), 1.0);
        assert_eq!(fisher_exact_two_sided(u64::MAX, u64::MAX, 0, 1), 1.0);
        // Observed table at the mode: two-sided p = 1.
        assert_eq!(fisher_exact_two_sided(5, 10, 5, 10), 1.0);
    }
}
