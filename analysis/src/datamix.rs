//! Data figure of a k2 run: tokens per source over training (stacked), stage boundary marked.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::inputs::ChunkRow;
use crate::plots::{de, FAMILY, PALETTE};
use crate::tables::human;

/// Sources in a stable order (by total tokens, largest first, then name).
pub fn sources(chunks: &[ChunkRow]) -> Vec<String> {
    let mut tot: std::collections::BTreeMap<&str, u64> = Default::default();
    for c in chunks {
        for (s, n) in &c.tokens_by_source {
            *tot.entry(s).or_default() += n;
        }
    }
    let mut v: Vec<(&str, u64)> = tot.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(s, _)| s.to_string()).collect()
}

/// Cumulative tokens per source at the end of each chunk: `(tokens seen, per-source totals)`,
/// starting with `(0, zeros)`; sources in the order of [`sources`].
pub fn cumulative(chunks: &[ChunkRow], srcs: &[String]) -> Vec<(u64, Vec<u64>)> {
    let mut out = vec![(0u64, vec![0u64; srcs.len()])];
    for c in chunks {
        let (t, prev) = out.last().cloned().unwrap_or_default();
        let mut next = prev.clone();
        for (i, s) in srcs.iter().enumerate() {
            next[i] += c.tokens_by_source.get(s).copied().unwrap_or(0);
        }
        out.push((t + c.tokens(), next));
    }
    out
}

/// Tokens seen where each new stage starts, with the stage number as shown (1-based).
pub fn stage_starts(chunks: &[ChunkRow]) -> Vec<(u64, u32)> {
    let base = u32::from(chunks.iter().map(|c| c.stage).min() == Some(0));
    let mut out = Vec::new();
    let mut t = 0u64;
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 && c.stage != chunks[i - 1].stage {
            out.push((t, c.stage + base));
        }
        t += c.tokens();
    }
    out
}

/// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
pub fn write_data_mix(chunks: &[ChunkRow], title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    crate::plots::ensure_font();
    let (w, h) = (1000u32, 760u32);
    Ok(crate::plots::png_and_svg!(stem, (w, h), |root| draw(
        &root, chunks, title
    )))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chunks: &[ChunkRow],
    title: &str,
) -> Result<()> {
    let body = crate::plots::titled(root, title, 22)?;
    let (plots, legend) = body.split_horizontally(body.dim_in_pixel().0 - 170);
    let srcs = sources(chunks);
    let cum = cumulative(chunks, &srcs);
    let total = cum.last().map(|c| c.0).unwrap_or(0).max(1) as f64;
    let stages = stage_starts(chunks);
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let areas = plots.split_evenly((2, 1));
    let xfmt = |v: &f64| human(*v);
    let grid = RGBColor(225, 225, 225);
    let marker = RGBColor(90, 90, 90);

    // top: cumulative tokens per source, stacked
    let ymax = total * 1.05;
    let mut chart = ChartBuilder::on(&areas[0])
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..total, 0.0..ymax)
        .map_err(de)?;
    chart
        .configure_mesh()
        .x_desc("tokens seen")
        .y_desc("tokens (cumulative, stacked by source)")
        .x_label_formatter(&xfmt)
        .y_label_formatter(&xfmt)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(WHITE)
        .bold_line_style(grid)
        .draw()
        .map_err(de)?;
    for i in (0..srcs.len()).rev() {
        let pts: Vec<(f64, f64)> = cum
            .iter()
            .map(|(t, per)| (*t as f64, per[..=i].iter().sum::<u64>() as f64))
            .collect();
        chart
            .draw_series(std::iter::once(area(pts, color(i))))
            .map_err(de)?;
    }
    draw_stages(&mut chart, &stages, ymax, marker)?;

    // bottom: share of each source in each chunk, stacked to 100 %
    let mut chart = ChartBuilder::on(&areas[1])
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..total, 0.0..105.0)
        .map_err(de)?;
    chart
        .configure_mesh()
        .x_desc("tokens seen")
        .y_desc("share of the chunk's tokens (%)")
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v: &f64| format!("{v:.0}"))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(WHITE)
        .bold_line_style(grid)
        .draw()
        .map_err(de)?;
    for i in (0..srcs.len()).rev() {
        let mut pts = Vec::new();
        for (k, c) in chunks.iter().enumerate() {
            let n = c.tokens().max(1) as f64;
            let share: u64 = srcs[..=i]
                .iter()
                .map(|s| c.tokens_by_source.get(s).copied().unwrap_or(0))
                .sum();
            let y = 100.0 * share as f64 / n;
            pts.push((cum[k].0 as f64, y));
            pts.push((cum[k + 1].0 as f64, y));
        }
        chart
            .draw_series(std::iter::once(area(pts, color(i))))
            .map_err(de)?;
    }
    draw_stages(&mut chart, &stages, 105.0, marker)?;

    // legend, top source first as in the stack (top of the stack = last source)
    let st = TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    legend
        .draw(&Text::new("source", (10, 20), st.clone()))
        .map_err(de)?;
    for (row, i) in (0..srcs.len()).rev().enumerate() {
        let y = 46 + row as i32 * 24;
        legend
            .draw(&Rectangle::new(
                [(10, y - 8), (30, y + 8)],
                color(i).filled(),
            ))
            .map_err(de)?;
        legend
            .draw(&Text::new(srcs[i].clone(), (38, y), st.clone()))
            .map_err(de)?;
    }
    Ok(())
}

/// A filled area between the polyline `pts` and y = 0, with a white border on top.
fn area(mut pts: Vec<(f64, f64)>, c: RGBColor) -> Polygon<(f64, f64)> {
    if let (Some(&(x0, _)), Some(&(x1, _))) = (pts.first(), pts.last()) {
        pts.push((x1, 0.0));
        pts.push((x0, 0.0));
    }
    Polygon::new(pts, c.filled())
}

fn draw_stages<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    stages: &[(u64, u32)],
    ymax: f64,
    c: RGBColor,
) -> Result<()> {
    for &(x, stage) in stages {
        let x = x as f64;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, 0.0), (x, ymax)],
                6,
                5,
                BLACK.stroke_width(2),
            ))
            .map_err(de)?;
        let style = TextStyle::from((FAMILY, 13).into_font())
            .color(&c)
            .pos(Pos::new(HPos::Left, VPos::Top));
        chart
            .draw_series(std::iter::once(Text::new(
                format!(" stage {stage} →"),
                (x, ymax),
                style,
            )))
            .map_err(de)?;
    }
    Ok(())
}
