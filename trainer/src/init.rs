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
    let std = cfg.initializer_range;
    let mut out = BTreeMap::new();
    for (name, shape) in names::tensor_shapes(cfg) {
        let n: usize = shape.iter().product();
        let vals: Vec<f32> = if shape.len() == 1 {
            vec![1.0; n]
        } else {
            let mut v = Vec::with_capacity(n);
            while v.len() < n {
                let (u1, u2) = (uniform(&mut rng), uniform(&mut rng));
                let r = (-2.0 * u1.ln()).sqrt();
                let th = 2.0 * std::f64::consts::PI * u2;
                v.push((std * r * th.cos()) as f32);
                if v.len() < n {
                    v.push((std * r * th.sin()) as f32);
                }
            }
            v
        };
        out.insert(name, Tensor::from_vec(vals, shape, dev)?);
    }
    Ok(out)
}

/// Writes an HF model directory with freshly initialised weights for `cfg` (for benchmarks and
/// tests that need a model of a given shape): config.json, generation_config.json,
/// model.safetensors and, if given, a copy of `tokenizer`. Refuses an existing non-empty `out`.
pub fn write_initialized_model(
    cfg: &LlamaConfig,
    seed: u64,
    tokenizer: Option<&std::path::Path>,
    out: &std::path::Path,
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
    let w = init_weights(cfg, seed, &Device::Cpu)?;
    k2_archive::write_file_atomic(&out.join("config.json"), cfg.to_hf_json().as_bytes())?;
    k2_archive::write_file_atomic(
        &out.join("generation_config.json"),
        cfg.generation_config_json().as_bytes(),
    )?;
    k2_archive::write_file_atomic(
        &out.join("model.safetensors"),
        &k2_model::safetensors_bytes(&w)?,
    )?;
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
}
