//! Injection probes' span log-probabilities (`k2_model::span`) against the eval engine's
//! loglikelihood on the same tokens (the engine is checked against transformers and lm-eval), on
//! the real stories260K-hf model; and their independence of which probes are scored together.

mod common;

use candle_core::{DType, Device};
use k2_eval::encode::EncodedPair;
use k2_eval::engine::Engine;
use k2_model::span::{span_logprobs, span_sequence, SpanSequence};

#[test]
fn span_logprobs_equal_the_engines_loglikelihoods_and_do_not_depend_on_the_grouping() {
    let dir = common::stories260k_hf();
    let model = k2_model::load_decoder(&dir, DType::F32, &Device::Cpu).unwrap();
    let tok = k2_model::load_tokenizer(&dir.join("tokenizer.json")).unwrap();
    let probes = [
        ("Once upon a time, there was a little girl named", "Lily"),
        ("The cat sat on the", "mat"),
        ("Tom and his mom went to the", "park to play"),
        ("She was very", "happy"),
    ];
    let seqs: Vec<SpanSequence> = probes
        .iter()
        .map(|(c, t)| span_sequence(&tok, c, t).unwrap())
        .collect();
    assert!(seqs.iter().all(|s| s.n_target >= 1));
    let max = model.arch().max_position_embeddings;
    let ours = span_logprobs(&|ids| model.forward(ids), &seqs, max, &Device::Cpu).unwrap();
    let pairs: Vec<EncodedPair> = seqs
        .iter()
        .map(|s| EncodedPair {
            context: s.ids[..s.ids.len() - s.n_target].to_vec(),
            continuation: s.ids[s.ids.len() - s.n_target..].to_vec(),
        })
        .collect();
    let engine = Engine::new(
        k2_model::load_decoder(&dir, DType::F32, &Device::Cpu).unwrap(),
        k2_model::CheckpointTokenizer::load(&dir).unwrap(),
        1,
    );
    let theirs = engine.loglikelihood(&pairs, &mut |_| {}).unwrap();
    for ((a, b), p) in ours.iter().zip(&theirs).zip(&probes) {
        assert!(
            (a - b.ll).abs() < 1e-4,
            "{p:?}: span {a} vs engine {}",
            b.ll
        );
        assert!(*a < 0.0);
    }
    // Each alone gives the same numbers as all together.
    for (i, s) in seqs.iter().enumerate() {
        let one = span_logprobs(
            &|ids| model.forward(ids),
            std::slice::from_ref(s),
            max,
            &Device::Cpu,
        )
        .unwrap()[0];
        assert_eq!(one, ours[i], "{:?}", probes[i]);
    }
    // Left truncation keeps the target and the last tokens of the context.
    let long = &seqs[0];
    let cut = span_logprobs(
        &|ids| model.forward(ids),
        std::slice::from_ref(long),
        long.n_target + 2,
        &Device::Cpu,
    )
    .unwrap()[0];
    assert!(cut.is_finite() && cut != ours[0]);
    assert!(span_logprobs(
        &|ids| model.forward(ids),
        std::slice::from_ref(long),
        long.n_target,
        &Device::Cpu
    )
    .is_err());
}
