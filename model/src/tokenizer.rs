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

/// A checkpoint's tokenizer as transformers 5 loads it for lm-evaluation-harness:
/// `tokenizer.json`, adjusted the way the class `tokenizer_config.json` names adjusts it, and the
/// BOS and EOS tokens that config names (lm-eval's prefix token is BOS, else EOS).
///
/// transformers ignores `add_bos_token`/`add_eos_token` in `tokenizer_config.json` whenever a
/// `tokenizer.json` exists, keeping that file's post-processor, except that `GPTNeoXTokenizer`
/// (Pythia, OLMo-1) rebuilds its pipeline: NFC, byte-level BPE (`add_prefix_space` from the
/// config) and a template that adds no special tokens, whatever `tokenizer.json` said.
pub struct CheckpointTokenizer {
    pub tokenizer: Tokenizer,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    /// `tokenizer_config.json`'s `tokenizer_class`, if it names one.
    pub class: Option<String>,
}

impl std::ops::Deref for CheckpointTokenizer {
    type Target = Tokenizer;
    fn deref(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

/// A special token in `tokenizer_config.json`/`special_tokens_map.json`: a string, or an
/// `AddedToken` object with `content`.
fn token_text(v: Option<&serde_json::Value>) -> Option<Option<String>> {
    match v? {
        serde_json::Value::Null => Some(None),
        serde_json::Value::String(s) => Some(Some(s.clone())),
        serde_json::Value::Object(o) => Some(
            o.get("content")
                .and_then(|c| c.as_str())
                .map(str::to_string),
        ),
        _ => None,
    }
}

fn read_json_object(path: &Path) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    if !path.exists() {
        return Ok(None);
    }
    let bad = |message: String| ModelError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(crate::weights::io(path))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not JSON: line {}: {e}", e.line())))?;
    match v {
        serde_json::Value::Object(m) => Ok(Some(m)),
        _ => Err(bad("not a JSON object".into())),
    }
}

impl CheckpointTokenizer {
    /// A tokenizer without a `tokenizer_config.json`: BOS and EOS are the conventional tokens its
    /// vocabulary has (`<s>`, `<|begin_of_text|>`, `<bos>`; `</s>`, `<|endoftext|>`, `<eos>`).
    pub fn from_tokenizer(tokenizer: Tokenizer) -> Self {
        let find = |names: &[&str]| names.iter().find_map(|t| tokenizer.token_to_id(t));
        let bos_token_id = find(&["<s>", "<|begin_of_text|>", "<bos>"]);
        let eos_token_id = find(&["</s>", "<|endoftext|>", "<eos>"]);
        CheckpointTokenizer {
            tokenizer,
            bos_token_id,
            eos_token_id,
            class: None,
        }
    }

    /// `dir`'s `tokenizer.json` with its `tokenizer_config.json` and `special_tokens_map.json`
    /// (either may be absent).
    pub fn load(dir: &Path) -> Result<Self> {
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = load_tokenizer(&tok_path)?;
        let cfg_path = dir.join("tokenizer_config.json");
        let config = read_json_object(&cfg_path)?;
        let map = read_json_object(&dir.join("special_tokens_map.json"))?;
        if config.is_none() && map.is_none() {
            return Ok(Self::from_tokenizer(tokenizer));
        }
        let lookup = |key: &str| -> Option<Option<String>> {
            token_text(config.as_ref().and_then(|c| c.get(key)))
                .or_else(|| token_text(map.as_ref().and_then(|m| m.get(key))))
        };
        let class = config
            .as_ref()
            .and_then(|c| c.get("tokenizer_class"))
            .and_then(|c| c.as_str())
            .map(str::to_string);
        let id_of = |key: &str, default: Option<&str>| -> Result<Option<u32>> {
            let text = match lookup(key) {
                Some(t) => t,
                None => default.map(str::to_string),
            };
            match text {
                None => Ok(None),
                Some(t) => {
                    tokenizer
                        .token_to_id(&t)
                        .map(Some)
                        .ok_or_else(|| ModelError::Tokenizer {
                            path: cfg_path.clone(),
                            message: format!(
                                "field `{key}`: `{t}` is not in {}",
                                tok_path.display()
                            ),
                        })
                }
            }
        };
        let neox = class
            .as_deref()
            .is_some_and(|c| c.trim_end_matches("Fast") == "GPTNeoXTokenizer");
        // GPTNeoXTokenizer's own defaults for the tokens the config leaves out.
        let default = neox.then_some("<|endoftext|>");
        let bos_token_id = id_of("bos_token", default)?;
        let eos_token_id = id_of("eos_token", default)?;
        if neox {
            let prefix_space = config
                .as_ref()
                .and_then(|c| c.get("add_prefix_space"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            tokenizer
                .with_normalizer(Some(tokenizers::normalizers::unicode::NFC))
                .map_err(|e| ModelError::Tokenizer {
                    path: tok_path.clone(),
                    message: e.to_string(),
                })?;
            tokenizer.with_pre_tokenizer(Some(
                tokenizers::pre_tokenizers::byte_level::ByteLevel::new(prefix_space, true, true),
            ));
            tokenizer.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
        }
        Ok(CheckpointTokenizer {
            tokenizer,
            bos_token_id,
            eos_token_id,
            class,
        })
    }

    /// The token lm-eval scores an empty context after: BOS if the tokenizer has one, else EOS.
    pub fn prefix_token(&self) -> Option<u32> {
        self.bos_token_id.or(self.eos_token_id)
    }
}
