//! Architecture families k2 evaluates, read from an HF `config.json`'s `model_type` into one
//! normalised description ([`Arch`]) that the inference decoder ([`crate::decoder::Decoder`])
//! runs:
//!
//! | `model_type` | norm                         | block                          | attention                        | MLP    |
//! |--------------|------------------------------|--------------------------------|----------------------------------|--------|
//! | `llama`      | RMSNorm                      | pre-norm                       | q/k/v, full RoPE, GQA            | SwiGLU |
//! | `gpt_neox`   | LayerNorm with bias          | pre-norm, parallel or serial   | fused per-head qkv, partial RoPE | GELU   |
//! | `olmo`       | LayerNorm without parameters | pre-norm                       | q/k/v, `clip_qkv`                | SwiGLU |
//! | `olmo2`      | RMSNorm                      | norm of each sub-layer's output| q/k/v, QK-norm over all heads    | SwiGLU |
//!
//! Each family follows transformers' own defaults for keys its `config.json` leaves out (Pythia's
//! `rotary_pct` is 0.25, GPT-NeoX has biases, OLMo's LayerNorm eps is fixed at 1e-5), and reads
//! both the Hub's older keys (`rope_theta`, `rotary_emb_base`, `rotary_pct`) and transformers 5's
//! `rope_parameters`. A key that would change the computation in a way k2 does not implement
//! (RoPE scaling, a sliding window, biases in a family without them, another activation) is an
//! error naming the key: nothing is silently ignored.

use std::path::Path;

use serde_json::Value;

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::hf_keys::{rope_settings, KeyResult, Keys};

/// The `model_type`s k2 implements.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["llama", "gpt_neox", "olmo", "olmo2"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Llama,
    GptNeox,
    Olmo,
    Olmo2,
}

impl Family {
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::GptNeox => "gpt_neox",
            Family::Olmo => "olmo",
            Family::Olmo2 => "olmo2",
        }
    }
}

/// How a hidden state is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `x / rms(x) * w` (LLaMA, OLMo-2).
    Rms,
    /// `(x - mean) / std * w + b` (GPT-NeoX).
    LayerNorm,
    /// `(x - mean) / std`, no weight or bias (OLMo-1).
    LayerNormNoParams,
}

/// The MLP's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: `down(silu(gate x) * up x)`.
    SwiGlu,
    /// `down(gelu(up x))` with the exact (erf) GELU: transformers' `"gelu"`.
    GeluErf,
    /// `down(gelu(up x))` with the tanh approximation: `"gelu_new"`, `"gelu_pytorch_tanh"`,
    /// `"gelu_fast"`.
    GeluTanh,
}

/// Where a block normalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// `x += attn(norm1 x); x += mlp(norm2 x)` (LLaMA, OLMo-1, GPT-NeoX serial).
    PreNorm,
    /// `x = x + attn(norm1 x) + mlp(norm2 x)` (GPT-NeoX `use_parallel_residual`).
    Parallel,
    /// `x += norm1(attn x); x += norm2(mlp x)` (OLMo-2).
    PostSublayerNorm,
}

/// One decoder-only transformer, as the computation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub block: BlockKind,
    pub activation: Activation,
    /// The leading dimensions of each head that RoPE rotates (GPT-NeoX: `head_dim * rotary_pct`).
    pub rotary_dims: usize,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Biases on the attention and MLP projections (GPT-NeoX).
    pub biases: bool,
    /// q, k and v clamped to `[-c, c]` after their projections (OLMo-1).
    pub clip_qkv: Option<f64>,
    /// RMSNorm over the whole q and k projections before RoPE (OLMo-2).
    pub qk_norm: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

