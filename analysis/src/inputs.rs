//! Reading results into one model: a k2 run directory (manifest, `metrics.jsonl`,
//! `eval/<ckpt>/<task>.json`) and any directory tree of lm-evaluation-harness results JSON
//! (v0.3 layout: `results.<task>.<metric>` with `<metric>_stderr`; v0.4 layout:
//! `results.<task>."<metric>,<filter>"` with `"<metric>_stderr,<filter>"`).
//!
//! Every error names the file it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// Tokens per optimizer step of every Pythia model (1024 sequences x 2048 tokens).
pub const PYTHIA_TOKENS_PER_STEP: u64 = 2_097_152;

/// One measured value: a metric of a task at one checkpoint of one series (model).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The model / run the checkpoint belongs to, e.g. `pythia-160m` or a k2 run name.
    pub series: String,
    /// Few-shot count when the results file says so (0 when unknown).
    pub shots: u32,
    pub task: String,
    /// Metric name without the lm-eval v0.4 filter suffix (`acc`, not `acc,none`).
    pub metric: String,
    pub step: u64,
    /// Tokens seen at this checkpoint, when known.
    pub tokens: Option<u64>,
    pub value: f64,
    pub stderr: Option<f64>,
    /// Checkpoint name (k2) or `step<N>`.
    pub checkpoint: String,
    /// The file the value was read from.
    pub source: PathBuf,
}

/// One row of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRow {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: Option<f64>,
    pub tokens_seen: Option<u64>,
    pub stage: Option<u32>,
    /// Training attempt (0 before any rollback).
    pub attempt: u32,
}

/// A checkpoint of a k2 run, from its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRow {
    pub name: String,
    pub step: u64,
    pub tokens: u64,
    pub stage: u32,
    pub status: String,
    /// sha256 of `model.safetensors`, when the manifest lists it.
    pub model_sha256: Option<String>,
}

/// Everything a report is drawn from.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Values on the surviving lineage (every value of an lm-eval results tree).
    pub points: Vec<Point>,
    /// Values of a k2 run's checkpoints off the lineage (status `spike` or `rolled_back`).
    pub off_lineage: Vec<Point>,
    /// k2 run name, when a run was read.
    pub run_name: Option<String>,
    pub checkpoints: Vec<CheckpointRow>,
    /// The surviving lineage: per step, the last row of `metrics.jsonl`.
    pub train: Vec<TrainRow>,
    /// Steps of attempts that were rolled back after a malignant loss spike.
    pub train_diverged: Vec<TrainRow>,
    /// Loss spikes recorded in the manifest.
    pub spikes: Vec<k2_archive::SpikeEvent>,
    /// Chunks in training order (k2 runs with a data index).
    pub data_mix: Vec<ChunkRow>,
}

impl Dataset {
    /// Series names in a stable order (natural order of model sizes where they parse).
    pub fn series(&self) -> Vec<String> {
        let mut s: Vec<String> = self.points.iter().map(|p| p.series.clone()).collect();
        s.sort_by(|a, b| series_order(a, b));
        s.dedup();
        s
    }

    /// Task names, sorted.
    pub fn tasks(&self) -> Vec<String> {
        let mut t: Vec<String> = self.points.iter().map(|p| p.task.clone()).collect();
        t.sort();
        t.dedup();
        t
    }
}

/// Orders `pythia-70m` < `pythia-160m` < `pythia-1.4b` < `pythia-12b` (parameter count), then by name.
pub fn series_order(a: &str, b: &str) -> std::cmp::Ordering {
    let pa = param_count(a);
    let pb = param_count(b);
    match (pa, pb) {
        (Some(x), Some(y)) => x
            .partial_cmp(&y)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(b)),
        _ => a.cmp(b),
    }
}

/// Parses a size like `160m` or `1.4b` out of a model name.
pub fn param_count(name: &str) -> Option<f64> {
    for part in name.split(['-', '_', '/', ' ']) {
        let lower = part.to_ascii_lowercase();
        let (num, mult) = if let Some(n) = lower.strip_suffix('m') {
            (n, 1e6)
        } else if let Some(n) = lower.strip_suffix('b') {
            (n, 1e9)
        } else {
            continue;
        };
        if let Ok(v) = num.parse::<f64>() {
            return Some(v * mult);
        }
    }
    None
}

