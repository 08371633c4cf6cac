//! k2's environment switches (listed in [`crate::backend`] and the README), read once per process
//! and only here.

use std::sync::OnceLock;

/// k2's switches, read from the environment once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    /// `K2_GEMM`: `None` = detect, `Some(false)` = candle's product, `Some(true)` = force AVX2.
    pub gemm: GemmChoice,
    pub fused_attention: bool,
    pub prepack: bool,
    pub autograd: bool,
    pub cuda_fused: bool,
    pub prefix_cache: bool,
}

/// `K2_GEMM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmChoice {
    /// The best kernel this CPU has.
    Detect,
    /// candle's matmul everywhere.
    Candle,
    /// The AVX2 kernel even where AVX-512F is present.
    ForceAvx2,
}

impl Switches {
    fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        let off = |k: &str| var(k).as_deref() == Some("0");
        Switches {
            gemm: match var("K2_GEMM").as_deref() {
                Some("candle") => GemmChoice::Candle,
                Some("avx2") => GemmChoice::ForceAvx2,
                _ => GemmChoice::Detect,
            },
            fused_attention: !off("K2_FUSED_ATTENTION"),
            prepack: !off("K2_PREPACK"),
            autograd: var("K2_AUTOGRAD").as_deref() == Some("1"),
            cuda_fused: !off("K2_CUDA_FUSED"),
            prefix_cache: !off("K2_PREFIX_CACHE"),
        }
    }
}

/// The process's switches.
pub fn switches() -> &'static Switches {
    static S: OnceLock<Switches> = OnceLock::new();
    S.get_or_init(Switches::from_env)
}
