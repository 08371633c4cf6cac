//! The fused CPU kernels agree with the composite candle ops they replace, forward and backward,
//! on awkward shapes (odd lengths, a single row).

mod common;

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use k2_model::{fused, preset, rope_tables, LlamaConfig};

/// Deterministic pseudo-random values in about [-amp, amp].
fn rand(shape: &[usize], seed: usize, amp: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let h = ((i as f64 * 12.9898 + seed as f64 * 78.233).sin() * 43758.5453).fract();
            (amp * h) as f32
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// max |a − b| ≤ 1e-5 · max |b| (relative to the tensor's scale).
fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let diff = max_abs(&(a - b).unwrap());
    let scale = max_abs(b).max(f32::MIN_POSITIVE);
    assert!(
        diff <= 1e-5 * scale,
        "{what}: max diff {diff} vs scale {scale} (rel {})",
        diff / scale
    );
}

/// Runs `f` on fresh vars of `inputs` (the first `n_vars` are differentiated), then backprops
/// `Σ out · r` for a fixed random `r`; returns the output and the gradients.
fn run(inputs: &[Tensor], n_vars: usize, f: &dyn Fn(&[Tensor]) -> Tensor) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs[..n_vars]
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let mut args: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    args.extend(inputs[n_vars..].iter().cloned());
    let out = f(&args);
    let r = rand(out.dims(), 99, 1.0);
    let grads = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g = vars
        .iter()
        .map(|v| grads.get(v.as_tensor()).expect("no gradient").clone())
        .collect();
    (out, g)
}

fn compare(
    name: &str,
    inputs: &[Tensor],
    n_vars: usize,
    fused: &dyn Fn(&[Tensor]) -> Tensor,
    composite: &dyn Fn(&[Tensor]) -> Tensor,
) {
    let (yf, gf) = run(inputs, n_vars, fused);
    let (yc, gc) = run(inputs, n_vars, composite);
    assert_close(&yf, &yc, &format!("{name} forward"));
    for (i, (a, b)) in gf.iter().zip(&gc).enumerate() {
        assert_close(a, b, &format!("{name} grad of input {i}"));
    }
}

#[test]
fn rms_norm_matches_composite() {
    for (k, shape) in [vec![1, 1, 7], vec![2, 3, 13], vec![1, 16], vec![5, 128]]
        .into_iter()
        .enumerate()
    {
        let d = *shape.last().unwrap();
        let x = rand(&shape, k, 2.0);
        let w = (rand(&[d], k + 10, 0.5) + 1.0).unwrap();
        compare(
            &format!("rms_norm {shape:?}"),
            &[x, w],
            2,
            &|a| fused::rms_norm(&a[0], &a[1], 1e-5).unwrap(),
            &|a| fused::rms_norm_composite(&a[0], &a[1], 1e-5).unwrap(),
        );
    }
}

#[test]
fn softmax_matches_composite() {
    for (k, shape) in [vec![1, 5], vec![3, 2, 17], vec![1, 1], vec![4, 257]]
        .into_iter()
        .enumerate()
    {
        let x = rand(&shape, k, 6.0);
        compare(
            &format!("softmax {shape:?}"),
            &[x],
            1,
            &|a| fused::softmax_last_dim(&a[0]).unwrap(),
            &|a| fused::softmax_composite(&a[0]).unwrap(),
        );
    }
}

#[test]
fn causal_softmax_matches_composite() {
    for (k, shape) in [
        vec![2, 3, 7, 7],
        vec![1, 1, 1, 1],
        vec![1, 2, 5, 9],
        vec![3, 1, 33, 33],
    ]
    .into_iter()
    .enumerate()
    {
        let x = rand(&shape, k, 6.0);
        compare(
            &format!("causal_softmax {shape:?}"),
            &[x],
            1,
            &|a| fused::causal_softmax(&a[0], 0.37).unwrap(),
            &|a| fused::causal_softmax_composite(&a[0], 0.37).unwrap(),
        );
    }
}

#[test]
fn rope_matches_composite() {
    for (k, shape) in [
        vec![2, 3, 5, 8],
        vec![1, 1, 1, 2],
        vec![1, 2, 7, 6],
        vec![2, 4, 9, 32],
    ]
    .into_iter()
    .enumerate()
    {
        let x = rand(&shape, k, 2.0);
        // Tables longer than the sequence, as in the model.
        let (cos, sin) =
            rope_tables(shape[3], 10_000.0, shape[2] + 4, DType::F32, &Device::Cpu).unwrap();
        let t = shape[2];
        compare(
            &format!("rope {shape:?}"),
            &[x, cos, sin],
            1,
            &|a| fused::rope(&a[0], &a[1], &a[2]).unwrap(),
            &|a| {
                let (c, s) = (a[1].narrow(0, 0, t).unwrap(), a[2].narrow(0, 0, t).unwrap());
                fused::rope_composite(&a[0], &c, &s).unwrap()
            },
        );
    }
}

