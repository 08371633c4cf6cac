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
            // Query i sees keys 0..=past+i. The fused kernel sums over those keys only, so a
            // row's probabilities do not depend on how far the batch is right-padded.
            let probs = crate::fused::causal_softmax_f32acc(&q.matmul(&k.t()?)?, scale)?;
            let out = probs
                .matmul(&v)?
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
