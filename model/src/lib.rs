//! k2-model: the LLaMA architecture k2 trains (HF config, presets, a candle model with a
//! differentiable training path), one inference decoder for every family k2 evaluates (LLaMA,
//! GPT-NeoX, OLMo, OLMo-2), HF safetensors I/O and tokenizers.

pub mod config;
pub mod decoder;
pub mod decoder_weights;
pub mod device;
pub mod error;
pub mod family;
pub mod fma_peak;
pub mod fused;
pub mod gemm;
pub mod kv_cache;
pub mod llama;
pub mod names;
pub mod parallel;
pub mod presets;
pub mod score;
pub mod span;
pub mod streaming_writer;
pub mod tokenizer;
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
pub use llama::{host_f32, is_half, next_token_logprobs, rope_tables, upcast, Llama, Mode};
pub use presets::{preset, PRESETS};
pub use tokenizer::{load_tokenizer, CheckpointTokenizer, Tokenizer};
pub use train_step::TrainStep;
pub use weights::{
    check_complete, load_model, load_model_on, load_tensors, safetensors_bytes, weight_files,
};
