//! Online loss-spike detection and K2's classification of spikes.
//!
//! Per optimizer step the detector sees the loss, the (pre-clip) gradient norm and the update /
//! parameter norm ratio. Outside a spike it keeps an exponential moving mean and variance of the
//! loss and running medians of the other two. A step is flagged when the loss exceeds its EMA by
//! both `loss_z` standard deviations and `loss_rel` of the mean, or the gradient norm exceeds
//! `grad_ratio` times its running median. From the first flagged step the baseline is frozen and
//! the spike is followed: it is **benign** if the loss comes back under `baseline + recover_z *
//! std` (and `loss_rel` of the mean) and the gradient norm under its threshold within `window`
//! steps, **malignant** if it is still up when the window runs out or the loss is not finite.
//! K2 called spikes that recover on their own (typically a large gradient norm with a small
//! parameter update) benign, and the ones that persisted and needed a rollback malignant.
//!
//! The detector's state is part of `trainer_state/state.json`, so a resumed run sees exactly the
//! history the uninterrupted run saw. It restarts its warm-up at every stage change (new context
//! length and data mix shift the loss level).

use k2_archive::{SpikeEvent, SpikeKind};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// `[spike]` in the training config. Defaults (used when the table is absent) are documented in
/// `configs/default.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpikeSection {
    /// Run the detector at all.
    pub detect: bool,
    /// Flag when loss > EMA + `loss_z` * std ...
    pub loss_z: f64,
    /// ... and loss > EMA * (1 + `loss_rel`).
    pub loss_rel: f64,
    /// Flag when grad norm > `grad_ratio` * running median of the grad norm.
    pub grad_ratio: f64,
    /// Weight of a new step in the loss EMA (and its variance).
    pub ema_alpha: f64,
    /// Steps in the running medians of grad norm and update ratio.
    pub median_window: usize,
    /// Steps observed after the start and after each stage change before anything is flagged.
    pub warmup_steps: u64,
    /// A spike still up this many steps after it started is malignant.
    pub window: u64,
    /// Recovered when loss < baseline + `recover_z` * std (and within `loss_rel` of it).
    pub recover_z: f64,
    /// `rollback` (K2's response to a malignant spike) or `log` (record it and go on).
    pub policy: SpikePolicy,
    /// After each rollback the peak learning rate is multiplied by this (1.0: unchanged).
    pub lr_factor: f64,
    /// Stop with an error instead of rolling back more often than this.
    pub max_rollbacks: u32,
}

impl Default for SpikeSection {
    fn default() -> Self {
        SpikeSection {
            detect: true,
            loss_z: 6.0,
            loss_rel: 0.15,
            grad_ratio: 5.0,
            ema_alpha: 0.05,
            median_window: 32,
            warmup_steps: 20,
            window: 20,
            recover_z: 3.0,
            policy: SpikePolicy::Rollback,
            lr_factor: 1.0,
            max_rollbacks: 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikePolicy {
    Rollback,
    Log,
}

/// `[[inject_spike]]`: a reproducible instability for exercising the spike path. While `chunk`
/// is trained at its original place in the order (not after a deferral), the learning rate of
/// `steps` steps of its interval, from step `offset` (0-based, default 0) on, is multiplied by
/// `lr_multiplier`. Deferring the chunk after
/// the rollback removes the surge, as deferral removed K2's spikes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectSpike {
    pub chunk: u32,
    pub lr_multiplier: f64,
    pub steps: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
}

impl SpikeSection {
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(field(name, format!("{v} must be positive")))
            }
        };
        pos("spike.loss_z", self.loss_z)?;
        pos("spike.grad_ratio", self.grad_ratio)?;
        pos("spike.recover_z", self.recover_z)?;
        pos("spike.lr_factor", self.lr_factor)?;
        if !(self.loss_rel.is_finite() && self.loss_rel >= 0.0) {
            return Err(field(
                "spike.loss_rel",
                format!("{} must be >= 0", self.loss_rel),
            ));
        }
        if !(self.ema_alpha > 0.0 && self.ema_alpha < 1.0) {
            return Err(field(
                "spike.ema_alpha",
                format!("{} must be in (0, 1)", self.ema_alpha),
            ));
        }
        if self.median_window == 0 {
            return Err(field("spike.median_window", "must be at least 1".into()));
        }
        if self.window == 0 {
            return Err(field("spike.window", "must be at least 1".into()));
        }
        if self.recover_z > self.loss_z {
            return Err(field(
                "spike.recover_z",
                format!(
                    "{} must not exceed spike.loss_z {}",
                    self.recover_z, self.loss_z
                ),
            ));
        }
        Ok(())
    }
}

