//! Training events recorded in the run manifest (`[[event]]` tables of `checkpoints.toml`):
//! loss spikes, how they were classified, and what was done about them.

use serde::{Deserialize, Serialize};

/// How a loss spike was classified (K2's terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikeKind {
    /// Recovered by itself within the detector's window.
    Benign,
    /// Still elevated when the window ran out (or the loss became non-finite).
    Malignant,
}

impl std::fmt::Display for SpikeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SpikeKind::Benign => "benign",
            SpikeKind::Malignant => "malignant",
        })
    }
}

/// One loss spike, from its first flagged step to the step it was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeEvent {
    pub kind: SpikeKind,
    /// Training attempt: 0 for the first pass, incremented by every rollback.
    pub attempt: u32,
    /// First step flagged.
    pub start_step: u64,
    /// Step at which the spike was classified (recovered, or the window ran out).
    pub end_step: u64,
    /// Chunk and training position being trained at `start_step`.
    pub chunk: u32,
    pub position: u32,
    /// What flagged it: `loss`, `grad_norm` or `loss+grad_norm`.
    pub flagged_by: String,
    /// Loss EMA (the baseline) and its standard deviation when the spike started.
    pub baseline_loss: f64,
    pub baseline_std: f64,
    pub peak_loss: f64,
    pub peak_step: u64,
    /// Largest grad norm over its running median during the spike.
    pub max_grad_ratio: f64,
    /// Largest (update norm / param norm) over its running median during the spike.
    pub max_update_ratio: f64,
    /// `none` (benign, or policy `log`) or `rollback`.
    pub action: String,
    /// With `rollback`: the checkpoint training restarted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    /// With `rollback`: the chunk moved towards the end of its stage, and from which position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_chunk: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_from_position: Option<u32>,
    /// With `rollback`: checkpoints of the diverged attempt, kept with status `spike`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spike_checkpoints: Vec<String>,
    /// With `rollback`: the peak learning rate used from the restart on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_lr_after: Option<f64>,
}

impl SpikeEvent {
    pub fn is_rollback(&self) -> bool {
        self.action == "rollback"
    }
}
