//! The significance tests of the longitudinal analyses, each checked against scipy / statsmodels
//! (`tests/fixtures/gen_stats_fixtures.py`):
//!
//! * [`binomial_sf`]: `P(X >= k)` for `X ~ Binomial(n, p)` (`scipy.stats.binom.sf(k - 1, n, p)`),
//!   the one-sided exact binomial test of "accuracy above chance"
//!   (`binomtest(k, n, p, alternative="greater")`).
//! * [`mcnemar_exact`]: the exact (binomial) McNemar test of two paired accuracies from the
//!   discordant counts, `min(1, 2 * P(X <= min(b, c)))` with `X ~ Binomial(b + c, 1/2)`
//!   (statsmodels' `mcnemar(exact=True)`; scipy's `binomtest(b, b + c, 0.5)`).
//! * [`holm`]: Holm's step-down adjusted p-values (statsmodels' `multipletests(method="holm")`).
//! * [`paired_bootstrap`]: a percentile bootstrap of the mean paired difference with a fixed seed;
//!   the resample indices come from [`SplitMix64`] (`(x * n) >> 64`), so a Python reimplementation
//!   draws the same resamples and `numpy.percentile` gives the same interval.
//! * [`paired_accuracy_ci`]: the Wald interval of a difference of paired proportions
//!   (Agresti, *Categorical Data Analysis*, 10.1.2).
//!
//! Probabilities are summed in log space (`ln C(n, k)` from summed logarithms), so they do not
//! underflow for thousands of items.

/// The two-sided normal quantile of a 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Default bootstrap resamples.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
/// Default bootstrap seed.
pub const BOOTSTRAP_SEED: u64 = 1234;

/// Significance level of every test the reports mark.
pub const ALPHA: f64 = 0.05;

/// `ln(n!)` for every `n <= max`.
fn ln_factorials(max: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(max as usize + 1);
    let mut acc = 0.0f64;
    out.push(0.0);
    for i in 1..=max {
        acc += (i as f64).ln();
        out.push(acc);
    }
    out
}

/// `ln P(X = k)` for every `k` in `0..=n`, `X ~ Binomial(n, p)`.
fn ln_pmf(n: u64, p: f64) -> Vec<f64> {
    let lf = ln_factorials(n);
    (0..=n)
        .map(|k| {
            let c = lf[n as usize] - lf[k as usize] - lf[(n - k) as usize];
            let a = if k == 0 { 0.0 } else { k as f64 * p.ln() };
            let b = if k == n {
                0.0
            } else {
                (n - k) as f64 * (1.0 - p).ln()
            };
            c + a + b
        })
        .collect()
}

/// `ln(sum(exp(xs)))`.
fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// `P(X >= k)`, `X ~ Binomial(n, p)`; 1 for `k == 0`, 0 for `k > n`.
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let l = ln_pmf(n, p);
    log_sum_exp(&l[k as usize..]).exp().min(1.0)
}

/// `P(X <= k)`, `X ~ Binomial(n, p)`.
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let l = ln_pmf(n, p);
    log_sum_exp(&l[..=k as usize]).exp().min(1.0)
}

/// Exact McNemar p-value from the discordant counts: `b` items right only on one side, `c` only
/// on the other. 1 when there are none.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    (2.0 * binomial_cdf(b.min(c), n, 0.5)).min(1.0)
}

/// Holm-adjusted p-values, in the input's order (NaN stays NaN and is not counted).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    out
}

/// Sebastiano Vigna's SplitMix64: the bootstrap's seeded generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A uniform index below `n` (`(x * n) >> 64`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// A difference with its 95% interval and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Difference {
    /// `B - A`.
    pub diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
}

impl Difference {
    pub fn significant(&self) -> bool {
        self.p_value < ALPHA
    }
}

