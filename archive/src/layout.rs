//! Where things live inside a run directory.

use std::path::{Path, PathBuf};

/// Paths inside one run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    pub root: PathBuf,
}

impl RunLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunLayout { root: root.into() }
    }

    /// `root/config.toml`: the resolved training config.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `root/checkpoints.toml`: the run manifest.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join("checkpoints.toml")
    }

    /// `root/metrics.jsonl`: one JSON record per logged step.
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `root/chunk_order.toml`: the data chunk order and its deferrals.
    pub fn chunk_order_path(&self) -> PathBuf {
        self.root.join("chunk_order.toml")
    }

    /// `root/data`: the tokenized, chunked training data.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `root/.trainer.lock`: held (a claim file, refreshed by a heartbeat) while a trainer writes
    /// the run, so a second trainer is refused and `k2 eval --watch` knows training is alive.
    pub fn trainer_lock_path(&self) -> PathBuf {
        self.root.join(".trainer.lock")
    }

    /// `root/eval`: lm-eval results per checkpoint and task.
    pub fn eval_dir(&self) -> PathBuf {
        self.root.join("eval")
    }

    /// `root/memorization`: one memorization result file per checkpoint.
    pub fn memorization_dir(&self) -> PathBuf {
        self.root.join("memorization")
    }

    /// `root/acquisition`: knowledge-injection probe scores per checkpoint and dense steps.
    pub fn acquisition_dir(&self) -> PathBuf {
        self.root.join("acquisition")
    }

    /// `root/acquisition/dense.jsonl`: probe scores after single training steps.
    pub fn dense_probes_path(&self) -> PathBuf {
        self.acquisition_dir().join("dense.jsonl")
    }

    /// `root/token_curves`: held-out token surprisals per checkpoint.
    pub fn token_curves_dir(&self) -> PathBuf {
        self.root.join("token_curves")
    }

    /// `root/tokenizer.json`.
    pub fn tokenizer_path(&self) -> PathBuf {
        self.root.join("tokenizer.json")
    }

    /// `root/<name>`: a checkpoint directory.
    pub fn ckpt_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The staging directory a checkpoint is written to before [`crate::commit_dir_atomic`].
    pub fn ckpt_tmp_dir(&self, name: &str) -> PathBuf {
        crate::atomic::tmp_dir_for(&self.ckpt_dir(name))
    }
}

impl AsRef<Path> for RunLayout {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}

/// `ckpt_0001` for index 1 (4-digit zero pad; wider indices are not truncated).
/// A trainer lock not refreshed for this long belongs to a trainer that is gone.
pub const TRAINER_LOCK_TTL_S: u64 = 60;

pub fn ckpt_name(index: u32) -> String {
    format!("ckpt_{index:04}")
}

/// `spike_ckpt_0001` for index 1: a diverged checkpoint kept after a rollback.
pub fn spike_ckpt_name(index: u32) -> String {
    format!("spike_ckpt_{index:04}")
}

/// Parses a name made by [`ckpt_name`] or [`spike_ckpt_name`] back into
/// `(index, is_spike)`.
pub fn parse_ckpt_name(name: &str) -> Option<(u32, bool)> {
    let (digits, spike) = match name.strip_prefix("spike_ckpt_") {
        Some(d) => (d, true),
        None => (name.strip_prefix("ckpt_")?, false),
    };
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(|i| (i, spike))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ckpt_name(1), "ckpt_0001");
        assert_eq!(ckpt_name(360), "ckpt_0360");
        assert_eq!(ckpt_name(12345), "ckpt_12345");
        assert_eq!(spike_ckpt_name(161), "spike_ckpt_0161");
        assert_eq!(parse_ckpt_name("ckpt_0160"), Some((160, false)));
        assert_eq!(parse_ckpt_name("spike_ckpt_0161"), Some((161, true)));
        assert_eq!(parse_ckpt_name("ckpt_1"), None);
        assert_eq!(parse_ckpt_name("ckpt_00x1"), None);
    }
}
