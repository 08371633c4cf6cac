//! Hugging Face tensor names of `LlamaForCausalLM`, and their shapes for a config.

use crate::config::LlamaConfig;

pub const EMBED: &str = "model.embed_tokens.weight";
pub const FINAL_NORM: &str = "model.norm.weight";
pub const LM_HEAD: &str = "lm_head.weight";

pub fn layer(i: usize, suffix: &str) -> String {
    format!("model.layers.{i}.{suffix}")
}

/// Every trainable tensor with its shape, in a fixed order (embeddings, layers, norm, head).
pub fn tensor_shapes(cfg: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let d = cfg.hidden_size;
    let hd = cfg.head_dim();
    let q = cfg.num_attention_heads * hd;
    let kv = cfg.num_kv_heads() * hd;
    let f = cfg.intermediate_size;
    let mut out = vec![(EMBED.to_string(), vec![cfg.vocab_size, d])];
    for i in 0..cfg.num_hidden_layers {
        out.push((layer(i, "input_layernorm.weight"), vec![d]));
        out.push((layer(i, "self_attn.q_proj.weight"), vec![q, d]));
        out.push((layer(i, "self_attn.k_proj.weight"), vec![kv, d]));
        out.push((layer(i, "self_attn.v_proj.weight"), vec![kv, d]));
        out.push((layer(i, "self_attn.o_proj.weight"), vec![d, q]));
        out.push((layer(i, "post_attention_layernorm.weight"), vec![d]));
        out.push((layer(i, "mlp.gate_proj.weight"), vec![f, d]));
        out.push((layer(i, "mlp.up_proj.weight"), vec![f, d]));
        out.push((layer(i, "mlp.down_proj.weight"), vec![d, f]));
    }
    out.push((FINAL_NORM.to_string(), vec![d]));
    if !cfg.tie_word_embeddings {
        out.push((LM_HEAD.to_string(), vec![cfg.vocab_size, d]));
    }
    out
}
