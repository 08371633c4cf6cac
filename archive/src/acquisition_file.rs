//! The files of a knowledge-injection experiment, under `<run>/acquisition/`:
//! * `<checkpoint>.json`: every probe's target-span log-probability at one checkpoint
//!   (written by `k2 analyze acquisition`, atomically, one per checkpoint);
//! * `dense.jsonl`: the same scores after single training steps around an injection (written by
//!   the trainer for `dense_steps`; a step trained twice, after a resume or a rollback, has a
//!   line per attempt and the last one is the step of the surviving run).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;

pub const ACQUISITION_FORMAT: u32 = 1;

/// One probe's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeScore {
    pub injection: String,
    /// `memorization`, `semantic` or `composition`.
    pub kind: String,
    pub fact: usize,
    /// A fact of the injection's control set (never injected).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub control: bool,
    /// Sum of the target span's token log-probabilities (nats).
    pub logprob: f64,
}

/// `<checkpoint>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquisitionFile {
    pub format: u32,
    pub run: String,
    pub checkpoint: String,
    pub status: String,
    pub step: u64,
    pub tokens: u64,
    pub weights_sha256: String,
    /// sha256 of the chunk order the probes were built from (its injections).
    pub probes_sha256: String,
    pub scores: Vec<ProbeScore>,
}

/// One line of `dense.jsonl`: the scores after training step `step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseLine {
    pub step: u64,
    pub attempt: u32,
    pub scores: Vec<ProbeScore>,
}

/// Reads `dense.jsonl`, keeping the last line of every step (the surviving attempt), in step
/// order. A missing file is no lines.
pub fn read_dense(path: &Path) -> Result<Vec<DenseLine>, ArchiveError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| ArchiveError::invalid(path, e.to_string()))?;
    let mut by_step = std::collections::BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: DenseLine = serde_json::from_str(line)
            .map_err(|e| ArchiveError::invalid(path, format!("line {}: {e}", i + 1)))?;
        by_step.insert(l.step, l);
    }
    Ok(by_step.into_values().collect())
}

/// Reads one `<checkpoint>.json`.
pub fn read_acquisition_file(path: &Path) -> Result<AcquisitionFile, ArchiveError> {
    crate::json_file::read_versioned_json(path, ACQUISITION_FORMAT, |f: &AcquisitionFile| f.format)
}
