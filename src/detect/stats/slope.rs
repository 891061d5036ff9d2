//! The slope of a line through points, robust to outliers: Theil–Sen.

use super::median;

/// Theil–Sen slope (Theil 1950, Sen 1968): the median of the slopes of every pair of points
/// with different x. A few points far off the line (a bucket's first burst, a flow alone at
/// the traffic's edge) move it little, where they pull a least-squares slope far. NaN
/// coordinates are ignored. None with no such pair. Unit: y's unit per x's unit.
pub fn theil_sen_slope(points: &[(f64, f64)]) -> Option<f64> {
    let kept: Vec<(f64, f64)> =
        points.iter().copied().filter(|(x, y)| !x.is_nan() && !y.is_nan()).collect();
    let mut slopes = Vec::new();
    for (i, a) in kept.iter().enumerate() {
        for b in &kept[i + 1..] {
            if a.0 != b.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    median(&slopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_ignores_a_few_points_off_the_line() {
        // Flat at 1,500 for 2 to 6 at once; one low point alone and one burst: least squares
        // says about 200 a step, the pairs' median about 0.
        let mut points: Vec<(f64, f64)> =
            (0..20).map(|i| (f64::from(2 + i % 5), 1_500.0 + f64::from(i % 3) * 10.0)).collect();
        points.extend([(1.0, 350.0), (1.0, 400.0), (2.0, 4_700.0)]);
        let slope = theil_sen_slope(&points).unwrap();
        assert!(slope.abs() < 20.0, "{slope}");
        // A line is its own slope.
        let line: Vec<(f64, f64)> = (1..6).map(|k| (f64::from(k), 300.0 * f64::from(k))).collect();
        assert_eq!(theil_sen_slope(&line), Some(300.0));
        // No two x apart, or nothing: no slope.
        assert_eq!(theil_sen_slope(&[(1.0, 2.0), (1.0, 5.0)]), None);
        assert_eq!(theil_sen_slope(&[]), None);
        assert_eq!(theil_sen_slope(&[(f64::NAN, 1.0), (2.0, 3.0)]), None);
    }
}
