//! One line of `metrics.jsonl` per optimizer step, and one per resolved loss spike
//! (`{"event": "spike", ...}`). After a rollback the file holds both the diverged attempt's steps
//! and the retrained ones; `attempt` tells them apart (the last line of a step is the one the
//! surviving checkpoints were trained with).

pub use k2_archive::metrics_log::{EventLine, StepMetrics};
use k2_archive::RunLayout;

use crate::error::Result;

/// Keeps the metrics lines of earlier attempts and those of the current attempt up to `step`.
pub(crate) fn truncate_metrics(layout: &RunLayout, step: u64, attempt: u32) -> Result<()> {
    k2_archive::truncate_jsonl_after(&layout.metrics_path(), |v| {
        let a = v.get("attempt").and_then(|a| a.as_u64()).unwrap_or(0);
        let s = v.get("step").and_then(|s| s.as_u64());
        a < attempt as u64 || s.is_some_and(|s| s <= step)
    })?;
    Ok(())
}