/// What the detector sees of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSignal {
    pub step: u64,
    pub loss: f64,
    pub grad_norm: f64,
    /// update norm / parameter norm.
    pub update_ratio: f64,
    pub chunk: u32,
    pub position: u32,
    pub attempt: u32,
}

/// A spike being followed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingSpike {
    pub start_step: u64,
    pub chunk: u32,
    pub position: u32,
    pub attempt: u32,
    pub flagged_by: String,
    pub baseline_loss: f64,
    pub baseline_std: f64,
    pub grad_median: f64,
    pub update_median: f64,
    pub peak_loss: f64,
    pub peak_step: u64,
    pub max_grad_ratio: f64,
    pub max_update_ratio: f64,
}

/// The detector's whole state (serialised into `trainer_state/state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DetectorState {
    /// Steps observed since the last reset (start or stage change).
    pub seen: u64,
    pub mean: f64,
    pub var: f64,
    /// The last `median_window` grad norms and update ratios of non-spike steps, oldest first.
    pub grad_norms: Vec<f64>,
    pub update_ratios: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingSpike>,
}

/// What one step did to the detector.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Normal,
    /// This step started a spike.
    Started,
    /// Inside a spike that is not resolved yet.
    Ongoing,
    /// The spike ended (benign) or ran out of its window (malignant).
    Resolved(Box<SpikeEvent>),
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

impl DetectorState {
    /// Forgets the history (a new stage starts).
    pub fn reset(&mut self) {
        *self = DetectorState::default();
    }

    fn loss_limit(&self, cfg: &SpikeSection, z: f64) -> f64 {
        let std = self.var.max(0.0).sqrt();
        (self.mean + z * std).max(self.mean * (1.0 + cfg.loss_rel))
    }

    /// Observes one step. Non-finite losses are malignant at once.
    pub fn observe(&mut self, cfg: &SpikeSection, s: StepSignal) -> Verdict {
        if let Some(mut p) = self.pending.take() {
            let grad_ratio = s.grad_norm / p.grad_median;
            let update_ratio = s.update_ratio / p.update_median;
            p.max_grad_ratio = p.max_grad_ratio.max(grad_ratio);
            p.max_update_ratio = p.max_update_ratio.max(update_ratio);
            if s.loss > p.peak_loss || !s.loss.is_finite() {
                p.peak_loss = s.loss;
                p.peak_step = s.step;
            }
            let recover_limit = (p.baseline_loss + cfg.recover_z * p.baseline_std)
                .max(p.baseline_loss * (1.0 + cfg.loss_rel));
            let recovered =
                s.loss.is_finite() && s.loss <= recover_limit && grad_ratio <= cfg.grad_ratio;
            if recovered {
                return Verdict::Resolved(Box::new(event(&p, s.step, SpikeKind::Benign)));
            }
            if !s.loss.is_finite() || s.step >= p.start_step + cfg.window {
                // Under the `log` policy training goes on from the new level: learn it afresh.
                self.reset();
                return Verdict::Resolved(Box::new(event(&p, s.step, SpikeKind::Malignant)));
            }
            self.pending = Some(p);
            return Verdict::Ongoing;
        }
        if !s.loss.is_finite() {
            let p = self.start(s, "loss");
            return Verdict::Resolved(Box::new(event(&p, s.step, SpikeKind::Malignant)));
        }
        if self.seen >= cfg.warmup_steps {
            let loss_up = s.loss > self.loss_limit(cfg, cfg.loss_z);
            let gm = median(&self.grad_norms);
            let grad_up = gm.is_finite() && gm > 0.0 && s.grad_norm > cfg.grad_ratio * gm;
            if loss_up || grad_up {
                let by = match (loss_up, grad_up) {
                    (true, true) => "loss+grad_norm",
                    (true, false) => "loss",
                    _ => "grad_norm",
                };
                let p = self.start(s, by);
                self.pending = Some(p);
                return Verdict::Started;
            }
        }
        // A normal step: update the baseline.
        if self.seen == 0 {
            self.mean = s.loss;
            self.var = 0.0;
        } else {
            let a = cfg.ema_alpha;
            let d = s.loss - self.mean;
            self.mean += a * d;
            self.var = (1.0 - a) * (self.var + a * d * d);
        }
        self.seen += 1;
        push_window(&mut self.grad_norms, s.grad_norm, cfg.median_window);
        push_window(&mut self.update_ratios, s.update_ratio, cfg.median_window);
        Verdict::Normal
    }

