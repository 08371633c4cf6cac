//! Inference with a key/value cache: run a prefix once, then score or generate continuations from
//! its cached keys and values (the eval harness shares one context among all the answers of a
//! multiple-choice question this way, and greedy generation extends it token by token).
//! Rows of a right-padded batch get exactly the values they get alone, so eval scores do not
//! depend on the batch size.

use candle_core::{Tensor, D};

use crate::error::Result;
use crate::llama::{linear, mlp, repeat_kv, rms_norm, rows_matmul_t, Llama, Mode};

/// Keys and values of every layer for a batch of prefixes: each (batch, kv_heads, len, head_dim),
/// after RoPE.
#[derive(Clone)]
pub struct KvCache {
    pub layers: Vec<(Tensor, Tensor)>,
    pub len: usize,
}

impl KvCache {
    /// Row `i` of a batched cache, cut to its first `len` positions (a right-padded prefix).
    pub fn row(&self, i: usize, len: usize) -> Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.narrow(0, i, 1)?.narrow(2, 0, len)?,
                    v.narrow(0, i, 1)?.narrow(2, 0, len)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(KvCache { layers, len })
    }

    /// A batch-1 cache repeated `n` times along the batch, as broadcast views: nothing is copied
    /// until a layer concatenates its new keys (one layer at a time in [`Llama::hidden_after`]).
    pub fn expand(&self, n: usize) -> Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| {
                let (_, h, t, d) = k.dims4()?;
                Ok((k.expand((n, h, t, d))?, v.expand((n, h, t, d))?))
            })
            .collect::<Result<_>>()?;
        Ok(KvCache {
            layers,
            len: self.len,
        })
    }
}

/// Score elements (batch x heads x queries x keys) one attention product may hold at once.
const MAX_SCORES: usize = 1 << 24;

/// `causal_softmax(q kᵀ · scale) v` for (batch, heads, t, head_dim) q and (batch, heads,
/// past + t, head_dim) k, v. Query i sees keys 0..=past+i; the fused kernel sums over those keys
/// only, so a row's probabilities do not depend on how far the batch is right-padded. Long inputs
/// are computed a group of heads at a time so that the score matrix of a long context never exists
/// whole; heads are independent and each head's matrices have the same layout either way, so the
/// values do not depend on the grouping.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    attend_grouped(q, k, v, scale, MAX_SCORES)
}

fn attend_grouped(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    max_scores: usize,
) -> Result<Tensor> {
    let one = |q: &Tensor, k: &Tensor, v: &Tensor| -> Result<Tensor> {
        let probs = crate::fused::causal_softmax_f32acc(&q.matmul(&k.t()?)?, scale)?;
        Ok(probs.matmul(v)?)
    };
    let (b, h, t, _) = q.dims4()?;
    let per_head = b * t * k.dim(2)?;
    let group = (max_scores / per_head.max(1)).clamp(1, h.max(1));
    if group >= h {
        return one(q, k, v);
    }
    let mut outs = Vec::with_capacity(h.div_ceil(group));
    for h0 in (0..h).step_by(group) {
        let n = group.min(h - h0);
        let part = |x: &Tensor| -> Result<Tensor> { Ok(x.narrow(1, h0, n)?.contiguous()?) };
        outs.push(one(&part(q)?, &part(k)?, &part(v)?)?);
    }
    Ok(Tensor::cat(&outs, 1)?)
}

impl Llama {
    /// Final hidden states (batch, t, hidden) of `ids` placed after the cached prefix (positions
    /// `cache.len ..`), and the cache extended by them. Every query attends to the whole prefix and
    /// causally to the new tokens; right padding in `ids` is harmless to the real positions.
    pub fn forward_hidden_cached(
        &self,
        ids: &Tensor,
        cache: Option<&KvCache>,
    ) -> Result<(Tensor, KvCache)> {
        let (h, c) = self.cached_forward(ids, cache, true)?;
        Ok((h, c.expect("kept")))
    }

    /// Final hidden states of `ids` after the cached prefix, without keeping the extended cache:
    /// each layer's concatenated keys and values are freed after the layer, so scoring many
    /// continuations of a long context holds one layer's copy at a time, not the whole model's.
    /// The values are those of [`Llama::forward_hidden_cached`].
    pub fn hidden_after(&self, ids: &Tensor, cache: &KvCache) -> Result<Tensor> {
        Ok(self.cached_forward(ids, Some(cache), false)?.0)
    }

