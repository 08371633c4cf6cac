//! Helpers shared by the model tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use k2_model::{names, LlamaConfig};

/// The repository's `fixtures/`, which holds the real tiny checkpoints under `models/`; the
/// `model` of a [`Fixture`] is relative to it.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// transformers' reference values for a real checkpoint (`tests/fixtures/*.json`, written by
/// `tests/fixtures/gen_llama_fixtures.py`: fp32, eager attention); `model` is the checkpoint's
/// directory relative to [`fixtures`].
#[derive(serde::Deserialize)]
pub struct Fixture {
    pub model: String,
    pub sequences: Vec<FixtureSeq>,
}

#[derive(serde::Deserialize)]
pub struct FixtureSeq {
    pub ids: Vec<u32>,
    pub next_token_logprobs: Vec<f64>,
    pub last_logits: Vec<f64>,
    pub greedy_next: u32,
}

/// The fixture file `name` of the repository's `tests/fixtures`.
pub fn fixture(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Deterministic pseudo-random weights (no RNG dependency): N(0, std)-like via a hash.
pub fn synthetic_weights(cfg: &LlamaConfig, dtype: DType, std: f64) -> BTreeMap<String, Tensor> {
    let mut out = BTreeMap::new();
    for (k, (name, shape)) in names::tensor_shapes(&k2_model::Arch::from_llama(cfg))
        .into_iter()
        .enumerate()
    {
        let n: usize = shape.iter().product();
        let vals: Vec<f64> = if shape.len() == 1 {
            (0..n)
                .map(|i| 1.0 + 0.1 * ((i * 7 + k) as f64).sin())
                .collect()
        } else {
            (0..n)
                .map(|i| {
                    std * 1.7
                        * ((i as f64 * 12.9898 + k as f64 * 78.233).sin() * 43758.5453).fract()
                })
                .collect()
        };
        let t = Tensor::from_vec(vals, shape, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        out.insert(name, t);
    }
    out
}

/// k2's next-token log-probabilities ([`k2_model::next_token_logprobs`]) of `ids` (batch, seq)
/// under `logits` (batch, seq, vocab), one row per sequence, as f32.
pub fn lp_rows(logits: &Tensor, ids: &Tensor) -> Vec<Vec<f32>> {
    let ids: Vec<Vec<u32>> = ids.to_vec2().unwrap();
    k2_model::next_token_logprobs(logits, &ids)
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(|x| x as f32).collect())
        .collect()
}

/// Next-token log-probabilities as a differentiable candle expression (log-softmax, gather), for
/// losses whose gradients a test checks: (batch, seq - 1).
pub fn lp_tensor(logits: &Tensor, ids: &Tensor) -> Tensor {
    let (b, t, v) = logits.dims3().unwrap();
    let logits = k2_model::upcast(&logits.narrow(1, 0, t - 1).unwrap()).unwrap();
    let lp = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1).unwrap();
    let targets = ids.narrow(1, 1, t - 1).unwrap().contiguous().unwrap();
    lp.reshape((b * (t - 1), v))
        .unwrap()
        .gather(&targets.reshape((b * (t - 1), 1)).unwrap(), 1)
        .unwrap()
        .reshape((b, t - 1))
        .unwrap()
}

/// A LLaMA model of shape `cfg` for training over `map` (HF names; `Var` tensors stay shared).
pub fn training_model(cfg: &LlamaConfig, map: BTreeMap<String, Tensor>) -> k2_model::Decoder {
    k2_model::Decoder::for_training(&k2_model::Arch::from_llama(cfg), map).unwrap()
}

/// The LLaMA checkpoint in `dir` as a model for training (its training forward), in `dtype`.
pub fn load_training(dir: &std::path::Path, dtype: DType) -> k2_model::Decoder {
    let arch = k2_model::Arch::from_hf_json(&dir.join("config.json")).unwrap();
    let tensors = k2_model::load_tensors(dir, dtype, &Device::Cpu).unwrap();
    k2_model::Decoder::for_training(&arch, tensors).unwrap()
}

/// [`synthetic_weights`] as trainable `Var`s.
pub fn synthetic_vars(cfg: &LlamaConfig, dtype: DType) -> BTreeMap<String, candle_core::Var> {
    synthetic_weights(cfg, dtype, 0.2)
        .into_iter()
        .map(|(k, t)| (k, candle_core::Var::from_tensor(&t).unwrap()))
        .collect()
}

/// A model for training over the `Var`s' own tensors (updating a `Var` updates the model).
pub fn model_over_vars(
    cfg: &LlamaConfig,
    vars: &BTreeMap<String, candle_core::Var>,
) -> k2_model::Decoder {
    let map = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    training_model(cfg, map)
}

/// The trainer's loss through candle's autograd: logits of every position, the last dropped,
/// mean cross-entropy against the next tokens.
pub fn autograd_loss(model: &k2_model::Decoder, ids: &Tensor) -> Tensor {
    let (b, t) = ids.dims2().unwrap();
    let logits = model.forward_train(ids).unwrap();
    let v = logits.dim(2).unwrap();
    let logits = logits
        .narrow(1, 0, t - 1)
        .unwrap()
        .reshape((b * (t - 1), v))
        .unwrap();
    let targets = ids
        .narrow(1, 1, t - 1)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape(b * (t - 1))
        .unwrap();
    k2_model::fused::cross_entropy(&logits, &targets).unwrap()
}
