//! Results files in lm-evaluation-harness's JSON layout, one per (checkpoint, task):
//! [`ResultsFile`] is what `k2 eval` writes (and reads back to decide whether a result can be
//! reused); [`LmEvalFile`] is the lenient view `k2 report` reads of any lm-eval results file
//! (v0.3 or v0.4 layout, k2's or not).
//!
//! The fields are declared in the order of their JSON names, so a file's keys are sorted at
//! every level, as k2 has always written them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ArchiveError, IoContext};

/// A results file as `k2 eval` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsFile {
    pub config: ResultsConfig,
    /// task -> metric -> whether higher is better.
    pub higher_is_better: BTreeMap<String, BTreeMap<String, bool>>,
    pub k2: K2Block,
    #[serde(rename = "n-samples")]
    pub n_samples: BTreeMap<String, NSamples>,
    #[serde(rename = "n-shot")]
    pub n_shot: BTreeMap<String, usize>,
    /// task -> `metric,filter` (and `metric_stderr,filter`, `alias`) -> value: a number, or
    /// `"N/A"` for a stderr lm-eval does not compute.
    pub results: BTreeMap<String, BTreeMap<String, Value>>,
    pub versions: BTreeMap<String, f64>,
}

/// `config`: the model and how it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsConfig {
    pub batch_size: usize,
    pub device: String,
    pub fewshot_seed: u64,
    pub limit: Option<usize>,
    pub model: String,
    /// `pretrained=<model>,revision=<checkpoint>`.
    pub model_args: String,
    pub model_dtype: String,
    pub model_num_parameters: u64,
    pub model_revision: String,
    /// The weights' sha256.
    pub model_sha: String,
}

/// `n-samples`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NSamples {
    pub effective: usize,
    pub original: usize,
}

/// k2's own block: which checkpoint, and the key that decides whether the result can be reused
/// (the same weights, task config, harness version and dtype). A field missing when read is
/// empty, and an empty key matches no result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct K2Block {
    #[serde(default)]
    pub checkpoint: String,
    /// The `--dtype` asked for; `auto` (the checkpoint's own) is not written.
    #[serde(default = "auto", skip_serializing_if = "is_auto")]
    pub dtype: String,
    #[serde(default)]
    pub harness_version: String,
    pub step: Option<u64>,
    #[serde(default)]
    pub task_hash: String,
    pub tokens: Option<u64>,
    #[serde(default)]
    pub weights_sha256: String,
    /// The dataset splits the task read: repository, config, split, the commit they resolved to
    /// and each file's sha256 (empty for the built-in probes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetRecord>,
}

/// One dataset split a result was scored on, pinned to a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// `allenai/ai2_arc`.
    pub repo: String,
    /// `ARC-Easy` (`default` for a repository without configs).
    pub config: String,
    pub split: String,
    /// The revision asked for or read (`main`, `refs/convert/parquet`); `local` for `--data`.
    pub revision: String,
    /// The commit it resolved to; for `--data`, the sha256 of the files' sha256s.
    pub commit: String,
    /// `(path in the repository, sha256)` of every file read, sorted by path.
    pub files: Vec<(String, String)>,
}

fn auto() -> String {
    "auto".into()
}

fn is_auto(s: &str) -> bool {
    s == "auto"
}

impl ResultsFile {
    /// Pretty JSON with a final newline, as written.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a results file serialises");
        s.push('\n');
        s
    }
}

/// The parts of any lm-eval results file a report reads; everything else is ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LmEvalFile {
    pub results: BTreeMap<String, BTreeMap<String, Value>>,
    #[serde(default)]
    pub config: LmEvalConfig,
    #[serde(default, rename = "n-shot")]
    pub n_shot: BTreeMap<String, Value>,
    /// Present in files k2 wrote.
    #[serde(default)]
    pub k2: Option<K2Block>,
}

/// `config` of any lm-eval version (v0.3 has `num_fewshot` here; v0.4 has `n-shot`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct LmEvalConfig {
    #[serde(default)]
    pub model: Option<Value>,
    #[serde(default)]
    pub model_args: Option<Value>,
    #[serde(default)]
    pub num_fewshot: Option<Value>,
}

impl LmEvalFile {
    /// `config.model_args` when it is a string (`pretrained=...,revision=...`).
    pub fn model_args(&self) -> &str {
        self.config
            .model_args
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The shot count of `task`: `n-shot`, else v0.3's `config.num_fewshot`.
    pub fn shots(&self, task: &str) -> Option<u64> {
        self.n_shot
            .get(task)
            .and_then(Value::as_u64)
            .or_else(|| self.config.num_fewshot.as_ref().and_then(Value::as_u64))
    }
}

/// Reads any lm-eval results file; the error names the file and line.
pub fn read_lm_eval_file(path: &Path) -> Result<LmEvalFile, ArchiveError> {
    let text = std::fs::read_to_string(path).at(path, "read")?;
    serde_json::from_str(&text).map_err(|e| ArchiveError::JsonLine {
        path: path.to_path_buf(),
        line: e.line(),
        message: format!("not an lm-eval results file: {e}"),
    })
}