    fn start(&self, s: StepSignal, by: &str) -> PendingSpike {
        let gm = median(&self.grad_norms);
        let um = median(&self.update_ratios);
        let (gm, um) = (
            if gm.is_finite() && gm > 0.0 {
                gm
            } else {
                s.grad_norm
            },
            if um.is_finite() && um > 0.0 {
                um
            } else {
                s.update_ratio
            },
        );
        PendingSpike {
            start_step: s.step,
            chunk: s.chunk,
            position: s.position,
            attempt: s.attempt,
            flagged_by: by.to_string(),
            baseline_loss: self.mean,
            baseline_std: self.var.max(0.0).sqrt(),
            grad_median: gm,
            update_median: um,
            peak_loss: s.loss,
            peak_step: s.step,
            max_grad_ratio: s.grad_norm / gm,
            max_update_ratio: s.update_ratio / um,
        }
    }
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

fn push_window(v: &mut Vec<f64>, x: f64, n: usize) {
    v.push(x);
    if v.len() > n {
        let excess = v.len() - n;
        v.drain(..excess);
    }
}

fn event(p: &PendingSpike, end_step: u64, kind: SpikeKind) -> SpikeEvent {
    SpikeEvent {
        kind,
        attempt: p.attempt,
        start_step: p.start_step,
        end_step,
        chunk: p.chunk,
        position: p.position,
        flagged_by: p.flagged_by.clone(),
        baseline_loss: p.baseline_loss,
        baseline_std: p.baseline_std,
        peak_loss: p.peak_loss,
        peak_step: p.peak_step,
        max_grad_ratio: p.max_grad_ratio,
        max_update_ratio: p.max_update_ratio,
        action: "none".into(),
        rollback_to: None,
        deferred_chunk: None,
        deferred_from_position: None,
        spike_checkpoints: Vec::new(),
        peak_lr_after: None,
    }
}

fn field(name: &str, reason: String) -> TrainError {
    TrainError::Field {
        field: name.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(step: u64, loss: f64, grad: f64) -> StepSignal {
        StepSignal {
            step,
            loss,
            grad_norm: grad,
            update_ratio: 1e-3,
            chunk: 3,
            position: 3,
            attempt: 0,
        }
    }

    /// A slowly falling loss with deterministic noise: never flagged.
    fn warm(d: &mut DetectorState, cfg: &SpikeSection, steps: u64) {
        for t in 1..=steps {
            let noise = 0.02 * ((t * 7919 % 13) as f64 / 13.0 - 0.5);
            assert_eq!(
                d.observe(cfg, sig(t, 3.0 - 0.002 * t as f64 + noise, 0.5)),
                Verdict::Normal,
                "step {t}"
            );
        }
    }

    #[test]
    fn noise_is_not_a_spike() {
        let cfg = SpikeSection::default();
        let mut d = DetectorState::default();
        warm(&mut d, &cfg, 300);
        assert!(d.pending.is_none());
    }

    #[test]
    fn a_short_spike_is_benign() {
        let cfg = SpikeSection::default();
        let mut d = DetectorState::default();
        warm(&mut d, &cfg, 60);
        assert_eq!(d.observe(&cfg, sig(61, 5.0, 4.0)), Verdict::Started);
        assert_eq!(d.observe(&cfg, sig(62, 4.0, 0.6)), Verdict::Ongoing);
        let Verdict::Resolved(e) = d.observe(&cfg, sig(63, 2.9, 0.5)) else {
            panic!("not resolved")
        };
        assert_eq!(e.kind, SpikeKind::Benign);
        assert_eq!((e.start_step, e.end_step, e.peak_step), (61, 63, 61));
        assert_eq!(e.flagged_by, "loss+grad_norm");
        assert!((e.max_grad_ratio - 8.0).abs() < 1e-9);
        assert!(
            e.baseline_loss > 2.85 && e.baseline_loss < 2.95,
            "{}",
            e.baseline_loss
        );
    }

    #[test]
    fn a_persisting_spike_is_malignant_after_the_window() {
        let cfg = SpikeSection::default();
        let mut d = DetectorState::default();
        warm(&mut d, &cfg, 60);
        assert_eq!(d.observe(&cfg, sig(61, 6.0, 1.0)), Verdict::Started);
        for t in 62..61 + cfg.window {
            assert_eq!(d.observe(&cfg, sig(t, 5.0, 0.6)), Verdict::Ongoing, "{t}");
        }
        let Verdict::Resolved(e) = d.observe(&cfg, sig(61 + cfg.window, 4.5, 0.6)) else {
            panic!("not resolved")
        };
        assert_eq!(e.kind, SpikeKind::Malignant);
        assert_eq!(e.flagged_by, "loss");
        assert_eq!(e.peak_loss, 6.0);
    }

    #[test]
    fn a_grad_norm_spike_with_a_flat_loss_is_benign() {
        let cfg = SpikeSection::default();
        let mut d = DetectorState::default();
        warm(&mut d, &cfg, 60);
        assert_eq!(d.observe(&cfg, sig(61, 2.88, 10.0)), Verdict::Started);
        let Verdict::Resolved(e) = d.observe(&cfg, sig(62, 2.88, 0.5)) else {
            panic!()
        };
        assert_eq!(
            (e.kind, e.flagged_by.as_str()),
            (SpikeKind::Benign, "grad_norm")
        );
    }

    #[test]
    fn nan_is_malignant_at_once_and_warmup_flags_nothing() {
        let cfg = SpikeSection::default();
        let mut d = DetectorState::default();
        assert_eq!(d.observe(&cfg, sig(1, 7.0, 1.0)), Verdict::Normal);
        assert_eq!(d.observe(&cfg, sig(2, 70.0, 100.0)), Verdict::Normal);
        let Verdict::Resolved(e) = d.observe(&cfg, sig(3, f64::NAN, 1.0)) else {
            panic!()
        };
        assert_eq!(e.kind, SpikeKind::Malignant);
    }

    #[test]
    fn state_round_trips_through_json() {
        let cfg = SpikeSection::default();
        let mut d = DetectorState::default();
        warm(&mut d, &cfg, 40);
        d.observe(&cfg, sig(41, 9.0, 1.0));
        let back: DetectorState =
            serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn bad_thresholds_name_the_field() {
        let cfg = SpikeSection {
            ema_alpha: 1.5,
            ..SpikeSection::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("spike.ema_alpha"));
    }
}
