//! How many threads candle's CPU kernels use.

/// Makes candle's CPU matrix products use `n` threads (they read `RAYON_NUM_THREADS` per call).
pub fn set_threads(n: usize) {
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
}
