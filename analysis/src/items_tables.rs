//! The per-item analyses as markdown tables (for `k2 analyze items` and the report).

use crate::compare::{fmt_diff, fmt_p};
use crate::items::{ItemClass, TaskItems};
use crate::tables::{fmt_tokens, simple_table};

fn ckpt_label(t: &TaskItems, i: usize) -> String {
    let c = &t.checkpoints[i];
    match c.tokens {
        Some(tok) => format!("{} ({} tokens)", c.name, fmt_tokens(tok)),
        None => format!("{} (step {})", c.name, c.step),
    }
}

/// One row per task: item classes, the emergence point, first and last accuracy.
pub fn summary_table(ts: &[TaskItems]) -> String {
    let rows = ts
        .iter()
        .map(|t| {
            let counts = t.class_counts();
            let last = t.checkpoints.len().saturating_sub(1);
            let mut row = vec![t.task.clone(), t.n().to_string()];
            row.extend(ItemClass::ALL.iter().map(|c| counts[c].to_string()));
            let events: usize = t.items.iter().map(|i| i.forgetting_events).sum();
            row.push(events.to_string());
            row.push(match &t.emergence {
                None => "- (no chance level)".into(),
                Some(e) => match e.at {
                    Some(i) => ckpt_label(t, i),
                    None => format!("never (chance {:.3})", e.chance),
                },
            });
            row.push(format!("{:.3} → {:.3}", t.accuracy(0), t.accuracy(last)));
            row
        })
        .collect();
    let mut header = vec!["task", "items"];
    header.extend(ItemClass::ALL.iter().map(|c| c.label()));
    header.extend(["forgetting events", "emerges at", "accuracy first → last"]);
    simple_table(&header, rows)
}

/// Per consecutive pair of checkpoints: flips, the accuracy change (McNemar) and the gold
/// log-likelihood change (paired bootstrap); `*` marks p < 0.05.
pub fn changes_table(t: &TaskItems) -> String {
    let rows = t
        .changes
        .iter()
        .map(|c| {
            let star = |s: bool| if s { " *" } else { "" };
            vec![
                format!("{} → {}", c.from, c.to),
                format!("{:.3} → {:.3}", c.acc_from, c.acc_to),
                c.learned.to_string(),
                c.forgotten.to_string(),
                fmt_diff(&c.acc),
                format!("{}{}", fmt_p(c.acc.p_value), star(c.acc.significant())),
                c.gold_ll.as_ref().map_or("-".into(), fmt_diff),
                c.gold_ll.as_ref().map_or("-".into(), |d| {
                    format!("{}{}", fmt_p(d.p_value), star(d.significant()))
                }),
            ]
        })
        .collect();
    simple_table(
        &[
            "checkpoints",
            "accuracy",
            "learned",
            "forgotten",
            "Δ accuracy [95% CI]",
            "p (McNemar)",
            "Δ gold log-lik. [95% CI]",
            "p (bootstrap)",
        ],
        rows,
    )
}

/// Per checkpoint: accuracy, its binomial p-value against chance (raw and Holm), the items
/// acquired there, the mean gold log-likelihood and margin.
pub fn checkpoints_table(t: &TaskItems) -> String {
    let rows = (0..t.checkpoints.len())
        .map(|i| {
            let acquired = t.items.iter().filter(|x| x.acquired_at == Some(i)).count();
            let (p, h) = match &t.emergence {
                Some(e) => (
                    fmt_p(e.p_values[i]),
                    format!(
                        "{}{}",
                        fmt_p(e.holm[i]),
                        if e.at.is_some_and(|a| i >= a) {
                            " *"
                        } else {
                            ""
                        }
                    ),
                ),
                None => ("-".into(), "-".into()),
            };
            let f = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.3}"));
            vec![
                ckpt_label(t, i),
                format!("{:.3}", t.accuracy(i)),
                p,
                h,
                acquired.to_string(),
                f(t.mean_gold_ll(i)),
                f(t.mean_margin(i)),
            ]
        })
        .collect();
    simple_table(
        &[
            "checkpoint",
            "accuracy",
            "p > chance",
            "Holm p",
            "items acquired",
            "mean gold log-lik.",
            "mean margin",
        ],
        rows,
    )
}

/// All tables of `k2 analyze items`, as text.
pub fn items_text(ts: &[TaskItems]) -> String {
    let mut s = String::new();
    s.push_str(&summary_table(ts));
    s.push('\n');
    for t in ts {
        s.push_str(&format!(
            "\n{} ({}, {} items{}): per checkpoint (* = above chance from here on, Holm-corrected)\n",
            t.task,
            t.metric,
            t.n(),
            if t.dropped > 0 {
                format!(", {} left out: missing at some checkpoint", t.dropped)
            } else {
                String::new()
            }
        ));
        s.push_str(&checkpoints_table(t));
        s.push_str("\nchanges between consecutive checkpoints (* = p < 0.05)\n");
        s.push_str(&changes_table(t));
        s.push('\n');
    }
    s
}
