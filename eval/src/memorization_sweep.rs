//! `k2 analyze memorization`: every `ok` and `spike` checkpoint of a run on sampled training
//! sequences of every chunk (see [`crate::memorization`]). One file per checkpoint, written
//! atomically; a checkpoint whose file was computed from the same weights, data and settings is
//! skipped (its training labels are refreshed if the manifest or chunk order changed since), so a
//! killed run, rerun, finishes the job. A checkpoint that fails verification against the manifest
//! is reported and skipped; the others go on.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use k2_archive::{ChunkOrder, Manifest, RunLayout};

use crate::error::{EvalError, Result};
use crate::greedy::greedy_continuations;
use crate::memorization::{
    chunk_probes, measured_checkpoints, memorization_dir, memorization_path, score_chunks,
    trained_at, ChunkProbe, ChunkScore, MemorizationFile, Settings, MEMORIZATION_FORMAT, TIE_BREAK,
};

/// What a run did, per checkpoint.
#[derive(Debug, Default)]
pub struct MemorizationReport {
    pub computed: Vec<String>,
    pub skipped: Vec<String>,
    /// Checkpoints that could not be measured, with the reason.
    pub failed: Vec<(String, String)>,
    /// Every checkpoint's file (computed or skipped), in step order.
    pub files: Vec<PathBuf>,
}

fn other(e: impl std::fmt::Display) -> EvalError {
    EvalError::Other(e.to_string())
}

/// Measures every `ok` and `spike` checkpoint of `run_dir` (see the module docs).
pub fn memorization_run(
    run_dir: &Path,
    settings: &Settings,
    batch_size: usize,
    placement: &k2_model::Placement,
    bar: &ProgressBar,
) -> Result<MemorizationReport> {
    settings.validate()?;
    if !run_dir.is_dir() {
        return Err(EvalError::Other(format!(
            "{}: run directory does not exist",
            run_dir.display()
        )));
    }
    let layout = RunLayout::new(run_dir);
    let manifest = Manifest::load(&layout.manifest_path()).map_err(other)?;
    let data_dir = layout.data_dir();
    let index = k2_archive::read_index(&data_dir).map_err(other)?;
    let index_path = data_dir.join("index.json");
    let data_sha = k2_archive::sha256_file(&index_path).map_err(other)?;
    let order = if layout.chunk_order_path().exists() {
        ChunkOrder::load(&layout.chunk_order_path()).map_err(other)?
    } else {
        ChunkOrder::identity(index.chunks.len() as u32)
    };
    let probes = chunk_probes(&data_dir, &index, &order, settings)?;
    let rows: usize = probes.iter().map(|p| p.prompts.len()).sum();
    let ckpts = measured_checkpoints(&manifest.checkpoints);
    bar.set_length(bar.length().unwrap_or(0) + (ckpts.len() * rows) as u64);
    let mut report = MemorizationReport::default();
    let mut cleaned = false;
    for c in ckpts {
        let path = memorization_path(run_dir, &c.name);
        let labels = trained_at(&manifest.checkpoints, c, index.chunks.len());
        let Some(weights) = c.files.get(k2_model::weights::SINGLE_FILE).cloned() else {
            report.failed.push((
                c.name.clone(),
                format!(
                    "{}: the manifest lists no {} for it",
                    layout.manifest_path().display(),
                    k2_model::weights::SINGLE_FILE
                ),
            ));
            continue;
        };
        let mut file = MemorizationFile {
            format: MEMORIZATION_FORMAT,
            run: manifest.run.clone(),
            checkpoint: c.name.clone(),
            status: c.status.to_string(),
            step: c.step,
            tokens: c.tokens,
            chunks_in_interval: c.chunks.clone(),
            weights_sha256: weights,
            data_index_sha256: data_sha.clone(),
            settings: settings.clone(),
            tie_break: TIE_BREAK.to_string(),
            chunks: Vec::new(),
        };
        if let Some(old) = stored(&path) {
            if old.same_inputs(&file.weights_sha256, &data_sha, settings) {
                if let Some(chunks) = relabel(&old, &probes, &labels) {
                    // Same numbers; the labels come from the manifest and the chunk order, which
                    // may have changed since (a later rollback, a deferral).
                    file.chunks = chunks;
                    if file != old {
                        write(&path, &file)?;
                    }
                    bar.inc(rows as u64);
                    report.skipped.push(c.name.clone());
                    report.files.push(path);
                    continue;
                }
            }
        }
        if !cleaned {
            // Leftovers of a run killed while writing a file.
            let dir = memorization_dir(run_dir);
            if dir.is_dir() {
                k2_archive::remove_stale_tmp(&dir).map_err(other)?;
            }
            cleaned = true;
        }
        bar.set_message(c.name.clone());
        match measure(run_dir, c, &probes, settings, batch_size, placement, bar) {
            Ok(pred) => {
                file.chunks = score_chunks(&probes, &pred, &labels, settings.continuation_len);
                write(&path, &file)?;
                report.computed.push(c.name.clone());
                report.files.push(path);
            }
            Err(why) => {
                bar.suspend(|| eprintln!("skipping {}: {why}", c.name));
                bar.inc(rows as u64);
                report.failed.push((c.name.clone(), why));
            }
        }
    }
    Ok(report)
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

/// Verifies the checkpoint, loads it and returns the greedy continuations per chunk probe.
/// The error (a string for the report) names the checkpoint's files.
fn measure(
    run_dir: &Path,
    c: &k2_archive::CheckpointEntry,
    probes: &[ChunkProbe],
    settings: &Settings,
    batch_size: usize,
    placement: &k2_model::Placement,
    bar: &ProgressBar,
) -> std::result::Result<Vec<Vec<Vec<u32>>>, String> {
    let problems = k2_archive::verify_checkpoint(run_dir, c).map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        let why: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(why.join("; "));
    }
    let dir = run_dir.join(&c.name);
    let model = k2_model::load_model_on(&dir, placement).map_err(|e| e.to_string())?;
    let ctx = model.config().max_position_embeddings;
    if settings.window() > ctx {
        return Err(format!(
            "{}: context of {ctx} tokens is shorter than the {}-token prompt + {}-token continuation",
            dir.join("config.json").display(),
            settings.prompt_len,
            settings.continuation_len
        ));
    }
    let prompts: Vec<Vec<u32>> = probes.iter().flat_map(|p| p.prompts.clone()).collect();
    let start = bar.position();
    let flat = greedy_continuations(
        &model,
        &prompts,
        settings.continuation_len,
        batch_size,
        &mut |k| bar.set_position(start + k as u64),
    )
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut it = flat.into_iter();
    Ok(probes
        .iter()
        .map(|p| it.by_ref().take(p.prompts.len()).collect())
        .collect())
}

fn write(path: &Path, file: &MemorizationFile) -> Result<()> {
    let mut json = serde_json::to_string_pretty(file).map_err(other)?;
    json.push('\n');
    k2_archive::write_file_atomic(path, json.as_bytes()).map_err(other)
}
