//! The inference decoder for every supported family ([`crate::family`]): one cached forward pass
//! whose pieces the [`Arch`] chooses (norm, block layout, fused or separate q/k/v, partial RoPE,
//! q/k/v clipping, QK-norm, GELU or SwiGLU MLP, biases, tied head).
//!
//! Run a prefix once, then score or generate continuations from its cached keys and values (the
//! eval harness shares one context among all the answers of a multiple-choice question this way,
//! and greedy generation extends it token by token). Rows of a right-padded batch get exactly the
//! values they get alone, so eval scores do not depend on the batch size.
//!
//! For LLaMA the ops are candle's fused RMSNorm and RoPE, the f32-accumulating causal softmax
//! and SwiGLU (the same model trains through [`Decoder::forward_train`]); the other families follow
//! transformers' modeling files: GPT-NeoX's per-head `[q|k|v]` layout of `query_key_value` and its
//! parallel residual `x + attn(ln1 x) + mlp(ln2 x)`, OLMo's parameter-free LayerNorm and
//! `clip_qkv`, OLMo-2's norms of each sub-layer's output and RMSNorm over all of q and k.

use candle_core::{DType, Device, Tensor, D};

use crate::backend::Backend;
use crate::error::{ModelError, Result};
use crate::family::{Arch, BlockKind, NormKind};
use crate::fused;
use crate::kv_cache::{attend, KvCache};
use crate::tensor_ops::repeat_kv;

/// A projection `x @ wᵀ (+ b)`.
pub(crate) struct Linear {
    /// (out, in); (in, out) when `transposed` (laid out for k2's product, see
    /// [`fused::transposed_for_gemm`]).
    w: Tensor,
    pub(crate) b: Option<Tensor>,
    transposed: bool,
}

impl Linear {
    /// The projection with weight `w` (out, in), kept transposed when the backend prepacks.
    pub(crate) fn new(w: Tensor, b: Option<Tensor>, backend: &Backend) -> Result<Self> {
        let wt = if backend.prepacked {
            fused::transposed_for_gemm(&w)?
        } else {
            None
        };
        Ok(match wt {
            Some(wt) => Linear {
                w: wt,
                b,
                transposed: true,
            },
            None => Linear {
                w,
                b,
                transposed: false,
            },
        })
    }

    /// The projection with weight `w` (out, in) kept as it is (a tied head: the embedding).
    pub(crate) fn untransposed(w: Tensor) -> Self {
        Linear {
            w,
            b: None,
            transposed: false,
        }
    }

    /// The weight (out, in) of a projection that is not prepacked.
    pub(crate) fn weight(&self) -> &Tensor {
        debug_assert!(!self.transposed);
        &self.w
    }

    /// Output features.
    fn out_dim(&self) -> Result<usize> {
        Ok(self.w.dim(if self.transposed { 1 } else { 0 })?)
    }

    /// `x @ wᵀ` for x of shape (rows, in).
    pub(crate) fn product(&self, x: &Tensor) -> Result<Tensor> {
        Ok(if self.transposed {
            fused::linear_transposed(x, &self.w)?
        } else {
            fused::linear(x, &self.w)?
        })
    }

    /// For x of shape (batch, seq, in).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let y = self.product(&x.reshape((b * t, d))?)?;
        let y = match &self.b {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        };
        Ok(y.reshape((b, t, self.out_dim()?))?)
    }
}

/// A normalisation over the last dimension.
pub(crate) enum Norm {
    Rms { w: Tensor, eps: f64 },
    Layer { w: Tensor, b: Tensor, eps: f64 },
}

impl Norm {
    pub(crate) fn new(
        kind: NormKind,
        w: Option<Tensor>,
        b: Option<Tensor>,
        eps: f64,
        size: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        Ok(match (kind, w, b) {
            (NormKind::Rms, Some(w), _) => Norm::Rms { w, eps },
            (NormKind::LayerNorm, Some(w), Some(b)) => Norm::Layer { w, b, eps },
            // A LayerNorm without parameters is one with weight 1 and bias 0.
            (NormKind::LayerNormNoParams, _, _) => Norm::Layer {
                w: Tensor::ones(size, dtype, dev)?,
                b: Tensor::zeros(size, dtype, dev)?,
                eps,
            },
            _ => unreachable!("the weight loader supplies every parameter the norm kind has"),
        })
    }

    /// candle's fused kernels; both accumulate bf16/f16 rows in f32.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        Ok(match self {
            Norm::Rms { w, eps } => candle_nn::ops::rms_norm(&x, w, *eps as f32)?,
            Norm::Layer { w, b, eps } => candle_nn::ops::layer_norm(&x, w, b, *eps as f32)?,
        })
    }
}

