//! Our per-position log-probs against transformers' on the real checkpoints in fixtures/models.
//! Fixture values come from `tests/fixtures/gen_llama_fixtures.py` (transformers, fp32, eager).

mod common;

use candle_core::{DType, Device, Tensor};

fn check(fixture: &str) -> f64 {
    let f = common::fixture(fixture);
    let model = common::load_training(&common::fixtures().join(&f.model), DType::F32);
    let mut worst = 0f64;
    for s in &f.sequences {
        let ids = Tensor::new(s.ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        for mode in ["inference", "training"] {
            let logits = if mode == "training" {
                model.forward_train(&ids).unwrap()
            } else {
                model.forward(&ids).unwrap()
            };
            let lp: Vec<f32> = common::lp_rows(&logits, &ids).concat();
            assert_eq!(lp.len(), s.next_token_logprobs.len());
            for (j, (a, b)) in lp.iter().zip(&s.next_token_logprobs).enumerate() {
                let d = (*a as f64 - b).abs();
                worst = worst.max(d);
                assert!(
                    d < 1e-4,
                    "{fixture} len {} pos {j} ({mode}): {a} vs {b}",
                    s.ids.len()
                );
            }
            let last: Vec<f32> = logits
                .get(0)
                .unwrap()
                .get(s.ids.len() - 1)
                .unwrap()
                .to_vec1()
                .unwrap();
            for (a, b) in last.iter().zip(&s.last_logits) {
                assert!(
                    (*a as f64 - b).abs() < 1e-4,
                    "{fixture}: last logits {a} vs {b}"
                );
            }
            let argmax = last
                .iter()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |acc, (i, &x)| if x > acc.1 { (i, x) } else { acc },
                )
                .0;
            assert_eq!(argmax as u32, s.greedy_next);
        }
    }
    eprintln!("{fixture}: max |log-prob diff| vs transformers = {worst:.2e}");
    worst
}

#[test]
fn stories260k_logprobs_equal_transformers() {
    check("stories260K-hf.json");
}

#[test]
fn sharded_bf16_gqa_logprobs_equal_transformers() {
    check("tiny-random-llama-gqa-sharded.json");
}
