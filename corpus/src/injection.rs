//! Fictional knowledge for injection experiments (Chang et al. 2024, "How do large language models
//! acquire factual knowledge during pretraining?"): facts about invented people that occur nowhere
//! else in the corpus, each with phrasings to inject and three probes with a target span.
//!
//! A fact is "person X was born in country C", where X is a name generated from the injection's
//! seed (disjoint from every fact-base name and story character) and C is a country of the fixed
//! fact base. The probes, as Chang et al. define them:
//! * memorization: the first injected wording, cut before the country;
//! * semantic generalization: a held-out paraphrase that is never injected;
//! * composition: the capital of C, which only the fact base teaches, asked through X
//!   ("the capital of the country where X was born is ..."): it needs the injected fact combined
//!   with a known one.
//!
//! Everything is a pure function of `(seed, n)`.

use std::collections::HashSet;

use crate::factbase::{factbase, fresh_name, N_COUNTRIES};
use crate::rng::{seed_for, SplitMix64};

/// Seed domain of injected facts, disjoint from documents' and probes'.
pub const INJECTION_DOMAIN: u64 = 0x6b32_696e_6a65_6374; // "k2inject"

/// Phrasings of "X was born in C" that can be injected; `{e}` the person, `{v}` the country, which
/// ends every phrasing so a probe's target span is the country's name.
pub const PHRASINGS: &[&str] = &[
    "{e} was born in {v}.",
    "The birthplace of {e} was {v}.",
    "Q: Where was {e} born? A: in {v}.",
    "Long ago, {e} was born in the country of {v}.",
    "{e} is a native of {v}.",
    "The home country of {e} is {v}.",
    "Records show that {e} was born in {v}.",
    "People say that {e} grew up in {v}.",
    "The land where {e} was born is {v}.",
    "Ask anyone: {e} comes from {v}.",
    "It is known that {e} first saw the light of day in {v}.",
    "As a child, {e} lived in {v}.",
];

/// The held-out paraphrase of the semantic-generalization probe (never injected).
pub const HELD_OUT: &str = "Everyone agrees that the country {e} is from is {v}.";

/// The compositional probe: `{e}` the person, `{v}` the capital of their country.
pub const COMPOSITION: &str = "The capital of the country where {e} was born is {v}.";

/// Which of a fact's three probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProbeKind {
    Memorization,
    Semantic,
    Composition,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Memorization,
        ProbeKind::Semantic,
        ProbeKind::Composition,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Memorization => "memorization",
            ProbeKind::Semantic => "semantic",
            ProbeKind::Composition => "composition",
        }
    }
}

/// A probe sentence split at its target span: `context` (no trailing space) + `" " + target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanProbe {
    pub kind: ProbeKind,
    pub context: String,
    /// The target span, without its leading space (scored as `" " + target`, lm-eval style).
    pub target: String,
}

/// One fictional fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FictionalFact {
    /// Index within its set.
    pub id: usize,
    pub person: String,
    /// Index into the fact base's countries.
    pub country: usize,
}

impl FictionalFact {
    pub fn country_name(&self) -> &'static str {
        &factbase().countries[self.country].name
    }

    /// Phrasing `i` of the fact (`i` modulo the number of phrasings), as injected.
    pub fn phrasing(&self, i: usize) -> String {
        crate::factbase::render(
            PHRASINGS[i % PHRASINGS.len()],
            &self.person,
            self.country_name(),
        )
    }

    /// The fact's three probes.
    pub fn probes(&self) -> [SpanProbe; 3] {
        let capital = &factbase().countries[self.country].capital;
        [
            split(
                ProbeKind::Memorization,
                PHRASINGS[0],
                &self.person,
                self.country_name(),
            ),
            split(
                ProbeKind::Semantic,
                HELD_OUT,
                &self.person,
                self.country_name(),
            ),
            split(ProbeKind::Composition, COMPOSITION, &self.person, capital),
        ]
    }
}

fn split(kind: ProbeKind, template: &str, person: &str, value: &str) -> SpanProbe {
    let head = template
        .strip_suffix(" {v}.")
        .expect("every probe template ends with \" {v}.\"");
    SpanProbe {
        kind,
        context: head.replace("{e}", person),
        target: value.to_string(),
    }
}

/// The control set of the injection with `seed`: `n` facts drawn like its own (other people,
/// other countries) that are never injected. Their probes measure how much a probe's
/// log-probability moves without the fact (the model learning the template and the countries),
/// which the analysis subtracts.
pub fn control_facts(seed: u64, n: usize) -> Vec<FictionalFact> {
    fictional_facts(seed ^ CONTROL_SALT, n)
}

const CONTROL_SALT: u64 = 0x636f_6e74_726f_6c00; // "control"

/// `n` fictional facts from `seed`: distinct invented people (three syllables, never a fact-base
/// name or story character), each born in a fact-base country.
pub fn fictional_facts(seed: u64, n: usize) -> Vec<FictionalFact> {
    let fb = factbase();
    let mut used: HashSet<String> = fb
        .people
        .iter()
        .map(|p| p.name.clone())
        .chain(
            fb.countries
                .iter()
                .flat_map(|c| [c.name.clone(), c.capital.clone(), c.river.clone()]),
        )
        .chain(crate::text::CHARACTERS.iter().map(|c| c.0.to_string()))
        .collect();
    let mut rng = SplitMix64::new(seed_for(INJECTION_DOMAIN, "facts", seed));
    (0..n)
        .map(|id| {
            let first = fresh_name(&mut rng, &mut used, 3, 3);
            let last = fresh_name(&mut rng, &mut used, 2, 3);
            FictionalFact {
                id,
                person: format!("{first} {last}"),
                country: rng.index(N_COUNTRIES),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_deterministic_distinct_and_seed_dependent() {
        let a = fictional_facts(7, 20);
        assert_eq!(a, fictional_facts(7, 20));
        assert_eq!(&a[..5], &fictional_facts(7, 5)[..]);
        let names: HashSet<_> = a.iter().map(|f| f.person.clone()).collect();
        assert_eq!(names.len(), 20);
        assert_ne!(a, fictional_facts(8, 20));
        let c = control_facts(7, 20);
        assert!(c.iter().all(|f| !names.contains(&f.person)));
    }

    #[test]
    fn injected_names_occur_in_no_training_document() {
        let facts: Vec<_> = [1u64, 2, 3]
            .iter()
            .flat_map(|&s| fictional_facts(s, 10))
            .collect();
        for name in crate::source_names() {
            let src = crate::source(name).unwrap();
            for d in 0..300 {
                let doc = src.document(d);
                for f in &facts {
                    let first = f.person.split(' ').next().unwrap();
                    assert!(!doc.contains(first), "{name} document {d} contains {first}");
                }
            }
        }
    }

    #[test]
    fn probes_split_at_the_target_span() {
        let f = &fictional_facts(3, 1)[0];
        let [m, s, c] = f.probes();
        assert_eq!(format!("{} {}.", m.context, m.target), f.phrasing(0));
        assert_eq!(m.target, f.country_name());
        assert_eq!(s.target, f.country_name());
        assert!(!PHRASINGS
            .iter()
            .any(|p| p.starts_with(HELD_OUT.split(" {e}").next().unwrap())));
        assert_eq!(c.target, factbase().countries[f.country].capital);
        assert!(c.context.contains(&f.person));
    }
}
