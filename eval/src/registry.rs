//! The task registry: one table of every task — its name, how it is built, K2's default shot
//! count and the suites it belongs to. It drives `k2 eval --help`, suite expansion and the
//! errors for unknown names (which suggest the nearest known one).

use crate::benchmark_job::TaskSpec;
use crate::datasets::{DataSource, Load};
use crate::error::{EvalError, Result};
use crate::task::Task;
use crate::tasks::{
    arc, boolq, gsm8k, hellaswag, lambada, mmlu, openbookqa, piqa, probes, truthfulqa, wikitext,
    winogrande,
};
use crate::yaml_tasks::task_config::Problem;
use crate::yaml_tasks::task_index::{GroupSpec, TaskIndex};
use crate::yaml_tasks::yaml_task::YamlTask;

/// Builds a task from what to load (its full name, the data source, whether few-shot examples
/// are asked for) and the probes per probe task.
type Build = fn(&Load, usize) -> Result<Box<dyn Task>>;

/// One row of the registry.
pub struct TaskEntry {
    pub name: &'static str,
    pub build: Build,
    /// K2's few-shot count (MMLU 5, HellaSwag 10, ARC-C 25, WinoGrande 5, TruthfulQA 0, GSM8K 5).
    pub shots: usize,
    /// The suites that include it; a suite lists its tasks in registry order.
    pub suites: &'static [&'static str],
    /// `mmlu` stands for its subjects, `mmlu_<subject>`.
    pub subtasks: bool,
}

fn probe(load: &Load, n: usize) -> Result<Box<dyn Task>> {
    let p = load.task.strip_prefix("k2_").unwrap_or(load.task);
    probes::ProbeTask::new(p, n)
        .map(|t| Box::new(t) as Box<dyn Task>)
        .ok_or_else(|| unknown(load.task))
}

fn boxed<T: Task + 'static>(t: T) -> Box<dyn Task> {
    Box::new(t)
}

const fn entry(
    name: &'static str,
    build: Build,
    shots: usize,
    suites: &'static [&'static str],
) -> TaskEntry {
    TaskEntry {
        name,
        build,
        shots,
        suites,
        subtasks: false,
    }
}

/// Every task, in the order suites list them.
pub const REGISTRY: &[TaskEntry] = &[
    entry("k2_agreement", probe, 0, &["default"]),
    entry("k2_arithmetic", probe, 0, &["default"]),
    entry("k2_facts", probe, 0, &["default"]),
    entry("k2_copy", probe, 0, &["default"]),
    entry("k2_code_brackets", probe, 0, &["default"]),
    TaskEntry {
        name: "mmlu",
        build: |l, _| {
            let subject = l.task.strip_prefix("mmlu_").unwrap_or(l.task);
            Ok(boxed(mmlu::Mmlu::load(l, subject)?.0))
        },
        shots: 5,
        suites: &["leaderboard"],
        subtasks: true,
    },
    entry(
        "hellaswag",
        |l, _| Ok(boxed(hellaswag::Hellaswag::load(l)?.0)),
        10,
        &["leaderboard"],
    ),
    entry(
        "arc_challenge",
        |l, _| Ok(boxed(arc::Arc::load(l, arc::ArcVariant::Challenge)?.0)),
        25,
        &["leaderboard", "pythia"],
    ),
    entry(
        "winogrande",
        |l, _| Ok(boxed(winogrande::Winogrande::load(l)?)),
        5,
        &["leaderboard", "pythia"],
    ),
    entry(
        "truthfulqa_mc2",
        |l, _| {
            let v = truthfulqa::TruthfulQaVariant::Mc2;
            Ok(boxed(truthfulqa::TruthfulQa::load(l, v)?))
        },
        0,
        &["leaderboard"],
    ),
    entry(
        "gsm8k",
        |l, _| Ok(boxed(gsm8k::Gsm8k::load(l)?)),
        5,
        &["leaderboard"],
    ),
    entry(
        "lambada_openai",
        |l, _| Ok(boxed(lambada::Lambada::load(l)?)),
        0,
        &["pythia"],
    ),
    entry(
        "piqa",
        |l, _| Ok(boxed(piqa::Piqa::load(l)?.0)),
        0,
        &["pythia"],
    ),
    entry(
        "arc_easy",
        |l, _| Ok(boxed(arc::Arc::load(l, arc::ArcVariant::Easy)?.0)),
        0,
        &["pythia"],
    ),
    entry(
        "wikitext",
        |l, _| Ok(boxed(wikitext::WikiText::load(l)?)),
        0,
        &["pythia"],
    ),
    entry("boolq", |l, _| Ok(boxed(boolq::BoolQ::load(l)?.0)), 0, &[]),
    entry(
        "openbookqa",
        |l, _| Ok(boxed(openbookqa::OpenBookQa::load(l)?.0)),
        0,
        &[],
    ),
    entry(
        "truthfulqa_mc1",
        |l, _| {
            let v = truthfulqa::TruthfulQaVariant::Mc1;
            Ok(boxed(truthfulqa::TruthfulQa::load(l, v)?))
        },
        0,
        &[],
    ),
];

