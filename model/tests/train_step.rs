//! `TrainStep` (the training forward and backward without autograd) gives the loss and every
//! parameter's gradient bit for bit as candle's backprop over the same model and kernels: plain
//! multi-head, grouped-query, tied embeddings, several parallel tasks per op, repeated calls
//! (buffers reused) and a change of batch shape.

mod common;

use candle_core::{DType, Device, Tensor};
use k2_model::{preset, LlamaConfig, TrainStep};

fn ids(b: usize, t: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..b * t)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs both paths on `b` x `t` batches and compares every bit.
fn assert_identical(cfg: &LlamaConfig, batches: &[(usize, usize)]) {
    let vars = common::synthetic_vars(cfg, DType::F32);
    let model = common::model_over_vars(cfg, &vars);
    assert!(TrainStep::applies(&model), "the fused path must apply here");
    let mut step = TrainStep::new();
    for (i, &(b, t)) in batches.iter().enumerate() {
        let tokens = ids(b, t, cfg.vocab_size, 17 + i as u64);
        let ids_t = Tensor::from_vec(tokens.clone(), (b, t), &Device::Cpu).unwrap();
        let loss = common::autograd_loss(&model, &ids_t);
        let want = loss.to_scalar::<f32>().unwrap();
        let store = loss.backward().unwrap();
        let got = step.run(&model, &tokens, b, t).unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "loss {got} vs {want}");
        let mut checked = 0;
        for (name, var) in &vars {
            let g: Vec<f32> = store
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let ours = step
                .grad(name)
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let differ = bits(ours)
                .iter()
                .zip(bits(&g))
                .filter(|(a, b)| *a != b)
                .count();
            assert_eq!(
                differ,
                0,
                "{name} ({b}x{t}): {differ} of {} gradient values differ between k2's training \
                 step and candle's autograd. The step adds each tensor's gradient contributions \
                 in the order candle's backprop adds them; after a candle upgrade that order (or \
                 an op's rounding) may have changed (docs/determinism.md)",
                g.len()
            );
            checked += 1;
        }
        assert_eq!(checked, vars.len());
    }
}

#[test]
fn multi_head_gradients_are_bit_identical_to_autograd() {
    assert_identical(&preset("tiny-test").unwrap(), &[(3, 12), (3, 12), (2, 7)]);
}

#[test]
fn grouped_query_gradients_are_bit_identical_to_autograd() {
    let cfg = LlamaConfig {
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        ..preset("tiny-test").unwrap()
    };
    assert_identical(&cfg, &[(2, 16)]);
}

#[test]
fn tied_embedding_gradients_are_bit_identical_to_autograd() {
    let cfg = LlamaConfig {
        tie_word_embeddings: true,
        ..preset("tiny-test").unwrap()
    };
    assert_identical(&cfg, &[(2, 10)]);
}

#[test]
fn gradients_split_over_many_tasks_are_bit_identical_to_autograd() {
    // 256 rows of 64: the norms, RoPE, SwiGLU and the loss each run as several parallel tasks,
    // and the products have several tiles.
    let cfg = LlamaConfig {
        vocab_size: 300,
        hidden_size: 64,
        intermediate_size: 176,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        ..preset("tiny-test").unwrap()
    };
    assert_identical(&cfg, &[(4, 64)]);
}

#[test]
fn bad_batches_are_errors_not_panics() {
    let cfg = preset("tiny-test").unwrap();
    let model = common::model_over_vars(&cfg, &common::synthetic_vars(&cfg, DType::F32));
    let mut step = TrainStep::new();
    let e = step.run(&model, &[1, 2, 3], 1, 3).unwrap();
    assert!(e.is_finite());
    let err = step.run(&model, &[1, 2, 64], 1, 3).unwrap_err().to_string();
    assert!(err.contains("token id 64"), "{err}");
    let err = step.run(&model, &[1, 2, 3], 2, 3).unwrap_err().to_string();
    assert!(err.contains("3 ids for 2 x 3"), "{err}");
    let err = step.run(&model, &[1], 1, 1).unwrap_err().to_string();
    assert!(err.contains("t ≥ 2"), "{err}");
    let long = vec![1u32; 65];
    let err = step.run(&model, &long, 1, 65).unwrap_err().to_string();
    assert!(err.contains("exceeds 64"), "{err}");
}
