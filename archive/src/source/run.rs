//! A k2 run as a checkpoint source: the manifest lists the checkpoints in step order with the
//! sha256 of every file; a checkpoint is verified against it before use.

use std::path::PathBuf;

use super::{CheckpointSource, Materialised, SourceCheckpoint, SourceError, SourceResult};
use crate::manifest::{CheckpointStatus, Manifest};
use crate::RunLayout;

/// The checkpoints of a k2 run whose manifest status is one of `statuses`.
pub struct RunSource {
    pub dir: PathBuf,
    pub statuses: Vec<CheckpointStatus>,
    manifest: Option<Manifest>,
}

impl RunSource {
    /// Every `ok` checkpoint (what benchmarks evaluate).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_statuses(dir, vec![CheckpointStatus::Ok])
    }

    pub fn with_statuses(dir: impl Into<PathBuf>, statuses: Vec<CheckpointStatus>) -> Self {
        RunSource {
            dir: dir.into(),
            statuses,
            manifest: None,
        }
    }

    /// The manifest as last read by [`CheckpointSource::checkpoints`].
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    fn entry(&self, name: &str) -> SourceResult<&crate::CheckpointEntry> {
        self.manifest
            .as_ref()
            .and_then(|m| m.checkpoints.iter().find(|c| c.name == name))
            .ok_or_else(|| {
                SourceError::Checkpoint(format!(
                    "{}: no checkpoint `{name}` in the manifest",
                    RunLayout::new(&self.dir).manifest_path().display()
                ))
            })
    }
}

impl CheckpointSource for RunSource {
    fn model(&self) -> String {
        self.dir.display().to_string()
    }

    fn checkpoints(&mut self) -> SourceResult<Vec<SourceCheckpoint>> {
        let layout = RunLayout::new(&self.dir);
        let m = Manifest::load(&layout.manifest_path())
            .map_err(|e| SourceError::Fatal(e.to_string()))?;
        let out = m
            .checkpoints
            .iter()
            .filter(|c| self.statuses.contains(&c.status))
            .map(|c| SourceCheckpoint {
                name: c.name.clone(),
                step: Some(c.step),
                tokens: Some(c.tokens),
                status: Some(c.status),
            })
            .collect();
        self.manifest = Some(m);
        Ok(out)
    }

    fn expected_weights(&mut self, c: &SourceCheckpoint) -> SourceResult<Option<String>> {
        let e = self.entry(&c.name)?;
        let single = crate::hub::pull::SINGLE_FILE;
        match e.files.get(single) {
            Some(w) => Ok(Some(w.clone())),
            None => Err(SourceError::Checkpoint(format!(
                "{}: the manifest lists no {single} for it",
                RunLayout::new(&self.dir).manifest_path().display()
            ))),
        }
    }

    fn materialise(
        &mut self,
        c: &SourceCheckpoint,
        _say: &mut dyn FnMut(String),
    ) -> SourceResult<Materialised> {
        let weights = self
            .expected_weights(c)?
            .expect("a run checkpoint's weights are in its manifest");
        let e = self.entry(&c.name)?;
        let problems = crate::verify_checkpoint(&self.dir, e)
            .map_err(|e| SourceError::Checkpoint(e.to_string()))?;
        if !problems.is_empty() {
            let why: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(SourceError::Checkpoint(why.join("; ")));
        }
        Ok(Materialised {
            dir: self.dir.join(&c.name),
            weights_sha256: weights,
            commit: None,
            bytes_downloaded: 0,
            owned: false,
            view_dir: None,
        })
    }

    /// One `ok` checkpoint per chunk of the run's data index, written when the run was set up.
    fn expected_count(&mut self) -> Option<usize> {
        crate::read_index(&RunLayout::new(&self.dir).data_dir())
            .ok()
            .map(|i| i.chunks.len())
    }

    /// The trainer's lock is live.
    fn producer_alive(&mut self) -> Option<bool> {
        let lock = RunLayout::new(&self.dir).trainer_lock_path();
        Some(matches!(
            crate::claim::read_claim(&lock, crate::layout::TRAINER_LOCK_TTL_S),
            crate::claim::ClaimState::Live(_)
        ))
    }

    fn release(&mut self, _c: &SourceCheckpoint, _m: &Materialised) -> SourceResult<u64> {
        Ok(0)
    }
}
