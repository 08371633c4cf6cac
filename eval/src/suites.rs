//! Resolving `--suite NAME` through the repository's top-level `checkpoints.toml`.

use std::path::{Path, PathBuf};

use k2_archive::{Suite, SuiteFile, SuiteKind};

use crate::error::{EvalError, Result};

/// What a suite name stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum SuiteTarget {
    /// A k2 run directory.
    Run(PathBuf),
    /// Checkpoints on the Hugging Face Hub (see `hub_sweep`).
    Hub(Box<Suite>),
}

/// The run directory of a `kind = "run"` suite in `./checkpoints.toml`.
pub fn run_dir_of_suite(name: &str) -> Result<PathBuf> {
    run_dir_of_suite_in(Path::new("checkpoints.toml"), name)
}

pub fn run_dir_of_suite_in(file: &Path, name: &str) -> Result<PathBuf> {
    match resolve_suite_in(file, name)? {
        SuiteTarget::Run(dir) => Ok(dir),
        SuiteTarget::Hub(_) => Err(EvalError::Suite {
            file: file.to_path_buf(),
            message: format!("suite `{name}` is on the Hub, not a run directory"),
        }),
    }
}

/// The suite `name` of `./checkpoints.toml`.
pub fn resolve_suite(name: &str) -> Result<SuiteTarget> {
    resolve_suite_in(Path::new("checkpoints.toml"), name)
}

pub fn resolve_suite_in(file: &Path, name: &str) -> Result<SuiteTarget> {
    let suites = SuiteFile::load(file)?;
    let suite = suites.find(name).ok_or_else(|| {
        let names: Vec<&str> = suites.suites.iter().map(|s| s.name.as_str()).collect();
        EvalError::Suite {
            file: file.to_path_buf(),
            message: format!("no suite `{name}` (known: {})", names.join(", ")),
        }
    })?;
    match suite.kind {
        SuiteKind::Run => {
            let base = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            suite
                .run_dir(base)
                .map(SuiteTarget::Run)
                .ok_or_else(|| EvalError::Suite {
                    file: file.to_path_buf(),
                    message: format!("suite `{name}` has no path"),
                })
        }
        SuiteKind::Hub => Ok(SuiteTarget::Hub(Box::new(suite.clone()))),
    }
}

/// The first `kind = "hub"` suite of `file` whose `repo` is `repo` (tokens per revision for
/// `k2 hub list`). No file means no suite; a broken one is an error.
pub fn hub_suite_for_repo(file: &Path, repo: &str) -> Result<Option<Suite>> {
    if !file.exists() {
        return Ok(None);
    }
    let suites = SuiteFile::load(file)?;
    Ok(suites
        .suites
        .into_iter()
        .find(|s| s.kind == SuiteKind::Hub && s.repo.as_deref() == Some(repo)))
}
