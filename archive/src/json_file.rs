//! Reading and writing the one-JSON-document files of the per-checkpoint analyses
//! (`acquisition/<ckpt>.json`, `token_curves/<ckpt>.json`): parse errors name the file and line,
//! a file of another format version is refused, writes are atomic.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ArchiveError;

/// Reads `path` as a `T` whose `format` (given by `format_of`) must be `format`.
pub fn read_versioned_json<T: DeserializeOwned>(
    path: &Path,
    format: u32,
    format_of: impl Fn(&T) -> u32,
) -> Result<T, ArchiveError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ArchiveError::invalid(path, e.to_string()))?;
    let v: T = serde_json::from_str(&text)
        .map_err(|e| ArchiveError::invalid(path, format!("line {}: {e}", e.line())))?;
    let found = format_of(&v);
    if found != format {
        return Err(ArchiveError::invalid(
            path,
            format!("unsupported format {found} (this build reads {format})"),
        ));
    }
    Ok(v)
}

/// Writes `value` as pretty JSON and a newline, atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), ArchiveError> {
    let mut json = serde_json::to_string_pretty(value)
        .map_err(|e| ArchiveError::invalid(path, e.to_string()))?;
    json.push('\n');
    crate::write_file_atomic(path, json.as_bytes())
}
