//! K2's response to a malignant loss spike: keep the diverged checkpoints as `spike_ckpt_N`
//! (status `spike`) beside their normal twins, move the chunk that was being trained to the end
//! of its stage in the chunk order, and restart from the last good checkpoint before the spike.
//!
//! Crash safety: the diverged state is written as a checkpoint directory first; the manifest
//! (with the event, the renamed entries and the new spike entry) is the commit point; the chunk
//! order and the directory renames follow and are redone by [`repair`] if a crash interrupted
//! them. A crash before the manifest is written leaves the run as it was before the spike, and
//! the resumed run meets the same spike again.

use k2_archive::{CheckpointStatus, ChunkOrder, Manifest, RunLayout, SpikeEvent};

use crate::checkpoint::{read_state, write_checkpoint};
use crate::config::TrainConfig;
use crate::error::{io_err, Result, TrainError};
use crate::metrics::EventLine;
use crate::session::Session;

/// How events and `k2 verify` name the seeded initialisation.
pub const INIT: &str = "init";

/// What a rollback decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    /// The `ok` checkpoint training restarts from (`None`: the seeded initialisation).
    pub to: Option<String>,
    pub event: SpikeEvent,
}

/// Moves the chunk at `position` to the last position of its stage; returns the new order.
pub fn defer_spike_chunk(
    cfg: &TrainConfig,
    order: &ChunkOrder,
    position: u32,
    at_step: u64,
) -> Result<ChunkOrder> {
    let chunk = order
        .chunk_at(position)
        .ok_or_else(|| TrainError::Resume(format!("chunk order has no position {position}")))?;
    let stage = cfg.stage_of_chunk(chunk);
    let end = (0..order.len() as u32)
        .rev()
        .find(|&q| {
            order
                .chunk_at(q)
                .is_some_and(|c| cfg.stage_of_chunk(c) == stage)
        })
        .unwrap_or(position);
    let mut next = order.clone();
    next.defer_to(
        position,
        end,
        at_step,
        format!("malignant loss spike at step {at_step}"),
    )?;
    Ok(next)
}