/// Reads a k2 run directory: `checkpoints.toml`, `metrics.jsonl` (optional) and
/// `eval/<ckpt>/<task>.json` (optional). `series` names the run in the points (defaults to the
/// manifest's run name).
pub fn read_k2_run(run: &Path, series: Option<&str>) -> Result<Dataset> {
    let layout = k2_archive::RunLayout::new(run);
    let manifest = k2_archive::Manifest::load(&layout.manifest_path())?;
    let name = series
        .map(str::to_string)
        .unwrap_or_else(|| manifest.run.clone());
    let checkpoints: Vec<CheckpointRow> = manifest
        .checkpoints
        .iter()
        .map(|c| CheckpointRow {
            name: c.name.clone(),
            step: c.step,
            tokens: c.tokens,
            stage: c.stage,
            status: c.status.to_string(),
            model_sha256: c.files.get("model.safetensors").cloned(),
        })
        .collect();

    let metrics_path = layout.metrics_path();
    let (train, train_diverged) = if metrics_path.exists() {
        split_lineage(read_metrics_jsonl(&metrics_path)?)
    } else {
        (Vec::new(), Vec::new())
    };

    let mut points = Vec::new();
    let eval_dir = layout.eval_dir();
    if eval_dir.is_dir() {
        for f in json_files(&eval_dir)? {
            let mut ps = read_results_file(&f)?;
            for p in &mut ps {
                p.series = name.clone();
                if p.tokens.is_none() {
                    p.tokens = checkpoints
                        .iter()
                        .find(|c| c.step == p.step)
                        .map(|c| c.tokens);
                }
            }
            points.extend(ps);
        }
    }
    let data_mix = read_data_mix(run)?;
    // Spike checkpoints are evaluated too, but are off the surviving lineage the figures draw.
    let (points, off_lineage): (Vec<Point>, Vec<Point>) = points.into_iter().partition(|p| {
        checkpoints
            .iter()
            .find(|c| c.name == p.checkpoint)
            .is_none_or(|c| c.status == "ok")
    });
    Ok(Dataset {
        points,
        off_lineage,
        run_name: Some(name),
        checkpoints,
        train,
        train_diverged,
        spikes: manifest.spikes.clone(),
        data_mix,
    })
}

/// Splits metrics rows into the surviving lineage (the last row of every step, in step order)
/// and the rows a later attempt superseded (rolled back after a malignant spike).
pub fn split_lineage(rows: Vec<TrainRow>) -> (Vec<TrainRow>, Vec<TrainRow>) {
    let mut last = std::collections::BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        last.insert(r.step, i);
    }
    let mut lineage = Vec::with_capacity(last.len());
    let mut diverged = Vec::new();
    for (i, r) in rows.into_iter().enumerate() {
        if last.get(&r.step) == Some(&i) {
            lineage.push(r);
        } else {
            diverged.push(r);
        }
    }
    lineage.sort_by_key(|r| r.step);
    (lineage, diverged)
}

/// One chunk in training order, from the run's `data/index.json` and `chunk_order.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    /// Position in the chunk order (0 = trained first).
    pub position: usize,
    pub chunk: u64,
    /// Stage as written in the index (0-based there).
    pub stage: u32,
    pub tokens_by_source: BTreeMap<String, u64>,
}

impl ChunkRow {
    pub fn tokens(&self) -> u64 {
        self.tokens_by_source.values().sum()
    }
}

/// Reads `<run>/data/index.json` and `<run>/chunk_order.toml` (`order = [..]`; position k trains
/// chunk `order[k]`; identity order when the file is missing). Returns the chunks in training
/// order, or an empty list when the run has no data index.
pub fn read_data_mix(run: &Path) -> Result<Vec<ChunkRow>> {
    let layout = k2_archive::RunLayout::new(run);
    let data_dir = layout.data_dir();
    let index_path = data_dir.join("index.json");
    if !index_path.exists() {
        return Ok(Vec::new());
    }
    let index = k2_archive::read_index(&data_dir)?;
    let by_id: BTreeMap<u32, &k2_archive::ChunkInfo> =
        index.chunks.iter().map(|c| (c.chunk, c)).collect();
    let order_path = layout.chunk_order_path();
    let order: Vec<u32> = if order_path.exists() {
        k2_archive::ChunkOrder::load(&order_path)?.order
    } else {
        by_id.keys().copied().collect()
    };
    order
        .iter()
        .enumerate()
        .map(|(position, &chunk)| {
            let info = by_id.get(&chunk).ok_or_else(|| {
                anyhow!(
                    "{}: chunk {chunk} is not in {}",
                    order_path.display(),
                    index_path.display()
                )
            })?;
            Ok(ChunkRow {
                position,
                chunk: u64::from(chunk),
                stage: info.stage as u32,
                tokens_by_source: info.tokens_by_source.clone(),
            })
        })
        .collect()
}

