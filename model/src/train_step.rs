//! The training forward and backward of the LLaMA decoder in f32 on the CPU without candle's
//! autograd: the loss of [`Decoder::forward_train`] (a LLaMA model) followed by
//! [`crate::fused::cross_entropy`] over the next-token targets, and every parameter's gradient,
//! computed by k2's kernels over activation and gradient buffers that live from step to step.
//!
//! Why: under candle's backprop every gradient is a freshly zeroed tensor that each contribution
//! is added into (a `memset` and a full pass per node), every op allocates its output, and the
//! loss's narrowed logits are copied twice. Here each op writes into a buffer sized once, and the
//! step's allocations are the kernels' own small scratch.
//!
//! **Bits.** Each op is the same kernel on the same inputs as the autograd path (the fused ops'
//! `cpu_fwd` and `bwd` call the same functions), and where a tensor's gradient has several
//! contributions they are added in the order candle's backprop adds them: the normed input of
//! the attention gets v's, then k's, then q's, and a tied embedding gets the LM head's gradient
//! before the rows of the lookup. So the loss and every gradient are bit-identical to
//! `loss.backward()` over the same model (tested in `model/tests/train_step.rs`).

use candle_core::{CpuStorage, Layout, Storage, Tensor};

use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use crate::family::Arch;
use crate::fused::kernels::{
    causal_backward_into, causal_forward_into, grad_row_in_place, linear, linear_grad, log_sum_exp,
    rms_norm_grad, rms_norm_into, rope_into, swiglu_grad, swiglu_into, CausalShape,
};
use crate::names;
use crate::parallel::{par_chunks_mut, par_map};

/// Elements per parallel task of the residual adds.
const ADD_TASK: usize = 16384;

/// The activations one layer's backward reads.
#[derive(Default)]
struct LayerActs {
    /// The layer's input (the residual stream before the attention).
    x: Vec<f32>,
    h1: Vec<f32>,
    /// q and k after RoPE, and v.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// The attention's output before the o projection.
    o: Vec<f32>,
    /// The residual stream after the attention.
    x1: Vec<f32>,
    h2: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    /// silu(gate) · up, and sigmoid(gate).
    s: Vec<f32>,
    sig: Vec<f32>,
    /// The attention probabilities, (b, h, t, t).
    probs: Vec<f32>,
}

/// Buffers of the backward, reused by every layer.
#[derive(Default)]
struct Scratch {
    dx: Vec<f32>,
    dn: Vec<f32>,
    dh: Vec<f32>,
    dh2: Vec<f32>,
    da: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
    dqr: Vec<f32>,
    dkr: Vec<f32>,
    ds: Vec<f32>,
    dg: Vec<f32>,
    du: Vec<f32>,
}

/// One model's training step state: activations, gradients and scratch, sized by the first call
/// and grown when a call needs more.
#[derive(Default)]
pub struct TrainStep {
    layers: Vec<LayerActs>,
    /// The last layer's output (input of the final norm), the final norm's output, and the
    /// logits of every position (their gradient after the backward).
    x_last: Vec<f32>,
    hf: Vec<f32>,
    logits: Vec<f32>,
    lse: Vec<f32>,
    /// One gradient per parameter, in [`names::tensor_shapes`] order.
    grads: Vec<(String, Vec<f32>)>,
    /// The LM head's gradient when it is the embedding (added into the embedding's).
    tied_head: Vec<f32>,
    scratch: Scratch,
    /// q and k before RoPE.
    q_pre: Vec<f32>,
    k_pre: Vec<f32>,
    tmp: Vec<f32>,
}

/// Resizes `v` to `n` elements (new ones zero; every kernel overwrites what it reads).
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..]
}

/// The model's weight slices, read in place from the tensors' CPU storage.
struct Weights<'a> {
    embed: &'a [f32],
    layers: Vec<[&'a [f32]; 9]>,
    norm: &'a [f32],
    lm_head: &'a [f32],
    cos: &'a [f32],
    sin: &'a [f32],
}

