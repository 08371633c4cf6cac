//! RMSNorm `y = x / sqrt(mean(x²) + eps) * w` over the last dim, with gradients for x and w.

use crate::parallel::{par_chunks_mut, par_chunks_mut_map};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, D};

use super::{cpu_f32, f32_slice, rows_per_task};

/// RMSNorm over the last dim of `x` with weight `w` (shape: the last dim). Fused on CPU f32,
/// [`rms_norm_composite`] otherwise.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if !cpu_f32(&[x, w]) || w.rank() != 1 || x.dim(D::Minus1)? != w.dim(0)? {
        return rms_norm_composite(x, w, eps);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
}

/// The same function from differentiable candle ops.
pub fn rms_norm_composite(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let d = x.dim(D::Minus1)? as f64;
    let ms = (x.sqr()?.sum_keepdim(D::Minus1)? / d)?;
    x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(w)
}

fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ss: f32 = row.iter().map(|v| v * v).sum();
    1.0 / (ss / row.len() as f32 + eps).sqrt()
}

/// `y` = RMSNorm of the rows of `x` (of `w.len()` elements each), rows in parallel tasks.
pub(crate) fn rms_norm_into(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let d = w.len();
    let rpt = rows_per_task(x.len() / d.max(1), d, 8192);
    par_chunks_mut(y, rpt * d, |c, yc| {
        let xc = &x[c * rpt * d..];
        for (yr, xr) in yc.chunks_exact_mut(d).zip(xc.chunks_exact(d)) {
            let r = inv_rms(xr, eps);
            for ((yv, xv), wv) in yr.iter_mut().zip(xr).zip(w) {
                *yv = xv * r * wv;
            }
        }
    });
}

/// The backward of [`rms_norm_into`] for the output gradient `g`: writes `dx` (like `x`) and
/// `dw` (like `w`; the per-task partial sums added in task order, so the same bits on any
/// thread count).
pub(crate) fn rms_norm_grad(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    eps: f32,
    dx: &mut [f32],
    dw: &mut [f32],
) {
    let d = w.len();
    let n = x.len();
    let rpt = rows_per_task(n / d.max(1), d, 8192);
    let partials: Vec<Vec<f32>> = par_chunks_mut_map(dx, rpt * d, |c, dxc| {
        let (xc, gc) = (&x[c * rpt * d..], &g[c * rpt * d..]);
        let mut dwp = vec![0f32; d];
        for ((dxr, xr), gr) in dxc
            .chunks_exact_mut(d)
            .zip(xc.chunks_exact(d))
            .zip(gc.chunks_exact(d))
        {
            let r = inv_rms(xr, eps);
            // dxh = g * w; dx = r * (dxh - xh * mean(dxh * xh)), xh = x * r.
            let mut dot = 0f32;
            for (((xv, gv), wv), dwv) in xr.iter().zip(gr).zip(w).zip(dwp.iter_mut()) {
                let xh = xv * r;
                *dwv += gv * xh;
                dot += gv * wv * xh;
            }
            let c = dot / d as f32;
            for (((dv, xv), gv), wv) in dxr.iter_mut().zip(xr).zip(gr).zip(w) {
                *dv = r * (gv * wv - xv * r * c);
            }
        }
        dwp
    });
    dw.fill(0.0);
    for p in &partials {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
}

struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "k2-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let w = f32_slice(s2, l2, self.name())?;
        let mut y = vec![0f32; x.len()];
        rms_norm_into(x, w, self.eps, &mut y);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = w.dim(0)?;
        let n = x.elem_count();
        let both = x.apply_op3_no_bwd(w, &grad.contiguous()?, &RmsNormBwd { eps: self.eps })?;
        let dx = both.narrow(0, 0, n)?.reshape(x.shape())?;
        let dw = both.narrow(0, n, d)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// (x, w, g) -> [dx (flattened) ++ dw], one pass over the rows.
struct RmsNormBwd {
    eps: f32,
}

impl CustomOp3 for RmsNormBwd {
    fn name(&self) -> &'static str {
        "k2-rms-norm-bwd"
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
        let w = f32_slice(s2, l2, self.name())?;
        let g = f32_slice(s3, l3, self.name())?;
        let (d, n) = (w.len(), x.len());
        let mut out = vec![0f32; n + d];
        let (dx, dw) = out.split_at_mut(n);
        rms_norm_grad(x, w, g, self.eps, dx, dw);
        Ok((CpuStorage::F32(out), Shape::from(n + d)))
    }
}
