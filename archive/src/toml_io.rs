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

/// Deserializes `text` (the contents of `path`). A field's error names its exact path
/// (`stage[1].source[0].share`), as `serde_path_to_error` tracks it, with the line and column.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ArchiveError> {
    let located = |e: toml::de::Error, field: Option<String>| {
        let message = e.message().trim().to_string();
        ArchiveError::Toml {
            path: path.to_path_buf(),
            location: e.span().map(|s| location_of(text, s.start)),
            field,
            message,
        }
    };
    let de = toml::Deserializer::parse(text).map_err(|e| located(e, None))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        // "missing field `x`" is reported at the table that lacks it.
        let named = field_from_message(inner.message());
        let field = match (at.as_str(), named) {
            (".", named) => named,
            (at, Some(f)) if !at.ends_with(&f) => Some(format!("{at}.{f}")),
            (at, _) => Some(at.to_string()),
        };
        located(inner, field)
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

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        format: u32,
        checkpoint: Vec<Entry>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Entry {
        name: String,
        step: u64,
    }

    fn err(text: &str) -> String {
        parse_toml::<Doc>(Path::new("f.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_exact_field_path_and_line() {
        let e = err("format = 1\n[[checkpoint]]\nname = \"a\"\nstep = 1\n[[checkpoint]]\nname = \"b\"\nstep = \"x\"\n");
        assert!(e.starts_with("f.toml:7:"), "{e}");
        assert!(e.contains("field `checkpoint[1].step`"), "{e}");
        let e = err("format = 1\n[[checkpoint]]\nname = \"a\"\n");
        assert!(
            e.contains("field `checkpoint[0].step`") && e.contains("missing field"),
            "{e}"
        );
        let e = err("format = 1\ncheckpoint = []\nextra = 2\n");
        assert!(e.contains("extra") && e.contains("unknown field"), "{e}");
        let e = err("format = = 1\n");
        assert!(e.starts_with("f.toml:1:"), "{e}");
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
