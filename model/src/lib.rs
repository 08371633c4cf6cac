//! k2-model: one decoder model for every family k2 reads (LLaMA, GPT-NeoX, OLMo, OLMo-2) with its
//! inference forward ([`decoder`]) and, for LLaMA, the training forward ([`train_forward`]) and
//! k2's CPU training step ([`train_step`]) over the same weights; one loader, one name table, one
//! backend seam ([`backend`]), one definition of log-probability ([`logprob`]); HF configs,
//! presets, safetensors I/O and tokenizers.

pub mod backend;
pub mod config;
pub mod decoder;
pub mod decoder_weights;
pub mod device;
pub mod error;
pub mod family;
pub mod fma_peak;
pub mod fused;
pub mod gemm;
pub mod hf_keys;
pub mod kv_cache;
pub mod logprob;
pub mod names;
pub mod parallel;
pub mod presets;
pub mod score;
pub mod span;
pub mod streaming_writer;
pub mod switches;
pub mod tensor_ops;
pub mod tokenizer;
pub mod train_forward;
pub mod train_step;
pub mod weights;

pub use candle_core::{DType, Device};
pub use config::LlamaConfig;
pub use decoder::Decoder;
pub use decoder_weights::{load_decoder, load_decoder_on};
pub use device::{
    config_torch_dtype, device_kind, dtype_name, torch_dtype_name, DTypeSpec, DeviceSpec, Placement,
};
pub use error::{ModelError, Result};
pub use family::{Arch, Family, SUPPORTED_MODEL_TYPES};
pub use kv_cache::KvCache;
pub use logprob::{next_token_logprobs, TokenScore};
pub use presets::{preset, PRESETS};
pub use tensor_ops::{host_f32, is_half, rope_tables, upcast};
pub use tokenizer::{load_tokenizer, CheckpointTokenizer, Tokenizer};
pub use train_step::TrainStep;
pub use weights::{check_complete, load_tensors, safetensors_bytes, weight_files};
