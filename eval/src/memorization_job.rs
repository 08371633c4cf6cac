//! Memorization as a sweep [`Job`] over a k2 run's `ok` and `spike` checkpoints (see
//! [`crate::memorization`]): one unit per checkpoint, one file `<run>/memorization/<ckpt>.json`
//! written atomically. A checkpoint whose file was computed from the same weights, data and
//! settings is done; its training labels are refreshed if the manifest or chunk order changed
//! since (a later rollback, a deferral).

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use k2_archive::{
    CheckpointEntry, CheckpointStatus, ChunkOrder, Manifest, RunLayout, SourceCheckpoint,
};

use crate::error::{EvalError, Result};
use crate::greedy::greedy_continuations;
use crate::memorization::{
    chunk_probes, measured_checkpoints, memorization_dir, memorization_path, score_chunks,
    trained_at, ChunkProbe, ChunkScore, MemorizationFile, Settings, MEMORIZATION_FORMAT, TIE_BREAK,
};
use crate::sweep::{Job, Loaded};

/// Measures memorization of a run's training data.
pub struct MemorizationJob {
    pub run_dir: PathBuf,
    pub settings: Settings,
    pub batch_size: usize,
    pub placement: k2_model::Placement,
    manifest: Manifest,
    n_chunks: usize,
    data_sha: String,
    probes: Vec<ChunkProbe>,
    rows: usize,
    units: Vec<String>,
}

impl MemorizationJob {
    /// Reads the run's manifest, data index and chunk order and samples the probe sequences.
    pub fn new(
        run_dir: &Path,
        settings: Settings,
        batch_size: usize,
        placement: k2_model::Placement,
    ) -> Result<Self> {
        crate::memorization::validate(&settings)?;
        if !run_dir.is_dir() {
            return Err(EvalError::Invalid {
                path: run_dir.to_path_buf(),
                message: "run directory does not exist".into(),
            });
        }
        let layout = RunLayout::new(run_dir);
        let manifest = Manifest::load(&layout.manifest_path())?;
        let data_dir = layout.data_dir();
        let index = k2_archive::read_index(&data_dir)?;
        let data_sha = k2_archive::sha256_file(&data_dir.join("index.json"))?;
        let order = if layout.chunk_order_path().exists() {
            ChunkOrder::load(&layout.chunk_order_path())?
        } else {
            ChunkOrder::identity(index.chunks.len() as u32)
        };
        let probes = chunk_probes(&data_dir, &index, &order, &settings)?;
        let rows = probes.iter().map(|p| p.prompts.len()).sum();
        Ok(MemorizationJob {
            run_dir: run_dir.to_path_buf(),
            settings,
            batch_size,
            placement,
            manifest,
            n_chunks: index.chunks.len(),
            data_sha,
            probes,
            rows,
            units: vec!["memorization".into()],
        })
    }

    /// The statuses measured: `ok` and `spike`.
    pub fn statuses() -> Vec<CheckpointStatus> {
        vec![CheckpointStatus::Ok, CheckpointStatus::Spike]
    }

    /// The files of every measured checkpoint that has one, in step order (a spike checkpoint
    /// after the `ok` one of the same step).
    pub fn files(&self) -> Vec<PathBuf> {
        measured_checkpoints(&self.manifest.checkpoints)
            .into_iter()
            .map(|c| memorization_path(&self.run_dir, &c.name))
            .filter(|p| p.exists())
            .collect()
    }