/// The sizes one step works with, from the config and the batch shape.
struct Dims {
    /// Rows (b·t), hidden, MLP and vocabulary widths.
    n: usize,
    d: usize,
    f: usize,
    vocab: usize,
    /// Head dim, query heads, key/value heads, and the q and k/v projection widths.
    hd: usize,
    nh: usize,
    nkv: usize,
    qd: usize,
    kd: usize,
    eps: f32,
    shape: CausalShape,
    /// The attention's 1/√head_dim.
    scale: f32,
}

impl Dims {
    fn of(cfg: &Arch, b: usize, t: usize) -> Self {
        let (hd, nh, nkv) = (
            cfg.head_dim,
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
        );
        Dims {
            n: b * t,
            d: cfg.hidden_size,
            f: cfg.intermediate_size,
            vocab: cfg.vocab_size,
            hd,
            nh,
            nkv,
            qd: nh * hd,
            kd: nkv * hd,
            eps: cfg.norm_eps as f32,
            shape: CausalShape {
                b,
                t,
                h: nh,
                kv: nkv,
                d: hd,
            },
            scale: (1.0 / (hd as f64).sqrt()) as f32,
        }
    }
}

/// Layer weight indices, in [`names::tensor_shapes`] order within a layer.
const IN_NORM: usize = 0;
const WQ: usize = 1;
const WK: usize = 2;
const WV: usize = 3;
const WO: usize = 4;
const POST_NORM: usize = 5;
const GATE: usize = 6;
const UP: usize = 7;
const DOWN: usize = 8;

/// The f32 values of a tensor's storage guard and layout.
fn f32_of<'a, G: std::ops::Deref<Target = Storage>>(
    g: &'a (G, &Layout),
    what: &str,
) -> Result<&'a [f32]> {
    let (s, l) = g;
    let Storage::Cpu(CpuStorage::F32(v)) = &**s else {
        return Err(ModelError::Device(format!(
            "train step: `{what}` is not an f32 tensor on the CPU"
        )));
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        return Err(ModelError::Device(format!(
            "train step: `{what}` is not contiguous"
        )));
    };
    Ok(&v[a..b])
}

/// `out = a + b`, elementwise.
fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    par_chunks_mut(out, ADD_TASK, |c, oc| {
        let (ac, bc) = (&a[c * ADD_TASK..], &b[c * ADD_TASK..]);
        for ((o, &x), &y) in oc.iter_mut().zip(ac).zip(bc) {
            *o = x + y;
        }
    });
}

/// `acc = acc + b`, elementwise.
fn add_into(acc: &mut [f32], b: &[f32]) {
    par_chunks_mut(acc, ADD_TASK, |c, oc| {
        for (o, &y) in oc.iter_mut().zip(&b[c * ADD_TASK..]) {
            *o += y;
        }
    });
}

impl TrainStep {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this path trains `model`: a LLaMA model built for training whose backend is k2's
    /// CPU kernels (f32 on a CPU where k2's matrix product and fused attention run), at least
    /// one layer, unless `K2_AUTOGRAD=1` asks for candle's backprop (for comparisons).
    pub fn applies(model: &Decoder) -> bool {
        model.backend().train_step() && !model.blocks.is_empty() && model.llama_head().is_ok()
    }

