//! Aggregation numbers on hand-computed cases (values checked with Python's `math`).

use k2_eval::metrics::{
    aggregate, aggregate_docs, bits_per_byte, mean, mean_stderr, perplexity, pooled_sample_stderr,
    sample_stddev, weighted_group_mean, weighted_perplexity,
};
use k2_eval::{Aggregation, DocResult, MetricSpec, MetricValue};

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} != {b}");
}

fn vals(xs: &[(f64, f64)]) -> Vec<MetricValue> {
    xs.iter()
        .map(|&(value, weight)| MetricValue { value, weight })
        .collect()
}

#[test]
fn mean_and_stderr() {
    let xs = [1.0, 0.0, 1.0, 1.0];
    close(mean(&xs), 0.75);
    // Σ(x − 0.75)² = 0.75, / (n − 1) = 0.25, stddev 0.5, / sqrt(4) = 0.25
    close(sample_stddev(&xs), 0.5);
    close(mean_stderr(&xs).unwrap(), 0.25);
    let a = aggregate(
        Aggregation::Mean,
        &vals(&[(1.0, 1.0), (0.0, 1.0), (1.0, 1.0), (1.0, 1.0)]),
    );
    close(a.value, 0.75);
    close(a.stderr.unwrap(), 0.25);
    // lm-eval computes no stderr for a single item
    assert_eq!(mean_stderr(&[1.0]), None);
    assert_eq!(
        aggregate(Aggregation::Mean, &vals(&[(1.0, 1.0)])).stderr,
        None
    );
}

#[test]
fn perplexity_is_exp_of_minus_mean_ll_with_the_bootstrap_stderr() {
    close(perplexity(&[-1.0, -2.0, -3.0]), 7.38905609893065);
    let a = aggregate(
        Aggregation::Perplexity,
        &vals(&[(-1.0, 1.0), (-2.0, 1.0), (-3.0, 1.0)]),
    );
    close(a.value, 7.38905609893065);
    // lm_eval 0.4.13: bootstrap_stderr(perplexity, [-1.0, -2.0, -3.0], 100000).
    assert_eq!(a.stderr, Some(3.973436005477724));
}

#[test]
fn weighted_perplexity_and_bits_per_byte() {
    // Σll = −30, Σw = 20
    let pairs = [(-10.0, 5.0), (-20.0, 15.0)];
    close(weighted_perplexity(&pairs), 4.4816890703380645);
    close(bits_per_byte(&pairs), 2.1640425613334453);
    let a = aggregate(Aggregation::WeightedPerplexity, &vals(&pairs));
    close(a.value, 4.4816890703380645);
    assert_eq!(a.stderr, None);
    let b = aggregate(Aggregation::BitsPerByte, &vals(&pairs));
    close(b.value, 2.1640425613334453);
    assert_eq!(b.stderr, None);
    // byte_perplexity = 2^bits_per_byte
    close(2f64.powf(b.value), a.value);
}

#[test]
fn group_mean_and_pooled_stderr() {
    close(weighted_group_mean(&[(0.5, 10), (0.8, 30)]), 0.725);
    close(
        pooled_sample_stderr(&[0.1, 0.2], &[10, 30]),
        0.1532541748379572,
    );
    // From per-subtask 0/1 scores: a = [1,0,1,0], b = [1,1,0,0,1,0]
    let a = [1.0, 0.0, 1.0, 0.0];
    let b = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
    let (sa, sb) = (mean_stderr(&a).unwrap(), mean_stderr(&b).unwrap());
    close(sa, 0.28867513459481287);
    close(sb, 0.22360679774997896);
    close(pooled_sample_stderr(&[sa, sb], &[4, 6]), 0.1767766952966369);
}

#[test]
fn aggregate_docs_picks_values_by_metric_key() {
    let mut docs = Vec::new();
    for (acc, ll) in [(1.0, -1.0), (0.0, -3.0)] {
        let mut d = DocResult::default();
        d.metrics.insert(
            "acc,none".into(),
            MetricValue {
                value: acc,
                weight: 1.0,
            },
        );
        d.metrics.insert(
            "perplexity,none".into(),
            MetricValue {
                value: ll,
                weight: 1.0,
            },
        );
        docs.push(d);
    }
    let acc = aggregate_docs(
        &MetricSpec::new("acc", "none", Aggregation::Mean, true),
        &docs,
    );
    close(acc.value, 0.5);
    // values 1, 0: stddev sqrt(0.5), / sqrt(2) = 0.5
    close(acc.stderr.unwrap(), 0.5);
    let ppl = aggregate_docs(
        &MetricSpec::new("perplexity", "none", Aggregation::Perplexity, false),
        &docs,
    );
    close(ppl.value, 2f64.exp());
}

/// lm-eval's bootstrap stderr of perplexity, drawn as lm-eval draws it. Reference values from
/// lm_eval 0.4.13 on Python 3.11: `bootstrap_stderr(perplexity, xs, iters)` with
/// `DISABLE_MULTIPROC=1` (the multiprocessing path draws the same chunks).
#[test]
fn perplexity_bootstrap_stderr_equals_lm_evals() {
    let xs: Vec<f64> = (0..23).map(|i| -((i % 7) as f64) * 0.37 - 1.1).collect();
    let full = k2_eval::metrics::bootstrap_stderr(&xs, k2_eval::metrics::perplexity, 100_000);
    assert_eq!(full, 1.3524714127801545);
    let short = k2_eval::metrics::bootstrap_stderr(&xs, k2_eval::metrics::perplexity, 500);
    assert_eq!(short, 1.3934570550919823);
}
