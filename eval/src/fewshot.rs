//! lm-evaluation-harness's few-shot samplers and prompt assembly (lm_eval/api/samplers.py,
//! task.py `fewshot_context`), plus the shared multiple-choice task machinery the
//! `tasks::*` multiple-choice tasks are built on.
//!
//! * `ContextSampler` ("default"): one `random.Random(fewshot_seed)` per task, shared across
//!   documents, `rnd.sample(pool, n)` per document *in document order*; when the few-shot split is
//!   the eval split it draws `n + 1` and drops the evaluated document (`[x for x in fewshotex if
//!   x != doc][:n]`). Few-shot sets of document i therefore depend on the draws of documents
//!   0..i-1: [`context_sampler_fewshot`] precomputes them for all documents at once.
//!   With 0 shots lm-eval never calls the sampler, so nothing is drawn.
//! * `FirstNSampler` ("first_n"): `pool[:n]` (MMLU's dev split), then the same `x != doc` filter.
//! * Prompt: `description + Σ_k (text_k + target_delimiter + target_k + fewshot_delimiter) + text`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use k2_archive::results_file::DatasetRecord;

use crate::datasets::SplitRows;
use crate::pyrandom::PyRandom;
use crate::request::{Request, Response};
use crate::task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};

/// lm-eval's default few-shot seed (`DEFAULT_OTHER_SEED`, `--fewshot_random_seed`).
pub const DEFAULT_FEWSHOT_SEED: u64 = 1234;
/// lm-eval's default `target_delimiter`.
pub const TARGET_DELIMITER: &str = " ";
/// lm-eval's default `fewshot_delimiter`.
pub const FEWSHOT_DELIMITER: &str = "\n\n";

/// The raw draws of lm-eval's `ContextSampler` for documents 0..n_docs: draw i is
/// `rnd.sample(pool, n_samples)` on one `random.Random(seed)` stream. `n_samples` is clamped to
/// the pool size (Python would raise `ValueError`).
pub fn context_sampler_draws(
    pool_len: usize,
    n_docs: usize,
    n_samples: usize,
    seed: u64,
) -> Vec<Vec<usize>> {
    let k = n_samples.min(pool_len);
    let mut rnd = PyRandom::from_u128(seed as u128);
    (0..n_docs)
        .map(|_| rnd.sample_indices(pool_len, k))
        .collect()
}

/// Few-shot pool indices of documents 0..n_docs under lm-eval's `ContextSampler`.
///
/// `draw_extra`: lm-eval draws `shots + 1` when `config.fewshot_split == config.test_split`
/// (true whenever the few-shot pool is the eval split, and also — a quirk — when both are unset,
/// as for hellaswag). `is_same(doc, pool_idx)` is lm-eval's `x == doc` (dict equality of the
/// processed documents); the matching pool entries are dropped before truncating to `shots`.
/// With `shots == 0` nothing is drawn (lm-eval skips the sampler).
pub fn context_sampler_fewshot(
    pool_len: usize,
    n_docs: usize,
    shots: usize,
    seed: u64,
    draw_extra: bool,
    is_same: impl Fn(usize, usize) -> bool,
) -> Vec<Vec<usize>> {
    if shots == 0 {
        return vec![Vec::new(); n_docs];
    }
    let n_samples = if draw_extra { shots + 1 } else { shots };
    context_sampler_draws(pool_len, n_docs, n_samples, seed)
        .into_iter()
        .enumerate()
        .map(|(doc, draw)| {
            draw.into_iter()
                .filter(|&p| !is_same(doc, p))
                .take(shots)
                .collect()
        })
        .collect()
}

/// lm-eval's `FirstNSampler` for one document: `pool[:shots]` without entries equal to the doc.
pub fn first_n_fewshot(
    pool_len: usize,
    shots: usize,
    is_same_as_doc: impl Fn(usize) -> bool,
) -> Vec<usize> {
    (0..shots.min(pool_len))
        .filter(|&p| !is_same_as_doc(p))
        .collect()
}

/// lm-eval's prompt assembly: `description + Σ (text_k + target_delimiter + target_k +
/// fewshot_delimiter) + text`.
pub fn assemble_prompt(
    description: &str,
    examples: &[(String, String)],
    target_delimiter: &str,
    fewshot_delimiter: &str,
    text: &str,
) -> String {
    let mut s = String::from(description);
    for (q, a) in examples {
        s.push_str(q);
        if !a.is_empty() {
            s.push_str(target_delimiter);
            s.push_str(a);
            s.push_str(fewshot_delimiter);
        }
    }
    s.push_str(text);
    s
}

