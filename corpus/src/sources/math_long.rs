//! `math_long` (stage 2, domain math, stands in for open-web-math /
//! algebraic-stack): multi-step word problems with worked solutions, several
//! per document. Every step avoids the held-out operand pairs.

use crate::arith::{held_out, Op};
use crate::rng::SplitMix64;
use crate::sources::STAGE2_CHARS;
use crate::text::{capitalize, fill, CHARACTERS};

const ITEMS: &[&str] = &[
    "apples", "coins", "stickers", "marbles", "books", "cards", "shells",
];

fn step_ok(op: Op, a: u64, b: u64) -> bool {
    !held_out(op, a, b)
}

fn chain_problem(rng: &mut SplitMix64, number: u64) -> String {
    loop {
        let (a, a_sub, _, _) = rng.pick(CHARACTERS);
        let b = loop {
            let c = rng.pick(CHARACTERS).0;
            if c != a {
                break c;
            }
        };
        let item = rng.pick(ITEMS);
        let start = rng.range(3, 60);
        let n_steps = rng.range(2, 4);
        let mut cur = start;
        let mut story = vec![format!("{a} has {start} {item}.")];
        let mut steps = vec![format!("Step 1: {a} starts with {start} {item}.")];
        let mut ok = true;
        for i in 0..n_steps {
            let take = cur >= 2 && rng.chance(45);
            let k = if take {
                rng.range(2, cur.min(30))
            } else {
                rng.range(2, 30)
            };
            let op = if take { Op::Sub } else { Op::Add };
            if !step_ok(op, cur, k) || op.apply(cur, k) > 99 {
                ok = false;
                break;
            }
            let next = op.apply(cur, k);
            let then = if i == 0 { "" } else { "Then " };
            let pron = if i == 0 {
                a.to_string()
            } else {
                a_sub.to_string()
            };
            let event = match (op, rng.below(3)) {
                (Op::Add, 0) => format!("{pron} buys {k} more {item}."),
                (Op::Add, 1) => format!("{pron} finds {k} {item}."),
                (Op::Add, _) => format!("{pron} gets {k} {item} from {b}."),
                (Op::Sub, 0) => format!("{pron} gives {k} {item} to {b}."),
                (Op::Sub, 1) => format!("{pron} loses {k} {item}."),
                (Op::Sub, _) => format!("{pron} sells {k} {item}."),
            };
            let event = if then.is_empty() {
                capitalize(&event)
            } else {
                format!("{then}{event}")
            };
            story.push(event);
            let verb = if op == Op::Add { "gains" } else { "loses" };
            steps.push(format!(
                "Step {}: {} {verb} {k}, so {cur} {} {k} = {next}.",
                i + 2,
                capitalize(a_sub),
                op.symbol()
            ));
            cur = next;
        }
        if !ok {
            continue;
        }
        return format!(
            "Problem {number}. {} How many {item} does {a} have now?\nSolution:\n{}\nAnswer: {cur}.",
            story.join(" "),
            steps.join("\n")
        );
    }
}

fn compare_problem(rng: &mut SplitMix64, number: u64) -> String {
    loop {
        let a = rng.pick(CHARACTERS).0;
        let b = rng.pick(CHARACTERS).0;
        if a == b {
            continue;
        }
        let item = rng.pick(ITEMS);
        let (x, y) = (rng.range(2, 60), rng.range(2, 60));
        if rng.chance(50) {
            if !step_ok(Op::Add, x, y) {
                continue;
            }
            return format!(
                "Problem {number}. {a} has {x} {item} and {b} has {y} {item}. How many {item} do they have together?\nSolution:\nStep 1: Add the two amounts: {x} + {y} = {}.\nAnswer: {}.",
                x + y,
                x + y
            );
        }
        let (hi, lo, who_hi, who_lo) = if x >= y { (x, y, a, b) } else { (y, x, b, a) };
        if !step_ok(Op::Sub, hi, lo) {
            continue;
        }
        return format!(
            "Problem {number}. {a} has {x} {item} and {b} has {y} {item}. How many more {item} does {who_hi} have than {who_lo}?\nSolution:\nStep 1: {who_hi} has {hi} and {who_lo} has {lo}.\nStep 2: Subtract: {hi} - {lo} = {}.\nAnswer: {}.",
            hi - lo,
            hi - lo
        );
    }
}

pub fn generate(rng: &mut SplitMix64) -> String {
    let (_, max) = STAGE2_CHARS;
    let mut number = 0;
    fill(rng, 800, 3200, max, "\n\n", |r| {
        number += 1;
        if r.chance(70) {
            chain_problem(r, number)
        } else {
            compare_problem(r, number)
        }
    })
}
