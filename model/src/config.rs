//! LLaMA configuration: the fields of Hugging Face's `config.json` for `LlamaForCausalLM`,
//! validation that names the offending field, parameter and FLOP counts.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The architecture of a LLaMA-family decoder, with HF's field names.
///
/// Deserialising from TOML (training configs) rejects unknown keys; reading an HF
/// `config.json` goes through [`LlamaConfig::from_hf_json`], which ignores the keys HF adds
/// that do not change the computation (`architectures`, `torch_dtype`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Defaults to `num_attention_heads` (plain multi-head attention, as K2 uses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Defaults to `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_init")]
    pub initializer_range: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<u32>,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    2048
}
fn default_init() -> f64 {
    0.02
}

/// HF `config.json` as written by transformers: the same fields, extra keys tolerated.
#[derive(Deserialize)]
struct HfLlamaConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default = "default_init")]
    initializer_range: f64,
    #[serde(default)]
    bos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    eos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    attention_bias: Option<bool>,
    #[serde(default)]
    mlp_bias: Option<bool>,
}

fn token_id(v: &Option<serde_json::Value>) -> Option<u32> {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|x| x as u32),
        Some(serde_json::Value::Array(a)) => a.first().and_then(|x| x.as_u64()).map(|x| x as u32),
        _ => None,
    }
}

impl LlamaConfig {
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Checks every constraint the model relies on; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: String| {
            Err(ModelError::InvalidConfig {
                field: field.to_string(),
                reason,
            })
        };
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(
                "num_attention_heads",
                format!(
                    "{} heads do not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            );
        }
        let hd = self.head_dim();
        if hd == 0 || !hd.is_multiple_of(2) {
            return bad(
                "head_dim",
                format!("{hd} must be even and positive (RoPE rotates pairs)"),
            );
        }
        let kv = self.num_kv_heads();
        if kv == 0 || !self.num_attention_heads.is_multiple_of(kv) {
            return bad(
                "num_key_value_heads",
                format!(
                    "{kv} must divide num_attention_heads {}",
                    self.num_attention_heads
                ),
            );
        }
        if !(self.rms_norm_eps > 0.0 && self.rms_norm_eps.is_finite()) {
            return bad(
                "rms_norm_eps",
                format!("{} must be positive", self.rms_norm_eps),
            );
        }
        if !(self.rope_theta > 1.0 && self.rope_theta.is_finite()) {
            return bad("rope_theta", format!("{} must be > 1", self.rope_theta));
        }
        if !(self.initializer_range > 0.0 && self.initializer_range.is_finite()) {
            return bad(
                "initializer_range",
                format!("{} must be positive", self.initializer_range),
            );
        }
        for (field, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
        ] {
            if let Some(id) = id {
                if id as usize >= self.vocab_size {
                    return bad(
                        field,
                        format!("{id} is outside vocab_size {}", self.vocab_size),
                    );
                }
            }
        }
        Ok(())
    }

    /// Parameters of one decoder layer.
    pub fn params_per_layer(&self) -> u64 {
        let d = self.hidden_size as u64;
        let hd = self.head_dim() as u64;
        let q = d * self.num_attention_heads as u64 * hd;
        let kv = 2 * d * self.num_kv_heads() as u64 * hd;
        let o = self.num_attention_heads as u64 * hd * d;
        let mlp = 3 * d * self.intermediate_size as u64;
        q + kv + o + mlp + 2 * d
    }

    /// Total trainable parameters (embeddings, layers, final norm, LM head unless tied).
    pub fn num_params(&self) -> u64 {
        let d = self.hidden_size as u64;
        let emb = self.vocab_size as u64 * d;
        let head = if self.tie_word_embeddings { 0 } else { emb };
        emb + head + self.num_hidden_layers as u64 * self.params_per_layer() + d
    }

    /// Parameters that take part in matrix products per token (excludes the embedding lookup).
    pub fn matmul_params(&self) -> u64 {
        let d = self.hidden_size as u64;
        self.num_hidden_layers as u64 * (self.params_per_layer() - 2 * d)
            + self.vocab_size as u64 * d
    }

