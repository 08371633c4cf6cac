//! `facts`: recall an attribute of a fact-base entity, asked in a phrasing
//! the `facts` documents use ("The capital of Velora is" -> "Tarim"), against
//! three other values of the same attribute.

use crate::factbase::{factbase, ALL_ATTRS};
use crate::probes::distractors;
use crate::rng::SplitMix64;
use crate::text::place_gold;

pub const CHOICES: usize = 4;

pub fn build(rng: &mut SplitMix64, gold: usize) -> (String, Vec<String>) {
    let fb = factbase();
    let attr = rng.pick(ALL_ATTRS);
    let idx = rng.index(fb.n_entities(attr));
    let templates: Vec<&str> = attr
        .templates()
        .iter()
        .copied()
        .filter(|t| t.ends_with("{v}."))
        .collect();
    let t = rng.pick(&templates);
    let head = t.strip_suffix("{v}.").unwrap_or(t).trim_end();
    let context = head.replace("{e}", fb.entity(attr, idx));
    let right = fb.value(attr, idx).to_string();
    let pool: Vec<String> = fb
        .value_domain(attr)
        .into_iter()
        .map(str::to_string)
        .collect();
    let wrong = distractors(rng, &right, &pool, CHOICES - 1);
    (context, place_gold(right, wrong, gold))
}
