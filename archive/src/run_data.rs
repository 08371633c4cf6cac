//! The run's data files: `data/chunk_NNNN.jsonl` (one packed sample per line: `token_ids`,
//! `source`, `doc`, `offset`, like K2Datasets' `chunk_{i}.jsonl`) and `data/index.json` (per
//! chunk: stage, sequence length, samples, tokens per source, sha256). The trainer writes them;
//! the trainer, `k2 data batch` and the memorization analysis read them through this module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ArchiveError, IoContext};

/// One training sample with its provenance: the source, the document its first token came from,
/// and that token's offset inside the document's token ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub token_ids: Vec<u32>,
    pub source: String,
    pub doc: u64,
    pub offset: u32,
    /// For an injected sample (`source` = `inject:<name>`, `doc` = fact, `offset` = repetition):
    /// the sample it replaced, whose tokens fill the rest of the sequence after the fact's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spliced: Option<Spliced>,
}

/// The tail of an injected sample: tokens `0..` of the replaced sample (`source`, `doc`,
/// `offset`) from sequence position `at` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spliced {
    pub source: String,
    pub doc: u64,
    pub offset: u32,
    pub at: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkInfo {
    pub chunk: u32,
    pub stage: usize,
    pub seq_len: usize,
    pub samples: usize,
    /// Tokens of this chunk per source.
    pub tokens_by_source: BTreeMap<String, u64>,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataIndex {
    pub format: u32,
    pub chunks: Vec<ChunkInfo>,
}

impl DataIndex {
    /// The entry of chunk `chunk`, or an error naming the index file.
    pub fn chunk(&self, data_dir: &Path, chunk: u32) -> Result<&ChunkInfo, ArchiveError> {
        self.chunks.get(chunk as usize).ok_or_else(|| {
            ArchiveError::invalid(&data_dir.join("index.json"), format!("no chunk {chunk}"))
        })
    }
}

pub fn chunk_file(data_dir: &Path, chunk: u32) -> PathBuf {
    data_dir.join(format!("chunk_{chunk:04}.jsonl"))
}

/// The JSON-lines text of a chunk file.
pub fn chunk_jsonl(samples: &[Sample]) -> String {
    let mut s = String::new();
    for x in samples {
        s.push_str(&serde_json::to_string(x).expect("sample serialises"));
        s.push('\n');
    }
    s
}

pub fn read_index(data_dir: &Path) -> Result<DataIndex, ArchiveError> {
    let p = data_dir.join("index.json");
    let text = std::fs::read_to_string(&p).at(&p, "read")?;
    serde_json::from_str(&text).map_err(|e| ArchiveError::JsonLine {
        path: p,
        line: e.line(),
        message: e.to_string(),
    })
}

/// Reads one chunk file, checking its sha256 against the index and the sample length.
pub fn read_chunk(data_dir: &Path, info: &ChunkInfo) -> Result<Vec<Sample>, ArchiveError> {
    let p = chunk_file(data_dir, info.chunk);
    let text = std::fs::read_to_string(&p).at(&p, "read")?;
    let actual = crate::sha256_bytes(text.as_bytes());
    if actual != info.sha256 {
        return Err(ArchiveError::invalid(
            &p,
            format!(
                "sha256 {actual} does not match data/index.json ({})",
                info.sha256
            ),
        ));
    }
    let mut out = Vec::with_capacity(info.samples);
    for (i, line) in text.lines().enumerate() {
        let s: Sample = serde_json::from_str(line).map_err(|e| ArchiveError::JsonLine {
            path: p.clone(),
            line: i + 1,
            message: e.to_string(),
        })?;
        if s.token_ids.len() != info.seq_len {
            return Err(ArchiveError::JsonLine {
                path: p.clone(),
                line: i + 1,
                message: format!("{} tokens, expected {}", s.token_ids.len(), info.seq_len),
            });
        }
        out.push(s);
    }
    Ok(out)
}