#[test]
fn cross_entropy_matches_composite() {
    for (k, (n, v)) in [(1, 5), (7, 13), (33, 1000), (1, 1)]
        .into_iter()
        .enumerate()
    {
        let logits = rand(&[n, v], k, 8.0);
        let t: Vec<u32> = (0..n).map(|i| ((i * 7919 + k) % v) as u32).collect();
        let targets = Tensor::from_vec(t, n, &Device::Cpu).unwrap();
        compare(
            &format!("cross_entropy ({n}, {v})"),
            &[logits, targets],
            1,
            &|a| fused::cross_entropy(&a[0], &a[1]).unwrap(),
            &|a| fused::cross_entropy_composite(&a[0], &a[1]).unwrap(),
        );
    }
}

#[test]
fn swiglu_matches_composite() {
    for (k, shape) in [vec![1, 1, 7], vec![2, 3, 33], vec![1, 20000]]
        .into_iter()
        .enumerate()
    {
        let g = rand(&shape, k, 6.0);
        let u = rand(&shape, k + 10, 2.0);
        compare(
            &format!("swiglu {shape:?}"),
            &[g, u],
            2,
            &|a| fused::swiglu(&a[0], &a[1]).unwrap(),
            &|a| fused::swiglu_composite(&a[0], &a[1]).unwrap(),
        );
    }
}

#[test]
fn cross_entropy_rejects_out_of_range_targets() {
    let logits = rand(&[2, 4], 0, 1.0);
    let targets = Tensor::new(&[1u32, 4], &Device::Cpu).unwrap();
    assert!(fused::cross_entropy(&logits, &targets).is_err());
}

#[test]
fn non_contiguous_inputs_are_handled() {
    // A transposed input goes through `.contiguous()` before the kernel.
    let x = rand(&[6, 5], 3, 2.0);
    let xt = x.t().unwrap();
    let a = fused::softmax_last_dim(&xt).unwrap();
    let b = fused::softmax_composite(&xt).unwrap();
    assert_close(&a, &b, "softmax of a transposed input");
}

#[test]
fn f64_falls_back_to_the_composite_ops() {
    let x = rand(&[3, 9], 1, 2.0).to_dtype(DType::F64).unwrap();
    let w = rand(&[9], 2, 1.0).to_dtype(DType::F64).unwrap();
    let xv = Var::from_tensor(&x).unwrap();
    let y = fused::rms_norm(xv.as_tensor(), &w, 1e-5).unwrap();
    assert_eq!(y.dtype(), DType::F64);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert!(g.get(xv.as_tensor()).is_some());
    let s = fused::causal_softmax(&x.reshape((1, 1, 3, 9)).unwrap(), 0.5).unwrap();
    assert_eq!(s.dtype(), DType::F64);
}

/// Gradients of the mean next-token loss (fused cross-entropy) for every weight.
fn model_grads(cfg: &LlamaConfig, dtype: DType, ids: &Tensor) -> (f64, BTreeMap<String, Tensor>) {
    let vars = common::synthetic_vars(cfg, dtype);
    let model = common::model_over_vars(cfg, &vars);
    let loss = common::autograd_loss(&model, ids);
    let grads = loss.backward().unwrap();
    let out = vars
        .iter()
        .map(|(k, v)| {
            let g = grads.get(v.as_tensor()).expect("no gradient").clone();
            (k.clone(), g.to_dtype(DType::F32).unwrap())
        })
        .collect();
    let loss = loss
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    (loss, out)
}

#[test]
fn fused_f32_training_gradients_match_composite_f64() {
    // f32 takes the fused kernels, f64 the composite ops: the whole model's loss and gradients
    // agree to f32 accuracy (GQA, odd sequence length).
    let cfg = LlamaConfig {
        num_key_value_heads: Some(1),
        ..preset("tiny-test").unwrap()
    };
    let ids = Tensor::new(
        &[[1u32, 5, 9, 3, 7, 2, 11], [4, 8, 8, 3, 1, 60, 2]],
        &Device::Cpu,
    )
    .unwrap();
    let (l32, g32) = model_grads(&cfg, DType::F32, &ids);
    let (l64, g64) = model_grads(&cfg, DType::F64, &ids);
    assert!((l32 - l64).abs() < 1e-5 * l64.abs(), "loss {l32} vs {l64}");
    for (name, a) in &g32 {
        let b = &g64[name];
        let diff = max_abs(&(a - b).unwrap());
        let scale = max_abs(b);
        assert!(
            diff <= 1e-4 * scale,
            "{name}: max diff {diff} vs scale {scale}"
        );
    }
}