/// Lazily computed few-shot index lists per shot count (the shared-stream sampler needs all
/// earlier documents' draws, so a whole table is computed once per `shots`).
#[derive(Debug, Default)]
pub struct FewshotCache {
    tables: Mutex<HashMap<usize, Arc<Vec<Vec<usize>>>>>,
}

impl FewshotCache {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn get(
        &self,
        shots: usize,
        compute: impl FnOnce() -> Vec<Vec<usize>>,
    ) -> Arc<Vec<Vec<usize>>> {
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        t.entry(shots)
            .or_insert_with(|| Arc::new(compute()))
            .clone()
    }
}

/// sha256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `acc` / `acc_norm` as lm-eval computes them: first argmax (numpy) of the log-likelihoods,
/// and of the log-likelihoods divided by the choices' **character** lengths.
pub fn argmax_first(xs: &[f64]) -> usize {
    // numpy's argmax returns the first NaN if there is one, else the first maximum.
    if let Some(i) = xs.iter().position(|x| x.is_nan()) {
        return i;
    }
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// The `acc` (and optionally `acc_norm`) metrics of one multiple-choice document.
pub fn mc_metrics(lls: &[f64], choices: &[String], gold: usize, with_norm: bool) -> DocResult {
    let mut metrics = BTreeMap::new();
    let pred = argmax_first(lls);
    metrics.insert(
        "acc,none".to_string(),
        MetricValue {
            value: if pred == gold { 1.0 } else { 0.0 },
            weight: 1.0,
        },
    );
    if with_norm {
        let normed: Vec<f64> = lls
            .iter()
            .zip(choices)
            .map(|(ll, c)| ll / c.chars().count() as f64)
            .collect();
        let pn = argmax_first(&normed);
        metrics.insert(
            "acc_norm,none".to_string(),
            MetricValue {
                value: if pn == gold { 1.0 } else { 0.0 },
                weight: 1.0,
            },
        );
    }
    DocResult {
        metrics,
        prediction: choices.get(pred).cloned().unwrap_or_default(),
        target: choices.get(gold).cloned().unwrap_or_default(),
        gold: Some(gold),
        ..Default::default()
    }
}

/// `acc` / `acc_norm` metric specs.
pub fn mc_metric_specs(with_norm: bool) -> Vec<MetricSpec> {
    let mut v = vec![MetricSpec::new("acc", "none", Aggregation::Mean, true)];
    if with_norm {
        v.push(MetricSpec::new("acc_norm", "none", Aggregation::Mean, true));
    }
    v
}

/// One processed multiple-choice document (lm-eval's `doc_to_text`, `doc_to_choice`,
/// `doc_to_target` already applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McDoc {
    /// `doc_to_text(doc)`.
    pub text: String,
    /// `doc_to_choice(doc)`.
    pub choices: Vec<String>,
    /// Index of the gold choice.
    pub gold: usize,
}

/// Where few-shot examples come from.
#[derive(Debug, Clone)]
pub enum FewshotSource {
    /// `ContextSampler` over the eval docs themselves: draws `shots + 1` and drops the evaluated
    /// doc. `content_identity`: lm-eval's `x != doc` compares whole documents; when the raw docs
    /// carry a unique id only the doc itself matches (false), otherwise every doc with identical
    /// content is dropped (true).
    EvalSplitRandom { seed: u64, content_identity: bool },
    /// `ContextSampler` over a separate split (the YAML's `fewshot_split`, else its
    /// `training_split`). `draw_extra`: lm-eval draws `shots + 1` when `fewshot_split ==
    /// test_split` in the YAML (both unset for hellaswag, piqa, winogrande, boolq), then drops
    /// pool docs equal to the evaluated one.
    SplitRandom {
        pool: Vec<McDoc>,
        seed: u64,
        draw_extra: bool,
    },
    /// `FirstNSampler` over a separate few-shot split (MMLU dev).
    FirstN(Vec<McDoc>),
    /// Zero-shot only: the few-shot split was not loaded.
    None,
}