/// Keys that add a sliding window, which no supported family computes.
fn refuse_sliding_window(keys: &Keys) -> KeyResult<()> {
    if keys.bool_or("use_sliding_window", false)? {
        return Err("field `use_sliding_window`: sliding-window attention is not supported".into());
    }
    if let Some(v) = keys.get("sliding_window") {
        if keys.map.contains_key("use_sliding_window") {
            // Qwen-style configs carry a window size that `use_sliding_window: false` turns off.
            return Ok(());
        }
        return Err(format!(
            "field `sliding_window`: sliding-window attention ({v}) is not supported"
        ));
    }
    Ok(())
}

fn refuse_biases(keys: &Keys, family: Family) -> KeyResult<()> {
    for key in ["attention_bias", "mlp_bias"] {
        if keys.bool_or(key, false)? {
            return Err(format!(
                "field `{key}`: {} has no biases; a checkpoint with them is not a {} model",
                family.model_type(),
                family.model_type()
            ));
        }
    }
    Ok(())
}

fn swiglu_act(keys: &Keys) -> KeyResult<Activation> {
    match keys.str_or("hidden_act", "silu")? {
        "silu" | "swish" => Ok(Activation::SwiGlu),
        other => Err(format!(
            "field `hidden_act`: `{other}` is not supported for this family (only silu)"
        )),
    }
}

fn gelu_act(keys: &Keys) -> KeyResult<Activation> {
    match keys.str_or("hidden_act", "gelu")? {
        "gelu" => Ok(Activation::GeluErf),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
        other => Err(format!(
            "field `hidden_act`: `{other}` is not supported for gpt_neox (supported: gelu, \
             gelu_new, gelu_pytorch_tanh, gelu_fast)"
        )),
    }
}

