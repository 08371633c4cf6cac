//! Creating a run directory: the config copy, the tokenizer trained on the corpus, the dealt data
//! chunks, the chunk order, and an empty manifest (written last: its presence marks a complete setup).

use std::path::Path;

use k2_archive::{ChunkOrder, Manifest, RunLayout};
use k2_model::Tokenizer;

use crate::config::TrainConfig;
use crate::dataset::{build_chunks, write_chunks, STAGE_DOC_STRIDE};
use crate::error::{io_err, Result, TrainError};
use crate::tokenizer_train::{to_json, train_bpe};

/// Documents the tokenizer is trained on: the first `train_docs_per_source` of every source of
/// every stage (from that stage's document range).
pub fn tokenizer_corpus(cfg: &TrainConfig) -> Vec<String> {
    let mut docs = Vec::new();
    for (si, stage) in cfg.stages.iter().enumerate() {
        for src in &stage.sources {
            if let Some(s) = k2_corpus::source(&src.name) {
                let first = si as u64 * STAGE_DOC_STRIDE;
                docs.extend(
                    (first..first + cfg.tokenizer.train_docs_per_source).map(|i| s.document(i)),
                );
            }
        }
    }
    docs
}

/// Prepares `out` for a new run. An existing directory is refused unless `force`, in which case
/// it is removed first.
pub fn create_run(cfg: &TrainConfig, out: &Path, force: bool) -> Result<(RunLayout, Tokenizer)> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map_err(io_err(out))?
            .next()
            .is_none();
        if !empty {
            if !force {
                return Err(TrainError::RunExists(out.to_path_buf()));
            }
            std::fs::remove_dir_all(out).map_err(io_err(out))?;
        }
    }
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let layout = RunLayout::new(out);
    k2_archive::write_file_atomic(&layout.config_path(), cfg.to_toml().as_bytes())?;
    let tokenizer = train_bpe(&tokenizer_corpus(cfg), cfg.tokenizer.vocab_size)?;
    k2_archive::write_file_atomic(&layout.tokenizer_path(), to_json(&tokenizer)?.as_bytes())?;
    let chunks = build_chunks(cfg, &tokenizer)?;
    write_chunks(cfg, &chunks, &layout.data_dir())?;
    let mut order = ChunkOrder::identity(cfg.total_chunks());
    order.injections = cfg
        .inject_facts
        .iter()
        .map(|i| k2_archive::InjectionRecord {
            name: i.name.clone(),
            chunk: i.chunk,
            mode: i.mode.name().to_string(),
            facts: i.facts,
            k: i.k,
            offset: i.offset,
            seed: i.seed,
        })
        .collect();
    order.save_atomic(&layout.chunk_order_path())?;
    Manifest::new(cfg.name.clone(), cfg.hash()).save_atomic(&layout.manifest_path())?;
    Ok((layout, tokenizer))
}
