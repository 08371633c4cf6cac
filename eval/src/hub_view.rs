//! The model directory a hub sweep evaluates. Usually the cached snapshot itself; for a checkpoint
//! that ships only a SentencePiece `tokenizer.model`, a view beside the cache
//! (`<cache>/../k2-views/models--org--name/<commit>/`) with links to the snapshot's files and a
//! `tokenizer.json` converted from the model (`sp_tokenizer`). The Hugging Face cache itself is
//! never written to with anything the Hub did not serve.

use std::path::{Path, PathBuf};

use k2_archive::hub::HubCache;

use crate::error::{io_err, EvalError, Result};

/// `<cache>/../k2-views/models--org--name/<commit>`.
pub fn view_dir(cache: &HubCache, repo: &str, commit: &str) -> PathBuf {
    let repo_dir = cache.repo_dir(repo);
    let folder = repo_dir.file_name().unwrap_or_default().to_os_string();
    cache
        .root
        .parent()
        .unwrap_or(&cache.root)
        .join("k2-views")
        .join(folder)
        .join(commit)
}

/// The directory to evaluate for the snapshot `snapshot` of `repo@commit`.
pub fn model_dir(cache: &HubCache, repo: &str, commit: &str, snapshot: &Path) -> Result<PathBuf> {
    if snapshot.join("tokenizer.json").exists() {
        return Ok(snapshot.to_path_buf());
    }
    let sp = snapshot.join("tokenizer.model");
    if !sp.exists() {
        return Err(EvalError::Other(format!(
            "{}: neither tokenizer.json nor tokenizer.model",
            snapshot.display()
        )));
    }
    let view = view_dir(cache, repo, commit);
    if view.join("tokenizer.json").exists() {
        return Ok(view);
    }
    std::fs::create_dir_all(&view).map_err(io_err(&view))?;
    for f in cache.snapshot_files(repo, commit) {
        if f.contains('/') {
            continue;
        }
        let dst = view.join(&f);
        if dst.symlink_metadata().is_ok() {
            std::fs::remove_file(&dst).map_err(io_err(&dst))?;
        }
        let src = std::path::absolute(snapshot.join(&f)).map_err(io_err(snapshot))?;
        link(&src, &dst)?;
    }
    let json = crate::sp_tokenizer::tokenizer_json(&sp)?;
    let text = serde_json::to_string(&json).map_err(|e| EvalError::Other(e.to_string()))?;
    // Written last: its presence marks a finished view.
    k2_archive::write_file_atomic(&view.join("tokenizer.json"), text.as_bytes())
        .map_err(|e| EvalError::Other(e.to_string()))?;
    Ok(view)
}

#[cfg(unix)]
fn link(src: &Path, dst: &Path) -> Result<()> {
    std::os::unix::fs::symlink(src, dst).map_err(io_err(dst))
}

#[cfg(not(unix))]
fn link(src: &Path, dst: &Path) -> Result<()> {
    std::fs::copy(src, dst).map(|_| ()).map_err(io_err(dst))
}

/// Removes the view of `repo@commit`, if any (with the snapshot's eviction).
pub fn remove_view(cache: &HubCache, repo: &str, commit: &str) -> Result<()> {
    let view = view_dir(cache, repo, commit);
    if view.exists() {
        std::fs::remove_dir_all(&view).map_err(io_err(&view))?;
    }
    Ok(())
}
