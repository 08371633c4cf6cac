//! Rotate-half RoPE (transformers' LLaMA convention) with tables `cos`, `sin` of shape
//! (positions ≥ t, head_dim/2). The backward is the inverse rotation; the tables are constants
//! and receive no gradient.

use crate::parallel::par_chunks_mut;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::{cpu_f32, f32_slice, rows_per_task};

/// RoPE on `x` of shape (batch, heads, t, head_dim). Fused on CPU f32, [`rope_composite`]
/// (candle's differentiable `rope_slow`) otherwise.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    rope_at(x, cos, sin, false)
}

/// RoPE on `x` of shape (batch, t, heads, head_dim), the layout of a q/k projection before any
/// transpose. Fused on CPU f32; otherwise transposed to [`rope_composite`] and back.
pub fn rope_bthd(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    rope_at(x, cos, sin, true)
}

/// [`rope`] (positions on dim 2) or [`rope_bthd`] (positions on dim 1).
fn rope_at(x: &Tensor, cos: &Tensor, sin: &Tensor, bthd: bool) -> Result<Tensor> {
    let tdim = if bthd { 1 } else { 2 };
    let ok = cpu_f32(&[x, cos, sin])
        && x.rank() == 4
        && cos.rank() == 2
        && cos.dims() == sin.dims()
        && x.dim(3)? % 2 == 0
        && cos.dim(1)? * 2 == x.dim(3)?
        && cos.dim(0)? >= x.dim(tdim)?;
    if !ok {
        return if bthd {
            rope_composite(&x.transpose(1, 2)?.contiguous()?, cos, sin)?.transpose(1, 2)
        } else {
            rope_composite(x, cos, sin)
        };
    }
    let t = x.dim(tdim)?;
    let cos = cos.narrow(0, 0, t)?.contiguous()?;
    let sin = sin.narrow(0, 0, t)?.contiguous()?;
    x.contiguous()?.apply_op3(
        &cos,
        &sin,
        Rope {
            inverse: false,
            bthd,
        },
    )
}

/// The same function from differentiable candle ops.
pub fn rope_composite(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    candle_nn::rotary_emb::rope_slow(x, cos, sin)
}

/// `y` = `x` rotated: rows of `d` elements, `per` rows per position, `t` positions per sequence,
/// each (i, i + d/2) pair turned by +θ of its position (−θ when `inverse`: the backward).
#[allow(clippy::too_many_arguments)]
pub(crate) fn rope_into(
    x: &[f32],
    cos: &[f32],
    sin: &[f32],
    per: usize,
    t: usize,
    d: usize,
    inverse: bool,
    y: &mut [f32],
) {
    if d == 0 || t == 0 {
        return;
    }
    let h = d / 2;
    let sign = if inverse { -1f32 } else { 1f32 };
    let rpt = rows_per_task(x.len() / d, d, 8192);
    par_chunks_mut(y, rpt * d, |c, yc| {
        let xc = &x[c * rpt * d..];
        for (r, (yr, xr)) in yc.chunks_exact_mut(d).zip(xc.chunks_exact(d)).enumerate() {
            let p = ((c * rpt + r) / per.max(1)) % t;
            let (cr, sr) = (&cos[p * h..(p + 1) * h], &sin[p * h..(p + 1) * h]);
            let (x1, x2) = xr.split_at(h);
            let (y1, y2) = yr.split_at_mut(h);
            for i in 0..h {
                let (a, b, cv, sv) = (x1[i], x2[i], cr[i], sign * sr[i]);
                y1[i] = a * cv - b * sv;
                y2[i] = b * cv + a * sv;
            }
        }
    });
}

/// Rotates each (i, i + d/2) pair by +θ (or by −θ when `inverse`).
struct Rope {
    inverse: bool,
    /// (batch, t, heads, d) instead of (batch, heads, t, d).
    bthd: bool,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "k2-rope"
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
        let x = f32_slice(s1, l1, self.name())?;
        let cos = f32_slice(s2, l2, self.name())?;
        let sin = f32_slice(s3, l3, self.name())?;
        let dims = l1.shape().dims();
        // Rows per position and positions per sequence.
        let (per, t, d) = if self.bthd {
            (dims[2], dims[1], dims[3])
        } else {
            (1, dims[2], dims[3])
        };
        let mut y = vec![0f32; x.len()];
        rope_into(x, cos, sin, per, t, d, self.inverse, &mut y);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let inv = Rope {
            inverse: !self.inverse,
            bthd: self.bthd,
        };
        let dx = grad.contiguous()?.apply_op3_no_bwd(cos, sin, &inv)?;
        Ok((Some(dx), None, None))
    }
}
