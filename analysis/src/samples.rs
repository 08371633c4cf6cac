//! Reading k2's per-sample files (`<task>.samples.jsonl` beside each `<task>.json`, one JSON
//! object per document: `doc_id`, `prompt_hash`, `arguments` (the requests), `resps` (their
//! responses), `prediction`, `target`, `gold` (the gold request of a multiple-choice document)
//! and `metrics` (`"acc,none": 1.0`, ...)) into what per-item analyses need.
//!
//! Every error names the file and line.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// One document of one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub doc_id: usize,
    pub prompt_hash: String,
    /// The first request's context (or rolling text).
    pub prompt: String,
    pub target: String,
    pub prediction: String,
    /// Metric values keyed as in lm-eval's results (`acc,none`).
    pub metrics: Vec<(String, f64)>,
    /// Log-likelihoods of the requests, in order (NaN for generations).
    pub lls: Vec<f64>,
    /// The gold request of a multiple-choice document.
    pub gold: Option<usize>,
}

impl Sample {
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Log-likelihood of the gold answer: the gold request's, or the only request's when the
    /// document has one (lambada).
    pub fn gold_ll(&self) -> Option<f64> {
        match self.gold {
            Some(g) => self.lls.get(g).copied().filter(|x| x.is_finite()),
            None if self.lls.len() == 1 => Some(self.lls[0]).filter(|x| x.is_finite()),
            None => None,
        }
    }

    /// Gold log-likelihood minus the best wrong choice's (multiple choice only).
    pub fn margin(&self) -> Option<f64> {
        let g = self.gold?;
        let gold = self.gold_ll()?;
        let best = self
            .lls
            .iter()
            .enumerate()
            .filter(|&(i, x)| i != g && x.is_finite())
            .map(|(_, x)| *x)
            .fold(f64::NEG_INFINITY, f64::max);
        best.is_finite().then_some(gold - best)
    }

    /// Number of choices of a multiple-choice document.
    pub fn choices(&self) -> Option<usize> {
        self.gold.map(|_| self.lls.len())
    }
}

/// The samples file beside a results file `<dir>/<task>.json`.
pub fn samples_path_for(results: &Path, task: &str) -> PathBuf {
    results.with_file_name(format!("{task}.samples.jsonl"))
}

fn field<'a>(v: &'a Value, key: &str, at: &dyn Fn() -> String) -> Result<&'a Value> {
    v.get(key)
        .ok_or_else(|| anyhow!("{}: no field `{key}`", at()))
}

/// Reads a samples file, in doc-id order; an error names the file and line.
pub fn read_samples(path: &Path) -> Result<Vec<Sample>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut out: Vec<Sample> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let v: Value = serde_json::from_str(line).map_err(|e| anyhow!("{}: {e}", at()))?;
        let doc_id = field(&v, "doc_id", &at)?
            .as_u64()
            .ok_or_else(|| anyhow!("{}: field `doc_id` is not a non-negative integer", at()))?
            as usize;
        let s = |k: &str| -> Result<String> {
            Ok(match field(&v, k, &at)? {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let args = field(&v, "arguments", &at)?
            .as_array()
            .ok_or_else(|| anyhow!("{}: field `arguments` is not a list", at()))?;
        let prompt = args
            .first()
            .and_then(|a| a.get("context").or_else(|| a.get("text")))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let resps = field(&v, "resps", &at)?
            .as_array()
            .ok_or_else(|| anyhow!("{}: field `resps` is not a list", at()))?;
        let lls = resps
            .iter()
            .map(|r| r.get("ll").and_then(Value::as_f64).unwrap_or(f64::NAN))
            .collect::<Vec<_>>();
        let metrics = field(&v, "metrics", &at)?
            .as_object()
            .ok_or_else(|| anyhow!("{}: field `metrics` is not an object", at()))?
            .iter()
            .filter_map(|(k, x)| Some((k.clone(), x.as_f64()?)))
            .collect();
        let gold = match v.get("gold") {
            None | Some(Value::Null) => None,
            Some(g) => {
                let g = g
                    .as_u64()
                    .ok_or_else(|| anyhow!("{}: field `gold` is not an index", at()))?
                    as usize;
                if g >= lls.len() {
                    bail!(
                        "{}: field `gold` is {g} but the document has {} responses",
                        at(),
                        lls.len()
                    );
                }
                Some(g)
            }
        };
        if out.iter().any(|o| o.doc_id == doc_id) {
            bail!("{}: doc_id {doc_id} appears twice", at());
        }
        out.push(Sample {
            doc_id,
            prompt_hash: s("prompt_hash")?,
            prompt,
            target: s("target")?,
            prediction: s("prediction")?,
            metrics,
            lls,
            gold,
        });
    }
    out.sort_by_key(|s| s.doc_id);
    Ok(out)
}

/// The 0/1 metric an item's correctness is read from: `acc` (the argmax decision, so a
/// positive margin means correct), else `exact_match`, else any metric whose values are all 0
/// or 1. None when the task has no such metric (perplexities, mc2).
pub fn correctness_metric(samples: &[Sample]) -> Option<String> {
    let first = samples.first()?;
    let binary = |key: &str| {
        samples
            .iter()
            .all(|s| s.metric(key).is_some_and(|v: f64| v == 0.0 || v == 1.0))
    };
    let mut keys: Vec<&str> = first.metrics.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_by_key(|k| {
        (
            !k.starts_with("acc,"),
            !k.starts_with("exact_match,"),
            k.to_string(),
        )
    });
    keys.into_iter().find(|k| binary(k)).map(str::to_string)
}
