//! `y = x·wᵀ` (a bias-free linear layer) through k2's own matrix product ([`crate::gemm`]), with
//! its backward `dx = dy·w`, `dw = dyᵀ·x`, and no transposed copies: the product reads `wᵀ` and
//! `dyᵀ` through strides.
//!
//! Every row of `y` gets the same bits whatever the number of rows computed with it, so an eval
//! score does not depend on the batch it was scored in.

use candle_core::{bail, CpuStorage, CustomOp2, Device, Layout, Result, Shape, Tensor};

use super::{cpu_f32, f32_slice, with_f32};
use crate::gemm::{self, MatRef};

/// `x·wᵀ` for x (rows, in) and w (out, in): k2's product for f32 on a CPU it has a kernel for,
/// else candle's matmul (on the CPU a single row computed as two identical rows, since candle's
/// CPU matrix-vector path sums in another order than its matrix path; on a GPU one row is one
/// row, whose bits cuBLAS does not promise to match a batch's anyway).
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if gemm::isa().is_some() && cpu_f32(&[x, w]) && x.rank() == 2 && w.rank() == 2 {
        return x.contiguous()?.apply_op2(&w.contiguous()?, Linear);
    }
    linear_candle(x, w)
}

/// The same product through candle's matmul.
pub fn linear_candle(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if x.dim(0)? == 1 && x.device().is_cpu() {
        let two = Tensor::cat(&[x, x], 0)?;
        return two.matmul(&w.t()?)?.narrow(0, 0, 1);
    }
    x.matmul(&w.t()?)
}

/// `w` (out, in) as the (in, out) row-major matrix k2's product reads `wᵀ` from in place, for
/// inference weights used over and over (eval): each product then skips packing the weight's
/// transpose. `None` where k2's product does not run (other dtypes and devices, no kernel) or
/// `K2_PREPACK=0`. The products' bits do not change: each element is the same FMA chain.
pub fn transposed_for_gemm(w: &Tensor) -> Result<Option<Tensor>> {
    if !crate::switches::switches().prepack
        || gemm::isa().is_none()
        || !cpu_f32(&[w])
        || w.rank() != 2
    {
        return Ok(None);
    }
    Ok(Some(w.t()?.contiguous()?))
}

/// `x·wt` for x (rows, in) and wt (in, out) from [`transposed_for_gemm`]: the same values as
/// [`linear`] of the untransposed weight. Inference only (no backward).
pub fn linear_transposed(x: &Tensor, wt: &Tensor) -> Result<Tensor> {
    if gemm::isa().is_none() || !cpu_f32(&[x, wt]) || x.rank() != 2 || wt.rank() != 2 {
        bail!("k2-linear-t: needs f32 on a CPU with k2's product (use `linear`)")
    }
    x.contiguous()?.apply_op2_no_bwd(wt, &LinearT)
}

/// `x (m×k) · b (k×n)` into a new row-major vector: both linear ops' forward.
fn product(x: &[f32], m: usize, k: usize, b: MatRef, n: usize) -> Vec<f32> {
    // SAFETY: a non-accumulating product writes all of its m×n output.
    unsafe {
        gemm::written(m * n, |c| {
            gemm::sgemm_ptr(m, n, k, MatRef::rows(x, k), b, c, n, false, true)
        })
    }
}

/// `y (m×n) = x (m×k) · wᵀ` for w (n×k) into `y`: the [`linear`] op's forward on slices.
pub(crate) fn linear_into(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    gemm::sgemm(
        m,
        n,
        k,
        MatRef::rows(x, k),
        MatRef::cols(w, k),
        y,
        n,
        false,
        true,
    );
}

/// The [`linear`] op's backward on slices for dy (m×n): `dx (m×k) = dy·w`, `dw (n×k) = dyᵀ·x`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_grad_into(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    m: usize,
    k: usize,
    n: usize,
    dx: &mut [f32],
    dw: &mut [f32],
) {
    gemm::sgemm(
        m,
        k,
        n,
        MatRef::rows(dy, n),
        MatRef::rows(w, k),
        dx,
        k,
        false,
        true,
    );
    gemm::sgemm(
        n,
        k,
        m,
        MatRef::cols(dy, n),
        MatRef::rows(x, k),
        dw,
        k,
        false,
        true,
    );
}

struct LinearT;

impl CustomOp2 for LinearT {
    fn name(&self) -> &'static str {
        "k2-linear-t"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let wt = f32_slice(s2, l2, self.name())?;
        let (m, k) = l1.shape().dims2()?;
        let (k2, n) = l2.shape().dims2()?;
        if k != k2 {
            bail!("k2-linear-t: x has {k} columns, wt has {k2} rows")
        }
        let y = product(x, m, k, MatRef::rows(wt, n), n);
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }
}

struct Linear;

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "k2-linear"
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
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 {
            bail!("k2-linear: x has {k} columns, w has {k2}")
        }
        let y = product(x, m, k, MatRef::cols(w, k), n);
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (m, k) = x.dims2()?;
        let n = w.dim(0)?;
        let g = grad.contiguous()?;
        let (dx, dw) = with_f32(&g, |dy| {
            with_f32(x, |xv| {
                with_f32(w, |wv| {
                    let (dyr, dyt) = (MatRef::rows(dy, n), MatRef::cols(dy, n));
                    let (wr, xr) = (MatRef::rows(wv, k), MatRef::rows(xv, k));
                    // SAFETY: non-accumulating products write all of their outputs.
                    let dx = unsafe {
                        gemm::written(m * k, |c| {
                            gemm::sgemm_ptr(m, k, n, dyr, wr, c, k, false, true)
                        })
                    };
                    let dw = unsafe {
                        gemm::written(n * k, |c| {
                            gemm::sgemm_ptr(n, k, m, dyt, xr, c, k, false, true)
                        })
                    };
                    Ok((dx, dw))
                })
            })
        })?;
        Ok((
            Some(Tensor::from_vec(dx, (m, k), &Device::Cpu)?),
            Some(Tensor::from_vec(dw, (n, k), &Device::Cpu)?),
        ))
    }
}
