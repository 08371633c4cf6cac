//! The release report: `<out>/<name>/README.md` with tables and figures under `figures/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::datamix::write_data_mix;
use crate::heatmap::{write_heatmap, Heatmap};
use crate::inputs::{
    aggregate_mmlu, default_chance, headline_metric, read_k2_run, read_lm_eval_dir, Dataset, Point,
};
use crate::plots::{
    write_capability, write_training_with_events, CapabilityFigure, Line, Panel, TrainEvent,
};
use crate::tables::{checkpoint_task_table, final_values_table, fmt_tokens, simple_table};

/// What to render.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// A k2 run directory (`checkpoints.toml`, `metrics.jsonl`, `eval/`).
    pub run: Option<PathBuf>,
    /// A directory tree of lm-evaluation-harness results JSON (v0.3 or v0.4 layout).
    pub lm_eval_results: Option<PathBuf>,
    /// Published lm-eval results of the same models (e.g. `fixtures/pythia_evals`), drawn
    /// beside `lm_eval_results` (k2's own) and compared per checkpoint.
    pub published_results: Option<PathBuf>,
    /// Reports directory; the report goes to `<out>/<name>/`.
    pub out: PathBuf,
    pub name: String,
    /// Logarithmic tokens axis (for log-spaced checkpoints such as Pythia's).
    pub log_x: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    pub dir: PathBuf,
    pub readme: PathBuf,
    /// PNG and SVG files.
    pub figures: Vec<PathBuf>,
    pub series: Vec<String>,
    pub tasks: Vec<String>,
    pub points: usize,
}

/// Tasks kept out of the capability figures and tables (bias probes, not capabilities).
fn excluded(task: &str) -> bool {
    task.starts_with("crows_pairs")
}

/// Loads the inputs named in `opts` into one dataset (per-subject MMLU folded into its mean).
pub fn load_inputs(opts: &ReportOptions) -> Result<Dataset> {
    let mut data = Dataset::default();
    if let Some(run) = &opts.run {
        data = read_k2_run(run, None)?;
    }
    if let Some(dir) = &opts.lm_eval_results {
        let mut more = read_lm_eval_dir(dir)?.points;
        if let Some(p) = &opts.published_results {
            crate::published::pair_up(&mut more, read_lm_eval_dir(p)?.points, p)?;
        }
        data.points.extend(more);
    } else if let Some(p) = &opts.published_results {
        bail!(
            "{}: published results are drawn beside k2's own: give those with --lm-eval-results",
            p.display()
        );
    }
    if opts.run.is_none() && opts.lm_eval_results.is_none() {
        bail!("nothing to report: give a k2 run directory and/or a directory of lm-eval results");
    }
    data.points = aggregate_mmlu(std::mem::take(&mut data.points));
    data.points.retain(|p| !excluded(&p.task));
    Ok(data)
}

/// The series shown in the heat map: the k2 run if there is one, else the largest model
/// (by the parameter count in its name; the non-deduped variant first).
pub fn heatmap_series(series: &[String], run_name: Option<&str>) -> Option<String> {
    if let Some(r) = run_name {
        if series.iter().any(|s| s == r) {
            return Some(r.to_string());
        }
    }
    let mut best: Option<(&String, f64)> = None;
    for s in series {
        let p = crate::inputs::param_count(s).unwrap_or(0.0);
        if best.is_none_or(|(_, bp)| p > bp) {
            best = Some((s, p));
        }
    }
    best.map(|(s, _)| s.clone())
}

