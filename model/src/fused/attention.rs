//! Causal self-attention `softmax(q·kᵀ·scale + mask)·v` as one op, forward and backward, on the
//! `(batch, t, heads, head_dim)` layout the q/k/v projections produce, so no head transposes or
//! copies are made. Grouped-query attention: query head `h` reads key/value head
//! `h / (heads / kv_heads)`.
//!
//! The probabilities are not kept for the backward: it recomputes them from q and k, one head at a
//! time (a t×t buffer per task instead of batch·heads·t² floats kept through the step), then
//! `dv = pᵀ·do`, `dp = do·vᵀ`, `ds = scale · p · (dp − Σ dp·p)`, `dq = ds·k`, `dk = dsᵀ·q`.
//!
//! Work is divided by (sequence, key/value head), and the query heads of a group add into their
//! shared dk/dv in a fixed order, so the bits do not depend on the thread count.
//!
//! For inference the keys and values may be longer than the queries: `tk − t` cached positions
//! come first and query `i` sees keys `0 ..= tk − t + i`. Each probability row is a softmax over
//! exactly the keys its query sees, and each output is one FMA chain over the keys in order (the
//! masked ones add exact zeros), so a query gets the same bits whether its prefix was cached, the
//! batch was right-padded, or the whole sequence ran at once.

use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor};

use super::softmax::{softmax_grad_in_place, softmax_in_place};
use super::{cpu_f32, f32_slice, with_f32};
use crate::gemm::{self, MatRef};
use crate::parallel::{par_for, SyncPtr};

/// Whether the fused attention takes activations like `x`: f32 on a CPU where k2's matrix
/// product runs, unless `K2_FUSED_ATTENTION=0` turns it off.
pub fn fused_attention_applies(x: &Tensor) -> bool {
    crate::switches::switches().fused_attention && gemm::isa().is_some() && cpu_f32(&[x])
}

/// Causal attention for q (b, t, h, d) and k, v (b, tk, kv, d) with tk ≥ t (the first tk − t
/// positions a cached prefix), returning (b, t, h, d). The fused op where
/// [`fused_attention_applies`]; `None` otherwise (the caller uses its composite). Differentiable
/// when tk = t.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Option<Tensor>> {
    if !fused_attention_applies(q) || !cpu_f32(&[k, v]) || q.rank() != 4 {
        return Ok(None);
    }
    let (b, t, h, d) = q.dims4()?;
    let (b2, t2, kv, d2) = k.dims4()?;
    if (b2, d2) != (b, d) || t2 < t || v.dims() != k.dims() || kv == 0 || h % kv != 0 {
        return Ok(None);
    }
    let op = Attention {
        scale: scale as f32,
        segments: None,
        last_only: false,
        prefix: None,
        middle: None,
    };
    op.apply(q, k, v).map(Some)
}

