//! Benchmarks as a sweep [`Job`]: one unit per task. Each (checkpoint, task) pair writes
//! `<out>/<task>.samples.jsonl` then `<out>/<task>.json` (lm-eval layout), atomically; the
//! results file is the mark of a finished pair. A pair whose results exist for the same weights
//! hash, task config hash, harness version and dtype is done.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use indicatif::ProgressBar;
use k2_archive::SourceCheckpoint;
use k2_model::Placement;

use crate::engine::Engine;
use crate::error::Result;
use crate::evaluate::{count_requests, run_prepared, SampleRecord};
use crate::prepared::Prepared;
use crate::results::{
    read_metrics, results_file, stored_key, CheckpointInfo, ResultKey, TaskResult, HARNESS_VERSION,
};
pub use crate::results_layout::{results_path, samples_path, ResultsLayout};
use crate::summary::headline;
use crate::sweep::{Job, Loaded, SweepReport};
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

    /// Requests one checkpoint makes for this task.
    pub fn requests(&self) -> usize {
        count_requests(self.task.as_ref(), self.shots, self.limit)
    }
}

/// Evaluates tasks on every checkpoint.
pub struct BenchmarkJob {
    pub tasks: Vec<TaskSpec>,
    pub layout: ResultsLayout,
    pub batch_size: usize,
    pub placement: Placement,
    /// YAML groups aggregated from the tasks' results (`write_groups`), shown after them.
    pub groups: Vec<crate::yaml_tasks::task_index::GroupSpec>,
    names: Vec<String>,
    /// Each task's requests and token ids, built on first use and shared by every checkpoint.
    prepared: Vec<OnceLock<Prepared>>,
}

impl BenchmarkJob {
    pub fn new(
        tasks: Vec<TaskSpec>,
        layout: ResultsLayout,
        batch_size: usize,
        placement: Placement,
    ) -> Self {
        let names = tasks.iter().map(|t| t.task.name().to_string()).collect();
        let prepared = tasks.iter().map(|_| OnceLock::new()).collect();
        BenchmarkJob {
            tasks,
            layout,
            batch_size,
            placement,
            groups: Vec::new(),
            names,
            prepared,
        }
    }

    /// Writes each group's results in every checkpoint directory of the sweep whose tasks are
    /// all scored (lm-eval's group aggregation); groups with a missing task are skipped there.
    pub fn write_groups(&self, report: &SweepReport) -> Result<()> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let dirs: Vec<PathBuf> = match &self.layout {
            ResultsLayout::Flat(dir) => vec![dir.clone()],
            ResultsLayout::PerCheckpoint(_) => report
                .records
                .iter()
                .map(|r| self.out_dir(&r.revision))
                .collect(),
        };
        for d in dirs {
            for g in &self.groups {
                crate::yaml_tasks::group_results::write_group(&d, g)?;
            }
        }
        Ok(())
    }

    /// The columns of the table: the tasks, then the groups.
    fn shown(&self) -> Vec<String> {
        let mut v = self.names.clone();
        v.extend(self.groups.iter().map(|g| g.name.clone()));
        v
    }

    /// Task `unit`'s requests, built on the first call.
    pub fn prepared(&self, unit: usize) -> &Prepared {
        self.prepared[unit].get_or_init(|| {
            let t = &self.tasks[unit];
            Prepared::build(t.task.as_ref(), t.shots, t.limit)
        })
    }

    /// The results directory of a checkpoint.
    pub fn out_dir(&self, checkpoint: &str) -> PathBuf {
        match &self.layout {
            ResultsLayout::PerCheckpoint(root) => root.join(checkpoint),
            ResultsLayout::Flat(dir) => dir.clone(),
        }
    }

    fn key(&self, t: &TaskSpec, weights: &str) -> ResultKey {
        ResultKey {
            weights_sha256: weights.to_string(),
            task_hash: t.config_hash(),
            harness_version: HARNESS_VERSION.to_string(),
            dtype: self.placement.dtype.to_string(),
        }
    }

    /// Checkpoint × task headline metrics of a sweep, with tokens and status (`·`: a pair
    /// another worker owns; `-`: no value); a single model's sweep lists every metric instead.
    pub fn table(&self, report: &SweepReport) -> Result<String> {
        let shown = self.shown();
        if let ResultsLayout::Flat(dir) = &self.layout {
            return crate::summary::table_for_dir(dir, &shown);
        }
        let width: Vec<usize> = shown.iter().map(|t| t.len().max(8)).collect();
        let mut s = format!("{:<22} {:>16} {:<10}", "checkpoint", "tokens", "status");
        for (t, w) in shown.iter().zip(&width) {
            s.push_str(&format!(" {:>w$}", t, w = w));
        }
        s.push('\n');
        for r in &report.records {
            let tokens = r.tokens.map_or("-".to_string(), |t| t.to_string());
            s.push_str(&format!(
                "{:<22} {:>16} {:<10}",
                r.revision, tokens, r.status
            ));
            for (t, w) in shown.iter().zip(&width) {
                // A pair another worker owns (--shard, --claim) is not this sweep's to show.
                let pair = (r.revision.clone(), t.clone());
                if report.others.contains(&pair) || report.claimed_elsewhere.contains(&pair) {
                    s.push_str(&format!(" {:>w$}", "·", w = w));
                    continue;
                }
                let p = results_path(&self.out_dir(&r.revision), t);
                let v = if p.exists() {
                    headline(&read_metrics(&p)?).map(|(_, v)| v)
                } else {
                    None
                };
                match v {
                    Some(v) => s.push_str(&format!(" {:>w$.3}", v, w = w)),
                    None => s.push_str(&format!(" {:>w$}", "-", w = w)),
                }
            }
            if let Some(d) = &r.duplicate_of {
                s.push_str(&format!("  (= {d})"));
            }
            s.push('\n');
        }
        Ok(s)
    }
}

