//! Per-item learning dynamics over a checkpoint series (Toneva et al. 2019's forgetting events;
//! the age of acquisition of the learning-curve literature), from the samples files of every
//! checkpoint:
//!
//! * correctness per checkpoint: the task's 0/1 metric ([`crate::samples::correctness_metric`]);
//! * age of acquisition: the first checkpoint from which the item stays correct to the last one;
//! * forgetting events: correct at one checkpoint, incorrect at the next;
//! * class: `never learned` (correct nowhere), `always known` (correct everywhere), `learned`
//!   (ends correct with no forgetting event), `forgotten` (ends incorrect after one forgetting
//!   event), `unstable` (anything else: relearned after forgetting, or forgotten twice or more);
//! * the gold answer's log-likelihood and its margin over the best wrong choice;
//! * per consecutive pair of checkpoints: items learned and forgotten, the accuracy change with
//!   its exact McNemar p-value and Wald interval, and the mean gold log-likelihood's change with
//!   a paired bootstrap;
//! * the emergence point: the first checkpoint whose accuracy is above chance by the one-sided
//!   exact binomial test (chance: the mean of 1 / choices), Holm-corrected over the task's
//!   checkpoints, and stays so at every later checkpoint.
//!
//! A k2 run's series is its surviving lineage (status `ok`); spike and rolled-back checkpoints
//! are off it and are compared with [`crate::compare`] instead. Items are the documents present
//! at every checkpoint; a document whose prompt differs between checkpoints is an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;

use crate::inputs::Dataset;
use crate::samples::{correctness_metric, read_samples, samples_path_for, Sample};
use crate::stats::{
    binomial_sf, holm, paired_accuracy, paired_bootstrap, Difference, ALPHA, BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
};

/// A checkpoint of the series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointRef {
    pub name: String,
    pub step: u64,
    pub tokens: Option<u64>,
    /// The samples file read.
    #[serde(skip)]
    pub samples: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemClass {
    AlwaysKnown,
    Learned,
    Unstable,
    Forgotten,
    NeverLearned,
}

impl ItemClass {
    pub const ALL: [ItemClass; 5] = [
        ItemClass::AlwaysKnown,
        ItemClass::Learned,
        ItemClass::Unstable,
        ItemClass::Forgotten,
        ItemClass::NeverLearned,
    ];
    pub fn label(self) -> &'static str {
        match self {
            ItemClass::AlwaysKnown => "always known",
            ItemClass::Learned => "learned",
            ItemClass::Unstable => "unstable",
            ItemClass::Forgotten => "forgotten",
            ItemClass::NeverLearned => "never learned",
        }
    }
}

/// One item's trajectory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemRow {
    pub doc_id: usize,
    pub prompt: String,
    pub target: String,
    pub correct: Vec<bool>,
    pub gold_ll: Vec<Option<f64>>,
    pub margin: Vec<Option<f64>>,
    /// Index of the checkpoint of acquisition.
    pub acquired_at: Option<usize>,
    pub forgetting_events: usize,
    pub class: ItemClass,
}

/// The change between two checkpoints of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairChange {
    pub from: String,
    pub to: String,
    /// Items wrong at `from`, right at `to`.
    pub learned: usize,
    /// Items right at `from`, wrong at `to`.
    pub forgotten: usize,
    pub acc_from: f64,
    pub acc_to: f64,
    /// Accuracy difference (`to - from`), Wald interval, exact McNemar p-value.
    pub acc: Difference,
    /// Mean gold log-likelihood difference, paired bootstrap (where log-likelihoods exist).
    pub gold_ll: Option<Difference>,
}

/// Accuracy above chance per checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Emergence {
    pub chance: f64,
    pub correct: Vec<usize>,
    pub p_values: Vec<f64>,
    pub holm: Vec<f64>,
    /// Index of the emergence checkpoint: significant there and at every later one.
    pub at: Option<usize>,
}

/// Everything per-item about one task of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskItems {
    pub series: String,
    pub task: String,
    /// The 0/1 metric of correctness (`acc,none`).
    pub metric: String,
    pub checkpoints: Vec<CheckpointRef>,
    pub items: Vec<ItemRow>,
    /// Documents left out because some checkpoint lacks them.
    pub dropped: usize,
    pub changes: Vec<PairChange>,
    pub emergence: Option<Emergence>,
}