/// Attention over packed sequences that share a cached prefix: q (1, n, h, d) holds the
/// sequences `segments` ((start, len), tiling 0..n) one after another, k, v (1, n, kv, d) their
/// own keys in the same order, and `prefix` the prefix's keys and values (1, p, kv, d), read in
/// place (never concatenated). Query i of a
/// sequence sees the whole prefix and its own sequence's keys up to i, nothing of the other
/// sequences: each gets the bits it gets run alone after the prefix. Forward only; `None` where
/// the fused attention does not apply (there is no composite of this one).
///
/// With `middle`, sequence s also sees, between the prefix and its own keys, the rows
/// `spans[s]` ((start, len)) of the middle keys and values (1, m, kv, d), read in place: the
/// continuations of several contexts packed together, each after its own context's keys.
///
/// With `last_only`, q (1, segments, h, d) holds only each sequence's last query (a non-empty
/// sequence's), and the output has its rows only: the same bits as those rows of the full output.
pub fn packed_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    packed: &Packed,
) -> Result<Option<Tensor>> {
    if !fused_attention_applies(q) || !cpu_f32(&[k, v]) || q.rank() != 4 {
        return Ok(None);
    }
    let Packed {
        segments,
        prefix,
        middle,
        last_only,
    } = *packed;
    let (b, nq, h, d) = q.dims4()?;
    let (b2, tk, kv, d2) = k.dims4()?;
    let n = tk;
    let queries_ok = if last_only {
        nq == segments.len() && segments.iter().all(|&(_, len)| len > 0)
    } else {
        nq == tk
    };
    let tiled = segments
        .iter()
        .try_fold(0, |at, &(start, len)| (start == at).then_some(at + len));
    let side_ok = |(pk, pv): (&Tensor, &Tensor)| {
        cpu_f32(&[pk, pv])
            && pk.dims() == pv.dims()
            && pk.rank() == 4
            && pk.dims()[0] == 1
            && pk.dims()[2..] == k.dims()[2..]
    };
    let prefix_ok = prefix.is_none_or(side_ok);
    let middle_ok = middle.is_none_or(|m| {
        side_ok((m.k, m.v))
            && m.spans.len() == segments.len()
            && m.spans.iter().all(|&(a, n)| a + n <= m.k.dims()[1])
    });
    if b != 1
        || (b2, d2) != (1, d)
        || !queries_ok
        || v.dims() != k.dims()
        || kv == 0
        || h % kv != 0
        || tiled != Some(n)
        || !prefix_ok
        || !middle_ok
    {
        bail!(
            "k2-attention: packed q {:?}, k {:?}, segments {segments:?}",
            q.dims(),
            k.dims()
        )
    }
    let op = Attention {
        scale: scale as f32,
        segments: Some(segments.to_vec()),
        last_only,
        prefix: prefix
            .map(|(pk, pv)| Ok::<_, candle_core::Error>((pk.contiguous()?, pv.contiguous()?)))
            .transpose()?,
        middle: middle
            .map(|m| {
                Ok::<_, candle_core::Error>((
                    m.k.contiguous()?,
                    m.v.contiguous()?,
                    m.spans.to_vec(),
                ))
            })
            .transpose()?,
    };
    op.apply(q, k, v).map(Some)
}

/// Packed sequences for [`packed_attention`]: `segments` ((start, len) of each sequence's own
/// keys, tiling them), the shared `prefix`'s keys and values, each sequence's `middle` span, and
/// whether q holds only each sequence's last query.
#[derive(Clone, Copy)]
pub struct Packed<'a> {
    pub segments: &'a [(usize, usize)],
    pub prefix: Option<(&'a Tensor, &'a Tensor)>,
    pub middle: Option<Middle<'a>>,
    pub last_only: bool,
}

/// Keys and values that packed sequences see between the shared prefix and their own keys
/// ([`packed_attention`]): sequence s sees rows `spans[s]` ((start, len)) of `k` and `v`.
#[derive(Clone, Copy)]
pub struct Middle<'a> {
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    pub spans: &'a [(usize, usize)],
}

struct Attention {
    scale: f32,
    /// Packed sequences after a shared prefix ([`packed_attention`]); `None`: one sequence per
    /// batch row.
    segments: Option<Vec<(usize, usize)>>,
    /// Packed sequences' last queries only (q has one row per sequence).
    last_only: bool,
    /// The shared prefix's keys and values of packed sequences, if any.
    prefix: Option<(Tensor, Tensor)>,
    /// Keys and values each packed sequence sees after the prefix, and each one's rows of them.
    middle: Option<OwnedMiddle>,
}

/// [`Middle`] held by the op: contiguous keys and values, and each sequence's (start, len).
type OwnedMiddle = (Tensor, Tensor, Vec<(usize, usize)>);

impl Attention {
    fn apply(self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        q.contiguous()?
            .apply_op3(&k.contiguous()?, &v.contiguous()?, self)
    }
}

/// One sequence's queries and the keys they see, in this order: rows `pre_row .. pre_row +
/// pre_len` of the prefix's key buffer, rows `mid_row .. mid_row + mid_len` of the middle one, and
/// rows `own_row ..= own_row + first + i` of the own keys' buffer for query i (the query at
/// position `first + i` of the sequence, in row `q_row + i`; one buffer for prefix and own keys
/// in batch mode).
#[derive(Clone, Copy)]
struct Seq {
    q_row: usize,
    n: usize,
    first: usize,
    pre_row: usize,
    pre_len: usize,
    mid_row: usize,
    mid_len: usize,
    own_row: usize,
}