impl Job for BenchmarkJob {
    fn verb(&self) -> &'static str {
        "evaluated"
    }

    fn units(&self) -> &[String] {
        &self.names
    }

    fn cost(&self, unit: usize) -> u64 {
        self.prepared(unit).requests() as u64
    }

    fn root(&self) -> PathBuf {
        match &self.layout {
            ResultsLayout::PerCheckpoint(root) | ResultsLayout::Flat(root) => root.clone(),
        }
    }

    fn claim_path(&self, c: &SourceCheckpoint, unit: usize) -> PathBuf {
        self.out_dir(&c.name)
            .join(format!("{}.claim", self.names[unit]))
    }

    fn done(&self, c: &SourceCheckpoint, weights: Option<&str>, unit: usize) -> Result<bool> {
        let out = self.out_dir(&c.name);
        let name = &self.names[unit];
        if !samples_path(&out, name).exists() {
            return Ok(false);
        }
        let stored = stored_key(&results_path(&out, name));
        Ok(match weights {
            Some(w) => stored.as_ref() == Some(&self.key(&self.tasks[unit], w)),
            None => stored.is_some(),
        })
    }

    fn run(&self, ckpt: &Loaded, units: &[usize], bar: &ProgressBar) -> Result<()> {
        let c = ckpt.checkpoint;
        let out_dir = self.out_dir(&c.name);
        // Leftovers of a worker killed while writing these pairs' files.
        let files: Vec<String> = units
            .iter()
            .flat_map(|&u| {
                let n = &self.names[u];
                [format!("{n}.json"), format!("{n}.samples.jsonl")]
            })
            .collect();
        k2_archive::remove_stale_tmp_of(&out_dir, &files)?;
        let model = k2_model::load_decoder_on(&ckpt.dir, &self.placement)?;
        let tok_path = ckpt.dir.join("tokenizer.json");
        let tokenizer = k2_model::CheckpointTokenizer::load(&ckpt.dir)?;
        crate::engine::check_vocab(&model, &tokenizer, &tok_path)?;
        let engine = Engine::new(model, tokenizer, self.batch_size);
        let mut info = CheckpointInfo {
            model: ckpt.model.to_string(),
            revision: c.name.clone(),
            step: c.step,
            tokens: c.tokens,
            num_parameters: engine.model.num_params(),
            ..Default::default()
        };
        if engine.model.dtype() != candle_core::DType::F32 {
            info.dtype = k2_model::torch_dtype_name(engine.model.dtype()).into();
        }
        if !engine.model.device().is_cpu() {
            info.device = k2_model::device_kind(engine.model.device()).into();
        }
        for &u in units {
            let t = &self.tasks[u];
            bar.set_message(format!("{} {}", c.name, self.names[u]));
            let start = bar.position();
            let prepared = self.prepared(u);
            let (result, samples) = run_prepared(
                &engine,
                t.task.as_ref(),
                t.shots,
                t.limit,
                prepared,
                &mut |k| bar.set_position(start + k as u64),
            )?;
            let key = self.key(t, ckpt.weights_sha256);
            write_result(&out_dir, &result, &samples, &info, &key)?;
        }
        Ok(())
    }
}

fn write_result(
    out_dir: &Path,
    result: &TaskResult,
    samples: &[SampleRecord],
    info: &CheckpointInfo,
    key: &ResultKey,
) -> Result<()> {
    let mut lines = String::new();
    for s in samples {
        lines.push_str(&serde_json::to_string(s)?);
        lines.push('\n');
    }
    // Samples first, results last: a results file is the mark of a finished pair.
    k2_archive::write_file_atomic(&samples_path(out_dir, &result.task), lines.as_bytes())?;
    let json = results_file(result, info, key).to_json();
    k2_archive::write_file_atomic(&results_path(out_dir, &result.task), json.as_bytes())?;
    Ok(())
}
