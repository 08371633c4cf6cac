//! A k2 checkpoint is a plain HF LLaMA directory: candle-transformers' llama (an independent
//! implementation) loads it as-is and computes the same logits as k2's model.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::llama as ct;

#[test]
fn candle_transformers_loads_k2_checkpoints_and_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("run");
    common::train_tiny(&d);
    for ckpt in ["ckpt_0002", "ckpt_0006"] {
        let dir = d.join(ckpt);
        let dev = Device::Cpu;
        let cfg: ct::LlamaConfig =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let cfg = cfg.into_config(false);
        let vb = unsafe {
            candle_nn::VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DType::F32,
                &dev,
            )
            .unwrap()
        };
        let theirs = ct::Llama::load(vb, &cfg).unwrap();
        let ours = k2_model::load_decoder(&dir, DType::F32, &dev).unwrap();
        let tok = k2_model::load_tokenizer(&dir.join("tokenizer.json")).unwrap();
        let ids = tok
            .encode("Emma lived in a small house near the market.", false)
            .unwrap()
            .get_ids()
            .to_vec();
        let x = Tensor::new(ids.as_slice(), &dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let mut cache = ct::Cache::new(false, DType::F32, &cfg, &dev).unwrap();
        let a: Vec<f32> = theirs
            .forward(&x, 0, &mut cache)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let b: Vec<f32> = ours
            .forward(&x)
            .unwrap()
            .get(0)
            .unwrap()
            .get(ids.len() - 1)
            .unwrap()
            .to_vec1()
            .unwrap();
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "{ckpt}: max logit diff {diff}");
    }
}
