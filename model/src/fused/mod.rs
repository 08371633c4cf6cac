//! Fused CPU kernels for the training path, each with a backward.
//!
//! candle 0.11's own fused `rms_norm`, `rope` and `softmax_last_dim` have no backward, so the
//! training path used to build these ops from many small differentiable ones (each a full pass
//! over memory, forward and backward). The ops here are candle `CustomOp`s with a `bwd`, applied
//! with `apply_op*` so that they stay in the autograd graph.
//!
//! Every public function takes the fused kernel only for contiguous-able f32 tensors on the CPU,
//! and otherwise falls back to the equivalent composite (differentiable) candle ops, so f64 and
//! other devices keep working unchanged.

mod attention;
mod cross_entropy;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod exp;
mod linear;
mod rms_norm;
mod rope;
mod softmax;
mod swiglu;

pub use attention::{causal_attention, fused_attention_applies, packed_attention, Middle, Packed};
pub use cross_entropy::{cross_entropy, cross_entropy_composite};
pub use linear::{linear, linear_candle, linear_transposed, transposed_for_gemm};
pub use rms_norm::{rms_norm, rms_norm_composite};
pub use rope::{rope, rope_bthd, rope_composite};
pub use softmax::{
    causal_softmax, causal_softmax_composite, causal_softmax_f32acc, softmax_composite,
    softmax_last_dim,
};
pub use swiglu::{swiglu, swiglu_composite};

/// The kernels behind the ops, on slices, for [`crate::train_step`]: the same functions the
/// ops' `cpu_fwd` and `bwd` run, so both paths compute the same bits.
pub(crate) mod kernels {
    pub(crate) use super::attention::{causal_backward_into, causal_forward_into, CausalShape};
    pub(crate) use super::cross_entropy::{grad_row_in_place, log_sum_exp};
    pub(crate) use super::linear::{linear_grad_into as linear_grad, linear_into as linear};
    pub(crate) use super::rms_norm::{rms_norm_grad, rms_norm_into};
    pub(crate) use super::rope::rope_into;
    pub(crate) use super::swiglu::{swiglu_grad, swiglu_into};
}

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, Device, Layout, Result, Tensor};

/// Whether k2's CUDA kernels take `t` (CUDA, f32 or bf16; always false without the `cuda` feature).
fn cuda_kernel(t: &Tensor) -> bool {
    #[cfg(feature = "cuda")]
    {
        cuda::applies(t)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = t;
        false
    }
}

/// True when every tensor is f32 on the CPU (the only case the fused kernels implement).
fn cpu_f32(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32)
}

/// The contiguous f32 slice a storage/layout pair describes.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: fused kernel expects f32, got {:?}", s.dtype())
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{op}: fused kernel expects a contiguous input"),
    }
}

/// `f` on the contiguous f32 values of a CPU tensor (a backward reading its saved inputs).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (s, l) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*s else {
        bail!("k2 fused kernel: expected a CPU tensor")
    };
    f(f32_slice(cpu, l, "k2 fused kernel")?)
}

/// Rows per parallel task so that a task has about `min_elems` elements of work. It does not
/// depend on the thread count, so reductions over tasks give the same bits on any machine.
fn rows_per_task(rows: usize, row_len: usize, min_elems: usize) -> usize {
    min_elems.div_ceil(row_len.max(1)).clamp(1, rows.max(1))
}
