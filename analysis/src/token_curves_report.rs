//! The token-learning-curves figure and report section: per training-frequency bucket, the mean
//! surprisal of its held-out tokens down the checkpoints, and the mean age of acquisition.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plots::{de, ensure_font, png_and_svg, titled, FAMILY, PALETTE};
use crate::token_curves::{bucket_of, buckets_table, load, TokenCurves};

/// `<stem>.png/.svg`.
pub fn write_token_curves(t: &TokenCurves, title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    ensure_font();
    Ok(png_and_svg!(stem, (1100, 440), |root| draw(
        &root, t, title
    )))
}

fn label(lo: u64, hi: u64) -> String {
    format!(
        "freq {}-{}",
        crate::tables::human(lo as f64),
        crate::tables::human((hi - 1) as f64)
    )
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    t: &TokenCurves,
    title: &str,
) -> Result<()> {
    let body = titled(root, title, 20)?;
    let panels = body.split_evenly((1, 2));
    let xs: Vec<f64> = t.tokens_seen.iter().map(|&x| x as f64).collect();
    let (x0, x1) = (xs[0], xs[xs.len() - 1].max(xs[0] + 1.0));
    // Left: mean surprisal per bucket down the checkpoints.
    let mut series = Vec::new();
    for b in &t.buckets {
        let members: Vec<_> = t
            .curves
            .iter()
            .filter(|c| bucket_of(c.frequency) == bucket_of(b.lo))
            .collect();
        let ys: Vec<f64> = (0..xs.len())
            .map(|i| {
                members.iter().map(|c| c.surprisal[i]).sum::<f64>() / members.len().max(1) as f64
            })
            .collect();
        series.push((label(b.lo, b.hi), ys));
    }
    let hi = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0f64, f64::max);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption(
            "mean surprisal of held-out tokens, by training frequency",
            (FAMILY, 15),
        )
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(44)
        .build_cartesian_2d(x0..x1 * 1.02, 0.0..hi * 1.08)
        .map_err(de)?;
    chart
        .configure_mesh()
        .x_desc("tokens seen")
        .y_desc("surprisal (nats)")
        .x_labels(5)
        .x_label_formatter(&|v| crate::tables::human(*v))
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(230, 230, 230))
        .draw()
        .map_err(de)?;
    for (i, (name, ys)) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                xs.iter().copied().zip(ys.iter().copied()),
                c.stroke_width(2),
            ))
            .map_err(de)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 11))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(de)?;
    // Right: mean age of acquisition per bucket, ± s.e.
    let n = t.buckets.len();
    let top = t
        .buckets
        .iter()
        .filter_map(|b| Some(b.mean_aoa_tokens? + b.aoa_stderr.unwrap_or(0.0)))
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("age of acquisition by training frequency", (FAMILY, 15))
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(52)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..top * 1.15)
        .map_err(de)?;
    let names: Vec<String> = t.buckets.iter().map(|b| label(b.lo, b.hi)).collect();
    chart
        .configure_mesh()
        .x_desc("training frequency of the token")
        .y_desc("mean age of acquisition (tokens seen)")
        .x_labels(n)
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| crate::tables::human(*v))
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(230, 230, 230))
        .draw()
        .map_err(de)?;
    for (i, b) in t.buckets.iter().enumerate() {
        let Some(m) = b.mean_aoa_tokens else { continue };
        let x = i as f64;
        let c = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, m)],
                c.mix(0.6).filled(),
            )))
            .map_err(de)?;
        if let Some(se) = b.aoa_stderr {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, m - se), (x, m + se)],
                    BLACK.stroke_width(1),
                )))
                .map_err(de)?;
        }
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{}/{} acquired", b.acquired, b.tokens),
                (x - 0.28, m + b.aoa_stderr.unwrap_or(0.0) + top * 0.04),
                (FAMILY, 11).into_font(),
            )))
            .map_err(de)?;
    }
    Ok(())
}

/// `None` when the run has no token curves (`k2 analyze tokens`).
pub fn token_curves_section(
    run: &Path,
    fig_dir: &Path,
    name: &str,
) -> Result<Option<(String, Vec<PathBuf>)>> {
    let Some(t) = load(run)? else {
        return Ok(None);
    };
    let mut md = String::from("## Token learning curves\n\n");
    writeln!(
        md,
        "The surprisal of each of {} tokens of a held-out text (documents {}.. of every source \
         the run trained on, never in its data) at every checkpoint (Chang & Bergen 2024). A \
         token's age of acquisition is the first checkpoint from which its surprisal stays below \
         the midpoint of ln V = {:.2} (the untrained model) and its lowest surprisal; a \
         forgetting event is below the midpoint at one checkpoint and above it at the next; \
         frequency is the token's count in the run's own training data. Written by \
         `k2 analyze tokens`.\n",
        t.curves.len(),
        t.first_doc,
        (t.vocab_size as f64).ln()
    )?;
    let figures = write_token_curves(
        &t,
        &format!("{name}: token learning curves"),
        &fig_dir.join("token_curves"),
    )?;
    writeln!(
        md,
        "![token learning curves](figures/token_curves.png)\n\nLeft: the mean surprisal of the \
         held-out tokens of each training-frequency bucket at every `ok` checkpoint; right: their \
         mean age of acquisition (tokens seen, ± 1 standard error) and how many were acquired. \
         Ages are resolved only to the checkpoint interval: a token acquired before the first \
         checkpoint gets its age. [SVG](figures/token_curves.svg)\n"
    )?;
    writeln!(md, "{}\n", buckets_table(&t))?;
    Ok(Some((md, figures)))
}