/// Checkpoint x task heat map of the headline metric of one series. Tasks whose headline values
/// are not all within 0..=1 (e.g. perplexities) are left out; returns None if nothing is left.
pub fn heatmap_for(
    points: &[Point],
    series: &str,
    tasks: &[String],
    title: String,
) -> Option<(Heatmap, Vec<String>)> {
    let pts: Vec<&Point> = points.iter().filter(|p| p.series == series).collect();
    let mut cols = Vec::new();
    let mut left_out = Vec::new();
    let mut keep: Vec<(String, String)> = Vec::new();
    for t in tasks {
        let Some(m) = headline_metric(points, t) else {
            continue;
        };
        let vals: Vec<f64> = pts
            .iter()
            .filter(|p| &p.task == t && p.metric == m)
            .map(|p| p.value)
            .collect();
        if vals.is_empty() {
            continue;
        }
        if vals.iter().all(|v| (0.0..=1.0).contains(v)) {
            cols.push(format!("{t} ({m})"));
            keep.push((t.clone(), m));
        } else {
            left_out.push(t.clone());
        }
    }
    if keep.is_empty() {
        return None;
    }
    let mut steps: Vec<(u64, String, Option<u64>)> = pts
        .iter()
        .filter(|p| keep.iter().any(|(t, _)| *t == p.task))
        .map(|p| (p.step, p.checkpoint.clone(), p.tokens))
        .collect();
    steps.sort();
    steps.dedup_by(|a, b| a.0 == b.0);
    let rows = steps
        .iter()
        .map(|(step, ck, tok)| {
            let base = if *ck == format!("step{step}") {
                format!("step {step}")
            } else {
                ck.clone()
            };
            match tok {
                Some(t) => format!("{base} · {}", fmt_tokens(*t)),
                None => base,
            }
        })
        .collect();
    let values: Vec<Vec<Option<f64>>> = steps
        .iter()
        .map(|(step, _, _)| {
            keep.iter()
                .map(|(t, m)| {
                    pts.iter()
                        .find(|p| p.step == *step && &p.task == t && &p.metric == m)
                        .map(|p| p.value)
                })
                .collect()
        })
        .collect();
    let all: Vec<f64> = values.iter().flatten().flatten().copied().collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // round the range outwards to 0.05 so the legend ticks are tidy
    let vmin = ((lo / 0.05).floor() * 0.05).max(0.0);
    let mut vmax = ((hi / 0.05).ceil() * 0.05).min(1.0);
    if vmax <= vmin {
        vmax = (vmin + 0.05).min(1.0);
    }
    Some((
        Heatmap {
            title,
            rows,
            cols,
            values,
            vmin,
            vmax,
            scale_label: "headline metric\n(fraction correct)".into(),
            row_breaks: Vec::new(),
            outlined: Vec::new(),
            outline_label: String::new(),
        },
        left_out,
    ))
}

/// Data mix per stage: `stage | chunks | tokens | <source> (share)...`; stages 1-based as in
/// the manifest when the index counts from 0.
pub fn data_mix_table(chunks: &[crate::inputs::ChunkRow]) -> String {
    let srcs = crate::datamix::sources(chunks);
    let base = u32::from(chunks.iter().map(|c| c.stage).min() == Some(0));
    let mut stages: BTreeMap<u32, (usize, BTreeMap<&str, u64>)> = BTreeMap::new();
    for c in chunks {
        let e = stages.entry(c.stage).or_default();
        e.0 += 1;
        for (k, n) in &c.tokens_by_source {
            *e.1.entry(k.as_str()).or_default() += n;
        }
    }
    let mut header: Vec<String> = vec!["stage".into(), "chunks".into(), "tokens".into()];
    header.extend(srcs.iter().cloned());
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows = stages
        .iter()
        .map(|(stage, (n, by))| {
            let total: u64 = by.values().sum();
            let mut row = vec![(stage + base).to_string(), n.to_string(), total.to_string()];
            for s in &srcs {
                let v = by.get(s.as_str()).copied().unwrap_or(0);
                row.push(if v == 0 {
                    "–".into()
                } else {
                    format!("{v} ({:.1} %)", 100.0 * v as f64 / total.max(1) as f64)
                });
            }
            row
        })
        .collect();
    simple_table(&header_refs, rows)
}

