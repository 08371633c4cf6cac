//! Weight initialisation as Megatron does for K2: every matrix N(0, initializer_range), norm gains 1.
//! Values come from ChaCha8 seeded with the run seed, converted by our own Box-Muller so the bits
//! never depend on a crate's float conversion.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use k2_model::{names, LlamaConfig};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Initial weights for `cfg` under HF names, f32.
pub fn init_weights(
    cfg: &LlamaConfig,
    seed: u64,
    dev: &Device,
) -> Result<BTreeMap<String, Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = BTreeMap::new();
    for (name, shape) in names::tensor_shapes(&k2_model::Arch::from_llama(cfg)) {
        let vals = init_values(&mut rng, &shape, cfg.initializer_range);
        out.insert(name, Tensor::from_vec(vals, shape, dev)?);
    }
    Ok(out)
}

/// The initial values of one tensor, drawn from `rng` (tensors are drawn in the order of
/// `names::tensor_shapes`): gains 1, matrices N(0, std).
fn init_values(rng: &mut ChaCha8Rng, shape: &[usize], std: f64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    if shape.len() == 1 {
        return vec![1.0; n];
    }
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let (u1, u2) = (uniform(rng), uniform(rng));
        let r = (-2.0 * u1.ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * u2;
        v.push((std * r * th.cos()) as f32);
        if v.len() < n {
            v.push((std * r * th.sin()) as f32);
        }
    }
    v
}

/// Writes the weights of `init_weights(cfg, seed)` into `out` in `dtype`, one tensor at a time
/// (a 7B model never needs its f32 weights in memory), sharded at `max_shard_bytes`.
fn write_initialized_weights(
    cfg: &LlamaConfig,
    seed: u64,
    dtype: candle_core::DType,
    max_shard_bytes: usize,
    out: &std::path::Path,
) -> Result<()> {
    use k2_model::streaming_writer::{write_model_weights, TensorSpec};
    let specs: Vec<TensorSpec> = names::tensor_shapes(&k2_model::Arch::from_llama(cfg))
        .into_iter()
        .map(|(name, shape)| TensorSpec { name, dtype, shape })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    write_model_weights(out, &specs, max_shard_bytes, &mut |s| {
        let vals = init_values(&mut rng, &s.shape, cfg.initializer_range);
        Ok(Tensor::from_vec(vals, s.shape.clone(), &Device::Cpu)?.to_dtype(s.dtype)?)
    })?;
    Ok(())
}

/// How `write_initialized_model` stores the weights.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitStorage {
    /// Stored dtype (default f32).
    pub dtype: Option<candle_core::DType>,
    /// Shard the weights at this size (transformers' `max_shard_size`); default one file.
    pub max_shard_bytes: Option<usize>,
}

/// Writes an HF model directory with freshly initialised weights for `cfg` (for benchmarks and
/// tests that need a model of a given shape): config.json, generation_config.json,
/// model.safetensors (or shards) and, if given, a copy of `tokenizer`. Refuses an existing
/// non-empty `out`.
pub fn write_initialized_model(
    cfg: &LlamaConfig,
    seed: u64,
    tokenizer: Option<&std::path::Path>,
    out: &std::path::Path,
    storage: InitStorage,
) -> Result<()> {
    use crate::error::{io_err, TrainError};
    cfg.validate()?;
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(io_err(out))?
            .next()
            .is_some()
    {
        return Err(TrainError::RunExists(out.to_path_buf()));
    }
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let dtype = storage.dtype.unwrap_or(candle_core::DType::F32);
    k2_archive::write_file_atomic(
        &out.join("config.json"),
        cfg.to_hf_json_for(dtype).as_bytes(),
    )?;
    k2_archive::write_file_atomic(
        &out.join("generation_config.json"),
        cfg.generation_config_json().as_bytes(),
    )?;
    if storage.dtype.is_none() && storage.max_shard_bytes.is_none() {
        let w = init_weights(cfg, seed, &Device::Cpu)?;
        k2_archive::write_file_atomic(
            &out.join("model.safetensors"),
            &k2_model::safetensors_bytes(&w)?,
        )?;
    } else {
        write_initialized_weights(
            cfg,
            seed,
            dtype,
            storage.max_shard_bytes.unwrap_or(usize::MAX),
            out,
        )?;
    }
    if let Some(t) = tokenizer {
        let bytes = std::fs::read(t).map_err(io_err(t))?;
        k2_archive::write_file_atomic(&out.join("tokenizer.json"), &bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_deterministic_with_the_configured_std() {
        let cfg = k2_model::preset("default").unwrap();
        let a = init_weights(&cfg, 7, &Device::Cpu).unwrap();
        let b = init_weights(&cfg, 7, &Device::Cpu).unwrap();
        let c = init_weights(&cfg, 8, &Device::Cpu).unwrap();
        let w: Vec<f32> = a[names::EMBED].flatten_all().unwrap().to_vec1().unwrap();
        let w2: Vec<f32> = b[names::EMBED].flatten_all().unwrap().to_vec1().unwrap();
        let w3: Vec<f32> = c[names::EMBED].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(w, w2);
        assert_ne!(w, w3);
        let n = w.len() as f64;
        let mean = w.iter().map(|&x| x as f64).sum::<f64>() / n;
        let sd = (w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(
            mean.abs() < 1e-3 && (sd - 0.02).abs() < 5e-4,
            "mean {mean} sd {sd}"
        );
        let g: Vec<f32> = a[names::FINAL_NORM].to_vec1().unwrap();
        assert!(g.iter().all(|&x| x == 1.0));
    }

    /// Streamed, sharded bf16 weights hold exactly the values of `init_weights` rounded to bf16.
    #[test]
    fn sharded_bf16_init_equals_init_weights_rounded() {
        let cfg = k2_model::preset("tiny-test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m");
        write_initialized_model(
            &cfg,
            5,
            None,
            &out,
            InitStorage {
                dtype: Some(candle_core::DType::BF16),
                max_shard_bytes: Some(4096),
            },
        )
        .unwrap();
        assert!(out.join(k2_model::weights::INDEX_FILE).exists());
        let dt = k2_model::config_torch_dtype(&out.join("config.json")).unwrap();
        assert_eq!(dt, Some(candle_core::DType::BF16));
        let got = k2_model::load_tensors(&out, candle_core::DType::BF16, &Device::Cpu).unwrap();
        let want = init_weights(&cfg, 5, &Device::Cpu).unwrap();
        assert_eq!(got.len(), want.len());
        for (k, w) in &want {
            let rounded = w.to_dtype(candle_core::DType::BF16).unwrap();
            assert_eq!(
                k2_model::host_f32(&got[k]).unwrap(),
                k2_model::host_f32(&rounded).unwrap(),
                "{k}"
            );
        }
    }
}
