//! Figures of a knowledge-injection run: the probes' log-probability (net of the control facts)
//! down the steps, one panel per probe kind and one line per injection, the repetitions shaded;
//! and the retainability of each against the steps since its maximum (log x), with the fitted
//! power law.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::acquisition::{Acquisition, Trajectory};
use crate::acquisition_tables::RunAcquisition;
use crate::plots::{de, ensure_font, png_and_svg, titled, FAMILY, PALETTE};

const KINDS: [&str; 3] = ["memorization", "semantic", "composition"];

fn colour(r: &RunAcquisition, injection: &str) -> RGBColor {
    let i = r
        .injections
        .iter()
        .position(|x| x.name == injection)
        .unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// Per step: the mean gain since the last measurement before the injection (net of the
/// control) and its standard error over facts.
fn band(t: &Trajectory) -> Vec<(f64, f64, f64)> {
    let Some(b) = t.before_index() else {
        return Vec::new();
    };
    (0..t.steps.len())
        .map(|i| {
            let g = t.fact_gains(i, b);
            let n = g.len().max(1) as f64;
            let m = g.iter().sum::<f64>() / n;
            let sd = if g.len() > 1 {
                (g.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            } else {
                0.0
            };
            (t.steps[i] as f64, m, sd / n.sqrt())
        })
        .collect()
}

/// `<stem>.png/.svg`: trajectories.
pub fn write_trajectories(r: &RunAcquisition, title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    ensure_font();
    Ok(png_and_svg!(stem, (1200, 460), |root| draw_trajectories(
        &root, r, title
    )))
}

fn draw_trajectories<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &RunAcquisition,
    title: &str,
) -> Result<()> {
    let body = titled(root, title, 20)?;
    let h = body.dim_in_pixel().1;
    let (grid, legend) = body.split_vertically(h - 36);
    let x1 = r
        .trajectories
        .iter()
        .flat_map(|t| t.steps.iter().copied())
        .max()
        .unwrap_or(1) as f64;
    for (kind, area) in KINDS.iter().zip(grid.split_evenly((1, 3)).iter()) {
        let ts: Vec<&Trajectory> = r.trajectories.iter().filter(|t| t.kind == *kind).collect();
        let pts: Vec<(f64, f64, f64)> = ts.iter().flat_map(|t| band(t)).collect();
        let lo = pts.iter().map(|p| p.1 - p.2).fold(f64::INFINITY, f64::min);
        let hi = pts
            .iter()
            .map(|p| p.1 + p.2)
            .fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() {
            (lo, hi.max(lo + 1.0))
        } else {
            (-1.0, 1.0)
        };
        let pad = (hi - lo) * 0.05;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{kind} probe"), (FAMILY, 15))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..x1 * 1.02, lo - pad..hi + pad)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("gain since before injection (nats)")
            .x_labels(5)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FAMILY, 11))
            .axis_desc_style((FAMILY, 12))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(230, 230, 230))
            .draw()
            .map_err(de)?;
        for t in &ts {
            let c = colour(r, &t.injection);
            let (a, b) = (t.first_step as f64 - 0.5, t.last_step as f64 + 0.5);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, lo - pad), (b.max(a + x1 * 0.008), hi + pad)],
                    c.mix(0.25).filled(),
                )))
                .map_err(de)?;
            let p = band(t);
            let mut poly: Vec<(f64, f64)> = p.iter().map(|q| (q.0, q.1 + q.2)).collect();
            poly.extend(p.iter().rev().map(|q| (q.0, q.1 - q.2)));
            chart
                .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.12).filled())))
                .map_err(de)?;
            chart
                .draw_series(LineSeries::new(
                    p.iter().map(|q| (q.0, q.1)),
                    c.stroke_width(2),
                ))
                .map_err(de)?;
        }
    }
    legend_row(
        &legend,
        r,
        "bar: the repetitions; band: ± 1 s.e. over facts",
    )
}

fn legend_row<DB: DrawingBackend>(
    legend: &DrawingArea<DB, Shift>,
    r: &RunAcquisition,
    note: &str,
) -> Result<()> {
    let text =
        TextStyle::from((FAMILY, 13).into_font()).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
    let mut x = 16;
    for inj in &r.injections {
        let c = colour(r, &inj.name);
        legend
            .draw(&PathElement::new(
                vec![(x, 18), (x + 24, 18)],
                c.stroke_width(3),
            ))
            .map_err(de)?;
        let label = format!(
            "{} ({} x{}, chunk {})",
            inj.name, inj.mode, inj.k, inj.chunk
        );
        legend
            .draw(&Text::new(label.clone(), (x + 30, 18), text.clone()))
            .map_err(de)?;
        x += 40 + 8 * label.len() as i32;
    }
    legend
        .draw(&Text::new(note.to_string(), (x + 10, 18), text))
        .map_err(de)?;
    Ok(())
}

/// `<stem>.png/.svg`: retainability against steps since the maximum, log x, fits dashed.
pub fn write_retainability(r: &RunAcquisition, title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    ensure_font();
    Ok(png_and_svg!(stem, (1200, 460), |root| draw_retainability(
        &root, r, title
    )))
}

fn draw_retainability<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &RunAcquisition,
    title: &str,
) -> Result<()> {
    let body = titled(root, title, 20)?;
    let h = body.dim_in_pixel().1;
    let (grid, legend) = body.split_vertically(h - 36);
    let tmax = r
        .metrics
        .iter()
        .flat_map(|a| a.retainability.iter().map(|p| p.0))
        .max()
        .unwrap_or(10)
        .max(10) as f64;
    for (kind, area) in KINDS.iter().zip(grid.split_evenly((1, 3)).iter()) {
        let ms: Vec<&Acquisition> = r.metrics.iter().filter(|a| a.kind == *kind).collect();
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{kind} probe"), (FAMILY, 15))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d((1.0..tmax * 1.1).log_scale(), -0.5f64..1.5)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("steps since the maximum (log)")
            .y_desc("retainability R(t)")
            .y_label_formatter(&|v| format!("{v:.1}"))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FAMILY, 11))
            .axis_desc_style((FAMILY, 12))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(230, 230, 230))
            .draw()
            .map_err(de)?;
        for y in [0.0, 1.0] {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(1.0, y), (tmax * 1.1, y)],
                    RGBColor(150, 150, 150).stroke_width(1),
                )))
                .map_err(de)?;
        }
        for a in ms {
            let c = colour(r, &a.injection);
            let pts: Vec<(f64, f64)> = a
                .retainability
                .iter()
                .map(|&(t, v)| (t as f64, v.clamp(-0.5, 1.5)))
                .collect();
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 2, c.mix(0.7).filled())))
                .map_err(de)?;
            if let Some(f) = &a.fit {
                let curve: Vec<(f64, f64)> = (0..=60)
                    .map(|i| {
                        let t = tmax.powf(i as f64 / 60.0);
                        (t, (f.a * t.powf(-f.b)).clamp(-0.5, 1.5))
                    })
                    .collect();
                chart
                    .draw_series(DashedLineSeries::new(curve, 6, 4, c.stroke_width(2)))
                    .map_err(de)?;
            }
        }
    }
    legend_row(&legend, r, "dots: measured; dashed: fitted a·t^-b")
}
