//! One line of `metrics.jsonl` per optimizer step, and one per resolved loss spike
//! (`{"event": "spike", ...}`). After a rollback the file holds both the diverged attempt's steps
//! and the retrained ones; `attempt` tells them apart (the last line of a step is the one the
//! surviving checkpoints were trained with).

use k2_archive::RunLayout;
use serde::{Deserialize, Serialize};

use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub param_norm: f64,
    pub update_norm: f64,
    pub tokens_seen: u64,
    pub tokens_per_s: f64,
    pub chunk: u32,
    pub stage: usize,
    /// 0 for the first pass; every rollback starts a new attempt.
    #[serde(default)]
    pub attempt: u32,
}

/// A resolved spike as a `metrics.jsonl` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventLine {
    /// Always `spike`.
    pub event: String,
    /// The step at which it was resolved.
    pub step: u64,
    #[serde(flatten)]
    pub spike: k2_archive::SpikeEvent,
}

impl EventLine {
    pub fn new(spike: &k2_archive::SpikeEvent) -> Self {
        EventLine {
            event: "spike".into(),
            step: spike.end_step,
            spike: spike.clone(),
        }
    }
}

/// Keeps the metrics lines of earlier attempts and those of the current attempt up to `step`.
pub(crate) fn truncate_metrics(layout: &RunLayout, step: u64, attempt: u32) -> Result<()> {
    k2_archive::truncate_jsonl_after(&layout.metrics_path(), |v| {
        let a = v.get("attempt").and_then(|a| a.as_u64()).unwrap_or(0);
        let s = v.get("step").and_then(|s| s.as_u64());
        a < attempt as u64 || s.is_some_and(|s| s <= step)
    })?;
    Ok(())
}
