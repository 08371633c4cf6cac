//! What the per-checkpoint analysis jobs (acquisition, token curves) share around the one file
//! each writes per checkpoint: the checkpoint's manifest entry, and the file's directory made
//! ready (created, a killed writer's leftovers removed).

use std::path::Path;

use k2_archive::{CheckpointEntry, Manifest, RunLayout};

use crate::error::{EvalError, Result};

/// The manifest entry of checkpoint `name` of the run in `run_dir`.
pub fn manifest_entry<'a>(
    manifest: &'a Manifest,
    run_dir: &Path,
    name: &str,
) -> Result<&'a CheckpointEntry> {
    manifest
        .checkpoints
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| EvalError::Invalid {
            path: RunLayout::new(run_dir).manifest_path(),
            message: format!("no checkpoint `{name}`"),
        })
}

/// Creates `root` and removes the temporaries a killed writer of `<name>.json` left there.
pub fn prepare(root: &Path, name: &str) -> Result<()> {
    std::fs::create_dir_all(root).map_err(|e| EvalError::Invalid {
        path: root.to_path_buf(),
        message: e.to_string(),
    })?;
    k2_archive::remove_stale_tmp_of(root, &[format!("{name}.json")])?;
    Ok(())
}