/// Queries per block of [`Attention::forward_into`] for probability rows of `keys` entries:
/// about 512 KB of probabilities, a multiple of the kernel's 12 rows.
fn query_block(keys: usize) -> usize {
    ((128 * 1024 / keys.max(1)) / 12 * 12).max(12)
}

impl Seq {
    /// Queries `r0 .. r0 + n` of this sequence, seeing what they see in it.
    fn rows(&self, r0: usize, n: usize) -> Seq {
        Seq {
            q_row: self.q_row + r0,
            n,
            first: self.first + r0,
            ..*self
        }
    }

    /// Keys before the sequence's own.
    fn before(&self) -> usize {
        self.pre_len + self.mid_len
    }

    /// The sequence's own keys its last query sees.
    fn own(&self) -> usize {
        self.first + self.n
    }

    /// Keys in all: the length of a probability row.
    fn keys(&self) -> usize {
        self.before() + self.own()
    }
}

/// Shapes of one call: batch, query positions, key positions (≥ t), query heads, kv heads, head
/// dim.
#[derive(Clone, Copy)]
struct Geom {
    b: usize,
    t: usize,
    tk: usize,
    h: usize,
    kv: usize,
    d: usize,
}

impl Geom {
    fn of(q: &Layout, k: &Layout) -> Result<Self> {
        let (b, t, h, d) = q.shape().dims4()?;
        let (_, tk, kv, _) = k.shape().dims4()?;
        Ok(Self { b, t, tk, h, kv, d })
    }

    /// Offset of (sequence, position 0, head) in the (b, t, h, d) query-side buffer.
    fn at_q(&self, bi: usize, head: usize) -> usize {
        bi * self.t * self.h * self.d + head * self.d
    }

    /// Offset of (sequence, position 0, kv head) in the (b, tk, kv, d) key/value buffer.
    fn at_kv(&self, bi: usize, head: usize) -> usize {
        bi * self.tk * self.kv * self.d + head * self.d
    }
}

impl Attention {
    /// The sequences of a call: the batch rows (each after its own cached prefix of tk − t
    /// positions), or the packed segments after one shared prefix.
    fn seqs(&self, g: &Geom) -> Vec<Seq> {
        match &self.segments {
            Some(segs) => {
                let pre = self.prefix.as_ref().map_or(0, |(pk, _)| pk.dims()[1]);
                segs.iter()
                    .enumerate()
                    .map(|(i, &(start, len))| {
                        let (mid_row, mid_len) = self.middle.as_ref().map_or((0, 0), |m| m.2[i]);
                        let (q_row, n, first) = if self.last_only {
                            (i, 1, len - 1)
                        } else {
                            (start, len, 0)
                        };
                        Seq {
                            q_row,
                            n,
                            first,
                            pre_row: 0,
                            pre_len: pre,
                            mid_row,
                            mid_len,
                            own_row: start,
                        }
                    })
                    .collect()
            }
            None => (0..g.b)
                .map(|bi| Seq {
                    q_row: bi * g.t,
                    n: g.t,
                    first: 0,
                    pre_row: bi * g.tk,
                    pre_len: g.tk - g.t,
                    mid_row: 0,
                    mid_len: 0,
                    own_row: bi * g.tk + g.tk - g.t,
                })
                .collect(),
        }
    }

