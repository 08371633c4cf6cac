//! k2's CUDA kernels, compiled from source at run time with NVRTC (once per process) and loaded
//! into candle's device: the scaled causal softmax and its backward for f32 and bf16
//! (`softmax.cu`). They accumulate in f32 and reduce in a fixed order (deterministic).
//! `K2_CUDA_FUSED=0` turns them off (the composite candle ops are used instead). The optimizer's
//! kernels are in [`adamw`], the classifier loss's in [`cross_entropy`].

pub mod adamw;
pub mod cross_entropy;

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{bail, CudaDevice, CudaStorage, DType, Device, Layout, Result, Shape, Tensor};

const SOFTMAX_SRC: &str = concat!(include_str!("common.cuh"), include_str!("softmax.cu"));
const MODULE: &str = "k2_fused_softmax";

/// Whether the kernels apply to `t`: on a CUDA device, f32 or bf16, and not turned off.
pub fn applies(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cuda(_))
        && matches!(t.dtype(), DType::F32 | DType::BF16)
        && crate::switches::switches().cuda_fused
}

/// PTX of a kernel source, compiled with NVRTC once per process (`cell` holds the result).
fn compile_once(
    cell: &'static OnceLock<std::result::Result<String, String>>,
    src: &str,
    what: &str,
) -> Result<&'static str> {
    let r = cell.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(src)
            .map(|p| p.to_src())
            .map_err(|e| format!("NVRTC could not compile k2's {what} kernels: {e:?}"))
    });
    match r {
        Ok(s) => Ok(s.as_str()),
        Err(e) => bail!("{e}"),
    }
}

fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    compile_once(&PTX, SOFTMAX_SRC, "softmax")
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
    let rows = l.shape().elem_count().checked_div(tk).unwrap_or(0);
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

#[cfg(test)]
mod tests {
    /// Every kernel source compiles with NVRTC, which needs no GPU: a CUDA build checks its
    /// kernels on any machine (`cargo test --features cuda`, with the NVRTC library on the path).
    #[test]
    fn every_kernel_compiles_with_nvrtc() {
        for (name, ptx) in [
            ("softmax", super::ptx()),
            ("adamw", super::adamw::ptx()),
            ("cross_entropy", super::cross_entropy::ptx()),
        ] {
            let ptx = ptx.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(ptx.contains(".entry"), "{name}: no kernel in the PTX");
        }
    }

    /// The CUDA classifier loss and its gradient against the CPU's fused ones on the same logits:
    /// the loss to 1e-5, the gradient to f32 (or its own bf16) rounding. Skipped, saying so,
    /// where no GPU answers.
    #[test]
    fn cross_entropy_on_cuda_matches_the_cpu() {
        use candle_core::{DType, Device, Tensor, Var};
        let Ok(gpu) = Device::new_cuda(0) else {
            eprintln!("skipped: no CUDA device answers");
            return;
        };
        let (n, v) = (37, 3001);
        let x: Vec<f32> = (0..n * v)
            .map(|i| ((i * 2654435761usize) % 1999) as f32 / 200.0 - 5.0)
            .collect();
        let t: Vec<u32> = (0..n).map(|i| ((i * 977) % v) as u32).collect();
        let run = |x: &[f32], dev: &Device, dt: DType| {
            let x = Tensor::from_vec(x.to_vec(), (n, v), dev).unwrap();
            let x = Var::from_tensor(&x.to_dtype(dt).unwrap()).unwrap();
            let t = Tensor::from_vec(t.clone(), n, dev).unwrap();
            let loss = crate::fused::cross_entropy(x.as_tensor(), &t).unwrap();
            let g = loss.backward().unwrap();
            let d = g.get(x.as_tensor()).unwrap().to_dtype(DType::F32).unwrap();
            let d: Vec<f32> = d.flatten_all().unwrap().to_vec1().unwrap();
            let loss = loss.to_dtype(DType::F32).unwrap();
            (loss.to_scalar::<f32>().unwrap(), d)
        };
        // bf16: the CPU reference sees the same rounded logits; |grad| <= 1/n, so the
        // gradient's own bf16 rounding is at most 2^-8 / n.
        for (dt, tol_grad) in [(DType::F32, 1e-7), (DType::BF16, 1.5e-4)] {
            let xr = Tensor::from_vec(x.clone(), n * v, &Device::Cpu).unwrap();
            let xr: Vec<f32> = xr
                .to_dtype(dt)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .to_vec1()
                .unwrap();
            let (cl, cd) = run(&xr, &Device::Cpu, DType::F32);
            let (gl, gd) = run(&xr, &gpu, dt);
            let loss_err = (cl - gl).abs();
            assert!(
                loss_err <= 1e-5 * cl.abs().max(1.0),
                "{dt:?}: loss {cl} vs {gl}"
            );
            let worst = cd
                .iter()
                .zip(&gd)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst <= tol_grad, "{dt:?}: max |d grad| {worst}");
        }
    }
}