    /// Training FLOPs per token at sequence length `seq` (forward + backward, PaLM's 6N + 12·L·d·T
    /// with the causal mask not discounted), the convention MFU is quoted in.
    pub fn train_flops_per_token(&self, seq: usize) -> f64 {
        let attn = 12.0
            * self.num_hidden_layers as f64
            * (self.num_attention_heads * self.head_dim()) as f64
            * seq as f64;
        6.0 * self.matmul_params() as f64 + attn
    }

    /// Reads an HF `config.json`, ignoring keys that do not change the computation and
    /// rejecting the ones we do not implement (biases, RoPE scaling, other activations).
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| ModelError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_hf_json_str(&text).map_err(|e| match e {
            ModelError::ConfigFile { message, .. } => ModelError::ConfigFile {
                path: path.to_path_buf(),
                message,
            },
            ModelError::InvalidConfig { field, reason } => ModelError::ConfigFile {
                path: path.to_path_buf(),
                message: format!("field `{field}`: {reason}"),
            },
            other => other,
        })
    }

    pub fn from_hf_json_str(text: &str) -> Result<Self> {
        let err = |message: String| ModelError::ConfigFile {
            path: "config.json".into(),
            message,
        };
        let hf: HfLlamaConfig = serde_json::from_str(text)
            .map_err(|e| err(format!("line {}, column {}: {e}", e.line(), e.column())))?;
        if let Some(act) = &hf.hidden_act {
            if act != "silu" {
                return Err(err(format!(
                    "field `hidden_act`: `{act}` is not supported (only silu)"
                )));
            }
        }
        // RoPE scaling is refused; transformers 5 writes the base as `rope_parameters.rope_theta`.
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let (theta, factor) = crate::hf_keys::rope_settings(&map, "rope_theta").map_err(err)?;
        if factor.is_some_and(|f| f != 1.0) {
            return Err(err(
                "field `rope_parameters.partial_rotary_factor`: partial RoPE is not part of llama"
                    .into(),
            ));
        }
        if hf.attention_bias == Some(true) || hf.mlp_bias == Some(true) {
            return Err(err(
                "field `attention_bias`/`mlp_bias`: biases are not supported".into(),
            ));
        }
        let cfg = LlamaConfig {
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            intermediate_size: hf.intermediate_size,
            num_hidden_layers: hf.num_hidden_layers,
            num_attention_heads: hf.num_attention_heads,
            num_key_value_heads: hf.num_key_value_heads,
            head_dim: hf.head_dim,
            rms_norm_eps: hf.rms_norm_eps,
            rope_theta: theta.unwrap_or_else(default_theta),
            max_position_embeddings: hf.max_position_embeddings,
            tie_word_embeddings: hf.tie_word_embeddings,
            initializer_range: hf.initializer_range,
            bos_token_id: token_id(&hf.bos_token_id),
            eos_token_id: token_id(&hf.eos_token_id),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The `config.json` transformers expects for `LlamaForCausalLM` (fp32 weights).
    pub fn to_hf_json(&self) -> String {
        self.to_hf_json_for(candle_core::DType::F32)
    }

    /// The `config.json` of weights stored in `dtype` (its `torch_dtype`).
    pub fn to_hf_json_for(&self, dtype: candle_core::DType) -> String {
        let v = serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": false,
            "attention_dropout": 0.0,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "head_dim": self.head_dim(),
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": self.initializer_range,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "mlp_bias": false,
            "model_type": "llama",
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_kv_heads(),
            "pretraining_tp": 1,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_scaling": null,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": crate::device::torch_dtype_name(dtype),
            "use_cache": true,
            "vocab_size": self.vocab_size,
        });
        let mut s = serde_json::to_string_pretty(&v).expect("json value serialises");
        s.push('\n');
        s
    }

    /// `generation_config.json` for greedy decoding with this config's special tokens.
    pub fn generation_config_json(&self) -> String {
        let v = serde_json::json!({
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "do_sample": false,
        });
        let mut s = serde_json::to_string_pretty(&v).expect("json value serialises");
        s.push('\n');
        s
    }
}