    /// p (n × keys, row-major) = causal softmax of q_h·k_gᵀ·scale over the keys each query of
    /// `s` sees; the other entries of its row are 0.
    fn probs(&self, g: &Geom, s: &Seq, q: &[f32], keys: Keys, hq: usize, p: &mut [f32]) {
        let (n, d, ld) = (s.n, g.d, s.keys());
        let hk = hq / (g.h / g.kv);
        let (qs, ks) = (g.h * d, g.kv * d);
        let qv = MatRef::rows(&q[s.q_row * qs + hq * d..], qs);
        if s.pre_len > 0 {
            let kt = match keys.pre_t {
                Some(t) => {
                    let rows = keys.pre.len() / ks;
                    MatRef::rows(&t[hk * d * rows + s.pre_row..], rows)
                }
                None => MatRef::cols(&keys.pre[s.pre_row * ks + hk * d..], ks),
            };
            gemm::sgemm(n, s.pre_len, d, qv, kt, p, ld, false, false);
        }
        if s.mid_len > 0 {
            let kt = MatRef::cols(&keys.mid[s.mid_row * ks + hk * d..], ks);
            gemm::sgemm(
                n,
                s.mid_len,
                d,
                qv,
                kt,
                &mut p[s.pre_len..],
                ld,
                false,
                false,
            );
        }
        let kt = MatRef::cols(&keys.own[s.own_row * ks + hk * d..], ks);
        gemm::sgemm(
            n,
            s.own(),
            d,
            qv,
            kt,
            &mut p[s.before()..],
            ld,
            false,
            false,
        );
        let scale = self.scale;
        for (i, row) in p.chunks_exact_mut(ld).enumerate() {
            let (live, masked) = row.split_at_mut(s.before() + s.first + i + 1);
            softmax_in_place(live, scale);
            masked.fill(0.0);
        }
    }

    /// out_h (n × d, rows of stride h·d) = p·v over the same keys: one FMA chain per output over
    /// the prefix keys, then the middle ones, then the sequence's own (each product continues the
    /// previous one's sums).
    ///
    /// # Safety
    /// `out` must be valid for writes of the n rows of head `hq` of sequence `s`.
    unsafe fn mix(&self, g: &Geom, s: &Seq, values: Keys, hq: usize, p: &[f32], out: SyncPtr) {
        let (n, d, ld) = (s.n, g.d, s.keys());
        let hk = hq / (g.h / g.kv);
        let vs = g.kv * d;
        let dst = out.add(s.q_row * g.h * d + hq * d);
        let parts = [
            (values.pre, s.pre_row, s.pre_len, 0),
            (values.mid, s.mid_row, s.mid_len, s.pre_len),
            (values.own, s.own_row, s.own(), s.before()),
        ];
        for (buf, row, len, col) in parts {
            if len == 0 {
                continue;
            }
            let vv = MatRef::rows(&buf[row * vs + hk * d..], vs);
            let pp = MatRef::rows(&p[col..], ld);
            gemm::sgemm_ptr(n, d, len, pp, vv, dst, g.h * d, col > 0, false);
        }
    }
}

/// The three key (or value) buffers a sequence reads: the shared prefix's, the middle one's, its
/// own (prefix and own the same buffer in batch mode; unused ones empty).
#[derive(Clone, Copy)]
struct Keys<'a> {
    pre: &'a [f32],
    mid: &'a [f32],
    own: &'a [f32],
    /// The prefix's keys transposed per head, (kv, d, prefix rows), in packed mode: the products
    /// read them in place instead of packing them once per sequence, head and block of queries
    /// ([`transposed_heads`]).
    pre_t: Option<&'a [f32]>,
}

impl<'a> Keys<'a> {
    /// Batch mode: each row's cached prefix and own keys in one buffer, no middle.
    fn batch(buf: &'a [f32]) -> Self {
        Keys {
            pre: buf,
            mid: &[],
            own: buf,
            pre_t: None,
        }
    }
}

/// Keys (rows, kv, d) as (kv, d, rows): each head's key matrix transposed, rows contiguous, so
/// that the products q·kᵀ read it in place (the same arithmetic as from a packed copy).
fn transposed_heads(k: &[f32], rows: usize, kv: usize, d: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let ks = kv * d;
    // SAFETY: the tasks write every element, each (head, row block) strip once.
    unsafe {
        gemm::written(rows * ks, |out| {
            let out = SyncPtr(out);
            let blocks = rows.div_ceil(BLOCK);
            par_for(kv * blocks, |task| {
                let (hk, j0) = (task / blocks, (task % blocks) * BLOCK);
                for j in j0..rows.min(j0 + BLOCK) {
                    for (p, &x) in k[j * ks + hk * d..][..d].iter().enumerate() {
                        // (hk, p, j) is inside the (kv, d, rows) output and this task's alone.
                        *out.add((hk * d + p) * rows + j) = x;
                    }
                }
            })
        })
    }
}

