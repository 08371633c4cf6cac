//! `k2 eval`: every checkpoint of a run (oldest first), or one HF model directory, on a list of
//! tasks. One results file and one samples file per (checkpoint, task), written atomically; a pair
//! whose results exist for the same weights hash, task config hash and harness version is skipped,
//! so a killed sweep rerun finishes the job with identical files. A checkpoint that fails
//! verification against the manifest is reported and skipped; the sweep goes on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::ProgressBar;
use k2_archive::{CheckpointStatus, Manifest, RunLayout};
use k2_model::Placement;

use crate::engine::Engine;
use crate::error::{EvalError, Result};
use crate::evaluate::{count_requests, run_task};
use crate::results::{
    results_json, stored_key, CheckpointInfo, ResultKey, TaskResult, HARNESS_VERSION,
};
use crate::task::Task;

/// A task with its few-shot count and document limit.
pub struct TaskSpec {
    pub task: Box<dyn Task>,
    pub shots: usize,
    pub limit: Option<usize>,
}

impl TaskSpec {
    /// The hash that decides whether a stored result is still valid for this task setup.
    pub fn config_hash(&self) -> String {
        k2_archive::sha256_bytes(
            format!(
                "{}\nversion={}\nshots={}\nlimit={:?}\n{}",
                self.task.name(),
                self.task.version(),
                self.shots,
                self.limit,
                self.task.fingerprint()
            )
            .as_bytes(),
        )
    }
}

/// A model to evaluate.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    pub info: CheckpointInfo,
    pub weights_sha256: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Evaluated(String),
    Skipped(String),
}

#[derive(Debug, Default)]
pub struct SweepReport {
    pub evaluated: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
    /// Checkpoints that could not be evaluated, with the reason.
    pub failed: Vec<(String, String)>,
}

pub fn results_path(out_dir: &Path, task: &str) -> PathBuf {
    out_dir.join(format!("{task}.json"))
}

pub fn samples_path(out_dir: &Path, task: &str) -> PathBuf {
    out_dir.join(format!("{task}.samples.jsonl"))
}

/// sha256 over the weight files of an HF directory (one file: its own sha256).
pub fn weights_sha256(dir: &Path) -> Result<String> {
    let files = k2_model::weight_files(dir).map_err(|e| EvalError::Other(e.to_string()))?;
    let mut hashes = Vec::new();
    for f in &files {
        hashes.push(k2_archive::sha256_file(f).map_err(|e| EvalError::Other(e.to_string()))?);
    }
    Ok(if hashes.len() == 1 {
        hashes.remove(0)
    } else {
        k2_archive::sha256_bytes(hashes.join("\n").as_bytes())
    })
}

/// Evaluates `target` on every task, writing into `out_dir`; skips pairs already done.
pub fn eval_target(
    target: &Target,
    tasks: &[TaskSpec],
    out_dir: &Path,
    batch_size: usize,
    placement: &Placement,
    bar: &ProgressBar,
) -> Result<Vec<(String, Outcome)>> {
    let mut todo = Vec::new();
    let mut out = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let key = ResultKey {
            weights_sha256: target.weights_sha256.clone(),
            task_hash: t.config_hash(),
            harness_version: HARNESS_VERSION.to_string(),
            dtype: placement.dtype.to_string(),
        };
        let name = t.task.name().to_string();
        let done = stored_key(&results_path(out_dir, &name)).as_ref() == Some(&key)
            && samples_path(out_dir, &name).exists();
        if done {
            bar.inc(count_requests(t.task.as_ref(), t.shots, t.limit) as u64);
            out.push((name.clone(), Outcome::Skipped(name)));
        } else {
            todo.push((i, key));
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }
    // Leftovers of a sweep killed while writing this checkpoint's files.
    k2_archive::remove_stale_tmp(out_dir).map_err(|e| EvalError::Other(e.to_string()))?;
    let model = k2_model::load_model_on(&target.dir, placement)
        .map_err(|e| EvalError::Other(e.to_string()))?;
    let tok_path = target.dir.join("tokenizer.json");
    let tokenizer =
        k2_model::load_tokenizer(&tok_path).map_err(|e| EvalError::Other(e.to_string()))?;
    let engine = Engine::new(model, tokenizer, batch_size);
    let mut info = target.info.clone();
    info.num_parameters = engine.model.config().num_params();
    if engine.model.dtype() != candle_core::DType::F32 {
        info.dtype = k2_model::torch_dtype_name(engine.model.dtype()).into();
    }
    if !engine.model.device().is_cpu() {
        info.device = k2_model::device_kind(engine.model.device()).into();
    }
    for (i, key) in todo {
        let t = &tasks[i];
        let name = t.task.name().to_string();
        bar.set_message(format!("{} {}", info.revision, name));
        let start = bar.position();
        let (result, samples) = run_task(&engine, t.task.as_ref(), t.shots, t.limit, &mut |k| {
            bar.set_position(start + k as u64)
        })?;
        write_result(out_dir, &result, &samples, &info, &key)?;
        out.push((name.clone(), Outcome::Evaluated(name)));
    }
    Ok(out)
}

