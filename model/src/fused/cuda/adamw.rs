//! The optimizer's CUDA kernels (`adamw.cu`): the sum of squares of a tensor as per-block f64
//! partials, and one AdamW update per parameter that writes the master weight and both moments in
//! place, reading the clip coefficient's input from device memory (no host sync in a step).
//! Deterministic: the grid depends on the element count only and every sum is a fixed tree.

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{
    bail, CpuStorage, CudaDevice, CudaStorage, CustomOp1, DType, Layout, Result, Shape, Storage,
    Tensor,
};

const SRC: &str = include_str!("adamw.cu");
const MODULE: &str = "k2_fused_adamw";
/// Threads per block (`K2_THREADS` in `adamw.cu`).
const THREADS: usize = 256;

pub(super) fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    super::compile_once(&PTX, SRC, "AdamW")
}

/// Blocks for `n` elements: a function of `n` only (so sums are added in the same order on every
/// run), at most 1024, each thread visiting at least 4 elements of a large tensor.
pub fn blocks_for(n: usize) -> usize {
    n.div_ceil(THREADS * 4).clamp(1, 1024)
}

fn launch_config(blocks: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The contiguous f32 elements of a CUDA tensor's storage.
fn f32_range(s: &Storage, l: &Layout, what: &str) -> Result<(usize, usize)> {
    if !matches!(s, Storage::Cuda(_)) || s.dtype() != DType::F32 {
        bail!("k2-adamw: {what} must be an f32 CUDA tensor")
    }
    match l.contiguous_offsets() {
        Some(o) => Ok(o),
        None => bail!("k2-adamw: {what} must be contiguous"),
    }
}

fn cuda_f32(s: &Storage) -> Result<&CudaSlice<f32>> {
    match s {
        Storage::Cuda(c) => c.as_cuda_slice::<f32>(),
        _ => bail!("k2-adamw: expected a CUDA tensor"),
    }
}

struct SumSq;

impl CustomOp1 for SumSq {
    fn name(&self) -> &'static str {
        "k2-sumsq"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        bail!("k2-sumsq runs on CUDA only")
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let (a, b) = match l.contiguous_offsets() {
            Some(o) => o,
            None => bail!("k2-sumsq: the input must be contiguous"),
        };
        let CudaStorageSlice::F32(x) = &s.slice else {
            bail!("k2-sumsq: the input must be f32")
        };
        let dev: &CudaDevice = s.device();
        let n = b - a;
        let blocks = blocks_for(n);
        // SAFETY: every block writes its partial below.
        let out = unsafe { dev.alloc::<f64>(blocks)? };
        let f = dev.get_or_load_custom_func("k2_sumsq_f32", MODULE, ptx()?)?;
        let n64 = n as i64;
        let x = x.slice(a..b);
        let mut bld = f.builder();
        bld.arg(&x).arg(&n64).arg(&out);
        // SAFETY: the arguments match the kernel's signature; sizes come from the layout.
        unsafe { bld.launch(launch_config(blocks)) }.w()?;
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev.clone()),
            Shape::from(blocks),
        ))
    }
}

/// Per-block partial sums of `t`'s squared elements (f64, on the device; `sum_all` finishes).
pub fn sum_sq_partials(t: &Tensor) -> Result<Tensor> {
    t.apply_op1_no_bwd(&SumSq)
}

/// The scalars of one AdamW step (those of the host loop in `trainer/src/optim.rs`).
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    pub max_norm: f64,
    pub beta1: f32,
    pub beta2: f32,
    pub bc2_sqrt: f32,
    pub step_size: f32,
    pub eps: f32,
}

struct Update<'a> {
    w: &'a Tensor,
    m: &'a Tensor,
    v: &'a Tensor,
    grad_sumsq: &'a Tensor,
    step: AdamWStep,
    decay: f32,
}