/// `f` on a buffer of `len` floats of this thread's, reused from call to call (the probabilities
/// of a long cached prefix are megabytes; a fresh zeroed buffer per task costs a memset and page
/// faults). Its old contents are garbage to `f`, which overwrites what it reads.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // A nested call on this thread (none today): a buffer of its own.
        Err(_) => f(&mut vec![0f32; len]),
    })
}

impl Attention {
    /// The forward's output, with the keys and values read from `keys`, `values`.
    fn forward(&self, g: &Geom, q: &[f32], keys: Keys, values: Keys) -> Vec<f32> {
        // SAFETY: `forward_into` writes every element of the (b, t, h, d) output.
        unsafe {
            gemm::written(q.len(), |ptr| {
                self.forward_into(g, q, keys, values, SyncPtr(ptr), None)
            })
        }
    }

    /// [`Attention::forward`] into `out`.
    ///
    /// # Safety
    /// `out` must be valid for writes of `q.len()` floats that no one else touches meanwhile.
    unsafe fn forward_into(
        &self,
        g: &Geom,
        q: &[f32],
        keys: Keys,
        values: Keys,
        o: SyncPtr,
        keep: Option<SyncPtr>,
    ) {
        let per = g.h / g.kv;
        let seqs = self.seqs(g);
        // Every (sequence, head) block of rows is written by one task below, and those blocks
        // tile the whole (b, t, h, d) output (the sequences tile the rows).
        par_for(seqs.len() * g.kv, |task| {
            let (si, hk) = (task / g.kv, task % g.kv);
            let s = &seqs[si];
            if s.n == 0 {
                return;
            }
            let len = s.n * s.keys();
            let head = |s: &Seq, hq: usize, p: &mut [f32]| {
                self.probs(g, s, q, keys, hq, p);
                // SAFETY: as the caller promised, and this task alone writes these rows.
                unsafe { self.mix(g, s, values, hq, p, o) };
            };
            match keep {
                // SAFETY: (sequence, head) blocks of the kept buffer are disjoint, one per task
                // and head; the caller sized it b·h·t² (batch mode: every sequence is t long).
                Some(kb) => (hk * per..(hk + 1) * per).for_each(|hq| unsafe {
                    let at = kb.add((si * g.h + hq) * len);
                    head(s, hq, std::slice::from_raw_parts_mut(at, len))
                }),
                // Queries in blocks whose probabilities stay in the core's cache (a row's
                // values do not depend on the other rows computed with it).
                None => {
                    let rows = query_block(s.keys()).min(s.n);
                    with_scratch(rows * s.keys(), |p| {
                        for hq in hk * per..(hk + 1) * per {
                            for r0 in (0..s.n).step_by(rows) {
                                let sub = s.rows(r0, rows.min(s.n - r0));
                                head(&sub, hq, &mut p[..sub.n * sub.keys()]);
                            }
                        }
                    })
                }
            }
        })
    }
}

/// The shape of a training attention call: `b` sequences of `t` positions, `h` query heads,
/// `kv` key/value heads, head dim `d`; q and the output (b, t, h, d), k and v (b, t, kv, d).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CausalShape {
    pub b: usize,
    pub t: usize,
    pub h: usize,
    pub kv: usize,
    pub d: usize,
}

impl CausalShape {
    fn geom(&self) -> Geom {
        let CausalShape { b, t, h, kv, d } = *self;
        Geom {
            b,
            t,
            tk: t,
            h,
            kv,
            d,
        }
    }
}

