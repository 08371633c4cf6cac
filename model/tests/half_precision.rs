//! bf16 and f16 inference against f32 (and transformers' f32 fixtures) on the real checkpoints:
//! the per-token log-prob differences that half precision costs, printed and bounded. Reductions
//! (RMSNorm, softmax, log-softmax) run in f32 for half-precision activations, as transformers does.

mod common;

use candle_core::{DType, Device, Tensor};
use k2_model::{host_f32, load_decoder, Decoder};

/// Per-token log-probs of `ids` from the full forward (the training forward with `train`) and
/// from the KV-cache path.
fn logprobs(model: &Decoder, decoder: &Decoder, ids: &[u32], train: bool) -> (Vec<f32>, Vec<f32>) {
    let t = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = if train {
        model.forward_train(&t).unwrap()
    } else {
        model.forward(&t).unwrap()
    };
    let full = common::lp_rows(&logits, &t).concat();
    let (h, _) = decoder.forward_hidden_cached(&t, None).unwrap();
    let logits = decoder.lm_head(&h).unwrap();
    assert_eq!(logits.dtype(), DType::F32, "lm_head returns f32 logits");
    let cached = common::lp_rows(&logits, &t).concat();
    (full, cached)
}

/// (mean, max) |difference| of the half-precision log-probs from transformers' f32 values.
fn compare(fx: &str, dtype: DType) -> (f64, f64) {
    let f = common::fixture(fx);
    let dir = common::fixtures().join(&f.model);
    let model = common::load_training(&dir, dtype);
    let decoder = load_decoder(&dir, dtype, &Device::Cpu).unwrap();
    assert_eq!((model.dtype(), decoder.dtype()), (dtype, dtype));
    let (mut sum, mut n, mut worst) = (0f64, 0usize, 0f64);
    for s in &f.sequences {
        for train in [false, true] {
            let (full, cached) = logprobs(&model, &decoder, &s.ids, train);
            for (a, c) in full.iter().zip(&cached) {
                assert!(a.is_finite() && c.is_finite());
            }
            for (a, b) in full.iter().zip(&s.next_token_logprobs) {
                let d = (*a as f64 - b).abs();
                sum += d;
                n += 1;
                worst = worst.max(d);
            }
        }
    }
    let mean = sum / n as f64;
    eprintln!(
        "{} in {dtype:?} vs transformers f32: {n} log-probs, mean |diff| {mean:.4}, max {worst:.4}",
        f.model
    );
    (mean, worst)
}

#[test]
fn bf16_and_f16_logprobs_stay_close_to_f32() {
    for fx in ["stories260K-hf.json", "tiny-random-llama-gqa-sharded.json"] {
        let (mean, max) = compare(fx, DType::BF16);
        assert!(mean < 0.05 && max < 0.5, "{fx} bf16: mean {mean} max {max}");
        let (mean, max) = compare(fx, DType::F16);
        assert!(mean < 0.01 && max < 0.1, "{fx} f16: mean {mean} max {max}");
    }
}

#[test]
fn bf16_weights_load_in_their_stored_dtype_and_match_f32_after_rounding() {
    let dir = common::fixtures().join("models/tiny-random-llama-gqa-sharded");
    let stored = k2_model::load_tensors(&dir, DType::BF16, &Device::Cpu).unwrap();
    let wide = k2_model::load_tensors(&dir, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(stored.len(), wide.len());
    for (k, t) in &stored {
        assert_eq!(t.dtype(), DType::BF16);
        assert_eq!(
            host_f32(t).unwrap(),
            host_f32(&wide[k]).unwrap(),
            "{k}: bf16 -> f32 is exact"
        );
    }
}
