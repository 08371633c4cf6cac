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

    /// A task or suite name the registry does not know.
    #[error("unknown task `{name}`{}; `k2 eval --help` lists the tasks and suites", did_you_mean(.suggestion))]
    UnknownTask {
        name: String,
        suggestion: Option<String>,
    },

    /// A `--shots` name that matches none of the tasks evaluated.
    #[error(
        "--shots {task}={shots}: {}{}",
        if *.known { "not among the tasks evaluated (--tasks)" } else { "no such task" },
        did_you_mean(.suggestion)
    )]
    UnknownShots {
        task: String,
        shots: usize,
        known: bool,
        suggestion: Option<String>,
    },

    #[error("{0}")]
    Other(String),
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"))
}

pub type Result<T> = std::result::Result<T, EvalError>;

pub fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EvalError {
    let path = path.into();
    move |source| EvalError::Io { path, source }
}
