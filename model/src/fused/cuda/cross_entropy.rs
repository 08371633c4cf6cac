//! The classifier loss's CUDA kernels (`cross_entropy.cu`): the mean cross-entropy of (N, V)
//! logits and the per-row log-sum-exp the backward reuses, and the gradient
//! `(softmax − onehot) · g / N` written in one pass, with `g` read on the device.

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{bail, CudaDevice, CudaStorage, Layout, Result, Shape};

const SRC: &str = concat!(include_str!("common.cuh"), include_str!("cross_entropy.cu"));
const MODULE: &str = "k2_fused_cross_entropy";

pub(super) fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    super::compile_once(&PTX, SRC, "cross-entropy")
}

fn rows(rows: usize, v: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (v.next_power_of_two().clamp(32, 1024) as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Rows N, classes V, the logits' and the targets' element ranges.
type Geometry = (usize, usize, (usize, usize), (usize, usize));

/// The [`Geometry`] of (N, V) logits and N targets, checked.
fn geometry(l: &Layout, tl: &Layout) -> Result<Geometry> {
    let dims = l.shape().dims();
    let (Some(x), Some(t)) = (l.contiguous_offsets(), tl.contiguous_offsets()) else {
        bail!("k2-cross-entropy: logits and targets must be contiguous")
    };
    if dims.len() != 2 || t.1 - t.0 != dims[0] {
        bail!("k2-cross-entropy: expected (N, V) logits and N targets")
    }
    Ok((dims[0], dims[1], x, t))
}

fn targets_of(ts: &CudaStorage) -> Result<&CudaSlice<u32>> {
    match &ts.slice {
        CudaStorageSlice::U32(t) => Ok(t),
        _ => bail!("k2-cross-entropy: targets must be u32"),
    }
}

/// The mean loss (an f32 scalar on the device) and the per-row log-sum-exp.
pub fn forward(
    xs: &CudaStorage,
    xl: &Layout,
    ts: &CudaStorage,
    tl: &Layout,
) -> Result<(CudaStorage, CudaSlice<f32>)> {
    let (n, v, (xa, xb), (ta, tb)) = geometry(xl, tl)?;
    let dev: &CudaDevice = xs.device();
    let t = targets_of(ts)?.slice(ta..tb);
    // SAFETY: one block per row writes its lse and loss; the mean kernel writes the loss.
    let (lse, row_loss, loss) = unsafe {
        (
            dev.alloc::<f32>(n)?,
            dev.alloc::<f32>(n)?,
            dev.alloc::<f32>(1)?,
        )
    };
    let v64 = v as i64;
    macro_rules! run {
        ($x:expr, $name:literal) => {{
            let f = dev.get_or_load_custom_func($name, MODULE, ptx()?)?;
            let x = $x.slice(xa..xb);
            let mut bld = f.builder();
            bld.arg(&x).arg(&t).arg(&v64).arg(&lse).arg(&row_loss);
            // SAFETY: the arguments match the kernel's signature; sizes come from the layouts.
            unsafe { bld.launch(rows(n, v)) }.w()?;
        }};
    }
    if n > 0 {
        match &xs.slice {
            CudaStorageSlice::F32(x) => run!(x, "k2_xent_fwd_f32"),
            CudaStorageSlice::BF16(x) => run!(x, "k2_xent_fwd_bf16"),
            _ => bail!("k2-cross-entropy: logits must be f32 or bf16"),
        }
    }
    let f = dev.get_or_load_custom_func("k2_xent_mean", MODULE, ptx()?)?;
    let n64 = n as i64;
    let mut bld = f.builder();
    bld.arg(&row_loss).arg(&n64).arg(&loss);
    // SAFETY: one block of 1024 threads (the kernel's shared array), sizes as allocated.
    unsafe {
        bld.launch(LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (1024, 1, 1),
            shared_mem_bytes: 0,
        })
    }
    .w()?;
    Ok((CudaStorage::wrap_cuda_slice(loss, dev.clone()), lse))
}

/// `(softmax − onehot) · g / N` in the logits' dtype, `g` the loss's incoming gradient (an f32
/// scalar on the device).
pub fn backward(
    xs: &CudaStorage,
    xl: &Layout,
    ts: &CudaStorage,
    tl: &Layout,
    lse: &CudaSlice<f32>,
    g: &CudaStorage,
    gl: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (n, v, (xa, xb), (ta, tb)) = geometry(xl, tl)?;
    if lse.len() != n {
        bail!("k2-cross-entropy: backward without its forward")
    }
    let CudaStorageSlice::F32(gv) = &g.slice else {
        bail!("k2-cross-entropy: the incoming gradient must be f32")
    };
    let Some((ga, _)) = gl.contiguous_offsets() else {
        bail!("k2-cross-entropy: the incoming gradient must be contiguous")
    };
    let dev: &CudaDevice = xs.device();
    let t = targets_of(ts)?.slice(ta..tb);
    let (n64, v64) = (n as i64, v as i64);
    let g1 = gv.slice(ga..ga + 1);
    macro_rules! run {
        ($x:expr, $name:literal, $wrap:path) => {{
            // SAFETY: every element is written below (one block per row, every column).
            let d = unsafe { dev.alloc(n * v)? };
            if n > 0 && v > 0 {
                let f = dev.get_or_load_custom_func($name, MODULE, ptx()?)?;
                let x = $x.slice(xa..xb);
                let mut bld = f.builder();
                bld.arg(&x)
                    .arg(&t)
                    .arg(lse)
                    .arg(&g1)
                    .arg(&n64)
                    .arg(&v64)
                    .arg(&d);
                // SAFETY: the arguments match the kernel's signature.
                unsafe { bld.launch(rows(n, v)) }.w()?;
            }
            $wrap(d)
        }};
    }
    let slice = match &xs.slice {
        CudaStorageSlice::F32(x) => run!(x, "k2_xent_bwd_f32", CudaStorageSlice::F32),
        CudaStorageSlice::BF16(x) => run!(x, "k2_xent_bwd_bf16", CudaStorageSlice::BF16),
        _ => bail!("k2-cross-entropy: logits must be f32 or bf16"),
    };
    Ok((
        CudaStorage {
            slice,
            device: dev.clone(),
        },
        xl.shape().clone(),
    ))
}