/// The training attention's forward into `out`, the same bits as the [`causal_attention`] op,
/// keeping each (sequence, head)'s t×t probabilities in `probs` (b·h·t² floats) for
/// [`causal_backward_into`] when given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn causal_forward_into(
    s: CausalShape,
    scale: f32,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probs: Option<&mut [f32]>,
) {
    let g = s.geom();
    assert!(q.len() == s.b * s.t * s.h * s.d && out.len() == q.len() && k.len() == v.len());
    assert!(s.kv > 0 && s.h.is_multiple_of(s.kv) && k.len() == s.b * s.t * s.kv * s.d);
    if s.t == 0 || s.d == 0 {
        return;
    }
    let op = Attention {
        scale,
        segments: None,
        last_only: false,
        prefix: None,
        middle: None,
    };
    let keep = probs.map(|p| {
        assert_eq!(
            p.len(),
            s.b * s.h * s.t * s.t,
            "attention: kept probabilities' size"
        );
        SyncPtr(p.as_mut_ptr())
    });
    // SAFETY: `out` and `probs` are exclusive borrows of exactly the sizes written.
    let (keys, values) = (Keys::batch(k), Keys::batch(v));
    // SAFETY: `out` and `probs` are exclusive borrows of exactly the sizes written.
    unsafe { op.forward_into(&g, q, keys, values, SyncPtr(out.as_mut_ptr()), keep) }
}

/// The training attention's backward for the output gradient `dout`: `dq`, `dk`, `dv`, the same
/// bits as the [`causal_attention`] op's backward. With `probs` (the forward's, kept) it reads
/// the probabilities instead of recomputing them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn causal_backward_into(
    s: CausalShape,
    scale: f32,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dout: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    probs: Option<&[f32]>,
) {
    let g = s.geom();
    assert!(dout.len() == q.len() && dq.len() == q.len() && dk.len() == k.len());
    assert!(dv.len() == v.len() && k.len() == v.len() && s.kv > 0 && s.h.is_multiple_of(s.kv));
    let op = Attention {
        scale,
        segments: None,
        last_only: false,
        prefix: None,
        middle: None,
    };
    if let Some(p) = probs {
        assert_eq!(
            p.len(),
            s.b * s.h * s.t * s.t,
            "attention: kept probabilities' size"
        );
    }
    op.backward(&g, q, k, v, dout, dq, dk, dv, probs);
}

/// `f` on the f32 data of a pair of tensors, or on `default` where there are none.
fn with_pair<R>(
    pair: Option<(&Tensor, &Tensor)>,
    default_k: &[f32],
    default_v: &[f32],
    f: impl FnOnce(&[f32], &[f32]) -> Result<R>,
) -> Result<R> {
    match pair {
        Some((k, v)) => with_f32(k, |ks| with_f32(v, |vs| f(ks, vs))),
        None => f(default_k, default_v),
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "k2-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = f32_slice(s1, l1, self.name())?;
        let k = f32_slice(s2, l2, self.name())?;
        let v = f32_slice(s3, l3, self.name())?;
        let g = Geom::of(l1, l2)?;
        if g.t == 0 || g.d == 0 {
            return Ok((CpuStorage::F32(vec![0f32; q.len()]), l1.shape().clone()));
        }
        let empty: (&[f32], &[f32]) = (&[], &[]);
        let out = with_pair(
            self.prefix.as_ref().map(|p| (&p.0, &p.1)),
            k,
            v,
            |kp, vp| {
                let mid = self.middle.as_ref().map(|m| (&m.0, &m.1));
                with_pair(mid, empty.0, empty.1, |km, vm| {
                    let values = Keys {
                        pre: vp,
                        mid: vm,
                        own: v,
                        pre_t: None,
                    };
                    // Packed sequences share the prefix: its keys transposed once for all.
                    let kt = (self.segments.is_some() && !kp.is_empty())
                        .then(|| transposed_heads(kp, kp.len() / (g.kv * g.d), g.kv, g.d));
                    let keys = Keys {
                        pre: kp,
                        mid: km,
                        own: k,
                        pre_t: kt.as_deref(),
                    };
                    Ok(self.forward(&g, q, keys, values))
                })
            },
        )?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, t, h, d) = q.dims4()?;
        let (tk, kv) = (k.dim(1)?, k.dim(2)?);
        let g = Geom { b, t, tk, h, kv, d };
        if h % kv != 0 {
            bail!("k2-attention: {h} heads, {kv} kv heads")
        }
        if tk != t || self.segments.is_some() {
            bail!("k2-attention: no backward through a cached prefix ({tk} keys, {t} queries)")
        }
        let go = grad.contiguous()?;
        let mut dq = vec![0f32; b * t * h * d];
        let mut dk = vec![0f32; b * t * kv * d];
        let mut dv = vec![0f32; b * t * kv * d];
        with_f32(&go, |dout| {
            with_f32(q, |qs| {
                with_f32(k, |ks| {
                    with_f32(v, |vs| {
                        self.backward(&g, qs, ks, vs, dout, &mut dq, &mut dk, &mut dv, None);
                        Ok(())
                    })
                })
            })
        })?;
        let dev = Device::Cpu;
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), &dev)?),
            Some(Tensor::from_vec(dk, k.shape(), &dev)?),
            Some(Tensor::from_vec(dv, v.shape(), &dev)?),
        ))
    }
}

