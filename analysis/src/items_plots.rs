//! Figures of the per-item analyses ([`crate::items`]), PNG and SVG:
//!
//! * the raster: for each task, items (rows, sorted by age of acquisition: always known on top,
//!   never acquired at the bottom) × checkpoints (columns), dark where the item is correct;
//! * the distribution of forgetting events per item, one bar per task;
//! * accuracy beside the mean gold-answer log-likelihood per checkpoint (Schaeffer et al.'s
//!   question: a discontinuous metric may hide a smooth rise), with chance and the emergence
//!   point marked.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::items::TaskItems;
use crate::plots::{de, ensure_font, png_and_svg, titled, FAMILY, PALETTE};

const RIGHT: RGBColor = RGBColor(31, 80, 150);
const WRONG: RGBColor = RGBColor(236, 236, 236);
const GREY: RGBColor = RGBColor(90, 90, 90);

/// Items in raster order: by age of acquisition, then (never acquired) by checkpoints correct,
/// descending; doc id last.
pub fn raster_order(t: &TaskItems) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..t.items.len()).collect();
    idx.sort_by_key(|&i| {
        let it = &t.items[i];
        let right = it.correct.iter().filter(|&&c| c).count();
        (
            it.acquired_at.unwrap_or(usize::MAX),
            std::cmp::Reverse(right),
            it.doc_id,
        )
    });
    idx
}

fn panels(n: usize) -> (usize, usize) {
    let cols = n.clamp(1, 5);
    (n.div_ceil(cols).max(1), cols)
}

/// The checkpoint × item raster of every task.
pub fn write_raster(ts: &[TaskItems], title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    ensure_font();
    let (rows, cols) = panels(ts.len());
    let size = (cols as u32 * 260 + 20, rows as u32 * 420 + 80);
    Ok(png_and_svg!(stem, size, |root| draw_raster(
        &root, ts, title
    )))
}

fn draw_raster<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ts: &[TaskItems],
    title: &str,
) -> Result<()> {
    let body = titled(root, title, 20)?;
    let bottom_h = body.dim_in_pixel().1 - 30;
    let (grid, legend) = body.split_vertically(bottom_h);
    let (r, c) = panels(ts.len());
    for (t, area) in ts.iter().zip(grid.split_evenly((r, c)).iter()) {
        let nc = t.checkpoints.len();
        let ni = t.items.len().max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(&t.task, (FAMILY, 15))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..nc as f64, 0.0..ni as f64)
            .map_err(de)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("checkpoint")
            .y_desc("items (by age of acquisition)")
            .x_labels(nc.min(8))
            .x_label_formatter(&|v| format!("{}", *v as usize + 1))
            .y_labels(5)
            .y_label_formatter(&|v| format!("{}", *v as usize))
            .label_style((FAMILY, 11))
            .axis_desc_style((FAMILY, 12))
            .draw()
            .map_err(de)?;
        let order = raster_order(t);
        // Row 0 at the top: item k spans y in [ni - k - 1, ni - k]. Runs of one value in a
        // column are drawn as one rectangle.
        let mut rects = Vec::new();
        for col in 0..nc {
            let mut k = 0;
            while k < order.len() {
                let v = t.items[order[k]].correct[col];
                let mut e = k + 1;
                while e < order.len() && t.items[order[e]].correct[col] == v {
                    e += 1;
                }
                let colour = if v { RIGHT } else { WRONG };
                rects.push(Rectangle::new(
                    [
                        (col as f64, (ni - e) as f64),
                        (col as f64 + 1.0, (ni - k) as f64),
                    ],
                    colour.filled(),
                ));
                k = e;
            }
        }
        chart.draw_series(rects).map_err(de)?;
    }
    let text = TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (c, label)) in [(RIGHT, "correct"), (WRONG, "wrong")].iter().enumerate() {
        let x = 20 + i as i32 * 120;
        legend
            .draw(&Rectangle::new([(x, 8), (x + 16, 22)], c.filled()))
            .map_err(de)?;
        legend
            .draw(&Rectangle::new(
                [(x, 8), (x + 16, 22)],
                GREY.stroke_width(1),
            ))
            .map_err(de)?;
        legend
            .draw(&Text::new(label.to_string(), (x + 22, 15), text.clone()))
            .map_err(de)?;
    }
    Ok(())
}

