//! The training loss.

use candle_core::Tensor;
use k2_model::{Llama, Mode};

use crate::error::Result;

/// Mean next-token cross-entropy over a batch (K2: labels are inputs shifted by one; the last
/// position has no label).
pub fn lm_loss(model: &Llama, ids: &Tensor) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let logits = model.forward(ids, Mode::Train)?;
    let v = logits.dim(2)?;
    // The loss is taken in f32 whatever the compute dtype (a no-op for f32 logits).
    let logits = k2_model::upcast(&logits.narrow(1, 0, t - 1)?.reshape((b * (t - 1), v))?)?;
    let targets = ids
        .narrow(1, 1, t - 1)?
        .contiguous()?
        .reshape(b * (t - 1))?;
    Ok(k2_model::fused::cross_entropy(&logits, &targets)?)
}