/// A checkpoint name not yet in the manifest or on disk: `base`, else `base-r2`, `base-r3`, ...
fn unique_name(layout: &RunLayout, manifest: &Manifest, base: &str) -> String {
    let taken = |n: &str| manifest.get(n).is_some() || layout.ckpt_dir(n).exists();
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|k| format!("{base}-r{k}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

/// The normal name a spike checkpoint was renamed from (`spike_ckpt_0008-r2` -> `ckpt_0008`).
fn twin_of(spike_name: &str) -> Option<String> {
    let rest = spike_name.strip_prefix("spike_")?;
    let base = rest.split("-r").next()?;
    k2_archive::parse_ckpt_name(base).map(|_| base.to_string())
}

/// Performs the rollback for malignant spike `event` detected while training `position` of
/// `order` in attempt `manifest.rollbacks()`. Updates `manifest` and `order` in memory and on
/// disk; the caller reloads the session from the returned checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn roll_back(
    layout: &RunLayout,
    cfg: &TrainConfig,
    session: &Session,
    position: u32,
    manifest: &mut Manifest,
    order: &mut ChunkOrder,
    mut event: SpikeEvent,
    wall_time_s: f64,
) -> Result<Rollback> {
    let attempt = manifest.rollbacks();
    if attempt >= cfg.spike.max_rollbacks {
        return Err(TrainError::Spike(format!(
            "malignant loss spike at step {} (peak loss {:.3} vs baseline {:.3}) after {attempt} \
             rollbacks already (spike.max_rollbacks = {}); stopping",
            event.end_step, event.peak_loss, event.baseline_loss, cfg.spike.max_rollbacks
        )));
    }
    // The last good checkpoint before the spike; none: the seeded initialisation (`init`).
    let target = manifest
        .ok_checkpoints()
        .into_iter()
        .rfind(|c| c.step < event.start_step)
        .map(|c| c.name.clone());
    let restart = match &target {
        Some(name) => read_state(&layout.ckpt_dir(name))?.cursor.position,
        None => 0,
    };
    // Checkpoints written after the spike began are part of the diverged attempt.
    let renames: Vec<(String, String)> = manifest
        .ok_checkpoints()
        .into_iter()
        .filter(|c| c.step >= event.start_step)
        .map(|c| {
            let spike = unique_name(layout, manifest, &format!("spike_{}", c.name));
            (c.name.clone(), spike)
        })
        .collect();
    // The diverged state at the moment of classification, named for the interval in progress.
    let spike_name = unique_name(layout, manifest, &k2_archive::spike_ckpt_name(position + 1));
    // The interval in progress trains the chunk at `position` (the spike may have begun in an
    // earlier interval, on another chunk).
    let chunk_now = order.chunk_at(position).unwrap_or(event.chunk);
    let mut spike_entry = session.with_checkpoint_data(|data| {
        write_checkpoint(
            layout,
            &spike_name,
            data,
            vec![chunk_now],
            CheckpointStatus::Spike,
        )
    })?;
    crate::failpoint::hit("rollback-spike-ckpt-written");
    spike_entry.wall_time_s = wall_time_s;
    spike_entry.note = Some(format!(
        "diverged state at step {} (malignant spike from step {}, classified at step {})",
        session.state.step, event.start_step, event.end_step
    ));
    let next_order = defer_spike_chunk(cfg, order, restart, event.end_step)?;
    event.action = "rollback".into();
    event.rollback_to = Some(target.clone().unwrap_or_else(|| INIT.to_string()));
    event.deferred_chunk = order.chunk_at(restart);
    event.deferred_from_position = Some(restart);
    event.spike_checkpoints = renames
        .iter()
        .map(|(_, n)| n.clone())
        .chain(std::iter::once(spike_name.clone()))
        .collect();
    // What `peak_lr_at(restart)` returns once this event is in the manifest.
    let n = crate::session::attempt_at(manifest, restart) as i32 + 1;
    event.peak_lr_after = Some(cfg.optim.lr * cfg.spike.lr_factor.powi(n));
    // The metrics line goes first: a crash before the manifest commit drops it on resume.
    k2_archive::append_line_durable(
        &layout.metrics_path(),
        &serde_json::to_string(&EventLine::new(&event)).expect("event serialises"),
    )?;
    for (from, to) in &renames {
        manifest.rename(from, to)?;
        manifest.set_status(to, CheckpointStatus::Spike)?;
    }
    manifest.push(spike_entry)?;
    manifest.spikes.push(event.clone());
    manifest.save_atomic(&layout.manifest_path())?;
    crate::failpoint::hit("rollback-manifest-committed");
    // Committed. The rest is redone by `repair` after a crash.
    next_order.save_atomic(&layout.chunk_order_path())?;
    *order = next_order;
    crate::failpoint::hit("rollback-order-saved");
    for (from, to) in &renames {
        let (a, b) = (layout.ckpt_dir(from), layout.ckpt_dir(to));
        std::fs::rename(&a, &b).map_err(io_err(&a))?;
    }
    Ok(Rollback { to: target, event })
}

/// Finishes a rollback that a crash interrupted after its manifest commit: applies missing
/// chunk deferrals and renames diverged checkpoint directories to their `spike_` names.
pub fn repair(layout: &RunLayout, cfg: &TrainConfig, manifest: &Manifest) -> Result<()> {
    let mut order = ChunkOrder::load(&layout.chunk_order_path())?;
    let rollbacks: Vec<&SpikeEvent> = manifest.spikes.iter().filter(|e| e.is_rollback()).collect();
    let mut changed = false;
    for e in rollbacks.iter().skip(order.deferrals.len()) {
        let from = e.deferred_from_position.ok_or_else(|| {
            TrainError::Resume(format!(
                "{}: a rollback event at step {} has no deferred_from_position",
                layout.manifest_path().display(),
                e.end_step
            ))
        })?;
        order = defer_spike_chunk(cfg, &order, from, e.end_step)?;
        changed = true;
    }
    if changed {
        eprintln!("finishing an interrupted rollback: chunk order updated");
        order.save_atomic(&layout.chunk_order_path())?;
    }
    for e in &rollbacks {
        for name in &e.spike_checkpoints {
            let dir = layout.ckpt_dir(name);
            if dir.exists() {
                continue;
            }
            let Some(twin) = twin_of(name) else { continue };
            let twin_dir = layout.ckpt_dir(&twin);
            if twin_dir.is_dir() && manifest.get(&twin).is_none() {
                eprintln!("finishing an interrupted rollback: {twin} -> {name}");
                std::fs::rename(&twin_dir, &dir).map_err(io_err(&twin_dir))?;
            }
        }
    }
    Ok(())
}

/// Checkpoint directories that a crash left renamed but not yet listed are removed: they are
/// re-created identically when their interval is retrained.
pub(crate) fn remove_unlisted_checkpoints(layout: &RunLayout, manifest: &Manifest) -> Result<()> {
    let entries = std::fs::read_dir(&layout.root).map_err(io_err(&layout.root))?;
    for e in entries {
        let e = e.map_err(io_err(&layout.root))?;
        let name = e.file_name().to_string_lossy().to_string();
        let ckpt_like = name.starts_with("ckpt_") || name.starts_with("spike_ckpt_");
        if ckpt_like
            && !k2_archive::is_tmp_name(&name)
            && manifest.get(&name).is_none()
            && e.path().is_dir()
        {
            eprintln!(
                "removing {} (written but never listed in the manifest)",
                e.path().display()
            );
            std::fs::remove_dir_all(e.path()).map_err(io_err(e.path()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twin_names() {
        assert_eq!(twin_of("spike_ckpt_0008").as_deref(), Some("ckpt_0008"));
        assert_eq!(twin_of("spike_ckpt_0008-r2").as_deref(), Some("ckpt_0008"));
        assert_eq!(twin_of("ckpt_0008"), None);
    }
}
