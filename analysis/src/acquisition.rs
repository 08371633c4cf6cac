//! Knowledge acquisition and forgetting from injected facts (Chang et al., NeurIPS 2024):
//! per injection and probe kind, the mean target-span log-probability over the injection's facts
//! at every measured step, and from it
//! * **effectivity**: the gain from just before the first repetition to the local acquisition
//!   maximum (the highest value within `lam_window` steps from the last repetition on, or the
//!   first measurement after it when none falls in the window);
//! * **retainability** `R(t)`: the fraction of that gain left `t` steps after the maximum;
//! * a **power-law fit** `R(t) = a t^-b` by least squares on `ln R = ln a - b ln t` (points with
//!   `R > 0`), with its R² in log space.
//!
//! Measurements come from checkpoints (`<run>/acquisition/<ckpt>.json`) and, where the run asked
//! for them, from single steps (`dense.jsonl`): a step measured both ways keeps the dense value
//! (they are the same weights).

use std::collections::BTreeMap;

use k2_archive::{AcquisitionFile, DenseLine, InjectionRecord, Manifest, ProbeScore};
use serde::Serialize;

/// Steps after the last repetition searched for the local acquisition maximum.
pub const LAM_WINDOW: u64 = 10;

/// One injection's probes of one kind, across training.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trajectory {
    pub injection: String,
    pub mode: String,
    pub kind: String,
    /// Global steps of its repetitions (first, last), from the manifest.
    pub first_step: u64,
    pub last_step: u64,
    pub steps: Vec<u64>,
    /// Per step, the per-fact log-probabilities (fact order).
    pub per_fact: Vec<Vec<f64>>,
    /// Whether the step was a dense (single-step) measurement.
    pub dense: Vec<bool>,
    /// Per step, the mean over the injection's control facts (never injected), where measured.
    pub control: Vec<Option<f64>>,
}

impl Trajectory {
    pub fn mean(&self, i: usize) -> f64 {
        let v = &self.per_fact[i];
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }

    /// Whether every step has its control mean: then the metrics are net of it.
    pub fn has_control(&self) -> bool {
        !self.control.is_empty() && self.control.iter().all(Option::is_some)
    }

    /// The series the metrics are computed on: the mean, less the control mean when every step
    /// has one.
    pub fn signal(&self, i: usize) -> f64 {
        let c = if self.has_control() {
            self.control[i].unwrap_or(0.0)
        } else {
            0.0
        };
        self.mean(i) - c
    }

    /// The index of the last measurement before the first repetition.
    pub fn before_index(&self) -> Option<usize> {
        (0..self.steps.len())
            .rev()
            .find(|&i| self.steps[i] < self.first_step)
    }

    /// At step index `i`, each fact's gain since index `b`, less the control mean's (when every
    /// step has one).
    pub fn fact_gains(&self, i: usize, b: usize) -> Vec<f64> {
        let c = if self.has_control() {
            self.control[i].unwrap_or(0.0) - self.control[b].unwrap_or(0.0)
        } else {
            0.0
        };
        self.per_fact[i]
            .iter()
            .zip(&self.per_fact[b])
            .map(|(x, y)| x - y - c)
            .collect()
    }

    pub fn sd(&self, i: usize) -> f64 {
        let v = &self.per_fact[i];
        if v.len() < 2 {
            return 0.0;
        }
        let m = self.mean(i);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    }
}

/// `R(t) ≈ a t^-b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerFit {
    pub a: f64,
    pub b: f64,
    /// Coefficient of determination of the log-log regression.
    pub r2: f64,
    pub points: usize,
}

