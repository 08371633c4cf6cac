//! The LLaMA family's training forward (Touvron et al. 2023; K2 DIAMOND uses the LLaMA-1 shape):
//! the [`Decoder`]'s other mode, over the same weights, with only differentiable ops.
//!
//! RMSNorm, RoPE, the causal attention and SwiGLU are k2's fused CPU kernels (custom ops with a
//! backward) under [`crate::backend::Kernels::K2Cpu`], and composite candle ops elsewhere: candle
//! 0.11's fused `rms_norm`, `rope` and `softmax_last_dim` have no backward and would silently stop
//! gradients. For bf16 and f16 the reductions accumulate in f32 as transformers and Megatron do
//! (RMSNorm and the attention softmax run on f32 copies, cast back). The logits stay in the
//! compute dtype; the loss widens them.
//!
//! A model built with [`Decoder::for_training`] over the tensors of `Var`s is updated by updating
//! the `Var`s in place: its weights are never prepacked or copied.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};

use crate::decoder::{Decoder, Mlp, Norm, Qkv};
use crate::error::{ModelError, Result};
use crate::family::{Arch, Family};
use crate::fused;
use crate::tensor_ops::{in_f32, is_half, repeat_kv};

/// The weights of one LLaMA layer, borrowed from a [`Decoder`] built for training.
pub(crate) struct LlamaLayer<'a> {
    pub(crate) input_norm: &'a Tensor,
    pub(crate) q: &'a Tensor,
    pub(crate) k: &'a Tensor,
    pub(crate) v: &'a Tensor,
    pub(crate) o: &'a Tensor,
    pub(crate) post_norm: &'a Tensor,
    pub(crate) gate: &'a Tensor,
    pub(crate) up: &'a Tensor,
    pub(crate) down: &'a Tensor,
}

impl Decoder {
    /// A LLaMA model for training over `map` (HF tensor names): the weights are used as they are
    /// (the tensors of `Var`s stay shared), laid out for no kernel in particular.
    pub fn for_training(arch: &Arch, map: BTreeMap<String, Tensor>) -> Result<Self> {
        if arch.family != Family::Llama {
            return Err(ModelError::InvalidConfig {
                field: "model_type".into(),
                reason: format!("k2 trains llama models, not {}", arch.family.model_type()),
            });
        }
        Decoder::build(arch, map, std::path::Path::new("<weights>"), false)
    }

    /// Layer `i`'s weights, for a LLaMA model built with [`Decoder::for_training`].
    pub(crate) fn llama_layer(&self, i: usize) -> Result<LlamaLayer<'_>> {
        let blk = &self.blocks[i];
        let (
            Norm::Rms { w: input_norm, .. },
            Norm::Rms { w: post_norm, .. },
            Qkv::Separate { q, k, v },
            Mlp::SwiGlu { gate, up, down },
            false,
        ) = (
            &blk.attn_norm,
            &blk.mlp_norm,
            &blk.qkv,
            &blk.mlp,
            self.backend.prepacked,
        )
        else {
            return Err(ModelError::InvalidConfig {
                field: "model".into(),
                reason: "the training forward needs a llama model built for training".into(),
            });
        };
        Ok(LlamaLayer {
            input_norm,
            q: q.weight(),
            k: k.weight(),
            v: v.weight(),
            o: blk.o.weight(),
            post_norm,
            gate: gate.weight(),
            up: up.weight(),
            down: down.weight(),
        })
    }

    /// The final norm's weight and the LM head of a LLaMA model built for training.
    pub(crate) fn llama_head(&self) -> Result<(&Tensor, &Tensor)> {
        match &self.norm {
            Norm::Rms { w, .. } if !self.backend.prepacked => Ok((w, self.lm_head.weight())),
            _ => Err(ModelError::InvalidConfig {
                field: "model".into(),
                reason: "the training forward needs a llama model built for training".into(),
            }),
        }
    }

    /// Logits (batch, seq, vocab) in the compute dtype for every position of `ids` (batch, seq),
    /// through differentiable ops only: gradients reach every weight.
    pub fn forward_train(&self, ids: &Tensor) -> Result<Tensor> {
        let h = self.hidden_train(ids)?;
        let (b, t, d) = h.dims3()?;
        let (_, head) = self.llama_head()?;
        let logits = fused::linear(&h.reshape((b * t, d))?, head)?;
        Ok(logits.reshape((b, t, self.arch.vocab_size))?)
    }

    /// Final hidden states after the last norm (batch, seq, hidden), differentiable.
    pub fn hidden_train(&self, ids: &Tensor) -> Result<Tensor> {
        let a = &self.arch;
        let (b, t) = ids.dims2()?;
        if t > a.max_position_embeddings {
            return Err(ModelError::InvalidConfig {
                field: "max_position_embeddings".into(),
                reason: format!("input of {t} tokens exceeds {}", a.max_position_embeddings),
            });
        }
        let mut x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, a.hidden_size))?;
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        for i in 0..self.blocks.len() {
            let l = self.llama_layer(i)?;
            let h = rms_norm(&x, l.input_norm, a.norm_eps)?;
            let att = self.attention_train(&l, &h, &cos, &sin)?;
            x = (x + att)?;
            let h = rms_norm(&x, l.post_norm, a.norm_eps)?;
            let m = linear(
                &fused::swiglu(&linear(&h, l.gate)?, &linear(&h, l.up)?)?,
                l.down,
            )?;
            x = (x + m)?;
        }
        rms_norm(&x, self.llama_head()?.0, a.norm_eps)
    }

    fn attention_train(
        &self,
        l: &LlamaLayer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let a = &self.arch;
        let (hd, nh, nkv) = (a.head_dim, a.num_attention_heads, a.num_key_value_heads);
        let scale = 1.0 / (hd as f64).sqrt();
        let q = linear(x, l.q)?.reshape((b, t, nh, hd))?;
        let k = linear(x, l.k)?.reshape((b, t, nkv, hd))?;
        let v = linear(x, l.v)?.reshape((b, t, nkv, hd))?;
        if self.backend.fused_attention() {
            // One op on the projections' own layout: no head transposes, no t×t tensors.
            let q = fused::rope_bthd(&q, cos, sin)?;
            let k = fused::rope_bthd(&k, cos, sin)?;
            if let Some(out) = fused::causal_attention(&q, &k, &v, scale)? {
                return linear(&out.reshape((b, t, nh * hd))?, l.o);
            }
        }
        let q = q.transpose(1, 2)?.contiguous()?;
        let k = k.transpose(1, 2)?.contiguous()?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let (q, k) = (fused::rope(&q, cos, sin)?, fused::rope(&k, cos, sin)?);
        let k = repeat_kv(k, nh / nkv)?;
        let v = repeat_kv(v, nh / nkv)?;
        let scores = q.matmul(&k.t()?)?;
        let probs = fused::causal_softmax_f32acc(&scores, scale)?;
        let out = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, nh * hd))?;
        linear(&out, l.o)
    }
}

/// x @ wᵀ for x of shape (batch, seq, in) and w of shape (out, in).
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let y = fused::linear(&x.reshape((b * t, d))?, w)?;
    Ok(y.reshape((b, t, w.dim(0)?))?)
}

/// The differentiable RMSNorm, accumulating bf16/f16 rows in f32.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if !is_half(x.dtype()) {
        return Ok(fused::rms_norm(x, w, eps)?);
    }
    in_f32(x, |x| {
        Ok(fused::rms_norm(x, &w.to_dtype(DType::F32)?, eps)?)
    })
}
