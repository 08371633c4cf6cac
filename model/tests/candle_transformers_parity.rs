//! Our inference path against an independent implementation: candle-transformers' llama, on the
//! real checkpoints in fixtures/models. Both must give the same last-position logits.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::llama as ct;
use k2_model::{load_decoder, weight_files};

fn check(dir: &str) {
    let dir = common::fixtures().join(dir);
    let dev = Device::Cpu;
    let ours = load_decoder(&dir, DType::F32, &dev).unwrap();
    let cfg: ct::LlamaConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let cfg = cfg.into_config(false);
    let files = weight_files(&dir).unwrap();
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(&files, DType::F32, &dev).unwrap()
    };
    let theirs = ct::Llama::load(vb, &cfg).unwrap();
    let ids: Vec<u32> = (0..40u32).map(|i| (i * 37 + 11) % 500 + 3).collect();
    let input = Tensor::new(ids.as_slice(), &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mut cache = ct::Cache::new(false, DType::F32, &cfg, &dev).unwrap();
    let reference: Vec<f32> = theirs
        .forward(&input, 0, &mut cache)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    let logits = ours.forward(&input).unwrap();
    let last: Vec<f32> = logits
        .get(0)
        .unwrap()
        .get(ids.len() - 1)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(last.len(), reference.len());
    let max_diff = last
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        max_diff < 1e-4,
        "{}: max |logit diff| = {max_diff}",
        dir.display()
    );
}

#[test]
fn stories260k_matches_candle_transformers() {
    check("models/stories260K-hf");
}

#[test]
fn sharded_bf16_gqa_matches_candle_transformers() {
    check("models/tiny-random-llama-gqa-sharded");
}
