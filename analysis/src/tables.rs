//! GitHub-markdown tables (tabled).

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::inputs::{headline_metric, Point};

/// Formats a value for the tables (4 decimals; perplexities and other large values with 2).
pub fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn task_header(points: &[Point], task: &str) -> String {
    match headline_metric(points, task) {
        Some(m) => format!("{task} ({m})"),
        None => task.to_string(),
    }
}

/// Checkpoint x task matrix of the headline metric of each task, for one series and shot count.
/// Rows are checkpoints in step order: `checkpoint | step | tokens | <task (metric)>...`.
pub fn checkpoint_task_table(
    points: &[Point],
    series: &str,
    shots: u32,
    tasks: &[String],
) -> String {
    let pts: Vec<&Point> = points
        .iter()
        .filter(|p| p.series == series && p.shots == shots)
        .collect();
    let mut steps: Vec<(u64, String, Option<u64>)> = pts
        .iter()
        .map(|p| (p.step, p.checkpoint.clone(), p.tokens))
        .collect();
    steps.sort();
    steps.dedup_by(|a, b| a.0 == b.0);
    let heads: Vec<Option<String>> = tasks.iter().map(|t| headline_metric(points, t)).collect();
    let mut b = Builder::default();
    let mut header = vec!["checkpoint".to_string(), "step".into(), "tokens".into()];
    header.extend(tasks.iter().map(|t| task_header(points, t)));
    b.push_record(header);
    for (step, ckpt, tokens) in &steps {
        let mut row = vec![
            ckpt.clone(),
            step.to_string(),
            tokens.map(fmt_tokens).unwrap_or_default(),
        ];
        for (t, m) in tasks.iter().zip(&heads) {
            let v = pts
                .iter()
                .find(|p| p.step == *step && &p.task == t && Some(&p.metric) == m.as_ref())
                .map(|p| fmt_value(p.value))
                .unwrap_or_else(|| "–".into());
            row.push(v);
        }
        b.push_record(row);
    }
    b.build().with(Style::markdown()).to_string()
}

/// Series x task table of the headline metric at each series' last checkpoint.
pub fn final_values_table(
    points: &[Point],
    series: &[String],
    shots: u32,
    tasks: &[String],
) -> String {
    let heads: Vec<Option<String>> = tasks.iter().map(|t| headline_metric(points, t)).collect();
    let mut b = Builder::default();
    let mut header = vec!["model".to_string(), "step".into(), "tokens".into()];
    header.extend(tasks.iter().map(|t| task_header(points, t)));
    b.push_record(header);
    for s in series {
        let pts: Vec<&Point> = points
            .iter()
            .filter(|p| &p.series == s && p.shots == shots)
            .collect();
        let Some(last) = pts.iter().map(|p| p.step).max() else {
            continue;
        };
        let tokens = pts.iter().find(|p| p.step == last).and_then(|p| p.tokens);
        let mut row = vec![
            s.clone(),
            last.to_string(),
            tokens.map(fmt_tokens).unwrap_or_default(),
        ];
        for (t, m) in tasks.iter().zip(&heads) {
            let v = pts
                .iter()
                .find(|p| p.step == last && &p.task == t && Some(&p.metric) == m.as_ref())
                .map(|p| fmt_value(p.value))
                .unwrap_or_else(|| "–".into());
            row.push(v);
        }
        b.push_record(row);
    }
    b.build().with(Style::markdown()).to_string()
}

/// A markdown table from a header and rows.
pub fn simple_table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut b = Builder::default();
    b.push_record(header.iter().map(|s| s.to_string()));
    for r in rows {
        b.push_record(r);
    }
    b.build().with(Style::markdown()).to_string()
}

/// `1.23B`, `655K`, `40960` -> human-readable token counts (3 significant digits).
pub fn fmt_tokens(t: u64) -> String {
    human(t as f64)
}

/// Human-readable number with K/M/B/T suffix.
pub fn human(v: f64) -> String {
    let a = v.abs();
    let (d, s) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "B")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "K")
    } else {
        (1.0, "")
    };
    let x = v / d;
    let txt = if x.abs() >= 100.0 || d == 1.0 && x.fract() == 0.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let txt = if txt.contains('.') {
        txt.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        txt
    };
    format!("{txt}{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(human(40960.0), "41K");
        assert_eq!(human(299_892_736_000.0), "300B");
        assert_eq!(human(2_097_152.0), "2.1M");
        assert_eq!(human(1e9), "1B");
        assert_eq!(human(320.0), "320");
        assert_eq!(fmt_value(0.3283524160683097), "0.3284");
        assert_eq!(fmt_value(3_560_000.0), "3560000.00");
    }
}