/// q, k and v from one hidden state.
pub(crate) enum Qkv {
    Separate {
        q: Linear,
        k: Linear,
        v: Linear,
    },
    /// GPT-NeoX's `query_key_value`: per head, `[q | k | v]` of head_dim each.
    Fused(Linear),
}

pub(crate) enum Mlp {
    SwiGlu {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
    Gelu {
        up: Linear,
        down: Linear,
        erf: bool,
    },
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Mlp::SwiGlu { gate, up, down } => {
                down.forward(&fused::swiglu(&gate.forward(x)?, &up.forward(x)?)?)
            }
            Mlp::Gelu { up, down, erf } => {
                let h = up.forward(x)?;
                let h = if *erf { h.gelu_erf()? } else { h.gelu()? };
                down.forward(&h)
            }
        }
    }
}

pub(crate) struct Block {
    /// Before attention (pre-norm) or after it (OLMo-2).
    pub(crate) attn_norm: Norm,
    /// Before the MLP (pre-norm) or after it (OLMo-2).
    pub(crate) mlp_norm: Norm,
    pub(crate) qkv: Qkv,
    pub(crate) q_norm: Option<Norm>,
    pub(crate) k_norm: Option<Norm>,
    pub(crate) o: Linear,
    pub(crate) mlp: Mlp,
}

/// How [`Decoder::run`] packs sequences into one row: each one's (start, len), each one's span of
/// a middle cache it follows, and whether only each one's last position is finished.
#[derive(Clone, Copy)]
struct PackedRun<'a> {
    segments: &'a [(usize, usize)],
    middle: Option<(&'a KvCache, &'a [(usize, usize)])>,
    last_only: bool,
}

impl<'a> PackedRun<'a> {
    fn new(segments: &'a [(usize, usize)]) -> Self {
        PackedRun {
            segments,
            middle: None,
            last_only: false,
        }
    }
}

/// A decoder-only model for inference, of any supported family.
pub struct Decoder {
    pub(crate) arch: Arch,
    pub(crate) embed: Tensor,
    pub(crate) blocks: Vec<Block>,
    pub(crate) norm: Norm,
    pub(crate) lm_head: Linear,
    /// RoPE tables over the rotary dims: (positions, rotary_dims / 2).
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
    pub(crate) num_params: u64,
    /// The kernels, chosen when the model was built.
    pub(crate) backend: Backend,
}

impl Decoder {
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    pub fn dtype(&self) -> DType {
        self.embed.dtype()
    }

    /// The kernels this model runs with.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Whether a forward after a cached prefix gives exactly the bits of the whole sequence run at
    /// once (k2's fused attention: f32 on a CPU with k2's matrix product). Elsewhere the values
    /// agree to rounding only, as the kernels' reduction order depends on the shapes.
    pub fn prefix_reuse_is_exact(&self) -> bool {
        self.backend.fused_attention()
    }

    /// An error unless packed forwards apply ([`Decoder::prefix_reuse_is_exact`]).
    fn require_packing(&self) -> Result<()> {
        if self.prefix_reuse_is_exact() {
            return Ok(());
        }
        Err(ModelError::InvalidConfig {
            field: "packed forward".into(),
            reason: "needs k2's fused attention (f32 on a CPU with AVX2+FMA)".into(),
        })
    }

    /// Parameters of the checkpoint (a tied head counted once).
    pub fn num_params(&self) -> u64 {
        self.num_params
    }

