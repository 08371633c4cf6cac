//! Loading a `tokenizer.json` (Hugging Face `tokenizers`), with errors that name the file.
//!
//! The file is checked to be JSON first (the error gives the line), and the `tokenizers` crate is
//! called under `catch_unwind`: some malformed files make it panic instead of returning an error
//! (found by `tests/fuzz_parsers.rs`, e.g. `decoders/mod.rs` unwrapping a bad decoder), and a
//! broken file from the Hub must be an error, not a crash.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::error::{ModelError, Result};

pub use tokenizers::Tokenizer;

pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let bad = |message: String| ModelError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(crate::weights::io(path))?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| bad(format!("not JSON: line {}: {e}", e.line())))?;
    match catch_unwind(AssertUnwindSafe(|| Tokenizer::from_bytes(&bytes))) {
        Ok(t) => t.map_err(|e| bad(e.to_string())),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unreadable".into());
            Err(bad(format!("the tokenizers library rejected it: {why}")))
        }
    }
}