/// The acquisition metrics of one trajectory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Acquisition {
    pub injection: String,
    pub mode: String,
    pub kind: String,
    /// Whether the values below are net of the control set (the mean less the control mean).
    pub net_of_control: bool,
    /// The raw gain of the mean (not net of the control) and the control's own change over the
    /// same steps.
    pub raw_effectivity: f64,
    pub control_change: Option<f64>,
    /// The step measured just before the first repetition, and the signal there.
    pub before_step: u64,
    pub before: f64,
    /// The local acquisition maximum's step and mean.
    pub lam_step: u64,
    pub lam: f64,
    /// `lam - before` (nats), of the mean, and the spread of the per-fact gains (sd).
    pub effectivity: f64,
    pub effectivity_sd: f64,
    /// Paired bootstrap over facts of the per-fact gains (1000 resamples, seed 1234): the 95%
    /// interval and the two-sided p-value of "no gain".
    pub effectivity_ci: Option<(f64, f64)>,
    pub effectivity_p: Option<f64>,
    /// (t, R(t)) for every measurement after the maximum.
    pub retainability: Vec<(u64, f64)>,
    /// R at the last measurement.
    pub final_retainability: Option<f64>,
    pub fit: Option<PowerFit>,
}

/// Least squares of `ln R` on `ln t` over the points with `t >= 1` and `R > 0`; `None` with
/// fewer than 3 such points.
pub fn power_law_fit(points: &[(u64, f64)]) -> Option<PowerFit> {
    let xy: Vec<(f64, f64)> = points
        .iter()
        .filter(|&&(t, r)| t >= 1 && r > 0.0 && r.is_finite())
        .map(|&(t, r)| ((t as f64).ln(), r.ln()))
        .collect();
    let n = xy.len();
    if n < 3 {
        return None;
    }
    let mx = xy.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = xy.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ss_res: f64 = xy
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    let ss_tot: f64 = xy.iter().map(|p| (p.1 - my).powi(2)).sum();
    Some(PowerFit {
        a: intercept.exp(),
        b: -slope,
        r2: if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            1.0
        },
        points: n,
    })
}