/// The suites with what they are, in `--help` order.
pub const SUITES: &[(&str, &str)] = &[
    ("default", "the built-in probes; no data files needed"),
    ("leaderboard", "K2's Open LLM Leaderboard six"),
    ("pythia", "the tasks of Pythia's published evals"),
];

/// The registry row of a task name (`mmlu_<subject>` finds `mmlu`).
pub fn entry_of(name: &str) -> Option<&'static TaskEntry> {
    REGISTRY.iter().find(|e| {
        e.name == name
            || (e.subtasks
                && name
                    .strip_prefix(e.name)
                    .and_then(|s| s.strip_prefix('_'))
                    .is_some_and(|s| mmlu::SUBJECTS.contains(&s)))
    })
}

/// K2's shot count for a task; 0 for a name the registry does not know.
pub fn default_shots(task: &str) -> usize {
    entry_of(task).map_or(0, |e| e.shots)
}

/// The tasks of a suite, in registry order.
pub fn suite_tasks(suite: &str) -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|e| e.suites.contains(&suite))
        .map(|e| e.name)
        .collect()
}

/// The known name nearest to `name` (tasks and suites), if any is near enough to be a typo.
pub fn nearest(name: &str) -> Option<&'static str> {
    let names = REGISTRY
        .iter()
        .map(|e| e.name)
        .chain(SUITES.iter().map(|(s, _)| *s));
    names
        .map(|n| (strsim::jaro_winkler(name, n), n))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n)
}

fn unknown(name: &str) -> EvalError {
    EvalError::UnknownTask {
        name: name.to_string(),
        suggestion: nearest(name).map(str::to_string),
    }
}

/// `--help`'s list of tasks (with K2's shot counts where not 0) and suites.
pub fn help() -> String {
    let tasks: Vec<String> = REGISTRY
        .iter()
        .map(|e| {
            let name = if e.subtasks {
                format!("{0} {0}_<subject>", e.name)
            } else {
                e.name.to_string()
            };
            match e.shots {
                0 => name,
                n => format!("{name} ({n}-shot)"),
            }
        })
        .collect();
    let mut s = String::from("Tasks (K2's shot counts; --shots task=n overrides):\n");
    for line in wrap(&tasks, 96) {
        s.push_str(&format!("  {line}\n"));
    }
    s.push_str("Suites:\n");
    for (name, about) in SUITES {
        s.push_str(&format!(
            "  {name:<12} {about}: {}\n",
            suite_tasks(name).join(" ")
        ));
    }
    s
}

fn wrap(words: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for w in words {
        let last = lines.last_mut().expect("non-empty");
        if !last.is_empty() && last.len() + 1 + w.len() > width {
            lines.push(w.clone());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(w);
        }
    }
    lines
}

/// Expands suite names and `mmlu` into single task names, keeping order and dropping repeats.
/// An unknown name is an error that suggests the nearest known one.
pub fn expand(names: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |n: String| {
        if !out.contains(&n) {
            out.push(n);
        }
    };
    for n in names {
        let singles: Vec<&str> = if SUITES.iter().any(|(s, _)| s == n) {
            suite_tasks(n)
        } else {
            let e = entry_of(n).ok_or_else(|| unknown(n))?;
            if e.name == n {
                vec![e.name]
            } else {
                push(n.clone()); // one subject of a task with subtasks
                continue;
            }
        };
        for t in singles {
            let e = entry_of(t).expect("suites name registered tasks");
            if e.subtasks {
                for s in mmlu::SUBJECTS {
                    push(format!("{}_{s}", e.name));
                }
            } else {
                push(t.to_string());
            }
        }
    }
    Ok(out)
}

