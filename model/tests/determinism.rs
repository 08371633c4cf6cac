//! The training step's bits, pinned. k2's checkpoints are reproducible bit for bit only while the
//! arithmetic of a training step stays exactly what it is: the products' FMA chains, the
//! vectorised exp, the order in which gradient contributions are added. A dependency upgrade
//! (candle, gemm) or a kernel change can alter any of these silently; these tests fail when it
//! does and say which path moved (docs/determinism.md).
//!
//! * k2's own training step ([`TrainStep`], f32 on the CPU): a digest of the loss and of every
//!   gradient of one step of a fixed model and batch.
//! * candle's autograd over the same forward (the path of bf16, other devices and
//!   `K2_AUTOGRAD=1`): the same digest, from `loss.backward()`. `TrainStep` copies the order in
//!   which candle's backprop adds contributions, so if candle changes that order this digest
//!   moves while k2's does not (and `model/tests/train_step.rs` fails too).

mod common;

use candle_core::{DType, Device, Tensor};
use k2_model::{names, preset, Arch, LlamaConfig, TrainStep};

/// Digests of one step on this machine's kernels; see [`step_digest`].
const TRAIN_STEP_DIGEST: &str = "5021bbca59499f91";
const AUTOGRAD_DIGEST: &str = "5021bbca59499f91";

fn config() -> LlamaConfig {
    LlamaConfig {
        num_key_value_heads: Some(2),
        ..preset("tiny-test").unwrap()
    }
}

fn batch(b: usize, t: usize, vocab: usize) -> Vec<u32> {
    let mut s = 17u64;
    (0..b * t)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect()
}

/// FNV-1a over the bits of the loss and then of every gradient in name-table order.
fn step_digest(loss: f32, grads: &[(String, Vec<f32>)]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut eat = |x: f32| {
        for b in x.to_bits().to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    eat(loss);
    for (_, g) in grads {
        g.iter().for_each(|&x| eat(x));
    }
    format!("{h:016x}")
}

fn shapes(cfg: &LlamaConfig) -> Vec<String> {
    names::tensor_shapes(&Arch::from_llama(cfg))
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn the_training_steps_bits_are_what_they_were() {
    let cfg = config();
    let model = common::model_over_vars(&cfg, &common::synthetic_vars(&cfg, DType::F32));
    if !TrainStep::applies(&model) {
        eprintln!(
            "skipped: k2's training step does not run on this CPU (needs AVX2+FMA or AVX-512F \
             and K2_AUTOGRAD unset)"
        );
        return;
    }
    let (b, t) = (3, 12);
    let ids = batch(b, t, cfg.vocab_size);
    let mut step = TrainStep::new();
    let loss = step.run(&model, &ids, b, t).unwrap();
    let grads: Vec<(String, Vec<f32>)> = shapes(&cfg)
        .into_iter()
        .map(|n| {
            let g = step.grad(&n).unwrap().to_vec();
            (n, g)
        })
        .collect();
    let got = step_digest(loss, &grads);
    assert_eq!(
        got, TRAIN_STEP_DIGEST,
        "k2's training step (model/src/train_step.rs) now computes different bits (digest {got}, \
         pinned {TRAIN_STEP_DIGEST}). A kernel, its reduction order, or a dependency it uses \
         (gemm, the vectorised exp) changed the arithmetic, so every checkpoint k2 trains changes \
         and committed runs no longer replay bit for bit. If this is intended, update the digest \
         here, regenerate reports/* in the same change, and say why the bits moved \
         (docs/determinism.md)."
    );
}

#[test]
fn candles_autograd_bits_are_what_they_were() {
    let cfg = config();
    let vars = common::synthetic_vars(&cfg, DType::F32);
    let model = common::model_over_vars(&cfg, &vars);
    let (b, t) = (3, 12);
    let ids = batch(b, t, cfg.vocab_size);
    let ids_t = Tensor::from_vec(ids, (b, t), &Device::Cpu).unwrap();
    let loss = common::autograd_loss(&model, &ids_t);
    let store = loss.backward().unwrap();
    let grads: Vec<(String, Vec<f32>)> = shapes(&cfg)
        .into_iter()
        .map(|n| {
            let g = store.get(vars[&n].as_tensor()).unwrap();
            (n, g.flatten_all().unwrap().to_vec1().unwrap())
        })
        .collect();
    let got = step_digest(loss.to_scalar().unwrap(), &grads);
    if !TrainStep::applies(&model) {
        eprintln!("autograd digest on this CPU (candle's kernels, not pinned): {got}");
        return;
    }
    assert_eq!(
        got, AUTOGRAD_DIGEST,
        "candle's autograd over k2's training forward now computes different bits (digest {got}, \
         pinned {AUTOGRAD_DIGEST}). If candle (or candle-nn) was upgraded, its backprop may add \
         gradient contributions in a new order or its ops may round differently: k2's training \
         step copies that order to stay bit-identical to it (model/tests/train_step.rs), and bf16 \
         and GPU training go through it. Check train_step.rs's summation order against the new \
         candle before updating this digest (docs/determinism.md)."
    );
}
