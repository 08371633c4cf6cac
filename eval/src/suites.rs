//! Resolving `--suite NAME` through the repository's top-level `checkpoints.toml`.

use std::path::{Path, PathBuf};

use k2_archive::{SuiteFile, SuiteKind};

use crate::error::{EvalError, Result};

/// The run directory of a `kind = "run"` suite in `./checkpoints.toml`.
pub fn run_dir_of_suite(name: &str) -> Result<PathBuf> {
    run_dir_of_suite_in(Path::new("checkpoints.toml"), name)
}

pub fn run_dir_of_suite_in(file: &Path, name: &str) -> Result<PathBuf> {
    let suites = SuiteFile::load(file).map_err(|e| EvalError::Other(e.to_string()))?;
    let suite = suites.find(name).ok_or_else(|| {
        let names: Vec<&str> = suites.suites.iter().map(|s| s.name.as_str()).collect();
        EvalError::Other(format!(
            "{}: no suite `{name}` (known: {})",
            file.display(),
            names.join(", ")
        ))
    })?;
    match suite.kind {
        SuiteKind::Run => {
            let base = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            suite.run_dir(base).ok_or_else(|| {
                EvalError::Other(format!("{}: suite `{name}` has no path", file.display()))
            })
        }
        SuiteKind::Hub => Err(EvalError::Other(format!(
            "suite `{name}` is on the Hub; `k2 hub` is not implemented yet"
        ))),
    }
}
