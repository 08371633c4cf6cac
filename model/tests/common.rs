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
    for (k, (name, shape)) in names::tensor_shapes(cfg).into_iter().enumerate() {
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