    fn cached_forward(
        &self,
        ids: &Tensor,
        cache: Option<&KvCache>,
        keep: bool,
    ) -> Result<(Tensor, Option<KvCache>)> {
        let (b, t) = ids.dims2()?;
        let past = cache.map_or(0, |c| c.len);
        let cfg = &self.cfg;
        if past + t > cfg.max_position_embeddings {
            return Err(crate::ModelError::InvalidConfig {
                field: "max_position_embeddings".into(),
                reason: format!(
                    "{} positions exceed {}",
                    past + t,
                    cfg.max_position_embeddings
                ),
            });
        }
        let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_kv_heads(), cfg.head_dim());
        let mut x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, cfg.hidden_size))?;
        let cos = self.cos.narrow(0, past, t)?;
        let sin = self.sin.narrow(0, past, t)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let mut new_layers = Vec::with_capacity(self.layers.len());
        for (li, l) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &l.input_norm, cfg.rms_norm_eps, Mode::Infer)?;
            let heads = |w: &Tensor, n: usize| -> Result<Tensor> {
                Ok(linear(&h, w)?
                    .reshape((b, t, n, hd))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let q = candle_nn::rotary_emb::rope(&heads(&l.q, nh)?, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope(&heads(&l.k, nkv)?, &cos, &sin)?;
            let v = heads(&l.v, nkv)?;
            let (k, v) = match cache {
                Some(c) => {
                    let (pk, pv) = &c.layers[li];
                    // Contiguous as cuBLAS needs (a broadcast prefix from `expand` makes
                    // `cat` return a strided tensor); the values are the same either way.
                    (
                        Tensor::cat(&[pk, &k], 2)?.contiguous()?,
                        Tensor::cat(&[pv, &v], 2)?.contiguous()?,
                    )
                }
                None => (k, v),
            };
            if keep {
                new_layers.push((k.clone(), v.clone()));
            }
            let k = repeat_kv(k, nh / nkv)?;
            let v = repeat_kv(v, nh / nkv)?;
            let out = attend(&q, &k, &v, scale)?
                .transpose(1, 2)?
                .reshape((b, t, nh * hd))?;
            x = (x + linear(&out, &l.o)?)?;
            let h2 = rms_norm(&x, &l.post_norm, cfg.rms_norm_eps, Mode::Infer)?;
            x = (x + mlp(l, &h2)?)?;
        }
        let h = rms_norm(&x, &self.norm, cfg.rms_norm_eps, Mode::Infer)?;
        Ok((
            h,
            keep.then_some(KvCache {
                layers: new_layers,
                len: past + t,
            }),
        ))
    }

    /// Logits from final hidden states of any shape (..., hidden), in f32 (the product runs in the
    /// model's dtype; scores and log-softmax are taken from f32 values).
    pub fn lm_head(&self, h: &Tensor) -> Result<Tensor> {
        let d = h.dim(D::Minus1)?;
        let mut shape = h.dims().to_vec();
        let n = h.elem_count() / d;
        let logits = rows_matmul_t(&h.reshape((n, d))?, &self.lm_head)?;
        *shape.last_mut().expect("non-empty shape") = self.cfg.vocab_size;
        Ok(logits.to_dtype(candle_core::DType::F32)?.reshape(shape)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Attention a few heads at a time gives the bits of one product over all heads, in f32 and
    /// bf16, with a cached prefix (more keys than queries).
    #[test]
    fn head_groups_do_not_change_attention() {
        let dev = Device::Cpu;
        let mk = |shape: (usize, usize, usize, usize), seed: f64| {
            let n = shape.0 * shape.1 * shape.2 * shape.3;
            let v: Vec<f32> = (0..n)
                .map(|i| ((i as f64 * 0.37 + seed).sin()) as f32)
                .collect();
            Tensor::from_vec(v, shape, &dev).unwrap()
        };
        let (q, k, v) = (
            mk((2, 6, 5, 8), 0.1),
            mk((2, 6, 9, 8), 0.7),
            mk((2, 6, 9, 8), 1.3),
        );
        for dt in [DType::F32, DType::BF16] {
            let (q, k, v) = (
                q.to_dtype(dt).unwrap(),
                k.to_dtype(dt).unwrap(),
                v.to_dtype(dt).unwrap(),
            );
            let whole = attend_grouped(&q, &k, &v, 0.35, usize::MAX).unwrap();
            for max in [1, 2 * 5 * 9 * 2, 2 * 5 * 9 * 4] {
                let parts = attend_grouped(&q, &k, &v, 0.35, max).unwrap();
                assert_eq!(
                    crate::host_f32(&whole).unwrap(),
                    crate::host_f32(&parts).unwrap(),
                    "{dt:?}, {max} scores per group"
                );
            }
        }
    }
}
