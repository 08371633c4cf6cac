//! The crate's error type. Every message names the file or directory involved.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Where in a text file something went wrong (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Formats an optional location as `:line:col` (or nothing).
pub(crate) struct OptLoc<'a>(pub &'a Option<Location>);

impl fmt::Display for OptLoc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(loc) => write!(f, ":{loc}"),
            None => Ok(()),
        }
    }
}

/// Formats an optional field name as `` field `x`: `` (or nothing).
pub(crate) struct OptField<'a>(pub &'a Option<String>);

impl fmt::Display for OptField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, " field `{field}`:"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An I/O operation (`op`, e.g. "open", "rename") failed on `path`.
    /// (The message quotes the I/O error; it is not also returned as a `source`, so printing
    /// the chain never repeats it.)
    #[error("{}: {op} failed: {error}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        error: io::Error,
    },

    /// A TOML file could not be parsed, has an unknown / mistyped / missing field, or
    /// holds a value that fails validation.
    #[error("{}{}:{} {message}", path.display(), OptLoc(location), OptField(field))]
    Toml {
        path: PathBuf,
        location: Option<Location>,
        field: Option<String>,
        message: String,
    },

    /// A value could not be written as TOML.
    #[error("{}: cannot serialize TOML: {message}", path.display())]
    TomlSerialize { path: PathBuf, message: String },

    /// A JSON-lines file has a malformed line.
    #[error("{}:{line}: malformed JSON line: {message}", path.display())]
    JsonLine {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// The destination of an atomic directory commit already exists.
    #[error("{}: already exists, refusing to replace it", path.display())]
    AlreadyExists { path: PathBuf },

    /// Some other invalid input concerning `path`.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },

    /// An in-memory run manifest operation was rejected (no file is involved yet).
    #[error("run manifest (checkpoints.toml): {message}")]
    Manifest { message: String },

    /// An in-memory chunk order operation was rejected (no file is involved yet).
    #[error("chunk order (chunk_order.toml): {message}")]
    ChunkOrder { message: String },
}

impl ArchiveError {
    pub(crate) fn io(path: &Path, op: &'static str, source: io::Error) -> Self {
        ArchiveError::Io {
            path: path.to_path_buf(),
            op,
            error: source,
        }
    }

    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ArchiveError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Shorthand used throughout the crate: attach a path and operation to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path, op: &'static str) -> Result<T, ArchiveError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path, op: &'static str) -> Result<T, ArchiveError> {
        self.map_err(|e| ArchiveError::io(path, op, e))
    }
}