/// A multiple-choice task (lm-eval `output_type: multiple_choice`), generic over the data.
#[derive(Debug)]
pub struct McTask {
    pub name: String,
    pub version: f64,
    pub docs: Vec<McDoc>,
    pub description: String,
    pub fewshot: FewshotSource,
    /// Report `acc_norm` besides `acc`.
    pub acc_norm: bool,
    pub fingerprint: String,
    pub default_shots: usize,
    /// The dataset splits read (for the results file).
    pub datasets: Vec<DatasetRecord>,
    cache: FewshotCache,
}

/// A fingerprint of a task's data and prompt format: name, the splits read, version, format id.
pub fn data_fingerprint(
    name: &str,
    splits: &[&SplitRows],
    version: f64,
    format_id: &str,
) -> String {
    let data: Vec<String> = splits.iter().map(|s| s.fingerprint()).collect();
    format!("{name}|{}|v{version}|{format_id}", data.join("|"))
}

impl McTask {
    /// A multiple-choice task read from its eval split, with lm-eval's `ContextSampler` over the
    /// few-shot split when it was loaded (`None` for a zero-shot run); `docs` turns a split's
    /// rows into documents. Fingerprinted by the splits read, the version and the format id.
    #[allow(clippy::too_many_arguments)]
    pub fn from_splits(
        name: &str,
        version: f64,
        eval: &SplitRows,
        fewshot: Option<&SplitRows>,
        docs: fn(&SplitRows) -> crate::Result<Vec<McDoc>>,
        draw_extra: bool,
        format_id: &str,
        acc_norm: bool,
    ) -> crate::Result<Self> {
        let mut splits = vec![eval];
        let source = match fewshot {
            Some(rows) => {
                splits.push(rows);
                FewshotSource::SplitRandom {
                    pool: docs(rows)?,
                    seed: DEFAULT_FEWSHOT_SEED,
                    draw_extra,
                }
            }
            None => FewshotSource::None,
        };
        let fp = data_fingerprint(name, &splits, version, format_id);
        let mut t = Self::new(name, version, docs(eval)?, "", source, acc_norm, fp, 0);
        t.datasets = splits.iter().map(|s| s.record.clone()).collect();
        Ok(t)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: impl Into<String>,
        version: f64,
        docs: Vec<McDoc>,
        description: impl Into<String>,
        fewshot: FewshotSource,
        acc_norm: bool,
        fingerprint: String,
        default_shots: usize,
    ) -> Self {
        Self {
            name: name.into(),
            version,
            docs,
            description: description.into(),
            fewshot,
            acc_norm,
            fingerprint,
            default_shots,
            datasets: Vec::new(),
            cache: FewshotCache::new(),
        }
    }

    /// The few-shot documents of `doc` with `shots` shots.
    pub fn fewshot_docs(&self, doc: usize, shots: usize) -> Vec<&McDoc> {
        if shots == 0 {
            return Vec::new();
        }
        match &self.fewshot {
            FewshotSource::EvalSplitRandom {
                seed,
                content_identity,
            } => {
                let table = self.cache.get(shots, || {
                    context_sampler_fewshot(
                        self.docs.len(),
                        self.docs.len(),
                        shots,
                        *seed,
                        true,
                        |d, p| {
                            if *content_identity {
                                self.docs[d] == self.docs[p]
                            } else {
                                d == p
                            }
                        },
                    )
                });
                table[doc].iter().map(|&p| &self.docs[p]).collect()
            }
            FewshotSource::SplitRandom {
                pool,
                seed,
                draw_extra,
            } => {
                let table = self.cache.get(shots, || {
                    context_sampler_fewshot(
                        pool.len(),
                        self.docs.len(),
                        shots,
                        *seed,
                        *draw_extra,
                        |d, p| self.docs[d] == pool[p],
                    )
                });
                table[doc].iter().map(|&p| &pool[p]).collect()
            }
            FewshotSource::FirstN(pool) => {
                first_n_fewshot(pool.len(), shots, |p| pool[p] == self.docs[doc])
                    .into_iter()
                    .map(|p| &pool[p])
                    .collect()
            }
            FewshotSource::None => Vec::new(),
        }
    }

    /// The full context of `doc` (description + few-shot examples + `doc_to_text`).
    pub fn context(&self, doc: usize, shots: usize) -> String {
        let ex: Vec<(String, String)> = self
            .fewshot_docs(doc, shots)
            .into_iter()
            .map(|d| (d.text.clone(), d.choices[d.gold].clone()))
            .collect();
        assemble_prompt(
            &self.description,
            &ex,
            TARGET_DELIMITER,
            FEWSHOT_DELIMITER,
            &self.docs[doc].text,
        )
    }

