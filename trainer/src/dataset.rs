//! The run's data: every chunk built once from the config and the tokenizer, stored in the run
//! directory as `data/chunk_NNNN.jsonl` (one sample per line: `token_ids`, `source`, `doc`,
//! `offset`, like K2Datasets' `chunk_{i}.jsonl`) with `data/index.json` (per chunk: stage, samples,
//! tokens per source, sha256). Any training batch can be reconstructed from these files and the
//! chunk order, and the files themselves are reproducible from the config.

use std::collections::BTreeMap;
use std::path::Path;

use k2_model::Tokenizer;

use crate::chunks::{deal, per_chunk_counts, pseudo_chunks, shuffled_chunk};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::packing::{pack_source, Sample};

/// Documents of stage `s` start at `s * STAGE_DOC_STRIDE`, so stages never share a document.
pub const STAGE_DOC_STRIDE: u64 = 1_000_000_000;

pub use k2_archive::{chunk_file, read_chunk, read_index, ChunkInfo, DataIndex};

/// Builds every chunk of every stage. Returns chunks indexed by chunk id.
pub fn build_chunks(cfg: &TrainConfig, tokenizer: &Tokenizer) -> Result<Vec<Vec<Sample>>> {
    let spc = cfg.samples_per_chunk();
    let mut all = Vec::with_capacity(cfg.total_chunks() as usize);
    for (si, stage) in cfg.stages.iter().enumerate() {
        let shares: Vec<f64> = stage.sources.iter().map(|s| s.share).collect();
        let counts = per_chunk_counts(&shares, spc);
        let mut per_chunk: Vec<Vec<Sample>> = vec![Vec::with_capacity(spc); stage.chunks as usize];
        for (src, &k) in stage.sources.iter().zip(&counts) {
            if k == 0 {
                continue;
            }
            let source = k2_corpus::source(&src.name).ok_or_else(|| TrainError::Field {
                field: "stage.source.name".into(),
                reason: format!("unknown source `{}`", src.name),
            })?;
            let p = pseudo_chunks(stage.chunks, src.repeat);
            let samples = pack_source(
                source.as_ref(),
                tokenizer,
                stage.seq_len,
                si as u64 * STAGE_DOC_STRIDE,
                k * p,
            )?;
            for (t, idx) in deal(samples.len(), stage.chunks, src.repeat)
                .into_iter()
                .enumerate()
            {
                per_chunk[t].extend(idx.into_iter().map(|i| samples[i].clone()));
            }
        }
        let first = cfg.first_chunk(si);
        for (t, samples) in per_chunk.into_iter().enumerate() {
            let id = first + t as u32;
            let mut samples = shuffled_chunk(samples, cfg.data.shuffle_seed_base + id as u64);
            crate::injection::apply(
                &cfg.inject_facts,
                id,
                &mut samples,
                cfg.train.global_batch,
                tokenizer,
            )?;
            all.push(samples);
        }
    }
    Ok(all)
}

/// Writes every chunk and the index (atomically, file by file).
pub fn write_chunks(
    cfg: &TrainConfig,
    chunks: &[Vec<Sample>],
    data_dir: &Path,
) -> Result<DataIndex> {
    let mut infos = Vec::with_capacity(chunks.len());
    for (id, samples) in chunks.iter().enumerate() {
        let text = k2_archive::chunk_jsonl(samples);
        k2_archive::write_file_atomic(&chunk_file(data_dir, id as u32), text.as_bytes())?;
        let mut tokens_by_source = BTreeMap::new();
        for s in samples {
            *tokens_by_source.entry(s.source.clone()).or_insert(0) += s.token_ids.len() as u64;
        }
        let stage = cfg.stage_of_chunk(id as u32);
        infos.push(ChunkInfo {
            chunk: id as u32,
            stage,
            seq_len: cfg.stages[stage].seq_len,
            samples: samples.len(),
            tokens_by_source,
            sha256: k2_archive::sha256_bytes(text.as_bytes()),
        });
    }
    let index = DataIndex {
        format: 1,
        chunks: infos,
    };
    let json = serde_json::to_string_pretty(&index).expect("index serialises");
    k2_archive::write_file_atomic(&data_dir.join("index.json"), json.as_bytes())?;
    Ok(index)
}
