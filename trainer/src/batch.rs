//! Reconstructing the exact samples of any training step from the run directory: step `s` (1-based)
//! is step `(s-1) mod spc` of the interval at position `(s-1) / spc` of the chunk order, and takes
//! that chunk's samples `[j·B, (j+1)·B)`.

use std::path::Path;

use k2_archive::{ChunkOrder, RunLayout};

use crate::config::TrainConfig;
use crate::dataset::{read_chunk, read_index};
use crate::error::{Result, TrainError};
use crate::packing::Sample;

/// Where a step's batch lives.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLocation {
    pub step: u64,
    pub position: u32,
    pub chunk: u32,
    pub first_sample: usize,
    pub samples: usize,
}

pub fn locate(cfg: &TrainConfig, order: &ChunkOrder, step: u64) -> Result<BatchLocation> {
    let total = cfg.total_steps();
    if step == 0 || step > total {
        return Err(TrainError::Field {
            field: "--step".into(),
            reason: format!("{step} is outside 1..={total}"),
        });
    }
    let spc = cfg.train.steps_per_checkpoint;
    let position = ((step - 1) / spc) as u32;
    let j = ((step - 1) % spc) as usize;
    let chunk = order.chunk_at(position).ok_or_else(|| TrainError::Field {
        field: "chunk_order".into(),
        reason: format!("no chunk at position {position}"),
    })?;
    Ok(BatchLocation {
        step,
        position,
        chunk,
        first_sample: j * cfg.train.global_batch,
        samples: cfg.train.global_batch,
    })
}

/// The samples of training step `step` of the run in `run_dir`, with their location.
pub fn batch_of_step(run_dir: &Path, step: u64) -> Result<(BatchLocation, Vec<Sample>)> {
    let layout = RunLayout::new(run_dir);
    let cfg = TrainConfig::load(&layout.config_path())?;
    let order = ChunkOrder::load(&layout.chunk_order_path())?;
    let loc = locate(&cfg, &order, step)?;
    let index = read_index(&layout.data_dir())?;
    let info = index.chunk(&layout.data_dir(), loc.chunk)?;
    let samples = read_chunk(&layout.data_dir(), info)?;
    // The config and the data may disagree (an edited config.toml): say so instead of slicing
    // past the chunk.
    let batch = samples
        .get(loc.first_sample..loc.first_sample + loc.samples)
        .ok_or_else(|| TrainError::Data {
            path: k2_archive::chunk_file(&layout.data_dir(), loc.chunk),
            message: format!(
                "step {step} needs samples {}..{} of chunk {}, but it holds {}; {} does not \
                 match the run's data",
                loc.first_sample,
                loc.first_sample + loc.samples,
                loc.chunk,
                samples.len(),
                layout.config_path().display()
            ),
        })?
        .to_vec();
    Ok((loc, batch))
}

/// A sample of a batch with its tokens decoded by the run's tokenizer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecodedSample {
    #[serde(flatten)]
    pub sample: Sample,
    pub text: String,
}

/// The samples of training step `step` with their decoded text.
pub fn decoded_batch_of_step(
    run_dir: &Path,
    step: u64,
) -> Result<(BatchLocation, Vec<DecodedSample>)> {
    let (loc, samples) = batch_of_step(run_dir, step)?;
    let path = RunLayout::new(run_dir).tokenizer_path();
    let tok = k2_model::load_tokenizer(&path)?;
    let out = samples
        .into_iter()
        .map(|s| {
            let text = tok
                .decode(&s.token_ids, false)
                .map_err(|e| TrainError::Tokenizer(format!("{}: {e}", path.display())))?;
            Ok(DecodedSample { sample: s, text })
        })
        .collect::<Result<_>>()?;
    Ok((loc, out))
}
