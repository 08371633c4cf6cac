//! The summary a sweep writes beside its results: one JSON line per checkpoint it looked at,
//! saying what happened (`evaluated`, `done`, `duplicate`, `failed`, `claimed`). A single
//! process writes `sweep-summary.jsonl`; shard I of N writes `sweep-summary.shard-I-of-N.jsonl`,
//! and a worker claiming work dynamically `sweep-summary.<host>-<pid>.jsonl`, so concurrent
//! workers never write the same file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;

/// The summary of a single-process sweep.
pub const SUMMARY_FILE: &str = "sweep-summary.jsonl";

/// What happened to one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The checkpoint's name (directory or Hub revision).
    pub revision: String,
    pub step: Option<u64>,
    pub tokens: Option<u64>,
    pub commit: Option<String>,
    pub weights_sha256: Option<String>,
    /// `evaluated`, `done` (every unit already had results), `duplicate`, `failed`, or
    /// `claimed` (every unit left was claimed by another worker).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its snapshot was removed from the cache after evaluation (`--keep`).
    pub evicted: bool,
}

/// The summary file name of a worker (see the module docs).
pub fn summary_file_name(shard: Option<(usize, usize)>, claiming: bool) -> String {
    match (shard, claiming) {
        (Some((i, n)), false) if n > 1 => format!("sweep-summary.shard-{i}-of-{n}.jsonl"),
        (Some((i, n)), true) if n > 1 => format!(
            "sweep-summary.shard-{i}-of-{n}.{}-{}.jsonl",
            crate::claim::host_name(),
            std::process::id()
        ),
        (_, true) => format!(
            "sweep-summary.{}-{}.jsonl",
            crate::claim::host_name(),
            std::process::id()
        ),
        _ => SUMMARY_FILE.to_string(),
    }
}

/// Rewrites a summary atomically.
pub fn write_summary(path: &Path, records: &[CheckpointRecord]) -> Result<(), ArchiveError> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).expect("a record serialises"));
        text.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ArchiveError::io(dir, "create directory", e))?;
    }
    crate::write_file_atomic(path, text.as_bytes())
}

/// Every summary file in `dir` (any worker's), sorted by name.
pub fn summary_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("sweep-summary") && n.ends_with(".jsonl")
            })
        })
        .collect();
    out.sort();
    out
}

/// The records of a summary file; errors name the file and line.
pub fn read_summary(path: &Path) -> Result<Vec<CheckpointRecord>, ArchiveError> {
    let text = std::fs::read_to_string(path).map_err(|e| ArchiveError::io(path, "read", e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                ArchiveError::invalid(path, format!("line {}: not a sweep record: {e}", i + 1))
            })
        })
        .collect()
}
