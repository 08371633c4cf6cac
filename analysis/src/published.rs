//! k2's own results beside a model's published ones (Pythia's per-checkpoint lm-eval JSONs in
//! `fixtures/pythia_evals`): both sets become series of the same capability figure, labelled
//! `<model> (k2)` and `<model> (published)`, and a table sets the two values side by side per
//! matched checkpoint (same model, task and step).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Result};

use crate::inputs::{headline_metric, Point};
use crate::tables::simple_table;

pub const K2_TAG: &str = "k2";
pub const PUBLISHED_TAG: &str = "published";

fn tagged(series: &str, tag: &str) -> String {
    format!("{series} ({tag})")
}

/// The series a tagged series was made from.
fn untagged(series: &str) -> &str {
    for tag in [K2_TAG, PUBLISHED_TAG] {
        if let Some(s) = series.strip_suffix(&format!(" ({tag})")) {
            return s;
        }
    }
    series
}

/// Metric names of lm-eval v0.3 that v0.4 (and k2) spell differently.
fn metric_v04(metric: &str) -> &str {
    match metric {
        "ppl" => "perplexity",
        m => m,
    }
}

/// Tags k2's points and the published ones, keeping of the published only the (model, task)
/// pairs k2 has results for. An empty overlap is an error naming the published directory.
pub fn pair_up(k2: &mut Vec<Point>, mut published: Vec<Point>, dir: &Path) -> Result<()> {
    let wanted: BTreeSet<(String, String)> = k2
        .iter()
        .map(|p| (p.series.clone(), p.task.clone()))
        .collect();
    published.retain(|p| wanted.contains(&(p.series.clone(), p.task.clone())));
    if published.is_empty() {
        let models: BTreeSet<&str> = k2.iter().map(|p| p.series.as_str()).collect();
        bail!(
            "{}: no published result matches a model and task of k2's results (k2 has {} on {})",
            dir.display(),
            models.into_iter().collect::<Vec<_>>().join(", "),
            wanted
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for p in k2.iter_mut() {
        p.series = tagged(&p.series, K2_TAG);
    }
    for mut p in published {
        p.series = tagged(&p.series, PUBLISHED_TAG);
        p.metric = metric_v04(&p.metric).to_string();
        k2.push(p);
    }
    Ok(())
}

/// Markdown table of the headline metric per (model, task, step) on either side: k2's value, the
/// published value and their difference, `—` where a side has no value.
pub fn comparison_table(points: &[Point]) -> String {
    type Key = (String, String, u64);
    let mut cells: BTreeMap<Key, (Option<f64>, Option<f64>)> = BTreeMap::new();
    let tasks: BTreeSet<&str> = points.iter().map(|p| p.task.as_str()).collect();
    let mut metric_of = BTreeMap::new();
    for t in &tasks {
        if let Some(m) = headline_metric(points, t) {
            metric_of.insert(t.to_string(), m);
        }
    }
    for p in points {
        if metric_of.get(&p.task) != Some(&p.metric) {
            continue;
        }
        let k2 = p.series.ends_with(&format!(" ({K2_TAG})"));
        let published = p.series.ends_with(&format!(" ({PUBLISHED_TAG})"));
        if !k2 && !published {
            continue;
        }
        let e = cells
            .entry((untagged(&p.series).to_string(), p.task.clone(), p.step))
            .or_default();
        if k2 {
            e.0 = Some(p.value);
        } else {
            e.1 = Some(p.value);
        }
    }
    let f = |v: Option<f64>| v.map_or("—".to_string(), |x| format!("{x:.4}"));
    let rows = cells
        .into_iter()
        .map(|((series, task, step), (a, b))| {
            vec![
                series,
                format!("{task} ({})", metric_of[&task]),
                step.to_string(),
                f(a),
                f(b),
                match (a, b) {
                    (Some(a), Some(b)) => format!("{:+.4}", a - b),
                    _ => "—".into(),
                },
            ]
        })
        .collect();
    simple_table(
        &[
            "model",
            "task (metric)",
            "step",
            "k2",
            "published",
            "k2 − published",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(series: &str, task: &str, metric: &str, step: u64, value: f64) -> Point {
        Point {
            series: series.into(),
            shots: 0,
            task: task.into(),
            metric: metric.into(),
            step,
            tokens: None,
            value,
            stderr: None,
            checkpoint: format!("step{step}"),
            source: "x.json".into(),
        }
    }

    #[test]
    fn published_points_are_kept_for_k2s_models_and_tasks_and_set_side_by_side() {
        let mut k2 = vec![
            pt("pythia-160m", "arc_easy", "acc", 1000, 0.40),
            pt("pythia-160m", "arc_easy", "acc", 5000, 0.42),
            pt("pythia-160m", "lambada_openai", "perplexity", 1000, 90.0),
        ];
        let published = vec![
            pt("pythia-160m", "arc_easy", "acc", 1000, 0.41),
            pt("pythia-160m", "arc_easy", "acc", 3000, 0.43),
            pt("pythia-160m", "lambada_openai", "ppl", 1000, 88.0),
            pt("pythia-160m", "piqa", "acc", 1000, 0.6),
            pt("pythia-1b", "arc_easy", "acc", 1000, 0.5),
        ];
        pair_up(&mut k2, published, Path::new("pub")).unwrap();
        assert_eq!(k2.len(), 6, "piqa and pythia-1b are not k2's");
        assert!(k2
            .iter()
            .any(|p| p.series == "pythia-160m (published)" && p.metric == "perplexity"));
        let rows: Vec<Vec<String>> = comparison_table(&k2)
            .lines()
            .map(|l| {
                l.split('|')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect();
        let has = |want: &[&str]| rows.iter().any(|r| r == want);
        assert!(has(&[
            "pythia-160m",
            "arc_easy (acc)",
            "1000",
            "0.4000",
            "0.4100",
            "-0.0100"
        ]));
        assert!(has(&[
            "pythia-160m",
            "arc_easy (acc)",
            "3000",
            "—",
            "0.4300",
            "—"
        ]));
        assert!(has(&[
            "pythia-160m",
            "arc_easy (acc)",
            "5000",
            "0.4200",
            "—",
            "—"
        ]));
        assert!(has(&[
            "pythia-160m",
            "lambada_openai (perplexity)",
            "1000",
            "90.0000",
            "88.0000",
            "+2.0000"
        ]));
    }

    #[test]
    fn no_overlap_is_an_error_naming_the_directory() {
        let mut k2 = vec![pt("olmo-1b", "arc_easy", "acc", 1, 0.3)];
        let e = pair_up(
            &mut k2,
            vec![pt("pythia-160m", "arc_easy", "acc", 1, 0.4)],
            Path::new("/data/pythia_evals"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/data/pythia_evals") && e.contains("olmo-1b"),
            "{e}"
        );
    }
}
