//! Named model shapes: the built-in default run, the CPU and GPU benchmark shapes, Amber (7B) and
//! K2 DIAMOND (65B).

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};

pub const PRESETS: &[&str] = &[
    "default",
    "bench-17m",
    "bench-134m",
    "tinyllama-1.1b",
    "amber-7b",
    "k2-65b",
    "tiny-test",
];

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
        // The GPU benchmark's small shape (134M with untied embeddings).
        "bench-134m" => Ok(base(32000, 768, 12, 12, 2048, 2048)),
        // TinyLlama-1.1B: 22 layers, d 2048, 32 heads with 4 KV heads (GQA), SwiGLU 5632.
        "tinyllama-1.1b" => Ok(LlamaConfig {
            num_key_value_heads: Some(4),
            bos_token_id: Some(1),
            eos_token_id: Some(2),
            ..base(32000, 2048, 22, 32, 5632, 2048)
        }),
        // LLM360 Amber: the LLaMA-7B shape.
        "amber-7b" => Ok(LlamaConfig {
            bos_token_id: Some(1),
            eos_token_id: Some(2),
            ..base(32000, 4096, 32, 32, 11008, 2048)
        }),
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
