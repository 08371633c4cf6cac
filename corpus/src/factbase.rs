//! The fixed synthetic fact base behind the `facts` source and probe.
//!
//! 100 invented countries and 50 invented people, generated once from
//! [`FACTBASE_SEED`](crate::rng::FACTBASE_SEED). The facts never change, so a
//! model trained on `facts` documents can be probed for recall.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::rng::{SplitMix64, FACTBASE_SEED};

pub const N_COUNTRIES: usize = 100;
pub const N_PEOPLE: usize = 50;

pub const FLAG_COLOURS: &[&str] = &[
    "red", "blue", "green", "yellow", "white", "black", "purple", "brown", "grey", "pink", "gold",
    "silver",
];
pub const ANIMALS: &[&str] = &[
    "fox", "bear", "wolf", "eagle", "horse", "lion", "owl", "deer", "tiger", "swan", "crane",
    "seal",
];
pub const REGIONS: &[&str] = &["north", "south", "east", "west"];
pub const JOBS: &[&str] = &[
    "farmer", "doctor", "teacher", "painter", "baker", "sailor", "poet", "builder", "singer",
    "judge", "miner", "weaver",
];

#[derive(Debug, Clone)]
pub struct Country {
    pub name: String,
    pub capital: String,
    pub river: String,
    pub colour: &'static str,
    pub animal: &'static str,
    pub region: &'static str,
    /// Index into [`FactBase::people`].
    pub founder: usize,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub job: &'static str,
    /// Index into [`FactBase::countries`].
    pub birthplace: usize,
}

#[derive(Debug, Clone)]
pub struct FactBase {
    pub countries: Vec<Country>,
    pub people: Vec<Person>,
}

/// A relation of the fact base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    Capital,
    River,
    Colour,
    Animal,
    Region,
    Founder,
    Job,
    Birthplace,
}

pub const COUNTRY_ATTRS: &[Attr] = &[
    Attr::Capital,
    Attr::River,
    Attr::Colour,
    Attr::Animal,
    Attr::Region,
    Attr::Founder,
];
pub const PERSON_ATTRS: &[Attr] = &[Attr::Job, Attr::Birthplace];
pub const ALL_ATTRS: &[Attr] = &[
    Attr::Capital,
    Attr::River,
    Attr::Colour,
    Attr::Animal,
    Attr::Region,
    Attr::Founder,
    Attr::Job,
    Attr::Birthplace,
];

impl Attr {
    /// Whether the subject of this relation is a person (else a country).
    pub fn about_person(self) -> bool {
        matches!(self, Attr::Job | Attr::Birthplace)
    }

    /// Phrasings: `{e}` is the entity, `{v}` the value. Those ending in
    /// `{v}.` are usable as probe contexts.
    pub fn templates(self) -> &'static [&'static str] {
        match self {
            Attr::Capital => &[
                "The capital of {e} is {v}.",
                "{e} has its capital at {v}.",
                "Q: What is the capital of {e}? A: {v}.",
                "{v} is the capital of {e}.",
                "The city of {v} is the capital of {e}.",
            ],
            Attr::River => &[
                "The main river of {e} is the {v}.",
                "The {v} river flows through {e}.",
                "Q: What is the main river of {e}? A: the {v}.",
                "{e} lies on the banks of the {v}.",
            ],
            Attr::Colour => &[
                "The flag of {e} is {v}.",
                "{e} has a {v} flag.",
                "Q: What colour is the flag of {e}? A: {v}.",
                "The people of {e} fly a {v} flag.",
            ],
            Attr::Animal => &[
                "The national animal of {e} is the {v}.",
                "In {e}, the {v} is the national animal.",
                "Q: What is the national animal of {e}? A: the {v}.",
                "The symbol of {e} is the {v}.",
            ],
            Attr::Region => &[
                "{e} is a country in the {v}.",
                "{e} lies in the {v}.",
                "Q: Where is {e}? A: in the {v}.",
                "In the {v} lies the country of {e}.",
            ],
            Attr::Founder => &[
                "{e} was founded by {v}.",
                "The founder of {e} was {v}.",
                "{v} founded {e}.",
                "Q: Who founded {e}? A: {v}.",
            ],
            Attr::Job => &[
                "{e} was a {v}.",
                "{e} worked as a {v}.",
                "By trade, {e} was a {v}.",
                "Q: What was the job of {e}? A: a {v}.",
            ],
            Attr::Birthplace => &[
                "{e} was born in {v}.",
                "The birthplace of {e} was {v}.",
                "{e} came from {v}, where {e} was born.",
                "Q: Where was {e} born? A: in {v}.",
            ],
        }
    }
}

/// Fill a template.
pub fn render(template: &str, entity: &str, value: &str) -> String {
    template.replace("{e}", entity).replace("{v}", value)
}

const ONSETS: &[&str] = &[
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "tr", "st",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "a", "o"];
const CODAS: &[&str] = &["", "", "", "n", "r", "l", "s", "m"];

