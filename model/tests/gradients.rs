//! The training path must be differentiable end to end: every trainable tensor receives a
//! gradient, and the gradients agree with finite differences.

mod common;

use candle_core::{DType, Device, Tensor};
use k2_model::{preset, Decoder, LlamaConfig};

fn loss(model: &Decoder, ids: &Tensor) -> Tensor {
    let logits = model.forward_train(ids).unwrap();
    let lp = common::lp_tensor(&logits, ids);
    lp.mean_all().unwrap().neg().unwrap()
}

fn gqa_tiny() -> LlamaConfig {
    LlamaConfig {
        num_key_value_heads: Some(1),
        ..preset("tiny-test").unwrap()
    }
}

#[test]
fn every_trainable_tensor_receives_a_nonzero_gradient() {
    for cfg in [preset("tiny-test").unwrap(), gqa_tiny()] {
        let vars = common::synthetic_vars(&cfg, DType::F32);
        let model = common::model_over_vars(&cfg, &vars);
        let ids = Tensor::new(
            &[[1u32, 5, 9, 3, 7, 2, 11, 4], [0, 8, 8, 3, 1, 60, 2, 2]],
            &Device::Cpu,
        )
        .unwrap();
        let grads = loss(&model, &ids).backward().unwrap();
        for (name, var) in &vars {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient reached {name}"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{name}: gradient norm {norm}"
            );
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let cfg = gqa_tiny();
    let vars = common::synthetic_vars(&cfg, DType::F64);
    let ids = Tensor::new(&[[1u32, 5, 9, 3, 7, 2], [4, 8, 8, 3, 1, 60]], &Device::Cpu).unwrap();
    let model = common::model_over_vars(&cfg, &vars);
    let grads = loss(&model, &ids).backward().unwrap();
    let eps = 1e-6;
    let mut checked = 0;
    for (name, var) in &vars {
        let analytic: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        // A few coordinates per tensor, spread over it.
        for idx in [0, base.len() / 3, base.len() - 1] {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[idx] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let l = loss(&model, &ids).to_scalar::<f64>().unwrap();
                var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                l
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            let a = analytic[idx];
            let tol = 1e-6 + 1e-4 * a.abs().max(numeric.abs());
            assert!(
                (a - numeric).abs() < tol,
                "{name}[{idx}]: analytic {a} vs numeric {numeric}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 3 * vars.len());
}

#[test]
fn train_and_infer_paths_agree() {
    let cfg = gqa_tiny();
    let w = common::synthetic_weights(&cfg, DType::F32, 0.2);
    let model = common::training_model(&cfg, w);
    let ids = Tensor::new(&[[1u32, 5, 9, 3, 7, 2, 11, 4]], &Device::Cpu).unwrap();
    let a = model.forward_train(&ids).unwrap();
    let b = model.forward(&ids).unwrap();
    let diff = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-5, "train vs infer logits differ by {diff}");
}