/// Builds one task, with its few-shot split when `fewshot`. `probe_docs` is the number of probes
/// per built-in probe task.
pub fn build(
    name: &str,
    data: &DataSource,
    fewshot: bool,
    probe_docs: usize,
) -> Result<Box<dyn Task>> {
    let e = entry_of(name).ok_or_else(|| unknown(name))?;
    let load = Load {
        data,
        task: name,
        fewshot,
    };
    (e.build)(&load, probe_docs)
}

/// Task specs for a list of names/suites with optional per-task shot overrides. A `--shots`
/// name that matches none of the selected tasks is an error (`mmlu=5` sets every subject).
pub fn specs(
    names: &[String],
    data: &DataSource,
    shots: &[(String, usize)],
    limit: Option<usize>,
    probe_docs: usize,
) -> Result<Vec<TaskSpec>> {
    Ok(select(names, data, shots, limit, probe_docs, &TaskIndex::default())?.tasks)
}

/// What `--tasks` selected: the tasks to score, and the YAML groups to aggregate from them.
pub struct Selection {
    pub tasks: Vec<TaskSpec>,
    pub groups: Vec<GroupSpec>,
}

fn refused(name: &str, index: &TaskIndex, p: Problem) -> EvalError {
    match p {
        Problem::Invalid(e) => e,
        Problem::Refused(r) => EvalError::Refused {
            task: name.to_string(),
            path: index
                .get(name)
                .and_then(|e| e.path.clone())
                .unwrap_or_default(),
            reason: r.to_string(),
        },
    }
}

/// The known name nearest to `name` among the built-in tasks and suites and the YAML index.
fn nearest_in(name: &str, index: &TaskIndex) -> Option<String> {
    let names = REGISTRY
        .iter()
        .map(|e| e.name)
        .chain(SUITES.iter().map(|(s, _)| *s))
        .chain(index.entries.keys().map(String::as_str));
    names
        .map(|n| (strsim::jaro_winkler(name, n), n))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n.to_string())
}

/// [`specs`] over one namespace: the built-in tasks and suites first, then the tasks, groups
/// and tags of the YAML `index` (a group adds every task under it and its aggregation).
pub fn select(
    names: &[String],
    data: &DataSource,
    shots: &[(String, usize)],
    limit: Option<usize>,
    probe_docs: usize,
    index: &TaskIndex,
) -> Result<Selection> {
    let builtin = |n: &str| SUITES.iter().any(|(s, _)| *s == n) || entry_of(n).is_some();
    let mut selected: Vec<String> = Vec::new();
    let mut groups: Vec<GroupSpec> = Vec::new();
    // (a name given to --shots, the tasks it covers)
    let mut covers: Vec<(String, Vec<String>)> = Vec::new();
    for n in names {
        let leaves: Vec<String> = if builtin(n) {
            expand(std::slice::from_ref(n))?
        } else if index.get(n).is_some() {
            add_groups(n, index, &mut groups)?;
            index.leaves(n).map_err(|p| refused(n, index, p))?
        } else if let Some(e) = index.broken_error(n) {
            return Err(e);
        } else {
            return Err(EvalError::UnknownTask {
                name: n.clone(),
                suggestion: nearest_in(n, index),
            });
        };
        covers.push((n.clone(), leaves.clone()));
        for l in leaves {
            if !selected.contains(&l) {
                selected.push(l);
            }
        }
    }
    let covered = |t: &str, name: &str| {
        t == name
            || entry_of(t).is_some_and(|e| e.subtasks && e.name == t)
                && entry_of(name).is_some_and(|e| e.name == t)
            || covers
                .iter()
                .any(|(c, ls)| c == t && ls.iter().any(|l| l == name))
            || index.leaves(t).is_ok_and(|ls| ls.iter().any(|l| l == name))
    };
    for (t, n) in shots {
        if !selected.iter().any(|name| covered(t, name)) {
            return Err(EvalError::UnknownShots {
                task: t.clone(),
                shots: *n,
                known: entry_of(t).is_some() || index.get(t).is_some(),
                suggestion: nearest_in(t, index),
            });
        }
    }
    let mut out = Vec::new();
    for name in selected {
        let asked = shots
            .iter()
            .find(|(t, _)| covered(t, &name))
            .map(|(_, n)| *n);
        let (task, shot): (Box<dyn Task>, usize) = if entry_of(&name).is_some() {
            let shot = asked.unwrap_or_else(|| default_shots(&name));
            (build(&name, data, shot > 0, probe_docs)?, shot)
        } else if index.get(&name).is_some() {
            let cfg = index
                .task_config(&name)
                .map_err(|p| refused(&name, index, p))?;
            let shot = asked.unwrap_or(cfg.num_fewshot.unwrap_or(0));
            let load = Load {
                data,
                task: &name,
                fewshot: shot > 0,
            };
            (Box::new(YamlTask::load(cfg, &load)?), shot)
        } else {
            return Err(EvalError::UnknownTask {
                suggestion: nearest_in(&name, index),
                name,
            });
        };
        if let Some(max) = task.max_shots() {
            if shot > max {
                return Err(EvalError::TooManyShots {
                    task: name,
                    shots: shot,
                    max,
                });
            }
        }
        out.push(TaskSpec {
            task,
            shots: shot,
            limit,
        });
    }
    Ok(Selection { tasks: out, groups })
}

