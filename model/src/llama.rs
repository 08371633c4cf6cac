//! The LLaMA decoder (Touvron et al. 2023; K2 DIAMOND uses the LLaMA-1 shape) with two forward paths:
//!
//! * [`Mode::Train`]: only differentiable ops. RMSNorm, RoPE and the scaled causal softmax are the
//!   fused CPU kernels of [`crate::fused`] (custom ops with a backward) for f32 on the CPU, and
//!   composite candle ops (`rms_norm_slow`-style, `rope_slow`, `softmax` from exp/sum) otherwise.
//!   candle 0.11's fused `rms_norm`, `rope` and `softmax_last_dim` have no backward and would
//!   silently stop gradients.
//! * [`Mode::Infer`]: candle's fused kernels, logits for every position.
//!
//! Weights and activations are in the model's dtype (f32, bf16 or f16) on its device. For bf16 and
//! f16 the reductions accumulate in f32 as transformers and Megatron do: RMSNorm, the attention
//! softmax and the log-softmax of the logits run on f32 copies and the result is cast back.
//!
//! Both follow transformers' `LlamaForCausalLM` (rotate-half RoPE over the full head dim, pre-norm
//! blocks, SwiGLU MLP, no biases), so HF checkpoints load and score identically.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, D};

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::fused;
use crate::names;

/// Which ops the forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Differentiable ops only: gradients reach every weight.
    Train,
    /// Fused kernels, no backward.
    Infer,
}

pub(crate) struct Layer {
    pub(crate) input_norm: Tensor,
    pub(crate) q: Tensor,
    pub(crate) k: Tensor,
    pub(crate) v: Tensor,
    pub(crate) o: Tensor,
    pub(crate) post_norm: Tensor,
    pub(crate) gate: Tensor,
    pub(crate) up: Tensor,
    pub(crate) down: Tensor,
}

/// A LLaMA model whose weights are candle tensors (plain tensors for inference, the tensors of
/// `Var`s for training: updating a `Var` in place updates the model).
pub struct Llama {
    pub(crate) cfg: LlamaConfig,
    pub(crate) embed: Tensor,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: Tensor,
    pub(crate) lm_head: Tensor,
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
}

/// RoPE tables (positions × head_dim/2) as transformers computes them: inv_freq = 1/θ^(2i/d).
pub fn rope_tables(
    head_dim: usize,
    theta: f64,
    max_pos: usize,
    dtype: DType,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = (0..head_dim / 2)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let inv = Tensor::from_vec(inv, (1, head_dim / 2), dev)?;
    let pos = Tensor::arange(0u32, max_pos as u32, dev)?
        .to_dtype(DType::F32)?
        .reshape((max_pos, 1))?;
    let freqs = pos.matmul(&inv)?;
    Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
}

fn take(map: &mut BTreeMap<String, Tensor>, name: &str, shape: &[usize]) -> Result<Tensor> {
    let t = map.remove(name).ok_or_else(|| ModelError::MissingTensor {
        path: "<weights>".into(),
        name: name.to_string(),
    })?;
    if t.dims() != shape {
        return Err(ModelError::TensorShape {
            path: "<weights>".into(),
            name: name.to_string(),
            expected: shape.to_vec(),
            actual: t.dims().to_vec(),
        });
    }
    Ok(t)
}