    /// Mean over docs of 1 / number of choices.
    pub fn mean_inverse_choices(&self) -> Option<f64> {
        if self.docs.is_empty() {
            return None;
        }
        let s: f64 = self.docs.iter().map(|d| 1.0 / d.choices.len() as f64).sum();
        Some(s / self.docs.len() as f64)
    }
}

impl Task for McTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> f64 {
        self.version
    }
    fn num_docs(&self) -> usize {
        self.docs.len()
    }
    /// The eval split less the document itself (`shots + 1` are drawn), or the few-shot split.
    fn max_shots(&self) -> Option<usize> {
        Some(match &self.fewshot {
            FewshotSource::EvalSplitRandom { .. } => self.docs.len().saturating_sub(1),
            FewshotSource::SplitRandom { pool, .. } | FewshotSource::FirstN(pool) => pool.len(),
            FewshotSource::None => 0,
        })
    }

    fn default_shots(&self) -> usize {
        self.default_shots
    }
    fn requests(&self, doc: usize, shots: usize) -> Vec<Request> {
        let ctx = self.context(doc, shots);
        self.docs[doc]
            .choices
            .iter()
            .map(|c| Request::Loglikelihood {
                context: ctx.clone(),
                continuation: format!("{TARGET_DELIMITER}{c}"),
            })
            .collect()
    }
    fn process(&self, doc: usize, responses: &[Response]) -> DocResult {
        let d = &self.docs[doc];
        let lls: Vec<f64> = responses.iter().map(Response::ll).collect();
        mc_metrics(&lls, &d.choices, d.gold, self.acc_norm)
    }
    fn metrics(&self) -> Vec<MetricSpec> {
        mc_metric_specs(self.acc_norm)
    }
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
    fn chance(&self) -> Option<f64> {
        self.mean_inverse_choices()
    }
    fn datasets(&self) -> Vec<DatasetRecord> {
        self.datasets.clone()
    }
}

/// Implements [`Task`] for a newtype around [`McTask`] (field `.0`) by delegation.
#[macro_export]
macro_rules! delegate_mc_task {
    ($t:ty) => {
        impl $crate::task::Task for $t {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn version(&self) -> f64 {
                self.0.version()
            }
            fn num_docs(&self) -> usize {
                self.0.num_docs()
            }
            fn default_shots(&self) -> usize {
                self.0.default_shots()
            }
            fn requests(&self, doc: usize, shots: usize) -> Vec<$crate::request::Request> {
                self.0.requests(doc, shots)
            }
            fn process(
                &self,
                doc: usize,
                responses: &[$crate::request::Response],
            ) -> $crate::task::DocResult {
                self.0.process(doc, responses)
            }
            fn metrics(&self) -> Vec<$crate::task::MetricSpec> {
                self.0.metrics()
            }
            fn max_shots(&self) -> Option<usize> {
                self.0.max_shots()
            }
            fn datasets(&self) -> Vec<k2_archive::results_file::DatasetRecord> {
                self.0.datasets()
            }
            fn fingerprint(&self) -> String {
                self.0.fingerprint()
            }
            fn chance(&self) -> Option<f64> {
                self.0.chance()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_assembly() {
        let ex = vec![
            ("Q1".to_string(), "a1".to_string()),
            ("Q2".into(), "a2".into()),
        ];
        assert_eq!(
            assemble_prompt("D\n\n", &ex, " ", "\n\n", "Q"),
            "D\n\nQ1 a1\n\nQ2 a2\n\nQ"
        );
    }

    #[test]
    fn drops_self_and_truncates() {
        let t = context_sampler_fewshot(5, 5, 4, 1234, true, |d, p| d == p);
        for (d, l) in t.iter().enumerate() {
            assert_eq!(l.len(), 4);
            assert!(!l.contains(&d));
        }
        assert!(context_sampler_fewshot(5, 3, 0, 1234, true, |d, p| d == p)
            .iter()
            .all(Vec::is_empty));
    }

    #[test]
    fn argmax_first_on_ties() {
        assert_eq!(argmax_first(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax_first(&[-1.0]), 0);
    }
}
