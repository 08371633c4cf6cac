//! How a run records its knowledge injections (`[[inject_facts]]`): `chunk_order.toml` lists
//! every injection and the chunk that carries it; each manifest entry lists the global steps at
//! which its interval trained an injection, so the record follows the chunk through deferrals.

use serde::{Deserialize, Serialize};

/// An injection as `chunk_order.toml` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionRecord {
    pub name: String,
    /// The chunk whose samples carry it.
    pub chunk: u32,
    /// `once`, `duplicate` or `paraphrase`.
    pub mode: String,
    pub facts: usize,
    /// Repetitions, at steps `offset .. offset + k` of the chunk's interval.
    pub k: u64,
    pub offset: u64,
    /// Seed of the fictional facts.
    pub seed: u64,
}

/// The global training steps (1-based, inclusive) at which an interval trained an injection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectedSteps {
    pub name: String,
    pub first_step: u64,
    pub last_step: u64,
}
