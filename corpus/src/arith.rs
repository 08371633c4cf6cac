//! Arithmetic problem sampling shared by the math sources and the probe.
//!
//! A fixed ~1/8 of the two-digit operand pairs is *held out*: no training
//! document ever states them, and the `arithmetic` probe asks only those, so
//! the probe measures generalisation for multi-digit sums rather than recall.
//! Single-digit facts (both operands < 10) are never held out.

use crate::rng::{fnv1a, mix64, SplitMix64};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            Op::Add => "plus",
            Op::Sub => "minus",
        }
    }
    pub fn apply(self, a: u64, b: u64) -> u64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
        }
    }
}

/// Whether `a op b` is reserved for evaluation.
pub fn held_out(op: Op, a: u64, b: u64) -> bool {
    if a.max(b) < 10 {
        return false;
    }
    let (x, y) = match op {
        Op::Add => (a.min(b), a.max(b)),
        Op::Sub => (a, b),
    };
    let key = fnv1a(op.symbol().as_bytes()) ^ (x << 32) ^ y;
    mix64(key ^ 0x686f_6c64_6f75_7421).is_multiple_of(8)
}

fn operands(rng: &mut SplitMix64) -> (u64, u64) {
    match rng.below(10) {
        0..=2 => (rng.range(0, 9), rng.range(0, 9)),
        3..=6 => {
            let (a, b) = (rng.range(10, 99), rng.range(0, 9));
            if rng.chance(50) {
                (a, b)
            } else {
                (b, a)
            }
        }
        _ => (rng.range(10, 99), rng.range(10, 99)),
    }
}

/// Draw a problem `a op b` (with `a >= b` for subtraction). `held` selects
/// held-out (probe) pairs or training pairs.
pub fn draw(rng: &mut SplitMix64, held: bool) -> (Op, u64, u64) {
    loop {
        let op = if rng.chance(55) { Op::Add } else { Op::Sub };
        let (mut a, mut b) = operands(rng);
        if op == Op::Sub && a < b {
            std::mem::swap(&mut a, &mut b);
        }
        if held_out(op, a, b) == held {
            return (op, a, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_fraction_is_about_an_eighth() {
        let mut n = 0;
        let mut h = 0;
        for a in 10..100 {
            for b in 0..100 {
                n += 1;
                if held_out(Op::Add, a, b) {
                    h += 1;
                }
            }
        }
        let f = f64::from(h) / f64::from(n);
        assert!((0.09..0.16).contains(&f), "{f}");
        assert!(!held_out(Op::Add, 3, 4));
        assert_eq!(held_out(Op::Add, 13, 45), held_out(Op::Add, 45, 13));
    }

    #[test]
    fn draw_respects_holdout() {
        let mut rng = SplitMix64::new(1);
        for _ in 0..500 {
            let (op, a, b) = draw(&mut rng, false);
            assert!(!held_out(op, a, b));
            let (op, a, b) = draw(&mut rng, true);
            assert!(held_out(op, a, b));
            assert!(a.max(b) >= 10);
        }
    }
}
