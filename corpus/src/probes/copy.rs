//! `copy`: continue a copy (`copy: k q z r ->`) or periodic induction
//! (`seq: a b c a b c a`) sequence of fresh random letters; distractors swap
//! two symbols, substitute one, or shift the period.

use crate::probes::distractors;
use crate::rng::SplitMix64;
use crate::text::{distinct_letters, place_gold};

pub const CHOICES: usize = 4;

fn join(xs: &[char]) -> String {
    xs.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Corruptions of `target` (same length), built from `symbols` and `spare` letters.
fn corruptions(rng: &mut SplitMix64, target: &[char], spare: &[char]) -> Vec<String> {
    let n = target.len();
    let mut out = Vec::new();
    // Swap two positions (adjacent and random).
    for _ in 0..4 {
        let i = rng.index(n);
        let j = if rng.chance(50) {
            (i + 1) % n
        } else {
            rng.index(n)
        };
        let mut t = target.to_vec();
        t.swap(i, j);
        out.push(join(&t));
    }
    // Substitute one position with an unseen letter.
    for _ in 0..4 {
        let mut t = target.to_vec();
        t[rng.index(n)] = rng.pick(spare);
        out.push(join(&t));
    }
    // Rotate by one.
    let mut t = target.to_vec();
    t.rotate_left(1);
    out.push(join(&t));
    out
}

pub fn build(rng: &mut SplitMix64, gold: usize) -> (String, Vec<String>) {
    let letters = distinct_letters(rng, 12);
    let (syms, spare) = letters.split_at(7);
    let (context, target) = if rng.chance(70) {
        let n = rng.range(3, 7) as usize;
        let s = &syms[..n];
        (format!("copy: {} ->", join(s)), s.to_vec())
    } else {
        let period = rng.range(2, 4) as usize;
        let unit = &syms[..period];
        let shown = rng.range(period as u64 + 1, 2 * period as u64) as usize;
        let xs: Vec<char> = (0..shown).map(|i| unit[i % period]).collect();
        let cont: Vec<char> = (shown..shown + period).map(|i| unit[i % period]).collect();
        (format!("seq: {}", join(&xs)), cont)
    };
    let right = join(&target);
    let pool = corruptions(rng, &target, spare);
    let wrong = distractors(rng, &right, &pool, CHOICES - 1);
    (context, place_gold(right, wrong, gold))
}
