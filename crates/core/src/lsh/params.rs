//! Choosing bands x rows for a similarity threshold.

use crate::error::{Error, Result};

/// Probability that two documents of similarity `s` share a band.
fn collide(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

/// `f` integrated over `[a, b]` by Simpson's rule: smooth integrands, so
/// a fixed 256 intervals agree with adaptive quadrature to ~1e-9.
fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const N: usize = 256;
    let h = (b - a) / N as f64;
    let inner: f64 = (1..N)
        .map(|i| f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
        .sum();
    (f(a) + f(b) + inner) * h / 3.0
}

/// The (bands, rows) with `bands * rows <= num_perm` that minimize
/// `fp_weight * P(false positive) + fn_weight * P(false negative)`, the
/// probabilities being the areas under the collision curve below and
/// above `threshold` (the criterion datasketch's `MinHashLSH` uses).
///
/// ```
/// use vastdict_core::lsh::optimal_params;
/// assert_eq!(optimal_params(0.8, 128, 0.5, 0.5).unwrap(), (9, 13));
/// ```
pub fn optimal_params(
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> Result<(usize, usize)> {
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(Error::Invalid(format!(
            "threshold must be between 0 and 1 (exclusive), not {threshold}"
        )));
    }
    if num_perm == 0 || !(fp_weight >= 0.0 && fn_weight >= 0.0) || fp_weight + fn_weight <= 0.0 {
        return Err(Error::Invalid(
            "num_perm must be positive and the weights non-negative, not both zero".into(),
        ));
    }
    let mut best = (f64::INFINITY, (1, 1));
    for bands in 1..=num_perm {
        for rows in 1..=num_perm / bands {
            let fp = integrate(|s| collide(s, bands, rows), 0.0, threshold);
            let fneg = integrate(|s| 1.0 - collide(s, bands, rows), threshold, 1.0);
            let err = fp * fp_weight + fneg * fn_weight;
            if err < best.0 {
                best = (err, (bands, rows));
            }
        }
    }
    Ok(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_usual_choices() {
        // The values datasketch's `_optimal_param` gives.
        assert_eq!(optimal_params(0.5, 128, 0.5, 0.5).expect("valid"), (25, 5));
        assert_eq!(optimal_params(0.9, 128, 0.5, 0.5).expect("valid"), (5, 25));
        assert_eq!(optimal_params(0.8, 128, 0.1, 0.9).expect("valid"), (14, 9));
        assert!(optimal_params(1.0, 128, 0.5, 0.5).is_err());
    }
}