impl Llama {
    /// Builds the model from tensors named as in HF checkpoints. With tied embeddings the LM head
    /// is the embedding matrix; a present `lm_head.weight` is then ignored as transformers does.
    pub fn from_tensors(cfg: &LlamaConfig, mut map: BTreeMap<String, Tensor>) -> Result<Self> {
        cfg.validate()?;
        let shapes: BTreeMap<String, Vec<usize>> = names::tensor_shapes(cfg).into_iter().collect();
        let mut get = |name: &str| -> Result<Tensor> {
            let shape = shapes.get(name).cloned().unwrap_or_default();
            take(&mut map, name, &shape)
        };
        let embed = get(names::EMBED)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let n = |s: &str| names::layer(i, s);
            layers.push(Layer {
                input_norm: get(&n("input_layernorm.weight"))?,
                q: get(&n("self_attn.q_proj.weight"))?,
                k: get(&n("self_attn.k_proj.weight"))?,
                v: get(&n("self_attn.v_proj.weight"))?,
                o: get(&n("self_attn.o_proj.weight"))?,
                post_norm: get(&n("post_attention_layernorm.weight"))?,
                gate: get(&n("mlp.gate_proj.weight"))?,
                up: get(&n("mlp.up_proj.weight"))?,
                down: get(&n("mlp.down_proj.weight"))?,
            });
        }
        let norm = get(names::FINAL_NORM)?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            get(names::LM_HEAD)?
        };
        let (cos, sin) = rope_tables(
            cfg.head_dim(),
            cfg.rope_theta,
            cfg.max_position_embeddings,
            embed.dtype(),
            embed.device(),
        )?;
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            layers,
            norm,
            lm_head,
            cos,
            sin,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    pub fn dtype(&self) -> DType {
        self.embed.dtype()
    }

    /// Logits for every position: `ids` is (batch, seq) u32, the result (batch, seq, vocab).
    pub fn forward(&self, ids: &Tensor, mode: Mode) -> Result<Tensor> {
        let h = self.hidden(ids, mode)?;
        let (b, t, d) = h.dims3()?;
        let logits = fused::linear(&h.reshape((b * t, d))?, &self.lm_head)?;
        Ok(logits.reshape((b, t, self.cfg.vocab_size))?)
    }

    /// Final hidden states after the last norm: (batch, seq, hidden).
    pub fn hidden(&self, ids: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.cfg.max_position_embeddings {
            return Err(ModelError::InvalidConfig {
                field: "max_position_embeddings".into(),
                reason: format!(
                    "input of {t} tokens exceeds {}",
                    self.cfg.max_position_embeddings
                ),
            });
        }
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((
            b,
            t,
            self.cfg.hidden_size,
        ))?;
        // In the dtype the softmax runs in (f32 for bf16/f16 activations).
        let mask_dtype = if is_half(x.dtype()) {
            DType::F32
        } else {
            x.dtype()
        };
        let mask = causal_mask(t, mask_dtype, x.device())?;
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        for layer in &self.layers {
            let h = rms_norm(&x, &layer.input_norm, self.cfg.rms_norm_eps, mode)?;
            let a = self.attention(layer, &h, &mask, &cos, &sin, mode)?;
            x = (x + a)?;
            let h = rms_norm(&x, &layer.post_norm, self.cfg.rms_norm_eps, mode)?;
            let m = mlp(layer, &h)?;
            x = (x + m)?;
        }
        rms_norm(&x, &self.norm, self.cfg.rms_norm_eps, mode)
    }

    fn attention(
        &self,
        l: &Layer,
        x: &Tensor,
        mask: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mode: Mode,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let hd = self.cfg.head_dim();
        let nh = self.cfg.num_attention_heads;
        let nkv = self.cfg.num_kv_heads();
        let scale = 1.0 / (hd as f64).sqrt();
        let q = linear(x, &l.q)?.reshape((b, t, nh, hd))?;
        let k = linear(x, &l.k)?.reshape((b, t, nkv, hd))?;
        let v = linear(x, &l.v)?.reshape((b, t, nkv, hd))?;
        if fused::fused_attention_applies(&q) {
            // One op on the projections' own layout: no head transposes, no t×t tensors.
            let q = fused::rope_bthd(&q, cos, sin)?;
            let k = fused::rope_bthd(&k, cos, sin)?;
            if let Some(out) = fused::causal_attention(&q, &k, &v, scale)? {
                return linear(&out.reshape((b, t, nh * hd))?, &l.o);
            }
        }
        let q = q.transpose(1, 2)?.contiguous()?;
        let k = k.transpose(1, 2)?.contiguous()?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let (q, k) = match mode {
            Mode::Train => (fused::rope(&q, cos, sin)?, fused::rope(&k, cos, sin)?),
            Mode::Infer => (
                candle_nn::rotary_emb::rope(&q, cos, sin)?,
                candle_nn::rotary_emb::rope(&k, cos, sin)?,
            ),
        };
        let k = repeat_kv(k, nh / nkv)?;
        let v = repeat_kv(v, nh / nkv)?;
        let scores = q.matmul(&k.t()?)?;
        let probs = match mode {
            Mode::Train => fused::causal_softmax_f32acc(&scores, scale)?,
            Mode::Infer => in_f32(&scores, |s| {
                Ok(candle_nn::ops::softmax_last_dim(
                    &(s * scale)?.broadcast_add(mask)?,
                )?)
            })?,
        };
        let out = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, nh * hd))?;
        linear(&out, &l.o)
    }
}