/// Reads a run's `metrics.jsonl` (its step lines; the spike event lines are skipped).
pub fn read_metrics_jsonl(path: &Path) -> Result<Vec<TrainRow>> {
    let lines = k2_archive::metrics_log::read_metrics_log(path)?;
    Ok(k2_archive::metrics_log::step_lines(lines)
        .into_iter()
        .map(|m| TrainRow {
            step: m.step,
            loss: m.loss,
            lr: m.lr,
            grad_norm: Some(m.grad_norm),
            tokens_seen: Some(m.tokens_seen),
            stage: Some(m.stage as u32),
            attempt: m.attempt,
        })
        .collect())
}

/// Reads every `*.json` under `dir` (recursively) as an lm-eval results file.
pub fn read_lm_eval_dir(dir: &Path) -> Result<Dataset> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let mut points = Vec::new();
    for f in json_files(dir)? {
        points.extend(read_results_file(&f)?);
    }
    Ok(Dataset {
        points,
        ..Default::default()
    })
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).with_context(|| format!("{}", d.display()))?;
        for e in rd {
            let e = e.with_context(|| format!("{}", d.display()))?;
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses `key=value` pairs of lm-eval's `model_args` string.
fn model_arg<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    args.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then_some(v.trim())
    })
}

fn parse_step(s: &str) -> Option<u64> {
    let i = s.find("step")?;
    let digits: String = s[i + 4..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Series name from `pretrained=...`: the last path component, `pythia-v1.1-160m` -> `pythia-160m`.
fn series_from_pretrained(p: &str) -> String {
    let last = p.trim_end_matches('/').rsplit('/').next().unwrap_or(p);
    last.replace("pythia-v1.1-", "pythia-")
        .replace("pythia-v1-", "pythia-")
}

/// Reads one lm-eval results file (v0.3 or v0.4 layout, optionally with a `k2` block).
pub fn read_results_file(path: &Path) -> Result<Vec<Point>> {
    let f = k2_archive::results_file::read_lm_eval_file(path)?;
    let model_args = f.model_args();
    let file_name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");

    let step = f
        .k2
        .as_ref()
        .and_then(|b| b.step)
        .or_else(|| model_arg(model_args, "revision").and_then(parse_step))
        .or_else(|| parse_step(file_name))
        .ok_or_else(|| {
            anyhow!(
                "{}: cannot tell the training step (no k2.step, no revision=stepN in config.model_args, no stepN in the file name)",
                path.display()
            )
        })?;
    let checkpoint =
        f.k2.as_ref()
            .map(|b| b.checkpoint.clone())
            .unwrap_or_else(|| format!("step{step}"));
    let series = model_arg(model_args, "pretrained")
        .map(series_from_pretrained)
        .or_else(|| {
            f.config
                .model
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "model".to_string());
    let mut tokens = f.k2.as_ref().and_then(|b| b.tokens);
    if tokens.is_none() && series.contains("pythia") {
        tokens = Some(step * PYTHIA_TOKENS_PER_STEP);
    }

    let mut out = Vec::new();
    for (task, m) in &f.results {
        let shots = f.shots(task).unwrap_or(0) as u32;
        for (key, val) in m {
            let (metric, filter) = match key.split_once(',') {
                Some((a, b)) => (a, Some(b)),
                None => (key.as_str(), None),
            };
            if metric.ends_with("_stderr") || metric == "alias" {
                continue;
            }
            let Some(value) = val.as_f64() else { continue };
            let stderr_key = match filter {
                Some(f) => format!("{metric}_stderr,{f}"),
                None => format!("{metric}_stderr"),
            };
            let stderr = m.get(&stderr_key).and_then(Value::as_f64);
            let metric = match filter {
                Some("none") | None => metric.to_string(),
                Some(f) => format!("{metric},{f}"),
            };
            out.push(Point {
                series: series.clone(),
                shots,
                task: task.clone(),
                metric,
                step,
                tokens,
                value,
                stderr,
                checkpoint: checkpoint.clone(),
                source: path.to_path_buf(),
            });
        }
    }
    Ok(out)
}

/// The headline metric of a task: `acc_norm` if present, else `acc`, else the first (by name).
pub fn headline_metric(points: &[Point], task: &str) -> Option<String> {
    let mut metrics: Vec<&str> = points
        .iter()
        .filter(|p| p.task == task)
        .map(|p| p.metric.as_str())
        .collect();
    metrics.sort();
    metrics.dedup();
    for want in ["acc_norm", "acc"] {
        if metrics.contains(&want) {
            return Some(want.to_string());
        }
    }
    metrics.first().map(|s| s.to_string())
}

/// Chance level of the headline metric of known tasks (None where there is none, e.g. perplexity).
pub fn default_chance(task: &str) -> Option<f64> {
    let t = task.to_ascii_lowercase();
    match t.as_str() {
        "k2_agreement" => Some(0.5),
        "piqa" | "winogrande" | "wsc" | "wsc273" | "boolq" => Some(0.5),
        "arc_easy" | "arc_challenge" | "sciq" | "logiqa" | "openbookqa" | "hellaswag" | "mmlu" => {
            Some(0.25)
        }
        _ if t.starts_with("k2_") => Some(0.25),
        _ if t.starts_with("hendrycks") || t.starts_with("mmlu") => Some(0.25),
        _ => None,
    }
}

/// Replaces the per-subject `hendrycksTest-*` / `mmlu_*` tasks by one `mmlu (mean of N)` task:
/// the mean over subjects of each (series, shots, step, metric) where all N subjects are present.
pub fn aggregate_mmlu(points: Vec<Point>) -> Vec<Point> {
    let is_sub =
        |t: &str| t.starts_with("hendrycksTest-") || (t.starts_with("mmlu_") && t != "mmlu");
    let (subs, mut rest): (Vec<Point>, Vec<Point>) =
        points.into_iter().partition(|p| is_sub(&p.task));
    if subs.is_empty() {
        return rest;
    }
    let mut n_tasks: Vec<&str> = subs.iter().map(|p| p.task.as_str()).collect();
    n_tasks.sort();
    n_tasks.dedup();
    let n = n_tasks.len();
    type Key = (String, u32, u64, String);
    let mut groups: BTreeMap<Key, Vec<&Point>> = BTreeMap::new();
    for p in &subs {
        groups
            .entry((p.series.clone(), p.shots, p.step, p.metric.clone()))
            .or_default()
            .push(p);
    }
    let name = format!("mmlu (mean of {n})");
    for (_, g) in groups {
        if g.len() != n {
            continue;
        }
        let mean = g.iter().map(|p| p.value).sum::<f64>() / n as f64;
        // stderr of a mean of independent estimates
        let se = if g.iter().all(|p| p.stderr.is_some()) {
            Some(
                g.iter()
                    .map(|p| p.stderr.unwrap().powi(2))
                    .sum::<f64>()
                    .sqrt()
                    / n as f64,
            )
        } else {
            None
        };
        let p0 = g[0];
        rest.push(Point {
            task: name.clone(),
            value: mean,
            stderr: se,
            ..p0.clone()
        });
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_sort_by_size() {
        let mut v = vec![
            "pythia-1.4b",
            "pythia-70m",
            "pythia-12b",
            "pythia-160m-deduped",
            "pythia-160m",
        ];
        v.sort_by(|a, b| series_order(a, b));
        assert_eq!(
            v,
            [
                "pythia-70m",
                "pythia-160m",
                "pythia-160m-deduped",
                "pythia-1.4b",
                "pythia-12b"
            ]
        );
        assert_eq!(
            series_from_pretrained("EleutherAI/pythia-v1.1-160m"),
            "pythia-160m"
        );
        assert_eq!(parse_step("step143000"), Some(143000));
        assert_eq!(
            model_arg("pretrained=a/b,revision=step3", "revision"),
            Some("step3")
        );
    }

    #[test]
    fn ema_bias_corrected() {
        let e = crate::plots::ema(&[2.0, 2.0, 2.0], 0.9);
        assert!(e.iter().all(|x| (x - 2.0).abs() < 1e-12));
    }
}