/// Effectivity, retainability and the decay fit of `t`; `None` when nothing was measured before
/// the first repetition or after the last one.
pub fn acquisition(t: &Trajectory, lam_window: u64) -> Option<Acquisition> {
    let n = t.steps.len();
    let bi = t.before_index()?;
    let after: Vec<usize> = (0..n).filter(|&i| t.steps[i] >= t.last_step).collect();
    let first_after = *after.first()?;
    let li = after
        .iter()
        .copied()
        .filter(|&i| t.steps[i] <= t.last_step + lam_window)
        .max_by(|&a, &b| t.signal(a).total_cmp(&t.signal(b)).then(b.cmp(&a)))
        .unwrap_or(first_after);
    let (before, lam) = (t.signal(bi), t.signal(li));
    let effectivity = lam - before;
    let control_change = t
        .has_control()
        .then(|| t.control[li].unwrap_or(0.0) - t.control[bi].unwrap_or(0.0));
    let gains = t.fact_gains(li, bi);
    let boot = crate::stats::paired_bootstrap(&vec![0.0; gains.len()], &gains, 1000, 1234);
    let gm = gains.iter().sum::<f64>() / gains.len().max(1) as f64;
    let effectivity_sd = if gains.len() > 1 {
        (gains.iter().map(|g| (g - gm).powi(2)).sum::<f64>() / (gains.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    let retainability: Vec<(u64, f64)> = if effectivity > 0.0 {
        (li + 1..n)
            .map(|i| {
                (
                    t.steps[i] - t.steps[li],
                    (t.signal(i) - before) / effectivity,
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(Acquisition {
        injection: t.injection.clone(),
        mode: t.mode.clone(),
        kind: t.kind.clone(),
        net_of_control: t.has_control(),
        raw_effectivity: t.mean(li) - t.mean(bi),
        control_change,
        before_step: t.steps[bi],
        before,
        lam_step: t.steps[li],
        lam,
        effectivity,
        effectivity_sd,
        effectivity_ci: boot.as_ref().map(|d| (d.ci_low, d.ci_high)),
        effectivity_p: boot.as_ref().map(|d| d.p_value),
        final_retainability: retainability.last().map(|p| p.1),
        fit: power_law_fit(&retainability),
        retainability,
    })
}

/// The trajectories of every injection and probe kind, from the checkpoint files (`ok` ones: the
/// surviving run) and the dense lines.
pub fn trajectories(
    manifest: &Manifest,
    injections: &[InjectionRecord],
    files: &[AcquisitionFile],
    dense: &[DenseLine],
) -> Vec<Trajectory> {
    // (injection, kind, control) -> step -> (fact -> logprob, dense)
    type Points = BTreeMap<u64, (BTreeMap<usize, f64>, bool)>;
    let mut by: BTreeMap<(String, String, bool), Points> = BTreeMap::new();
    let mut add = |s: &ProbeScore, step: u64, is_dense: bool| {
        let e = by
            .entry((s.injection.clone(), s.kind.clone(), s.control))
            .or_default()
            .entry(step)
            .or_insert_with(|| (BTreeMap::new(), is_dense));
        if is_dense && !e.1 {
            *e = (BTreeMap::new(), true);
        }
        if e.1 == is_dense {
            e.0.insert(s.fact, s.logprob);
        }
    };
    for f in files.iter().filter(|f| f.status == "ok") {
        for s in &f.scores {
            add(s, f.step, false);
        }
    }
    for l in dense {
        for s in &l.scores {
            add(s, l.step, true);
        }
    }
    let mut out = Vec::new();
    for inj in injections {
        let steps = manifest
            .checkpoints
            .iter()
            .filter(|c| c.status == k2_archive::CheckpointStatus::Ok)
            .flat_map(|c| c.injected.iter())
            .find(|s| s.name == inj.name);
        let Some(steps) = steps else { continue };
        for kind in k2_corpus::injection::ProbeKind::ALL {
            let key = |control| (inj.name.clone(), kind.name().to_string(), control);
            let Some(points) = by.get(&key(false)) else {
                continue;
            };
            let controls = by.get(&key(true));
            let points: Vec<_> = points
                .iter()
                .filter(|(_, (facts, _))| facts.len() == inj.facts)
                .collect();
            out.push(Trajectory {
                injection: inj.name.clone(),
                mode: inj.mode.clone(),
                kind: kind.name().to_string(),
                first_step: steps.first_step,
                last_step: steps.last_step,
                steps: points.iter().map(|p| *p.0).collect(),
                per_fact: points
                    .iter()
                    .map(|p| p.1 .0.values().copied().collect())
                    .collect(),
                dense: points.iter().map(|p| p.1 .1).collect(),
                control: points
                    .iter()
                    .map(|p| {
                        let c = controls?.get(p.0)?;
                        (c.0.len() == inj.facts)
                            .then(|| c.0.values().sum::<f64>() / inj.facts as f64)
                    })
                    .collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built trajectory: flat at -10 before the injection at steps 101..110, the maximum
    /// -6 at step 110, then `-10 + 4 * 0.9 * t^-0.3` for t = 1..=200 steps after it.
    fn synthetic() -> Trajectory {
        let mut steps: Vec<u64> = (90..=110).collect();
        let mut vals: Vec<f64> = steps
            .iter()
            .map(|&s| {
                if s < 101 {
                    -10.0
                } else {
                    -10.0 + 4.0 * (s - 100) as f64 / 10.0
                }
            })
            .collect();
        for t in 1..=200u64 {
            steps.push(110 + t);
            vals.push(-10.0 + 4.0 * 0.9 * (t as f64).powf(-0.3));
        }
        Trajectory {
            injection: "x".into(),
            mode: "duplicate".into(),
            kind: "memorization".into(),
            first_step: 101,
            last_step: 110,
            dense: vec![true; steps.len()],
            control: Vec::new(),
            per_fact: vals.iter().map(|&v| vec![v - 0.5, v + 0.5]).collect(),
            steps,
        }
    }

    #[test]
    fn effectivity_retainability_and_exponent_are_recovered() {
        let a = acquisition(&synthetic(), LAM_WINDOW).unwrap();
        assert_eq!((a.before_step, a.lam_step), (100, 110));
        assert!((a.before + 10.0).abs() < 1e-12);
        assert!((a.effectivity - 4.0).abs() < 1e-6, "{}", a.effectivity);
        assert!(a.effectivity_sd.abs() < 1e-12);
        let (t, r) = a.retainability[9];
        assert_eq!(t, 10);
        assert!((r - 0.9 * 10f64.powf(-0.3)).abs() < 1e-6);
        let fit = a.fit.unwrap();
        assert!((fit.b - 0.3).abs() < 1e-6, "{fit:?}");
        assert!((fit.a - 0.9).abs() < 1e-6, "{fit:?}");
        assert!((fit.r2 - 1.0).abs() < 1e-9);
        assert_eq!(fit.points, 200);
    }

    #[test]
    fn the_maximum_is_searched_only_in_the_window() {
        let mut t = synthetic();
        // A later, higher value outside the window does not move the maximum.
        let i = t.steps.iter().position(|&s| s == 150).unwrap();
        t.per_fact[i] = vec![0.0, 0.0];
        let a = acquisition(&t, LAM_WINDOW).unwrap();
        assert_eq!(a.lam_step, 110);
        // Checkpoint-level data: nothing in the window, the first point after is the maximum.
        let t = Trajectory {
            steps: vec![80, 120, 160],
            per_fact: vec![vec![-10.0], vec![-8.0], vec![-9.0]],
            dense: vec![false; 3],
            control: Vec::new(),
            ..synthetic()
        };
        let a = acquisition(&t, LAM_WINDOW).unwrap();
        assert_eq!((a.lam_step, a.effectivity), (120, 2.0));
        assert_eq!(a.retainability, vec![(40, 0.5)]);
        assert!(a.fit.is_none());
    }

    #[test]
    fn a_control_drift_is_subtracted() {
        // The injected facts rise by 3, the control by 1 over the same steps: net gain 2; later
        // the injected stay while the control rises by another 1: net retainability 0.5.
        let t = Trajectory {
            steps: vec![80, 120, 160],
            per_fact: vec![vec![-10.0, -12.0], vec![-7.0, -9.0], vec![-7.0, -9.0]],
            dense: vec![false; 3],
            control: vec![Some(-10.0), Some(-9.0), Some(-8.0)],
            ..synthetic()
        };
        let a = acquisition(&t, LAM_WINDOW).unwrap();
        assert!(a.net_of_control);
        assert_eq!((a.raw_effectivity, a.control_change), (3.0, Some(1.0)));
        assert_eq!((a.effectivity, a.effectivity_sd), (2.0, 0.0));
        assert_eq!(a.retainability, vec![(40, 0.5)]);
    }

    #[test]
    fn no_gain_means_no_retainability() {
        let t = Trajectory {
            steps: vec![80, 120, 160],
            per_fact: vec![vec![-8.0], vec![-9.0], vec![-9.5]],
            dense: vec![false; 3],
            control: Vec::new(),
            ..synthetic()
        };
        let a = acquisition(&t, LAM_WINDOW).unwrap();
        assert!(a.effectivity < 0.0);
        assert!(a.retainability.is_empty() && a.fit.is_none());
    }

    #[test]
    fn power_law_fit_matches_a_hand_computed_regression() {
        // ln R = ln 2 - 1 * ln t exactly at t = 1, 2, 4: a = 2, b = 1.
        let f = power_law_fit(&[(1, 2.0), (2, 1.0), (4, 0.5), (8, -0.1)]).unwrap();
        assert!((f.a - 2.0).abs() < 1e-12 && (f.b - 1.0).abs() < 1e-12 && f.points == 3);
        assert!(power_law_fit(&[(1, 1.0), (2, 0.5)]).is_none());
    }
}
