//! `k2 bench train`: the time of one full optimizer step (forward, backward, clip, AdamW) on random
//! tokens, split into forward+backward and optimizer, as tokens/s and model-FLOP utilisation.
//! On the CPU, MFU is against the machine's f32 peak measured here with the same threads: vector
//! FMAs per second on every thread at once ([`k2_model::fma_peak`]; a CPU has no single
//! published peak, and its clock depends on how many cores are busy). candle's best matrix-product
//! rate is reported beside it. On a GPU, against
//! `--peak-tflops` (790 TFLOP/s dense bf16 on an H100/H200 by default for bf16/f16) or the measured
//! rate for f32. `bench/torch_train.py` runs the same model and step in PyTorch for the ratio.
//! With `--dtype bf16` the step is K2's mixed precision: bf16 compute, f32 master weights,
//! moments, norms, softmax and loss.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use k2_model::{device_kind, dtype_name, preset, DeviceSpec, LlamaConfig};
use serde::Serialize;

use crate::error::Result;
use crate::init::init_weights;
use crate::loss::Backprop;
use crate::optim::{AdamW, AdamWConfig};
use crate::session::model_over;
use crate::threads::set_threads;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub preset: String,
    pub batch: usize,
    pub seq: usize,
    pub threads: usize,
    pub warmup: usize,
    pub steps: usize,
    pub device: DeviceSpec,
    /// Compute dtype (master weights and moments stay f32).
    pub dtype: DType,
    /// The peak MFU is measured against; `None`: see the module docs.
    pub peak_tflops: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub preset: String,
    pub device: String,
    pub dtype: String,
    pub batch: usize,
    pub seq: usize,
    pub threads: usize,
    pub params: u64,
    pub step_s_median: f64,
    pub fwd_bwd_s_median: f64,
    pub optim_s_median: f64,
    pub tokens_per_s: f64,
    pub flops_per_token: f64,
    pub achieved_tflops: f64,
    pub matmul_peak_tflops: f64,
    /// The measured FMA peak of the CPU's threads (`None` on a GPU or without AVX2+FMA).
    pub fma_peak_tflops: Option<f64>,
    /// Where `peak_tflops` comes from: `given`, `H100/H200 dense bf16`, `measured FMA peak` (the
    /// CPU in f32) or `measured matmul` (candle's matmul rate otherwise).
    pub peak_source: String,
    pub peak_tflops: f64,
    pub mfu: f64,
}

