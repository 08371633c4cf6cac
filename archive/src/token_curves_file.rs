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
    crate::json_file::read_versioned_json(path, TOKEN_CURVES_FORMAT, |f: &TokenCurvesFile| f.format)
}
