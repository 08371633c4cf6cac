//! Named model shapes: the built-in default run, the 17M benchmark shape and K2 DIAMOND (65B).

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};

pub const PRESETS: &[&str] = &["default", "bench-17m", "k2-65b", "tiny-test"];

/// A preset by name.
pub fn preset(name: &str) -> Result<LlamaConfig> {
    let base = |vocab, d, layers, heads, ffn, ctx| LlamaConfig {
        vocab_size: vocab,
        hidden_size: d,
        intermediate_size: ffn,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: None,
        head_dim: None,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: ctx,
        tie_word_embeddings: false,
        initializer_range: 0.02,
        bos_token_id: None,
        eos_token_id: None,
    };
    match name {
        // Small enough to train for a few minutes on 2 CPU cores and still learn the default corpus.
        "default" => Ok(base(1024, 128, 4, 4, 352, 256)),
        // The shape the training benchmark compares against PyTorch.
        "bench-17m" => Ok(base(8192, 384, 6, 6, 1024, 256)),
        // K2 DIAMOND as released: LLaMA-1 65B shape, MHA, vocab 32032, stage-1 RoPE theta 1e4.
        "k2-65b" => Ok(LlamaConfig {
            bos_token_id: Some(1),
            eos_token_id: Some(2),
            ..base(32032, 8192, 80, 64, 22016, 2048)
        }),
        // For tests: a few thousand parameters.
        "tiny-test" => Ok(base(64, 16, 2, 2, 32, 64)),
        other => Err(ModelError::UnknownPreset(
            other.to_string(),
            PRESETS.join(", "),
        )),
    }
}
