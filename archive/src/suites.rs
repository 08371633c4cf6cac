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
    /// Revision name with one number placeholder, `{}` or zero-padded `{:03}` (`ckpt_{:03}`,
    /// `step{}`), expanded over `numbers` (`kind = "hub"`, instead of `revisions`). With neither,
    /// every checkpoint branch the Hub lists is used, in training order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_pattern: Option<String>,
    /// Numbers for `revision_pattern`: `"7"`, `"0..=359"`, `"1000..=143000/1000"` (every 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<Vec<String>>,
    /// Tokens per checkpoint interval, for `ckpt_N` names: checkpoint N has seen
    /// `(N - first_checkpoint + 1) * tokens_per_checkpoint` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_checkpoint: Option<u64>,
    /// The number of the checkpoint written after the first interval (default 1; Amber's is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_checkpoint: Option<u64>,
    /// Tokens per optimizer step, for `stepN` names (Pythia: 1024 x 2048 = 2,097,152).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_step: Option<u64>,
    /// Training stage of the suite's checkpoints, as the manifest of a run records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<u32>,
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
    #[serde(default)]
    repo: Option<toml::Spanned<String>>,
    #[serde(default)]
    revision_pattern: Option<toml::Spanned<String>>,
    #[serde(default)]
    numbers: Option<toml::Spanned<Vec<String>>>,
}

/// `pattern` with its placeholder (`{}` or `{:0W}`) replaced by `n`; `None` if it has no valid one.
pub fn expand_pattern(pattern: &str, n: u64) -> Option<String> {
    let open = pattern.find('{')?;
    let close = open + pattern[open..].find('}')?;
    let spec = &pattern[open + 1..close];
    let num = match spec {
        "" => n.to_string(),
        _ => {
            let w: usize = spec.strip_prefix(":0")?.parse().ok()?;
            format!("{n:0w$}")
        }
    };
    let rest = &pattern[close + 1..];
    if rest.contains('{') || rest.contains('}') || pattern[..open].contains('}') {
        return None;
    }
    Some(format!("{}{num}{rest}", &pattern[..open]))
}

/// `"7"`, `"a..=b"` or `"a..=b/step"` -> the numbers.
pub fn parse_numbers(spec: &str) -> Result<Vec<u64>, String> {
    let bad = || format!("`{spec}` is not N, A..=B or A..=B/STEP");
    let s = spec.trim();
    let Some((a, rest)) = s.split_once("..=") else {
        return s.parse().map(|n| vec![n]).map_err(|_| bad());
    };
    let (b, step) = match rest.split_once('/') {
        Some((b, st)) => (b, st.trim().parse::<u64>().map_err(|_| bad())?),
        None => (rest, 1),
    };
    let (a, b): (u64, u64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if step == 0 || a > b {
        return Err(bad());
    }
    Ok((a..=b).step_by(step as usize).collect())
}

impl Suite {
    /// The revisions of a `kind = "hub"` suite, in the file's order: `revisions`, or
    /// `revision_pattern` over `numbers`; `None` when the suite takes every checkpoint branch.
    pub fn hub_revisions(&self) -> Result<Option<Vec<String>>, String> {
        if let Some(r) = &self.revisions {
            return Ok(Some(r.clone()));
        }
        let Some(p) = &self.revision_pattern else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for spec in self.numbers.as_deref().unwrap_or_default() {
            for n in parse_numbers(spec)? {
                out.push(
                    expand_pattern(p, n)
                        .ok_or_else(|| format!("`{p}` has no {{}} or {{:0W}} placeholder"))?,
                );
            }
        }
        Ok(Some(out))
    }

    /// Tokens seen at a checkpoint revision of this suite, from its tokens per step
    /// (`stepN`) or per checkpoint (`ckpt_N`).
    pub fn tokens_of(&self, r: &crate::hub::Revision) -> Option<u64> {
        use crate::hub::Scheme;
        match r.scheme {
            Scheme::Step | Scheme::OlmoStep | Scheme::TrainerCheckpoint | Scheme::MegatronIter => r
                .tokens
                .or_else(|| r.number.checked_mul(self.tokens_per_step?)),
            Scheme::Ckpt | Scheme::Spike => {
                let first = self.first_checkpoint.unwrap_or(1);
                (r.number + 1)
                    .checked_sub(first)?
                    .checked_mul(self.tokens_per_checkpoint?)
            }
            Scheme::MiniStage2 => None,
        }
    }

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

/// A `kind = "hub"` suite needs a valid `repo`, at most one of `revisions` / `revision_pattern`,
/// and `numbers` that parse.
fn check_hub_suite(
    path: &Path,
    text: &str,
    suite: &Suite,
    span: &SpannedSuite,
) -> Result<(), ArchiveError> {
    let name_at = Some(span.name.span());
    let err = |at, field: &str, msg: String| Err(semantic_error(path, text, at, field, msg));
    let Some(repo) = suite.repo.as_deref() else {
        return err(
            name_at,
            "suite.repo",
            format!("suite {:?} has kind = \"hub\" but no `repo`", suite.name),
        );
    };
    if let Err(e) = crate::hub::cache::check_repo_id(repo) {
        return err(
            span.repo.as_ref().map(|r| r.span()),
            "suite.repo",
            e.to_string(),
        );
    }
    let pat_at = span.revision_pattern.as_ref().map(|p| p.span());
    if suite.revisions.is_some() && suite.revision_pattern.is_some() {
        return err(
            pat_at,
            "suite.revision_pattern",
            format!(
                "suite {:?} has both `revisions` and `revision_pattern`; give one",
                suite.name
            ),
        );
    }
    if suite.revision_pattern.is_some() != suite.numbers.is_some() {
        return err(
            pat_at.or(name_at),
            "suite.numbers",
            format!(
                "suite {:?}: `revision_pattern` and `numbers` go together",
                suite.name
            ),
        );
    }
    if let Err(e) = suite.hub_revisions() {
        let at = span.numbers.as_ref().map(|n| n.span()).or(pat_at);
        return err(at, "suite.numbers", format!("suite {:?}: {e}", suite.name));
    }
    Ok(())
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
            if suite.kind == SuiteKind::Hub {
                check_hub_suite(path, &text, suite, span)?;
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
