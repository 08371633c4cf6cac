//! The shared-prefix cache changes no score: MMLU 5-shot (one description and five dev examples
//! per subject) and TruthfulQA (one fixed preamble) scored with and without it give the same
//! loglikelihood bits, request for request. The model is stories260K with a context long enough
//! for the whole prompts (its config's `max_position_embeddings` raised; RoPE needs no weights),
//! so no prompt is left-truncated and the prefixes are really shared.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use k2_eval::engine::Engine;
use k2_eval::request::Request;
use k2_eval::scorer::Scorer;

/// The repository's Hub-schema benchmark fixtures.
fn datasets() -> k2_eval::datasets::DataSource {
    k2_eval::datasets::DataSource::Local(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/datasets"),
    )
}

/// stories260K-hf in `dir` with a context of `positions`.
fn long_context_model(dir: &Path, positions: usize) {
    let src = common::stories260k_hf();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let cfg = dir.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    c["max_position_embeddings"] = positions.into();
    std::fs::write(&cfg, serde_json::to_string_pretty(&c).unwrap()).unwrap();
}

fn engine(dir: &Path, prefix_cache: bool) -> Engine {
    let model = k2_model::load_decoder(dir, DType::F32, &Device::Cpu).unwrap();
    let tok = k2_model::CheckpointTokenizer::load(dir).unwrap();
    let mut e = Engine::new(model, tok, 4);
    e.prefix_cache = prefix_cache;
    e
}

#[test]
fn shared_prefixes_change_no_loglikelihood_bit() {
    let tmp = tempfile::tempdir().unwrap();
    long_context_model(tmp.path(), 8192);
    let (on, off) = (engine(tmp.path(), true), engine(tmp.path(), false));
    if !on.model.prefix_reuse_is_exact() {
        println!("skipped: this CPU has no AVX2+FMA, so the decoder cannot reuse a prefix exactly");
        return;
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (task, shots, docs) in [
        ("mmlu_anatomy", 5, 4),
        ("mmlu_abstract_algebra", 5, 4),
        ("truthfulqa_mc2", 0, 4),
        // No shared prefix, multi-token endings: continuations of several contexts per forward.
        ("hellaswag", 0, 6),
    ] {
        let t = k2_eval::registry::build(task, &datasets(), shots > 0, 0).unwrap();
        for d in 0..docs {
            for r in t.requests(d, shots) {
                if let Request::Loglikelihood {
                    context,
                    continuation,
                } = r
                {
                    pairs.push((context, continuation));
                }
            }
        }
    }
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let a = on.loglikelihoods(&refs, &mut |_| {}).unwrap();
    let b = off.loglikelihoods(&refs, &mut |_| {}).unwrap();
    assert_eq!(a.len(), pairs.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            (x.0.to_bits(), x.1),
            (y.0.to_bits(), y.1),
            "request {i}: {x:?} with the prefix cache, {y:?} without"
        );
    }
    // The prompts fit the context, and the subjects' prompts do share long prefixes.
    let tok = k2_model::CheckpointTokenizer::load(tmp.path()).unwrap();
    let first = |i: usize| k2_eval::encode::encode(&tok, &pairs[i].0).unwrap();
    let (p0, p1) = (first(0), first(4));
    let common = p0.iter().zip(&p1).take_while(|(x, y)| x == y).count();
    assert!(
        p0.len() < 8192 && common > 200,
        "{} tokens, {common} shared",
        p0.len()
    );
}