    /// The gradient of parameter `name` (an HF tensor name) from the last [`TrainStep::run`].
    pub fn grad(&self, name: &str) -> Option<&[f32]> {
        self.grads
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, g)| g.as_slice())
    }

    /// Forward and backward over `ids` (`b` sequences of `t` tokens, row-major): returns the
    /// mean next-token cross-entropy and leaves every parameter's gradient for [`TrainStep::grad`].
    pub fn run(&mut self, model: &Decoder, ids: &[u32], b: usize, t: usize) -> Result<f32> {
        let cfg = model.arch();
        let bad = |reason: String| ModelError::InvalidConfig {
            field: "input".into(),
            reason,
        };
        if ids.len() != b * t || b == 0 || t < 2 {
            return Err(bad(format!(
                "a training batch needs b ≥ 1 sequences of t ≥ 2 tokens ({} ids for {b} x {t})",
                ids.len()
            )));
        }
        if t > cfg.max_position_embeddings {
            return Err(ModelError::InvalidConfig {
                field: "max_position_embeddings".into(),
                reason: format!(
                    "input of {t} tokens exceeds {}",
                    cfg.max_position_embeddings
                ),
            });
        }
        if let Some(&id) = ids.iter().find(|&&i| i as usize >= cfg.vocab_size) {
            return Err(bad(format!(
                "token id {id} is out of range for a vocabulary of {}",
                cfg.vocab_size
            )));
        }
        let mut tensors: Vec<&Tensor> = vec![&model.embed];
        for i in 0..model.blocks.len() {
            let l = model.llama_layer(i)?;
            tensors.extend([
                l.input_norm,
                l.q,
                l.k,
                l.v,
                l.o,
                l.post_norm,
                l.gate,
                l.up,
                l.down,
            ]);
        }
        let (norm, lm_head) = model.llama_head()?;
        tensors.extend([norm, lm_head, &model.cos, &model.sin]);
        let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
        let s = guards
            .iter()
            .map(|g| f32_of(g, "weight"))
            .collect::<Result<Vec<_>>>()?;
        let nl = model.blocks.len();
        let w = Weights {
            embed: s[0],
            layers: (0..nl)
                .map(|i| std::array::from_fn(|j| s[1 + 9 * i + j]))
                .collect(),
            norm: s[1 + 9 * nl],
            lm_head: s[2 + 9 * nl],
            cos: s[3 + 9 * nl],
            sin: s[4 + 9 * nl],
        };
        self.prepare(cfg);
        let loss = self.forward(cfg, &w, ids, b, t);
        self.backward(cfg, &w, ids, b, t);
        Ok(loss)
    }

    fn prepare(&mut self, cfg: &Arch) {
        let shapes = names::tensor_shapes(cfg);
        if self.grads.len() != shapes.len()
            || self.grads.iter().zip(&shapes).any(|(a, b)| a.0 != b.0)
        {
            self.grads = shapes
                .into_iter()
                .map(|(n, s)| (n, vec![0f32; s.iter().product()]))
                .collect();
        }
        self.layers
            .resize_with(cfg.num_hidden_layers, LayerActs::default);
    }

    /// The loss; keeps what the backward reads.
    fn forward(&mut self, cfg: &Arch, w: &Weights, ids: &[u32], b: usize, t: usize) -> f32 {
        let Dims {
            n,
            d,
            f,
            vocab,
            hd,
            nh,
            nkv,
            qd,
            kd,
            eps,
            shape,
            scale,
        } = Dims::of(cfg, b, t);
        let q_pre = sized(&mut self.q_pre, n * qd);
        let k_pre = sized(&mut self.k_pre, n * kd);
        let tmp = sized(&mut self.tmp, n * d);
        // The embedding lookup.
        {
            let x = sized(&mut self.layers[0].x, n * d);
            for (row, &id) in x.chunks_exact_mut(d).zip(ids) {
                row.copy_from_slice(&w.embed[id as usize * d..(id as usize + 1) * d]);
            }
        }
        for li in 0..self.layers.len() {
            let lw = &w.layers[li];
            let a = &mut self.layers[li];
            rms_norm_into(&a.x, lw[IN_NORM], eps, sized(&mut a.h1, n * d));
            linear(&a.h1, n, d, lw[WQ], qd, q_pre);
            linear(&a.h1, n, d, lw[WK], kd, k_pre);
            linear(&a.h1, n, d, lw[WV], kd, sized(&mut a.v, n * kd));
            rope_into(
                q_pre,
                w.cos,
                w.sin,
                nh,
                t,
                hd,
                false,
                sized(&mut a.q, n * qd),
            );
            rope_into(
                k_pre,
                w.cos,
                w.sin,
                nkv,
                t,
                hd,
                false,
                sized(&mut a.k, n * kd),
            );
            let probs = Some(sized(&mut a.probs, b * nh * t * t));
            causal_forward_into(
                shape,
                scale,
                &a.q,
                &a.k,
                &a.v,
                sized(&mut a.o, n * qd),
                probs,
            );
            linear(&a.o, n, qd, lw[WO], d, tmp);
            add(&a.x, tmp, sized(&mut a.x1, n * d));
            rms_norm_into(&a.x1, lw[POST_NORM], eps, sized(&mut a.h2, n * d));
            linear(&a.h2, n, d, lw[GATE], f, sized(&mut a.gate, n * f));
            linear(&a.h2, n, d, lw[UP], f, sized(&mut a.up, n * f));
            swiglu_into(
                &a.gate,
                &a.up,
                sized(&mut a.s, n * f),
                Some(sized(&mut a.sig, n * f)),
            );
            linear(&a.s, n, f, lw[DOWN], d, tmp);
            let (done, rest) = self.layers.split_at_mut(li + 1);
            let next = match rest.first_mut() {
                Some(l) => &mut l.x,
                None => &mut self.x_last,
            };
            add(&done[li].x1, tmp, sized(next, n * d));
        }
        rms_norm_into(&self.x_last, w.norm, eps, sized(&mut self.hf, n * d));
        linear(
            &self.hf,
            n,
            d,
            w.lm_head,
            vocab,
            sized(&mut self.logits, n * vocab),
        );
        // Cross-entropy over the positions with a next token, in (sequence, position) order.
        let logits = &self.logits;
        let rows = b * (t - 1);
        let row = |r: usize| {
            let i = (r / (t - 1)) * t + r % (t - 1);
            &logits[i * vocab..(i + 1) * vocab]
        };
        let per_task = 16384usize.div_ceil(vocab.max(1)).clamp(1, rows);
        self.lse = par_map(rows.div_ceil(per_task), |c| {
            (c * per_task..((c + 1) * per_task).min(rows))
                .map(|r| log_sum_exp(row(r)))
                .collect::<Vec<_>>()
        })
        .concat();
        let target = |r: usize| ids[(r / (t - 1)) * t + r % (t - 1) + 1] as usize;
        let total: f64 = self
            .lse
            .iter()
            .enumerate()
            .map(|(r, &l)| (l - row(r)[target(r)]) as f64)
            .sum();
        (total / rows as f64) as f32
    }

    fn backward(&mut self, cfg: &Arch, w: &Weights, ids: &[u32], b: usize, t: usize) {
        let Dims {
            n,
            d,
            f,
            vocab,
            hd,
            nh,
            nkv,
            qd,
            kd,
            eps,
            shape,
            scale,
        } = Dims::of(cfg, b, t);
        let nl = self.layers.len();
        // The logits' gradient in place: (softmax − onehot) / rows for positions with a target,
        // zero for each sequence's last position (the loss does not see it).
        let rows = b * (t - 1);
        let ce_scale = 1.0 / rows as f32;
        {
            let lse = &self.lse;
            par_chunks_mut(&mut self.logits, t * vocab, |bi, seq| {
                for (j, r) in seq.chunks_exact_mut(vocab).enumerate() {
                    if j + 1 == t {
                        r.fill(0.0);
                    } else {
                        let tg = ids[bi * t + j + 1] as usize;
                        grad_row_in_place(r, lse[bi * (t - 1) + j], tg, ce_scale);
                    }
                }
            });
        }
        let sc = &mut self.scratch;
        let (dx, dn, dh) = (
            sized(&mut sc.dx, n * d),
            sized(&mut sc.dn, n * d),
            sized(&mut sc.dh, n * d),
        );
        let norm_i = 1 + 9 * nl;
        let (head_i, tied) = (2 + 9 * nl, cfg.tie_word_embeddings);
        let grads = &mut self.grads;
        {
            let dhead = if tied {
                sized(&mut self.tied_head, vocab * d)
            } else {
                &mut grads[head_i].1[..]
            };
            linear_grad(&self.hf, w.lm_head, &self.logits, n, d, vocab, dh, dhead);
        }
        rms_norm_grad(&self.x_last, w.norm, dh, eps, dx, &mut grads[norm_i].1);
        let (dh2, da) = (sized(&mut sc.dh2, n * d), sized(&mut sc.da, n * qd));
        let (dq, dk, dv) = (
            sized(&mut sc.dq, n * qd),
            sized(&mut sc.dk, n * kd),
            sized(&mut sc.dv, n * kd),
        );
        let (dqr, dkr) = (sized(&mut sc.dqr, n * qd), sized(&mut sc.dkr, n * kd));
        let (ds, dg, du) = (
            sized(&mut sc.ds, n * f),
            sized(&mut sc.dg, n * f),
            sized(&mut sc.du, n * f),
        );
        for li in (0..nl).rev() {
            let lw = &w.layers[li];
            let a = &self.layers[li];
            let gi = |j: usize| 1 + 9 * li + j;
            // x_next = x1 + down(swiglu(gate(h2), up(h2))), h2 = norm(x1): dx is d x_next.
            linear_grad(&a.s, lw[DOWN], dx, n, f, d, ds, &mut grads[gi(DOWN)].1);
            swiglu_grad(&a.gate, &a.up, ds, dg, du, Some(&a.sig));
            linear_grad(&a.h2, lw[GATE], dg, n, d, f, dh2, &mut grads[gi(GATE)].1);
            linear_grad(&a.h2, lw[UP], du, n, d, f, dh, &mut grads[gi(UP)].1);
            add_into(dh2, dh);
            rms_norm_grad(
                &a.x1,
                lw[POST_NORM],
                dh2,
                eps,
                dn,
                &mut grads[gi(POST_NORM)].1,
            );
            add_into(dx, dn);
            // x1 = x + o_proj(attention(rope(q(h1)), rope(k(h1)), v(h1))), h1 = norm(x).
            linear_grad(&a.o, lw[WO], dx, n, qd, d, da, &mut grads[gi(WO)].1);
            causal_backward_into(
                shape,
                scale,
                &a.q,
                &a.k,
                &a.v,
                da,
                dqr,
                dkr,
                dv,
                Some(&a.probs),
            );
            rope_into(dqr, w.cos, w.sin, nh, t, hd, true, dq);
            rope_into(dkr, w.cos, w.sin, nkv, t, hd, true, dk);
            // candle adds the three contributions to dh1 in this order: v's, k's, q's.
            linear_grad(&a.h1, lw[WV], dv, n, d, kd, dh, &mut grads[gi(WV)].1);
            linear_grad(&a.h1, lw[WK], dk, n, d, kd, dh2, &mut grads[gi(WK)].1);
            add_into(dh, dh2);
            linear_grad(&a.h1, lw[WQ], dq, n, d, qd, dh2, &mut grads[gi(WQ)].1);
            add_into(dh, dh2);
            rms_norm_grad(&a.x, lw[IN_NORM], dh, eps, dn, &mut grads[gi(IN_NORM)].1);
            add_into(dx, dn);
        }
        // The embedding: the tied head's gradient first, then each position's row in order.
        let de = &mut grads[0].1;
        if tied {
            de.copy_from_slice(&self.tied_head);
        } else {
            de.fill(0.0);
        }
        for (row, &id) in dx.chunks_exact(d).zip(ids) {
            let dst = &mut de[id as usize * d..(id as usize + 1) * d];
            dst.iter_mut().zip(row).for_each(|(a, &g)| *a += g);
        }
    }
}
