//! The trainer's error type: every failure names the file, field or step that caused it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("config field `{field}`: {reason}")]
    Field { field: String, reason: String },

    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },

    #[error(
        "run directory {0} already exists; pass --resume to continue it or --force to replace it"
    )]
    RunExists(PathBuf),

    #[error("{0}")]
    Resume(String),

    #[error("{0}")]
    Spike(String),

    /// Another trainer holds the run's lock.
    #[error("{0}")]
    Busy(String),

    /// A bad `k2 verify` request (unknown checkpoint, wrong order, another dtype).
    #[error("{0}")]
    Verify(String),

    /// The archive does not match its manifest: a check that ran and failed.
    #[error("{0}")]
    Mismatch(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("training diverged at step {step}: loss {loss}")]
    NonFinite { step: u64, loss: f32 },

    #[error(transparent)]
    Model(#[from] k2_model::ModelError),

    #[error(transparent)]
    Archive(#[from] k2_archive::ArchiveError),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, TrainError>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |error| TrainError::Io { path, error }
}
