//! Reading and writing TOML files with errors that name the file, line, column and field.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::atomic::write_file_atomic;
use crate::error::{ArchiveError, IoContext, Location};

/// Reads `path` and deserializes it, mapping parse errors to [`ArchiveError::Toml`].
/// Returns the parsed value together with the source text (for later span lookups).
pub(crate) fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, String), ArchiveError> {
    let text = std::fs::read_to_string(path).at(path, "read")?;
    let value = parse_toml(path, &text)?;
    Ok((value, text))
}

/// Deserializes `text` (the contents of `path`).
pub(crate) fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ArchiveError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span();
        let message = e.message().trim().to_string();
        let field = match (field_from_message(&message), span.as_ref()) {
            (Some(f), Some(s)) => Some(match table_at(text, s.start) {
                Some(t) => format!("{t}.{f}"),
                None => f,
            }),
            (Some(f), None) => Some(f),
            (None, Some(s)) => field_at(text, s.start),
            (None, None) => None,
        };
        ArchiveError::Toml {
            path: path.to_path_buf(),
            location: span.map(|s| location_of(text, s.start)),
            field,
            message,
        }
    })
}

/// Serializes `value` and writes it atomically to `path`.
pub(crate) fn save_toml_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), ArchiveError> {
    let text = toml::to_string(value).map_err(|e| ArchiveError::TomlSerialize {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_file_atomic(path, text.as_bytes())
}

/// A validation error at `span` of `text` (the contents of `path`).
pub(crate) fn semantic_error(
    path: &Path,
    text: &str,
    span: Option<Range<usize>>,
    field: &str,
    message: impl Into<String>,
) -> ArchiveError {
    ArchiveError::Toml {
        path: path.to_path_buf(),
        location: span.map(|s| location_of(text, s.start)),
        field: Some(field.to_string()),
        message: message.into(),
    }
}

/// 1-based line and column (in characters) of byte offset `offset` in `text`.
pub(crate) fn location_of(text: &str, offset: usize) -> Location {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Location { line, column }
}

/// serde names the field in "unknown field `x`" / "missing field `x`" / "duplicate field `x`".
fn field_from_message(message: &str) -> Option<String> {
    for prefix in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = message.find(prefix).map(|i| &message[i + prefix.len()..]) {
            if let Some(end) = rest.find('`') {
                return Some(rest[..end].to_string());
            }
        }
    }
    None
}

/// Byte range of the line containing `offset`.
fn line_around(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    (start, end)
}

/// The name in a `[table]` / `[[array]]` header line, if `line` is one.
fn header_name(line: &str) -> Option<String> {
    let l = line.trim();
    l.starts_with('[')
        .then(|| clean_key(l.trim_start_matches('[').split(']').next().unwrap_or("")))
        .filter(|h| !h.is_empty())
}

/// The table enclosing byte `offset`: the header on that line or the nearest one above.
fn table_at(text: &str, offset: usize) -> Option<String> {
    let (start, end) = line_around(text, offset);
    header_name(&text[start..end]).or_else(|| text[..start].lines().rev().find_map(header_name))
}

/// The dotted key path of the `key = value` line containing byte `offset`, prefixed by
/// the enclosing `[table]` / `[[array]]` header if any (e.g. `checkpoint.step`).
fn field_at(text: &str, offset: usize) -> Option<String> {
    let (start, end) = line_around(text, offset);
    let line = &text[start..end];
    if header_name(line).is_some() {
        return None;
    }
    let key = line.split_once('=').map(|(k, _)| clean_key(k))?;
    if key.is_empty() {
        return None;
    }
    Some(match text[..start].lines().rev().find_map(header_name) {
        Some(h) => format!("{h}.{key}"),
        None => key,
    })
}

fn clean_key(k: &str) -> String {
    k.trim()
        .split('.')
        .map(|part| part.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_is_one_based() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(location_of(text, 0), Location { line: 1, column: 1 });
        assert_eq!(location_of(text, 11), Location { line: 2, column: 6 });
        assert_eq!(location_of(text, 999).line, 3);
    }

    #[test]
    fn field_lookup_uses_table_header() {
        let text = "format = 1\n[[checkpoint]]\nstep = \"x\"\n";
        let off = text.find("\"x\"").unwrap_or(0);
        assert_eq!(field_at(text, off).as_deref(), Some("checkpoint.step"));
        assert_eq!(field_at(text, 3).as_deref(), Some("format"));
    }

    #[test]
    fn field_from_serde_message() {
        assert_eq!(
            field_from_message("unknown field `foo`, expected one of `a`").as_deref(),
            Some("foo")
        );
        assert_eq!(field_from_message("invalid type"), None);
    }
}