impl Arch {
    /// Reads an HF `config.json`; the error names the file and the key.
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
        let v: Value = serde_json::from_str(text)
            .map_err(|e| err(format!("line {}, column {}: {e}", e.line(), e.column())))?;
        let map = v
            .as_object()
            .ok_or_else(|| err("not a JSON object".into()))?;
        let keys = Keys { map };
        let model_type = keys.str_or("model_type", "").map_err(&err)?;
        let arch = match model_type {
            "llama" => Self::llama(text)?,
            "gpt_neox" => Self::gpt_neox(&keys).map_err(&err)?,
            "olmo" => Self::olmo(&keys, Family::Olmo).map_err(&err)?,
            "olmo2" => Self::olmo(&keys, Family::Olmo2).map_err(&err)?,
            "" => {
                return Err(err(format!(
                    "field `model_type`: missing (supported: {})",
                    SUPPORTED_MODEL_TYPES.join(", ")
                )))
            }
            other => {
                return Err(err(format!(
                    "field `model_type`: `{other}` is not supported (supported: {})",
                    SUPPORTED_MODEL_TYPES.join(", ")
                )))
            }
        };
        arch.validate()?;
        Ok(arch)
    }

    fn llama(text: &str) -> Result<Self> {
        Ok(Self::from_llama(&LlamaConfig::from_hf_json_str(text)?))
    }

    /// The LLaMA architecture of a k2 config.
    pub fn from_llama(c: &LlamaConfig) -> Self {
        Arch {
            family: Family::Llama,
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            num_key_value_heads: c.num_kv_heads(),
            head_dim: c.head_dim(),
            norm: NormKind::Rms,
            norm_eps: c.rms_norm_eps,
            block: BlockKind::PreNorm,
            activation: Activation::SwiGlu,
            rotary_dims: c.head_dim(),
            rope_theta: c.rope_theta,
            max_position_embeddings: c.max_position_embeddings,
            tie_word_embeddings: c.tie_word_embeddings,
            biases: false,
            clip_qkv: None,
            qk_norm: false,
            bos_token_id: c.bos_token_id,
            eos_token_id: c.eos_token_id,
        }
    }

    /// Pythia and other GPT-NeoX models, with `GPTNeoXConfig`'s defaults.
    fn gpt_neox(keys: &Keys) -> KeyResult<Self> {
        refuse_sliding_window(keys)?;
        let hidden = keys.usize("hidden_size")?;
        let heads = keys.usize("num_attention_heads")?;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(format!(
                "field `num_attention_heads`: {heads} heads do not divide hidden_size {hidden}"
            ));
        }
        let head_dim = hidden / heads;
        if let Some(h) = keys.get("head_dim") {
            if h.as_u64() != Some(head_dim as u64) {
                return Err(format!(
                    "field `head_dim`: {h} is not supported for gpt_neox (its heads are \
                     hidden_size / num_attention_heads = {head_dim})"
                ));
            }
        }
        if let Some(kv) = keys.get("num_key_value_heads") {
            if kv.as_u64() != Some(heads as u64) {
                return Err(format!(
                    "field `num_key_value_heads`: {kv}: gpt_neox has no grouped-query attention"
                ));
            }
        }
        let (theta, factor) = rope_settings(keys.map, "rotary_emb_base")?;
        let pct = match keys.get("rotary_pct") {
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("field `rotary_pct`: {v} is not a number"))?,
            None => factor.unwrap_or(0.25),
        };
        if !(pct > 0.0 && pct <= 1.0) {
            return Err(format!("field `rotary_pct`: {pct} must be in (0, 1]"));
        }
        // transformers: `int(head_size * rotary_pct)`.
        let rotary_dims = (head_dim as f64 * pct) as usize;
        if rotary_dims == 0 || !rotary_dims.is_multiple_of(2) {
            return Err(format!(
                "field `rotary_pct`: {pct} of head_dim {head_dim} rotates {rotary_dims} dims; \
                 RoPE needs an even, positive number"
            ));
        }
        let parallel = keys.bool_or("use_parallel_residual", true)?;
        Ok(Arch {
            family: Family::GptNeox,
            vocab_size: keys.usize("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: keys.usize("intermediate_size")?,
            num_hidden_layers: keys.usize("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: heads,
            head_dim,
            norm: NormKind::LayerNorm,
            norm_eps: keys.f64_or("layer_norm_eps", 1e-5)?,
            block: if parallel {
                BlockKind::Parallel
            } else {
                BlockKind::PreNorm
            },
            activation: gelu_act(keys)?,
            rotary_dims,
            rope_theta: theta.unwrap_or(10_000.0),
            max_position_embeddings: keys.usize_or("max_position_embeddings", Some(2048))?,
            tie_word_embeddings: keys.bool_or("tie_word_embeddings", false)?,
            biases: keys.bool_or("attention_bias", true)?,
            clip_qkv: None,
            qk_norm: false,
            bos_token_id: keys.token_id("bos_token_id"),
            eos_token_id: keys.token_id("eos_token_id"),
        })
    }

    /// OLMo-1 (`olmo`) and OLMo-2 (`olmo2`) as transformers' `OlmoConfig`/`Olmo2Config` read them.
    fn olmo(keys: &Keys, family: Family) -> KeyResult<Self> {
        refuse_sliding_window(keys)?;
        refuse_biases(keys, family)?;
        let hidden = keys.usize("hidden_size")?;
        let heads = keys.usize("num_attention_heads")?;
        if heads == 0 {
            return Err("field `num_attention_heads`: must be at least 1".into());
        }
        let head_dim = keys.usize_or("head_dim", Some(hidden / heads))?;
        let (theta, factor) = rope_settings(keys.map, "rope_theta")?;
        if factor.is_some_and(|f| f != 1.0) {
            return Err(format!(
                "field `rope_parameters.partial_rotary_factor`: partial RoPE is not part of {}",
                family.model_type()
            ));
        }
        let clip = match keys.get("clip_qkv") {
            None => None,
            Some(v) => {
                let c = v
                    .as_f64()
                    .ok_or_else(|| format!("field `clip_qkv`: {v} is not a number"))?;
                if family == Family::Olmo2 {
                    return Err(format!(
                        "field `clip_qkv`: {c}: olmo2 does not clip q, k and v (transformers \
                         ignores it; k2 refuses rather than guess)"
                    ));
                }
                if !(c > 0.0 && c.is_finite()) {
                    return Err(format!("field `clip_qkv`: {c} must be positive"));
                }
                Some(c)
            }
        };
        let olmo2 = family == Family::Olmo2;
        Ok(Arch {
            family,
            vocab_size: keys.usize("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: keys.usize("intermediate_size")?,
            num_hidden_layers: keys.usize("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: keys.usize_or("num_key_value_heads", Some(heads))?,
            head_dim,
            norm: if olmo2 {
                NormKind::Rms
            } else {
                NormKind::LayerNormNoParams
            },
            // OLMo-1's parameter-free LayerNorm has its eps fixed at 1e-5 in transformers.
            norm_eps: if olmo2 {
                keys.f64_or("rms_norm_eps", 1e-5)?
            } else {
                1e-5
            },
            block: if olmo2 {
                BlockKind::PostSublayerNorm
            } else {
                BlockKind::PreNorm
            },
            activation: swiglu_act(keys)?,
            rotary_dims: head_dim,
            rope_theta: theta.unwrap_or(10_000.0),
            max_position_embeddings: keys.usize_or("max_position_embeddings", Some(2048))?,
            tie_word_embeddings: keys.bool_or("tie_word_embeddings", false)?,
            biases: false,
            clip_qkv: clip,
            qk_norm: olmo2,
            bos_token_id: keys.token_id("bos_token_id"),
            eos_token_id: keys.token_id("eos_token_id"),
        })
    }

    /// Checks every constraint the decoder relies on; the error names the field.
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
        // Bounds far above any released model, so that a corrupted config is an error rather
        // than an allocation of the RoPE tables or the tensor list that exhausts memory.
        for (field, v, max) in [
            ("num_hidden_layers", self.num_hidden_layers, 1 << 12),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                1 << 24,
            ),
            ("hidden_size", self.hidden_size, 1 << 18),
            ("vocab_size", self.vocab_size, 1 << 24),
        ] {
            if v > max {
                return bad(field, format!("{v} is beyond what k2 supports ({max})"));
            }
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(
                "head_dim",
                format!(
                    "{} must be even and positive (RoPE rotates pairs)",
                    self.head_dim
                ),
            );
        }
        let kv = self.num_key_value_heads;
        if kv == 0 || !self.num_attention_heads.is_multiple_of(kv) {
            return bad(
                "num_key_value_heads",
                format!(
                    "{kv} must divide num_attention_heads {}",
                    self.num_attention_heads
                ),
            );
        }
        if self.rotary_dims > self.head_dim {
            return bad(
                "rotary_pct",
                format!(
                    "{} rotary dims exceed head_dim {}",
                    self.rotary_dims, self.head_dim
                ),
            );
        }
        if !(self.norm_eps > 0.0 && self.norm_eps.is_finite()) {
            return bad("norm eps", format!("{} must be positive", self.norm_eps));
        }
        if !(self.rope_theta > 1.0 && self.rope_theta.is_finite()) {
            return bad("rope_theta", format!("{} must be > 1", self.rope_theta));
        }
        Ok(())
    }

    /// Whether this is a LLaMA model (the one family k2 trains).
    pub fn is_llama(&self) -> bool {
        self.family == Family::Llama
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neox(extra: &str) -> String {
        format!(
            r#"{{"model_type": "gpt_neox", "vocab_size": 384, "hidden_size": 32,
                "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                "rotary_pct": 0.25, "rotary_emb_base": 10000, "use_parallel_residual": true,
                "hidden_act": "gelu", "layer_norm_eps": 1e-5{extra}}}"#
        )
    }

    fn message(r: Result<Arch>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(a) => panic!("accepted: {a:?}"),
        }
    }

    #[test]
    fn pythia_config_reads_with_neox_defaults() {
        let a = Arch::from_hf_json_str(&neox("")).unwrap();
        assert_eq!(a.family, Family::GptNeox);
        assert_eq!((a.head_dim, a.rotary_dims), (8, 2));
        assert_eq!(a.block, BlockKind::Parallel);
        assert_eq!(a.activation, Activation::GeluErf);
        assert!(a.biases && !a.tie_word_embeddings);
        let serial = Arch::from_hf_json_str(&neox(r#", "use_parallel_residual": false"#)).unwrap();
        assert_eq!(serial.block, BlockKind::PreNorm);
        // transformers 5 writes the rotary settings as rope_parameters.
        let v5 = r#"{"model_type": "gpt_neox", "vocab_size": 384, "hidden_size": 32,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "rope_parameters": {"rope_type": "default", "rope_theta": 500.0,
            "partial_rotary_factor": 0.5}}"#;
        let a = Arch::from_hf_json_str(v5).unwrap();
        assert_eq!((a.rotary_dims, a.rope_theta), (4, 500.0));
    }

    #[test]
    fn olmo_families_read() {
        let base = r#""vocab_size": 384, "hidden_size": 32, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4"#;
        let o = Arch::from_hf_json_str(&format!(
            r#"{{"model_type": "olmo", {base}, "clip_qkv": 8.0, "tie_word_embeddings": true}}"#
        ))
        .unwrap();
        assert_eq!(o.norm, NormKind::LayerNormNoParams);
        assert_eq!((o.clip_qkv, o.tie_word_embeddings), (Some(8.0), true));
        let o2 = Arch::from_hf_json_str(&format!(
            r#"{{"model_type": "olmo2", {base}, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
                "rope_theta": 500000}}"#
        ))
        .unwrap();
        assert_eq!(o2.block, BlockKind::PostSublayerNorm);
        assert!(o2.qk_norm);
        assert_eq!((o2.num_key_value_heads, o2.rope_theta), (2, 500000.0));
    }

    #[test]
    fn unsupported_options_are_refused_by_name() {
        let m = message(Arch::from_hf_json_str(&neox(
            r#", "rope_scaling": {"type": "linear", "factor": 2.0}"#,
        )));
        assert!(m.contains("rope_scaling") && m.contains("linear"), "{m}");
        let m = message(Arch::from_hf_json_str(&neox(r#", "hidden_act": "relu""#)));
        assert!(m.contains("hidden_act") && m.contains("relu"), "{m}");
        let m = message(Arch::from_hf_json_str(&neox(r#", "rotary_pct": 0.1"#)));
        assert!(m.contains("rotary_pct"), "{m}");
        let m = message(Arch::from_hf_json_str(
            r#"{"model_type": "olmo", "vocab_size": 8, "hidden_size": 8,
                "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                "attention_bias": true}"#,
        ));
        assert!(m.contains("attention_bias") && m.contains("olmo"), "{m}");
        let m = message(Arch::from_hf_json_str(
            r#"{"model_type": "olmo2", "vocab_size": 8, "hidden_size": 8,
                "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                "sliding_window": 4096}"#,
        ));
        assert!(m.contains("sliding_window"), "{m}");
        let m = message(Arch::from_hf_json_str(
            r#"{"model_type": "mistral", "vocab_size": 8}"#,
        ));
        assert!(
            m.contains("model_type") && m.contains("mistral") && m.contains("gpt_neox, olmo"),
            "{m}"
        );
        let m = message(Arch::from_hf_json_str(&neox(r#", "hidden_size": "big""#)));
        assert!(m.contains("hidden_size"), "{m}");
    }

    #[test]
    fn llama_configs_go_through_the_llama_reader() {
        let text = LlamaConfig {
            vocab_size: 32,
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: Some(1),
            head_dim: None,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 64,
            tie_word_embeddings: false,
            initializer_range: 0.02,
            bos_token_id: Some(1),
            eos_token_id: Some(2),
        }
        .to_hf_json();
        let a = Arch::from_hf_json_str(&text).unwrap();
        assert_eq!(a.family, Family::Llama);
        assert_eq!((a.num_key_value_heads, a.rotary_dims), (1, 8));
    }
}
