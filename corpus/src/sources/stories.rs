//! `stories` (domain web, stands in for refinedweb): short simple stories with
//! two characters, a place and an object, interleaved with subject-verb
//! agreement sentences whose subject and verb are separated by 0-2 phrases.

use crate::grammar::agreement;
use crate::rng::SplitMix64;
use crate::sources::STAGE1_CHARS;
use crate::text::{capitalize, COLOURS, FEELINGS, LANDMARKS, OBJECTS, PLACES, TIMES};
use crate::text::{fill, CHARACTERS};

struct Cast {
    a: (&'static str, &'static str, &'static str, &'static str),
    b: (&'static str, &'static str, &'static str, &'static str),
    place: &'static str,
    obj: &'static str,
    colour: &'static str,
}

fn opening(rng: &mut SplitMix64, c: &Cast) -> String {
    let (a, _, a_pos, a_noun) = c.a;
    let b = c.b.0;
    match rng.below(4) {
        0 => format!(
            "Once upon a time, there was a little {a_noun} named {a}. {a} had a friend named {b}."
        ),
        1 => format!(
            "One {}, {a} and {b} went to the {}.",
            rng.pick(TIMES),
            c.place
        ),
        2 => format!(
            "{a} lived in a small house near the {}. Every day {a} played with {a_pos} friend {b}.",
            c.place
        ),
        _ => format!(
            "This is a story about {a} and {b}. They liked to go to the {}.",
            c.place
        ),
    }
}

fn event(rng: &mut SplitMix64, c: &Cast) -> String {
    let (a, a_sub, a_pos, _) = c.a;
    let (b, b_sub, _, _) = c.b;
    let (obj, colour, place) = (c.obj, c.colour, c.place);
    match rng.below(13) {
        0 => format!("{a} saw a {colour} {obj} near the {}.", rng.pick(LANDMARKS)),
        1 => format!(
            "{} picked up the {obj} and showed it to {b}.",
            capitalize(a_sub)
        ),
        2 => format!("{b} said, \"What a nice {colour} {obj}!\""),
        3 => format!(
            "{a} was {} because {a_sub} lost {a_pos} {obj}.",
            rng.pick(FEELINGS)
        ),
        4 => format!("{b} helped {a} look for the {obj} in the {place}."),
        5 => format!("Then {a} and {b} walked to the {}.", rng.pick(PLACES)),
        6 => {
            let n = rng.range(2, 9) as usize;
            let (sg, pl) = rng.pick(&[
                ("bird", "birds"),
                ("dog", "dogs"),
                ("duck", "ducks"),
                ("tree", "trees"),
                ("cat", "cats"),
            ]);
            if rng.chance(50) {
                format!(
                    "There {} {} {pl} in the {place}.",
                    if rng.chance(50) { "are" } else { "were" },
                    crate::text::NUMBER_WORDS[n]
                )
            } else {
                format!(
                    "There {} one {sg} in the {place}.",
                    if rng.chance(50) { "is" } else { "was" }
                )
            }
        }
        7 => format!("{b} asked, \"{a}, where is the {obj}?\""),
        8 => format!(
            "{} felt {} and smiled at {a}.",
            capitalize(b_sub),
            rng.pick(FEELINGS)
        ),
        9 => format!("The {obj} was {colour} and very pretty."),
        _ => {
            // Agreement sentences are the most frequent event.
            let plural = rng.chance(50);
            agreement(rng, plural).sentence()
        }
    }
}

fn ending(rng: &mut SplitMix64, c: &Cast) -> String {
    let (a, _, _, _) = c.a;
    let (b, _, _, _) = c.b;
    match rng.below(4) {
        0 => format!("In the end, {a} and {b} were very happy."),
        1 => format!("They went home and had dinner. {a} said, \"Thank you, {b}!\""),
        2 => format!("{a} learned that friends help each other."),
        _ => "The end.".to_string(),
    }
}

pub fn generate(rng: &mut SplitMix64) -> String {
    let (_, max) = STAGE1_CHARS;
    let ai = rng.index(CHARACTERS.len());
    let mut bi = rng.index(CHARACTERS.len() - 1);
    if bi >= ai {
        bi += 1;
    }
    let cast = Cast {
        a: CHARACTERS[ai],
        b: CHARACTERS[bi],
        place: rng.pick(PLACES),
        obj: rng.pick(OBJECTS),
        colour: rng.pick(COLOURS),
    };
    let open = opening(rng, &cast);
    let end = ending(rng, &cast);
    // Leave room for the opening and the ending.
    let budget = max - open.len() - end.len() - 2;
    let middle = fill(rng, 150, 1000, budget, " ", |r| event(r, &cast));
    format!("{open} {middle} {end}")
}
