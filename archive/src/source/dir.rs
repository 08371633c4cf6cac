//! Checkpoints as plain HF model directories: a directory of them written by any trainer
//! (`checkpoint-N`, `iter_0000100`, `step1000-tokens4B`, ...), or one model directory.

use std::path::{Path, PathBuf};

use super::{
    weights_sha256_of_dir, CheckpointSource, Materialised, SourceCheckpoint, SourceError,
    SourceResult,
};
use crate::hub::{training_order, Revision};

/// The subdirectories of `dir` that hold a `config.json`, in training order by their names
/// (names no scheme knows come last, alphabetically).
pub struct DirSource {
    pub dir: PathBuf,
}

impl DirSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSource { dir: dir.into() }
    }
}

fn plain(path: &Path) -> SourceResult<Materialised> {
    if !path.join("config.json").is_file() {
        return Err(SourceError::Checkpoint(format!(
            "{}: no config.json; not an HF model directory",
            path.display()
        )));
    }
    Ok(Materialised {
        weights_sha256: weights_sha256_of_dir(path)?,
        dir: path.to_path_buf(),
        commit: None,
        bytes_downloaded: 0,
        owned: false,
        view_dir: None,
    })
}

impl CheckpointSource for DirSource {
    fn model(&self) -> String {
        self.dir.display().to_string()
    }

    fn checkpoints(&mut self) -> SourceResult<Vec<SourceCheckpoint>> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| SourceError::Fatal(format!("{}: {e}", self.dir.display())))?;
        let mut names = Vec::new();
        for e in rd {
            let e = e.map_err(|e| SourceError::Fatal(format!("{}: {e}", self.dir.display())))?;
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with('.') && e.path().join("config.json").is_file() {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Err(SourceError::Fatal(format!(
                "{}: no checkpoint directories (subdirectories with a config.json)",
                self.dir.display()
            )));
        }
        Ok(training_order(&names)
            .into_iter()
            .map(|name| {
                let r = Revision::parse(&name);
                SourceCheckpoint {
                    step: r.as_ref().map(|r| r.number),
                    tokens: r.and_then(|r| r.tokens),
                    name,
                    status: None,
                }
            })
            .collect())
    }

    fn expected_weights(&mut self, _c: &SourceCheckpoint) -> SourceResult<Option<String>> {
        Ok(None)
    }

    fn materialise(
        &mut self,
        c: &SourceCheckpoint,
        _say: &mut dyn FnMut(String),
    ) -> SourceResult<Materialised> {
        plain(&self.dir.join(&c.name))
    }

    fn release(&mut self, _c: &SourceCheckpoint, _m: &Materialised) -> SourceResult<u64> {
        Ok(0)
    }
}

/// One HF model directory; its checkpoint is named after the directory.
pub struct ModelSource {
    pub dir: PathBuf,
    /// A model pulled from the Hub: its repository id and revision, which name it in results
    /// instead of the cache path.
    pub hub: Option<(String, String)>,
}

impl ModelSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModelSource {
            dir: dir.into(),
            hub: None,
        }
    }

    /// A snapshot of `repo@revision` in the Hub cache.
    pub fn from_hub(dir: impl Into<PathBuf>, repo: &str, revision: &str) -> Self {
        ModelSource {
            dir: dir.into(),
            hub: Some((repo.to_string(), revision.to_string())),
        }
    }

    fn name(&self) -> String {
        if let Some((_, rev)) = &self.hub {
            return rev.clone();
        }
        self.dir
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy().to_string())
    }
}

impl CheckpointSource for ModelSource {
    fn model(&self) -> String {
        match &self.hub {
            Some((repo, _)) => repo.clone(),
            None => self.dir.display().to_string(),
        }
    }

    fn checkpoints(&mut self) -> SourceResult<Vec<SourceCheckpoint>> {
        Ok(vec![SourceCheckpoint {
            name: self.name(),
            step: None,
            tokens: None,
            status: None,
        }])
    }

    fn expected_weights(&mut self, _c: &SourceCheckpoint) -> SourceResult<Option<String>> {
        Ok(None)
    }

    fn materialise(
        &mut self,
        _c: &SourceCheckpoint,
        _say: &mut dyn FnMut(String),
    ) -> SourceResult<Materialised> {
        plain(&self.dir).map_err(|e| SourceError::Fatal(e.to_string()))
    }

    fn release(&mut self, _c: &SourceCheckpoint, _m: &Materialised) -> SourceResult<u64> {
        Ok(0)
    }
}
