//! Task names to task objects, K2's default shot counts, and named suites.

use std::path::Path;

use crate::benchmark_job::TaskSpec;
use crate::error::{EvalError, Result};
use crate::task::Task;
use crate::tasks::{
    arc, boolq, gsm8k, hellaswag, lambada, mmlu, openbookqa, piqa, probes, truthfulqa, wikitext,
    winogrande,
};

/// Named task lists. `default` needs no data files: the probes of k2's built-in corpus.
pub const SUITES: &[(&str, &[&str])] = &[
    (
        "default",
        &[
            "k2_agreement",
            "k2_arithmetic",
            "k2_facts",
            "k2_copy",
            "k2_code_brackets",
        ],
    ),
    // K2's Open LLM Leaderboard six.
    (
        "leaderboard",
        &[
            "mmlu",
            "hellaswag",
            "arc_challenge",
            "winogrande",
            "truthfulqa_mc2",
            "gsm8k",
        ],
    ),
    (
        "pythia",
        &[
            "lambada_openai",
            "piqa",
            "winogrande",
            "arc_easy",
            "arc_challenge",
            "wikitext",
        ],
    ),
];

/// Every single task name (besides `mmlu_<subject>`).
pub const TASKS: &[&str] = &[
    "k2_agreement",
    "k2_arithmetic",
    "k2_facts",
    "k2_copy",
    "k2_code_brackets",
    "arc_easy",
    "arc_challenge",
    "hellaswag",
    "piqa",
    "winogrande",
    "boolq",
    "openbookqa",
    "lambada_openai",
    "mmlu",
    "gsm8k",
    "truthfulqa_mc1",
    "truthfulqa_mc2",
    "wikitext",
];

/// K2's shot counts (MMLU 5, HellaSwag 10, ARC-C 25, WinoGrande 5, TruthfulQA 0, GSM8K 5), 0 otherwise.
pub fn default_shots(task: &str) -> usize {
    match task {
        "hellaswag" => 10,
        "arc_challenge" => 25,
        "winogrande" | "gsm8k" => 5,
        t if t == "mmlu" || t.starts_with("mmlu_") => 5,
        _ => 0,
    }
}

/// Expands suite names and `mmlu` into single task names, keeping order and dropping repeats.
pub fn expand(names: &[String], data_root: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let push = |n: String, out: &mut Vec<String>| {
        if !out.contains(&n) {
            out.push(n);
        }
    };
    for n in names {
        if let Some((_, list)) = SUITES.iter().find(|(s, _)| s == n) {
            for t in *list {
                if *t == "mmlu" {
                    for s in mmlu::mmlu_subjects(data_root)? {
                        push(format!("mmlu_{s}"), &mut out);
                    }
                } else {
                    push(t.to_string(), &mut out);
                }
            }
        } else if n == "mmlu" {
            for s in mmlu::mmlu_subjects(data_root)? {
                push(format!("mmlu_{s}"), &mut out);
            }
        } else {
            push(n.clone(), &mut out);
        }
    }
    Ok(out)
}

/// Builds one task. `probe_docs` is the number of probes per built-in probe task.
pub fn build(name: &str, data_root: &Path, probe_docs: usize) -> Result<Box<dyn Task>> {
    if let Some(p) = name.strip_prefix("k2_") {
        return probes::ProbeTask::new(p, probe_docs)
            .map(|t| Box::new(t) as Box<dyn Task>)
            .ok_or_else(|| unknown(name));
    }
    if let Some(subject) = name.strip_prefix("mmlu_") {
        return Ok(Box::new(mmlu::Mmlu::load(data_root, subject)?.0));
    }
    Ok(match name {
        "arc_easy" => Box::new(arc::Arc::load(data_root, arc::ArcVariant::Easy)?.0),
        "arc_challenge" => Box::new(arc::Arc::load(data_root, arc::ArcVariant::Challenge)?.0),
        "hellaswag" => Box::new(hellaswag::Hellaswag::load(data_root)?.0),
        "piqa" => Box::new(piqa::Piqa::load(data_root)?.0),
        "boolq" => Box::new(boolq::BoolQ::load(data_root)?.0),
        "openbookqa" => Box::new(openbookqa::OpenBookQa::load(data_root)?.0),
        "winogrande" => Box::new(winogrande::Winogrande::load(data_root)?),
        "lambada_openai" => Box::new(lambada::Lambada::load(data_root)?),
        "gsm8k" => Box::new(gsm8k::Gsm8k::load(data_root)?),
        "truthfulqa_mc1" => Box::new(truthfulqa::TruthfulQa::load(
            data_root,
            truthfulqa::TruthfulQaVariant::Mc1,
        )?),
        "truthfulqa_mc2" => Box::new(truthfulqa::TruthfulQa::load(
            data_root,
            truthfulqa::TruthfulQaVariant::Mc2,
        )?),
        "wikitext" => Box::new(wikitext::WikiText::load(data_root)?),
        _ => return Err(unknown(name)),
    })
}

fn unknown(name: &str) -> EvalError {
    let suites: Vec<&str> = SUITES.iter().map(|(s, _)| *s).collect();
    EvalError::UnknownTask(
        name.to_string(),
        format!(
            "{}, mmlu_<subject>; suites: {}",
            TASKS.join(", "),
            suites.join(", ")
        ),
    )
}

/// Task specs for a list of names/suites with optional per-task shot overrides.
pub fn specs(
    names: &[String],
    data_root: &Path,
    shots: &[(String, usize)],
    limit: Option<usize>,
    probe_docs: usize,
) -> Result<Vec<TaskSpec>> {
    let mut out = Vec::new();
    for name in expand(names, data_root)? {
        let task = build(&name, data_root, probe_docs)?;
        let shot = shots
            .iter()
            .find(|(t, _)| *t == name || (t == "mmlu" && name.starts_with("mmlu_")))
            .map_or_else(|| default_shots(&name), |(_, n)| *n);
        out.push(TaskSpec {
            task,
            shots: shot,
            limit,
        });
    }
    Ok(out)
}
