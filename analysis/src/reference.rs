//! Reference models: published numbers from a TOML file (the K2 release's figures ship in
//! `assets/reference_models.toml`) and the "final checkpoint vs reference models" table.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::inputs::{headline_metric, series_order, Point};
use crate::tables::simple_table;

/// The shipped reference file (K2 release figures for K2, K2-Stage 1, Llama 2-70B, Llama-65B).
pub const DEFAULT_REFERENCE: &str = include_str!("../assets/reference_models.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct RefTask {
    pub label: String,
    pub metric: String,
    pub shots: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefModel {
    pub name: String,
    pub source: String,
    /// Task -> value in percent.
    pub values: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct References {
    pub format: u32,
    pub tasks: BTreeMap<String, RefTask>,
    #[serde(rename = "model")]
    pub models: Vec<RefModel>,
}

impl References {
    /// Parses a reference-models TOML.
    pub fn parse(text: &str) -> Result<Self> {
        toml::from_str(text).context("reference models TOML")
    }

    /// The shipped K2 release figures.
    pub fn shipped() -> Self {
        Self::parse(DEFAULT_REFERENCE).expect("assets/reference_models.toml is valid")
    }

    /// Task keys in the order of the K2 release table.
    pub fn task_order(&self) -> Vec<String> {
        let order = [
            "mmlu",
            "hellaswag",
            "arc_challenge",
            "winogrande",
            "truthfulqa_mc2",
            "gsm8k",
        ];
        let mut v: Vec<String> = order
            .iter()
            .filter(|t| self.tasks.contains_key(**t))
            .map(|t| t.to_string())
            .collect();
        let rest: Vec<String> = self
            .tasks
            .keys()
            .filter(|k| !v.contains(k))
            .cloned()
            .collect();
        v.extend(rest);
        v
    }
}

/// The run's task matching a reference task key (`mmlu` also matches `mmlu (mean of N)`).
fn matching_task<'a>(tasks: &'a [String], key: &str) -> Option<&'a String> {
    tasks.iter().find(|t| *t == key).or_else(|| {
        tasks
            .iter()
            .find(|t| t.starts_with(&format!("{key} (mean of")))
    })
}

/// One row of the comparison read from the data: value in percent per reference task.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub series: String,
    pub shots: u32,
    pub step: u64,
    /// reference task key -> (value in percent, metric used)
    pub values: BTreeMap<String, (f64, String)>,
}

/// The final-checkpoint values of every (series, shots) for the reference tasks it has.
pub fn run_rows(points: &[Point], refs: &References) -> Vec<RunRow> {
    let mut tasks: Vec<String> = points.iter().map(|p| p.task.clone()).collect();
    tasks.sort();
    tasks.dedup();
    let mut keys: Vec<(String, u32)> = points.iter().map(|p| (p.series.clone(), p.shots)).collect();
    keys.sort_by(|a, b| series_order(&a.0, &b.0).then(a.1.cmp(&b.1)));
    keys.dedup();
    let mut out = Vec::new();
    for (series, shots) in keys {
        let pts: Vec<&Point> = points
            .iter()
            .filter(|p| p.series == series && p.shots == shots)
            .collect();
        let Some(last) = pts.iter().map(|p| p.step).max() else {
            continue;
        };
        let mut values = BTreeMap::new();
        for key in refs.task_order() {
            let Some(task) = matching_task(&tasks, &key) else {
                continue;
            };
            let want = &refs.tasks[&key].metric;
            let has_want = pts.iter().any(|p| &p.task == task && &p.metric == want);
            let metric = if has_want {
                Some(want.clone())
            } else {
                headline_metric(points, task)
            };
            let Some(metric) = metric else { continue };
            if let Some(p) = pts
                .iter()
                .find(|p| p.step == last && &p.task == task && p.metric == metric)
            {
                values.insert(key.clone(), (p.value * 100.0, metric));
            }
        }
        if !values.is_empty() {
            out.push(RunRow {
                series,
                shots,
                step: last,
                values,
            });
        }
    }
    out
}

/// Markdown section body: the comparison table plus notes. Reference rows always; rows read from
/// the data for every (series, shots) that has one of the reference tasks, else "no shared tasks".
pub fn reference_section(points: &[Point], refs: &References) -> String {
    let keys = refs.task_order();
    let rows_data = run_rows(points, refs);
    let mut header: Vec<String> = vec!["model".into(), "source".into()];
    header.extend(
        keys.iter()
            .map(|k| format!("{} ({}-shot)", refs.tasks[k].label, refs.tasks[k].shots)),
    );
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (i, m) in refs.models.iter().enumerate() {
        let mut r = vec![format!("{} (reference)", m.name), format!("[{}]", i + 1)];
        r.extend(keys.iter().map(|k| {
            m.values
                .get(k)
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "–".into())
        }));
        rows.push(r);
    }
    for rr in &rows_data {
        let mut r = vec![
            format!("{} (step {}, {}-shot)", rr.series, rr.step, rr.shots),
            "this report".into(),
        ];
        r.extend(keys.iter().map(|k| {
            rr.values
                .get(k)
                .map(|(v, m)| format!("{v:.1} ({m})"))
                .unwrap_or_else(|| "–".into())
        }));
        rows.push(r);
    }
    let mut s = simple_table(&header_refs, rows);
    s.push_str("\n\nValues in percent. ");
    if rows_data.is_empty() {
        s.push_str(&format!(
            "This report's data has **no shared tasks** with the reference models ({}), so only the published numbers are shown.",
            keys.join(", ")
        ));
    } else {
        s.push_str("Rows from this report: the last checkpoint of each model at each shot count, with the metric used in brackets (the reference metric when reported, else the headline metric). The shot counts in the header are those of the published numbers; rows from this report keep their own shot count, so compare like with like.");
    }
    s.push_str("\n\nSources:\n\n");
    for (i, m) in refs.models.iter().enumerate() {
        s.push_str(&format!("{}. {}: {}\n", i + 1, m.name, m.source));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_reference_has_k2_figures() {
        let r = References::shipped();
        assert_eq!(r.format, 1);
        assert_eq!(
            r.task_order(),
            [
                "mmlu",
                "hellaswag",
                "arc_challenge",
                "winogrande",
                "truthfulqa_mc2",
                "gsm8k"
            ]
        );
        let names: Vec<&str> = r.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["K2 (final)", "K2-Stage 1", "Llama 2-70B", "Llama-65B"]
        );
        let k2 = &r.models[0].values;
        assert_eq!(k2["mmlu"], 62.6);
        assert_eq!(k2["gsm8k"], 58.3);
        assert_eq!(r.models[1].values["arc_challenge"], 64.8);
        assert_eq!(r.models[2].values["truthfulqa_mc2"], 44.9);
        assert_eq!(r.models[3].values["hellaswag"], 85.9);
        assert!(r
            .models
            .iter()
            .all(|m| m.values.len() == 6 && !m.source.is_empty()));
    }
}
