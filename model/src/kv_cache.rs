//! Inference with a key/value cache: run a prefix once, then score or generate continuations from
//! its cached keys and values (the eval harness shares one context among all the answers of a
//! multiple-choice question this way, and greedy generation extends it token by token).
//! Rows of a right-padded batch get exactly the values they get alone, so eval scores do not
//! depend on the batch size.

use candle_core::Tensor;

use crate::error::Result;

/// Keys and values of every layer for a batch of prefixes, after RoPE: each (batch, kv_heads,
/// len, head_dim), or (batch, len, kv_heads, head_dim) for k2's fused attention (`seq_dim` says
/// which).
#[derive(Clone)]
pub struct KvCache {
    pub layers: Vec<(Tensor, Tensor)>,
    pub len: usize,
    /// The dimension of the positions: 2, or 1 in the fused attention's layout.
    pub seq_dim: usize,
    /// Preallocated keys and values per layer, with room beyond `len` to append in place
    /// ([`KvCache::with_room`]); `layers` are then views of their first `len` positions.
    pub(crate) room: Option<Vec<(Tensor, Tensor)>>,
}

impl KvCache {
    /// A cache of `layers` holding `len` positions along `seq_dim`.
    pub fn new(layers: Vec<(Tensor, Tensor)>, len: usize, seq_dim: usize) -> Self {
        KvCache {
            layers,
            len,
            seq_dim,
            room: None,
        }
    }

    /// This cache copied once into buffers with room for `extra` more positions, so that each
    /// forward after it ([`crate::Decoder::forward_hidden_cached`], as generation runs token by
    /// token) writes its keys and values in place instead of concatenating the whole cache again.
    /// The values are the same; with k2's fused attention and one row the attention then reads
    /// the buffer in place.
    pub fn with_room(&self, extra: usize) -> Result<KvCache> {
        let d = self.seq_dim;
        let mut room = Vec::with_capacity(self.layers.len());
        let mut layers = Vec::with_capacity(self.layers.len());
        for (k, v) in &self.layers {
            let mut dims = k.dims().to_vec();
            dims[d] = self.len + extra;
            let kb = Tensor::zeros(dims.as_slice(), k.dtype(), k.device())?;
            let vb = Tensor::zeros(dims.as_slice(), v.dtype(), v.device())?;
            kb.slice_set(&k.contiguous()?, d, 0)?;
            vb.slice_set(&v.contiguous()?, d, 0)?;
            layers.push((kb.narrow(d, 0, self.len)?, vb.narrow(d, 0, self.len)?));
            room.push((kb, vb));
        }
        Ok(KvCache {
            layers,
            len: self.len,
            seq_dim: d,
            room: Some(room),
        })
    }

    /// Layer `li`'s keys and values with `k`, `v` (`t` new positions) appended: written in place
    /// when the cache has room for them, else concatenated into new tensors. Contiguous either
    /// way (cuBLAS and k2's kernels read them so; a broadcast prefix from `expand` makes `cat`
    /// return a strided tensor).
    pub(crate) fn appended(&self, li: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let d = self.seq_dim;
        let t = k.dim(d)?;
        if let Some((kb, vb)) = self.room.as_ref().map(|r| &r[li]) {
            if self.len + t <= kb.dim(d)? {
                kb.slice_set(&k.contiguous()?, d, self.len)?;
                vb.slice_set(&v.contiguous()?, d, self.len)?;
                return Ok((
                    kb.narrow(d, 0, self.len + t)?.contiguous()?,
                    vb.narrow(d, 0, self.len + t)?.contiguous()?,
                ));
            }
        }
        let (pk, pv) = &self.layers[li];
        Ok((
            Tensor::cat(&[pk, k], d)?.contiguous()?,
            Tensor::cat(&[pv, v], d)?.contiguous()?,
        ))
    }

    /// Row `i` of a batched cache, cut to its first `len` positions (a right-padded prefix).
    pub fn row(&self, i: usize, len: usize) -> Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.narrow(0, i, 1)?.narrow(self.seq_dim, 0, len)?,
                    v.narrow(0, i, 1)?.narrow(self.seq_dim, 0, len)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(KvCache::new(layers, len, self.seq_dim))
    }

    /// One sequence's cache from a packed forward's ([`crate::Decoder::forward_packed`], whose
    /// cache is `self`): the shared `prefix`'s positions, then the sequence's own `len` positions
    /// from `start`.
    pub fn packed_row(
        &self,
        prefix: Option<&KvCache>,
        start: usize,
        len: usize,
    ) -> Result<KvCache> {
        let d = self.seq_dim;
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(li, (k, v))| {
                let (k, v) = (k.narrow(d, start, len)?, v.narrow(d, start, len)?);
                Ok(match prefix {
                    Some(p) => {
                        let (pk, pv) = &p.layers[li];
                        (Tensor::cat(&[pk, &k], d)?, Tensor::cat(&[pv, &v], d)?)
                    }
                    None => (k.contiguous()?, v.contiguous()?),
                })
            })
            .collect::<Result<_>>()?;
        Ok(KvCache::new(layers, prefix.map_or(0, |p| p.len) + len, d))
    }

    /// A batch-1 cache repeated `n` times along the batch, as broadcast views: nothing is copied
    /// until a layer concatenates its new keys (one layer at a time in [`crate::Decoder::hidden_after`]).
    pub fn expand(&self, n: usize) -> Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| {
                let (_, a, t, d) = k.dims4()?;
                Ok((k.expand((n, a, t, d))?, v.expand((n, a, t, d))?))
            })
            .collect::<Result<_>>()?;
        Ok(KvCache::new(layers, self.len, self.seq_dim))
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
pub(crate) fn attend(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
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