/// x @ wᵀ for x of shape (batch, seq, in) and w of shape (out, in).
pub(crate) fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let y = fused::linear(&x.reshape((b * t, d))?, w)?;
    Ok(y.reshape((b, t, w.dim(0)?))?)
}

pub(crate) fn mlp(l: &Layer, x: &Tensor) -> Result<Tensor> {
    let g = linear(x, &l.gate)?;
    let u = linear(x, &l.up)?;
    linear(&fused::swiglu(&g, &u)?, &l.down)
}

pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, mode: Mode) -> Result<Tensor> {
    Ok(match mode {
        // candle's fused kernel accumulates bf16/f16 rows in f32 itself.
        Mode::Infer => candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32)?,
        Mode::Train if !is_half(x.dtype()) => fused::rms_norm(x, w, eps)?,
        Mode::Train => in_f32(x, |x| {
            Ok(fused::rms_norm(x, &w.to_dtype(DType::F32)?, eps)?)
        })?,
    })
}

/// bf16 or f16.
pub fn is_half(d: DType) -> bool {
    matches!(d, DType::BF16 | DType::F16)
}

/// `t` in f32 if it is bf16/f16, else unchanged (f32 and f64 keep their precision).
pub fn upcast(t: &Tensor) -> Result<Tensor> {
    Ok(if is_half(t.dtype()) {
        t.to_dtype(DType::F32)?
    } else {
        t.clone()
    })
}

/// Every value of `t`, flattened in row-major order, as f32 on the host.
pub fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// `f` applied to `x` in f32 when `x` is bf16/f16, the result cast back to `x`'s dtype; `f(x)`
/// for f32 and f64. Differentiable: the casts pass gradients through.
pub(crate) fn in_f32(x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    if !is_half(x.dtype()) {
        return f(x);
    }
    Ok(f(&x.to_dtype(DType::F32)?)?.to_dtype(x.dtype())?)
}

pub(crate) fn repeat_kv(x: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x);
    }
    let (b, nkv, t, hd) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .expand((b, nkv, n_rep, t, hd))?
        .reshape((b, nkv * n_rep, t, hd))?)
}

/// (t, t) additive mask: 0 on and below the diagonal, -inf above.
fn causal_mask(t: usize, dtype: DType, dev: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(m, (t, t), dev)?.to_dtype(dtype)?)
}

/// Log-probability of each next token: for logits (b, t, v) and ids (b, t), returns (b, t-1)
/// with entry [i, j] = log p(ids[i, j+1] | ids[i, ..=j]), in f32 for bf16/f16 logits.
pub fn next_token_logprobs(logits: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let (b, t, v) = logits.dims3()?;
    let logits = upcast(&logits.narrow(1, 0, t - 1)?)?;
    let lp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let targets = ids.narrow(1, 1, t - 1)?.contiguous()?;
    let picked = lp
        .reshape((b * (t - 1), v))?
        .gather(&targets.reshape((b * (t - 1), 1))?, 1)?;
    Ok(picked.reshape((b, t - 1))?)
}
