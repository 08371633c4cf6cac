//! Helpers shared by the model tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use k2_model::{names, LlamaConfig};

/// `../shared/data` relative to the repository root (CI has it there too).
pub fn shared_data() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    assert!(
        p.is_dir(),
        "test data not found at {} (the repository expects ../shared/data beside it)",
        p.display()
    );
    p
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
