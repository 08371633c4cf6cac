//! The Hugging Face tensor names of every family k2 reads, with their shapes for an [`Arch`]:
//! the one name table for loading, training, initialisation and checkpoints.
//!
//! Only the tensors the architecture uses are read from the safetensors files. Buffers older
//! transformers saved beside the weights (GPT-NeoX's causal-mask `attention.bias` and
//! `attention.masked_bias`, `rotary_emb.inv_freq`) are skipped; any other tensor the config does
//! not account for is an error, since it means the config and the weights disagree (a tied config
//! may still carry a copy of the head, which transformers ignores too).

use crate::family::{Arch, Family};

pub const EMBED: &str = "model.embed_tokens.weight";
pub const FINAL_NORM: &str = "model.norm.weight";
pub const LM_HEAD: &str = "lm_head.weight";

pub fn layer(i: usize, suffix: &str) -> String {
    format!("model.layers.{i}.{suffix}")
}

/// Whether `name` is a non-parameter buffer some transformers versions saved with the weights.
pub fn is_saved_buffer(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
        || name.ends_with(".attention.bias")
        || name.ends_with(".attention.masked_bias")
}

/// Every tensor `arch` reads, with its shape, in a fixed order.
pub fn tensor_shapes(arch: &Arch) -> Vec<(String, Vec<usize>)> {
    let d = arch.hidden_size;
    let f = arch.intermediate_size;
    let q = arch.num_attention_heads * arch.head_dim;
    let kv = arch.num_key_value_heads * arch.head_dim;
    let v = arch.vocab_size;
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut push = |name: String, shape: Vec<usize>| out.push((name, shape));
    match arch.family {
        Family::GptNeox => {
            push("gpt_neox.embed_in.weight".into(), vec![v, d]);
            for i in 0..arch.num_hidden_layers {
                let n = |s: &str| format!("gpt_neox.layers.{i}.{s}");
                for norm in ["input_layernorm", "post_attention_layernorm"] {
                    push(n(&format!("{norm}.weight")), vec![d]);
                    push(n(&format!("{norm}.bias")), vec![d]);
                }
                push(n("attention.query_key_value.weight"), vec![3 * d, d]);
                if arch.biases {
                    push(n("attention.query_key_value.bias"), vec![3 * d]);
                }
                push(n("attention.dense.weight"), vec![d, d]);
                if arch.biases {
                    push(n("attention.dense.bias"), vec![d]);
                }
                push(n("mlp.dense_h_to_4h.weight"), vec![f, d]);
                push(n("mlp.dense_h_to_4h.bias"), vec![f]);
                push(n("mlp.dense_4h_to_h.weight"), vec![d, f]);
                push(n("mlp.dense_4h_to_h.bias"), vec![d]);
            }
            push("gpt_neox.final_layer_norm.weight".into(), vec![d]);
            push("gpt_neox.final_layer_norm.bias".into(), vec![d]);
            if !arch.tie_word_embeddings {
                push("embed_out.weight".into(), vec![v, d]);
            }
        }
        Family::Llama | Family::Olmo | Family::Olmo2 => {
            push(EMBED.into(), vec![v, d]);
            for i in 0..arch.num_hidden_layers {
                let n = |s: &str| layer(i, s);
                if arch.family == Family::Llama {
                    push(n("input_layernorm.weight"), vec![d]);
                }
                push(n("self_attn.q_proj.weight"), vec![q, d]);
                push(n("self_attn.k_proj.weight"), vec![kv, d]);
                push(n("self_attn.v_proj.weight"), vec![kv, d]);
                push(n("self_attn.o_proj.weight"), vec![d, q]);
                if arch.family == Family::Olmo2 {
                    push(n("self_attn.q_norm.weight"), vec![q]);
                    push(n("self_attn.k_norm.weight"), vec![kv]);
                    push(n("post_feedforward_layernorm.weight"), vec![d]);
                }
                if arch.family != Family::Olmo {
                    push(n("post_attention_layernorm.weight"), vec![d]);
                }
                push(n("mlp.gate_proj.weight"), vec![f, d]);
                push(n("mlp.up_proj.weight"), vec![f, d]);
                push(n("mlp.down_proj.weight"), vec![d, f]);
            }
            if arch.family != Family::Olmo {
                push(FINAL_NORM.into(), vec![d]);
            }
            if !arch.tie_word_embeddings {
                push(LM_HEAD.into(), vec![v, d]);
            }
        }
    }
    out
}

/// The head a tied checkpoint may still store (ignored, as transformers does).
pub(crate) fn tied_head_name(family: Family) -> &'static str {
    match family {
        Family::GptNeox => "embed_out.weight",
        _ => LM_HEAD,
    }
}
