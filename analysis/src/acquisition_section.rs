//! The report section of a knowledge-injection run (`[[inject_facts]]`): what was injected where,
//! the trajectories and retainability figures, and the metrics table.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::acquisition_plots::{write_retainability, write_trajectories};
use crate::acquisition_tables::{load_run, metrics_table};
use crate::tables::simple_table;

/// `None` when the run has no injections or none was measured (`k2 analyze acquisition`).
pub fn acquisition_section(
    run: &Path,
    fig_dir: &Path,
    name: &str,
) -> Result<Option<(String, Vec<PathBuf>)>> {
    let Some(r) = load_run(run)? else {
        return Ok(None);
    };
    let mut md = String::from("## Knowledge acquisition and forgetting\n\n");
    writeln!(
        md,
        "Fictional facts (\"*an invented person* was born in *a fact-base country*\"; the people occur \
         nowhere else in the corpus) entered the training stream as `[[inject_facts]]` says, \
         replacing one sample per fact at each repetition (`k2 data batch --step S` shows them). \
         Each fact has three probes with a target span (Chang et al. 2024): memorization (the \
         injected wording), semantic (a paraphrase never injected) and composition (the capital \
         of the fact's country, which only the fact base teaches, asked through the person). \
         Each injection has a control set of as many facts, drawn the same way and never injected: \
         its probes move with the model's general learning of the templates and countries, and \
         every value below is net of that control mean. Written by `k2 analyze acquisition`.\n"
    )?;
    let rows = r
        .injections
        .iter()
        .map(|i| {
            let steps = r
                .trajectories
                .iter()
                .find(|t| t.injection == i.name)
                .map_or("-".into(), |t| format!("{}-{}", t.first_step, t.last_step));
            vec![
                i.name.clone(),
                i.mode.clone(),
                i.k.to_string(),
                i.facts.to_string(),
                i.chunk.to_string(),
                steps,
                i.seed.to_string(),
            ]
        })
        .collect();
    writeln!(
        md,
        "{}\n",
        simple_table(
            &[
                "injection",
                "mode",
                "k",
                "facts",
                "chunk",
                "trained at steps",
                "seed"
            ],
            rows
        )
    )?;
    let mut figures = Vec::new();
    figures.extend(write_trajectories(
        &r,
        &format!("{name}: gain in probe log-probability of injected facts, net of control"),
        &fig_dir.join("acquisition_trajectories"),
    )?);
    writeln!(
        md,
        "![trajectories](figures/acquisition_trajectories.png)\n\nThe mean gain of the \
         target-span log-probability over each injection's facts since the last measurement \
         before its first repetition, less its control set's change, at every measured step \
         (dense steps where the config asked for them, checkpoints elsewhere); band: ± 1 \
         standard error over facts; shaded bar: the steps that trained the injection. \
         [SVG](figures/acquisition_trajectories.svg)\n"
    )?;
    figures.extend(write_retainability(
        &r,
        &format!("{name}: retainability after the acquisition maximum"),
        &fig_dir.join("acquisition_retainability"),
    )?);
    writeln!(
        md,
        "![retainability](figures/acquisition_retainability.png)\n\nR(t): the share of the \
         gain (effectivity) left t steps after the local acquisition maximum (the highest value \
         within {} steps of the last repetition); dashed: the least-squares power law \
         a·t^-b in log-log (R(t) > 0 only; values outside [-0.5, 1.5] drawn at the edge). \
         [SVG](figures/acquisition_retainability.svg)\n",
        r.lam_window
    )?;
    writeln!(md, "{}\n", metrics_table(&r))?;
    Ok(Some((md, figures)))
}
