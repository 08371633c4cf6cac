//! The eval crate's error type; data errors name the file and line. A message quotes its cause
//! and never also returns it as a `source`, so printing the chain repeats nothing.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// Malformed task data: the file and the 1-based line (or record) number.
    #[error("{path}:{line}: {message}")]
    Data {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// A file or directory that is not what k2 needs (a model without a tokenizer, a chunk too
    /// short for the memorization window, a SentencePiece file that does not parse).
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },

    /// Settings that cannot work (a zero memorization length).
    #[error("{0}")]
    Settings(String),

    /// A suite of `checkpoints.toml` that is missing or of the wrong kind.
    #[error("{}: {message}", file.display())]
    Suite { file: PathBuf, message: String },

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

    /// A task YAML that does not parse or holds a field k2 cannot use: the file and the field.
    #[error("{}: {}{message}", path.display(), field.as_ref().map_or(String::new(), |f| format!("field `{f}`: ")))]
    TaskYaml {
        path: PathBuf,
        field: Option<String>,
        message: String,
    },

    /// A YAML task k2 does not run, and why (a Python hook, a template construct, a metric).
    #[error("task `{task}` ({}): k2 cannot run it: {reason}", path.display())]
    Refused {
        task: String,
        path: PathBuf,
        reason: String,
    },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// More few-shot examples than the task's pool holds (lm-eval's samplers raise too).
    #[error("{task}: {shots} shots asked, but its few-shot pool holds {max}")]
    TooManyShots {
        task: String,
        shots: usize,
        max: usize,
    },

    /// A loglikelihood request whose continuation has no tokens (lm-eval refuses it too).
    #[error("a loglikelihood request has an empty continuation (context `{context}`…)")]
    EmptyContinuation { context: String },

    /// A tokenizer whose ids do not fit the model's embedding.
    #[error(
        "{}: token ids go up to {max_id}, but the model's vocab_size is {vocab_size}",
        tokenizer.display()
    )]
    VocabMismatch {
        tokenizer: PathBuf,
        max_id: u32,
        vocab_size: usize,
    },

    #[error(transparent)]
    Archive(Box<k2_archive::ArchiveError>),

    #[error(transparent)]
    Hub(Box<k2_archive::hub::HubError>),

    #[error(transparent)]
    Source(#[from] k2_archive::SourceError),

    #[error(transparent)]
    Model(Box<k2_model::ModelError>),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The other crates' errors are boxed: they are large, and an `EvalError` travels in every
/// `Result` of the crate.
macro_rules! boxed_from {
    ($($variant:ident: $ty:ty),*) => {
        $(impl From<$ty> for EvalError {
            fn from(e: $ty) -> Self {
                EvalError::$variant(Box::new(e))
            }
        })*
    };
}

boxed_from!(
    Archive: k2_archive::ArchiveError,
    Hub: k2_archive::hub::HubError,
    Model: k2_model::ModelError
);

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"))
}

pub type Result<T> = std::result::Result<T, EvalError>;

pub fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EvalError {
    let path = path.into();
    move |error| EvalError::Io { path, error }
}
