//! The order in which data chunks are trained on, and the chunks moved to the end after
//! a loss spike (`chunk_order.toml`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;
use crate::injection_record::InjectionRecord;
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
    /// Knowledge injections and the chunks that carry them (absent when there are none).
    #[serde(default, rename = "injection", skip_serializing_if = "Vec::is_empty")]
    pub injections: Vec<InjectionRecord>,
}

/// A chunk moved from `from_position` to `to_position` (the end of the order, or of its stage)
/// at training step `at_step`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deferral {
    pub chunk: u32,
    pub from_position: u32,
    /// Absent in files written before in-stage deferral existed: the end of the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_position: Option<u32>,
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
            injections: Vec::new(),
        }
    }

    /// An order from an explicit list; errors if it is not a permutation of `0..n`.
    pub fn from_order(order: Vec<u32>) -> Result<Self, ArchiveError> {
        let c = ChunkOrder {
            format: CHUNK_ORDER_FORMAT,
            order,
            deferrals: Vec::new(),
            injections: Vec::new(),
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
        check_permutation(&self.order).map_err(|message| ArchiveError::ChunkOrder { message })?;
        self.check_injections()
            .map_err(|message| ArchiveError::ChunkOrder { message })
    }

    fn check_injections(&self) -> Result<(), String> {
        for (i, inj) in self.injections.iter().enumerate() {
            if inj.chunk as usize >= self.order.len() {
                return Err(format!(
                    "injection[{i}] `{}`: chunk {} is not a chunk id (the order has {})",
                    inj.name,
                    inj.chunk,
                    self.order.len()
                ));
            }
        }
        Ok(())
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
        c.check_injections()
            .map_err(|m| semantic_error(path, &text, None, "injection", m))?;
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
        let last = self.order.len().saturating_sub(1) as u32;
        self.defer_to(position, last, at_step, reason)
    }

    /// Moves the chunk at `position` to `to_position` (>= `position`; the chunks in between move
    /// up by one) and records the deferral. K2 moved a spike's chunk to the end of stage 1's
    /// order; with several stages in one order that is the stage's last position.
    pub fn defer_to(
        &mut self,
        position: u32,
        to_position: u32,
        at_step: u64,
        reason: impl Into<String>,
    ) -> Result<u32, ArchiveError> {
        let (pos, to) = (position as usize, to_position as usize);
        if pos >= self.order.len() || to >= self.order.len() || to < pos {
            return Err(ArchiveError::ChunkOrder {
                message: format!(
                    "cannot defer position {position} to {to_position}: the order has {} chunks",
                    self.order.len()
                ),
            });
        }
        let chunk = self.order.remove(pos);
        self.order.insert(to, chunk);
        self.deferrals.push(Deferral {
            chunk,
            from_position: position,
            to_position: Some(to_position),
            at_step,
            reason: reason.into(),
        });
        Ok(chunk)
    }

    /// The order as it stood while training position `position`: deferrals made when training
    /// restarted at a later position are undone (a deferral from position q took effect when
    /// training restarted at q, so positions before q were trained with the order before it).
    pub fn as_of_position(&self, position: u32) -> ChunkOrder {
        let mut c = self.clone();
        while let Some(d) = c.deferrals.last() {
            if d.from_position <= position {
                break;
            }
            let to = d.to_position.map_or(c.order.len() - 1, |t| t as usize);
            let from = d.from_position as usize;
            if to < c.order.len() && from <= to && c.order[to] == d.chunk {
                let chunk = c.order.remove(to);
                c.order.insert(from, chunk);
            }
            c.deferrals.pop();
        }
        c
    }

    /// Whether `chunk` has been deferred.
    pub fn is_deferred(&self, chunk: u32) -> bool {
        self.deferrals.iter().any(|d| d.chunk == chunk)
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

    #[test]
    fn defer_within_a_stage() {
        let mut c = ChunkOrder::identity(6);
        assert_eq!(c.defer_to(1, 3, 50, "spike").unwrap(), 1);
        assert_eq!(c.order, vec![0, 2, 3, 1, 4, 5]);
        assert!(c.is_deferred(1) && !c.is_deferred(2));
        assert_eq!(c.deferrals[0].to_position, Some(3));
        assert!(c.defer_to(3, 2, 60, "x").is_err());
        assert!(c.defer_to(3, 6, 60, "x").is_err());
        assert_eq!(c.defer(2, 70, "spike").unwrap(), 3);
        assert_eq!(c.order, vec![0, 2, 1, 4, 5, 3]);
        c.validate().unwrap();
        assert_eq!(c.as_of_position(2), c);
        let before_second = c.as_of_position(1);
        assert_eq!(before_second.order, vec![0, 2, 3, 1, 4, 5]);
        assert_eq!(before_second.deferrals.len(), 1);
        assert_eq!(c.as_of_position(0).order, (0..6).collect::<Vec<_>>());
    }
}
