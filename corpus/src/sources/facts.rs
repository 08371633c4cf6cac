//! `facts` (domain wiki, stands in for redpajama.wikipedia, repeated 6x):
//! short encyclopedic paragraphs stating the fixed synthetic fact base
//! ([`crate::factbase`]) in varied phrasings.

use crate::factbase::{factbase, render, Attr, COUNTRY_ATTRS};
use crate::rng::SplitMix64;
use crate::sources::STAGE1_CHARS;
use crate::text::fill;

fn fact(rng: &mut SplitMix64, attr: Attr, idx: usize) -> String {
    let fb = factbase();
    let t = rng.pick(attr.templates());
    render(t, fb.entity(attr, idx), fb.value(attr, idx))
}

fn country_paragraph(rng: &mut SplitMix64) -> String {
    let fb = factbase();
    let idx = rng.index(fb.countries.len());
    let mut attrs: Vec<Attr> = COUNTRY_ATTRS.to_vec();
    rng.shuffle(&mut attrs);
    let k = rng.range(3, attrs.len() as u64) as usize;
    let mut parts = Vec::with_capacity(k + 1);
    let c = &fb.countries[idx];
    parts.push(format!("{} is a country in the {}.", c.name, c.region));
    for &a in attrs.iter().take(k) {
        if a == Attr::Region {
            continue;
        }
        parts.push(fact(rng, a, idx));
    }
    parts.join(" ")
}

fn person_paragraph(rng: &mut SplitMix64) -> String {
    let fb = factbase();
    let idx = rng.index(fb.people.len());
    let p = &fb.people[idx];
    let mut parts = vec![fact(rng, Attr::Job, idx), fact(rng, Attr::Birthplace, idx)];
    let founded: Vec<usize> = fb
        .countries
        .iter()
        .enumerate()
        .filter(|(_, c)| c.founder == idx)
        .map(|(i, _)| i)
        .collect();
    if rng.chance(50) && founded.len() == 2 {
        parts.push(format!(
            "{} founded {} and {}.",
            p.name, fb.countries[founded[0]].name, fb.countries[founded[1]].name
        ));
    } else {
        for &c in &founded {
            parts.push(fact(rng, Attr::Founder, c));
        }
    }
    rng.shuffle(&mut parts[1..]);
    parts.join(" ")
}

fn quick_facts(rng: &mut SplitMix64) -> String {
    let fb = factbase();
    let n = rng.range(3, 5);
    let mut lines = vec!["Quick facts:".to_string()];
    for _ in 0..n {
        let attr = rng.pick(crate::factbase::ALL_ATTRS);
        let idx = rng.index(fb.n_entities(attr));
        lines.push(format!("- {}", fact(rng, attr, idx)));
    }
    lines.join("\n")
}

pub fn generate(rng: &mut SplitMix64) -> String {
    let (_, max) = STAGE1_CHARS;
    fill(rng, 250, 1200, max, "\n\n", |r| match r.below(10) {
        0..=5 => country_paragraph(r),
        6..=7 => person_paragraph(r),
        _ => quick_facts(r),
    })
}
