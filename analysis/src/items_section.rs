//! The report's per-item sections: item dynamics with their figures and significance tables,
//! and each spike checkpoint compared with the checkpoint its run rolled back to (an HTML page
//! of the flipped items beside the report).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::compare::{compare, to_markdown, write_html, Side};
use crate::inputs::Dataset;
use crate::items::TaskItems;
use crate::items_plots::{write_forgetting, write_raster, write_smooth_vs_accuracy};
use crate::items_tables::{changes_table, checkpoints_table, summary_table};

/// The per-item section of `items` (one series), or None when there are none.
pub fn items_section(
    items: &[TaskItems],
    fig_dir: &Path,
    name: &str,
) -> Result<Option<(String, Vec<PathBuf>)>> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut figures = Vec::new();
    let mut md = String::from("## Per-item dynamics\n\n");
    let series = &items[0].series;
    writeln!(
        md,
        "From the samples files of every checkpoint of `{series}` (the lineage: spike checkpoints \
         are compared below). Correctness is each task's `{}`; an item's age of acquisition is the \
         first checkpoint from which it stays correct; a forgetting event is correct at one \
         checkpoint and wrong at the next (Toneva et al. 2019). Emergence: the first checkpoint \
         whose accuracy is above chance by the one-sided exact binomial test, Holm-corrected over \
         the task's checkpoints, and stays so. Written by `k2 analyze items`.\n",
        items[0].metric
    )?;
    writeln!(md, "{}\n", summary_table(items))?;
    let raster = fig_dir.join("items_raster");
    figures.extend(write_raster(
        items,
        &format!("{name}: items x checkpoints"),
        &raster,
    )?);
    writeln!(
        md,
        "![items by age of acquisition](figures/items_raster.png)\n"
    )?;
    writeln!(
        md,
        "Each task's items (rows) sorted by age of acquisition, always known on top, never acquired \
         at the bottom; columns are checkpoints in training order; dark: correct. \
         [SVG](figures/items_raster.svg)\n"
    )?;
    figures.extend(write_smooth_vs_accuracy(
        items,
        &format!("{name}: accuracy and the gold answer's log-likelihood"),
        &fig_dir.join("items_gold_loglik"),
    )?);
    writeln!(
        md,
        "![accuracy beside the gold log-likelihood](figures/items_gold_loglik.png)\n"
    )?;
    writeln!(
        md,
        "Accuracy (a discontinuous metric) beside the mean log-likelihood of the gold answer (a \
         smooth one) at every checkpoint: where accuracy jumps while the log-likelihood rises \
         steadily, the jump is the metric's, not the model's (Schaeffer et al. 2023). \
         [SVG](figures/items_gold_loglik.svg)\n"
    )?;
    figures.extend(write_forgetting(
        items,
        &format!("{name}: forgetting events per item"),
        &fig_dir.join("items_forgetting"),
    )?);
    writeln!(
        md,
        "![forgetting events per item](figures/items_forgetting.png)\n\n\
         [SVG](figures/items_forgetting.svg)\n"
    )?;
    for t in items {
        writeln!(
            md,
            "<details><summary>{}: per checkpoint and per change (* = p &lt; 0.05)</summary>\n\n{}\n\n{}\n\n</details>\n",
            t.task,
            checkpoints_table(t),
            changes_table(t)
        )?;
    }
    Ok(Some((md, figures)))
}

/// Every evaluated spike checkpoint against the checkpoint training rolled back to, with an
/// HTML page `compare_<A>_<B>.html` of all flipped items in `report_dir`.
pub fn spike_comparisons(run: &Path, data: &Dataset, report_dir: &Path) -> Result<Option<String>> {
    let eval = k2_archive::RunLayout::new(run).eval_dir();
    let mut md = String::new();
    for ev in &data.spikes {
        let Some(before) = &ev.rollback_to else {
            continue;
        };
        for spike in &ev.spike_checkpoints {
            let (a, b) = (eval.join(before), eval.join(spike));
            if !a.is_dir() || !b.is_dir() {
                continue;
            }
            let c = compare(
                &Side {
                    label: before.clone(),
                    dir: a,
                },
                &Side {
                    label: spike.clone(),
                    dir: b,
                },
                &[],
            )?;
            let page = format!("compare_{before}_{spike}.html");
            write_html(&c, &report_dir.join(&page), usize::MAX)?;
            if md.is_empty() {
                md.push_str("## What the spike did, item by item\n\n");
            }
            writeln!(
                md,
                "`k2 compare {before} {spike}`: the spike checkpoint of attempt {} against the \
                 checkpoint training rolled back to. Every flipped item: [{page}]({page}).\n",
                ev.attempt
            )?;
            // The summary and three flipped items per direction and task.
            let full = to_markdown(&c, 3);
            let body = full.split_once('\n').map_or(full.as_str(), |(_, b)| b);
            md.push_str(&body.replace("\n## ", "\n### "));
            md.push('\n');
        }
    }
    Ok((!md.is_empty()).then_some(md))
}