/// Items per number of forgetting events, one bar colour per task.
pub fn write_forgetting(ts: &[TaskItems], title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    ensure_font();
    Ok(png_and_svg!(stem, (900, 460), |root| draw_forgetting(
        &root, ts, title
    )))
}

fn draw_forgetting<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ts: &[TaskItems],
    title: &str,
) -> Result<()> {
    root.fill(&WHITE).map_err(de)?;
    let (w, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(w - 190);
    let hists: Vec<Vec<usize>> = ts.iter().map(|t| t.forgetting_histogram()).collect();
    let buckets = hists.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let ymax = hists.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.08;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FAMILY, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5..buckets as f64 - 0.5, 0.0..ymax)
        .map_err(de)?;
    chart
        .configure_mesh()
        .x_desc("forgetting events per item (correct, then wrong at the next checkpoint)")
        .y_desc("items")
        .x_labels(buckets.min(16))
        .x_label_formatter(&|v| format!("{}", v.round() as i64))
        .y_label_formatter(&|v| format!("{}", *v as i64))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(de)?;
    let n = ts.len().max(1) as f64;
    let bw = 0.8 / n;
    for (k, h) in hists.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        chart
            .draw_series(h.iter().enumerate().map(|(b, &v)| {
                let x0 = b as f64 - 0.4 + k as f64 * bw;
                Rectangle::new([(x0, 0.0), (x0 + bw, v as f64)], c.filled())
            }))
            .map_err(de)?;
    }
    let text = TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, t) in ts.iter().enumerate() {
        let y = 40 + k as i32 * 22;
        legend
            .draw(&Rectangle::new(
                [(8, y - 7), (24, y + 7)],
                PALETTE[k % PALETTE.len()].filled(),
            ))
            .map_err(de)?;
        legend
            .draw(&Text::new(t.task.clone(), (30, y), text.clone()))
            .map_err(de)?;
    }
    Ok(())
}

