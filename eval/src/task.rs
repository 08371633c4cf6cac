//! A benchmark task: documents, the requests each document makes (prompt format and few-shot
//! context exactly as lm-evaluation-harness builds them), and how responses become metrics.

use std::collections::BTreeMap;

use crate::request::{Request, Response};

/// How per-document values of a metric are combined (lm-eval's aggregation functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// Mean of per-document values; stderr = sample stddev / sqrt(n).
    Mean,
    /// exp(-mean(ll)) over per-document log-likelihoods (LAMBADA `perplexity`).
    Perplexity,
    /// exp(-Σll / Σweight): per-document value is (ll, weight) (`word_perplexity`, `byte_perplexity`).
    WeightedPerplexity,
    /// -Σll / Σbytes / ln 2 (`bits_per_byte`).
    BitsPerByte,
    /// scikit-learn's binary `f1_score` over all documents' (gold, prediction) pairs; per
    /// document `value` is the gold label and `weight` the predicted one.
    F1,
    /// scikit-learn's `matthews_corrcoef` over (gold, prediction) pairs, stored as for `F1`.
    Mcc,
    /// scikit-learn's `f1_score(average="weighted")` over (gold, prediction) pairs
    /// (`lm_eval.utils.weighted_f1_score`); no stderr, as in lm-eval.
    WeightedF1,
}

/// One metric value of one document. For weighted aggregations `weight` is the word or byte count.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    pub value: f64,
    pub weight: f64,
}

/// What a task reports about one document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocResult {
    /// metric name (lm-eval's, with filter suffix where lm-eval has one, e.g. `exact_match,strict-match`
    /// is written as metric `exact_match` and filter `strict-match` in [`MetricSpec`]) -> value
    pub metrics: BTreeMap<String, MetricValue>,
    /// Human-readable prediction and target for the samples file.
    pub prediction: String,
    pub target: String,
    /// Index of the gold request of a multiple-choice document (the one whose log-likelihood
    /// is the right answer's); `None` for other output types.
    pub gold: Option<usize>,
    /// Filter name -> the answer it extracted from the prediction (lm-eval's `filtered_resps`),
    /// for tasks with filters (gsm8k's `strict-match`, `flexible-extract`).
    pub filtered: BTreeMap<String, String>,
}

/// A metric a task reports.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// lm-eval metric name (`acc`, `acc_norm`, `perplexity`, `word_perplexity`, `exact_match`, ...).
    pub name: String,
    /// lm-eval filter name (`none` unless the task defines filters, e.g. gsm8k's `strict-match`).
    pub filter: String,
    pub aggregation: Aggregation,
    pub higher_is_better: bool,
}

impl MetricSpec {
    pub fn new(name: &str, filter: &str, aggregation: Aggregation, higher_is_better: bool) -> Self {
        Self {
            name: name.into(),
            filter: filter.into(),
            aggregation,
            higher_is_better,
        }
    }
    /// The key a DocResult uses for this metric: `name,filter` (lm-eval's results key).
    pub fn key(&self) -> String {
        format!("{},{}", self.name, self.filter)
    }
}

pub trait Task: Send + Sync {
    /// lm-eval task name (`arc_easy`, `hellaswag`, `mmlu_anatomy`, ...).
    fn name(&self) -> &str;
    /// lm-eval's task version number for this prompt format (the `versions` entry).
    fn version(&self) -> f64;
    /// Number of evaluation documents.
    fn num_docs(&self) -> usize;
    /// Default few-shot count.
    fn default_shots(&self) -> usize;
    /// The requests of document `doc` with `shots` few-shot examples. Few-shot selection must be
    /// deterministic given (task, doc, shots).
    fn requests(&self, doc: usize, shots: usize) -> Vec<Request>;
    /// Metrics of document `doc` from the responses to its requests (same order).
    fn process(&self, doc: usize, responses: &[Response]) -> DocResult;
    /// The metrics this task reports, in report order.
    fn metrics(&self) -> Vec<MetricSpec>;
    /// A stable text identifying the task's data and prompt format, hashed into the task config
    /// hash (e.g. the data file's sha256 and the format version).
    fn fingerprint(&self) -> String;
    /// The most few-shot examples its pool holds (`None`: the task ignores `shots`). Asking for
    /// more is an error, as lm-eval's samplers raise one.
    fn max_shots(&self) -> Option<usize> {
        None
    }
    /// The dataset splits the task read (repository, config, split, commit, file hashes), written
    /// into the results file; empty for tasks with built-in data.
    fn datasets(&self) -> Vec<k2_archive::results_file::DatasetRecord> {
        Vec::new()
    }
    /// Chance level of the headline metric, where defined (for plots).
    fn chance(&self) -> Option<f64> {
        None
    }
}