fn write_result(
    out_dir: &Path,
    result: &TaskResult,
    samples: &[crate::evaluate::SampleRecord],
    info: &CheckpointInfo,
    key: &ResultKey,
) -> Result<()> {
    let arch = |e: k2_archive::ArchiveError| EvalError::Other(e.to_string());
    let mut lines = String::new();
    for s in samples {
        lines.push_str(&serde_json::to_string(s).map_err(|e| EvalError::Other(e.to_string()))?);
        lines.push('\n');
    }
    // Samples first, results last: a results file is the mark of a finished pair.
    k2_archive::write_file_atomic(&samples_path(out_dir, &result.task), lines.as_bytes())
        .map_err(arch)?;
    let mut json = serde_json::to_string_pretty(&results_json(result, info, key))
        .map_err(|e| EvalError::Other(e.to_string()))?;
    json.push('\n');
    k2_archive::write_file_atomic(&results_path(out_dir, &result.task), json.as_bytes())
        .map_err(arch)?;
    Ok(())
}

/// Every `ok` checkpoint of a run in step order, verified against the manifest.
fn run_targets(
    run_dir: &Path,
    manifest: &Manifest,
) -> Vec<std::result::Result<Target, (String, String)>> {
    manifest
        .checkpoints
        .iter()
        .filter(|c| c.status == CheckpointStatus::Ok)
        .map(|c| {
            let problems = k2_archive::verify_checkpoint(run_dir, c)
                .map_err(|e| (c.name.clone(), e.to_string()))?;
            if !problems.is_empty() {
                let why: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                return Err((c.name.clone(), why.join("; ")));
            }
            let weights = c
                .files
                .get(k2_model::weights::SINGLE_FILE)
                .cloned()
                .ok_or_else(|| {
                    (
                        c.name.clone(),
                        "manifest lists no model.safetensors".to_string(),
                    )
                })?;
            Ok(Target {
                dir: run_dir.join(&c.name),
                info: CheckpointInfo {
                    model: run_dir.display().to_string(),
                    revision: c.name.clone(),
                    step: Some(c.step),
                    tokens: Some(c.tokens),
                    num_parameters: 0,
                    ..Default::default()
                },
                weights_sha256: weights,
            })
        })
        .collect()
}

/// Evaluates every checkpoint of a run into `run_dir/eval/<ckpt>/`. With `watch`, keeps polling
/// the manifest until the run's last checkpoint (by its config) has been evaluated.
pub fn sweep_run(
    run_dir: &Path,
    tasks: &[TaskSpec],
    batch_size: usize,
    placement: &Placement,
    watch: Option<(usize, Duration)>,
    bar: &ProgressBar,
) -> Result<SweepReport> {
    let layout = RunLayout::new(run_dir);
    let mut report = SweepReport::default();
    let mut seen = std::collections::BTreeSet::new();
    let per_ckpt: usize = tasks
        .iter()
        .map(|t| count_requests(t.task.as_ref(), t.shots, t.limit))
        .sum();
    loop {
        let manifest =
            Manifest::load(&layout.manifest_path()).map_err(|e| EvalError::Other(e.to_string()))?;
        let targets = run_targets(run_dir, &manifest);
        let new: Vec<_> = targets
            .into_iter()
            .filter(|t| match t {
                Ok(t) => !seen.contains(&t.info.revision),
                Err((n, _)) => !seen.contains(n),
            })
            .collect();
        bar.set_length(bar.length().unwrap_or(0) + (new.len() * per_ckpt) as u64);
        for t in new {
            match t {
                Err((name, why)) => {
                    bar.suspend(|| eprintln!("skipping {name}: {why}"));
                    seen.insert(name.clone());
                    report.failed.push((name, why));
                }
                Ok(target) => {
                    let name = target.info.revision.clone();
                    seen.insert(name.clone());
                    let out_dir = run_dir.join("eval").join(&name);
                    match eval_target(&target, tasks, &out_dir, batch_size, placement, bar) {
                        Ok(outcomes) => {
                            for (task, o) in outcomes {
                                match o {
                                    Outcome::Evaluated(_) => {
                                        report.evaluated.push((name.clone(), task))
                                    }
                                    Outcome::Skipped(_) => {
                                        report.skipped.push((name.clone(), task))
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            bar.suspend(|| eprintln!("{name}: {e}"));
                            report.failed.push((name, e.to_string()));
                        }
                    }
                }
            }
        }
        match watch {
            Some((expected, poll)) if seen.len() < expected => std::thread::sleep(poll),
            _ => break,
        }
    }
    Ok(report)
}
