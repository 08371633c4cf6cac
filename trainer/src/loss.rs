//! The training loss.

use candle_core::Tensor;
use k2_model::{Decoder, TrainStep};

use crate::error::Result;
use crate::optim::{AdamW, Grads};

/// Mean next-token cross-entropy over a batch (K2: labels are inputs shifted by one; the last
/// position has no label).
pub fn lm_loss(model: &Decoder, ids: &Tensor) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let logits = model.forward_train(ids)?;
    let v = logits.dim(2)?;
    // The loss is taken in f32 whatever the compute dtype (a no-op for f32 logits).
    let logits = k2_model::upcast(&logits.narrow(1, 0, t - 1)?.reshape((b * (t - 1), v))?)?;
    let targets = ids
        .narrow(1, 1, t - 1)?
        .contiguous()?
        .reshape(b * (t - 1))?;
    Ok(k2_model::fused::cross_entropy(&logits, &targets)?)
}

/// One micro-batch's loss, its gradients added into the optimizer's accumulator: through k2's
/// own backward ([`TrainStep`]: f32 on the CPU, buffers kept from step to step) where it applies,
/// candle's autograd over [`lm_loss`] otherwise. Both give the same bits (`model/tests/train_step.rs`).
#[derive(Default)]
pub struct Backprop {
    step: TrainStep,
}

impl Backprop {
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean next-token loss of `ids` (batch, seq), and `acc += scale * gradient`.
    pub fn micro_batch(
        &mut self,
        model: &Decoder,
        ids: &Tensor,
        opt: &AdamW,
        acc: &mut Grads,
        scale: f32,
    ) -> Result<f32> {
        let (b, t) = ids.dims2()?;
        if t >= 2
            && ids.device().is_cpu()
            && matches!(acc, Grads::Host(_))
            && TrainStep::applies(model)
        {
            let host: Vec<u32> = ids.flatten_all()?.to_vec1()?;
            let loss = self.step.run(model, &host, b, t)?;
            opt.accumulate_host(acc, |name| self.step.grad(name), scale)?;
            return Ok(loss);
        }
        let loss = lm_loss(model, ids)?;
        let value = loss.to_scalar::<f32>()?;
        let store = loss.backward()?;
        opt.accumulate(acc, &store, scale)?;
        Ok(value)
    }
}
