//! `metrics.jsonl`: one line per optimizer step ([`StepMetrics`]) and one per resolved loss
//! spike ([`EventLine`], `{"event": "spike", ...}`). After a rollback the file holds both the
//! diverged attempt's steps and the retrained ones; `attempt` tells them apart (the last line of a
//! step is the one the surviving checkpoints were trained with). The trainer writes these types;
//! `k2 verify` and `k2 report` read them back with [`read_metrics_log`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ArchiveError, IoContext};
use crate::events::SpikeEvent;

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    /// Always `spike`.
    pub event: String,
    /// The step at which it was resolved.
    pub step: u64,
    #[serde(flatten)]
    pub spike: SpikeEvent,
}

impl EventLine {
    pub fn new(spike: &SpikeEvent) -> Self {
        EventLine {
            event: "spike".into(),
            step: spike.end_step,
            spike: spike.clone(),
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsLine {
    Step(StepMetrics),
    Event(EventLine),
}

/// Every line of a metrics log, in file order; an error names the file and line.
pub fn read_metrics_log(path: &Path) -> Result<Vec<MetricsLine>, ArchiveError> {
    let text = std::fs::read_to_string(path).at(path, "read")?;
    let bad = |i: usize, e: serde_json::Error| ArchiveError::JsonLine {
        path: path.to_path_buf(),
        line: i + 1,
        message: e.to_string(),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(i, e))?;
        out.push(if v.get("event").is_some() {
            MetricsLine::Event(serde_json::from_value(v).map_err(|e| bad(i, e))?)
        } else {
            MetricsLine::Step(serde_json::from_value(v).map_err(|e| bad(i, e))?)
        });
    }
    Ok(out)
}

/// The step lines only.
pub fn step_lines(lines: Vec<MetricsLine>) -> Vec<StepMetrics> {
    lines
        .into_iter()
        .filter_map(|l| match l {
            MetricsLine::Step(m) => Some(m),
            MetricsLine::Event(_) => None,
        })
        .collect()
}
