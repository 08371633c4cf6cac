//! Checkpoint A against checkpoint B, sample by sample (K2's Evaluation Gallery): per task both
//! scores, the difference `B - A` with its 95% interval and p-value, and the items that flipped
//! each way with their prompts, gold answers, both predictions and log-likelihoods.
//!
//! * Tasks with a 0/1 metric ([`crate::samples::correctness_metric`]): the exact McNemar test and
//!   the paired Wald interval ([`crate::stats::paired_accuracy`]); the mean gold log-likelihood's
//!   change by the paired bootstrap.
//! * Other tasks (perplexities): the paired bootstrap of the first per-document metric.
//!
//! Items are paired by `doc_id`; a document whose prompt differs between the two sides is an
//! error naming both files. A side is a directory of one checkpoint's results
//! (`<task>.json` + `<task>.samples.jsonl`), e.g. `<run>/eval/ckpt_0005`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::samples::{correctness_metric, read_samples, Sample};
use crate::stats::{
    paired_accuracy, paired_bootstrap, Difference, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED,
};
use crate::tables::simple_table;

/// One side of a comparison.
#[derive(Debug, Clone)]
pub struct Side {
    /// What it is called in tables (`ckpt_0005`).
    pub label: String,
    pub dir: PathBuf,
}

/// An item right on one side only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flip {
    pub doc_id: usize,
    pub prompt: String,
    pub target: String,
    pub prediction_a: String,
    pub prediction_b: String,
    pub gold_ll_a: Option<f64>,
    pub gold_ll_b: Option<f64>,
    pub margin_a: Option<f64>,
    pub margin_b: Option<f64>,
}

/// One task compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskComparison {
    pub task: String,
    pub metric: String,
    pub n: usize,
    pub score_a: f64,
    pub score_b: f64,
    /// `B - A` with its interval and p-value.
    #[serde(flatten)]
    pub diff: Difference,
    /// `mcnemar_exact` or `paired_bootstrap`.
    pub test: &'static str,
    /// Items right on A only (lost by B) and on B only (gained).
    pub a_only: usize,
    pub b_only: usize,
    pub gold_ll_a: Option<f64>,
    pub gold_ll_b: Option<f64>,
    pub gold_ll_diff: Option<Difference>,
    /// Right on A, wrong on B.
    pub lost: Vec<Flip>,
    /// Wrong on A, right on B.
    pub gained: Vec<Flip>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub tasks: Vec<TaskComparison>,
}

/// Tasks with a samples file in `dir`.
fn tasks_in(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().to_string();
        if let Some(t) = name.strip_suffix(".samples.jsonl") {
            out.push(t.to_string());
        }
    }
    out.sort();
    Ok(out)
}

