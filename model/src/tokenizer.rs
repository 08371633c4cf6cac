//! Loading a `tokenizer.json` (Hugging Face `tokenizers`), with errors that name the file.

use std::path::Path;

use crate::error::{ModelError, Result};

pub use tokenizers::Tokenizer;

pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
