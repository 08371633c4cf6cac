//! k2-model: the LLaMA architecture for k2 — HF config, presets, a candle model with a
//! differentiable training path and a fused inference path, HF safetensors I/O and tokenizers.

pub mod config;
pub mod error;
pub mod fused;
pub mod kv_cache;
pub mod llama;
pub mod names;
pub mod presets;
pub mod tokenizer;
pub mod weights;

pub use config::LlamaConfig;
pub use error::{ModelError, Result};
pub use kv_cache::KvCache;
pub use llama::{next_token_logprobs, rope_tables, Llama, Mode};
pub use presets::{preset, PRESETS};
pub use tokenizer::{load_tokenizer, Tokenizer};
pub use weights::{check_complete, load_model, load_tensors, safetensors_bytes, weight_files};