    fn entry(&self, name: &str) -> Result<&CheckpointEntry> {
        self.manifest
            .checkpoints
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| EvalError::Invalid {
                path: RunLayout::new(&self.run_dir).manifest_path(),
                message: format!("no checkpoint `{name}`"),
            })
    }

    /// The file for `c` with no scores yet.
    fn file_for(&self, c: &CheckpointEntry, weights: &str) -> MemorizationFile {
        MemorizationFile {
            format: MEMORIZATION_FORMAT,
            run: self.manifest.run.clone(),
            checkpoint: c.name.clone(),
            status: c.status.to_string(),
            step: c.step,
            tokens: c.tokens,
            chunks_in_interval: c.chunks.clone(),
            weights_sha256: weights.to_string(),
            data_index_sha256: self.data_sha.clone(),
            settings: self.settings.clone(),
            tie_break: TIE_BREAK.to_string(),
            chunks: Vec::new(),
        }
    }

    /// Greedy continuations per chunk probe.
    fn measure(&self, dir: &Path, bar: &ProgressBar) -> Result<Vec<Vec<Vec<u32>>>> {
        let model = k2_model::load_decoder_on(dir, &self.placement)?;
        let ctx = model.arch().max_position_embeddings;
        let s = &self.settings;
        if s.window() > ctx {
            return Err(EvalError::Invalid {
                path: dir.join("config.json"),
                message: format!(
                    "context of {ctx} tokens is shorter than the {}-token prompt + {}-token continuation",
                    s.prompt_len, s.continuation_len
                ),
            });
        }
        let prompts: Vec<Vec<u32>> = self.probes.iter().flat_map(|p| p.prompts.clone()).collect();
        let start = bar.position();
        let flat = greedy_continuations(
            &model,
            &prompts,
            s.continuation_len,
            self.batch_size,
            &mut |k| bar.set_position(start + k as u64),
        )
        .map_err(|e| EvalError::Invalid {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut it = flat.into_iter();
        Ok(self
            .probes
            .iter()
            .map(|p| it.by_ref().take(p.prompts.len()).collect())
            .collect())
    }
}

impl Job for MemorizationJob {
    fn verb(&self) -> &'static str {
        "measured"
    }

    fn units(&self) -> &[String] {
        &self.units
    }

    fn accepts(&self, c: &SourceCheckpoint) -> bool {
        c.status
            .is_some_and(|s| matches!(s, CheckpointStatus::Ok | CheckpointStatus::Spike))
    }

    fn cost(&self, _unit: usize) -> u64 {
        self.rows as u64
    }

    fn root(&self) -> PathBuf {
        memorization_dir(&self.run_dir)
    }

    fn claim_path(&self, c: &SourceCheckpoint, _unit: usize) -> PathBuf {
        memorization_dir(&self.run_dir).join(format!("{}.claim", c.name))
    }

    fn done(&self, c: &SourceCheckpoint, weights: Option<&str>, _unit: usize) -> Result<bool> {
        let path = memorization_path(&self.run_dir, &c.name);
        let Some(old) = stored(&path) else {
            return Ok(false);
        };
        let Some(weights) = weights else {
            return Ok(true);
        };
        if !old.same_inputs(weights, &self.data_sha, &self.settings) {
            return Ok(false);
        }
        let entry = self.entry(&c.name)?;
        let labels = trained_at(&self.manifest.checkpoints, entry, self.n_chunks);
        let Some(chunks) = relabel(&old, &self.probes, &labels) else {
            return Ok(false);
        };
        // Same numbers; the labels come from the manifest and the chunk order, which may have
        // changed since.
        let mut file = self.file_for(entry, weights);
        file.chunks = chunks;
        if file != old {
            write(&path, &file)?;
        }
        Ok(true)
    }

    fn run(&self, ckpt: &Loaded, _units: &[usize], bar: &ProgressBar) -> Result<()> {
        let name = &ckpt.checkpoint.name;
        let path = memorization_path(&self.run_dir, name);
        // Leftovers of a worker killed while writing this file.
        k2_archive::remove_stale_tmp_of(&self.root(), &[format!("{name}.json")])?;
        bar.set_message(name.clone());
        let entry = self.entry(name)?;
        let labels = trained_at(&self.manifest.checkpoints, entry, self.n_chunks);
        let pred = self.measure(&ckpt.dir, bar)?;
        let mut file = self.file_for(entry, ckpt.weights_sha256);
        file.chunks = score_chunks(&self.probes, &pred, &labels, self.settings.continuation_len);
        write(&path, &file)
    }
}

/// What measuring a run did: the sweep's report, every checkpoint's file in step order, and the
/// tables `k2 analyze memorization` prints.
pub struct Measured {
    pub report: crate::sweep::SweepReport,
    pub files: Vec<MemorizationFile>,
    pub text: String,
}

/// Measures every `ok` and `spike` checkpoint of `run` (skipping those already done) and
/// renders the checkpoint × chunk grid and the summary table.
pub fn measure_run(
    run: &Path,
    settings: &Settings,
    batch_size: usize,
    placement: &k2_model::Placement,
    bar: &ProgressBar,
) -> Result<Measured> {
    let start = std::time::Instant::now();
    let job = MemorizationJob::new(run, settings.clone(), batch_size, placement.clone())?;
    let mut source = k2_archive::RunSource::with_statuses(run, MemorizationJob::statuses());
    let report = crate::sweep::sweep(&mut source, &job, &Default::default(), bar, &mut |l| {
        bar.suspend(|| eprintln!("{l}"))
    })?;
    let files = job
        .files()
        .iter()
        .map(|p| crate::memorization_summary::read_memorization_file(p))
        .collect::<Result<Vec<_>>>()?;
    let text = format!(
        "token-match rate (%) per checkpoint x chunk (chunks in training order; * = trained on)\n{}\
         exact-match / token-match rate ({} sequences per chunk, {} + {} tokens)\n{}\
         {} in {:.1}s; results in {}\n",
        crate::memorization_summary::grid(&files, false),
        settings.samples_per_chunk,
        settings.prompt_len,
        settings.continuation_len,
        crate::memorization_summary::summary_table(&files),
        report.summary_line("measured"),
        start.elapsed().as_secs_f64(),
        memorization_dir(run).display()
    );
    Ok(Measured {
        report,
        files,
        text,
    })
}

/// A stored file, if it exists and parses (anything else is recomputed).
fn stored(path: &Path) -> Option<MemorizationFile> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The stored scores in training order with fresh positions and training labels; None if the
/// stored file lacks a chunk or measured other sequences.
fn relabel(
    old: &MemorizationFile,
    probes: &[ChunkProbe],
    labels: &[Option<String>],
) -> Option<Vec<ChunkScore>> {
    probes
        .iter()
        .map(|p| {
            let mut c = old.chunks.iter().find(|c| c.chunk == p.chunk)?.clone();
            if c.sample_indices != p.sample_indices {
                return None;
            }
            c.position = p.position;
            c.stage = p.stage;
            c.trained_at = labels.get(p.chunk as usize).cloned().flatten();
            c.trained = c.trained_at.is_some();
            Some(c)
        })
        .collect()
}

fn write(path: &Path, file: &MemorizationFile) -> Result<()> {
    let mut json = serde_json::to_string_pretty(file)?;
    json.push('\n');
    Ok(k2_archive::write_file_atomic(path, json.as_bytes())?)
}