impl BenchResult {
    pub fn table(&self) -> String {
        let fma = self.fma_peak_tflops.map_or_else(
            || "        - (not measured here: a GPU, or no AVX2+FMA)".to_string(),
            |p| format!("{p:>9.3} TFLOP/s  (measured, every thread's vector FMAs)"),
        );
        format!(
            "k2 bench train: preset {} ({} params), batch {} x {}, {} on {}, {} threads\n\
             step (median)        {:>9.4} s\n  forward+backward   {:>9.4} s\n  clip+AdamW         {:>9.4} s\n\
             tokens/s             {:>9.0}\n\
             model FLOP/s         {:>9.3} TFLOP/s  ({:.1} MFLOP/token)\n\
             matmul peak          {:>9.3} TFLOP/s  (candle's matmul, measured, same threads and dtype)\n\
             FMA peak             {fma}\n\
             MFU                  {:>9.1} %  (of {:.3} TFLOP/s, {})",
            self.preset,
            self.params,
            self.batch,
            self.seq,
            self.dtype,
            self.device,
            self.threads,
            self.step_s_median,
            self.fwd_bwd_s_median,
            self.optim_s_median,
            self.tokens_per_s,
            self.achieved_tflops,
            self.flops_per_token / 1e6,
            self.matmul_peak_tflops,
            self.mfu * 100.0,
            self.peak_tflops,
            self.peak_source
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Best matrix-product rate (TFLOP/s) of candle in `dtype` on `dev` over a few n^3 products
/// (n = 1024 on the CPU, 8192 on a GPU).
pub fn matmul_peak_tflops(dev: &Device, dtype: DType) -> Result<f64> {
    let n = if dev.is_cpu() { 1024 } else { 8192 };
    let a = Tensor::ones((n, n), dtype, dev)?;
    let b = Tensor::ones((n, n), dtype, dev)?;
    let _ = a.matmul(&b)?;
    dev.synchronize()?;
    let mut best = f64::MAX;
    for _ in 0..6 {
        let t = Instant::now();
        let c = a.matmul(&b)?;
        let _ = c.dims();
        dev.synchronize()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e12)
}

/// The dense bf16/f16 matrix rate of an H100/H200 that GPU MFU is quoted against.
pub const HOPPER_DENSE_BF16_TFLOPS: f64 = 790.0;

pub fn bench_train(o: &BenchOptions) -> Result<BenchResult> {
    set_threads(o.threads);
    let mut cfg = preset(&o.preset)?;
    cfg.max_position_embeddings = cfg.max_position_embeddings.max(o.seq);
    let dev = o.device.resolve()?;
    let vars: BTreeMap<String, Var> = init_weights(&cfg, 1234, &dev)?
        .into_iter()
        .map(|(k, t)| Ok((k, Var::from_tensor(&t)?)))
        .collect::<Result<_>>()?;
    let mut opt = AdamW::new(
        &vars,
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        },
    )?;
    let mut rng = k2_corpus::rng::SplitMix64::new(42);
    let mut backprop = Backprop::new();
    let (mut step_t, mut fb_t, mut opt_t) = (vec![], vec![], vec![]);
    for i in 0..o.warmup + o.steps {
        let ids: Vec<u32> = (0..o.batch * o.seq)
            .map(|_| rng.below(cfg.vocab_size as u64) as u32)
            .collect();
        let ids = Tensor::from_vec(ids, (o.batch, o.seq), &dev)?;
        dev.synchronize()?;
        let t0 = Instant::now();
        let mut grads = opt.zero_grads()?;
        // Re-cast after every update, as the trainer does (`Session`).
        let model = model_over(&cfg, &vars, o.dtype)?;
        backprop.micro_batch(&model, &ids, &opt, &mut grads, 1.0)?;
        dev.synchronize()?;
        let t1 = Instant::now();
        opt.step(&mut grads, 3e-4, 1.0)?;
        dev.synchronize()?;
        let t2 = Instant::now();
        if i >= o.warmup {
            step_t.push((t2 - t0).as_secs_f64());
            fb_t.push((t1 - t0).as_secs_f64());
            opt_t.push((t2 - t1).as_secs_f64());
        }
    }
    let step = median(step_t);
    let tokens_per_s = (o.batch * o.seq) as f64 / step;
    let fpt = cfg.train_flops_per_token(o.seq);
    let achieved = fpt * tokens_per_s / 1e12;
    let measured = matmul_peak_tflops(&dev, o.dtype)?;
    let fma = if dev.is_cpu() && o.dtype == DType::F32 {
        k2_model::fma_peak::fma_peak_flops().map(|f| f / 1e12)
    } else {
        None
    };
    let (peak, source) = match (o.peak_tflops, fma) {
        (Some(p), _) => (p, "given"),
        (None, _) if !dev.is_cpu() && o.dtype != DType::F32 => {
            (HOPPER_DENSE_BF16_TFLOPS, "H100/H200 dense bf16")
        }
        (None, Some(f)) => (f, "measured FMA peak"),
        (None, None) => (measured, "measured matmul"),
    };
    Ok(BenchResult {
        implementation: "k2-candle".into(),
        preset: o.preset.clone(),
        device: device_kind(&dev).into(),
        dtype: dtype_name(o.dtype).into(),
        batch: o.batch,
        seq: o.seq,
        threads: o.threads,
        params: cfg.num_params(),
        step_s_median: step,
        fwd_bwd_s_median: median(fb_t),
        optim_s_median: median(opt_t),
        tokens_per_s,
        flops_per_token: fpt,
        achieved_tflops: achieved,
        matmul_peak_tflops: measured,
        fma_peak_tflops: fma,
        peak_source: source.into(),
        peak_tflops: peak,
        mfu: achieved / peak,
    })
}

/// A human-readable description of a model shape with its parameter count.
pub fn describe_model(cfg: &LlamaConfig) -> String {
    let n = cfg.num_params();
    format!(
        "LLaMA: {} layers, hidden {}, {} heads ({} KV heads, head dim {}), SwiGLU {}, vocab {}, \
         RoPE theta {}, context {}, {} embeddings\nparameters: {} ({:.3}B)\n\
         training FLOPs/token at full context: {:.4e}",
        cfg.num_hidden_layers,
        cfg.hidden_size,
        cfg.num_attention_heads,
        cfg.num_kv_heads(),
        cfg.head_dim(),
        cfg.intermediate_size,
        cfg.vocab_size,
        cfg.rope_theta,
        cfg.max_position_embeddings,
        if cfg.tie_word_embeddings {
            "tied"
        } else {
            "untied"
        },
        group_digits(n),
        n as f64 / 1e9,
        cfg.train_flops_per_token(cfg.max_position_embeddings)
    )
}

fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
