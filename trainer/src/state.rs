//! `trainer_state/state.json`: everything besides weights and moments that a resumed run needs to
//! continue bit for bit — step, tokens, the data cursor, the schedule, RNG states, the config hash.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    pub format: u32,
    pub run: String,
    pub config_hash: String,
    /// Optimizer steps taken.
    pub step: u64,
    pub tokens_seen: u64,
    pub stage: usize,
    pub cursor: DataCursor,
    pub schedule: ScheduleState,
    pub rng: RngState,
    /// The loss-spike detector's history and any spike it is following.
    #[serde(default)]
    pub detector: crate::spike::DetectorState,
    /// The device kind that trained the last interval, when not the CPU (`cuda`). Absent on the
    /// CPU, so CPU checkpoints keep their bytes. Bit-exact resume and replay need the same kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Where the data stream stands: the chunk order and the next (position, sample) to train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCursor {
    pub chunk_order: Vec<u32>,
    /// Index into `chunk_order` of the chunk trained next.
    pub position: u32,
    /// Index of the next sample inside that chunk (0 at every checkpoint boundary).
    pub sample_in_chunk: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleState {
    pub peak_lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
    /// Learning rate of the last step taken.
    pub last_lr: f64,
}

/// The run's random streams. Initialisation draws from ChaCha8(`init_seed`); the trainer's own
/// stream (reserved for stochastic policies such as batch skipping) is ChaCha8(`train_seed`) at
/// `train_word_pos`. Data order has no hidden state: chunk `c` is shuffled with `shuffle_seed_base + c`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngState {
    pub init_seed: u64,
    pub train_seed: u64,
    /// ChaCha word position, as a decimal string (u128).
    pub train_word_pos: String,
    pub shuffle_seed_base: u64,
}
