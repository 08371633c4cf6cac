//! Shared vocabulary and small text helpers used by several sources and probes.

use crate::rng::SplitMix64;

/// Story characters: (name, subject pronoun, possessive pronoun, noun).
pub const CHARACTERS: &[(&str, &str, &str, &str)] = &[
    ("Mia", "she", "her", "girl"),
    ("Tom", "he", "his", "boy"),
    ("Lily", "she", "her", "girl"),
    ("Ben", "he", "his", "boy"),
    ("Anna", "she", "her", "girl"),
    ("Sam", "he", "his", "boy"),
    ("Lucy", "she", "her", "girl"),
    ("Max", "he", "his", "boy"),
    ("Emma", "she", "her", "girl"),
    ("Jack", "he", "his", "boy"),
    ("Zoe", "she", "her", "girl"),
    ("Leo", "he", "his", "boy"),
];

pub const PLACES: &[&str] = &[
    "park", "forest", "garden", "beach", "school", "market", "farm", "village", "hill", "lake",
];

pub const LANDMARKS: &[&str] = &[
    "big tree",
    "old bridge",
    "red door",
    "small pond",
    "tall fence",
    "stone wall",
    "green bench",
];

pub const OBJECTS: &[&str] = &[
    "ball", "kite", "book", "box", "key", "hat", "cup", "apple", "flower", "stone", "drum", "map",
];

pub const COLOURS: &[&str] = &[
    "red", "blue", "green", "yellow", "white", "black", "pink", "brown",
];

pub const FEELINGS: &[&str] = &[
    "happy", "sad", "tired", "scared", "excited", "angry", "proud",
];

pub const TIMES: &[&str] = &["morning", "afternoon", "evening", "day", "night"];

pub const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// Upper-case the first ASCII letter.
pub fn capitalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut done = false;
    for c in s.chars() {
        if !done && c.is_ascii_alphabetic() {
            out.push(c.to_ascii_uppercase());
            done = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// `n` distinct lowercase letters.
pub fn distinct_letters(rng: &mut SplitMix64, n: usize) -> Vec<char> {
    let mut all: Vec<char> = ('a'..='z').collect();
    rng.shuffle(&mut all);
    all.truncate(n);
    all
}

/// Join the units produced by `unit` with `sep` until the text reaches a
/// random target length in `target_lo..=target_hi`, never exceeding `max`.
///
/// Every unit must be much shorter than `max - target_lo`; units that would
/// overflow `max` are skipped and a new one is drawn.
pub fn fill(
    rng: &mut SplitMix64,
    target_lo: usize,
    target_hi: usize,
    max: usize,
    sep: &str,
    mut unit: impl FnMut(&mut SplitMix64) -> String,
) -> String {
    let target = rng.range(target_lo as u64, target_hi as u64) as usize;
    let mut out = String::new();
    let mut tries = 0;
    while out.len() < target {
        let u = unit(rng);
        let extra = if out.is_empty() { 0 } else { sep.len() };
        if out.len() + extra + u.len() > max {
            tries += 1;
            assert!(tries < 1000, "fill: units too long for max {max}");
            continue;
        }
        if !out.is_empty() {
            out.push_str(sep);
        }
        out.push_str(&u);
    }
    out
}

/// Put `gold` at position `gold_pos` among `distractors` (already in a random
/// order), returning the choice list.
pub fn place_gold(gold: String, distractors: Vec<String>, gold_pos: usize) -> Vec<String> {
    let mut choices = distractors;
    choices.insert(gold_pos, gold);
    choices
}
