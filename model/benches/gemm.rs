//! `cargo bench -p k2-model --bench gemm`: GFLOP/s of k2's f32 product ([`k2_model::gemm`])
//! against candle's CPU matmul on the products of one training step of the `default` (16×128)
//! and `bench-17m` (8×256) presets, forward and both backward layouts, and a 1024³ square.

use std::time::Instant;

use candle_core::{Device, Tensor};
use k2_model::gemm::{isa, sgemm, MatRef};

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn best(mut f: impl FnMut()) -> f64 {
    f();
    let mut b = f64::MAX;
    let reps = 9;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b
}

fn main() {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("k2 gemm kernel: {:?}; threads: {threads}", isa());
    // (label, m, n, k, a transposed, b transposed): y = x·wᵀ, dx = dy·w, dw = dyᵀ·x.
    let shapes = [
        (
            "default q/k/v/o fwd 2048x128x128",
            2048,
            128,
            128,
            false,
            true,
        ),
        (
            "default gate/up fwd 2048x352x128",
            2048,
            352,
            128,
            false,
            true,
        ),
        ("default down dx 2048x352x128", 2048, 352, 128, false, false),
        ("default gate dw 352x128x2048", 352, 128, 2048, true, false),
        (
            "default lm_head fwd 2048x1024x128",
            2048,
            1024,
            128,
            false,
            true,
        ),
        ("17m q fwd 2048x384x384", 2048, 384, 384, false, true),
        ("17m gate fwd 2048x1024x384", 2048, 1024, 384, false, true),
        ("17m gate dw 1024x384x2048", 1024, 384, 2048, true, false),
        (
            "17m lm_head fwd 2048x8192x384",
            2048,
            8192,
            384,
            false,
            true,
        ),
        (
            "17m lm_head dx 2048x384x8192",
            2048,
            384,
            8192,
            false,
            false,
        ),
        // Eval's forwards: a few continuations packed into one row (tens of tokens).
        // Eval's weights are kept transposed (in, out): B's rows are read in place.
        ("eval 17m q 100x384x384", 100, 384, 384, false, false),
        ("eval 17m gate 100x1024x384", 100, 1024, 384, false, false),
        (
            "eval 17m lm_head 100x8192x384",
            100,
            8192,
            384,
            false,
            false,
        ),
        ("eval 17m q 800x384x384", 800, 384, 384, false, false),
        ("eval 17m gate 800x1024x384", 800, 1024, 384, false, false),
        (
            "eval 17m lm_head 800x8192x384",
            800,
            8192,
            384,
            false,
            false,
        ),
        ("square 1024", 1024, 1024, 1024, false, false),
    ];
    for (label, m, n, k, ta, tb) in shapes {
        let av = data(m * k);
        let bv = data(k * n);
        let flops = 2.0 * (m * n * k) as f64;
        let dev = Device::Cpu;
        let at = if ta {
            Tensor::from_vec(av.clone(), (k, m), &dev)
                .unwrap()
                .t()
                .unwrap()
        } else {
            Tensor::from_vec(av.clone(), (m, k), &dev).unwrap()
        };
        let bt = if tb {
            Tensor::from_vec(bv.clone(), (n, k), &dev)
                .unwrap()
                .t()
                .unwrap()
        } else {
            Tensor::from_vec(bv.clone(), (k, n), &dev).unwrap()
        };
        let tc = best(|| {
            let _ = at.matmul(&bt).unwrap();
        });
        let mut c = vec![0f32; m * n];
        let a = if ta {
            MatRef::cols(&av, m)
        } else {
            MatRef::rows(&av, k)
        };
        let b = if tb {
            MatRef::cols(&bv, k)
        } else {
            MatRef::rows(&bv, n)
        };
        let tk = if isa().is_some() {
            best(|| sgemm(m, n, k, a, b, &mut c, n, false, true))
        } else {
            f64::NAN
        };
        println!(
            "{label:<36} candle {:>6.1} GFLOP/s   k2 {:>6.1} GFLOP/s   {:>5.2}x",
            flops / tc / 1e9,
            flops / tk / 1e9,
            tc / tk
        );
    }
}
