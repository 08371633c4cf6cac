//! The repository's top-level `checkpoints.toml`, naming checkpoint suites to evaluate.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;
use crate::toml_io::{load_toml, parse_toml, save_toml_atomic, semantic_error};

/// The only suite-file format this crate reads and writes.
pub const SUITES_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub format: u32,
    #[serde(default, rename = "suite")]
    pub suites: Vec<Suite>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteKind {
    /// A local k2 run directory (`path`).
    Run,
    /// A Hugging Face Hub repository (`repo`, `revisions`, ...).
    Hub,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    pub kind: SuiteKind,
    /// Run directory, relative to the suite file's directory unless absolute
    /// (required for `kind = "run"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Hub repository id (`kind = "hub"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Hub revisions (branches / tags), one per checkpoint (`kind = "hub"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_checkpoint: Option<u64>,
}

#[derive(Deserialize)]
struct SpannedFile {
    format: toml::Spanned<u32>,
    #[serde(default)]
    suite: Vec<SpannedSuite>,
}

#[derive(Deserialize)]
struct SpannedSuite {
    name: toml::Spanned<String>,
}

impl Suite {
    /// The run directory of a `kind = "run"` suite, resolved against `base` (the
    /// directory holding the suite file) when relative.
    pub fn run_dir(&self, base: &Path) -> Option<PathBuf> {
        let p = Path::new(self.path.as_deref()?);
        Some(if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        })
    }
}

impl SuiteFile {
    /// Reads and validates `path`: errors name the file, line, column and field for
    /// syntax errors, unknown fields, wrong types, an unsupported format, duplicate or
    /// empty suite names, and a `kind = "run"` suite without `path`.
    pub fn load(path: &Path) -> Result<Self, ArchiveError> {
        let (file, text): (SuiteFile, String) = load_toml(path)?;
        let spans: SpannedFile = parse_toml(path, &text)?;
        if file.format != SUITES_FORMAT {
            return Err(semantic_error(
                path,
                &text,
                Some(spans.format.span()),
                "format",
                format!(
                    "unsupported suite file format {} (this build reads format {SUITES_FORMAT})",
                    file.format
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (suite, span) in file.suites.iter().zip(&spans.suite) {
            let at = Some(span.name.span());
            if suite.name.trim().is_empty() {
                return Err(semantic_error(
                    path,
                    &text,
                    at,
                    "suite.name",
                    "empty suite name",
                ));
            }
            if !seen.insert(suite.name.as_str()) {
                return Err(semantic_error(
                    path,
                    &text,
                    at,
                    "suite.name",
                    format!("duplicate suite name {:?}", suite.name),
                ));
            }
            if suite.kind == SuiteKind::Run && suite.path.as_deref().is_none_or(str::is_empty) {
                return Err(semantic_error(
                    path,
                    &text,
                    at,
                    "suite.path",
                    format!("suite {:?} has kind = \"run\" but no `path`", suite.name),
                ));
            }
        }
        Ok(file)
    }

    /// Writes the suite file atomically.
    pub fn save_atomic(&self, path: &Path) -> Result<(), ArchiveError> {
        save_toml_atomic(path, self)
    }

    pub fn find(&self, name: &str) -> Option<&Suite> {
        self.suites.iter().find(|s| s.name == name)
    }
}
