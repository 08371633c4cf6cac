//! A sweep builds a task's requests once and tokenizes them once per tokenizer: two checkpoints
//! with one tokenizer share the token ids (one encoding), a checkpoint with another tokenizer
//! gets its own, and every result and sample is what a fresh `run_task` gives on that checkpoint.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use k2_eval::engine::Engine;
use k2_eval::evaluate::{run_prepared, run_task};
use k2_eval::prepared::Prepared;

/// The repository's Hub-schema benchmark fixtures.
fn datasets() -> k2_eval::datasets::DataSource {
    k2_eval::datasets::DataSource::Local(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/datasets"),
    )
}

fn engine(dir: &Path) -> Engine {
    let model = k2_model::load_decoder(dir, DType::F32, &Device::Cpu).unwrap();
    let tok = k2_model::CheckpointTokenizer::load(dir).unwrap();
    Engine::new(model, tok, 4)
}

fn copy_stories(dir: &Path) {
    let src = common::stories260k_hf();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
}

/// A second checkpoint of stories260K: the same tokenizer, every weight scaled (other scores).
fn other_checkpoint(dir: &Path) {
    copy_stories(dir);
    let path = dir.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let scaled: std::collections::HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(k, t)| (k, (t * 0.9).unwrap()))
        .collect();
    candle_core::safetensors::save(&scaled, &path).unwrap();
}

/// stories260K with another tokenizer: text lowercased first (other ids for capitals).
fn other_tokenizer(dir: &Path) {
    copy_stories(dir);
    let path = dir.join("tokenizer.json");
    let mut t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut steps = vec![serde_json::json!({"type": "Lowercase"})];
    steps.extend(Some(t["normalizer"].take()).filter(|n| !n.is_null()));
    t["normalizer"] = serde_json::json!({"type": "Sequence", "normalizers": steps});
    std::fs::write(&path, serde_json::to_string(&t).unwrap()).unwrap();
}

/// A hash of the JSON of `v` (the samples are too long to print when they differ).
fn json<T: serde::Serialize>(v: &T) -> String {
    k2_archive::sha256_bytes(serde_json::to_string(v).unwrap().as_bytes())
}

#[test]
fn checkpoints_with_one_tokenizer_share_one_encoding() {
    let (tmp, tmp2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    other_checkpoint(tmp.path());
    other_tokenizer(tmp2.path());
    let first = engine(&common::stories260k_hf());
    let second = engine(tmp.path());
    let foreign = engine(tmp2.path());
    assert_eq!(first.tokenizer_key, second.tokenizer_key);
    assert_ne!(first.tokenizer_key, foreign.tokenizer_key);
    for (name, shots, limit) in [("mmlu_anatomy", 5, 6), ("hellaswag", 0, 8)] {
        let task = k2_eval::registry::build(name, &datasets(), shots > 0, 0).unwrap();
        let prepared = Prepared::build(task.as_ref(), shots, Some(limit));
        assert_eq!(prepared.encodings(), 0);
        let mut scores = Vec::new();
        for (i, e) in [&first, &second, &foreign].into_iter().enumerate() {
            let (r, s) =
                run_prepared(e, task.as_ref(), shots, Some(limit), &prepared, &mut |_| {}).unwrap();
            let (fresh_r, fresh_s) =
                run_task(e, task.as_ref(), shots, Some(limit), &mut |_| {}).unwrap();
            assert_eq!(r, fresh_r, "{name}, checkpoint {i}: results");
            assert_eq!(json(&s), json(&fresh_s), "{name}, checkpoint {i}: samples");
            scores.push(json(&s));
            if i == 2 {
                assert_ne!(scores[0], scores[2], "{name}: another tokenizer, other ids");
            }
            // One encoding for the two checkpoints of stories260K, one more for the other model.
            assert_eq!(prepared.encodings(), if i < 2 { 1 } else { 2 }, "{name}");
        }
        assert_ne!(
            scores[0], scores[1],
            "{name}: the two checkpoints must score differently"
        );
    }
}
