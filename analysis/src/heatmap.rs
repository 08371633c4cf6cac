//! Checkpoint x task heat map of the headline metric (PNG and SVG), with a colour-scale legend.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plots::{de, FAMILY};

/// A checkpoint (row) x task (column) matrix of values on one colour scale.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    /// Row labels, top to bottom (checkpoints in training order).
    pub rows: Vec<String>,
    /// Column labels (tasks, with their metric).
    pub cols: Vec<String>,
    /// `values[row][col]`; `None` where there is no value.
    pub values: Vec<Vec<Option<f64>>>,
    /// Colour scale range.
    pub vmin: f64,
    pub vmax: f64,
    /// Name of the colour scale, e.g. `headline metric (fraction correct)`.
    pub scale_label: String,
    /// Rows before which a black line is drawn (e.g. the first checkpoint of a new stage).
    pub row_breaks: Vec<usize>,
    /// `(row, col)` cells drawn with a frame (e.g. the chunks a checkpoint was trained on), and
    /// what the frame means (shown under the colour scale; empty: no legend entry).
    pub outlined: Vec<(usize, usize)>,
    pub outline_label: String,
}

/// Colour of the frame of an outlined cell.
const OUTLINE: RGBColor = RGBColor(230, 40, 40);
/// Height under the colour scale for the outline's legend entry.
const OUTLINE_LEGEND: i32 = 56;

