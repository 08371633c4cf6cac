//! One line of `metrics.jsonl` per optimizer step.

use serde::{Deserialize, Serialize};

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
}
