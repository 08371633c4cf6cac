//! The batched, KV-cached greedy decoding of `k2 analyze memorization` (eval/src/greedy.rs) on the
//! real stories260K-hf model, against two independent computations: a non-cached full-sequence
//! forward with argmax at each step, and transformers' `generate(do_sample=False)`
//! (fixture written by `fixtures/gen_greedy_fixture.py`).

mod common;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use k2_eval::greedy::greedy_continuations;
use k2_model::logprob::argmax as argmax_first;
use k2_model::Decoder;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model() -> Decoder {
    let dir = common::stories260k_hf();
    k2_model::load_decoder(&dir, DType::F32, &Device::Cpu).unwrap()
}

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    prompt: Vec<u32>,
    continuation: Vec<u32>,
}

fn fixture() -> Fixture {
    let p = root().join("eval/tests/fixtures/stories260K-greedy.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Greedy without a cache: the whole sequence through `Llama::forward` at every step.
fn greedy_uncached(m: &Decoder, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut seq = prompt.to_vec();
    for _ in 0..n {
        let ids = Tensor::new(seq.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = m.forward(&ids).unwrap();
        let last: Vec<f32> = logits
            .get(0)
            .unwrap()
            .get(seq.len() - 1)
            .unwrap()
            .to_vec1()
            .unwrap();
        seq.push(argmax_first(&last) as u32);
    }
    seq[prompt.len()..].to_vec()
}

#[test]
fn memorization_greedy_equals_uncached_argmax_and_transformers_at_any_batch_size() {
    let m = model();
    let f = fixture();
    let mut prompts: Vec<Vec<u32>> = f.cases.iter().map(|c| c.prompt.clone()).collect();
    // a shorter prompt too: prompts of different lengths go in separate batches
    prompts.push(f.cases[0].prompt[..20].to_vec());
    let reference: Vec<Vec<u32>> = prompts.iter().map(|p| greedy_uncached(&m, p, 32)).collect();
    for (c, r) in f.cases.iter().zip(&reference) {
        assert_eq!(&c.continuation, r, "uncached argmax vs transformers");
    }
    for batch in [1, 3, 16] {
        let mut calls = Vec::new();
        let got = greedy_continuations(&m, &prompts, 32, batch, &mut |k| calls.push(k)).unwrap();
        assert_eq!(got, reference, "batch size {batch}");
        assert_eq!(calls.last(), Some(&prompts.len()));
    }
}

#[test]
fn memorization_greedy_rejects_bad_prompts() {
    let m = model();
    let ctx = m.arch().max_position_embeddings;
    let e = greedy_continuations(&m, &[vec![1; ctx - 4]], 8, 4, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("exceed the model's context"), "{e}");
    let e = greedy_continuations(&m, &[vec![1, 9999]], 2, 4, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("token id 9999"), "{e}");
    let e = greedy_continuations(&m, &[vec![]], 2, 4, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let none = greedy_continuations(&m, &[vec![1, 2]], 0, 4, &mut |_| {}).unwrap();
    assert_eq!(none, vec![Vec::<u32>::new()]);
}
