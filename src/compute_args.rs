//! `--device` and `--dtype`, shared by every command that runs a model.

use clap::Args;
use k2_model::{DTypeSpec, DeviceSpec, Placement};

#[derive(Args, Clone, Copy, Debug)]
pub struct ComputeArgs {
    /// auto (CUDA when this binary has it and a GPU answers, else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// auto, f32, bf16 or f16. auto: a checkpoint is run in its config.json's torch_dtype (eval,
    /// analyze), training in the config's train.dtype (f32 unless set; bf16 = mixed precision with
    /// f32 master weights and moments).
    #[arg(long, default_value = "auto")]
    pub dtype: DTypeSpec,
}

impl ComputeArgs {
    /// The device resolved once for the whole command.
    pub fn placement(&self) -> anyhow::Result<Placement> {
        Ok(Placement::new(self.device, self.dtype)?)
    }
}
