//! The run manifest `checkpoints.toml`: one `[[checkpoint]]` table per published checkpoint.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;
use crate::events::SpikeEvent;
use crate::injection_record::InjectedSteps;
use crate::toml_io::{load_toml, parse_toml, save_toml_atomic, semantic_error};

/// The only manifest format this crate reads and writes.
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: u32,
    pub run: String,
    pub config_hash: String,
    #[serde(default, rename = "checkpoint")]
    pub checkpoints: Vec<CheckpointEntry>,
    /// Loss spikes and what was done about them, in the order they were resolved.
    #[serde(default, rename = "spike", skip_serializing_if = "Vec::is_empty")]
    pub spikes: Vec<SpikeEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointEntry {
    /// Directory name inside the run dir, e.g. `ckpt_0001`.
    pub name: String,
    pub step: u64,
    /// Tokens seen so far.
    pub tokens: u64,
    /// Chunk id(s) trained on since the previous checkpoint.
    pub chunks: Vec<u32>,
    pub stage: u32,
    pub status: CheckpointStatus,
    pub wall_time_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Path relative to the checkpoint dir (`/` separators) -> sha256 (lowercase hex).
    pub files: BTreeMap<String, String>,
    /// Knowledge injections trained since the previous checkpoint, with their steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injected: Vec<InjectedSteps>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointStatus {
    Ok,
    Spike,
    RolledBack,
}

impl std::fmt::Display for CheckpointStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckpointStatus::Ok => "ok",
            CheckpointStatus::Spike => "spike",
            CheckpointStatus::RolledBack => "rolled_back",
        })
    }
}

/// Mirror of the file used only to find line numbers for validation errors.
#[derive(Deserialize)]
struct SpannedManifest {
    format: toml::Spanned<u32>,
    #[serde(default)]
    checkpoint: Vec<SpannedEntry>,
}

#[derive(Deserialize)]
struct SpannedEntry {
    name: toml::Spanned<String>,
    files: toml::Spanned<BTreeMap<String, String>>,
}

/// Checks that a checkpoint name is a plain directory name (no separators, no dot-prefix).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "invalid checkpoint name {name:?}: must be a plain directory name \
             (non-empty, no '/', '\\', leading '.' or control characters)"
        ));
    }
    Ok(())
}

/// Checks one `files` entry: a relative '/'-separated path that stays inside the
/// checkpoint dir, and a lowercase hex sha256.
fn check_file(rel: &str, sha: &str) -> Result<(), String> {
    let bad_path = rel.is_empty()
        || rel.starts_with('/')
        || rel.contains('\\')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad_path {
        return Err(format!(
            "invalid file path {rel:?}: must be relative, '/'-separated, without '.' or '..'"
        ));
    }
    if sha.len() != 64 || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "invalid sha256 {sha:?} for {rel:?}: expected 64 lowercase hex digits"
        ));
    }
    Ok(())
}

fn check_entry(entry: &CheckpointEntry) -> Result<(), (&'static str, String)> {
    check_name(&entry.name).map_err(|m| ("name", m))?;
    for (rel, sha) in &entry.files {
        check_file(rel, sha).map_err(|m| ("files", m))?;
    }
    Ok(())
}

impl Manifest {
    /// An empty manifest for run `run` trained from a config with hash `config_hash`.
    pub fn new(run: impl Into<String>, config_hash: impl Into<String>) -> Self {
        Manifest {
            format: MANIFEST_FORMAT,
            run: run.into(),
            config_hash: config_hash.into(),
            checkpoints: Vec::new(),
            spikes: Vec::new(),
        }
    }