impl Attention {
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        g: &Geom,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dout: &[f32],
        dq: &mut [f32],
        dk: &mut [f32],
        dv: &mut [f32],
        kept: Option<&[f32]>,
    ) {
        if g.t == 0 || g.d == 0 {
            return;
        }
        let (pq, pk, pv) = (
            SyncPtr(dq.as_mut_ptr()),
            SyncPtr(dk.as_mut_ptr()),
            SyncPtr(dv.as_mut_ptr()),
        );
        let per = g.h / g.kv;
        let (t, d) = (g.t, g.d);
        let scale = self.scale;
        let seqs = self.seqs(g);
        par_for(g.b * g.kv, |task| {
            let (bi, hk) = (task / g.kv, task % g.kv);
            let mut own = if kept.is_none() {
                vec![0f32; t * t]
            } else {
                Vec::new()
            };
            let mut dp = vec![0f32; t * t];
            let kofs = g.at_kv(bi, hk);
            let kk = MatRef::rows(&k[kofs..], g.kv * d);
            let vt = MatRef::cols(&v[kofs..], g.kv * d);
            for (n, hq) in (hk * per..(hk + 1) * per).enumerate() {
                let qofs = g.at_q(bi, hq);
                let qq = MatRef::rows(&q[qofs..], g.h * d);
                let doh = MatRef::rows(&dout[qofs..], g.h * d);
                let p: &[f32] = match kept {
                    Some(all) => &all[(bi * g.h + hq) * t * t..][..t * t],
                    None => {
                        self.probs(g, &seqs[bi], q, Keys::batch(k), hq, &mut own);
                        &own
                    }
                };
                // SAFETY: this task alone writes head hq of dq and kv head hk of dk, dv for
                // sequence bi; every pointer stays inside its (b, t, heads, d) buffer.
                unsafe {
                    let pt = MatRef::cols(p, t);
                    gemm::sgemm_ptr(t, d, t, pt, doh, pv.add(kofs), g.kv * d, n > 0, false);
                }
                gemm::sgemm(t, t, d, doh, vt, &mut dp, t, false, false);
                for i in 0..t {
                    let (pr, dr) = (&p[i * t..i * t + i + 1], &mut dp[i * t..(i + 1) * t]);
                    softmax_grad_in_place(pr, &mut dr[..=i], scale);
                    dr[i + 1..].fill(0.0);
                }
                let ds = MatRef::rows(&dp, t);
                let dst = MatRef::cols(&dp, t);
                unsafe {
                    gemm::sgemm_ptr(t, d, t, ds, kk, pq.add(qofs), g.h * d, false, false);
                    gemm::sgemm_ptr(t, d, t, dst, qq, pk.add(kofs), g.kv * d, n > 0, false);
                }
            }
        });
    }
}
