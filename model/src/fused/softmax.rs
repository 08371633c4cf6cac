//! Softmax over the last dim, optionally scaled and causally masked in the same pass, with its
//! backward `ds = scale · y · (g − Σ g·y)`.

use crate::parallel::par_chunks_mut;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, D};

use super::{cpu_f32, f32_slice, rows_per_task};

/// Softmax over the last dim. Fused on CPU f32, [`softmax_composite`] otherwise.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !cpu_f32(&[x]) || x.rank() == 0 {
        return softmax_composite(x);
    }
    x.contiguous()?.apply_op1(Softmax {
        scale: 1.0,
        causal: false,
    })
}

/// The same function from differentiable candle ops.
pub fn softmax_composite(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax(x, D::Minus1)
}

/// Attention probabilities `softmax(scores · scale + causal_mask)` over the last dim, where
/// `scores` is (…, t_q, t_k) and query i (of the last t_q positions) sees keys
/// `j ≤ i + t_k − t_q`. Fused on CPU f32, [`causal_softmax_composite`] otherwise.
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    let fused = cpu_f32(&[scores]) || super::cuda_kernel(scores);
    if !fused || scores.rank() < 2 {
        return causal_softmax_composite(scores, scale);
    }
    scores.contiguous()?.apply_op1(Softmax {
        scale: scale as f32,
        causal: true,
    })
}

/// [`causal_softmax`] accumulated in f32 whatever the dtype: the fused kernel where one takes
/// the tensor as it is (CPU f32; CUDA f32 and bf16, which read bf16 and sum in f32), else on an f32
/// copy cast back (bf16/f16 on the CPU).
pub fn causal_softmax_f32acc(scores: &Tensor, scale: f64) -> Result<Tensor> {
    let half = matches!(scores.dtype(), DType::BF16 | DType::F16);
    if !half || super::cuda_kernel(scores) {
        return causal_softmax(scores, scale);
    }
    causal_softmax(&scores.to_dtype(DType::F32)?, scale)?.to_dtype(scores.dtype())
}

/// The same function from differentiable candle ops (scale, additive −∞ mask, softmax).
pub fn causal_softmax_composite(scores: &Tensor, scale: f64) -> Result<Tensor> {
    let tk = scores.dim(D::Minus1)?;
    let tq = scores.dim(D::Minus2)?;
    let m: Vec<f32> = (0..tq)
        .flat_map(|i| {
            (0..tk).map(move |j| {
                if j + tq > i + tk {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    let mask = Tensor::from_vec(m, (tq, tk), scores.device())?.to_dtype(scores.dtype())?;
    candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(&mask)?, D::Minus1)
}

struct Softmax {
    scale: f32,
    causal: bool,
}

impl Softmax {
    /// (row length t_k, rows per attention matrix t_q; 1 when not causal).
    fn geometry(&self, shape: &Shape) -> (usize, usize) {
        let dims = shape.dims();
        let tk = dims[dims.len() - 1];
        let tq = if self.causal { dims[dims.len() - 2] } else { 1 };
        (tk, tq)
    }

    fn allowed(&self, row: usize, tk: usize, tq: usize) -> usize {
        if !self.causal {
            return tk;
        }
        // Query i = row mod tq sees keys j with j + tq <= i + tk.
        let i = row % tq;
        (i + tk + 1).saturating_sub(tq).min(tk)
    }
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "k2-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let (tk, tq) = self.geometry(l.shape());
        let mut y = vec![0f32; x.len()];
        if tk == 0 {
            return Ok((CpuStorage::F32(y), l.shape().clone()));
        }
        let rpt = rows_per_task(x.len() / tk, tk, 8192);
        let scale = self.scale;
        par_chunks_mut(&mut y, rpt * tk, |c, yc| {
            let xc = &x[c * rpt * tk..];
            for (r, (yr, xr)) in yc.chunks_exact_mut(tk).zip(xc.chunks_exact(tk)).enumerate() {
                let n = self.allowed(c * rpt + r, tk, tq);
                if n == 0 {
                    // Every key masked: the composite's softmax of all −∞ is NaN.
                    yr.fill(f32::NAN);
                    continue;
                }
                yr[..n].copy_from_slice(&xr[..n]);
                softmax_in_place(&mut yr[..n], scale);
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::cuda::softmax_fwd(self.scale, self.causal, s, l)
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if res.dtype() != DType::F32 && !super::cuda_kernel(res) {
            candle_core::bail!("{}: f32 only", self.name())
        }
        let grad = grad.to_dtype(res.dtype())?;
        let g = res.apply_op2_no_bwd(
            &grad.contiguous()?,
            &SoftmaxBwd {
                scale: self.scale,
                causal: self.causal,
            },
        )?;
        Ok(Some(g))
    }
}

/// (y, g) -> scale · y · (g − Σ g·y).
struct SoftmaxBwd {
    scale: f32,
    causal: bool,
}

impl CustomOp2 for SoftmaxBwd {
    fn name(&self) -> &'static str {
        "k2-softmax-bwd"
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::cuda::softmax_bwd(self.scale, self.causal, s1, l1, s2, l2)
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = f32_slice(s1, l1, self.name())?;
        let g = f32_slice(s2, l2, self.name())?;
        let fwd = Softmax {
            scale: self.scale,
            causal: self.causal,
        };
        let (tk, tq) = fwd.geometry(l1.shape());
        let mut dx = vec![0f32; y.len()];
        if tk == 0 {
            return Ok((CpuStorage::F32(dx), l1.shape().clone()));
        }
        let rpt = rows_per_task(y.len() / tk, tk, 8192);
        let scale = self.scale;
        par_chunks_mut(&mut dx, rpt * tk, |c, dc| {
            let (yc, gc) = (&y[c * rpt * tk..], &g[c * rpt * tk..]);
            for (r, ((dr, yr), gr)) in dc
                .chunks_exact_mut(tk)
                .zip(yc.chunks_exact(tk))
                .zip(gc.chunks_exact(tk))
                .enumerate()
            {
                let n = fwd.allowed(c * rpt + r, tk, tq);
                dr[..n].copy_from_slice(&gr[..n]);
                softmax_grad_in_place(&yr[..n], &mut dr[..n], scale);
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `row ← softmax(row · scale)` (max-subtracted, k2's [`exp`](super::exp), summed in
/// [`sum16`]'s order): the arithmetic of every k2 softmax on the CPU, here and in the fused
/// attention.
pub(super) fn softmax_in_place(row: &mut [f32], scale: f32) {
    super::exp::softmax_row(row, scale)
}

/// `g ← scale · y · (g − Σ g·y)`: the gradient of [`softmax_in_place`] with respect to its input,
/// given its output `y` and the gradient `g` of that output.
pub(super) fn softmax_grad_in_place(y: &[f32], g: &mut [f32], scale: f32) {
    let dot: f32 = y.iter().zip(g.iter()).map(|(a, b)| a * b).sum();
    for (gv, &yv) in g.iter_mut().zip(y) {
        *gv = scale * yv * (*gv - dot);
    }
}