impl TaskItems {
    pub fn n(&self) -> usize {
        self.items.len()
    }
    pub fn accuracy(&self, c: usize) -> f64 {
        let k = self.items.iter().filter(|i| i.correct[c]).count();
        k as f64 / self.n().max(1) as f64
    }
    /// Mean gold log-likelihood at checkpoint `c` over items that have one.
    pub fn mean_gold_ll(&self, c: usize) -> Option<f64> {
        mean(self.items.iter().filter_map(|i| i.gold_ll[c]))
    }
    pub fn mean_margin(&self, c: usize) -> Option<f64> {
        mean(self.items.iter().filter_map(|i| i.margin[c]))
    }
    pub fn class_counts(&self) -> BTreeMap<ItemClass, usize> {
        let mut m: BTreeMap<ItemClass, usize> = ItemClass::ALL.iter().map(|&c| (c, 0)).collect();
        for i in &self.items {
            *m.entry(i.class).or_default() += 1;
        }
        m
    }
    /// Items per number of forgetting events (index = events).
    pub fn forgetting_histogram(&self) -> Vec<usize> {
        let max = self
            .items
            .iter()
            .map(|i| i.forgetting_events)
            .max()
            .unwrap_or(0);
        let mut h = vec![0; max + 1];
        for i in &self.items {
            h[i.forgetting_events] += 1;
        }
        h
    }
    pub fn emergence_checkpoint(&self) -> Option<&CheckpointRef> {
        self.emergence
            .as_ref()
            .and_then(|e| e.at)
            .map(|i| &self.checkpoints[i])
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Age of acquisition, forgetting events and class of one correctness sequence.
pub fn classify(correct: &[bool]) -> (Option<usize>, usize, ItemClass) {
    let forgetting = correct.windows(2).filter(|w| w[0] && !w[1]).count();
    let acquired = match correct.iter().rposition(|&c| !c) {
        None if correct.is_empty() => None,
        None => Some(0),
        Some(last_wrong) if last_wrong + 1 < correct.len() => Some(last_wrong + 1),
        Some(_) => None,
    };
    let ever = correct.iter().any(|&c| c);
    let last = correct.last().copied().unwrap_or(false);
    let class = if !ever {
        ItemClass::NeverLearned
    } else if correct.iter().all(|&c| c) {
        ItemClass::AlwaysKnown
    } else if last && forgetting == 0 {
        ItemClass::Learned
    } else if !last && forgetting == 1 {
        ItemClass::Forgotten
    } else {
        ItemClass::Unstable
    };
    (acquired, forgetting, class)
}

/// The change between checkpoints `a` and `b` of the same items.
pub fn change(t: &TaskItems, a: usize, b: usize) -> PairChange {
    let n = t.n() as u64;
    let learned = t
        .items
        .iter()
        .filter(|i| !i.correct[a] && i.correct[b])
        .count();
    let forgotten = t
        .items
        .iter()
        .filter(|i| i.correct[a] && !i.correct[b])
        .count();
    let (la, lb): (Vec<f64>, Vec<f64>) = t
        .items
        .iter()
        .map(|i| {
            (
                i.gold_ll[a].unwrap_or(f64::NAN),
                i.gold_ll[b].unwrap_or(f64::NAN),
            )
        })
        .unzip();
    PairChange {
        from: t.checkpoints[a].name.clone(),
        to: t.checkpoints[b].name.clone(),
        learned,
        forgotten,
        acc_from: t.accuracy(a),
        acc_to: t.accuracy(b),
        acc: paired_accuracy(n, forgotten as u64, learned as u64),
        gold_ll: paired_bootstrap(&la, &lb, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
    }
}

/// Emergence from per-checkpoint correct counts out of `n`, against `chance`.
pub fn emergence(correct: Vec<usize>, n: usize, chance: f64) -> Emergence {
    let p_values: Vec<f64> = correct
        .iter()
        .map(|&k| binomial_sf(k as u64, n as u64, chance))
        .collect();
    let adj = holm(&p_values);
    let mut at = None;
    for i in (0..adj.len()).rev() {
        if adj[i] < ALPHA {
            at = Some(i);
        } else {
            break;
        }
    }
    Emergence {
        chance,
        correct,
        p_values,
        holm: adj,
        at,
    }
}

/// Builds a task's items from its checkpoints' samples (in checkpoint order).
pub fn task_items(
    series: &str,
    task: &str,
    checkpoints: Vec<CheckpointRef>,
    samples: Vec<Vec<Sample>>,
) -> Result<Option<TaskItems>> {
    let Some(first) = samples.first() else {
        return Ok(None);
    };
    let Some(metric) = correctness_metric(first) else {
        return Ok(None);
    };
    // Documents present at every checkpoint, with one prompt.
    let mut by_doc: BTreeMap<usize, Vec<&Sample>> = BTreeMap::new();
    for per in &samples {
        for s in per {
            by_doc.entry(s.doc_id).or_default().push(s);
        }
    }
    let total = by_doc.len();
    let mut items = Vec::new();
    for (doc, ss) in by_doc {
        if ss.len() != samples.len() {
            continue;
        }
        if let Some(k) = ss.iter().position(|s| s.prompt_hash != ss[0].prompt_hash) {
            bail!(
                "{}: doc_id {doc} has another prompt than in {} (different few-shot count or data): \
                 per-item results need the same prompts at every checkpoint",
                checkpoints[k].samples.display(),
                checkpoints[0].samples.display()
            );
        }
        let mut correct = Vec::with_capacity(ss.len());
        for (k, s) in ss.iter().enumerate() {
            let v = s.metric(&metric).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: doc_id {doc} has no metric `{metric}`",
                    checkpoints[k].samples.display()
                )
            })?;
            correct.push(v >= 0.5);
        }
        let (acquired_at, forgetting_events, class) = classify(&correct);
        items.push(ItemRow {
            doc_id: doc,
            prompt: ss[0].prompt.clone(),
            target: ss[0].target.clone(),
            correct,
            gold_ll: ss.iter().map(|s| s.gold_ll()).collect(),
            margin: ss.iter().map(|s| s.margin()).collect(),
            acquired_at,
            forgetting_events,
            class,
        });
    }
    let chance = mean(
        items
            .iter()
            .filter_map(|i| by_choices(&samples[0], i.doc_id))
            .map(|c| 1.0 / c as f64),
    );
    let mut t = TaskItems {
        series: series.to_string(),
        task: task.to_string(),
        metric,
        dropped: total - items.len(),
        checkpoints,
        items,
        changes: Vec::new(),
        emergence: None,
    };
    t.changes = (1..t.checkpoints.len())
        .map(|b| change(&t, b - 1, b))
        .collect();
    if let Some(ch) = chance {
        if !t.items.is_empty() {
            let correct = (0..t.checkpoints.len())
                .map(|c| t.items.iter().filter(|i| i.correct[c]).count())
                .collect();
            t.emergence = Some(emergence(correct, t.n(), ch));
        }
    }
    Ok(Some(t))
}

