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

// ---------------------------------------------------------------------------------------------
// Kolmogorov–Smirnov
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Wehe's area test
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Fisher's exact test
// ---------------------------------------------------------------------------------------------

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

/// ln Γ(x) by the Lanczos approximation (g = 7, 9 coefficients; Lanczos 1964, coefficients as
/// in Press et al. / Godfrey), relative error ~1e-15, with the reflection formula below 0.5.
/// Returns +∞ at the poles (x = 0, −1, −2, …) and NaN for NaN.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.5 {
        let s = (std::f64::consts::PI * x).sin().abs();
        if s == 0.0 {
            return f64::INFINITY;
        }
        return std::f64::consts::PI.ln() - s.ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut series = COEF[0];
    for (i, &c) in COEF.iter().enumerate().skip(1) {
        series += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

// ---------------------------------------------------------------------------------------------
// Location
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Change point and Welch's t-test
// ---------------------------------------------------------------------------------------------

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

/// (count, mean, unbiased variance) of the non-NaN values, if there are at least 2.
fn mean_var(x: &[f64]) -> Option<(f64, f64, f64)> {
    let m = mean(x)?;
    let (count, ss) = x
        .iter()
        .filter(|v| !v.is_nan())
        .fold((0u64, 0.0), |(c, s), &v| (c + 1, s + (v - m) * (v - m)));
    (count >= 2).then(|| (count as f64, m, ss / (count - 1) as f64))
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2).
fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let x = 1.0 / (1.0 + t * t / df);
    reg_inc_beta(0.5 * df, 0.5, x)
}

/// Regularized incomplete beta function I_x(a, b) (Numerical Recipes 2nd ed. §6.4, `betai`),
/// using the continued fraction on whichever side converges fast. NaN for a, b <= 0 or NaN x.
fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if a.is_nan() || b.is_nan() || x.is_nan() || a <= 0.0 || b <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// Continued fraction for I_x(a, b) by the modified Lentz method (Numerical Recipes 2nd ed.
/// §6.4, `betacf`). Needs O(√max(a, b)) iterations; the iteration cap covers a, b up to ~10⁷.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const MAX_ITER: u32 = 20_000;
    const EPS: f64 = 1e-15;
    const FPMIN: f64 = 1e-300;
    let guard = |v: f64| if v.abs() < FPMIN { FPMIN } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

// ---------------------------------------------------------------------------------------------
// Resampling guard
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn sorted_without_nan(x: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    v.sort_unstable_by(f64::total_cmp);
    normalise_zero_signs(&mut v);
    v
}

fn sorted_finite(x: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn close(actual: f64, expected: f64, rel: f64) -> bool {
        (actual - expected).abs() <= rel * expected.abs().max(f64::MIN_POSITIVE)
    }

    /// Two samples of 25 and 24 values with ties across the samples (0.05, 0.39, 0.51, 0.59,
    /// 1.06, 1.31, 1.64 occur in both).
    const KS_A: [f64; 25] = [
        0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64, -0.82,
        0.37, 1.77, 1.09, -1.28, 2.36, 1.31, 1.05, -0.32, -0.40, 1.06, -2.47,
    ];
    const KS_B: [f64; 24] = [
        2.20, 1.66, 1.38, 0.20, 1.17, 0.66, 0.59, 1.50, 0.81, 0.05, 1.64, 0.39, 1.06, 2.78, 1.31,
        0.86, 1.33, 1.70, 0.51, 0.88, 1.21, 1.59, 0.39, 0.90,
    ];

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

    #[test]
    fn special_functions_against_scipy() {
        // scipy.special.gammaln
        assert!(close(ln_gamma(0.5), 0.572_364_942_924_7, 1e-12));
        assert!(close(ln_gamma(10.0), 12.801_827_480_081_469, 1e-13));
        assert!(close(ln_gamma(1e7 + 1.0), 151_180_965.487_569_57, 1e-14));
        // scipy.special.betainc
        assert!(close(reg_inc_beta(2.5, 0.5, 0.3), 0.018_927_124_071_945_658, 1e-10));
        assert!(close(reg_inc_beta(50.0, 0.5, 0.97), 0.081_699_333_721_822_64, 1e-10));
        assert!(close(reg_inc_beta(0.5, 3.0, 0.2), 0.733_430_296_619_931, 1e-10));
    }

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
