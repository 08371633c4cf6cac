//! The memorization file, `<run>/memorization/<ckpt>.json`: what `k2 analyze memorization`
//! writes and `k2 report` reads (see `k2_eval::memorization` for how the numbers are measured).

use serde::{Deserialize, Serialize};

/// The format version written in every memorization file.
pub const MEMORIZATION_FORMAT: u32 = 1;

/// What decides the numbers besides the weights and the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Sequences drawn per chunk (fewer when the chunk has fewer samples).
    pub samples_per_chunk: usize,
    pub prompt_len: usize,
    pub continuation_len: usize,
    /// Seed of `random.Random(seed).sample(...)`, the same for every chunk.
    pub seed: u64,
}

impl Default for Settings {
    /// 32 sequences per chunk, a 32-token prompt and a 32-token continuation (Analysis360's
    /// lengths), seed 42 (Analysis360's shuffle seed).
    fn default() -> Self {
        Settings {
            samples_per_chunk: 32,
            prompt_len: 32,
            continuation_len: 32,
            seed: 42,
        }
    }
}

impl Settings {
    /// Rejects zero counts and lengths (the reason names the setting).
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("samples per chunk", self.samples_per_chunk),
            ("prompt length", self.prompt_len),
            ("continuation length", self.continuation_len),
        ] {
            if v == 0 {
                return Err(format!("{name} must be >= 1"));
            }
        }
        Ok(())
    }

    /// Tokens of a training sequence a measurement reads.
    pub fn window(&self) -> usize {
        self.prompt_len + self.continuation_len
    }
}

/// The scores of one (checkpoint, chunk) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkScore {
    pub chunk: u32,
    /// Position of the chunk in `chunk_order.toml` (0 = trained first).
    pub position: u32,
    /// Stage as written in `data/index.json`.
    pub stage: usize,
    /// Whether this checkpoint's weights have been trained on the chunk.
    pub trained: bool,
    /// The checkpoint (of this checkpoint's lineage) after whose interval the chunk was trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_at: Option<String>,
    /// Sequences measured.
    pub n: usize,
    pub exact_match: f64,
    pub token_match: f64,
    /// The sampled sequences' line indices (0-based) in the chunk file, in draw order.
    pub sample_indices: Vec<usize>,
    /// Continuation tokens reproduced, per sampled sequence.
    pub matched_tokens: Vec<usize>,
}

/// `<run>/memorization/<ckpt>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorizationFile {
    pub format: u32,
    pub run: String,
    pub checkpoint: String,
    /// The checkpoint's manifest status (`ok` or `spike`).
    pub status: String,
    pub step: u64,
    pub tokens: u64,
    /// Chunks trained in this checkpoint's own interval.
    pub chunks_in_interval: Vec<u32>,
    /// sha256 of `model.safetensors` from the manifest.
    pub weights_sha256: String,
    /// sha256 of `data/index.json` (which holds every chunk file's sha256).
    pub data_index_sha256: String,
    pub settings: Settings,
    pub tie_break: String,
    /// In training order.
    pub chunks: Vec<ChunkScore>,
}

impl MemorizationFile {
    /// Whether the scores in this file hold for these weights, data and settings.
    pub fn same_inputs(&self, weights_sha256: &str, data_sha256: &str, s: &Settings) -> bool {
        self.format == MEMORIZATION_FORMAT
            && self.weights_sha256 == weights_sha256
            && self.data_index_sha256 == data_sha256
            && &self.settings == s
    }
}
