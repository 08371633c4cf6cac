//! `cargo bench -p k2-model --bench fused_ops [-- PRESET BATCH SEQ]`: forward+backward time of
//! each fused CPU op against the composite ops it replaces, at the shapes of one training step,
//! and of the whole step with candle's cross-entropy against the fused one.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use k2_model::{fused, names, preset, rope_tables, Arch, Decoder};

fn rand(shape: &[usize], seed: u64, amp: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            amp * ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Median seconds of `f` over `n` runs after one warm-up.
fn time(n: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[n / 2]
}

/// Forward + backward of `Σ f(x)·r` through a var built from `x`.
fn fwd_bwd(x: &Tensor, f: &dyn Fn(&Tensor) -> Tensor) -> f64 {
    let var = Var::from_tensor(x).unwrap();
    let r = f(x).ones_like().unwrap();
    time(7, || {
        let y = f(var.as_tensor());
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(var.as_tensor()).is_some());
    })
}

fn report(name: &str, composite: f64, fused: f64) {
    println!(
        "{name:<34} composite {:>8.2} ms   fused {:>8.2} ms   {:>5.2}x",
        composite * 1e3,
        fused * 1e3,
        composite / fused
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let name = args.first().map(String::as_str).unwrap_or("bench-17m");
    let b: usize = args.get(1).map_or(8, |s| s.parse().unwrap());
    let t: usize = args.get(2).map_or(256, |s| s.parse().unwrap());
    let mut cfg = preset(name).unwrap();
    cfg.max_position_embeddings = cfg.max_position_embeddings.max(t);
    let (d, nh, hd, v) = (
        cfg.hidden_size,
        cfg.num_attention_heads,
        cfg.head_dim(),
        cfg.vocab_size,
    );
    println!(
        "preset {name}, batch {b} x {t}, {} threads (k2's kernels on candle's pool)",
        k2_model::parallel::threads()
    );

    let x = rand(&[b, t, d], 1, 2.0);
    let w = (rand(&[d], 2, 0.1) + 1.0).unwrap();
    report(
        "rms_norm (per call)",
        fwd_bwd(&x, &|x| fused::rms_norm_composite(x, &w, 1e-5).unwrap()),
        fwd_bwd(&x, &|x| fused::rms_norm(x, &w, 1e-5).unwrap()),
    );

    let ffn = cfg.intermediate_size;
    let gate = rand(&[b, t, ffn], 6, 4.0);
    let up = rand(&[b, t, ffn], 7, 1.0);
    report(
        "swiglu (per call; grad of gate)",
        fwd_bwd(&gate, &|g| fused::swiglu_composite(g, &up).unwrap()),
        fwd_bwd(&gate, &|g| fused::swiglu(g, &up).unwrap()),
    );

    let q = rand(&[b, nh, t, hd], 3, 2.0);
    let (cos, sin) = rope_tables(hd, 1e4, t, DType::F32, &Device::Cpu).unwrap();
    report(
        "rope (per call)",
        fwd_bwd(&q, &|x| fused::rope_composite(x, &cos, &sin).unwrap()),
        fwd_bwd(&q, &|x| fused::rope(x, &cos, &sin).unwrap()),
    );

    let s = rand(&[b, nh, t, t], 4, 8.0);
    let scale = 1.0 / (hd as f64).sqrt();
    report(
        "causal softmax (per call)",
        fwd_bwd(&s, &|x| fused::causal_softmax_composite(x, scale).unwrap()),
        fwd_bwd(&s, &|x| fused::causal_softmax(x, scale).unwrap()),
    );

    let n = b * (t - 1);
    let logits = rand(&[n, v], 5, 4.0);
    let targets = Tensor::from_vec(
        (0..n).map(|i| (i * 7919 % v) as u32).collect::<Vec<_>>(),
        n,
        &Device::Cpu,
    )
    .unwrap();
    report(
        "cross-entropy (per step)",
        fwd_bwd(&logits, &|x| {
            fused::cross_entropy_composite(x, &targets).unwrap()
        }),
        fwd_bwd(&logits, &|x| fused::cross_entropy(x, &targets).unwrap()),
    );

    // The whole training step's forward+backward, as trainer's `lm_loss` computes it.
    let vars: Vec<Var> = names::tensor_shapes(&k2_model::Arch::from_llama(&cfg))
        .iter()
        .enumerate()
        .map(|(k, (_, shape))| {
            let t = if shape.len() == 1 {
                (rand(shape, 100 + k as u64, 0.1) + 1.0).unwrap()
            } else {
                rand(shape, 100 + k as u64, 0.035)
            };
            Var::from_tensor(&t).unwrap()
        })
        .collect();
    let model = Decoder::for_training(
        &Arch::from_llama(&cfg),
        names::tensor_shapes(&Arch::from_llama(&cfg))
            .into_iter()
            .zip(&vars)
            .map(|((name, _), var)| (name, var.as_tensor().clone()))
            .collect(),
    )
    .unwrap();
    let ids = Tensor::from_vec(
        (0..b * t).map(|i| (i * 31 % v) as u32).collect::<Vec<_>>(),
        (b, t),
        &Device::Cpu,
    )
    .unwrap();
    let step = |ce: &dyn Fn(&Tensor, &Tensor) -> Tensor| {
        time(5, || {
            let logits = model.forward_train(&ids).unwrap();
            let logits = logits
                .narrow(1, 0, t - 1)
                .unwrap()
                .reshape((b * (t - 1), v))
                .unwrap();
            let targets = ids
                .narrow(1, 1, t - 1)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape(b * (t - 1))
                .unwrap();
            let g = ce(&logits, &targets).backward().unwrap();
            assert!(g.get(vars[0].as_tensor()).is_some());
        })
    };
    report(
        "train step fwd+bwd, CE variant",
        step(&|l, t| fused::cross_entropy_composite(l, t).unwrap()),
        step(&|l, t| fused::cross_entropy(l, t).unwrap()),
    );
}
