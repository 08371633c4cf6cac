//! Small tensor helpers every model path shares: RoPE tables, dtype widening, host copies, and
//! grouped-query key/value repetition.

use candle_core::{DType, Device, Tensor};

use crate::error::Result;

/// RoPE tables (positions × head_dim/2) as transformers computes them: inv_freq = 1/θ^(2i/d).
pub fn rope_tables(
    head_dim: usize,
    theta: f64,
    max_pos: usize,
    dtype: DType,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = (0..head_dim / 2)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let inv = Tensor::from_vec(inv, (1, head_dim / 2), dev)?;
    let pos = Tensor::arange(0u32, max_pos as u32, dev)?
        .to_dtype(DType::F32)?
        .reshape((max_pos, 1))?;
    let freqs = pos.matmul(&inv)?;
    Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
}

/// bf16 or f16.
pub fn is_half(d: DType) -> bool {
    matches!(d, DType::BF16 | DType::F16)
}

/// `t` in f32 if it is bf16/f16, else unchanged (f32 and f64 keep their precision).
pub fn upcast(t: &Tensor) -> Result<Tensor> {
    Ok(if is_half(t.dtype()) {
        t.to_dtype(DType::F32)?
    } else {
        t.clone()
    })
}

/// Every value of `t`, flattened in row-major order, as f32 on the host.
pub fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// `f` applied to `x` in f32 when `x` is bf16/f16, the result cast back to `x`'s dtype; `f(x)`
/// for f32 and f64. Differentiable: the casts pass gradients through.
pub(crate) fn in_f32(x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    if !is_half(x.dtype()) {
        return f(x);
    }
    Ok(f(&x.to_dtype(DType::F32)?)?.to_dtype(x.dtype())?)
}

pub(crate) fn repeat_kv(x: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x);
    }
    let (b, nkv, t, hd) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .expand((b, nkv, n_rep, t, hd))?
        .reshape((b, nkv * n_rep, t, hd))?)
}