impl CustomOp1 for Update<'_> {
    fn name(&self) -> &'static str {
        "k2-adamw"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        bail!("k2-adamw runs on CUDA only")
    }

    /// Applied to the gradient; returns the per-block sums of squared updates and new weights.
    fn cuda_fwd(&self, gs: &CudaStorage, gl: &Layout) -> Result<(CudaStorage, Shape)> {
        let (ga, gb) = match gl.contiguous_offsets() {
            Some(o) => o,
            None => bail!("k2-adamw: the gradient must be contiguous"),
        };
        let CudaStorageSlice::F32(g) = &gs.slice else {
            bail!("k2-adamw: the gradient must be f32")
        };
        let (ws, wl) = self.w.storage_and_layout();
        let (ms, ml) = self.m.storage_and_layout();
        let (vs, vl) = self.v.storage_and_layout();
        let (ss, sl) = self.grad_sumsq.storage_and_layout();
        let (wa, wb) = f32_range(&ws, wl, "the weight")?;
        let (ma, mb) = f32_range(&ms, ml, "the first moment")?;
        let (va, vb) = f32_range(&vs, vl, "the second moment")?;
        let n = gb - ga;
        if wb - wa != n || mb - ma != n || vb - va != n {
            bail!("k2-adamw: weight, gradient and moments differ in size")
        }
        let Storage::Cuda(sc) = &*ss else {
            bail!("k2-adamw: the gradient norm must be on the device")
        };
        let CudaStorageSlice::F64(sumsq) = &sc.slice else {
            bail!("k2-adamw: the squared gradient norm must be f64")
        };
        let Some((sa, _)) = sl.contiguous_offsets() else {
            bail!("k2-adamw: the squared gradient norm must be contiguous")
        };
        let dev: &CudaDevice = gs.device();
        let blocks = blocks_for(n);
        // SAFETY: every block writes its two partials below.
        let partials = unsafe { dev.alloc::<f64>(2 * blocks)? };
        let f = dev.get_or_load_custom_func("k2_adamw_f32", MODULE, ptx()?)?;
        let (w, m, v) = (
            cuda_f32(&ws)?.slice(wa..wb),
            cuda_f32(&ms)?.slice(ma..mb),
            cuda_f32(&vs)?.slice(va..vb),
        );
        let s = self.step;
        let n64 = n as i64;
        let (g, sumsq) = (g.slice(ga..gb), sumsq.slice(sa..sa + 1));
        let mut bld = f.builder();
        // The weight and both moments are written in place through these views. candle has no
        // custom op with three in-place outputs; the tensors are the optimizer's own (no other
        // tensor shares their storage) and candle runs every kernel of a device on one stream,
        // so nothing reads them between this launch and the next use.
        bld.arg(&w)
            .arg(&g)
            .arg(&m)
            .arg(&v)
            .arg(&n64)
            .arg(&sumsq)
            .arg(&s.max_norm)
            .arg(&s.beta1)
            .arg(&s.beta2)
            .arg(&s.bc2_sqrt)
            .arg(&s.step_size)
            .arg(&s.eps)
            .arg(&self.decay)
            .arg(&partials);
        // SAFETY: the arguments match the kernel's signature; sizes were checked above.
        unsafe { bld.launch(launch_config(blocks)) }.w()?;
        Ok((
            CudaStorage::wrap_cuda_slice(partials, dev.clone()),
            Shape::from((2, blocks)),
        ))
    }
}

/// One AdamW update of the f32 CUDA tensors `w`, `m`, `v` in place from gradient `g`, clipping
/// with the device scalar `grad_sumsq` (the global sum of squared gradients, f64). Returns the
/// per-block sums of the squared update (row 0) and of the squared new weights (row 1).
pub fn adamw_update(
    w: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    grad_sumsq: &Tensor,
    step: AdamWStep,
    decay: f32,
) -> Result<Tensor> {
    g.apply_op1_no_bwd(&Update {
        w,
        m,
        v,
        grad_sumsq,
        step,
        decay,
    })
}

/// Whether k2's AdamW kernel takes a parameter on `t`'s device (CUDA, f32, not turned off).
pub fn applies(t: &Tensor) -> bool {
    super::applies(t) && t.dtype() == DType::F32
}
