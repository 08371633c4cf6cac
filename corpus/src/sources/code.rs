//! `code` (domain code, stands in for starcoder, repeated 0.5x): tiny
//! python-like functions with consistent variable reuse, plus exercise lines
//! for bracket matching (`brackets: ( [ ] { } )`) and copying/induction
//! (`copy: k q z -> k q z`, `seq: a b c a b c a b`).

use crate::rng::SplitMix64;
use crate::sources::STAGE1_CHARS;
use crate::text::{distinct_letters, fill};

pub const VERBS: &[&str] = &[
    "sum", "count", "find", "scale", "check", "merge", "total", "pick", "clean", "load", "shift",
    "keep",
];
pub const NOUNS: &[&str] = &[
    "items", "values", "scores", "names", "points", "words", "nums", "rows", "costs", "ages",
];
pub const LOOP_VARS: &[&str] = &["x", "item", "v", "n", "s", "row", "k"];
pub const ACCS: &[&str] = &["total", "result", "best", "count", "out", "acc", "res"];

const OPEN: [char; 3] = ['(', '[', '{'];

pub fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

fn join(xs: &[char]) -> String {
    let mut s = String::with_capacity(xs.len() * 2);
    for (i, c) in xs.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push(*c);
    }
    s
}

/// A random bracket prefix of about `steps` symbols that leaves exactly
/// `depth` brackets open. Returns `(prefix, closing sequence)`, space-joined.
pub fn bracket_prefix(rng: &mut SplitMix64, steps: u64, depth: usize) -> (String, String) {
    let mut seq = Vec::new();
    let mut stack: Vec<char> = Vec::new();
    for _ in 0..steps {
        if stack.is_empty() || (stack.len() < 4 && rng.chance(55)) {
            let o = rng.pick(&OPEN);
            stack.push(o);
            seq.push(o);
        } else {
            seq.push(closer(stack.pop().unwrap_or('(')));
        }
    }
    while stack.len() > depth {
        seq.push(closer(stack.pop().unwrap_or('(')));
    }
    while stack.len() < depth {
        let o = rng.pick(&OPEN);
        stack.push(o);
        seq.push(o);
    }
    let closing: Vec<char> = stack.iter().rev().map(|&o| closer(o)).collect();
    (join(&seq), join(&closing))
}

/// `brackets: ( [ ] { } )`: a balanced sequence.
pub fn brackets_line(rng: &mut SplitMix64) -> String {
    let steps = rng.range(2, 10);
    let depth = rng.range(1, 4) as usize;
    let (prefix, closing) = bracket_prefix(rng, steps, depth);
    format!("brackets: {prefix} {closing}")
}

/// `copy: k q z -> k q z` with distinct random letters.
pub fn copy_line(rng: &mut SplitMix64) -> String {
    let n = rng.range(2, 8) as usize;
    let s = join(&distinct_letters(rng, n));
    format!("copy: {s} -> {s}")
}

/// `seq: a b c a b c a b`: a repeated random period.
pub fn seq_line(rng: &mut SplitMix64) -> String {
    let period = rng.range(2, 4) as usize;
    let unit = distinct_letters(rng, period);
    let total = rng.range(2 * period as u64 + 1, 14) as usize;
    let xs: Vec<char> = (0..total).map(|i| unit[i % period]).collect();
    format!("seq: {}", join(&xs))
}

fn exercises(rng: &mut SplitMix64) -> String {
    let n = rng.range(2, 5);
    let mut lines = vec!["# exercises".to_string()];
    for _ in 0..n {
        lines.push(match rng.below(5) {
            0 | 1 => copy_line(rng),
            2 => seq_line(rng),
            _ => brackets_line(rng),
        });
    }
    lines.join("\n")
}

/// Names used consistently inside one function.
pub struct Names {
    pub func: String,
    pub xs: &'static str,
    pub x: &'static str,
    pub acc: &'static str,
    pub k: u64,
}

pub fn names(rng: &mut SplitMix64) -> Names {
    let xs = rng.pick(NOUNS);
    Names {
        func: format!("{}_{}", rng.pick(VERBS), xs),
        xs,
        x: rng.pick(LOOP_VARS),
        acc: rng.pick(ACCS),
        k: rng.range(2, 9),
    }
}

/// One small python-like function (or statement block).
pub fn function(rng: &mut SplitMix64) -> String {
    let Names {
        func: f,
        xs,
        x,
        acc,
        k,
    } = names(rng);
    match rng.below(8) {
        0 => format!(
            "def {f}({xs}):\n    {acc} = 0\n    for {x} in {xs}:\n        {acc} = {acc} + {x}\n    return {acc}"
        ),
        1 => format!(
            "def {f}({xs}):\n    {acc} = {xs}[0]\n    for {x} in {xs}:\n        if {x} > {acc}:\n            {acc} = {x}\n    return {acc}"
        ),
        2 => format!(
            "def {f}({xs}, target):\n    {acc} = 0\n    for {x} in {xs}:\n        if {x} == target:\n            {acc} = {acc} + 1\n    return {acc}"
        ),
        3 => format!("def {f}(a, b):\n    return (a + b) * {k}"),
        4 => format!(
            "def {f}({xs}):\n    {acc} = []\n    for {x} in {xs}:\n        {acc}.append({x} * {k})\n    return {acc}"
        ),
        5 => format!(
            "{xs} = [{}, {}, {}]\nprint({f}({xs}))",
            rng.range(0, 99),
            rng.range(0, 99),
            rng.range(0, 99)
        ),
        6 => format!(
            "{acc} = {{\"{xs}\": [{}, {}], \"size\": len({xs})}}",
            rng.range(0, 9),
            rng.range(0, 9)
        ),
        _ => format!(
            "def {f}({xs}):\n    if len({xs}) == 0:\n        return None\n    return {xs}[len({xs}) - 1]"
        ),
    }
}

pub fn generate(rng: &mut SplitMix64) -> String {
    let (_, max) = STAGE1_CHARS;
    fill(rng, 250, 1200, max, "\n\n", |r| {
        if r.chance(35) {
            exercises(r)
        } else {
            function(r)
        }
    })
}