/// Viridis-like colour map, `t` in 0..=1.
pub fn colormap(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 6] = [
        (68, 1, 84),
        (65, 68, 135),
        (42, 120, 142),
        (34, 168, 132),
        (122, 209, 81),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

fn text_width(s: &str, px: u32) -> u32 {
    (s.chars().count() as f64 * px as f64 * 0.6).ceil() as u32
}

struct Layout {
    w: u32,
    h: u32,
    left: u32,
    top: u32,
    cell_w: u32,
    cell_h: u32,
    label_every: usize,
    annotate: bool,
}

fn layout(hm: &Heatmap) -> Layout {
    let nr = hm.rows.len().max(1);
    let nc = hm.cols.len().max(1);
    let left = hm
        .rows
        .iter()
        .map(|r| text_width(r, 13))
        .max()
        .unwrap_or(40)
        .max(60)
        + 16;
    let cell_w = hm
        .cols
        .iter()
        .flat_map(|c| c.split(' ').map(|p| text_width(p, 12)))
        .max()
        .unwrap_or(60)
        .clamp(56, 150)
        + 8;
    let cell_h = (640 / nr as u32).clamp(2, 26);
    let label_every = (16usize).div_ceil(cell_h as usize).max(1);
    let top = 50 + 44; // title + two-line column headers
    let legend = 150;
    let w = (left + nc as u32 * cell_w + legend).max(560);
    let mut h = top + nr as u32 * cell_h + 40;
    if !hm.outline_label.is_empty() {
        h = h.max(top + 120 + 40 + OUTLINE_LEGEND as u32);
    }
    Layout {
        w,
        h,
        left,
        top,
        cell_w,
        cell_h,
        label_every,
        annotate: cell_h >= 16,
    }
}

/// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
pub fn write_heatmap(hm: &Heatmap, stem: &Path) -> Result<Vec<PathBuf>> {
    crate::plots::ensure_font();
    let l = layout(hm);
    Ok(crate::plots::png_and_svg!(stem, (l.w, l.h), |root| draw(
        &root, hm, &l
    )))
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, hm: &Heatmap, l: &Layout) -> Result<()> {
    root.fill(&WHITE).map_err(de)?;
    let font = |px: u32| TextStyle::from((FAMILY, px).into_font());
    root.draw(&Text::new(hm.title.clone(), (16, 14), font(20)))
        .map_err(de)?;
    let span = (hm.vmax - hm.vmin).max(1e-12);
    let x0 = l.left as i32;
    let y0 = l.top as i32;
    let (cw, ch) = (l.cell_w as i32, l.cell_h as i32);
    // column headers: split on the first space into two lines ("task" / "(metric)")
    for (j, c) in hm.cols.iter().enumerate() {
        let cx = x0 + j as i32 * cw + cw / 2;
        let (a, b) = match c.split_once(" (") {
            Some((a, b)) => (a.to_string(), format!("({b}")),
            None => (c.clone(), String::new()),
        };
        let st = font(12).pos(Pos::new(HPos::Center, VPos::Bottom));
        root.draw(&Text::new(a, (cx, y0 - 20), st.clone()))
            .map_err(de)?;
        root.draw(&Text::new(b, (cx, y0 - 5), st.color(&RGBColor(90, 90, 90))))
            .map_err(de)?;
    }
    let missing = RGBColor(235, 235, 235);
    for (i, r) in hm.rows.iter().enumerate() {
        let ry = y0 + i as i32 * ch;
        if i % l.label_every == 0 || i + 1 == hm.rows.len() && l.label_every == 1 {
            let st = font(13).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(r.clone(), (x0 - 8, ry + ch / 2), st))
                .map_err(de)?;
        }
        for j in 0..hm.cols.len() {
            let cx = x0 + j as i32 * cw;
            let v = hm
                .values
                .get(i)
                .and_then(|row| row.get(j))
                .copied()
                .flatten();
            let color = v.map(|v| colormap((v - hm.vmin) / span)).unwrap_or(missing);
            root.draw(&Rectangle::new(
                [
                    (cx, ry),
                    (cx + cw - 1, ry + ch - if ch > 4 { 1 } else { 0 }),
                ],
                color.filled(),
            ))
            .map_err(de)?;
            if l.annotate {
                let (txt, tc) = match v {
                    Some(v) => {
                        let t = (v - hm.vmin) / span;
                        (format!("{v:.3}"), if t > 0.6 { BLACK } else { WHITE })
                    }
                    None => ("–".to_string(), RGBColor(120, 120, 120)),
                };
                let st = font(12)
                    .pos(Pos::new(HPos::Center, VPos::Center))
                    .color(&tc);
                root.draw(&Text::new(txt, (cx + cw / 2, ry + ch / 2), st))
                    .map_err(de)?;
            }
        }
    }
    for &(i, j) in &hm.outlined {
        if i < hm.rows.len() && j < hm.cols.len() {
            let (cx, ry) = (x0 + j as i32 * cw, y0 + i as i32 * ch);
            let inset = i32::from(ch > 6);
            root.draw(&Rectangle::new(
                [
                    (cx + inset, ry + inset),
                    (cx + cw - 1 - inset, ry + ch - 1 - inset),
                ],
                OUTLINE.stroke_width(if ch > 6 { 2 } else { 1 }),
            ))
            .map_err(de)?;
        }
    }
    for &b in &hm.row_breaks {
        let y = y0 + b as i32 * ch - 1;
        root.draw(&Rectangle::new(
            [(x0 - 4, y - 1), (x0 + hm.cols.len() as i32 * cw, y + 1)],
            BLACK.filled(),
        ))
        .map_err(de)?;
    }
    // colour-scale legend
    let lx = x0 + hm.cols.len() as i32 * cw + 24;
    let room = if hm.outline_label.is_empty() {
        0
    } else {
        OUTLINE_LEGEND
    };
    let lh = (l.h as i32 - y0 - 40 - room).clamp(120, 320);
    let bar_w = 18;
    for k in 0..lh {
        let t = 1.0 - k as f64 / (lh - 1).max(1) as f64;
        root.draw(&Rectangle::new(
            [(lx, y0 + k), (lx + bar_w, y0 + k + 1)],
            colormap(t).filled(),
        ))
        .map_err(de)?;
    }
    root.draw(&Rectangle::new(
        [(lx, y0), (lx + bar_w, y0 + lh)],
        RGBColor(120, 120, 120).stroke_width(1),
    ))
    .map_err(de)?;
    let tick = if span >= 0.3 { 0.1 } else { 0.05 };
    let mut v = (hm.vmin / tick - 1e-9).ceil() * tick;
    while v <= hm.vmax + 1e-9 {
        let f = (v - hm.vmin) / span;
        let y = y0 + ((1.0 - f) * lh as f64).round() as i32;
        root.draw(&PathElement::new(
            vec![(lx + bar_w, y), (lx + bar_w + 4, y)],
            BLACK.stroke_width(1),
        ))
        .map_err(de)?;
        let st = font(12).pos(Pos::new(HPos::Left, VPos::Center));
        // `+ 0.0` turns a -0.0 tick (from the rounding above) into 0.0
        root.draw(&Text::new(
            format!("{:.2}", v + 0.0),
            (lx + bar_w + 7, y),
            st,
        ))
        .map_err(de)?;
        v += tick;
    }
    let st = font(12).pos(Pos::new(HPos::Left, VPos::Bottom));
    for (n, line) in hm.scale_label.split('\n').enumerate() {
        root.draw(&Text::new(
            line.to_string(),
            (lx - 4, y0 - 20 + n as i32 * 15),
            st.clone(),
        ))
        .map_err(de)?;
    }
    if !hm.outline_label.is_empty() {
        let y = y0 + lh + 24;
        root.draw(&Rectangle::new(
            [(lx, y), (lx + bar_w, y + 14)],
            OUTLINE.stroke_width(2),
        ))
        .map_err(de)?;
        let st = font(12).pos(Pos::new(HPos::Left, VPos::Center));
        for (n, line) in hm.outline_label.split('\n').enumerate() {
            root.draw(&Text::new(
                line.to_string(),
                (lx + bar_w + 7, y + 7 + n as i32 * 15),
                st.clone(),
            ))
            .map_err(de)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormap_ends() {
        assert_eq!(colormap(0.0), RGBColor(68, 1, 84));
        assert_eq!(colormap(1.0), RGBColor(253, 231, 37));
        assert_eq!(colormap(f64::NAN), RGBColor(68, 1, 84));
        assert_eq!(colormap(7.0), RGBColor(253, 231, 37));
    }
}