fn mean(xs: &[f64]) -> Option<f64> {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Compares the tasks both sides have (or `tasks`, which both must have).
pub fn compare(a: &Side, b: &Side, tasks: &[String]) -> Result<Comparison> {
    for s in [a, b] {
        if !s.dir.is_dir() {
            bail!(
                "{}: no results directory for `{}`",
                s.dir.display(),
                s.label
            );
        }
    }
    let ta = tasks_in(&a.dir)?;
    let tb = tasks_in(&b.dir)?;
    let names: Vec<String> = if tasks.is_empty() {
        ta.iter().filter(|t| tb.contains(t)).cloned().collect()
    } else {
        for t in tasks {
            for (s, have) in [(a, &ta), (b, &tb)] {
                if !have.contains(t) {
                    bail!(
                        "{}: no samples of task `{t}` for `{}` (have: {})",
                        s.dir.display(),
                        s.label,
                        have.join(", ")
                    );
                }
            }
        }
        tasks.to_vec()
    };
    if names.is_empty() {
        bail!(
            "`{}` ({}) and `{}` ({}) have no task in common with samples files",
            a.label,
            a.dir.display(),
            b.label,
            b.dir.display()
        );
    }
    let mut out = Vec::new();
    for t in &names {
        let pa = a.dir.join(format!("{t}.samples.jsonl"));
        let pb = b.dir.join(format!("{t}.samples.jsonl"));
        out.push(compare_task(
            t,
            &pa,
            &read_samples(&pa)?,
            &pb,
            &read_samples(&pb)?,
        )?);
    }
    Ok(Comparison {
        a: a.label.clone(),
        b: b.label.clone(),
        tasks: out,
    })
}

/// Compares one task's samples.
pub fn compare_task(
    task: &str,
    path_a: &Path,
    sa: &[Sample],
    path_b: &Path,
    sb: &[Sample],
) -> Result<TaskComparison> {
    let mut pairs: Vec<(&Sample, &Sample)> = Vec::new();
    for x in sa {
        if let Some(y) = sb.iter().find(|y| y.doc_id == x.doc_id) {
            if x.prompt_hash != y.prompt_hash {
                bail!(
                    "doc_id {} has different prompts in {} and {} (different few-shot count or data)",
                    x.doc_id,
                    path_a.display(),
                    path_b.display()
                );
            }
            pairs.push((x, y));
        }
    }
    if pairs.is_empty() {
        bail!(
            "{} and {} share no doc_id",
            path_a.display(),
            path_b.display()
        );
    }
    let n = pairs.len();
    let gla: Vec<f64> = pairs
        .iter()
        .map(|(x, _)| x.gold_ll().unwrap_or(f64::NAN))
        .collect();
    let glb: Vec<f64> = pairs
        .iter()
        .map(|(_, y)| y.gold_ll().unwrap_or(f64::NAN))
        .collect();
    let flip = |x: &Sample, y: &Sample| Flip {
        doc_id: x.doc_id,
        prompt: x.prompt.clone(),
        target: x.target.clone(),
        prediction_a: x.prediction.clone(),
        prediction_b: y.prediction.clone(),
        gold_ll_a: x.gold_ll(),
        gold_ll_b: y.gold_ll(),
        margin_a: x.margin(),
        margin_b: y.margin(),
    };
    let both: Vec<Sample> = pairs.iter().map(|(x, _)| (*x).clone()).collect();
    if let Some(metric) = correctness_metric(&both).filter(|m| {
        pairs
            .iter()
            .all(|(_, y)| y.metric(m).is_some_and(|v| v == 0.0 || v == 1.0))
    }) {
        let right = |s: &Sample| s.metric(&metric).unwrap_or(0.0) >= 0.5;
        let lost: Vec<Flip> = pairs
            .iter()
            .filter(|(x, y)| right(x) && !right(y))
            .map(|(x, y)| flip(x, y))
            .collect();
        let gained: Vec<Flip> = pairs
            .iter()
            .filter(|(x, y)| !right(x) && right(y))
            .map(|(x, y)| flip(x, y))
            .collect();
        let ka = pairs.iter().filter(|(x, _)| right(x)).count();
        let kb = pairs.iter().filter(|(_, y)| right(y)).count();
        return Ok(TaskComparison {
            task: task.to_string(),
            metric: metric.clone(),
            n,
            score_a: ka as f64 / n as f64,
            score_b: kb as f64 / n as f64,
            diff: paired_accuracy(n as u64, lost.len() as u64, gained.len() as u64),
            test: "mcnemar_exact",
            a_only: lost.len(),
            b_only: gained.len(),
            gold_ll_a: mean(&gla),
            gold_ll_b: mean(&glb),
            gold_ll_diff: paired_bootstrap(&gla, &glb, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
            lost,
            gained,
        });
    }
    // A continuous per-document metric.
    let Some(metric) = sa
        .first()
        .and_then(|s| s.metrics.first())
        .map(|m| m.0.clone())
    else {
        bail!("{}: documents have no metrics", path_a.display());
    };
    let va: Vec<f64> = pairs
        .iter()
        .map(|(x, _)| x.metric(&metric).unwrap_or(f64::NAN))
        .collect();
    let vb: Vec<f64> = pairs
        .iter()
        .map(|(_, y)| y.metric(&metric).unwrap_or(f64::NAN))
        .collect();
    let Some(diff) = paired_bootstrap(&va, &vb, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED) else {
        bail!(
            "{}: metric `{metric}` has no finite value on both sides",
            path_a.display()
        );
    };
    Ok(TaskComparison {
        task: task.to_string(),
        metric,
        n,
        score_a: mean(&va).unwrap_or(f64::NAN),
        score_b: mean(&vb).unwrap_or(f64::NAN),
        diff,
        test: "paired_bootstrap",
        a_only: 0,
        b_only: 0,
        gold_ll_a: mean(&gla),
        gold_ll_b: mean(&glb),
        gold_ll_diff: paired_bootstrap(&gla, &glb, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
        lost: Vec::new(),
        gained: Vec::new(),
    })
}

/// `0.0123` -> `+0.0123`; p-values in scientific notation when small.
pub fn fmt_p(p: f64) -> String {
    if p == 0.0 {
        // A bootstrap p-value of 0: no resample crossed zero.
        "< 0.001".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// `+0.055 [+0.020, +0.090]`.
pub fn fmt_diff(d: &Difference) -> String {
    format!("{:+.4} [{:+.4}, {:+.4}]", d.diff, d.ci_low, d.ci_high)
}

/// The per-task summary as a markdown table (significant rows marked `*`).
pub fn summary_table(c: &Comparison) -> String {
    let rows = c
        .tasks
        .iter()
        .map(|t| {
            vec![
                t.task.clone(),
                t.metric.clone(),
                t.n.to_string(),
                format!("{:.4}", t.score_a),
                format!("{:.4}", t.score_b),
                fmt_diff(&t.diff),
                format!(
                    "{}{}",
                    fmt_p(t.diff.p_value),
                    if t.diff.significant() { " *" } else { "" }
                ),
                t.a_only.to_string(),
                t.b_only.to_string(),
                t.gold_ll_diff
                    .as_ref()
                    .map(fmt_diff)
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let a_only = format!("right on {} only", c.a);
    let b_only = format!("right on {} only", c.b);
    simple_table(
        &[
            "task",
            "metric",
            "n",
            &c.a,
            &c.b,
            "B - A [95% CI]",
            "p",
            &a_only,
            &b_only,
            "gold log-lik. B - A [95% CI]",
        ],
        rows,
    )
}

/// A markdown table cell: one line, pipes escaped, at most `max` characters (the end kept,
/// where the question is).
fn cell(s: &str, max: usize) -> String {
    let one = s.replace('\n', " ⏎ ").replace('|', "\\|");
    let n = one.chars().count();
    if n > max {
        format!("…{}", one.chars().skip(n - max).collect::<String>())
    } else {
        one
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.3}"))
}

/// The flipped items of one task as a markdown table (at most `limit` per direction).
pub fn flips_table(c: &Comparison, t: &TaskComparison, limit: usize) -> String {
    let mut s = String::new();
    for (what, flips) in [
        (format!("right on {}, wrong on {}", c.a, c.b), &t.lost),
        (format!("wrong on {}, right on {}", c.a, c.b), &t.gained),
    ] {
        let _ = writeln!(s, "**{what}: {} items**\n", flips.len());
        if flips.is_empty() {
            continue;
        }
        let rows = flips
            .iter()
            .take(limit)
            .map(|f| {
                vec![
                    f.doc_id.to_string(),
                    cell(&f.prompt, 80),
                    cell(&f.target, 30),
                    cell(&f.prediction_a, 30),
                    cell(&f.prediction_b, 30),
                    format!("{} / {}", opt(f.gold_ll_a), opt(f.gold_ll_b)),
                    format!("{} / {}", opt(f.margin_a), opt(f.margin_b)),
                ]
            })
            .collect();
        let pa = format!("{} predicts", c.a);
        let pb = format!("{} predicts", c.b);
        s.push_str(&simple_table(
            &[
                "doc",
                "prompt (end)",
                "gold",
                &pa,
                &pb,
                "gold log-lik. A / B",
                "margin A / B",
            ],
            rows,
        ));
        s.push('\n');
        if flips.len() > limit {
            let _ = writeln!(s, "\n({} more in the JSON)", flips.len() - limit);
        }
        s.push('\n');
    }
    s
}

/// The whole comparison as markdown: the summary, then each task's flipped items.
pub fn to_markdown(c: &Comparison, limit: usize) -> String {
    let mut s = format!(
        "# {} vs {}\n\nB = {}, A = {}. Accuracies: exact McNemar test, paired Wald 95% interval; \
         log-likelihoods and continuous metrics: paired bootstrap ({} resamples, seed {}). \
         `*`: p < 0.05.\n\n",
        c.a, c.b, c.b, c.a, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
    );
    s.push_str(&summary_table(c));
    s.push('\n');
    for t in &c.tasks {
        if t.lost.is_empty() && t.gained.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n## {}\n", t.task);
        s.push_str(&flips_table(c, t, limit));
    }
    s
}

/// Writes the comparison as a self-contained HTML page.
pub fn write_html(c: &Comparison, path: &Path, limit: usize) -> Result<()> {
    let md = to_markdown(c, limit);
    let dir = path.parent().unwrap_or(Path::new("."));
    let html = crate::html::markdown_to_html(&md, &format!("{} vs {}", c.a, c.b), dir)?;
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    k2_archive::write_file_atomic(path, html.as_bytes())
        .with_context(|| format!("{}", path.display()))
}

/// A side named on the command line: a directory of results, else a checkpoint of `run`
/// (`<run>/eval/<name>`).
pub fn resolve_side(arg: &str, run: &Path) -> Result<Side> {
    let p = Path::new(arg);
    if p.is_dir() {
        let label = p
            .file_name()
            .map_or(arg.to_string(), |n| n.to_string_lossy().to_string());
        return Ok(Side {
            label,
            dir: p.to_path_buf(),
        });
    }
    let eval = k2_archive::RunLayout::new(run).eval_dir();
    let dir = eval.join(arg);
    if dir.is_dir() {
        return Ok(Side {
            label: arg.to_string(),
            dir,
        });
    }
    let mut have: Vec<String> = std::fs::read_dir(&eval)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    have.sort();
    if have.is_empty() {
        bail!(
            "`{arg}` is neither a results directory nor an evaluated checkpoint of {} (it has none: run `k2 eval --all-checkpoints --run {}`)",
            run.display(),
            run.display()
        );
    }
    bail!(
        "`{arg}` is neither a results directory nor an evaluated checkpoint of {} (evaluated: {})",
        run.display(),
        have.join(", ")
    )
}
