//! Results files in lm-evaluation-harness's JSON layout (`results`, `versions`, `n-shot`,
//! `higher_is_better`, `n-samples`, `config` with `model_revision` and `model_sha`), one file per
//! (checkpoint, task), plus k2's own block: checkpoint, step, tokens seen, the weights' sha256,
//! the task config hash and the harness version that decide whether a result can be reused.
//! Files hold no timestamps, so a rerun writes identical bytes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{io_err, EvalError, Result};

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
}

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::String("NaN".into()), Value::Number)
}

/// The results JSON of one task on one checkpoint.
pub fn results_json(r: &TaskResult, ckpt: &CheckpointInfo, key: &ResultKey) -> Value {
    let mut res = Map::new();
    res.insert("alias".into(), json!(r.task));
    let mut hib = Map::new();
    for m in &r.metrics {
        res.insert(format!("{},{}", m.name, m.filter), num(m.value));
        res.insert(
            format!("{}_stderr,{}", m.name, m.filter),
            m.stderr.map_or(json!("N/A"), num),
        );
        hib.insert(m.name.clone(), json!(m.higher_is_better));
    }
    let mut k2 = serde_json::to_value(key).expect("key serialises");
    if let Value::Object(m) = &mut k2 {
        let mut block = Map::new();
        block.insert("checkpoint".into(), json!(ckpt.revision));
        block.insert("step".into(), json!(ckpt.step));
        block.insert("tokens".into(), json!(ckpt.tokens));
        block.append(m);
        k2 = Value::Object(block);
    }
    json!({
        "results": { r.task.clone(): Value::Object(res) },
        "versions": { r.task.clone(): r.version },
        "n-shot": { r.task.clone(): r.n_shot },
        "higher_is_better": { r.task.clone(): Value::Object(hib) },
        "n-samples": { r.task.clone(): { "original": r.n_original, "effective": r.n_effective } },
        "config": {
            "model": "k2",
            "model_args": format!("pretrained={},revision={}", ckpt.model, ckpt.revision),
            "model_num_parameters": ckpt.num_parameters,
            "model_dtype": if ckpt.dtype.is_empty() { "float32" } else { ckpt.dtype.as_str() },
            "model_revision": ckpt.revision,
            "model_sha": key.weights_sha256,
            "batch_size": r.batch_size,
            "device": if ckpt.device.is_empty() { "cpu" } else { ckpt.device.as_str() },
            "limit": r.limit,
            "fewshot_seed": 1234,
        },
        "k2": k2,
    })
}

/// The reuse key stored in an existing results file, if the file is a complete k2 result.
pub fn stored_key(path: &Path) -> Option<ResultKey> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    serde_json::from_value(v.get("k2")?.clone()).ok()
}

/// Headline values of a results file: `metric,filter` -> value.
pub fn read_metrics(path: &Path) -> Result<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| EvalError::Data {
        path: path.to_path_buf(),
        line: e.line(),
        message: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    if let Some(Value::Object(tasks)) = v.get("results") {
        for (_, t) in tasks {
            if let Value::Object(m) = t {
                for (k, x) in m {
                    if let Some(f) = x.as_f64() {
                        out.insert(k.clone(), f);
                    }
                }
            }
        }
    }
    Ok(out)
}
