//! Mean cross-entropy of (N, V) logits against N u32 targets, fused log-softmax + pick + mean.
//! The backward is `(softmax − onehot) · g / N`, reusing the forward's per-row log-sum-exp.
//! On the CPU for f32 logits; on CUDA (the `cuda` feature) for f32 and bf16 logits with k2's
//! kernels (`cuda/cross_entropy.cu`), which keep the log-sum-exp and the gradient's scale on the
//! device.

use std::sync::Mutex;

use crate::parallel::{par_chunks_mut, par_map};
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use super::exp::{exp_in_place, max16, Lanes};
use super::{cpu_f32, f32_slice, rows_per_task};

/// Mean cross-entropy, as `candle_nn::loss::cross_entropy`. Fused for CPU f32 logits with u32
/// targets, [`cross_entropy_composite`] otherwise.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let ok = (cpu_f32(&[logits]) || super::cuda_kernel(logits))
        && targets.dtype() == DType::U32
        && logits.rank() == 2
        && targets.rank() == 1
        && targets.dim(0)? == logits.dim(0)?;
    if !ok {
        return cross_entropy_composite(logits, targets);
    }
    logits.contiguous()?.apply_op2(
        &targets.contiguous()?,
        CrossEntropy {
            lse: Mutex::new(Vec::new()),
            #[cfg(feature = "cuda")]
            lse_dev: Mutex::new(None),
        },
    )
}

/// The same function from differentiable candle ops.
pub fn cross_entropy_composite(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    candle_nn::loss::cross_entropy(logits, targets)
}

fn u32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [u32]> {
    let CpuStorage::U32(v) = s else {
        bail!("{op}: targets must be u32, got {:?}", s.dtype())
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{op}: targets must be contiguous"),
    }
}

/// `max + ln Σ exp(v − max)` of a row (k2's [`exp`](super::exp), summed in
/// [`Lanes`]' order).
pub(crate) fn log_sum_exp(row: &[f32]) -> f32 {
    let m = max16(row, 1.0);
    let mut lanes = Lanes::new();
    // A multiple of 16, so the lanes see the row's elements as one call would.
    let mut buf = [0f32; 256];
    for c in row.chunks(buf.len()) {
        let b = &mut buf[..c.len()];
        b.iter_mut().zip(c).for_each(|(x, &v)| *x = v - m);
        exp_in_place(b);
        lanes.add(b);
    }
    m + lanes.total().ln()
}

/// A row of logits turned, in place, into its gradient `(softmax − onehot(target)) · scale`
/// given the row's log-sum-exp `lse`.
pub(crate) fn grad_row_in_place(row: &mut [f32], lse: f32, target: usize, scale: f32) {
    row.iter_mut().for_each(|v| *v -= lse);
    exp_in_place(row);
    row.iter_mut().for_each(|v| *v *= scale);
    row[target] -= scale;
}

struct CrossEntropy {
    /// Per-row log-sum-exp from the forward, reused by the backward.
    lse: Mutex<Vec<f32>>,
    /// The same, on the device, from the CUDA forward.
    #[cfg(feature = "cuda")]
    lse_dev: Mutex<Option<candle_core::cuda_backend::cudarc::driver::CudaSlice<f32>>>,
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "k2-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let t = u32_slice(s2, l2, self.name())?;
        let v = l1.shape().dims()[1];
        let n = t.len();
        if let Some(&bad) = t.iter().find(|&&c| c as usize >= v) {
            bail!("{}: target {bad} out of range for {v} classes", self.name())
        }
        let rpt = rows_per_task(n, v, 16384);
        let lse: Vec<f32> = if v == 0 {
            vec![f32::NEG_INFINITY; n]
        } else {
            let size = rpt * v;
            par_map(x.len().div_ceil(size), |c| {
                let xc = &x[c * size..((c + 1) * size).min(x.len())];
                xc.chunks_exact(v).map(log_sum_exp).collect::<Vec<_>>()
            })
            .concat()
        };
        // Summed in row order in f64: deterministic and accurate.
        let total: f64 = lse
            .iter()
            .zip(t)
            .enumerate()
            .map(|(i, (&l, &c))| (l - x[i * v + c as usize]) as f64)
            .sum();
        let loss = (total / n as f64) as f32;
        *self.lse.lock().unwrap_or_else(|e| e.into_inner()) = lse;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (loss, lse) = super::cuda::cross_entropy::forward(s1, l1, s2, l2)?;
        *self.lse_dev.lock().unwrap_or_else(|e| e.into_inner()) = Some(lse);
        Ok((loss, Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        #[cfg(feature = "cuda")]
        if logits.device().is_cuda() {
            let lse = self.lse_dev.lock().unwrap_or_else(|e| e.into_inner());
            let Some(lse) = lse.as_ref() else {
                bail!("{}: backward without a forward", self.name())
            };
            let grad = grad.to_dtype(DType::F32)?.contiguous()?;
            let d = logits.apply_op2_no_bwd(targets, &CrossEntropyBwdCuda { lse, grad: &grad })?;
            return Ok((Some(d), None));
        }
        let g = grad.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let n = targets.dim(0)?;
        let lse = self.lse.lock().unwrap_or_else(|e| e.into_inner());
        if lse.len() != n {
            bail!("{}: backward without a forward", self.name())
        }
        let d = logits.apply_op2_no_bwd(
            targets,
            &CrossEntropyBwd {
                lse: &lse,
                scale: g / n as f32,
            },
        )?;
        Ok((Some(d), None))
    }
}

/// (logits, targets) -> (softmax − onehot) · scale.
struct CrossEntropyBwd<'a> {
    lse: &'a [f32],
    scale: f32,
}

impl CustomOp2 for CrossEntropyBwd<'_> {
    fn name(&self) -> &'static str {
        "k2-cross-entropy-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let t = u32_slice(s2, l2, self.name())?;
        let v = l1.shape().dims()[1];
        let mut d = vec![0f32; x.len()];
        if v == 0 {
            return Ok((CpuStorage::F32(d), l1.shape().clone()));
        }
        let rpt = rows_per_task(t.len(), v, 16384);
        let scale = self.scale;
        par_chunks_mut(&mut d, rpt * v, |c, dc| {
            let xc = &x[c * rpt * v..];
            for (r, (dr, xr)) in dc.chunks_exact_mut(v).zip(xc.chunks_exact(v)).enumerate() {
                let i = c * rpt + r;
                dr.copy_from_slice(xr);
                grad_row_in_place(dr, self.lse[i], t[i] as usize, scale);
            }
        });
        Ok((CpuStorage::F32(d), l1.shape().clone()))
    }
}

/// (logits, targets) -> (softmax − onehot) · g / N on CUDA, `g` read on the device.
#[cfg(feature = "cuda")]
struct CrossEntropyBwdCuda<'a> {
    lse: &'a candle_core::cuda_backend::cudarc::driver::CudaSlice<f32>,
    grad: &'a Tensor,
}

#[cfg(feature = "cuda")]
impl CustomOp2 for CrossEntropyBwdCuda<'_> {
    fn name(&self) -> &'static str {
        "k2-cross-entropy-bwd"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        bail!("{}: the CUDA backward got CPU tensors", self.name())
    }

    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (gs, gl) = self.grad.storage_and_layout();
        let candle_core::Storage::Cuda(g) = &*gs else {
            bail!(
                "{}: the incoming gradient is not on the device",
                self.name()
            )
        };
        super::cuda::cross_entropy::backward(s1, l1, s2, l2, self.lse, g, gl)
    }
}
