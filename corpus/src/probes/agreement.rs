//! `agreement`: pick the verb form that agrees with the subject
//! ("The dogs near the old tree" -> "are" / "is"), with 0-2 intervening
//! phrases and attractor nouns of the opposite number. Same constructions as
//! the `stories` source; fresh random draws.

use crate::grammar::agreement;
use crate::rng::SplitMix64;
use crate::text::place_gold;

pub const CHOICES: usize = 2;

pub fn build(rng: &mut SplitMix64, gold: usize) -> (String, Vec<String>) {
    let plural = rng.chance(50);
    let a = agreement(rng, plural);
    let choices = place_gold(a.correct.to_string(), vec![a.wrong.to_string()], gold);
    (a.prefix, choices)
}
