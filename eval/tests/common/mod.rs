//! Helpers shared by the eval crate's tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository's `fixtures/`: the real tiny checkpoints live under `models/`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The real stories260K checkpoint as a Hugging Face LLaMA directory.
pub fn stories260k_hf() -> PathBuf {
    fixtures().join("models/stories260K-hf")
}
