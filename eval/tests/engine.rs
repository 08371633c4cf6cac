//! The scoring engine against transformers (fixture log-probs of stories260K-hf): shared-context,
//! batched loglikelihoods equal the sums of transformers' per-position log-probs, at any batch size.

mod common;

use std::path::PathBuf;

use candle_core::{DType, Device};
use k2_eval::encode::EncodedPair;
use k2_eval::engine::{rolling_windows, Engine};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[derive(serde::Deserialize)]
struct Fixture {
    sequences: Vec<Seq>,
}
#[derive(serde::Deserialize)]
struct Seq {
    ids: Vec<u32>,
    next_token_logprobs: Vec<f64>,
}

fn engine(batch: usize) -> Engine {
    engine_for("stories260K-hf", batch)
}

fn engine_for(model: &str, batch: usize) -> Engine {
    let dir = common::fixtures().join("models").join(model);
    let model = k2_model::load_decoder(&dir, DType::F32, &Device::Cpu).unwrap();
    let tok = k2_model::CheckpointTokenizer::load(&dir).unwrap();
    Engine::new(model, tok, batch)
}

#[test]
fn loglikelihoods_equal_transformers_at_every_batch_size() {
    check_against_fixture("stories260K-hf");
}

#[test]
fn sharded_bf16_gqa_loglikelihoods_equal_transformers() {
    check_against_fixture("tiny-random-llama-gqa-sharded");
}

fn check_against_fixture(model: &str) {
    let path = root().join(format!("tests/fixtures/{model}.json"));
    let f: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // Several continuations per context (shared), several contexts, continuations of 1..many tokens.
    let mut pairs = Vec::new();
    let mut expected = Vec::new();
    for s in &f.sequences {
        let n = s.ids.len();
        for k in [n / 2, n / 2 + 1, n - 1, 2] {
            if k == 0 || k >= n {
                continue;
            }
            for end in [k + 1, (k + 3).min(n), n] {
                pairs.push(EncodedPair {
                    context: s.ids[..k].to_vec(),
                    continuation: s.ids[k..end].to_vec(),
                });
                expected.push(s.next_token_logprobs[k - 1..end - 1].iter().sum::<f64>());
            }
        }
    }
    let mut reference: Option<Vec<k2_eval::engine::Scored>> = None;
    for batch in [1, 3, 16] {
        let got = engine_for(model, batch)
            .loglikelihood(&pairs, &mut |_| {})
            .unwrap();
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (g.ll - e).abs() < 1e-4,
                "batch {batch} pair {i}: {} vs transformers {e}",
                g.ll
            );
        }
        if let Some(r) = &reference {
            for ((a, b), p) in got.iter().zip(r).zip(&pairs) {
                // float32 noise from different padding: 1e-5 up to 10-token continuations (all of
                // lm-eval MC tasks; tests/eval_cli.rs checks ARC), 1e-6 per token beyond.
                let tol = 1e-5f64.max(1e-6 * p.continuation.len() as f64);
                assert!(
                    (a.ll - b.ll).abs() < tol,
                    "batch {batch}: {} vs {}",
                    a.ll,
                    b.ll
                );
                assert_eq!(a.is_greedy, b.is_greedy);
            }
        } else {
            reference = Some(got);
        }
    }
}

#[test]
fn rolling_windows_tile_the_document_like_lm_eval() {
    let toks: Vec<u32> = (10..30).collect();
    let w = rolling_windows(&toks, 1, 8);
    // First window: [prefix] + toks[:7] predicting toks[:8]; then disjoint windows of 8 predictions
    // each conditioned on the preceding token.
    // make_disjoint_window keeps only the context tokens not already predicted.
    assert_eq!(w[0], (vec![1], toks[..8].to_vec()));
    assert_eq!(w[1], (vec![17], toks[8..16].to_vec()));
    assert_eq!(w[2], (vec![21, 22, 23, 24, 25], toks[16..20].to_vec()));
    let predicted: Vec<u32> = w.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(predicted, toks);
}

#[test]
fn greedy_generation_stops_at_stop_strings() {
    let e = engine(1);
    let free = e.generate("Once upon a time", &[], 20).unwrap();
    assert!(!free.is_empty());
    // Stop at the first occurrence of a string the free generation contains.
    let word = free.split_whitespace().nth(1).unwrap().to_string();
    let stopped = e
        .generate("Once upon a time", std::slice::from_ref(&word), 20)
        .unwrap();
    assert!(
        !stopped.contains(&word),
        "{stopped:?} still contains {word:?}"
    );
    assert!(free.starts_with(&stopped));
}
