//! Checkpoint sources: where a sweep's checkpoints come from. A source lists its checkpoints in
//! training order, says what their weights' sha256 should be when it knows without fetching
//! anything, materialises one as an HF model directory on disk, and releases what it fetched.
//!
//! - [`RunSource`]: a k2 run (its manifest; every checkpoint verified against it);
//! - [`HubSource`]: a `kind = "hub"` suite (pulled into the HF cache, evicted on release);
//! - [`DirSource`]: a local directory of HF checkpoints written by any trainer, ordered by the
//!   revision naming rules ([`crate::hub::Revision`]): `ckpt_N`, `stepN`, `stepN-tokensTB`,
//!   `checkpoint-N`, `iter_N`, ...;
//! - [`ModelSource`]: one HF model directory.

mod dir;
mod hub;
mod run;

use std::path::{Path, PathBuf};

pub use dir::{DirSource, ModelSource};
pub use hub::HubSource;
pub use run::RunSource;

use crate::manifest::CheckpointStatus;

/// One checkpoint of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceCheckpoint {
    /// Its name: the checkpoint directory, or the Hub revision.
    pub name: String,
    /// The optimizer step (or checkpoint number) its name or manifest gives.
    pub step: Option<u64>,
    /// Tokens seen, when known.
    pub tokens: Option<u64>,
    /// A k2 run's manifest status (`ok`, `spike`); `None` for other sources.
    pub status: Option<CheckpointStatus>,
}

/// A checkpoint on disk, ready to load.
#[derive(Debug, Clone, PartialEq)]
pub struct Materialised {
    /// An HF model directory.
    pub dir: PathBuf,
    /// sha256 of the weights (of the single file, or of the shards' sha256s sorted by name).
    pub weights_sha256: String,
    /// The commit a Hub revision resolved to.
    pub commit: Option<String>,
    pub bytes_downloaded: u64,
    /// This source fetched it: [`CheckpointSource::release`] frees it.
    pub owned: bool,
    /// Where a converted view of `dir` may be written when it lacks `tokenizer.json` or
    /// safetensors weights (beside the HF cache); `None`: `dir` is used as it is.
    pub view_dir: Option<PathBuf>,
}

/// Why a checkpoint could not be listed or materialised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// This checkpoint cannot be used (missing, corrupt, failed verification); others may.
    #[error("{0}")]
    Checkpoint(String),
    /// No checkpoint of this source can be (gated or missing repository, disk full, an
    /// architecture the job cannot load): the sweep stops.
    #[error("{0}")]
    Fatal(String),
}

pub type SourceResult<T> = Result<T, SourceError>;

/// Where checkpoints come from; see the module docs.
pub trait CheckpointSource {
    /// What results name as the model: the run directory, the Hub repository, the directory.
    fn model(&self) -> String;

    /// The checkpoints in training order. Called again under `--watch` (a run grows).
    fn checkpoints(&mut self) -> SourceResult<Vec<SourceCheckpoint>>;

    /// The weights' sha256 when known without fetching the weights (manifest, Hub listing,
    /// cache); `None` when only [`materialise`](Self::materialise) can tell.
    fn expected_weights(&mut self, c: &SourceCheckpoint) -> SourceResult<Option<String>>;

    /// The checkpoint as a model directory on disk, verified where the source has hashes.
    fn materialise(
        &mut self,
        c: &SourceCheckpoint,
        say: &mut dyn FnMut(String),
    ) -> SourceResult<Materialised>;

    /// How many checkpoints the source will have once complete, when it can tell (a k2 run
    /// that is still training: one `ok` checkpoint per chunk of its data index). `--watch`
    /// polls until that many were seen.
    fn expected_count(&mut self) -> Option<usize> {
        None
    }

    /// Whether whatever writes the source's checkpoints is still at work (a k2 run's trainer
    /// lock); `None` when the source cannot tell.
    fn producer_alive(&mut self) -> Option<bool> {
        None
    }

    /// Frees what [`materialise`](Self::materialise) fetched for `c` (the bytes freed); only
    /// called for `owned` checkpoints.
    fn release(&mut self, c: &SourceCheckpoint, m: &Materialised) -> SourceResult<u64>;
}

/// sha256 of the weights of an HF model directory: the single file's, or the sha256 over the
/// shards' sha256s (sorted by name, one per line) — `model_sha` in results.
pub fn weights_sha256_of_dir(dir: &Path) -> SourceResult<String> {
    let files = crate::hub::pull::weight_files_in(dir)
        .map_err(|e| SourceError::Checkpoint(e.to_string()))?;
    let mut hashes = Vec::with_capacity(files.len());
    for f in &files {
        hashes.push(
            crate::sha256_file(&dir.join(f)).map_err(|e| SourceError::Checkpoint(e.to_string()))?,
        );
    }
    Ok(crate::hub::pull::combine_weight_hashes(hashes))
}