/// One panel per task: accuracy (left axis, solid, with chance dashed and the emergence point
/// marked) and the mean gold-answer log-likelihood (right axis, dotted) per checkpoint; x is
/// tokens seen (or the step).
pub fn write_smooth_vs_accuracy(
    ts: &[TaskItems],
    title: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>> {
    ensure_font();
    let (rows, cols) = panels(ts.len());
    let size = (cols as u32 * 330 + 20, rows as u32 * 300 + 90);
    Ok(png_and_svg!(stem, size, |root| draw_smooth(
        &root, ts, title
    )))
}

fn x_of(t: &TaskItems, i: usize) -> f64 {
    let c = &t.checkpoints[i];
    c.tokens.unwrap_or(c.step) as f64
}

fn draw_smooth<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ts: &[TaskItems],
    title: &str,
) -> Result<()> {
    let body = titled(root, title, 20)?;
    let h = body.dim_in_pixel().1;
    let (grid, legend) = body.split_vertically(h - 36);
    let (r, c) = panels(ts.len());
    let tokens = ts
        .iter()
        .all(|t| t.checkpoints.iter().all(|c| c.tokens.is_some()));
    for (t, area) in ts.iter().zip(grid.split_evenly((r, c)).iter()) {
        let nc = t.checkpoints.len();
        if nc == 0 {
            continue;
        }
        let xs: Vec<f64> = (0..nc).map(|i| x_of(t, i)).collect();
        let (x0, x1) = (xs[0], xs[nc - 1].max(xs[0] + 1.0));
        let pad = (x1 - x0) * 0.03;
        let acc: Vec<f64> = (0..nc).map(|i| t.accuracy(i)).collect();
        let chance = t.emergence.as_ref().map(|e| e.chance);
        let lo = acc
            .iter()
            .copied()
            .chain(chance)
            .fold(f64::INFINITY, f64::min);
        let hi = acc
            .iter()
            .copied()
            .chain(chance)
            .fold(f64::NEG_INFINITY, f64::max);
        let ypad = ((hi - lo) * 0.1).max(0.02);
        let ll: Vec<Option<f64>> = (0..nc).map(|i| t.mean_gold_ll(i)).collect();
        let lls: Vec<f64> = ll.iter().flatten().copied().collect();
        let (l0, l1) = lls
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (l0, l1) = if l0.is_finite() {
            let p = ((l1 - l0) * 0.1).max(0.05);
            (l0 - p, l1 + p)
        } else {
            (-1.0, 0.0)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&t.task, (FAMILY, 15))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .right_y_label_area_size(44)
            .build_cartesian_2d(x0 - pad..x1 + pad, lo - ypad..hi + ypad)
            .map_err(de)?
            .set_secondary_coord(x0 - pad..x1 + pad, l0..l1);
        chart
            .configure_mesh()
            .x_desc(if tokens { "tokens seen" } else { "step" })
            .y_desc("accuracy")
            .x_labels(4)
            .x_label_formatter(&|v| crate::tables::human(*v))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style((FAMILY, 11))
            .axis_desc_style((FAMILY, 12))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(230, 230, 230))
            .draw()
            .map_err(de)?;
        chart
            .configure_secondary_axes()
            .y_desc("mean gold log-lik.")
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FAMILY, 11))
            .axis_desc_style((FAMILY, 12))
            .draw()
            .map_err(de)?;
        if let Some(ch) = chance {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0 - pad, ch), (x1 + pad, ch)],
                    6,
                    5,
                    GREY.stroke_width(1),
                ))
                .map_err(de)?;
        }
        if let Some(i) = t.emergence.as_ref().and_then(|e| e.at) {
            let x = xs[i];
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, lo - ypad), (x, hi + ypad)],
                    PALETTE[2].stroke_width(2),
                )))
                .map_err(de)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    " emerges".to_string(),
                    (x, hi + ypad),
                    TextStyle::from((FAMILY, 11).into_font())
                        .color(&PALETTE[2])
                        .pos(Pos::new(HPos::Left, VPos::Top)),
                )))
                .map_err(de)?;
        }
        let pts: Vec<(f64, f64)> = xs.iter().copied().zip(acc.iter().copied()).collect();
        chart
            .draw_series(
                pts.windows(2)
                    .map(|w| PathElement::new(vec![w[0], w[1]], PALETTE[0].stroke_width(2))),
            )
            .map_err(de)?;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 2, PALETTE[0].filled())))
            .map_err(de)?;
        let lpts: Vec<(f64, f64)> = xs
            .iter()
            .zip(&ll)
            .filter_map(|(&x, v)| Some((x, (*v)?)))
            .collect();
        chart
            .draw_secondary_series(DashedLineSeries::new(
                lpts.clone(),
                4,
                3,
                PALETTE[1].stroke_width(2),
            ))
            .map_err(de)?;
        chart
            .draw_secondary_series(lpts.iter().map(|&p| Circle::new(p, 2, PALETTE[1].filled())))
            .map_err(de)?;
    }
    let text = TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let entries: [(RGBColor, &str, bool); 4] = [
        (PALETTE[0], "accuracy (left axis)", false),
        (
            PALETTE[1],
            "mean gold-answer log-likelihood (right axis)",
            true,
        ),
        (GREY, "chance", true),
        (
            PALETTE[2],
            "emergence: above chance from here on (Holm)",
            false,
        ),
    ];
    let mut x = 16;
    for (c, label, dashed) in entries {
        if dashed {
            legend
                .draw(&PathElement::new(
                    vec![(x, 18), (x + 10, 18)],
                    c.stroke_width(2),
                ))
                .map_err(de)?;
            legend
                .draw(&PathElement::new(
                    vec![(x + 16, 18), (x + 26, 18)],
                    c.stroke_width(2),
                ))
                .map_err(de)?;
        } else {
            legend
                .draw(&PathElement::new(
                    vec![(x, 18), (x + 26, 18)],
                    c.stroke_width(2),
                ))
                .map_err(de)?;
        }
        legend
            .draw(&Text::new(label.to_string(), (x + 32, 18), text.clone()))
            .map_err(de)?;
        x += 40 + 8 * label.chars().count() as i32;
    }
    Ok(())
}
