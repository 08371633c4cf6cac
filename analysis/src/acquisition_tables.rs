//! Loading a run's acquisition measurements and rendering them as tables (for
//! `k2 analyze acquisition` and the report).

use std::path::Path;

use anyhow::{Context, Result};
use k2_archive::{ChunkOrder, InjectionRecord, Manifest, RunLayout};
use serde::Serialize;

use crate::acquisition::{acquisition, trajectories, Acquisition, Trajectory, LAM_WINDOW};
use crate::tables::simple_table;

/// A run's injections, trajectories and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct RunAcquisition {
    pub run: String,
    pub injections: Vec<InjectionRecord>,
    pub trajectories: Vec<Trajectory>,
    pub metrics: Vec<Acquisition>,
    pub lam_window: u64,
}

/// The measurements of `run`; `None` when it has no injections or nothing was measured yet.
pub fn load_run(run: &Path) -> Result<Option<RunAcquisition>> {
    let layout = RunLayout::new(run);
    if !layout.chunk_order_path().exists() {
        return Ok(None);
    }
    let manifest = Manifest::load(&layout.manifest_path())?;
    let order = ChunkOrder::load(&layout.chunk_order_path())?;
    if order.injections.is_empty() {
        return Ok(None);
    }
    let dir = layout.acquisition_dir();
    let mut files = Vec::new();
    for c in &manifest.checkpoints {
        let p = dir.join(format!("{}.json", c.name));
        if p.exists() {
            files.push(
                k2_archive::read_acquisition_file(&p)
                    .with_context(|| format!("reading {}", p.display()))?,
            );
        }
    }
    let dense = k2_archive::read_dense(&layout.dense_probes_path())?;
    if files.is_empty() && dense.is_empty() {
        return Ok(None);
    }
    let trajectories = trajectories(&manifest, &order.injections, &files, &dense);
    let metrics = trajectories
        .iter()
        .filter_map(|t| acquisition(t, LAM_WINDOW))
        .collect();
    Ok(Some(RunAcquisition {
        run: manifest.run.clone(),
        injections: order.injections,
        trajectories,
        metrics,
        lam_window: LAM_WINDOW,
    }))
}

/// R at the first measurement at least `t` steps after the maximum.
fn r_at(a: &Acquisition, t: u64) -> String {
    a.retainability
        .iter()
        .find(|p| p.0 >= t)
        .map_or("-".into(), |p| format!("{:.2}", p.1))
}

/// One row per injection and probe kind.
pub fn metrics_table(r: &RunAcquisition) -> String {
    let rows = r
        .metrics
        .iter()
        .map(|a| {
            let inj = r.injections.iter().find(|i| i.name == a.injection);
            let traj = r
                .trajectories
                .iter()
                .find(|t| t.injection == a.injection && t.kind == a.kind);
            vec![
                a.injection.clone(),
                format!("{} x{}", a.mode, inj.map_or(1, |i| i.k)),
                a.kind.clone(),
                traj.map_or("-".into(), |t| format!("{}-{}", t.first_step, t.last_step)),
                format!("step {}", a.before_step),
                format!("step {}", a.lam_step),
                match (a.effectivity_ci, a.effectivity_p) {
                    (Some((lo, hi)), Some(p)) => format!(
                        "{:+.2} [{lo:+.2}, {hi:+.2}] p {}{}",
                        a.effectivity,
                        crate::compare::fmt_p(p),
                        if p < crate::stats::ALPHA { " *" } else { "" }
                    ),
                    _ => format!("{:+.2}", a.effectivity),
                },
                format!("{:+.2}", a.raw_effectivity),
                a.control_change.map_or("-".into(), |c| format!("{c:+.2}")),
                r_at(a, 10),
                r_at(a, 40),
                a.retainability
                    .last()
                    .map_or("-".into(), |p| format!("{:.2} (+{})", p.1, p.0)),
                a.fit.as_ref().map_or("-".into(), |f| {
                    format!("{:.3} (R² {:.2}, n {})", f.b, f.r2, f.points)
                }),
            ]
        })
        .collect();
    simple_table(
        &[
            "injection",
            "mode",
            "probe",
            "steps",
            "before",
            "maximum",
            "effectivity (nats, 95% CI, p)",
            "raw gain",
            "control change",
            "R(+10)",
            "R(+40)",
            "R last",
            "decay exponent b",
        ],
        rows,
    )
}

/// The whole text of `k2 analyze acquisition`.
pub fn acquisition_text(r: &RunAcquisition) -> String {
    let dense = r.trajectories.iter().any(|t| t.dense.iter().any(|&d| d));
    format!(
        "knowledge acquisition in `{}`: mean target-span log-probability over each injection's facts,\n\
         less the mean over its control facts (never injected); {} measurements; the maximum is\n\
         searched {} steps from the last repetition; effectivity: gain from before the first\n\
         repetition to the maximum, net (paired bootstrap over facts; * p < 0.05); R(t): share of the gain left t steps after\n\
         it; b: R(t) ≈ a·t^-b, least squares in log-log\n{}\n",
        r.run,
        if dense { "checkpoints and dense steps" } else { "checkpoints only" },
        r.lam_window,
        metrics_table(r)
    )
}
