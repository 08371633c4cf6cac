//! A group's results on one checkpoint, from its tasks' results files, as lm-eval's
//! `Group.aggregate` computes them: per `aggregate_metric_list` entry and filter (listed, or every
//! filter the tasks report the metric under), the size-weighted (`weight_by_size`) or plain mean
//! of the tasks' values, with the pooled or unweighted-mean stderr when every task has one. The
//! group's file has the tasks' layout, so `k2 report` plots a group as it plots a task.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k2_archive::results_file::{NSamples, ResultsFile};
use serde_json::Value;

use super::task_index::GroupSpec;
use crate::error::{EvalError, Result};
use crate::metrics::pooled_sample_stderr;
use crate::results_layout::results_path;

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::String("NaN".into()), Value::Number)
}

/// Writes `<group>.json` in `out_dir` when every task of the group has results there for the
/// same weights; `false` (nothing written) otherwise.
pub fn write_group(out_dir: &Path, g: &GroupSpec) -> Result<bool> {
    let mut leaves: Vec<(String, ResultsFile)> = Vec::new();
    for t in &g.leaves {
        let p = results_path(out_dir, t);
        if !p.exists() {
            return Ok(false);
        }
        let text = std::fs::read_to_string(&p).map_err(crate::error::io_err(&p))?;
        let f: ResultsFile = serde_json::from_str(&text).map_err(|e| EvalError::Invalid {
            path: p.clone(),
            message: format!("not a k2 results file: {e}"),
        })?;
        leaves.push((t.clone(), f));
    }
    let Some((_, first)) = leaves.first() else {
        return Ok(false);
    };
    if leaves
        .iter()
        .any(|(_, f)| f.k2.weights_sha256 != first.k2.weights_sha256)
    {
        return Ok(false);
    }
    let mut res: BTreeMap<String, Value> = BTreeMap::new();
    res.insert("alias".into(), Value::String(g.name.clone()));
    let mut hib: BTreeMap<String, bool> = BTreeMap::new();
    for m in &g.metrics {
        let filters: Vec<String> = match &m.filters {
            Some(f) => f.clone(),
            None => {
                let prefix = format!("{},", m.metric);
                let mut found = BTreeSet::new();
                for (t, f) in &leaves {
                    for k in f.results.get(t).map(|r| r.keys()).into_iter().flatten() {
                        if let Some(filter) = k.strip_prefix(&prefix) {
                            found.insert(filter.to_string());
                        }
                    }
                }
                found.into_iter().collect()
            }
        };
        for filter in filters {
            let key = format!("{},{filter}", m.metric);
            let skey = format!("{}_stderr,{filter}", m.metric);
            let (mut values, mut sizes, mut stderrs) = (Vec::new(), Vec::new(), Vec::new());
            for (t, f) in &leaves {
                let Some(r) = f.results.get(t) else { continue };
                let Some(v) = r.get(&key).and_then(Value::as_f64) else {
                    continue;
                };
                values.push(v);
                sizes.push(f.n_samples.get(t).map_or(0, |n| n.effective));
                if let Some(s) = r.get(&skey).and_then(Value::as_f64) {
                    stderrs.push(s);
                }
                if let Some(h) = f.higher_is_better.get(t).and_then(|h| h.get(&m.metric)) {
                    hib.insert(m.metric.clone(), *h);
                }
            }
            if values.is_empty() {
                continue;
            }
            let w: Vec<f64> = if m.weight_by_size {
                sizes.iter().map(|&s| s as f64).collect()
            } else {
                vec![1.0; values.len()]
            };
            let value =
                values.iter().zip(&w).map(|(v, w)| v * w).sum::<f64>() / w.iter().sum::<f64>();
            res.insert(key, num(value));
            let stderr = if stderrs.len() == values.len() {
                num(if m.weight_by_size {
                    pooled_sample_stderr(&stderrs, &sizes)
                } else {
                    stderrs.iter().map(|s| s * s).sum::<f64>().sqrt() / stderrs.len() as f64
                })
            } else {
                Value::String("N/A".into())
            };
            res.insert(skey, stderr);
        }
    }
    let effective = leaves
        .iter()
        .map(|(t, f)| f.n_samples.get(t).map_or(0, |n| n.effective))
        .sum();
    let original = leaves
        .iter()
        .map(|(t, f)| f.n_samples.get(t).map_or(0, |n| n.original))
        .sum();
    let hashes: Vec<String> = leaves
        .iter()
        .map(|(t, f)| format!("{t}={}", f.k2.task_hash))
        .collect();
    let mut k2 = first.k2.clone();
    k2.task_hash = k2_archive::sha256_bytes(
        format!("group {}\n{:?}\n{}", g.name, g.metrics, hashes.join("\n")).as_bytes(),
    );
    k2.datasets = Vec::new();
    let name = || g.name.clone();
    let file = ResultsFile {
        config: first.config.clone(),
        higher_is_better: BTreeMap::from([(name(), hib)]),
        k2,
        n_samples: BTreeMap::from([(
            name(),
            NSamples {
                effective,
                original,
            },
        )]),
        n_shot: BTreeMap::from([(name(), 0)]),
        results: BTreeMap::from([(name(), res)]),
        versions: BTreeMap::from([(name(), g.version.unwrap_or(0.0))]),
    };
    k2_archive::write_file_atomic(&results_path(out_dir, &g.name), file.to_json().as_bytes())?;
    Ok(true)
}
