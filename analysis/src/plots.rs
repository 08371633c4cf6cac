//! Figures (plotters, PNG and SVG), text rendered with ab_glyph from the bundled DejaVu Sans
//! (`assets/DejaVuSans.ttf`, DejaVu Fonts licence in `assets/LICENSE_DEJAVU.txt`), so no
//! system fonts are needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::inputs::TrainRow;
use crate::tables::human;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// The font family every figure names (the bundled DejaVu Sans is registered under it).
pub(crate) const FAMILY: &str = "sans-serif";

/// Fills `root` white, writes `title` (DejaVu Sans, `size` px) in a 50-pixel band at the top,
/// and returns the area below it: the frame every k2 figure starts from.
pub(crate) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    size: u32,
) -> Result<DrawingArea<DB, Shift>> {
    root.fill(&WHITE).map_err(de)?;
    let (top, body) = root.split_vertically(50);
    top.draw(&Text::new(
        title.to_string(),
        (16, 14),
        (FAMILY, size).into_font().color(&BLACK),
    ))
    .map_err(de)?;
    Ok(body)
}

pub(crate) fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [
            FontStyle::Normal,
            FontStyle::Bold,
            FontStyle::Italic,
            FontStyle::Oblique,
        ] {
            plotters::style::register_font(FAMILY, style, FONT)
                .unwrap_or_else(|_| panic!("bundled DejaVuSans.ttf is not a valid font"));
        }
    });
}

pub(crate) fn de<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

/// Draws `$draw` (a call on `$root`) into `<stem>.png` and `<stem>.svg`: plotters needs one
/// concrete backend per file, so the drawing code runs once per backend. Evaluates to both paths.
macro_rules! png_and_svg {
    ($stem:expr, $size:expr, |$root:ident| $draw:expr) => {{
        let png = $stem.with_extension("png");
        let svg = $stem.with_extension("svg");
        {
            let $root = plotters::prelude::BitMapBackend::new(&png, $size).into_drawing_area();
            $draw?;
            $root.present().map_err($crate::plots::de)?;
        }
        {
            let $root = plotters::prelude::SVGBackend::new(&svg, $size).into_drawing_area();
            $draw?;
            $root.present().map_err($crate::plots::de)?;
        }
        vec![png, svg]
    }};
}
pub(crate) use png_and_svg;

/// Tableau-10-like palette: colours that stay distinguishable.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GRID: RGBColor = RGBColor(225, 225, 225);
const CHANCE: RGBColor = RGBColor(90, 90, 90);
const EMERGES: RGBColor = RGBColor(44, 160, 44);

/// One line of a panel: `(x, y, stderr)` points in x order; x is tokens (or step).
#[derive(Debug, Clone)]
pub struct Line {
    pub series: String,
    pub points: Vec<(f64, f64, Option<f64>)>,
}

/// One panel (task) of the small multiples.
#[derive(Debug, Clone)]
pub struct Panel {
    pub task: String,
    pub metric: String,
    pub chance: Option<f64>,
    pub lines: Vec<Line>,
    /// Where the task emerges (x in the points' unit): accuracy above chance from there on.
    pub emergence: Option<f64>,
}

/// A capability-over-time figure: one panel per task, one line per series.
#[derive(Debug, Clone)]
pub struct CapabilityFigure {
    pub title: String,
    /// e.g. `tokens seen` or `step`.
    pub x_name: String,
    pub log_x: bool,
    pub panels: Vec<Panel>,
    /// Legend order.
    pub series: Vec<String>,
    /// Vertical markers `(x, label)` in the x unit of the points, e.g. a stage boundary.
    pub markers: Vec<(f64, String)>,
}

/// Style of a series: colour by model family/size, dashed for `-deduped` variants.
fn series_style(series: &[String], s: &str) -> (RGBColor, bool) {
    let base = |x: &str| x.replace("-deduped", "").replace("-bf16", "");
    let mut bases: Vec<String> = series.iter().map(|x| base(x)).collect();
    bases.dedup();
    let i = bases.iter().position(|b| *b == base(s)).unwrap_or(0);
    (PALETTE[i % PALETTE.len()], s.contains("-deduped"))
}

/// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
pub fn write_capability(fig: &CapabilityFigure, stem: &Path) -> Result<Vec<PathBuf>> {
    ensure_font();
    let n = fig.panels.len().max(1);
    let cols = n.min(4);
    let rows = n.div_ceil(cols);
    // Wide enough for the longest series name (about 8 px a character after the swatch).
    let longest = fig
        .series
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
    let legend_w = 210u32.max(50 + 8 * longest as u32);
    let w = cols as u32 * 400 + legend_w;
    let h = 50 + rows as u32 * 300;
    Ok(png_and_svg!(stem, (w, h), |root| draw_capability(
        &root, fig, legend_w
    )))
}

fn xval(fig: &CapabilityFigure, x: f64) -> Option<f64> {
    if fig.log_x {
        (x > 0.0).then(|| x.log10())
    } else {
        Some(x)
    }
}

fn draw_capability<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &CapabilityFigure,
    legend_w: u32,
) -> Result<()> {
    let (w, _h) = root.dim_in_pixel();
    let body = titled(root, &fig.title, 22)?;
    let (grid, legend) = body.split_horizontally(w - legend_w);
    let n = fig.panels.len().max(1);
    let cols = n.min(4);
    let rows = n.div_ceil(cols);
    let areas = grid.split_evenly((rows, cols));
    let any_band = fig.panels.iter().any(|p| {
        p.lines
            .iter()
            .any(|l| l.points.iter().any(|q| q.2.is_some()))
    });
    let any_chance = fig.panels.iter().any(|p| p.chance.is_some());

    // x range shared by all panels
    let xs: Vec<f64> = fig
        .panels
        .iter()
        .flat_map(|p| {
            p.lines
                .iter()
                .flat_map(|l| l.points.iter().filter_map(|q| xval(fig, q.0)))
        })
        .collect();
    let (mut x0, mut x1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let xpad = if fig.log_x { 0.1 } else { 0.0 };
    let (x0, x1) = (x0 - xpad, x1 + xpad + (x1 - x0) * 0.02);

    for (panel, area) in fig.panels.iter().zip(areas.iter()) {
        let mut ys: Vec<f64> = Vec::new();
        for l in &panel.lines {
            for &(x, y, se) in &l.points {
                if xval(fig, x).is_none() {
                    continue;
                }
                ys.push(y);
                if let Some(se) = se {
                    ys.push(y - se);
                    ys.push(y + se);
                }
            }
        }
        if let Some(c) = panel.chance {
            ys.push(c);
        }
        let (mut y0, mut y1) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        let pad = ((y1 - y0) * 0.08).max(0.01);
        let (y0, y1) = (y0 - pad, y1 + pad);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.task, (FAMILY, 17))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(de)?;
        let log_x = fig.log_x;
        // log axis: label the powers of ten only, so labels never crowd
        let xfmt = move |v: &f64| {
            if !log_x {
                human(*v)
            } else if (v - v.round()).abs() < 1e-6 {
                human(10f64.powf(v.round()))
            } else {
                String::new()
            }
        };
        let yfmt = |v: &f64| format!("{v:.2}");
        chart
            .configure_mesh()
            .x_desc(fig.x_name.as_str())
            .y_desc(panel.metric.as_str())
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .x_labels(6)
            .y_labels(6)
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .draw()
            .map_err(de)?;
        // stderr bands first, lines on top; fainter bands when many lines overlap
        let band_alpha = if panel.lines.len() > 4 { 0.07 } else { 0.15 };
        for l in &panel.lines {
            let (c, _) = series_style(&fig.series, &l.series);
            let pts: Vec<(f64, f64, f64)> = l
                .points
                .iter()
                .filter_map(|&(x, y, se)| Some((xval(fig, x)?, y, se?)))
                .collect();
            if pts.len() >= 2 {
                let mut poly: Vec<(f64, f64)> = pts.iter().map(|&(x, y, se)| (x, y + se)).collect();
                poly.extend(pts.iter().rev().map(|&(x, y, se)| (x, y - se)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        poly,
                        c.mix(band_alpha).filled(),
                    )))
                    .map_err(de)?;
            }
        }
        for (mx, label) in &fig.markers {
            let Some(mx) = xval(fig, *mx) else { continue };
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(mx, y0), (mx, y1)],
                    3,
                    3,
                    CHANCE.stroke_width(1),
                ))
                .map_err(de)?;
            let style = TextStyle::from((FAMILY, 12).into_font())
                .color(&CHANCE)
                .pos(Pos::new(HPos::Left, VPos::Top));
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(" {label}"),
                    (mx, y1),
                    style,
                )))
                .map_err(de)?;
        }
        if let Some(ex) = panel.emergence.and_then(|x| xval(fig, x)) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(ex, y0), (ex, y1)],
                    EMERGES.stroke_width(2),
                )))
                .map_err(de)?;
            let style = TextStyle::from((FAMILY, 12).into_font())
                .color(&EMERGES)
                .pos(Pos::new(HPos::Left, VPos::Bottom));
            chart
                .draw_series(std::iter::once(Text::new(" emerges", (ex, y0), style)))
                .map_err(de)?;
        }
        if let Some(ch) = panel.chance {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0, ch), (x1, ch)],
                    6,
                    5,
                    CHANCE.stroke_width(1),
                ))
                .map_err(de)?;
        }
        for l in &panel.lines {
            let (c, dashed) = series_style(&fig.series, &l.series);
            let pts: Vec<(f64, f64)> = l
                .points
                .iter()
                .filter_map(|&(x, y, _)| Some((xval(fig, x)?, y)))
                .collect();
            if dashed {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 7, 4, c.stroke_width(2)))
                    .map_err(de)?;
            } else {
                // segment by segment: plotters' mitred joins of wide polylines spike at sharp turns
                chart
                    .draw_series(
                        pts.windows(2)
                            .map(|w| PathElement::new(vec![w[0], w[1]], c.stroke_width(2))),
                    )
                    .map_err(de)?;
            }
            if panel.lines.len() <= 4 && pts.len() <= 60 {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 2, c.filled())))
                    .map_err(de)?;
            }
        }
        // final values labelled (only when few lines), nudged apart so they do not overlap
        if panel.lines.len() <= 3 {
            let mut labels: Vec<(f64, f64, RGBColor)> = panel
                .lines
                .iter()
                .filter_map(|l| {
                    let (c, _) = series_style(&fig.series, &l.series);
                    let &(x, y, _) = l.points.iter().rev().find(|q| xval(fig, q.0).is_some())?;
                    Some((xval(fig, x)?, y, c))
                })
                .collect();
            labels.sort_by(|a, b| a.1.total_cmp(&b.1));
            let gap = (y1 - y0) * 0.08;
            let mut last_y = f64::NEG_INFINITY;
            for (x, y, c) in labels {
                let ly = (y + pad * 0.3).max(last_y + gap);
                last_y = ly;
                let style = TextStyle::from((FAMILY, 13).into_font())
                    .color(&c)
                    .pos(Pos::new(HPos::Right, VPos::Bottom));
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{y:.3}"),
                        (x, ly),
                        style,
                    )))
                    .map_err(de)?;
            }
        }
    }

    // legend, outside the data
    let mut y = 16i32;
    let text = |s: &str, y: i32| {
        Text::new(
            s.to_string(),
            (52, y),
            TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    };
    legend
        .draw(&Text::new(
            "series",
            (10, y),
            TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(de)?;
    y += 24;
    for s in &fig.series {
        let (c, dashed) = series_style(&fig.series, s);
        if dashed {
            legend
                .draw(&PathElement::new(vec![(10, y), (22, y)], c.stroke_width(2)))
                .map_err(de)?;
            legend
                .draw(&PathElement::new(vec![(30, y), (42, y)], c.stroke_width(2)))
                .map_err(de)?;
        } else {
            legend
                .draw(&PathElement::new(vec![(10, y), (42, y)], c.stroke_width(2)))
                .map_err(de)?;
        }
        legend.draw(&text(s, y)).map_err(de)?;
        y += 22;
    }
    y += 10;
    if any_band {
        legend
            .draw(&Rectangle::new(
                [(10, y - 7), (42, y + 7)],
                PALETTE[0].mix(0.15).filled(),
            ))
            .map_err(de)?;
        legend.draw(&text("± 1 stderr", y)).map_err(de)?;
        y += 22;
    }
    if !fig.markers.is_empty() {
        legend
            .draw(&PathElement::new(
                vec![(26, y - 8), (26, y - 3)],
                CHANCE.stroke_width(1),
            ))
            .map_err(de)?;
        legend
            .draw(&PathElement::new(
                vec![(26, y + 1), (26, y + 6)],
                CHANCE.stroke_width(1),
            ))
            .map_err(de)?;
        legend.draw(&text("stage boundary", y)).map_err(de)?;
        y += 22;
    }
    if fig.panels.iter().any(|p| p.emergence.is_some()) {
        legend
            .draw(&PathElement::new(
                vec![(26, y - 8), (26, y + 8)],
                EMERGES.stroke_width(2),
            ))
            .map_err(de)?;
        legend.draw(&text("emerges (Holm)", y)).map_err(de)?;
        y += 22;
    }
    if any_chance {
        legend
            .draw(&PathElement::new(
                vec![(10, y), (20, y)],
                CHANCE.stroke_width(1),
            ))
            .map_err(de)?;
        legend
            .draw(&PathElement::new(
                vec![(26, y), (36, y)],
                CHANCE.stroke_width(1),
            ))
            .map_err(de)?;
        legend.draw(&text("chance level", y)).map_err(de)?;
    }
    Ok(())
}

/// Training dynamics of a k2 run: loss (raw and smoothed), learning rate and grad norm vs step,
/// stage boundaries marked. Writes `<stem>.png` and `<stem>.svg`.
pub fn write_training(rows: &[TrainRow], title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    write_training_with_events(rows, &[], &[], title, stem)
}

/// A checkpoint event drawn on the training figure: a loss spike or a rollback.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainEvent {
    pub step: u64,
    /// Checkpoint name.
    pub name: String,
    /// `spike` or `rolled_back` (the manifest's status).
    pub status: String,
}

const SPIKE: RGBColor = RGBColor(214, 39, 40);
const ROLLBACK: RGBColor = RGBColor(148, 103, 189);

/// As [`write_training`], with spike / rollback events marked as vertical lines in every panel
/// (red: spike, purple dash-dot: rolled back) and named in the loss panel, and the steps of
/// rolled-back attempts (`diverged`) drawn in red beside the surviving lineage.
pub fn write_training_with_events(
    rows: &[TrainRow],
    diverged: &[TrainRow],
    events: &[TrainEvent],
    title: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>> {
    ensure_font();
    let (w, h) = (1000u32, 900u32);
    Ok(png_and_svg!(stem, (w, h), |root| draw_training(
        &root, rows, diverged, events, title
    )))
}

/// Exponential moving average with bias correction (as TensorBoard's smoothing).
pub fn ema(xs: &[f64], alpha: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(xs.len());
    let mut m = 0.0;
    let mut wsum = 0.0;
    for &x in xs {
        m = alpha * m + (1.0 - alpha) * x;
        wsum = alpha * wsum + (1.0 - alpha);
        out.push(m / wsum);
    }
    out
}

fn draw_training<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[TrainRow],
    diverged: &[TrainRow],
    events: &[TrainEvent],
    title: &str,
) -> Result<()> {
    let body = titled(root, title, 22)?;
    let areas = body.split_evenly((3, 1));
    let steps: Vec<f64> = rows.iter().map(|r| r.step as f64).collect();
    let (s0, s1) = (
        steps.first().copied().unwrap_or(0.0),
        steps
            .last()
            .copied()
            .unwrap_or(1.0)
            .max(steps.first().copied().unwrap_or(0.0) + 1.0),
    );
    // stage boundaries: first step of each new stage
    let base = if rows.iter().filter_map(|r| r.stage).min() == Some(0) {
        1
    } else {
        0
    };
    let mut bounds: Vec<(f64, u32)> = Vec::new();
    for w in rows.windows(2) {
        if let (Some(a), Some(b)) = (w[0].stage, w[1].stage) {
            if a != b {
                bounds.push((w[1].step as f64, b + base));
            }
        }
    }
    let loss: Vec<f64> = rows.iter().map(|r| r.loss).collect();
    let smooth = ema(&loss, 0.9);
    let lr: Vec<f64> = rows.iter().map(|r| r.lr).collect();
    let gn: Vec<Option<f64>> = rows.iter().map(|r| r.grad_norm).collect();
    // Rolled-back attempts, one polyline per attempt.
    let mut attempts: Vec<u32> = diverged.iter().map(|r| r.attempt).collect();
    attempts.dedup();
    let diverged_series = |f: &dyn Fn(&TrainRow) -> Option<f64>| -> Vec<Vec<(f64, f64)>> {
        attempts
            .iter()
            .map(|&a| {
                diverged
                    .iter()
                    .filter(|r| r.attempt == a)
                    .filter_map(|r| Some((r.step as f64, f(r)?)))
                    .collect()
            })
            .collect()
    };
    let div_loss = diverged_series(&|r| Some(r.loss));
    // The loss axis is clipped to the lineage's range when a rolled-back attempt peaks far above
    // it (a spike of 16 nats would flatten the curve); the peak is written at the top instead.
    let lineage_max = loss.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let peak = div_loss
        .iter()
        .flatten()
        .copied()
        .fold(None, |best: Option<(f64, f64)>, (x, y)| match best {
            Some((_, b)) if b >= y => best,
            _ => Some((x, y)),
        });
    let loss_clip = match peak {
        Some((at, p)) if lineage_max.is_finite() && p > lineage_max * 1.25 => {
            Some((lineage_max, at, p))
        }
        _ => None,
    };
    let div_gn = diverged_series(&|r| r.grad_norm);

    type Series<'a> = Vec<(&'a str, Vec<(f64, f64)>, RGBColor, u32)>;
    let mut loss_series: Series = Vec::new();
    for pts in div_loss {
        loss_series.push(("rolled-back attempt", pts, SPIKE, 1));
    }
    let mut gn_series: Series = Vec::new();
    for pts in div_gn {
        gn_series.push(("rolled-back attempt", pts, SPIKE, 1));
    }
    let panels: Vec<(&str, Series)> = vec![
        (
            "loss (nats/token)",
            [
                loss_series,
                vec![
                    (
                        "loss (raw)",
                        steps.iter().copied().zip(loss.iter().copied()).collect(),
                        RGBColor(160, 190, 230),
                        1,
                    ),
                    (
                        "loss (EMA 0.9)",
                        steps.iter().copied().zip(smooth.iter().copied()).collect(),
                        PALETTE[0],
                        2,
                    ),
                ],
            ]
            .concat(),
        ),
        (
            "learning rate",
            vec![(
                "learning rate",
                steps.iter().copied().zip(lr.iter().copied()).collect(),
                PALETTE[1],
                2,
            )],
        ),
        (
            "grad norm (L2, before clipping)",
            [
                gn_series,
                vec![(
                    "grad norm",
                    steps
                        .iter()
                        .zip(gn.iter())
                        .filter_map(|(&s, g)| Some((s, (*g)?)))
                        .collect(),
                    PALETTE[2],
                    1,
                )],
            ]
            .concat(),
        ),
    ];
    for ((ydesc, series), area) in panels.into_iter().zip(areas.iter()) {
        let ys: Vec<f64> = series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .collect();
        let (mut y0, mut y1) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        let is_loss = ydesc.starts_with("loss");
        let clip = loss_clip.filter(|_| is_loss);
        if let Some((cap, _, _)) = clip {
            y1 = cap;
        }
        let pad = ((y1 - y0) * 0.06).max(1e-12);
        let (y0, y1) = (
            (y0 - pad).min(if ydesc == "learning rate" {
                0.0
            } else {
                f64::INFINITY
            }),
            y1 + pad,
        );
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(s0..s1, y0..y1)
            .map_err(de)?;
        let small = ydesc == "learning rate";
        let yfmt = move |v: &f64| {
            if small {
                format!("{v:.1e}")
            } else {
                format!("{v:.2}")
            }
        };
        let xfmt = |v: &f64| format!("{v:.0}");
        chart
            .configure_mesh()
            .x_desc("optimizer step")
            .y_desc(ydesc)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .draw()
            .map_err(de)?;
        for &(b, stage) in &bounds {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(b, y0), (b, y1)],
                    6,
                    5,
                    CHANCE.stroke_width(1),
                ))
                .map_err(de)?;
            let style = TextStyle::from((FAMILY, 13).into_font())
                .color(&CHANCE)
                .pos(Pos::new(HPos::Left, VPos::Top));
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(" stage {stage} →"),
                    (b, y1 - pad * 0.2),
                    style,
                )))
                .map_err(de)?;
        }
        if let Some((_, at, p)) = clip {
            let right = at > s0 + (s1 - s0) * 0.6;
            let style = TextStyle::from((FAMILY, 13).into_font())
                .color(&SPIKE)
                .pos(Pos::new(
                    if right { HPos::Right } else { HPos::Left },
                    VPos::Top,
                ));
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(" ↑ axis clipped: the rolled-back attempt peaks at {p:.1} nats (step {at:.0}) "),
                    (at, y1),
                    style,
                )))
                .map_err(de)?;
        }
        for (k, ev) in events.iter().enumerate() {
            let x = ev.step as f64;
            let (c, label) = if ev.status == "spike" {
                (SPIKE, format!("spike: {}", ev.name))
            } else {
                (ROLLBACK, format!("rolled back: {}", ev.name))
            };
            let line = c.mix(0.7).stroke_width(2);
            if ev.status == "spike" {
                chart
                    .draw_series(LineSeries::new(vec![(x, y0), (x, y1)], c.stroke_width(2)))
                    .map_err(de)?;
            } else {
                chart
                    .draw_series(DashedLineSeries::new(vec![(x, y0), (x, y1)], 3, 3, line))
                    .map_err(de)?;
            }
            if is_loss {
                // stagger the labels so that neighbouring events do not overlap
                let frac = 0.12 + 0.09 * (k % 4) as f64;
                let right = x > s0 + (s1 - s0) * 0.75;
                let anchor = if right { HPos::Right } else { HPos::Left };
                let style = TextStyle::from((FAMILY, 12).into_font())
                    .color(&c)
                    .pos(Pos::new(anchor, VPos::Center));
                let txt = if right {
                    format!("{label} ")
                } else {
                    format!(" {label}")
                };
                chart
                    .draw_series(std::iter::once(Text::new(
                        txt,
                        (x, y1 - (y1 - y0) * frac),
                        style,
                    )))
                    .map_err(de)?;
            }
        }
        let multi = series.len() > 1;
        let mut labelled = std::collections::HashSet::new();
        for (label, pts, c, width) in series {
            // Clipped values are drawn at the top of the axis.
            let pts: Vec<(f64, f64)> = pts.into_iter().map(|(x, y)| (x, y.min(y1))).collect();
            let s = chart
                .draw_series(LineSeries::new(pts, c.stroke_width(width)))
                .map_err(de)?;
            if multi && labelled.insert(label) {
                s.label(label).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2))
                });
            }
        }
        if multi {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.9))
                .border_style(GRID)
                .label_font((FAMILY, 13))
                .draw()
                .map_err(de)?;
        }
    }
    Ok(())
}
