//! Aggregation of per-document metric values into task scores, as lm-evaluation-harness does it
//! (`lm_eval/api/metrics.py`).
//!
//! | [`Aggregation`] | value | stderr |
//! |---|---|---|
//! | `Mean` | mean of the values | `sample_stddev / sqrt(n)` with the (n − 1) denominator (`mean_stderr`) |
//! | `Perplexity` | `exp(−mean(ll))` | lm-eval's bootstrap ([`bootstrap_stderr`], 100000 resamples) |
//! | `WeightedPerplexity` | `exp(−Σll / Σweight)` | `None` |
//! | `BitsPerByte` | `−Σll / Σbytes / ln 2` | `None` |
//!
//! **The bootstrap.** lm-eval estimates the stderr of `perplexity` with a bootstrap: 100000
//! resamples in chunks of 1000, chunk `i` drawn with `random.Random(i).choices(xs, k=len(xs))`,
//! then the sample standard deviation of the resampled perplexities. [`bootstrap_stderr`] does the
//! same draws with k2's port of CPython's Mersenne Twister ([`crate::pyrandom`]), so the stderr is
//! lm-eval's own, not merely a similar estimate.
//!
//! **Stderrs that are `None`.** lm-eval has no stderr for `weighted_perplexity` / `bits_per_byte`
//! (`stderr_for_metric` returns `None` for them): k2 reports `None`, which the results writer
//! prints as `"N/A"`, the string lm-eval writes when it cannot compute a stderr. Like
//! lm-eval (`evaluator`: stderr only when `len(items) > 1`), `Mean` also gives `None` for fewer
//! than two documents.
//!
//! Groups (MMLU's `mmlu`, `mmlu_stem`, …) use [`weighted_group_mean`] (`weight_by_size: True`) and
//! [`pooled_sample_stderr`].

use crate::task::{Aggregation, DocResult, MetricSpec, MetricValue};

/// An aggregated metric: the score and its standard error where one is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub value: f64,
    pub stderr: Option<f64>,
}

