//! `arithmetic`: the result of a held-out one/two-digit addition or
//! subtraction, against distractors off by 1, 2, 9, 10 or 11.

use crate::arith::draw;
use crate::probes::distractors;
use crate::rng::SplitMix64;
use crate::text::place_gold;

pub const CHOICES: usize = 4;

pub fn build(rng: &mut SplitMix64, gold: usize) -> (String, Vec<String>) {
    let (op, a, b) = draw(rng, true);
    let c = op.apply(a, b) as i64;
    let s = op.symbol();
    let context = match rng.below(4) {
        0 => format!("What is {a} {} {b}? The answer is", op.word()),
        _ => format!("{a} {s} {b} ="),
    };
    let pool: Vec<String> = [1, -1, 10, -10, 2, -2, 11, -11, 9, -9]
        .iter()
        .map(|d| c + d)
        .filter(|&v| v >= 0)
        .map(|v| v.to_string())
        .collect();
    let right = c.to_string();
    let wrong = distractors(rng, &right, &pool, CHOICES - 1);
    (context, place_gold(right, wrong, gold))
}