/// `numpy.percentile(sorted, q)` with linear interpolation, `sorted` ascending and non-empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Paired bootstrap of `mean(b - a)`: `resamples` draws of `n` indices with replacement from
/// [`SplitMix64`]`(seed)` (row by row), the 2.5th and 97.5th percentiles of the resampled means,
/// and the two-sided p-value `min(1, 2 * min(P*(mean <= 0), P*(mean >= 0)))`. Pairs with a
/// non-finite value on either side are dropped first. `None` when no pair is left.
pub fn paired_bootstrap(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> Option<Difference> {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| y - x)
        .collect();
    if d.is_empty() || resamples == 0 {
        return None;
    }
    let n = d.len();
    let mut rng = SplitMix64::new(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut s = 0.0;
            for _ in 0..n {
                s += d[rng.below(n)];
            }
            s / n as f64
        })
        .collect();
    let le = means.iter().filter(|&&m| m <= 0.0).count() as f64 / resamples as f64;
    let ge = means.iter().filter(|&&m| m >= 0.0).count() as f64 / resamples as f64;
    means.sort_by(f64::total_cmp);
    Some(Difference {
        diff: d.iter().sum::<f64>() / n as f64,
        ci_low: percentile(&means, 2.5),
        ci_high: percentile(&means, 97.5),
        p_value: (2.0 * le.min(ge)).min(1.0),
    })
}

/// Two paired accuracies: `n` items, `b` right only on side A (B lost them), `c` right only on
/// side B. The difference `(c - b) / n`, its Wald interval and the exact McNemar p-value.
pub fn paired_accuracy(n: u64, b: u64, c: u64) -> Difference {
    let (ci_low, ci_high) = paired_accuracy_ci(n, b, c);
    Difference {
        diff: if n == 0 {
            0.0
        } else {
            (c as f64 - b as f64) / n as f64
        },
        ci_low,
        ci_high,
        p_value: mcnemar_exact(b, c),
    }
}

/// The 95% Wald interval of `(c - b) / n`: `se = sqrt((b + c) - (c - b)^2 / n) / n`.
pub fn paired_accuracy_ci(n: u64, b: u64, c: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let (n, b, c) = (n as f64, b as f64, c as f64);
    let d = (c - b) / n;
    let se = ((b + c) - (c - b).powi(2) / n).max(0.0).sqrt() / n;
    (d - Z95 * se, d + Z95 * se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // P(X >= 3), X ~ Bin(3, 1/2) = 1/8.
        assert!((binomial_sf(3, 3, 0.5) - 0.125).abs() < 1e-15);
        // P(X <= 1), X ~ Bin(4, 1/2) = 5/16; McNemar(1, 3) = 10/16.
        assert!((binomial_cdf(1, 4, 0.5) - 5.0 / 16.0).abs() < 1e-15);
        assert!((mcnemar_exact(1, 3) - 0.625).abs() < 1e-15);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(2, 2), 1.0);
        // Holm of [0.01, 0.04, 0.03]: sorted 0.01*3, 0.03*2, max(0.06, 0.04*1).
        let h = holm(&[0.01, 0.04, 0.03]);
        assert_eq!(h, vec![0.03, 0.06, 0.06]);
    }

    #[test]
    fn large_counts_do_not_underflow() {
        let p = binomial_sf(1100, 2000, 0.5);
        assert!(p > 0.0 && p < 1e-5, "{p}");
        assert!(mcnemar_exact(500, 700) > 0.0);
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // Vigna's splitmix64.c with seed 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn bootstrap_of_constant_differences_is_exact() {
        let a = [0.0; 10];
        let b = [1.0; 10];
        let d = paired_bootstrap(&a, &b, 100, 7).unwrap();
        assert_eq!(
            (d.diff, d.ci_low, d.ci_high, d.p_value),
            (1.0, 1.0, 1.0, 0.0)
        );
        assert!(paired_bootstrap(&[f64::NAN], &[1.0], 10, 1).is_none());
    }
}
