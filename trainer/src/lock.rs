//! The trainer's lock on its run: a claim file (`<run>/.trainer.lock`: host, pid, time) taken
//! before anything is written and refreshed by a heartbeat while training runs. A second trainer
//! on the same run is refused; `k2 eval --watch` reads it to tell a live run from a dead one. A
//! crashed trainer's lock goes stale (its pid is gone, or it stops being refreshed) and the next
//! trainer takes it over.

use std::path::PathBuf;
use std::time::Duration;

use k2_archive::claim::{heartbeat, read_claim, release_claim, try_claim, ClaimState, Heartbeat};
use k2_archive::layout::TRAINER_LOCK_TTL_S;
use k2_archive::RunLayout;

use crate::error::{Result, TrainError};

/// Held while a trainer writes a run; released when dropped.
pub struct TrainerLock {
    path: PathBuf,
    beat: Option<Heartbeat>,
}

impl TrainerLock {
    /// Takes the run's lock, or says which live trainer holds it.
    pub fn acquire(layout: &RunLayout) -> Result<Self> {
        let path = layout.trainer_lock_path();
        if !try_claim(&path, TRAINER_LOCK_TTL_S)? {
            let who = match read_claim(&path, TRAINER_LOCK_TTL_S) {
                ClaimState::Live(c) => format!("pid {} on {}", c.pid, c.host),
                _ => "another process".into(),
            };
            return Err(TrainError::Busy(format!(
                "{}: another trainer ({who}) is writing this run",
                layout.root.display()
            )));
        }
        let beat = heartbeat(
            vec![path.clone()],
            Duration::from_secs(TRAINER_LOCK_TTL_S / 4),
        );
        Ok(TrainerLock {
            path,
            beat: Some(beat),
        })
    }
}

impl Drop for TrainerLock {
    fn drop(&mut self) {
        drop(self.beat.take());
        let _ = release_claim(&self.path);
    }
}
