use std::collections::{HashMap, HashSet};

use k2_corpus::{probe_chance, probe_tasks, probes, source, source_names};

const N: usize = 400;

#[test]
fn tasks_and_chance() {
    assert_eq!(
        probe_tasks(),
        &["agreement", "arithmetic", "facts", "copy", "code_brackets"]
    );
    assert_eq!(probe_chance("agreement"), Some(0.5));
    for t in ["arithmetic", "facts", "copy", "code_brackets"] {
        assert_eq!(probe_chance(t), Some(0.25));
    }
    assert_eq!(probe_chance("nope"), None);
    assert!(probes("nope", 3).is_none());
}

#[test]
fn probes_are_deterministic_and_prefix_stable() {
    for t in probe_tasks() {
        let a = probes(t, N).unwrap();
        let b = probes(t, N).unwrap();
        assert_eq!(a, b, "{t}");
        let short = probes(t, 17).unwrap();
        assert_eq!(&a[..17], &short[..], "{t}");
        assert_eq!(probes(t, 0).unwrap().len(), 0);
        for (i, p) in a.iter().enumerate() {
            assert_eq!(p.id, i as u64);
        }
    }
}

#[test]
fn probes_are_well_formed() {
    for t in probe_tasks() {
        let ps = probes(t, N).unwrap();
        assert_eq!(ps.len(), N);
        let k = (1.0 / probe_chance(t).unwrap()).round() as usize;
        let mut contexts = HashSet::new();
        for p in &ps {
            assert_eq!(p.choices.len(), k, "{t} #{}", p.id);
            assert!(p.gold < p.choices.len());
            let distinct: HashSet<&String> = p.choices.iter().collect();
            assert_eq!(distinct.len(), k, "{t} #{}: {:?}", p.id, p.choices);
            assert!(p.context.is_ascii() && !p.context.is_empty());
            assert_eq!(p.context.trim(), p.context, "{t} #{}", p.id);
            for c in &p.choices {
                assert!(c.is_ascii() && !c.is_empty());
                assert_eq!(c.trim(), c, "{t} #{}", p.id);
            }
            contexts.insert(p.context.clone());
        }
        // Not a handful of repeated items.
        assert!(contexts.len() > N / 3, "{t}: {} distinct", contexts.len());
    }
}

#[test]
fn trivial_baselines_are_near_chance() {
    for t in probe_tasks() {
        let ps = probes(t, N).unwrap();
        let chance = probe_chance(t).unwrap();
        let k = ps[0].choices.len();
        let mut pos = vec![0usize; k];
        let (mut shortest, mut longest) = (0, 0);
        for p in &ps {
            pos[p.gold] += 1;
            let lens: Vec<usize> = p.choices.iter().map(|c| c.len()).collect();
            let min = *lens.iter().min().unwrap();
            let max = *lens.iter().max().unwrap();
            // Ties count fractionally (a tie-broken baseline picks one at random).
            let nmin = lens.iter().filter(|&&l| l == min).count();
            let nmax = lens.iter().filter(|&&l| l == max).count();
            if lens[p.gold] == min {
                shortest += 1000 / nmin;
            }
            if lens[p.gold] == max {
                longest += 1000 / nmax;
            }
        }
        for (i, &c) in pos.iter().enumerate() {
            let acc = c as f64 / N as f64;
            assert!((acc - chance).abs() < 0.02, "{t}: always-{i} gets {acc}");
        }
        for (what, score) in [("shortest", shortest), ("longest", longest)] {
            let acc = score as f64 / 1000.0 / N as f64;
            assert!(
                (acc - chance).abs() < 0.1,
                "{t}: always-{what} gets {acc} (chance {chance})"
            );
        }
    }
}

#[test]
fn agreement_golds_balance_singular_and_plural() {
    let ps = probes("agreement", N).unwrap();
    let mut by_verb: HashMap<&str, usize> = HashMap::new();
    for p in &ps {
        *by_verb.entry(p.choices[p.gold].as_str()).or_default() += 1;
    }
    let plural = ["are", "were", "have"]
        .iter()
        .map(|v| by_verb.get(v).copied().unwrap_or(0))
        .sum::<usize>();
    let frac = plural as f64 / N as f64;
    assert!((0.4..0.6).contains(&frac), "plural fraction {frac}");
}

#[test]
fn arithmetic_gold_is_correct() {
    for p in probes("arithmetic", N).unwrap() {
        let nums: Vec<i64> = p
            .context
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let sub = p.context.contains(" - ") || p.context.contains("minus");
        let want = if sub {
            nums[0] - nums[1]
        } else {
            nums[0] + nums[1]
        };
        assert_eq!(p.choices[p.gold], want.to_string(), "{:?}", p);
    }
}

#[test]
fn arithmetic_probes_are_held_out_of_training() {
    // No arithmetic document states a probed problem.
    let probed: Vec<String> = probes("arithmetic", 200)
        .unwrap()
        .iter()
        .filter(|p| p.context.ends_with('='))
        .map(|p| format!("{} {}", p.context, p.choices[p.gold]))
        .collect();
    for name in ["arithmetic", "math_long"] {
        let s = source(name).unwrap();
        for i in 0..300 {
            let d = s.document(i);
            for q in &probed {
                let hit = d.match_indices(q.as_str()).any(|(at, _)| {
                    let before = d[..at].chars().last();
                    !before.is_some_and(|c| c.is_ascii_digit())
                });
                assert!(!hit, "{name} #{i} contains probe {q:?}");
            }
        }
    }
}

#[test]
fn probes_are_not_training_documents() {
    for t in probe_tasks() {
        for p in probes(t, 50).unwrap() {
            let full = format!("{} {}", p.context, p.choices[p.gold]);
            for name in source_names() {
                let s = source(name).unwrap();
                for i in 0..20 {
                    assert_ne!(s.document(i), full);
                }
            }
        }
    }
}

#[test]
fn probe_formats_occur_in_training() {
    // The probe's context + gold follow formats the training docs use.
    let code: String = (0..200)
        .map(|i| source("code").unwrap().document(i))
        .collect();
    assert!(code.contains("copy: ") && code.contains("seq: ") && code.contains("brackets: "));
    let facts: String = (0..200)
        .map(|i| source("facts").unwrap().document(i))
        .collect();
    // Facts are recall: most probed facts appear verbatim in the first 200 docs.
    let ps = probes("facts", 100).unwrap();
    let found = ps
        .iter()
        .filter(|p| facts.contains(&format!("{} {}.", p.context, p.choices[p.gold])))
        .count();
    assert!(
        found > 60,
        "only {found}/100 probed facts found in training"
    );
}

#[test]
fn code_brackets_gold_closes_the_context() {
    for p in probes("code_brackets", N).unwrap() {
        let mut stack = Vec::new();
        let line = format!("{} {}", p.context, p.choices[p.gold]);
        for tok in line.trim_start_matches("brackets: ").split(' ') {
            match tok {
                "(" | "[" | "{" => stack.push(tok),
                _ => {
                    let open = stack.pop().expect("balanced");
                    let want = match open {
                        "(" => ")",
                        "[" => "]",
                        _ => "}",
                    };
                    assert_eq!(tok, want, "{p:?}");
                }
            }
        }
        assert!(stack.is_empty(), "{p:?}");
    }
}

#[test]
fn probes_serialize() {
    // serde::Serialize is derived; check a field-level property without serde_json.
    fn assert_ser<T: serde::Serialize>(_: &T) {}
    let p = &probes("copy", 1).unwrap()[0];
    assert_ser(p);
}