#[test]
fn rope_on_the_projection_layout_matches_composite() {
    for (k, shape) in [vec![2, 5, 3, 8], vec![1, 1, 1, 2], vec![2, 9, 4, 32]]
        .into_iter()
        .enumerate()
    {
        let x = rand(&shape, k, 2.0);
        let (cos, sin) =
            rope_tables(shape[3], 10_000.0, shape[1] + 4, DType::F32, &Device::Cpu).unwrap();
        let t = shape[1];
        compare(
            &format!("rope_bthd {shape:?}"),
            &[x, cos, sin],
            1,
            &|a| fused::rope_bthd(&a[0], &a[1], &a[2]).unwrap(),
            &|a| {
                let (c, s) = (a[1].narrow(0, 0, t).unwrap(), a[2].narrow(0, 0, t).unwrap());
                let x = a[0].transpose(1, 2).unwrap().contiguous().unwrap();
                let y = fused::rope_composite(&x, &c, &s).unwrap();
                y.transpose(1, 2).unwrap()
            },
        );
    }
}

#[test]
fn linear_matches_candle_matmul() {
    for (k, (m, n, d)) in [(1, 5, 3), (7, 33, 129), (64, 40, 17)]
        .into_iter()
        .enumerate()
    {
        let x = rand(&[m, d], k, 2.0);
        let w = rand(&[n, d], k + 20, 0.5);
        compare(
            &format!("linear {m}x{d} · ({n}x{d})ᵀ"),
            &[x, w],
            2,
            &|a| fused::linear(&a[0], &a[1]).unwrap(),
            &|a| a[0].matmul(&a[1].t().unwrap()).unwrap(),
        );
    }
}

/// Attention from composite ops on (b, t, heads, d) inputs, GQA by repeating kv heads.
fn attention_composite(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Tensor {
    let (b, t, h, d) = q.dims4().unwrap();
    let kv = k.dim(2).unwrap();
    let rep = |x: &Tensor| {
        x.transpose(1, 2)
            .unwrap()
            .unsqueeze(2)
            .unwrap()
            .expand((b, kv, h / kv, t, d))
            .unwrap()
            .reshape((b, h, t, d))
            .unwrap()
    };
    let q = q.transpose(1, 2).unwrap().contiguous().unwrap();
    let (k, v) = (rep(k).contiguous().unwrap(), rep(v).contiguous().unwrap());
    let s = q.matmul(&k.t().unwrap()).unwrap();
    let p = fused::causal_softmax_composite(&s, scale).unwrap();
    p.matmul(&v).unwrap().transpose(1, 2).unwrap()
}

#[test]
fn fused_attention_matches_composite_with_and_without_gqa() {
    for (i, (b, t, h, kv, d)) in [
        (2, 7, 4, 2, 8),
        (1, 1, 2, 2, 4),
        (2, 33, 6, 3, 16),
        (1, 40, 3, 1, 32),
    ]
    .into_iter()
    .enumerate()
    {
        let q = rand(&[b, t, h, d], i, 1.5);
        let k = rand(&[b, t, kv, d], i + 10, 1.5);
        let v = rand(&[b, t, kv, d], i + 20, 1.0);
        let scale = 1.0 / (d as f64).sqrt();
        let Some(_) = fused::causal_attention(&q, &k, &v, scale).unwrap() else {
            eprintln!("skipped: no k2 matrix-product kernel on this CPU (composite attention)");
            return;
        };
        compare(
            &format!("attention b{b} t{t} h{h} kv{kv} d{d}"),
            &[q, k, v],
            3,
            &|a| {
                fused::causal_attention(&a[0], &a[1], &a[2], scale)
                    .unwrap()
                    .unwrap()
            },
            &|a| attention_composite(&a[0], &a[1], &a[2], scale),
        );
    }
}

#[test]
fn pretransposed_weights_give_the_same_product_bits() {
    // Edge tiles in both dimensions, one row, and a depth over one packed panel (256).
    for (m, k, n) in [(1, 16, 8), (7, 33, 45), (13, 300, 70), (40, 64, 1030)] {
        let x = rand(&[m, k], 1, 1.0);
        let w = rand(&[n, k], 2, 1.0);
        let Some(wt) = fused::transposed_for_gemm(&w).unwrap() else {
            println!("skipped: k2's product does not run on this CPU");
            return;
        };
        assert_eq!(wt.dims(), &[k, n]);
        let bits = |t: Tensor| -> Vec<u32> {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v.iter().map(|x| x.to_bits()).collect()
        };
        let a = bits(fused::linear(&x, &w).unwrap());
        let b = bits(fused::linear_transposed(&x, &wt).unwrap());
        assert_eq!(a, b, "{m}x{k}x{n}");
    }
}
