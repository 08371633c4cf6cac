//! `arithmetic` (domain math, stands in for dm-math, repeated 3x): lines of
//! one- and two-digit additions and subtractions in a few fixed formats,
//! several per document. Held-out operand pairs ([`crate::arith`]) never appear.

use crate::arith::{draw, Op};
use crate::rng::SplitMix64;
use crate::sources::STAGE1_CHARS;
use crate::text::{capitalize, fill, NUMBER_WORDS};

/// One arithmetic statement in a random format.
pub fn line(rng: &mut SplitMix64) -> String {
    let (op, a, b) = draw(rng, false);
    let c = op.apply(a, b);
    let s = op.symbol();
    let w = op.word();
    match rng.below(10) {
        0..=4 => format!("{a} {s} {b} = {c}."),
        5 | 6 => format!("What is {a} {w} {b}? The answer is {c}."),
        7 => {
            if a <= 20 && b <= 20 && c <= 20 {
                format!(
                    "{} {w} {} is {}.",
                    capitalize(NUMBER_WORDS[a as usize]),
                    NUMBER_WORDS[b as usize],
                    NUMBER_WORDS[c as usize]
                )
            } else {
                format!("{a} {s} {b} = {c}.")
            }
        }
        8 => match op {
            Op::Add => format!("Add {a} and {b} to get {c}."),
            Op::Sub => format!("Take {b} from {a} to get {c}."),
        },
        _ => format!("Q: {a} {s} {b} = ? A: {c}."),
    }
}

pub fn generate(rng: &mut SplitMix64) -> String {
    let (_, max) = STAGE1_CHARS;
    let header = match rng.below(4) {
        0 => format!("Exercise set {}.\n", rng.range(1, 99)),
        1 => "Practice:\n".to_string(),
        _ => String::new(),
    };
    let body = fill(rng, 220, 1100, max - header.len(), "\n", line);
    format!("{header}{body}")
}