/// Arithmetic mean (`mean`); NaN for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation with the (n − 1) denominator (`sample_stddev`); NaN for n < 2.
pub fn sample_stddev(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mu = mean(xs);
    (xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// `mean_stderr` = sample_stddev / sqrt(n); `None` for fewer than two values, as lm-eval
/// (which only computes a stderr when there is more than one item).
pub fn mean_stderr(xs: &[f64]) -> Option<f64> {
    (xs.len() > 1).then(|| sample_stddev(xs) / (xs.len() as f64).sqrt())
}

/// `perplexity` = exp(−mean(ll)) over per-document log-likelihoods (LAMBADA).
pub fn perplexity(lls: &[f64]) -> f64 {
    (-mean(lls)).exp()
}

/// lm-eval's default `bootstrap_iters`.
pub const BOOTSTRAP_ITERS: usize = 100_000;

/// lm-eval's `bootstrap_stderr(f, xs, iters)`: `iters / 1000` chunks of 1000 resamples (fewer
/// when `iters` < 1000), chunk `i` drawn by `random.Random(i).choices(xs, k=len(xs))`, i.e.
/// `xs[floor(random() * n)]` per draw; the result is the sample standard deviation of the `f` of
/// the resamples.
pub fn bootstrap_stderr(xs: &[f64], f: impl Fn(&[f64]) -> f64, iters: usize) -> f64 {
    bootstrap_stderr_of(xs, f, iters)
}

/// [`bootstrap_stderr`] over any items (the (gold, prediction) pairs of `f1` and `mcc`).
pub fn bootstrap_stderr_of<T: Copy>(xs: &[T], f: impl Fn(&[T]) -> f64, iters: usize) -> f64 {
    let chunk = iters.min(1000);
    let n = xs.len() as f64;
    let mut out = Vec::with_capacity(iters);
    let Some(&first) = xs.first() else {
        return f64::NAN;
    };
    let mut draw = vec![first; xs.len()];
    for i in 0..iters.checked_div(chunk).unwrap_or(0) {
        let mut rng = crate::pyrandom::PyRandom::new(i as i64);
        for _ in 0..chunk {
            for d in draw.iter_mut() {
                *d = xs[(rng.random() * n).floor() as usize];
            }
            out.push(f(&draw));
        }
    }
    sample_stddev(&out)
}

/// `weighted_mean` = Σa / Σb over (a, b) pairs.
pub fn weighted_mean(pairs: &[(f64, f64)]) -> f64 {
    let a: f64 = pairs.iter().map(|p| p.0).sum();
    let b: f64 = pairs.iter().map(|p| p.1).sum();
    a / b
}

/// `weighted_perplexity` = exp(−Σll / Σweight) (`word_perplexity`, `byte_perplexity`).
pub fn weighted_perplexity(pairs: &[(f64, f64)]) -> f64 {
    (-weighted_mean(pairs)).exp()
}

/// `bits_per_byte` = −Σll / Σbytes / ln 2.
pub fn bits_per_byte(pairs: &[(f64, f64)]) -> f64 {
    -weighted_mean(pairs) / std::f64::consts::LN_2
}

/// Aggregate one metric's per-document values. For `Mean` and `Perplexity` only `value` is used;
/// for the weighted aggregations `value` is the log-likelihood and `weight` the word/byte count.
/// See the module docs for which stderrs are `None`.
pub fn aggregate(aggregation: Aggregation, values: &[MetricValue]) -> Aggregate {
    let xs: Vec<f64> = values.iter().map(|v| v.value).collect();
    let pairs: Vec<(f64, f64)> = values.iter().map(|v| (v.value, v.weight)).collect();
    match aggregation {
        Aggregation::Mean => Aggregate {
            value: mean(&xs),
            stderr: mean_stderr(&xs),
        },
        Aggregation::Perplexity => Aggregate {
            value: perplexity(&xs),
            stderr: (xs.len() > 1).then(|| bootstrap_stderr(&xs, perplexity, BOOTSTRAP_ITERS)),
        },
        Aggregation::WeightedPerplexity => Aggregate {
            value: weighted_perplexity(&pairs),
            stderr: None,
        },
        Aggregation::BitsPerByte => Aggregate {
            value: bits_per_byte(&pairs),
            stderr: None,
        },
        Aggregation::WeightedF1 => Aggregate {
            value: f1_weighted(&pairs),
            stderr: None,
        },
        Aggregation::F1 | Aggregation::Mcc => {
            let f = if aggregation == Aggregation::F1 {
                f1_binary
            } else {
                matthews_corrcoef
            };
            Aggregate {
                value: f(&pairs),
                stderr: (pairs.len() > 1).then(|| bootstrap_stderr_of(&pairs, f, BOOTSTRAP_ITERS)),
            }
        }
    }
}

/// scikit-learn's `f1_score(golds, preds)` (binary, positive label 1, 0 when undefined) over
/// (gold, prediction) pairs.
pub fn f1_binary(pairs: &[(f64, f64)]) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for &(g, p) in pairs {
        match (g == 1.0, p == 1.0) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fn_ += 1.0,
            _ => {}
        }
    }
    let d = 2.0 * tp + fp + fn_;
    if d == 0.0 {
        0.0
    } else {
        2.0 * tp / d
    }
}

