//! Held-out capability probes; one module per task.
//!
//! Every probe is a pure function of `(task, id)` with its PRNG seeded in
//! [`PROBE_DOMAIN`](crate::rng::PROBE_DOMAIN), disjoint from the documents'.
//! The gold position is `id % num_choices`, so golds are exactly balanced.

pub mod agreement;
pub mod arithmetic;
pub mod code_brackets;
pub mod copy;
pub mod facts;

use crate::rng::{SplitMix64, PROBE_DOMAIN};
use crate::Probe;

pub const TASKS: &[&str] = &["agreement", "arithmetic", "facts", "copy", "code_brackets"];

pub fn num_choices(task: &str) -> Option<usize> {
    Some(match task {
        "agreement" => agreement::CHOICES,
        "arithmetic" => arithmetic::CHOICES,
        "facts" => facts::CHOICES,
        "copy" => copy::CHOICES,
        "code_brackets" => code_brackets::CHOICES,
        _ => return None,
    })
}

type Build = fn(&mut SplitMix64, usize) -> (String, Vec<String>);

/// The generator of probe `id` for `task`.
pub fn generator(task: &str) -> Option<impl Fn(u64) -> Probe> {
    let build: Build = match task {
        "agreement" => agreement::build,
        "arithmetic" => arithmetic::build,
        "facts" => facts::build,
        "copy" => copy::build,
        "code_brackets" => code_brackets::build,
        _ => return None,
    };
    let k = num_choices(task)?;
    let name = TASKS.iter().find(|t| **t == task).copied()?;
    Some(move |id: u64| {
        let mut rng = SplitMix64::for_item(PROBE_DOMAIN, name, id);
        let gold = (id % k as u64) as usize;
        let (context, choices) = build(&mut rng, gold);
        debug_assert_eq!(choices.len(), k);
        Probe {
            id,
            context,
            choices,
            gold,
        }
    })
}

/// Draw `k` distinct items from `pool` that differ from `gold`, in random order.
pub(crate) fn distractors(
    rng: &mut SplitMix64,
    gold: &str,
    pool: &[String],
    k: usize,
) -> Vec<String> {
    let mut cands: Vec<String> = Vec::new();
    for p in pool {
        if p != gold && !cands.contains(p) {
            cands.push(p.clone());
        }
    }
    assert!(cands.len() >= k, "not enough distractors for {gold:?}");
    rng.shuffle(&mut cands);
    cands.truncate(k);
    cands
}
