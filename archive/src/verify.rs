//! Rechecking checkpoint directories against the sha256 recorded in the manifest.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{ArchiveError, IoContext};
use crate::hash::hash_tree;
use crate::layout::RunLayout;
use crate::manifest::{CheckpointEntry, Manifest};

/// One discrepancy between a checkpoint directory and its manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The checkpoint's directory does not exist.
    MissingDir { ckpt: String, path: PathBuf },
    /// A file listed in the manifest is absent.
    MissingFile { ckpt: String, file: String },
    /// A file's content differs from the recorded hash.
    HashMismatch {
        ckpt: String,
        file: String,
        expected: String,
        actual: String,
    },
    /// A file is present but not listed in the manifest.
    ExtraFile { ckpt: String, file: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingDir { ckpt, path } => {
                write!(f, "{ckpt}: directory {} is missing", path.display())
            }
            Problem::MissingFile { ckpt, file } => write!(f, "{ckpt}: file {file} is missing"),
            Problem::HashMismatch {
                ckpt,
                file,
                expected,
                actual,
            } => write!(
                f,
                "{ckpt}: file {file} has sha256 {actual}, manifest says {expected}"
            ),
            Problem::ExtraFile { ckpt, file } => {
                write!(f, "{ckpt}: file {file} is not listed in the manifest")
            }
        }
    }
}

/// Rehashes `run_dir/<entry.name>` and compares it with `entry.files`.
/// Returns the problems found (empty = intact); `Err` only for I/O failures.
pub fn verify_checkpoint(
    run_dir: &Path,
    entry: &CheckpointEntry,
) -> Result<Vec<Problem>, ArchiveError> {
    let dir = run_dir.join(&entry.name);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(ArchiveError::invalid(
                &dir,
                "checkpoint path is not a directory",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(vec![Problem::MissingDir {
                ckpt: entry.name.clone(),
                path: dir,
            }])
        }
        Err(e) => return Err(e).at(&dir, "stat"),
    }
    let actual = hash_tree(&dir)?;
    let mut problems = Vec::new();
    for (file, expected) in &entry.files {
        match actual.get(file) {
            None => problems.push(Problem::MissingFile {
                ckpt: entry.name.clone(),
                file: file.clone(),
            }),
            Some(sha) if sha != expected => problems.push(Problem::HashMismatch {
                ckpt: entry.name.clone(),
                file: file.clone(),
                expected: expected.clone(),
                actual: sha.clone(),
            }),
            Some(_) => {}
        }
    }
    for file in actual.keys() {
        if !entry.files.contains_key(file) {
            problems.push(Problem::ExtraFile {
                ckpt: entry.name.clone(),
                file: file.clone(),
            });
        }
    }
    Ok(problems)
}

/// Verifies every checkpoint listed in `run_dir/checkpoints.toml`, in manifest order.
/// Returns `(checkpoint name, problems)` for each entry (including intact ones, with an
/// empty list).
pub fn verify_run(run_dir: &Path) -> Result<Vec<(String, Vec<Problem>)>, ArchiveError> {
    let manifest = Manifest::load(&RunLayout::new(run_dir).manifest_path())?;
    manifest
        .checkpoints
        .iter()
        .map(|e| Ok((e.name.clone(), verify_checkpoint(run_dir, e)?)))
        .collect()
}