/// The group `name` and every group under it, innermost first.
fn add_groups(name: &str, index: &TaskIndex, groups: &mut Vec<GroupSpec>) -> Result<()> {
    let Some(g) = index.group(name).map_err(|p| refused(name, index, p))? else {
        return Ok(());
    };
    for m in &g.members {
        add_groups(m, index, groups)?;
    }
    if !groups.iter().any(|x| x.name == g.name) {
        groups.push(g);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_and_shots_come_from_the_table() {
        assert_eq!(
            suite_tasks("default"),
            [
                "k2_agreement",
                "k2_arithmetic",
                "k2_facts",
                "k2_copy",
                "k2_code_brackets"
            ]
        );
        assert_eq!(suite_tasks("leaderboard").len(), 6);
        assert_eq!(default_shots("hellaswag"), 10);
        assert_eq!(default_shots("mmlu_anatomy"), 5);
        assert_eq!(default_shots("arc_easy"), 0);
        assert!(entry_of("mmlu_").is_none());
        let h = help();
        assert!(
            h.contains("hellaswag (10-shot)") && h.contains("leaderboard"),
            "{h}"
        );
    }

    #[test]
    fn unknown_names_suggest_the_nearest() {
        assert_eq!(nearest("hellaswg"), Some("hellaswag"));
        assert_eq!(nearest("arc_easyy"), Some("arc_easy"));
        assert_eq!(nearest("leaderbord"), Some("leaderboard"));
        assert_eq!(nearest("zzzz"), None);
        let e = expand(&["helaswag".into()]).unwrap_err();
        assert!(e.to_string().contains("did you mean `hellaswag`"), "{e}");
        let Err(e) = specs(
            &["k2_facts".into()],
            &DataSource::None,
            &[("k2_fact".into(), 3)],
            None,
            10,
        ) else {
            panic!("an unknown --shots name is an error")
        };
        assert!(e.to_string().contains("k2_fact"), "{e}");
        assert!(e.to_string().contains("did you mean `k2_facts`"), "{e}");
        let Err(e) = specs(
            &["k2_facts".into()],
            &DataSource::None,
            &[("k2_copy".into(), 3)],
            None,
            10,
        ) else {
            panic!("a --shots task not evaluated is an error")
        };
        assert!(e.to_string().contains("not among the tasks"), "{e}");
        // More shots than the pool holds is an error, as lm-eval's samplers raise.
        let Err(e) = specs(
            &["k2_facts".into()],
            &DataSource::None,
            &[("k2_facts".into(), 33)],
            None,
            10,
        ) else {
            panic!("33 shots from a pool of 32 is an error")
        };
        assert!(e.to_string().contains("few-shot pool holds 32"), "{e}");
        assert!(specs(
            &["k2_facts".into()],
            &DataSource::None,
            &[("k2_facts".into(), 32)],
            None,
            10,
        )
        .is_ok());
    }
}
