//! Saving and loading HF safetensors: byte-stable output, sharded input, tied embeddings.

mod common;

use candle_core::{DType, Device, Tensor};
use k2_model::{load_decoder, load_tensors, preset, safetensors_bytes};

#[test]
fn saved_weights_load_back_identically_and_bytes_are_stable() {
    let cfg = preset("tiny-test").unwrap();
    let w = common::synthetic_weights(&cfg, DType::F32, 0.02);
    let bytes = safetensors_bytes(&w).unwrap();
    assert_eq!(bytes, safetensors_bytes(&w).unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &bytes).unwrap();
    std::fs::write(dir.path().join("config.json"), cfg.to_hf_json()).unwrap();
    let back = load_tensors(dir.path(), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(back.len(), w.len());
    for (k, t) in &w {
        let a: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = back[k].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b, "{k}");
    }
    let model = load_decoder(dir.path(), DType::F32, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
    assert_eq!(model.forward(&ids).unwrap().dims(), &[1, 3, cfg.vocab_size]);
}

#[test]
fn sharded_bf16_model_loads_all_tensors_as_f32() {
    let dir = common::fixtures().join("models/tiny-random-llama-gqa-sharded");
    let t = load_tensors(&dir, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(t.len(), 3 * 9 + 3);
    assert!(t.values().all(|x| x.dtype() == DType::F32));
}

#[test]
fn missing_tensor_names_the_directory_and_tensor() {
    let cfg = preset("tiny-test").unwrap();
    let mut w = common::synthetic_weights(&cfg, DType::F32, 0.02);
    w.remove("model.layers.1.mlp.up_proj.weight");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors_bytes(&w).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("config.json"), cfg.to_hf_json()).unwrap();
    let e = load_decoder(dir.path(), DType::F32, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.layers.1.mlp.up_proj.weight")
            && e.contains(&dir.path().display().to_string()),
        "{e}"
    );
}

#[test]
fn index_shard_names_stay_inside_the_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let outside = d.path().join("x.safetensors");
    std::fs::write(&outside, b"not read").unwrap();
    let ckpt = d.path().join("a/b");
    std::fs::create_dir_all(&ckpt).unwrap();
    for bad in ["../../x.safetensors", "/etc/passwd", "./x", "a//b", ""] {
        std::fs::write(
            ckpt.join("model.safetensors.index.json"),
            serde_json::json!({"weight_map": {"w": bad}}).to_string(),
        )
        .unwrap();
        let e = k2_model::weight_files(&ckpt).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors.index.json") && e.contains("not a file inside"),
            "{bad}: {e}"
        );
    }
    std::fs::write(
        ckpt.join("model.safetensors.index.json"),
        serde_json::json!({"weight_map": {"w": "model-00001-of-00001.safetensors"}}).to_string(),
    )
    .unwrap();
    assert_eq!(
        k2_model::weight_files(&ckpt).unwrap(),
        [ckpt.join("model-00001-of-00001.safetensors")]
    );
}