fn by_choices(samples: &[Sample], doc: usize) -> Option<usize> {
    samples.iter().find(|s| s.doc_id == doc)?.choices()
}

/// The checkpoints of each (series, task) with a samples file, in step order; a k2 run's only
/// on its lineage (status `ok`).
pub fn series_checkpoints(data: &Dataset) -> BTreeMap<(String, String), Vec<CheckpointRef>> {
    let mut out: BTreeMap<(String, String), Vec<CheckpointRef>> = BTreeMap::new();
    // `points` holds a run's lineage only (see [`Dataset::off_lineage`]).
    for p in &data.points {
        let samples = samples_path_for(&p.source, &p.task);
        if !samples.exists() {
            continue;
        }
        let v = out.entry((p.series.clone(), p.task.clone())).or_default();
        if !v.iter().any(|c| c.name == p.checkpoint) {
            v.push(CheckpointRef {
                name: p.checkpoint.clone(),
                step: p.step,
                tokens: p.tokens,
                samples,
            });
        }
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.step.cmp(&b.step).then(a.name.cmp(&b.name)));
    }
    out
}

/// Per-item dynamics of every (series, task) in `data` whose samples files exist and that has a
/// 0/1 metric; `tasks` filters by task name (empty: all).
pub fn all_task_items(data: &Dataset, tasks: &[String]) -> Result<Vec<TaskItems>> {
    let mut out = Vec::new();
    let found = series_checkpoints(data);
    for t in tasks {
        if !found.keys().any(|(_, task)| task == t) {
            let mut known: Vec<&str> = found.keys().map(|(_, task)| task.as_str()).collect();
            known.dedup();
            bail!(
                "--tasks: no per-sample results of task `{t}` (tasks with samples files: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    for ((series, task), ckpts) in found {
        if !tasks.is_empty() && !tasks.contains(&task) {
            continue;
        }
        let samples = ckpts
            .iter()
            .map(|c| read_samples(&c.samples))
            .collect::<Result<Vec<_>>>()?;
        if let Some(t) = task_items(&series, &task, ckpts, samples)? {
            out.push(t);
        }
    }
    Ok(out)
}

/// Where `k2 analyze items` reads from.
pub fn load(run: Option<&Path>, results: Option<&Path>) -> Result<Dataset> {
    match (run, results) {
        (Some(r), None) => crate::inputs::read_k2_run(r, None),
        (None, Some(d)) => crate::inputs::read_lm_eval_dir(d),
        _ => bail!("give exactly one of a run directory or a results directory"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    #[test]
    fn classes_ages_and_forgetting_events_by_hand() {
        for (s, aoa, f, class) in [
            ("0000", None, 0, ItemClass::NeverLearned),
            ("1111", Some(0), 0, ItemClass::AlwaysKnown),
            ("0011", Some(2), 0, ItemClass::Learned),
            ("1100", None, 1, ItemClass::Forgotten),
            ("0110", None, 1, ItemClass::Forgotten),
            ("1011", Some(2), 1, ItemClass::Unstable),
            ("0101", Some(3), 1, ItemClass::Unstable),
            ("1010", None, 2, ItemClass::Unstable),
        ] {
            assert_eq!(classify(&seq(s)), (aoa, f, class), "{s}");
        }
    }

    #[test]
    fn emergence_needs_every_later_checkpoint_significant() {
        // 200 items, chance 1/4: 50 is chance, 75 is p ~ 6e-5, 60 is p ~ 0.06.
        let e = emergence(vec![50, 75, 60, 80, 90], 200, 0.25);
        assert_eq!(e.at, Some(3));
        let e = emergence(vec![50, 52, 49], 200, 0.25);
        assert_eq!(e.at, None);
        // Holm: the 5 p-values are adjusted by up to 5x.
        assert!(e.holm.iter().zip(&e.p_values).all(|(a, p)| a >= p));
    }
}
