//! The CPU's f32 peak as k2 measures it: fused multiply-adds per second on as many threads as
//! [`crate::parallel`]'s pool has, all at once, each running independent chains of the widest
//! vector FMA k2's matrix kernel uses ([`crate::gemm::isa`]), with no memory traffic. It is the ceiling
//! any f32 matrix product on these threads can reach; `k2 bench train` quotes CPU MFU against it.

use std::time::Instant;

use crate::gemm::{isa, Isa};

/// Vector FMAs each thread runs per timed pass (about 0.1 s at 3 GHz with two FMA units).
const FMAS_PER_THREAD: u64 = 400_000_000;

/// Peak f32 FLOP/s over all threads (best of 3 passes), or `None` on a CPU without AVX-512F or
/// AVX2+FMA.
pub fn fma_peak_flops() -> Option<f64> {
    let isa = isa()?;
    let threads = crate::parallel::threads();
    let lanes = match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
    };
    let iters = FMAS_PER_THREAD / CHAINS as u64;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let sums: Vec<f32> = std::thread::scope(|sc| {
            let running: Vec<_> = (0..threads)
                .map(|_| sc.spawn(move || chains(isa, iters)))
                .collect();
            running.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(sums);
        best = best.min(secs);
    }
    let flops = 2.0 * lanes as f64 * (iters * CHAINS as u64) as f64 * threads as f64;
    Some(flops / best)
}

/// Independent accumulator chains per thread: enough to cover the FMA latency (4 cycles) on two
/// units, few enough to stay in registers beside the two constants (AVX2 has 16).
const CHAINS: usize = 12;

fn chains(isa: Isa, iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `isa` was detected on this CPU.
    unsafe {
        match isa {
            Isa::Avx512 => x86::chains512(iters),
            Isa::Avx2 => x86::chains256(iters),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, iters);
        0.0
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::CHAINS;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chains512(iters: u64) -> f32 {
        let mut acc = [_mm512_set1_ps(0.5); CHAINS];
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn chains256(iters: u64) -> f32 {
        let mut acc = [_mm256_set1_ps(0.5); CHAINS];
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut out = [0f32; 8];
        acc.iter()
            .map(|&x| {
                _mm256_storeu_ps(out.as_mut_ptr(), x);
                out.iter().sum::<f32>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_peak_is_a_plausible_rate() {
        let Some(p) = super::fma_peak_flops() else {
            eprintln!("skipped: no AVX-512F or AVX2+FMA on this CPU");
            return;
        };
        // Between 1 GFLOP/s and 100 TFLOP/s per thread: a measurement, not a constant.
        let per_thread = p / crate::parallel::threads() as f64;
        assert!((1e9..1e14).contains(&per_thread), "{p}");
    }
}