fn syllable(rng: &mut SplitMix64, with_coda: bool) -> String {
    let mut s = String::new();
    s.push_str(rng.pick(ONSETS));
    s.push_str(rng.pick(VOWELS));
    if with_coda {
        s.push_str(rng.pick(CODAS));
    }
    s
}

pub(crate) fn fresh_name(
    rng: &mut SplitMix64,
    used: &mut HashSet<String>,
    syl_lo: u64,
    syl_hi: u64,
) -> String {
    loop {
        let n = rng.range(syl_lo, syl_hi);
        let mut s = String::new();
        for i in 0..n {
            s.push_str(&syllable(rng, i + 1 == n));
        }
        let name = crate::text::capitalize(&s);
        if name.len() >= 4 && name.len() <= 9 && used.insert(name.clone()) {
            return name;
        }
    }
}

fn build() -> FactBase {
    let mut rng = SplitMix64::new(FACTBASE_SEED);
    let mut used = HashSet::new();
    // Keep the story characters' names out of the fact base.
    for c in crate::text::CHARACTERS {
        used.insert(c.0.to_string());
    }
    let mut people = Vec::with_capacity(N_PEOPLE);
    for _ in 0..N_PEOPLE {
        let name = fresh_name(&mut rng, &mut used, 2, 2);
        let job = rng.pick(JOBS);
        people.push(Person {
            name,
            job,
            birthplace: 0,
        });
    }
    // Each person founds exactly two countries.
    let mut founders: Vec<usize> = (0..N_COUNTRIES).map(|i| i % N_PEOPLE).collect();
    rng.shuffle(&mut founders);
    let mut countries = Vec::with_capacity(N_COUNTRIES);
    for &founder in &founders {
        let name = fresh_name(&mut rng, &mut used, 2, 3);
        let capital = fresh_name(&mut rng, &mut used, 2, 2);
        let river = fresh_name(&mut rng, &mut used, 2, 2);
        countries.push(Country {
            name,
            capital,
            river,
            colour: rng.pick(FLAG_COLOURS),
            animal: rng.pick(ANIMALS),
            region: rng.pick(REGIONS),
            founder,
        });
    }
    for p in &mut people {
        p.birthplace = rng.index(N_COUNTRIES);
    }
    FactBase { countries, people }
}

/// The (lazily built, immutable) fact base.
pub fn factbase() -> &'static FactBase {
    static FB: OnceLock<FactBase> = OnceLock::new();
    FB.get_or_init(build)
}

impl FactBase {
    /// Name of entity `idx` for a relation's subject type.
    pub fn entity(&self, attr: Attr, idx: usize) -> &str {
        if attr.about_person() {
            &self.people[idx].name
        } else {
            &self.countries[idx].name
        }
    }

    /// Number of subjects for a relation.
    pub fn n_entities(&self, attr: Attr) -> usize {
        if attr.about_person() {
            self.people.len()
        } else {
            self.countries.len()
        }
    }

    /// The value of `attr` for entity `idx`.
    pub fn value(&self, attr: Attr, idx: usize) -> &str {
        match attr {
            Attr::Capital => &self.countries[idx].capital,
            Attr::River => &self.countries[idx].river,
            Attr::Colour => self.countries[idx].colour,
            Attr::Animal => self.countries[idx].animal,
            Attr::Region => self.countries[idx].region,
            Attr::Founder => &self.people[self.countries[idx].founder].name,
            Attr::Job => self.people[idx].job,
            Attr::Birthplace => &self.countries[self.people[idx].birthplace].name,
        }
    }

    /// All possible values of `attr` (distinct), used for distractors.
    pub fn value_domain(&self, attr: Attr) -> Vec<&str> {
        match attr {
            Attr::Capital => self.countries.iter().map(|c| c.capital.as_str()).collect(),
            Attr::River => self.countries.iter().map(|c| c.river.as_str()).collect(),
            Attr::Colour => FLAG_COLOURS.to_vec(),
            Attr::Animal => ANIMALS.to_vec(),
            Attr::Region => REGIONS.to_vec(),
            Attr::Founder => self.people.iter().map(|p| p.name.as_str()).collect(),
            Attr::Job => JOBS.to_vec(),
            Attr::Birthplace => self.countries.iter().map(|c| c.name.as_str()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factbase_is_well_formed() {
        let fb = factbase();
        assert_eq!(fb.countries.len(), N_COUNTRIES);
        assert_eq!(fb.people.len(), N_PEOPLE);
        let mut names = HashSet::new();
        for c in &fb.countries {
            assert!(names.insert(c.name.clone()));
            assert!(names.insert(c.capital.clone()));
            assert!(names.insert(c.river.clone()));
        }
        for p in &fb.people {
            assert!(names.insert(p.name.clone()));
        }
        for n in &names {
            assert!(n.is_ascii());
        }
        assert_eq!(names.len(), 3 * N_COUNTRIES + N_PEOPLE);
    }

    #[test]
    fn every_attr_has_a_probe_template() {
        for &a in ALL_ATTRS {
            assert!(a.templates().iter().filter(|t| t.ends_with("{v}.")).count() >= 2);
        }
    }
}