/// Events for the training figure, in step order: the manifest's loss spikes (start of each
/// spike; a rollback at the step it was decided) when it records them, else the checkpoints it
/// marks `spike` or `rolled_back`.
pub fn train_events(
    checkpoints: &[crate::inputs::CheckpointRow],
    spikes: &[k2_archive::SpikeEvent],
) -> Vec<TrainEvent> {
    let mut v: Vec<TrainEvent> = if spikes.is_empty() {
        checkpoints
            .iter()
            .filter(|c| c.status == "spike" || c.status == "rolled_back")
            .map(|c| TrainEvent {
                step: c.step,
                name: c.name.clone(),
                status: c.status.clone(),
            })
            .collect()
    } else {
        spikes
            .iter()
            .flat_map(|e| {
                let mut out = vec![TrainEvent {
                    step: e.start_step,
                    name: format!("{}, steps {}-{}", e.kind, e.start_step, e.end_step),
                    status: "spike".into(),
                }];
                if let Some(to) = &e.rollback_to {
                    out.push(TrainEvent {
                        step: e.end_step,
                        name: format!("to {to}"),
                        status: "rolled_back".into(),
                    });
                }
                out
            })
            .collect()
    };
    v.sort_by_key(|e| e.step);
    v
}

/// The manifest's loss spikes as a markdown table.
pub fn spike_table(spikes: &[k2_archive::SpikeEvent]) -> String {
    let rows: Vec<Vec<String>> = spikes
        .iter()
        .map(|e| {
            vec![
                e.kind.to_string(),
                format!("{}-{}", e.start_step, e.end_step),
                e.attempt.to_string(),
                format!("{} @ {}", e.chunk, e.position),
                e.flagged_by.clone(),
                format!(
                    "{:.3} (baseline {:.3} ± {:.3})",
                    e.peak_loss, e.baseline_loss, e.baseline_std
                ),
                format!("{:.1}x / {:.1}x", e.max_grad_ratio, e.max_update_ratio),
                match (&e.rollback_to, e.deferred_chunk) {
                    (Some(to), Some(c)) => format!(
                        "rolled back to `{to}`, chunk {c} deferred; kept {}",
                        e.spike_checkpoints
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => "none".into(),
                },
            ]
        })
        .collect();
    simple_table(
        &[
            "kind",
            "steps",
            "attempt",
            "chunk @ position",
            "flagged by",
            "peak loss",
            "max grad / update ratio",
            "action",
        ],
        rows,
    )
}

fn capability_figure(
    points: &[Point],
    series: &[String],
    tasks: &[String],
    title: String,
    log_x: bool,
) -> CapabilityFigure {
    let all_tokens = points.iter().all(|p| p.tokens.is_some());
    let x_name = match (all_tokens, log_x) {
        (true, true) => "tokens seen (log scale)",
        (true, false) => "tokens seen",
        (false, true) => "optimizer step (log scale)",
        (false, false) => "optimizer step",
    }
    .to_string();
    let panels = tasks
        .iter()
        .filter_map(|t| {
            let metric = headline_metric(points, t)?;
            let lines = series
                .iter()
                .filter_map(|s| {
                    let mut pts: Vec<(f64, f64, Option<f64>)> = points
                        .iter()
                        .filter(|p| &p.series == s && &p.task == t && p.metric == metric)
                        .map(|p| {
                            let x = if all_tokens {
                                p.tokens.unwrap_or(0) as f64
                            } else {
                                p.step as f64
                            };
                            (x, p.value, p.stderr)
                        })
                        .collect();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (!pts.is_empty()).then(|| Line {
                        series: s.clone(),
                        points: pts,
                    })
                })
                .collect();
            let metric_desc = if metric.starts_with("acc") {
                format!("{metric} (fraction correct)")
            } else {
                metric.clone()
            };
            Some(Panel {
                task: t.clone(),
                metric: metric_desc,
                chance: default_chance(t).filter(|_| metric.starts_with("acc")),
                lines,
                emergence: None,
            })
        })
        .collect();
    CapabilityFigure {
        title,
        x_name,
        log_x,
        panels,
        series: series.to_vec(),
        markers: Vec::new(),
    }
}

/// Renders the report; see [`ReportOptions`]. Returns what was written.
pub fn render_report(opts: &ReportOptions) -> Result<ReportSummary> {
    let data = load_inputs(opts)?;
    let dir = opts.out.join(&opts.name);
    let fig_dir = dir.join("figures");
    std::fs::create_dir_all(&fig_dir).with_context(|| format!("{}", fig_dir.display()))?;
    let series = data.series();
    let tasks = data.tasks();
    let mut figures = Vec::new();
    // Per-item dynamics of the run (its samples files), shown and marked on the figures.
    // Samples files that cannot be read (another tool's, an older format) leave the per-item
    // sections out, saying why; the rest of the report does not need them.
    let mut skipped: Vec<String> = Vec::new();
    let items: Vec<crate::items::TaskItems> = match &data.run_name {
        Some(name) if opts.run.is_some() => match crate::items::all_task_items(&data, &[]) {
            Ok(all) => all.into_iter().filter(|t| &t.series == name).collect(),
            Err(e) => {
                skipped.push(format!("per-item dynamics: {e:#}"));
                Vec::new()
            }
        },
        _ => Vec::new(),
    };
    let mut md = String::new();

    writeln!(md, "# {}\n", opts.name)?;
    writeln!(
        md,
        "Report generated by `k2 report` (k2-analysis {}).\n",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(md, "## What\n")?;
    if let (Some(run), Some(name)) = (&opts.run, &data.run_name) {
        writeln!(
            md,
            "- k2 run `{name}` (`{}`): {} checkpoints, {} training steps logged.",
            run.display(),
            data.checkpoints.len(),
            data.train.len()
        )?;
        if let Some(last) = data.checkpoints.last() {
            let cfg_path = k2_archive::RunLayout::new(run)
                .ckpt_dir(&last.name)
                .join("config.json");
            if let Ok(c) = k2_model::LlamaConfig::from_hf_json(&cfg_path) {
                writeln!(
                    md,
                    "- Model (`{}/config.json`): LLaMA, {} layers, hidden {}, {} heads ({} KV heads), SwiGLU {}, vocab {}, RoPE theta {}, context {}; **{} parameters**.",
                    last.name,
                    c.num_hidden_layers,
                    c.hidden_size,
                    c.num_attention_heads,
                    c.num_kv_heads(),
                    c.intermediate_size,
                    c.vocab_size,
                    c.rope_theta,
                    c.max_position_embeddings,
                    c.num_params()
                )?;
            }
            writeln!(md, "- Tokens seen at the last checkpoint: {}.", last.tokens)?;
        }
        let cfg_toml = k2_archive::RunLayout::new(run).config_path();
        if let Ok(text) = std::fs::read_to_string(&cfg_toml) {
            writeln!(md, "\n<details><summary>Training config (config.toml)</summary>\n\n```toml\n{}```\n\n</details>\n", text)?;
        }
    }
    if let Some(d) = &opts.lm_eval_results {
        writeln!(
            md,
            "- lm-evaluation-harness results read from `{}`.",
            d.display()
        )?;
    }
    writeln!(
        md,
        "- Models/runs: {}; tasks: {}; values: {}. Headline metric per task: `acc_norm` if reported, else `acc`, else the first metric.",
        series.len(),
        tasks.len(),
        data.points.len()
    )?;
    if data.points.iter().any(|p| p.task.starts_with("mmlu (mean")) {
        writeln!(md, "- `mmlu (mean of N)` is the unweighted mean over the N MMLU (hendrycksTest) subjects; its stderr assumes independent subjects.")?;
    }
    if data.points.iter().any(|p| p.series.contains("pythia")) {
        writeln!(md, "- Pythia tokens seen = step x 2,097,152 (1024 sequences x 2048 tokens per step). crows_pairs results are not shown.")?;
    }
    writeln!(md)?;
    if let Some(p) = &opts.published_results {
        writeln!(
            md,
            "## k2 beside the published results
"
        )?;
        writeln!(
            md,
            "k2's results (series `<model> (k2)`, from `{}`) and the published ones for the same models and tasks (series `<model> (published)`, from `{}`) are lines of the same capability figures below. Headline metric per task, per checkpoint step on either side:\n",
            opts.lm_eval_results.as_ref().map_or(String::new(), |d| d.display().to_string()),
            p.display()
        )?;
        writeln!(md, "{}\n", crate::published::comparison_table(&data.points))?;
        if data
            .points
            .iter()
            .any(|p| p.series.contains("pythia") && p.series.ends_with("(published)"))
        {
            writeln!(md, "Pythia's published numbers come from an old lm-evaluation-harness (v0.3 output); its README warns they may not be reproducible with the current harness, whose semantics k2 follows.\n")?;
        }
    }

    if !data.checkpoints.is_empty() {
        writeln!(md, "## Checkpoints\n")?;
        let rows = data
            .checkpoints
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.step.to_string(),
                    c.tokens.to_string(),
                    c.stage.to_string(),
                    c.status.clone(),
                    c.model_sha256
                        .clone()
                        .map(|s| format!("`{s}`"))
                        .unwrap_or_else(|| "–".into()),
                ]
            })
            .collect();
        writeln!(
            md,
            "{}\n",
            simple_table(
                &[
                    "checkpoint",
                    "step",
                    "tokens",
                    "stage",
                    "status",
                    "sha256 of model.safetensors"
                ],
                rows
            )
        )?;
    }

    if !data.train.is_empty() {
        let stem = fig_dir.join("training");
        let title = format!(
            "{}: training dynamics",
            data.run_name.as_deref().unwrap_or(&opts.name)
        );
        let events = train_events(&data.checkpoints, &data.spikes);
        figures.extend(write_training_with_events(
            &data.train,
            &data.train_diverged,
            &events,
            &title,
            &stem,
        )?);
        writeln!(md, "## Training dynamics\n")?;
        writeln!(md, "![training dynamics](figures/training.png)\n")?;
        let mut note = String::from("Loss (raw and exponentially smoothed), learning rate and gradient norm per optimizer step; dashed grey vertical lines mark stage boundaries.");
        if !data.spikes.is_empty() {
            note.push_str(" Loss spikes the detector recorded start at the solid red lines, rollbacks are the dashed purple lines, and the steps of rolled-back attempts are drawn in red.");
        } else if events.is_empty() {
            note.push_str(
                " No checkpoint is marked as a loss spike or rolled back in the manifest.",
            );
        } else {
            note.push_str(" Checkpoints the manifest marks as loss spikes (solid red) or rolled back (dashed purple): ");
            let list: Vec<String> = events
                .iter()
                .map(|e| format!("`{}` (step {}, {})", e.name, e.step, e.status))
                .collect();
            note.push_str(&list.join(", "));
            note.push('.');
        }
        writeln!(md, "{note} [SVG](figures/training.svg)\n")?;
        if !data.spikes.is_empty() {
            writeln!(md, "### Loss spikes\n")?;
            writeln!(md, "Detected online (loss vs its EMA, grad norm vs its running median) and classified as K2 did: **benign** spikes recover within the detector's window, **malignant** ones do not and are rolled back to the last checkpoint before the spike, with the chunk being trained moved to the end of its stage. Ratios are to the running medians before the spike.\n")?;
            writeln!(md, "{}\n", spike_table(&data.spikes))?;
        }
    }

    if !data.data_mix.is_empty() {
        let stem = fig_dir.join("data");
        let title = format!(
            "{}: training data by source",
            data.run_name.as_deref().unwrap_or(&opts.name)
        );
        figures.extend(write_data_mix(&data.data_mix, &title, &stem)?);
        writeln!(md, "## Data\n")?;
        writeln!(md, "![tokens per source over training](figures/data.png)\n")?;
        writeln!(md, "Top: tokens seen per source, cumulative and stacked; bottom: each source's share of the tokens of the chunk being trained. x: tokens seen, chunks in the run's `chunk_order.toml` order (from `data/index.json`); dashed vertical: stage boundary. [SVG](figures/data.svg)\n")?;
        writeln!(md, "{}\n", data_mix_table(&data.data_mix))?;
    }

    if let Some(run) = &opts.run {
        let series = data.run_name.as_deref().unwrap_or(&opts.name);
        if let Some((text, figs)) =
            crate::memorization::memorization_section(run, &fig_dir, series)?
        {
            md.push_str(&text);
            figures.extend(figs);
        }
        match crate::acquisition_section::acquisition_section(run, &fig_dir, series) {
            Ok(Some((text, figs))) => {
                md.push_str(&text);
                figures.extend(figs);
            }
            Ok(None) => {}
            Err(e) => skipped.push(format!("knowledge acquisition: {e:#}")),
        }
        match crate::token_curves_report::token_curves_section(run, &fig_dir, series) {
            Ok(Some((text, figs))) => {
                md.push_str(&text);
                figures.extend(figs);
            }
            Ok(None) => {}
            Err(e) => skipped.push(format!("token learning curves: {e:#}")),
        }
    }

    // one section per few-shot setting
    let mut by_shots: BTreeMap<u32, Vec<Point>> = BTreeMap::new();
    for p in &data.points {
        by_shots.entry(p.shots).or_default().push(p.clone());
    }
    for (shots, pts) in &by_shots {
        let s_series: Vec<String> = series
            .iter()
            .filter(|s| pts.iter().any(|p| &p.series == *s))
            .cloned()
            .collect();
        let s_tasks: Vec<String> = tasks
            .iter()
            .filter(|t| pts.iter().any(|p| &p.task == *t))
            .cloned()
            .collect();
        let stem_name = format!("capability_{shots}shot");
        let title = format!("{}: capability over training ({shots}-shot)", opts.name);
        let mut fig = capability_figure(pts, &s_series, &s_tasks, title, opts.log_x);
        // The run's emergence points (per-item analysis, accuracy vs chance).
        for panel in &mut fig.panels {
            panel.emergence = items
                .iter()
                .find(|t| t.task == panel.task && *shots == 0)
                .and_then(|t| t.emergence_checkpoint())
                .map(|c| {
                    if fig.x_name.starts_with("tokens") {
                        c.tokens.unwrap_or(0) as f64
                    } else {
                        c.step as f64
                    }
                });
        }
        // k2 runs: mark where each new stage starts
        if fig.x_name.starts_with("tokens") {
            for w in data.checkpoints.windows(2) {
                if w[1].stage != w[0].stage {
                    // stage N starts after the last checkpoint of stage N-1
                    let x = w[0].tokens as f64;
                    fig.markers.push((x, format!("stage {}", w[1].stage)));
                }
            }
        }
        figures.extend(write_capability(&fig, &fig_dir.join(&stem_name))?);
        writeln!(md, "## Capability over training ({shots}-shot)\n")?;
        writeln!(
            md,
            "![capability over training, {shots}-shot](figures/{stem_name}.png)\n"
        )?;
        let mut note = String::from("One panel per task, one line per model; shaded: ± 1 stderr; dashed grey: chance level (where known).");
        if !fig.markers.is_empty() {
            note.push_str(" Dotted vertical: stage boundary.");
        }
        if fig.panels.iter().any(|p| p.emergence.is_some()) {
            note.push_str(" Green vertical: the task emerges (per-item section: `acc` above chance from there on, exact binomial test, Holm-corrected).");
        }
        if opts.log_x && pts.iter().any(|p| p.tokens == Some(0) || p.step == 0) {
            note.push_str(" Step 0 (no tokens seen) cannot be placed on the log axis and is only in the tables.");
        }
        writeln!(md, "{note} [SVG](figures/{stem_name}.svg)\n")?;
        if let Some(hs) = heatmap_series(&s_series, data.run_name.as_deref()) {
            let hm_stem = format!("heatmap_{shots}shot");
            let title = format!("{hs}: checkpoint x task, headline metric ({shots}-shot)");
            if let Some((mut hm, left_out)) = heatmap_for(pts, &hs, &s_tasks, title) {
                // k2 runs: a black line where a new stage starts
                let stage_of = |row: &str| {
                    data.checkpoints
                        .iter()
                        .find(|c| row.starts_with(&format!("{} ", c.name)))
                        .map(|c| c.stage)
                };
                let stages: Vec<Option<u32>> = hm.rows.iter().map(|r| stage_of(r)).collect();
                hm.row_breaks = (1..stages.len())
                    .filter(|&i| {
                        stages[i].is_some() && stages[i - 1].is_some() && stages[i] != stages[i - 1]
                    })
                    .collect();
                figures.extend(write_heatmap(&hm, &fig_dir.join(&hm_stem))?);
                writeln!(
                    md,
                    "![checkpoint x task heat map, {shots}-shot](figures/{hm_stem}.png)\n"
                )?;
                let mut note = format!("Heat map of the headline metric of `{hs}`: one row per checkpoint (training order, top to bottom; tokens seen after the dot), one column per task; colour scale {:.2}–{:.2}, grey: no value.", hm.vmin, hm.vmax);
                if !hm.row_breaks.is_empty() {
                    note.push_str(" Black horizontal line: stage boundary.");
                }
                if s_series.len() > 1 {
                    note.push_str(&format!(" Only the largest model with {shots}-shot results (`{hs}`, by the parameter count in its name) is shown: one heat map per model would be too many; the tables below have every model."));
                }
                if !left_out.is_empty() {
                    note.push_str(&format!(
                        " Not on the 0–1 scale and left out: {}.",
                        left_out.join(", ")
                    ));
                }
                writeln!(md, "{note} [SVG](figures/{hm_stem}.svg)\n")?;
            }
        }
        writeln!(md, "### Final checkpoint\n")?;
        writeln!(
            md,
            "{}\n",
            final_values_table(pts, &s_series, *shots, &s_tasks)
        )?;
        writeln!(md, "### Every checkpoint\n")?;
        for s in &s_series {
            let t = checkpoint_task_table(pts, s, *shots, &s_tasks);
            if s_series.len() > 1 {
                writeln!(md, "<details><summary>{s}</summary>\n\n{t}\n\n</details>\n")?;
            } else {
                writeln!(md, "{t}\n")?;
            }
        }
    }
    if let Some((text, figs)) = crate::items_section::items_section(&items, &fig_dir, &opts.name)? {
        md.push_str(&text);
        figures.extend(figs);
    }
    if let Some(run) = &opts.run {
        if skipped.is_empty() {
            match crate::items_section::spike_comparisons(run, &data, &dir) {
                Ok(Some(text)) => md.push_str(&text),
                Ok(None) => {}
                Err(e) => skipped.push(format!("spike comparisons: {e:#}")),
            }
        }
        match crate::gallery::load_gallery(run) {
            Ok(Some(g)) => md.push_str(&crate::gallery::gallery_section(&g)),
            Ok(None) => {}
            Err(e) => skipped.push(format!("prompt gallery: {e:#}")),
        }
    }
    for why in &skipped {
        eprintln!("warning: report section left out: {why}");
        writeln!(
            md,
            "_Left out, its files could not be read: {}._\n",
            why.replace('_', "\\_")
        )?;
    }
    writeln!(md, "## Final checkpoint vs reference models\n")?;
    writeln!(
        md,
        "{}\n",
        crate::reference::reference_section(&data.points, &crate::reference::References::shipped())
    )?;
    let readme = dir.join("README.md");
    std::fs::write(&readme, &md).with_context(|| format!("{}", readme.display()))?;
    let html = crate::html::markdown_to_html(&md, &opts.name, &dir)?;
    let html_path = dir.join("index.html");
    std::fs::write(&html_path, html).with_context(|| format!("{}", html_path.display()))?;
    Ok(ReportSummary {
        dir,
        readme,
        figures,
        series,
        tasks,
        points: data.points.len(),
    })
}
