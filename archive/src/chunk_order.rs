//! The order in which data chunks are trained on, and the chunks moved to the end after
//! a loss spike (`chunk_order.toml`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;
use crate::toml_io::{load_toml, parse_toml, save_toml_atomic, semantic_error};

/// The only chunk-order format this crate reads and writes.
pub const CHUNK_ORDER_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkOrder {
    pub format: u32,
    /// A permutation of `0..order.len()`: `order[i]` is the chunk trained at position `i`.
    pub order: Vec<u32>,
    #[serde(default)]
    pub deferrals: Vec<Deferral>,
}

/// A chunk moved from `from_position` to the end of the order at training step `at_step`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deferral {
    pub chunk: u32,
    pub from_position: u32,
    pub at_step: u64,
    pub reason: String,
}

#[derive(Deserialize)]
struct SpannedOrder {
    format: toml::Spanned<u32>,
    order: toml::Spanned<Vec<u32>>,
}

/// Checks that `order` is a permutation of `0..order.len()`; the error names every
/// duplicate, out-of-range and missing id.
fn check_permutation(order: &[u32]) -> Result<(), String> {
    let n = order.len();
    let mut count = vec![0u32; n];
    let mut out_of_range = Vec::new();
    for &id in order {
        match count.get_mut(id as usize) {
            Some(c) => *c += 1,
            None => out_of_range.push(id),
        }
    }
    let duplicates: Vec<u32> = (0..n as u32).filter(|&i| count[i as usize] > 1).collect();
    let missing: Vec<u32> = (0..n as u32).filter(|&i| count[i as usize] == 0).collect();
    if duplicates.is_empty() && missing.is_empty() && out_of_range.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !duplicates.is_empty() {
        parts.push(format!("duplicate chunk id(s) {}", list(&duplicates)));
    }
    if !out_of_range.is_empty() {
        parts.push(format!("out-of-range chunk id(s) {}", list(&out_of_range)));
    }
    if !missing.is_empty() {
        parts.push(format!("missing chunk id(s) {}", list(&missing)));
    }
    Err(format!(
        "`order` must be a permutation of 0..{n}: {}",
        parts.join("; ")
    ))
}

/// At most 20 ids, comma separated.
fn list(ids: &[u32]) -> String {
    let mut s: Vec<String> = ids.iter().take(20).map(u32::to_string).collect();
    if ids.len() > 20 {
        s.push(format!("... ({} in all)", ids.len()));
    }
    s.join(", ")
}

impl ChunkOrder {
    /// The identity order `0..n` with no deferrals.
    pub fn identity(n: u32) -> Self {
        ChunkOrder {
            format: CHUNK_ORDER_FORMAT,
            order: (0..n).collect(),
            deferrals: Vec::new(),
        }
    }

    /// An order from an explicit list; errors if it is not a permutation of `0..n`.
    pub fn from_order(order: Vec<u32>) -> Result<Self, ArchiveError> {
        let c = ChunkOrder {
            format: CHUNK_ORDER_FORMAT,
            order,
            deferrals: Vec::new(),
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks the format version and that `order` is a permutation of `0..n`.
    pub fn validate(&self) -> Result<(), ArchiveError> {
        if self.format != CHUNK_ORDER_FORMAT {
            return Err(ArchiveError::ChunkOrder {
                message: format!("unsupported format {}", self.format),
            });
        }
        check_permutation(&self.order).map_err(|message| ArchiveError::ChunkOrder { message })
    }

    /// Reads and validates `path` (errors name the file, line, column and field).
    pub fn load(path: &Path) -> Result<Self, ArchiveError> {
        let (c, text): (ChunkOrder, String) = load_toml(path)?;
        let spans: SpannedOrder = parse_toml(path, &text)?;
        if c.format != CHUNK_ORDER_FORMAT {
            return Err(semantic_error(
                path,
                &text,
                Some(spans.format.span()),
                "format",
                format!(
                    "unsupported chunk order format {} (this build reads format {CHUNK_ORDER_FORMAT})",
                    c.format
                ),
            ));
        }
        check_permutation(&c.order)
            .map_err(|m| semantic_error(path, &text, Some(spans.order.span()), "order", m))?;
        Ok(c)
    }

    /// Validates and writes atomically.
    pub fn save_atomic(&self, path: &Path) -> Result<(), ArchiveError> {
        self.validate()
            .map_err(|e| ArchiveError::invalid(path, e.to_string()))?;
        save_toml_atomic(path, self)
    }

    /// Moves the chunk at `position` to the end of the order and records the deferral
    /// (at training step `at_step`, for `reason`). Returns the deferred chunk id.
    /// Errors if `position` is out of range.
    pub fn defer(
        &mut self,
        position: u32,
        at_step: u64,
        reason: impl Into<String>,
    ) -> Result<u32, ArchiveError> {
        let pos = position as usize;
        if pos >= self.order.len() {
            return Err(ArchiveError::ChunkOrder {
                message: format!(
                    "cannot defer position {position}: the order has {} chunks",
                    self.order.len()
                ),
            });
        }
        let chunk = self.order.remove(pos);
        self.order.push(chunk);
        self.deferrals.push(Deferral {
            chunk,
            from_position: position,
            at_step,
            reason: reason.into(),
        });
        Ok(chunk)
    }

    /// The chunk trained at `position`, if any.
    pub fn chunk_at(&self, position: u32) -> Option<u32> {
        self.order.get(position as usize).copied()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_messages() {
        assert!(check_permutation(&[2, 0, 1]).is_ok());
        assert!(check_permutation(&[]).is_ok());
        let e = check_permutation(&[0, 1, 1]).unwrap_err();
        assert!(
            e.contains("duplicate chunk id(s) 1") && e.contains("missing chunk id(s) 2"),
            "{e}"
        );
        let e = check_permutation(&[0, 3, 1]).unwrap_err();
        assert!(
            e.contains("out-of-range chunk id(s) 3") && e.contains("missing chunk id(s) 2"),
            "{e}"
        );
    }
}
