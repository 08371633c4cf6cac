//! Which kernels a model runs with: chosen once, when the model is built, from where its weights
//! live and from k2's switches. The layers ask their model's [`Backend`]; they do not inspect
//! tensors op by op.
//!
//! | backend            | when                                                   | owns                                                |
//! |--------------------|--------------------------------------------------------|-----------------------------------------------------|
//! | [`Kernels::K2Cpu`] | f32 on an x86-64 CPU with AVX2+FMA or AVX-512F          | k2's product, fused attention (bit-exact prefix reuse, packed rows), prepacked (transposed) inference weights, the KV cache as (batch, seq, heads, dim), the hand-written training step |
//! | [`Kernels::Candle`]| any other CPU dtype, or a CPU without those extensions  | candle's ops; KV cache (batch, heads, seq, dim)      |
//! | [`Kernels::Cuda`]  | a CUDA device (the `cuda` feature)                      | candle's CUDA ops and k2's CUDA kernels              |
//!
//! The switches, all read here and only here (for before/after measurements and bisecting):
//!
//! | variable                | effect                                                                |
//! |-------------------------|-----------------------------------------------------------------------|
//! | `K2_GEMM=candle`        | no k2 product: f32 on the CPU runs candle's ops ([`Kernels::Candle`])  |
//! | `K2_GEMM=avx2`          | k2's AVX2 product on an AVX-512 machine                               |
//! | `K2_FUSED_ATTENTION=0`  | k2's product but candle's attention (no packing, no exact prefix reuse)|
//! | `K2_PREPACK=0`          | inference weights kept (out, in), transposed per product              |
//! | `K2_AUTOGRAD=1`         | training through candle's autograd instead of k2's training step      |
//! | `K2_CUDA_FUSED=0`       | candle's CUDA ops instead of k2's CUDA kernels                        |
//! | `K2_PREFIX_CACHE=0`     | eval runs contexts right-padded, no shared prefixes                   |
//!
//! A switched-off kernel's replacement may round differently; what each backend computes bit for
//! bit is documented in `docs/determinism.md`.

use candle_core::{DType, Device, Tensor};

pub use crate::switches::{switches, GemmChoice, Switches};

/// A family of kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    K2Cpu,
    Candle,
    Cuda,
}

/// The kernels of one model, chosen when it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub kernels: Kernels,
    /// Inference weights laid out for k2's product ((in, out), read in place). Never for weights
    /// that training updates in place.
    pub prepacked: bool,
}

impl Backend {
    /// The kernels for activations of `dtype` on `dev`.
    pub fn for_placement(dev: &Device, dtype: DType) -> Self {
        let kernels = match dev {
            Device::Cuda(_) => Kernels::Cuda,
            Device::Cpu
                if dtype == DType::F32
                    && crate::gemm::isa().is_some()
                    && switches().fused_attention =>
            {
                Kernels::K2Cpu
            }
            _ => Kernels::Candle,
        };
        Backend {
            kernels,
            prepacked: false,
        }
    }

    /// The kernels for a model whose weights are like `w`; `frozen` weights (inference) may be
    /// prepacked.
    pub fn for_weights(w: &Tensor, frozen: bool) -> Self {
        let b = Self::for_placement(w.device(), w.dtype());
        Backend {
            prepacked: frozen && b.kernels == Kernels::K2Cpu && switches().prepack,
            ..b
        }
    }

    /// k2's fused attention: exact prefix reuse, packed rows, the (batch, seq, heads, dim) layout.
    pub fn fused_attention(&self) -> bool {
        self.kernels == Kernels::K2Cpu
    }

    /// The KV cache's sequence dimension under this backend's attention.
    pub fn kv_seq_dim(&self) -> usize {
        if self.fused_attention() {
            1
        } else {
            2
        }
    }

    /// Whether k2's hand-written CPU training step trains with these kernels (else candle's
    /// autograd).
    pub fn train_step(&self) -> bool {
        self.kernels == Kernels::K2Cpu && !switches().autograd
    }
}
