//! Subject-verb agreement sentences, shared by the `stories` source and the
//! `agreement` probe so both use exactly the same constructions.

use crate::rng::SplitMix64;
use crate::text::CHARACTERS;

/// Animate nouns (singular, plural).
const ANIMATE: &[(&str, &str)] = &[
    ("dog", "dogs"),
    ("cat", "cats"),
    ("bird", "birds"),
    ("boy", "boys"),
    ("girl", "girls"),
    ("friend", "friends"),
    ("teacher", "teachers"),
    ("farmer", "farmers"),
    ("horse", "horses"),
    ("rabbit", "rabbits"),
];

/// Inanimate nouns (singular, plural).
const THINGS: &[(&str, &str)] = &[
    ("key", "keys"),
    ("box", "boxes"),
    ("book", "books"),
    ("cup", "cups"),
    ("ball", "balls"),
    ("hat", "hats"),
    ("flower", "flowers"),
    ("stone", "stones"),
];

/// Attractor locations (singular, plural).
const ATTRACTORS: &[(&str, &str)] = &[
    ("tree", "trees"),
    ("house", "houses"),
    ("table", "tables"),
    ("window", "windows"),
    ("box", "boxes"),
    ("door", "doors"),
    ("wall", "walls"),
    ("boat", "boats"),
];

const PREPS: &[&str] = &["near", "behind", "under", "next to", "by", "beside"];
const MOD_ADJ: &[&str] = &["old", "big", "small", "green", "red"];
const ANIMATE_ADJ: &[&str] = &[
    "happy", "hungry", "tired", "sleepy", "kind", "loud", "brave",
];
const THING_ADJ: &[&str] = &[
    "red", "old", "new", "heavy", "small", "big", "clean", "broken",
];
const HAVE_OBJ: &[&str] = &[
    "a ball", "a bone", "a hat", "a toy", "a home", "a friend", "a bell",
];
const ACTIONS: &[&str] = &[
    "sleeping", "playing", "waiting", "singing", "running", "eating",
];

/// One agreement sentence split at the verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// Subject noun phrase, possibly with intervening material ("The dogs near the old tree").
    pub prefix: String,
    /// The agreeing verb form ("are").
    pub correct: &'static str,
    /// The other number's verb form ("is").
    pub wrong: &'static str,
    /// The rest of the sentence without final period ("happy").
    pub rest: String,
}

impl Agreement {
    pub fn sentence(&self) -> String {
        format!("{} {} {}.", self.prefix, self.correct, self.rest)
    }
}

fn noun(pair: (&'static str, &'static str), plural: bool) -> &'static str {
    if plural {
        pair.1
    } else {
        pair.0
    }
}

/// Generate one agreement sentence. `plural` fixes the subject's number.
pub fn agreement(rng: &mut SplitMix64, plural: bool) -> Agreement {
    let animate = rng.chance(60);
    let subj = if animate {
        rng.pick(ANIMATE)
    } else {
        rng.pick(THINGS)
    };
    let mut prefix = String::from("The ");
    if rng.chance(30) {
        let adj = if animate {
            rng.pick(&["little", "big", "old", "young"])
        } else {
            rng.pick(&["little", "big", "old", "blue"])
        };
        prefix.push_str(adj);
        prefix.push(' ');
    }
    prefix.push_str(noun(subj, plural));

    // Intervening material: 0 = none, 1 = PP, 2 = relative clause, 3 = PP + relative clause.
    let kind = rng.below(4);
    if kind == 1 || kind == 3 {
        // Attractor of the opposite number most of the time.
        let att_plural = if rng.chance(75) { !plural } else { plural };
        let att = noun(rng.pick(ATTRACTORS), att_plural);
        prefix.push(' ');
        prefix.push_str(rng.pick(PREPS));
        prefix.push_str(" the ");
        if rng.chance(40) {
            prefix.push_str(rng.pick(MOD_ADJ));
            prefix.push(' ');
        }
        prefix.push_str(att);
    }
    if kind >= 2 {
        prefix.push_str(" that ");
        if rng.chance(50) {
            let who = rng.pick(CHARACTERS).0;
            prefix.push_str(who);
            prefix.push(' ');
            prefix.push_str(rng.pick(&["saw", "found", "liked", "wanted", "drew"]));
        } else {
            let att_plural = if rng.chance(75) { !plural } else { plural };
            let who = noun(rng.pick(ANIMATE), att_plural);
            prefix.push_str("the ");
            prefix.push_str(who);
            prefix.push(' ');
            prefix.push_str(rng.pick(&["saw", "found", "liked", "wanted", "chased"]));
        }
        if rng.chance(40) {
            prefix.push(' ');
            prefix.push_str(rng.pick(&["yesterday", "last week", "at school", "in the park"]));
        }
    }

    // Verb: be (present/past) or have.
    let verb_kind = if animate { rng.below(4) } else { rng.below(2) };
    let adj = |rng: &mut SplitMix64| {
        if animate {
            rng.pick(ANIMATE_ADJ).to_string()
        } else {
            rng.pick(THING_ADJ).to_string()
        }
    };
    let (sg, pl, rest): (&'static str, &'static str, String) = match verb_kind {
        0 => ("is", "are", adj(rng)),
        1 => ("was", "were", adj(rng)),
        2 => ("has", "have", rng.pick(HAVE_OBJ).to_string()),
        _ => {
            let action = rng.pick(ACTIONS).to_string();
            if rng.chance(50) {
                ("is", "are", action)
            } else {
                ("was", "were", action)
            }
        }
    };
    let (correct, wrong) = if plural { (pl, sg) } else { (sg, pl) };
    Agreement {
        prefix,
        correct,
        wrong,
        rest,
    }
}
