//! k2's CUDA kernels, compiled from source at run time with NVRTC (once per process) and loaded
//! into candle's device: the scaled causal softmax and its backward for f32 and bf16
//! (`softmax.cu`). They accumulate in f32 and reduce in a fixed order (deterministic).
//! `K2_CUDA_FUSED=0` turns them off (the composite candle ops are used instead).

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{bail, CudaDevice, CudaStorage, DType, Device, Layout, Result, Shape, Tensor};

const SOFTMAX_SRC: &str = include_str!("softmax.cu");
const MODULE: &str = "k2_fused_softmax";

/// Whether the kernels apply to `t`: on a CUDA device, f32 or bf16, and not turned off.
pub fn applies(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cuda(_))
        && matches!(t.dtype(), DType::F32 | DType::BF16)
        && crate::switches::switches().cuda_fused
}

fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    let r = PTX.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(SOFTMAX_SRC)
            .map(|p| p.to_src())
            .map_err(|e| format!("NVRTC could not compile k2's softmax kernels: {e:?}"))
    });
    match r {
        Ok(s) => Ok(s.as_str()),
        Err(e) => bail!("{e}"),
    }
}

/// (row length t_k, rows per attention matrix t_q or 0 when not causal, number of rows).
fn geometry(l: &Layout, causal: bool) -> Result<(usize, usize, usize)> {
    let dims = l.shape().dims();
    let tk = *dims.last().unwrap_or(&0);
    let tq = if causal && dims.len() >= 2 {
        dims[dims.len() - 2]
    } else {
        0
    };
    let rows = if tk == 0 {
        0
    } else {
        l.shape().elem_count() / tk
    };
    Ok((tk, tq, rows))
}

fn launch_config(rows: usize, tk: usize) -> LaunchConfig {
    let threads = tk.next_power_of_two().clamp(32, 1024) as u32;
    LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn contiguous(l: &Layout, op: &str) -> Result<(usize, usize)> {
    match l.contiguous_offsets() {
        Some(o) => Ok(o),
        None => bail!("{op}: the CUDA kernel expects a contiguous input"),
    }
}

/// Launches `kernel(inputs..., out, tk, tq, scale)` over `rows` rows and returns `out` (`n`
/// elements of `T`, every one written by the kernel).
fn launch<T: candle_core::cuda_backend::cudarc::driver::DeviceRepr>(
    dev: &CudaDevice,
    kernel: &str,
    inputs: &[&candle_core::cuda_backend::cudarc::driver::CudaView<'_, T>],
    n: usize,
    (tk, tq, rows): (usize, usize, usize),
    scale: f32,
) -> Result<candle_core::cuda_backend::cudarc::driver::CudaSlice<T>> {
    // SAFETY: every element is written by the kernel below (rows x tk = n).
    let out = unsafe { dev.alloc::<T>(n)? };
    if rows > 0 {
        let f = dev.get_or_load_custom_func(kernel, MODULE, ptx()?)?;
        let (tk32, tq32) = (tk as i32, tq as i32);
        let mut bld = f.builder();
        for x in inputs {
            bld.arg(*x);
        }
        bld.arg(&out).arg(&tk32).arg(&tq32).arg(&scale);
        // SAFETY: the arguments match the kernel's signature; sizes come from the layout.
        unsafe { bld.launch(launch_config(rows, tk)) }.w()?;
    }
    Ok(out)
}

/// `softmax(x · scale [+ causal mask])` over the last dim.
pub fn softmax_fwd(
    scale: f32,
    causal: bool,
    s: &CudaStorage,
    l: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (a, b) = contiguous(l, "k2-softmax")?;
    let geom = geometry(l, causal)?;
    let dev: &CudaDevice = s.device();
    let slice = match &s.slice {
        CudaStorageSlice::F32(x) => CudaStorageSlice::F32(launch(
            dev,
            "k2_softmax_fwd_f32",
            &[&x.slice(a..b)],
            b - a,
            geom,
            scale,
        )?),
        CudaStorageSlice::BF16(x) => CudaStorageSlice::BF16(launch(
            dev,
            "k2_softmax_fwd_bf16",
            &[&x.slice(a..b)],
            b - a,
            geom,
            scale,
        )?),
        _ => bail!("k2-softmax: no CUDA kernel for {:?}", s.dtype()),
    };
    let device = dev.clone();
    Ok((CudaStorage { slice, device }, l.shape().clone()))
}

/// `scale · y · (g − Σ y·g)` from the softmax output `y` and the incoming gradient `g`.
pub fn softmax_bwd(
    scale: f32,
    causal: bool,
    ys: &CudaStorage,
    yl: &Layout,
    gs: &CudaStorage,
    gl: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (ya, yb) = contiguous(yl, "k2-softmax-bwd")?;
    let (ga, gb) = contiguous(gl, "k2-softmax-bwd")?;
    if yb - ya != gb - ga {
        bail!("k2-softmax-bwd: output and gradient sizes differ")
    }
    let geom = geometry(yl, causal)?;
    let dev: &CudaDevice = ys.device();
    let slice = match (&ys.slice, &gs.slice) {
        (CudaStorageSlice::F32(y), CudaStorageSlice::F32(g)) => CudaStorageSlice::F32(launch(
            dev,
            "k2_softmax_bwd_f32",
            &[&y.slice(ya..yb), &g.slice(ga..gb)],
            yb - ya,
            geom,
            scale,
        )?),
        (CudaStorageSlice::BF16(y), CudaStorageSlice::BF16(g)) => CudaStorageSlice::BF16(launch(
            dev,
            "k2_softmax_bwd_bf16",
            &[&y.slice(ya..yb), &g.slice(ga..gb)],
            yb - ya,
            geom,
            scale,
        )?),
        _ => bail!("k2-softmax-bwd: output and gradient must both be f32 or both bf16"),
    };
    let device = dev.clone();
    Ok((CudaStorage { slice, device }, yl.shape().clone()))
}
