//! `code_brackets`: close the 2-3 brackets left open by a bracket sequence
//! (`brackets: ( [ ] { (` -> `) } )`), in the `code` source's exercise format.
//! Distractors are other closing sequences of the same length.

use crate::probes::distractors;
use crate::rng::SplitMix64;
use crate::sources::code::bracket_prefix;
use crate::text::place_gold;

pub const CHOICES: usize = 4;

fn all_closings(depth: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for s in &out {
            for c in [')', ']', '}'] {
                let mut t = s.clone();
                if !t.is_empty() {
                    t.push(' ');
                }
                t.push(c);
                next.push(t);
            }
        }
        out = next;
    }
    out
}

pub fn build(rng: &mut SplitMix64, gold: usize) -> (String, Vec<String>) {
    let depth = rng.range(2, 3) as usize;
    let steps = rng.range(2, 8);
    let (prefix, right) = bracket_prefix(rng, steps, depth);
    let pool = all_closings(depth);
    let wrong = distractors(rng, &right, &pool, CHOICES - 1);
    (
        format!("brackets: {prefix}"),
        place_gold(right, wrong, gold),
    )
}
