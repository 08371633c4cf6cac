//! `<run>/token_curves/<checkpoint>.json`: the surprisal of every token of a fixed held-out text
//! at one checkpoint (token learning curves, Chang & Bergen 2024), written by
//! `k2 analyze tokens`, atomically, one file per checkpoint.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;

pub const TOKEN_CURVES_FORMAT: u32 = 1;

/// One held-out document: its token ids (after the EOS it is scored behind) and the surprisal
/// `-ln p(token | EOS, earlier tokens)` of each, in nats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOutDoc {
    pub source: String,
    pub doc: u64,
    pub ids: Vec<u32>,
    pub surprisal: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCurvesFile {
    pub format: u32,
    pub run: String,
    pub checkpoint: String,
    pub status: String,
    pub step: u64,
    pub tokens: u64,
    pub weights_sha256: String,
    /// sha256 of the held-out token ids.
    pub text_sha256: String,
    pub vocab_size: usize,
    pub docs: Vec<HeldOutDoc>,
}

pub fn read_token_curves_file(path: &Path) -> Result<TokenCurvesFile, ArchiveError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ArchiveError::invalid(path, e.to_string()))?;
    let f: TokenCurvesFile = serde_json::from_str(&text)
        .map_err(|e| ArchiveError::invalid(path, format!("line {}: {e}", e.line())))?;
    if f.format != TOKEN_CURVES_FORMAT {
        return Err(ArchiveError::invalid(
            path,
            format!(
                "unsupported format {} (this build reads {TOKEN_CURVES_FORMAT})",
                f.format
            ),
        ));
    }
    Ok(f)
}
