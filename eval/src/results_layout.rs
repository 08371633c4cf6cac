//! Where a checkpoint's benchmark results and samples are written.

use std::path::{Path, PathBuf};

pub fn results_path(out_dir: &Path, task: &str) -> PathBuf {
    out_dir.join(format!("{task}.json"))
}

pub fn samples_path(out_dir: &Path, task: &str) -> PathBuf {
    out_dir.join(format!("{task}.samples.jsonl"))
}

/// Where a checkpoint's results go.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultsLayout {
    /// `<root>/<checkpoint>/<task>.json`: a run (`<run>/eval`), a suite, a directory.
    PerCheckpoint(PathBuf),
    /// `<dir>/<task>.json`: one model directory (`--model`).
    Flat(PathBuf),
}