/// scikit-learn's `f1_score(golds, preds, average="weighted")`: each label's F1 weighted by its
/// count among the golds.
pub fn f1_weighted(pairs: &[(f64, f64)]) -> f64 {
    let mut labels: Vec<f64> = pairs.iter().flat_map(|&(g, p)| [g, p]).collect();
    labels.sort_by(f64::total_cmp);
    labels.dedup();
    let (mut num, mut den) = (0.0, 0.0);
    for l in labels {
        let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
        for &(g, p) in pairs {
            match (g == l, p == l) {
                (true, true) => tp += 1.0,
                (false, true) => fp += 1.0,
                (true, false) => fn_ += 1.0,
                _ => {}
            }
        }
        let support = tp + fn_;
        let d = 2.0 * tp + fp + fn_;
        let f1 = if d == 0.0 { 0.0 } else { 2.0 * tp / d };
        num += f1 * support;
        den += support;
    }
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// scikit-learn's `matthews_corrcoef(golds, preds)` (multi-class; 0 when undefined) over
/// (gold, prediction) pairs.
pub fn matthews_corrcoef(pairs: &[(f64, f64)]) -> f64 {
    let mut labels: Vec<f64> = pairs.iter().flat_map(|&(g, p)| [g, p]).collect();
    labels.sort_by(f64::total_cmp);
    labels.dedup();
    let k = labels.len();
    let idx = |x: f64| labels.iter().position(|&l| l == x).unwrap_or(0);
    let mut t = vec![0.0; k];
    let mut p = vec![0.0; k];
    let mut c = 0.0;
    for &(g, pr) in pairs {
        t[idx(g)] += 1.0;
        p[idx(pr)] += 1.0;
        if g == pr {
            c += 1.0;
        }
    }
    let s = pairs.len() as f64;
    let tp: f64 = t.iter().zip(&p).map(|(a, b)| a * b).sum();
    let pp: f64 = p.iter().map(|x| x * x).sum();
    let tt: f64 = t.iter().map(|x| x * x).sum();
    let cov_ytyp = c * s - tp;
    let cov_ypyp = s * s - pp;
    let cov_ytyt = s * s - tt;
    if cov_ypyp * cov_ytyt == 0.0 {
        0.0
    } else {
        cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
    }
}

/// Aggregate metric `spec` over the documents' results: the values stored under `spec.key()`
/// (`name,filter`), in document order. Documents that lack the key are skipped (a task reports
/// every metric for every document, so this only happens with foreign `DocResult`s).
pub fn aggregate_docs(spec: &MetricSpec, docs: &[DocResult]) -> Aggregate {
    let key = spec.key();
    let values: Vec<MetricValue> = docs
        .iter()
        .filter_map(|d| d.metrics.get(&key).cloned())
        .collect();
    aggregate(spec.aggregation, &values)
}

/// Size-weighted mean of subtask scores (lm-eval `aggregate_subtask_metrics` with
/// `weight_by_size: True`): Σ value·n / Σ n over `(value, n docs)`.
pub fn weighted_group_mean(parts: &[(f64, usize)]) -> f64 {
    let num: f64 = parts.iter().map(|&(v, n)| v * n as f64).sum();
    let den: f64 = parts.iter().map(|&(_, n)| n as f64).sum();
    num / den
}

/// lm-eval's `pooled_sample_stderr`: the stderr of a size-weighted group score from the subtasks'
/// stderrs and sizes, via the pooled variance
/// `Σ (n_i − 1)·se_i²·n_i / (Σ n_i − k)`, then `sqrt(pooled / Σ n_i)`.
/// (It ignores the spread between subtask means, as lm-eval does.)
///
/// # Panics
/// If the two slices differ in length (lm-eval asserts the same).
pub fn pooled_sample_stderr(stderrs: &[f64], sizes: &[usize]) -> f64 {
    assert_eq!(stderrs.len(), sizes.len(), "one stderr per subtask size");
    let total: f64 = sizes.iter().map(|&n| n as f64).sum();
    let num: f64 = stderrs
        .iter()
        .zip(sizes)
        .map(|(&se, &n)| (n as f64 - 1.0) * se * se * n as f64)
        .sum();
    let pooled_var = num / (total - sizes.len() as f64);
    (pooled_var / total).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_stderr_of_one_subtask_is_its_stderr() {
        let se = mean_stderr(&[1.0, 0.0, 1.0, 1.0]).unwrap();
        assert!((pooled_sample_stderr(&[se], &[4]) - se).abs() < 1e-15);
    }
}
