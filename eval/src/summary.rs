//! Plain-text tables of evaluation results for the terminal: checkpoint x task for a run, task x
//! metric for one model.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Result;
use crate::results::read_metrics;
use crate::results_layout::results_path;

/// The metric a table shows for a task: `acc_norm` where reported, else `acc`, else the first.
pub fn headline(metrics: &BTreeMap<String, f64>) -> Option<(String, f64)> {
    for k in [
        "acc_norm,none",
        "acc,none",
        "exact_match,flexible-extract",
        "word_perplexity,none",
    ] {
        if let Some(v) = metrics.get(k) {
            return Some((k.to_string(), *v));
        }
    }
    metrics
        .iter()
        .find(|(k, _)| !k.contains("_stderr"))
        .map(|(k, v)| (k.clone(), *v))
}

/// Every metric of every listed task found in `dir`.
pub fn table_for_dir(dir: &Path, tasks: &[String]) -> Result<String> {
    let mut s = format!(
        "{:<28} {:<34} {:>10} {:>10}\n",
        "task", "metric", "value", "stderr"
    );
    for t in tasks {
        let p = results_path(dir, t);
        if !p.exists() {
            continue;
        }
        let m = read_metrics(&p)?;
        for (k, v) in &m {
            if k.contains("_stderr") {
                continue;
            }
            let (name, filter) = k.split_once(',').unwrap_or((k, "none"));
            let se = m
                .get(&format!("{name}_stderr,{filter}"))
                .map_or("N/A".to_string(), |x| format!("{x:.4}"));
            s.push_str(&format!("{:<28} {:<34} {:>10.4} {:>10}\n", t, k, v, se));
        }
    }
    Ok(s)
}

/// Checkpoint x task headline metrics of a run's `eval/` directory, checkpoints in name order.
pub fn table_for_run(run_dir: &Path) -> Result<String> {
    let eval = run_dir.join("eval");
    let mut ckpts: Vec<String> = match std::fs::read_dir(&eval) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.'))
            .collect(),
        Err(_) => return Ok(String::new()),
    };
    ckpts.sort();
    let mut tasks: Vec<String> = Vec::new();
    let mut rows: Vec<(String, BTreeMap<String, f64>)> = Vec::new();
    for c in &ckpts {
        let mut row = BTreeMap::new();
        let dir = eval.join(c);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if let Some(task) = name.strip_suffix(".json") {
                if let Some((_, v)) = headline(&read_metrics(&f)?) {
                    row.insert(task.to_string(), v);
                    if !tasks.contains(&task.to_string()) {
                        tasks.push(task.to_string());
                    }
                }
            }
        }
        rows.push((c.clone(), row));
    }
    let width = tasks.iter().map(|t| t.len().max(8)).collect::<Vec<_>>();
    let mut s = format!("{:<12}", "checkpoint");
    for (t, w) in tasks.iter().zip(&width) {
        s.push_str(&format!(" {:>w$}", t, w = w));
    }
    s.push('\n');
    for (c, row) in rows {
        s.push_str(&format!("{:<12}", c));
        for (t, w) in tasks.iter().zip(&width) {
            match row.get(t) {
                Some(v) => s.push_str(&format!(" {:>w$.3}", v, w = w)),
                None => s.push_str(&format!(" {:>w$}", "-", w = w)),
            }
        }
        s.push('\n');
    }
    Ok(s)
}

/// `k2 eval --status`: one line per checkpoint (its tasks' states) and the totals.
pub fn status_table(pairs: &[(String, String, crate::sweep::PairState)]) -> String {
    use crate::sweep::PairState;
    let mut s = String::new();
    let (mut done, mut claimed, mut stale, mut failed, mut pending) = (0, 0, 0, 0, 0);
    let mut i = 0;
    while i < pairs.len() {
        let ckpt = &pairs[i].0;
        s.push_str(&format!("{ckpt:<24}"));
        while i < pairs.len() && &pairs[i].0 == ckpt {
            let (_, task, state) = &pairs[i];
            let what = match state {
                PairState::Done => {
                    done += 1;
                    "done".to_string()
                }
                PairState::Claimed { claim, stale: st } => {
                    if *st {
                        stale += 1;
                    } else {
                        claimed += 1;
                    }
                    format!(
                        "{} by {}:{}",
                        if *st { "stale claim" } else { "claimed" },
                        claim.host,
                        claim.pid
                    )
                }
                PairState::Failed(why) => {
                    failed += 1;
                    format!("failed ({why})")
                }
                PairState::Pending => {
                    pending += 1;
                    "pending".to_string()
                }
            };
            s.push_str(&format!(" {task}={what}"));
            i += 1;
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "{} pairs: {done} done, {claimed} claimed, {stale} stale claims, {failed} failed, {pending} pending\n",
        pairs.len()
    ));
    s
}
