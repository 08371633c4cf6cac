//! The eval crate's error type; data errors name the file and line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Malformed task data: the file and the 1-based line (or record) number.
    #[error("{path}:{line}: {message}")]
    Data {
        path: PathBuf,
        line: usize,
        message: String,
    },

    #[error("unknown task `{0}` (known: {1})")]
    UnknownTask(String, String),

    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, EvalError>;

pub fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EvalError {
    let path = path.into();
    move |source| EvalError::Io { path, source }
}
