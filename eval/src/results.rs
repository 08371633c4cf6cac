//! Results files in lm-evaluation-harness's JSON layout (`results`, `versions`, `n-shot`,
//! `higher_is_better`, `n-samples`, `config` with `model_revision` and `model_sha`), one file per
//! (checkpoint, task), plus k2's own block: checkpoint, step, tokens seen, the weights' sha256,
//! the task config hash and the harness version that decide whether a result can be reused.
//! Files hold no timestamps, so a rerun writes identical bytes.

use std::collections::BTreeMap;
use std::path::Path;

use k2_archive::results_file::{read_lm_eval_file, K2Block, NSamples, ResultsConfig, ResultsFile};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;

/// Bumped whenever scoring or results semantics change: results of another version are recomputed.
pub const HARNESS_VERSION: &str = "k2-eval 0.1.0 (lm-eval 0.4 semantics)";

/// What identifies a result: the same key means the stored result is still valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultKey {
    pub weights_sha256: String,
    pub task_hash: String,
    pub harness_version: String,
    /// The `--dtype` asked for: `auto` (the checkpoint's `torch_dtype`; not written, so results
    /// from before dtypes existed keep their key) or `f32`/`bf16`/`f16`.
    #[serde(default = "auto_dtype", skip_serializing_if = "is_auto")]
    pub dtype: String,
}

fn auto_dtype() -> String {
    "auto".into()
}

fn is_auto(s: &str) -> bool {
    s == "auto"
}

/// Which checkpoint a result belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckpointInfo {
    /// Model path or repository as given.
    pub model: String,
    /// Revision / checkpoint name (`ckpt_0003`, `step1000`).
    pub revision: String,
    pub step: Option<u64>,
    pub tokens: Option<u64>,
    pub num_parameters: u64,
    /// The dtype the model ran in (transformers' name); empty: float32.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dtype: String,
    /// The device kind it ran on; empty: cpu.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
}

/// One metric's aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    pub name: String,
    pub filter: String,
    pub value: f64,
    pub stderr: Option<f64>,
    pub higher_is_better: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    pub task: String,
    pub version: f64,
    pub n_shot: usize,
    pub n_original: usize,
    pub n_effective: usize,
    pub metrics: Vec<MetricResult>,
    pub batch_size: usize,
    pub limit: Option<usize>,
    /// The dataset splits scored (empty for built-in data).
    pub datasets: Vec<k2_archive::results_file::DatasetRecord>,
}

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::String("NaN".into()), Value::Number)
}

/// The results file of one task on one checkpoint.
pub fn results_file(r: &TaskResult, ckpt: &CheckpointInfo, key: &ResultKey) -> ResultsFile {
    let mut res = BTreeMap::new();
    res.insert("alias".to_string(), Value::String(r.task.clone()));
    let mut hib = BTreeMap::new();
    for m in &r.metrics {
        res.insert(format!("{},{}", m.name, m.filter), num(m.value));
        res.insert(
            format!("{}_stderr,{}", m.name, m.filter),
            m.stderr.map_or(Value::String("N/A".into()), num),
        );
        hib.insert(m.name.clone(), m.higher_is_better);
    }
    let task = || r.task.clone();
    ResultsFile {
        config: ResultsConfig {
            batch_size: r.batch_size,
            device: if ckpt.device.is_empty() {
                "cpu".into()
            } else {
                ckpt.device.clone()
            },
            fewshot_seed: 1234,
            limit: r.limit,
            model: "k2".into(),
            model_args: format!("pretrained={},revision={}", ckpt.model, ckpt.revision),
            model_dtype: if ckpt.dtype.is_empty() {
                "float32".into()
            } else {
                ckpt.dtype.clone()
            },
            model_num_parameters: ckpt.num_parameters,
            model_revision: ckpt.revision.clone(),
            model_sha: key.weights_sha256.clone(),
        },
        higher_is_better: BTreeMap::from([(task(), hib)]),
        k2: K2Block {
            checkpoint: ckpt.revision.clone(),
            dtype: key.dtype.clone(),
            harness_version: key.harness_version.clone(),
            step: ckpt.step,
            task_hash: key.task_hash.clone(),
            tokens: ckpt.tokens,
            weights_sha256: key.weights_sha256.clone(),
            datasets: r.datasets.clone(),
        },
        n_samples: BTreeMap::from([(
            task(),
            NSamples {
                effective: r.n_effective,
                original: r.n_original,
            },
        )]),
        n_shot: BTreeMap::from([(task(), r.n_shot)]),
        results: BTreeMap::from([(task(), res)]),
        versions: BTreeMap::from([(task(), r.version)]),
    }
}

/// The reuse key stored in an existing results file, if the file is a complete k2 result.
pub fn stored_key(path: &Path) -> Option<ResultKey> {
    let k2 = read_lm_eval_file(path).ok()?.k2?;
    Some(ResultKey {
        weights_sha256: k2.weights_sha256,
        task_hash: k2.task_hash,
        harness_version: k2.harness_version,
        dtype: k2.dtype,
    })
}

/// Headline values of a results file: `metric,filter` -> value.
pub fn read_metrics(path: &Path) -> Result<BTreeMap<String, f64>> {
    let f = read_lm_eval_file(path)?;
    Ok(f.results
        .into_values()
        .flatten()
        .filter_map(|(k, x)| x.as_f64().map(|v| (k, v)))
        .collect())
}
