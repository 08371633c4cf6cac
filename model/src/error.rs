//! The model crate's error type. Every variant that comes from a file names it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model config: field `{field}`: {reason}")]
    InvalidConfig { field: String, reason: String },

    #[error("{path}: {message}")]
    ConfigFile { path: PathBuf, message: String },

    #[error("{path}: missing tensor `{name}`")]
    MissingTensor { path: PathBuf, name: String },

    #[error("{path}: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },

    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },

    #[error("{path}: cannot load tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },

    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("{0}")]
    Device(String),

    #[error("unknown model preset `{0}` (known: {1})")]
    UnknownPreset(String, String),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, ModelError>;
