//! K2's learning-rate schedule (Megatron `optimizer_param_scheduler`): linear warmup from 0 to the
//! peak over `warmup` steps, then cosine from the peak to `min` at the last step, `min` after.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub peak: f64,
    pub min: f64,
    pub warmup: u64,
    pub total: u64,
}

impl Schedule {
    /// Learning rate of optimizer step `step` (1-based: the first update uses `lr(1)`).
    pub fn lr(&self, step: u64) -> f64 {
        if self.warmup > 0 && step <= self.warmup {
            return self.peak * step as f64 / self.warmup as f64;
        }
        if step >= self.total || self.total <= self.warmup {
            return self.min;
        }
        let progress = (step - self.warmup) as f64 / (self.total - self.warmup) as f64;
        self.min + (self.peak - self.min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k2_schedule_endpoints() {
        // K2: warmup 2000 to 1.5e-4, cosine to 1.5e-5 at 338,760.
        let s = Schedule {
            peak: 1.5e-4,
            min: 1.5e-5,
            warmup: 2000,
            total: 338_760,
        };
        assert_eq!(s.lr(1), 1.5e-4 / 2000.0);
        assert_eq!(s.lr(1000), 0.75e-4);
        assert!((s.lr(2000) - 1.5e-4).abs() < 1e-18);
        let mid = s.lr(2000 + (338_760 - 2000) / 2);
        assert!((mid - (1.5e-5 + 1.35e-4 / 2.0)).abs() < 1e-12);
        assert_eq!(s.lr(338_760), 1.5e-5);
        assert_eq!(s.lr(400_000), 1.5e-5);
        let mut prev = s.lr(2000);
        for t in (2001..338_760).step_by(997) {
            let l = s.lr(t);
            assert!(l <= prev);
            prev = l;
        }
    }
}