    /// Logits (batch, seq, vocab) in f32 for every position of `ids` (batch, seq).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (h, _) = self.run(ids, None, false, None)?;
        self.lm_head(&h)
    }

    /// Final hidden states (batch, t, hidden) of `ids` placed after the cached prefix (positions
    /// `cache.len ..`), and the cache extended by them. Every query attends to the whole prefix and
    /// causally to the new tokens; right padding in `ids` is harmless to the real positions.
    pub fn forward_hidden_cached(
        &self,
        ids: &Tensor,
        cache: Option<&KvCache>,
    ) -> Result<(Tensor, KvCache)> {
        let (h, c) = self.run(ids, cache, true, None)?;
        Ok((h, c.expect("kept")))
    }

    /// Final hidden states of `ids` after the cached prefix, without keeping the extended cache:
    /// each layer's concatenated keys and values are freed after the layer, so scoring many
    /// continuations of a long context holds one layer's copy at a time, not the whole model's.
    /// The values are those of [`Decoder::forward_hidden_cached`].
    pub fn hidden_after(&self, ids: &Tensor, cache: &KvCache) -> Result<Tensor> {
        Ok(self.run(ids, Some(cache), false, None)?.0)
    }

    /// Several sequences packed into one row, each after the same cached prefix (or none): `ids`
    /// (1, n) holds them one after another as `segments` ((start, len), tiling 0..n), and token j
    /// of a sequence sits at position `prefix.len + j`. Each sequence gets exactly the hidden
    /// states it gets alone after the prefix, with no padding computed. Returns the hidden states
    /// (1, n, hidden) and, with `keep`, the packed sequences' own keys and values, the prefix's
    /// not copied in (cut one sequence's cache from both with [`KvCache::packed_row`]). Only where
    /// [`Decoder::prefix_reuse_is_exact`].
    pub fn forward_packed(
        &self,
        ids: &Tensor,
        segments: &[(usize, usize)],
        prefix: Option<&KvCache>,
        keep: bool,
    ) -> Result<(Tensor, Option<KvCache>)> {
        self.require_packing()?;
        self.run(ids, prefix, keep, Some(PackedRun::new(segments)))
    }

    /// [`Decoder::forward_packed`] for callers that need only each sequence's last position (the
    /// next-token logits of contexts; a prefix's cache): the final layer runs its attention
    /// output, MLP and norm for those rows only (its keys and values for all), and the hidden
    /// states returned are (1, segments, hidden), one row per sequence, with the bits of those
    /// rows of [`Decoder::forward_packed`]'s. Every sequence must be non-empty.
    pub fn forward_packed_last(
        &self,
        ids: &Tensor,
        segments: &[(usize, usize)],
        prefix: Option<&KvCache>,
        keep: bool,
    ) -> Result<(Tensor, Option<KvCache>)> {
        self.require_packing()?;
        if segments.iter().any(|s| s.1 == 0) {
            return Err(ModelError::InvalidConfig {
                field: "packed forward".into(),
                reason: format!("an empty sequence has no last position: {segments:?}"),
            });
        }
        let run = PackedRun {
            last_only: true,
            ..PackedRun::new(segments)
        };
        self.run(ids, prefix, keep, Some(run))
    }

    /// [`Decoder::forward_packed`] where each sequence also follows its own span of `middle`, a
    /// packed forward's kept cache (the sequences' contexts, run packed after the same `prefix`):
    /// sequence s sits after the prefix and positions `spans[s]` ((start, len)) of `middle`, so
    /// token j of it is at position `prefix.len + spans[s].1 + j`. The continuations of several
    /// contexts run in one forward this way, each with exactly the hidden states it gets run
    /// alone after its context. Returns the hidden states (1, n, hidden).
    pub fn forward_packed_after(
        &self,
        ids: &Tensor,
        segments: &[(usize, usize)],
        prefix: Option<&KvCache>,
        middle: &KvCache,
        spans: &[(usize, usize)],
    ) -> Result<Tensor> {
        self.require_packing()?;
        if spans.len() != segments.len()
            || middle.layers.len() != self.blocks.len()
            || middle.seq_dim != 1
            || spans.iter().any(|&(a, n)| a + n > middle.len)
        {
            return Err(ModelError::InvalidConfig {
                field: "packed forward".into(),
                reason: format!(
                    "{} middle spans {spans:?} for {} sequences, a middle cache of {} layers \
                     and {} positions for {} layers",
                    spans.len(),
                    segments.len(),
                    middle.layers.len(),
                    middle.len,
                    self.blocks.len()
                ),
            });
        }
        let run = PackedRun {
            middle: Some((middle, spans)),
            ..PackedRun::new(segments)
        };
        Ok(self.run(ids, prefix, false, Some(run))?.0)
    }

    /// Logits from final hidden states of any shape (..., hidden), in f32 (the product runs in the
    /// model's dtype; scores and log-softmax are taken from f32 values).
    pub fn lm_head(&self, h: &Tensor) -> Result<Tensor> {
        let d = h.dim(D::Minus1)?;
        let mut shape = h.dims().to_vec();
        let n = h.elem_count() / d;
        let logits = self.lm_head.product(&h.reshape((n, d))?)?;
        *shape.last_mut().expect("non-empty shape") = self.arch.vocab_size;
        Ok(logits.to_dtype(DType::F32)?.reshape(shape)?)
    }

    /// RoPE on the leading `rotary_dims` of each head of x (batch, heads, t, head_dim).
    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (hd, rot) = (self.arch.head_dim, self.arch.rotary_dims);
        if rot == hd {
            return Ok(candle_nn::rotary_emb::rope(x, cos, sin)?);
        }
        let r = candle_nn::rotary_emb::rope(&x.narrow(3, 0, rot)?.contiguous()?, cos, sin)?;
        Ok(Tensor::cat(&[&r, &x.narrow(3, rot, hd - rot)?], 3)?.contiguous()?)
    }

    /// RoPE on the leading `rotary_dims` of each head of x (batch, t, heads, head_dim).
    fn rope_bthd(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (hd, rot) = (self.arch.head_dim, self.arch.rotary_dims);
        if rot == hd {
            return Ok(fused::rope_bthd(x, cos, sin)?);
        }
        let r = fused::rope_bthd(&x.narrow(3, 0, rot)?.contiguous()?, cos, sin)?;
        Ok(Tensor::cat(&[&r, &x.narrow(3, rot, hd - rot)?], 3)?.contiguous()?)
    }

    /// q (batch, heads, t, hd), k and v (batch, kv_heads, t, hd) of one block, before RoPE; with
    /// `bthd`, in the projections' own layout (batch, t, heads, hd) instead.
    fn project(&self, blk: &Block, h: &Tensor, bthd: bool) -> Result<(Tensor, Tensor, Tensor)> {
        let a = &self.arch;
        let (b, t, _) = h.dims3()?;
        let (nh, nkv, hd) = (a.num_attention_heads, a.num_key_value_heads, a.head_dim);
        let heads = |x: Tensor, n: usize| -> Result<Tensor> {
            let x = x.reshape((b, t, n, hd))?;
            Ok(if bthd { x } else { x.transpose(1, 2)? }.contiguous()?)
        };
        match &blk.qkv {
            Qkv::Separate { q, k, v } => {
                let (mut q, mut k, mut v) = (q.forward(h)?, k.forward(h)?, v.forward(h)?);
                if let Some(c) = a.clip_qkv {
                    q = q.clamp(-c, c)?;
                    k = k.clamp(-c, c)?;
                    v = v.clamp(-c, c)?;
                }
                if let (Some(qn), Some(kn)) = (&blk.q_norm, &blk.k_norm) {
                    q = qn.forward(&q)?;
                    k = kn.forward(&k)?;
                }
                Ok((heads(q, nh)?, heads(k, nkv)?, heads(v, nkv)?))
            }
            Qkv::Fused(w) => {
                let y = w.forward(h)?.reshape((b, t, nh, 3 * hd))?;
                let part = |i: usize| -> Result<Tensor> {
                    let x = y.narrow(3, i * hd, hd)?;
                    Ok(if bthd { x } else { x.transpose(1, 2)? }.contiguous()?)
                };
                Ok((part(0)?, part(1)?, part(2)?))
            }
        }
    }

    fn run(
        &self,
        ids: &Tensor,
        cache: Option<&KvCache>,
        keep: bool,
        packed_run: Option<PackedRun>,
    ) -> Result<(Tensor, Option<KvCache>)> {
        let packed = packed_run.map(|p| p.segments);
        let middle = packed_run.and_then(|p| p.middle);
        let last_only = packed_run.is_some_and(|p| p.last_only);
        let (b, t) = ids.dims2()?;
        let past = cache.map_or(0, |c| c.len);
        let a = &self.arch;
        // Positions of packed sequence s start after the prefix and its middle span.
        let after = |s: usize| middle.map_or(0, |(_, spans)| spans[s].1);
        let longest = packed.map_or(t, |segs| {
            segs.iter()
                .enumerate()
                .map(|(s, seg)| after(s) + seg.1)
                .max()
                .unwrap_or(0)
        });
        if past + longest > a.max_position_embeddings {
            return Err(ModelError::InvalidConfig {
                field: "max_position_embeddings".into(),
                reason: format!(
                    "{} positions exceed {}",
                    past + longest,
                    a.max_position_embeddings
                ),
            });
        }
        let (nh, nkv, hd) = (a.num_attention_heads, a.num_key_value_heads, a.head_dim);
        let mut x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, a.hidden_size))?;
        let (cos, sin) = match packed {
            None => (self.cos.narrow(0, past, t)?, self.sin.narrow(0, past, t)?),
            Some(segs) => {
                let pos: Vec<u32> = segs
                    .iter()
                    .enumerate()
                    .flat_map(|(s, &(_, n))| {
                        let p0 = past + after(s);
                        (p0..p0 + n).map(|p| p as u32)
                    })
                    .collect();
                let pos = Tensor::from_vec(pos, t, self.cos.device())?;
                (
                    self.cos.index_select(&pos, 0)?,
                    self.sin.index_select(&pos, 0)?,
                )
            }
        };
        let scale = 1.0 / (hd as f64).sqrt();
        // k2's fused attention (f32 on a CPU with k2's product) works on the (b, t, heads, hd)
        // layout and keeps the cache so; its values do not depend on what was cached.
        let bthd = self.backend.fused_attention();
        let seq_dim = self.backend.kv_seq_dim();
        if let Some(c) = cache {
            if c.seq_dim != seq_dim {
                return Err(ModelError::InvalidConfig {
                    field: "kv cache".into(),
                    reason: "made by another attention kernel than this forward's".into(),
                });
            }
        }
        // The rows the final layer finishes when only each sequence's last position is needed.
        let last_rows = match packed {
            Some(segs) if last_only => {
                let rows: Vec<u32> = segs.iter().map(|&(a, n)| (a + n - 1) as u32).collect();
                Some(Tensor::from_vec(rows, segs.len(), x.device())?)
            }
            _ => None,
        };
        let mut new_layers = Vec::with_capacity(self.blocks.len());
        for (li, blk) in self.blocks.iter().enumerate() {
            let last_layer = li + 1 == self.blocks.len();
            let h = match a.block {
                BlockKind::PostSublayerNorm => x.clone(),
                _ => blk.attn_norm.forward(&x)?,
            };
            let (q, k, v) = self.project(blk, &h, bthd)?;
            let (q, k) = if bthd {
                (
                    self.rope_bthd(&q, &cos, &sin)?,
                    self.rope_bthd(&k, &cos, &sin)?,
                )
            } else {
                (self.rope(&q, &cos, &sin)?, self.rope(&k, &cos, &sin)?)
            };
            let (k, v) = match cache {
                // Packed sequences read the prefix in place.
                Some(_) if packed.is_some() => (k, v),
                Some(c) => c.appended(li, &k, &v)?,
                None => (k, v),
            };
            if keep {
                new_layers.push((k.clone(), v.clone()));
            }
            let fused_out = match packed {
                Some(segs) => {
                    let run = fused::Packed {
                        segments: segs,
                        prefix: cache.map(|c| (&c.layers[li].0, &c.layers[li].1)),
                        middle: middle.map(|(m, spans)| fused::Middle {
                            k: &m.layers[li].0,
                            v: &m.layers[li].1,
                            spans,
                        }),
                        last_only: last_only && last_layer,
                    };
                    match &last_rows {
                        Some(rows) if last_layer => {
                            fused::packed_attention(&q.index_select(rows, 1)?, &k, &v, scale, &run)?
                        }
                        _ => fused::packed_attention(&q, &k, &v, scale, &run)?,
                    }
                }
                None if bthd => fused::causal_attention(&q, &k, &v, scale)?,
                None => None,
            };
            let out = match fused_out {
                Some(o) => {
                    let rows = o.dim(1)?;
                    o.reshape((b, rows, nh * hd))?
                }
                None => {
                    let (q, k, v) = if bthd {
                        (q.transpose(1, 2)?, k.transpose(1, 2)?, v.transpose(1, 2)?)
                    } else {
                        (q, k, v)
                    };
                    let k = repeat_kv(k.contiguous()?, nh / nkv)?;
                    let v = repeat_kv(v.contiguous()?, nh / nkv)?;
                    attend(&q.contiguous()?, &k, &v, scale)?
                        .transpose(1, 2)?
                        .reshape((b, t, nh * hd))?
                }
            };
            let attn = blk.o.forward(&out)?;
            if let (Some(rows), true) = (&last_rows, last_layer) {
                x = x.index_select(rows, 1)?;
            }
            x = match a.block {
                BlockKind::PreNorm => {
                    let x = (x + attn)?;
                    let m = blk.mlp.forward(&blk.mlp_norm.forward(&x)?)?;
                    (x + m)?
                }
                BlockKind::Parallel => {
                    let m = blk.mlp.forward(&blk.mlp_norm.forward(&x)?)?;
                    ((m + attn)? + x)?
                }
                BlockKind::PostSublayerNorm => {
                    let x = (x + blk.attn_norm.forward(&attn)?)?;
                    let m = blk.mlp.forward(&x)?;
                    (&x + blk.mlp_norm.forward(&m)?)?
                }
            };
        }
        let h = self.norm.forward(&x)?;
        Ok((
            h,
            keep.then(|| {
                let len = if packed.is_some() { t } else { past + t };
                KvCache {
                    room: cache
                        .and_then(|c| c.room.clone())
                        .filter(|_| packed.is_none()),
                    ..KvCache::new(new_layers, len, seq_dim)
                }
            }),
        ))
    }
}