    /// Reads and validates `path`. Errors name the file, line, column, field and problem
    /// (syntax errors, unknown fields, wrong types, unsupported format, duplicate or
    /// invalid checkpoint names, invalid file paths or hashes).
    pub fn load(path: &Path) -> Result<Self, ArchiveError> {
        let (manifest, text): (Manifest, String) = load_toml(path)?;
        let spans: SpannedManifest = parse_toml(path, &text)?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(semantic_error(
                path,
                &text,
                Some(spans.format.span()),
                "format",
                format!(
                    "unsupported manifest format {} (this build reads format {MANIFEST_FORMAT})",
                    manifest.format
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (entry, span) in manifest.checkpoints.iter().zip(&spans.checkpoint) {
            if let Err((field, msg)) = check_entry(entry) {
                let s = if field == "files" {
                    span.files.span()
                } else {
                    span.name.span()
                };
                return Err(semantic_error(
                    path,
                    &text,
                    Some(s),
                    &format!("checkpoint.{field}"),
                    msg,
                ));
            }
            if !seen.insert(entry.name.as_str()) {
                return Err(semantic_error(
                    path,
                    &text,
                    Some(span.name.span()),
                    "checkpoint.name",
                    format!("duplicate checkpoint name {:?}", entry.name),
                ));
            }
        }
        Ok(manifest)
    }

    /// Like [`Manifest::load`], but a missing file gives `Manifest::new(run, config_hash)`.
    /// An existing manifest whose `config_hash` differs is an error.
    pub fn load_or_new(path: &Path, run: &str, config_hash: &str) -> Result<Self, ArchiveError> {
        if !path.exists() {
            return Ok(Manifest::new(run, config_hash));
        }
        let m = Manifest::load(path)?;
        if m.config_hash != config_hash {
            return Err(ArchiveError::invalid(
                path,
                format!(
                    "config_hash {} in the manifest differs from this run's config hash {config_hash}",
                    m.config_hash
                ),
            ));
        }
        Ok(m)
    }

    /// Writes the manifest to `path` atomically (temp file, fsync, rename, fsync dir).
    pub fn save_atomic(&self, path: &Path) -> Result<(), ArchiveError> {
        save_toml_atomic(path, self)
    }

    /// The manifest as TOML text (what [`Manifest::save_atomic`] writes).
    pub fn to_toml_string(&self) -> Result<String, ArchiveError> {
        toml::to_string(self).map_err(|e| ArchiveError::Manifest {
            message: format!("cannot serialize: {e}"),
        })
    }

    /// Appends `entry`. Rejects an invalid or duplicate name, invalid file paths / hashes,
    /// and a step lower than that of the latest `ok` checkpoint.
    pub fn push(&mut self, entry: CheckpointEntry) -> Result<(), ArchiveError> {
        check_entry(&entry).map_err(|(_, message)| ArchiveError::Manifest { message })?;
        if self.get(&entry.name).is_some() {
            return Err(ArchiveError::Manifest {
                message: format!("duplicate checkpoint name {:?}", entry.name),
            });
        }
        if let Some(last) = self.latest_ok() {
            if entry.step < last.step {
                return Err(ArchiveError::Manifest {
                    message: format!(
                        "checkpoint {:?} at step {} is before the latest ok checkpoint {:?} at step {}",
                        entry.name, entry.step, last.name, last.step
                    ),
                });
            }
        }
        self.checkpoints.push(entry);
        Ok(())
    }

    /// Changes the status of checkpoint `name` (e.g. to `rolled_back` after a loss spike,
    /// which lets training continue from an earlier step).
    pub fn set_status(&mut self, name: &str, status: CheckpointStatus) -> Result<(), ArchiveError> {
        match self.checkpoints.iter_mut().find(|c| c.name == name) {
            Some(c) => {
                c.status = status;
                Ok(())
            }
            None => Err(ArchiveError::Manifest {
                message: format!("no checkpoint named {name:?}"),
            }),
        }
    }

    /// Renames checkpoint `from` to `to` (a diverged checkpoint becoming `spike_ckpt_N`).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), ArchiveError> {
        check_name(to).map_err(|message| ArchiveError::Manifest { message })?;
        if self.get(to).is_some() {
            return Err(ArchiveError::Manifest {
                message: format!("duplicate checkpoint name {to:?}"),
            });
        }
        match self.checkpoints.iter_mut().find(|c| c.name == from) {
            Some(c) => {
                c.name = to.to_string();
                Ok(())
            }
            None => Err(ArchiveError::Manifest {
                message: format!("no checkpoint named {from:?}"),
            }),
        }
    }

    /// Rollbacks recorded so far (= the current training attempt).
    pub fn rollbacks(&self) -> u32 {
        self.spikes.iter().filter(|e| e.is_rollback()).count() as u32
    }

    pub fn get(&self, name: &str) -> Option<&CheckpointEntry> {
        self.checkpoints.iter().find(|c| c.name == name)
    }

    /// The `ok` checkpoint with the highest step (the later entry wins a tie).
    pub fn latest_ok(&self) -> Option<&CheckpointEntry> {
        self.checkpoints
            .iter()
            .filter(|c| c.status == CheckpointStatus::Ok)
            .max_by_key(|c| c.step)
    }

    /// All `ok` checkpoints ordered by step (stable for equal steps).
    pub fn ok_checkpoints(&self) -> Vec<&CheckpointEntry> {
        let mut v: Vec<_> = self
            .checkpoints
            .iter()
            .filter(|c| c.status == CheckpointStatus::Ok)
            .collect();
        v.sort_by_key(|c| c.step);
        v
    }
}
