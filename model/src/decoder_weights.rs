//! Building a [`Decoder`] from tensors or a checkpoint directory (the one loader; the tensor
//! names are [`crate::names`]).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::backend::Backend;
use crate::decoder::{Block, Decoder, Linear, Mlp, Norm, Qkv};
use crate::error::{ModelError, Result};
use crate::family::{Activation, Arch, Family, NormKind};
use crate::names::{self, is_saved_buffer, tensor_shapes, tied_head_name};
use crate::tensor_ops::rope_tables;

impl Decoder {
    /// Builds the decoder from tensors named as in HF checkpoints (exactly those of
    /// [`tensor_shapes`]); `dir` names the checkpoint in errors.
    pub fn from_tensors(arch: &Arch, map: BTreeMap<String, Tensor>, dir: &Path) -> Result<Self> {
        Self::build(arch, map, dir, true)
    }

    /// [`Decoder::from_tensors`]; `frozen` weights (inference) may be laid out for the backend's
    /// product, live ones (training) are used as they are.
    pub(crate) fn build(
        arch: &Arch,
        mut map: BTreeMap<String, Tensor>,
        dir: &Path,
        frozen: bool,
    ) -> Result<Self> {
        arch.validate()?;
        let shapes: BTreeMap<String, Vec<usize>> = tensor_shapes(arch).into_iter().collect();
        let num_params = map
            .iter()
            .filter(|(k, _)| shapes.contains_key(*k))
            .map(|(_, t)| t.elem_count() as u64)
            .sum();
        let mut get = |name: &str| -> Result<Tensor> {
            let t = map.remove(name).ok_or_else(|| ModelError::MissingTensor {
                path: dir.to_path_buf(),
                name: name.to_string(),
            })?;
            let shape = &shapes[name];
            if t.dims() != shape.as_slice() {
                return Err(ModelError::TensorShape {
                    path: dir.to_path_buf(),
                    name: name.to_string(),
                    expected: shape.clone(),
                    actual: t.dims().to_vec(),
                });
            }
            Ok(t)
        };
        let embed_name = match arch.family {
            Family::GptNeox => "gpt_neox.embed_in.weight",
            _ => names::EMBED,
        };
        let embed = get(embed_name)?;
        let backend = Backend::for_weights(&embed, frozen);
        let (dtype, dev) = (embed.dtype(), embed.device().clone());
        let d = arch.hidden_size;
        let norm = |get: &mut dyn FnMut(&str) -> Result<Tensor>, prefix: &str| -> Result<Norm> {
            let (w, b) = match arch.norm {
                NormKind::Rms => (Some(get(&format!("{prefix}.weight"))?), None),
                NormKind::LayerNorm => (
                    Some(get(&format!("{prefix}.weight"))?),
                    Some(get(&format!("{prefix}.bias"))?),
                ),
                NormKind::LayerNormNoParams => (None, None),
            };
            Norm::new(arch.norm, w, b, arch.norm_eps, d, dtype, &dev)
        };
        let mut blocks = Vec::with_capacity(arch.num_hidden_layers);
        for i in 0..arch.num_hidden_layers {
            let block = match arch.family {
                Family::GptNeox => {
                    let n = |s: &str| format!("gpt_neox.layers.{i}.{s}");
                    let lin = |get: &mut dyn FnMut(&str) -> Result<Tensor>,
                               s: &str,
                               bias: bool|
                     -> Result<Linear> {
                        let b = if bias {
                            Some(get(&n(&format!("{s}.bias")))?)
                        } else {
                            None
                        };
                        Linear::new(get(&n(&format!("{s}.weight")))?, b, &backend)
                    };
                    Block {
                        attn_norm: norm(&mut get, &n("input_layernorm"))?,
                        mlp_norm: norm(&mut get, &n("post_attention_layernorm"))?,
                        qkv: Qkv::Fused(lin(&mut get, "attention.query_key_value", arch.biases)?),
                        q_norm: None,
                        k_norm: None,
                        o: lin(&mut get, "attention.dense", arch.biases)?,
                        mlp: Mlp::Gelu {
                            up: lin(&mut get, "mlp.dense_h_to_4h", true)?,
                            down: lin(&mut get, "mlp.dense_4h_to_h", true)?,
                            erf: arch.activation == Activation::GeluErf,
                        },
                    }
                }
                Family::Llama | Family::Olmo | Family::Olmo2 => {
                    let n = |s: &str| names::layer(i, s);
                    let lin =
                        |get: &mut dyn FnMut(&str) -> Result<Tensor>, s: &str| -> Result<Linear> {
                            Linear::new(get(&n(&format!("{s}.weight")))?, None, &backend)
                        };
                    let olmo2 = arch.family == Family::Olmo2;
                    let (attn_norm, mlp_norm) = if olmo2 {
                        (
                            norm(&mut get, &n("post_attention_layernorm"))?,
                            norm(&mut get, &n("post_feedforward_layernorm"))?,
                        )
                    } else {
                        (
                            norm(&mut get, &n("input_layernorm"))?,
                            norm(&mut get, &n("post_attention_layernorm"))?,
                        )
                    };
                    let rms = |get: &mut dyn FnMut(&str) -> Result<Tensor>,
                               s: &str|
                     -> Result<Option<Norm>> {
                        Ok(Some(Norm::Rms {
                            w: get(&n(&format!("{s}.weight")))?,
                            eps: arch.norm_eps,
                        }))
                    };
                    Block {
                        attn_norm,
                        mlp_norm,
                        qkv: Qkv::Separate {
                            q: lin(&mut get, "self_attn.q_proj")?,
                            k: lin(&mut get, "self_attn.k_proj")?,
                            v: lin(&mut get, "self_attn.v_proj")?,
                        },
                        q_norm: if olmo2 {
                            rms(&mut get, "self_attn.q_norm")?
                        } else {
                            None
                        },
                        k_norm: if olmo2 {
                            rms(&mut get, "self_attn.k_norm")?
                        } else {
                            None
                        },
                        o: lin(&mut get, "self_attn.o_proj")?,
                        mlp: Mlp::SwiGlu {
                            gate: lin(&mut get, "mlp.gate_proj")?,
                            up: lin(&mut get, "mlp.up_proj")?,
                            down: lin(&mut get, "mlp.down_proj")?,
                        },
                    }
                }
            };
            blocks.push(block);
        }
        let (final_norm, head) = match arch.family {
            Family::GptNeox => ("gpt_neox.final_layer_norm", "embed_out.weight"),
            _ => ("model.norm", names::LM_HEAD),
        };
        let norm = norm(&mut get, final_norm)?;
        // A tied head keeps the embedding's layout (a transposed copy would double the
        // vocabulary's memory); an untied one is the model's largest product, laid out for it.
        let lm_head = if arch.tie_word_embeddings {
            Linear::untransposed(embed.clone())
        } else {
            Linear::new(get(head)?, None, &backend)?
        };
        let (cos, sin) = rope_tables(
            arch.rotary_dims,
            arch.rope_theta,
            arch.max_position_embeddings,
            dtype,
            &dev,
        )?;
        Ok(Decoder {
            arch: arch.clone(),
            embed,
            blocks,
            norm,
            lm_head,
            cos,
            sin,
            num_params,
            backend,
        })
    }
}

/// Loads an HF model directory of any supported family (`config.json` + safetensors weights) for
/// computation in `dtype` on `dev`.
pub fn load_decoder(dir: &Path, dtype: DType, dev: &Device) -> Result<Decoder> {
    let arch = Arch::from_hf_json(&dir.join("config.json"))?;
    let wanted: BTreeMap<String, Vec<usize>> = tensor_shapes(&arch).into_iter().collect();
    let tied_head = arch
        .tie_word_embeddings
        .then(|| tied_head_name(arch.family));
    let mut unexpected: Vec<String> = Vec::new();
    let tensors = crate::weights::load_tensors_where(dir, dtype, dev, &mut |name| {
        if wanted.contains_key(name) {
            return true;
        }
        if !is_saved_buffer(name) && Some(name) != tied_head {
            unexpected.push(name.to_string());
        }
        false
    })?;
    if let Some(name) = unexpected.first() {
        return Err(ModelError::Weights {
            path: dir.to_path_buf(),
            message: format!(
                "tensor `{name}` (and {} more) is not part of the {} model its config.json \
                 describes",
                unexpected.len() - 1,
                arch.family.model_type()
            ),
        });
    }
    Decoder::from_tensors(&arch, tensors, dir)
}

/// [`load_decoder`] onto `placement`'s device in the dtype it chooses for the checkpoint (by
/// default its `torch_dtype`: a bf16 release runs in bf16).
pub fn load_decoder_on(dir: &Path, placement: &crate::device::Placement) -> Result<Decoder> {
    load_decoder(dir, placement.dtype_for(dir)?, &placement.device)
}

/// Parameters of a checkpoint of `arch` (a tied head counted once).
pub fn num_params(arch: &Arch) -> u64 {
    tensor_shapes(arch)
        .iter()
        .map(|(_, s)| s.iter().product::<usize>() as u64)
        .sum()
}

/// One paragraph describing `arch` for `k2 model info`.
pub fn describe(arch: &Arch) -> String {
    let norm = match arch.norm {
        NormKind::Rms => "RMSNorm",
        NormKind::LayerNorm => "LayerNorm with bias",
        NormKind::LayerNormNoParams => "LayerNorm without parameters",
    };
    let block = match arch.block {
        crate::family::BlockKind::PreNorm => "pre-norm blocks",
        crate::family::BlockKind::Parallel => "parallel attention + MLP residual",
        crate::family::BlockKind::PostSublayerNorm => "norm after each sub-layer",
    };
    let mlp = match arch.activation {
        Activation::SwiGlu => "SwiGLU",
        Activation::GeluErf => "GELU (erf)",
        Activation::GeluTanh => "GELU (tanh)",
    };
    let mut extras = Vec::new();
    if arch.biases {
        extras.push("attention biases".to_string());
    }
    if let Some(c) = arch.clip_qkv {
        extras.push(format!("clip_qkv {c}"));
    }
    if arch.qk_norm {
        extras.push("QK-norm".to_string());
    }
    format!(
        "model_type {}: {} layers, hidden {}, {} heads ({} KV heads) of {}, RoPE on {} dims \
         (theta {}), {norm} (eps {}), {block}, {mlp} {}, vocab {}, context {}, {} head{}{}\n\
         parameters: {}",
        arch.family.model_type(),
        arch.num_hidden_layers,
        arch.hidden_size,
        arch.num_attention_heads,
        arch.num_key_value_heads,
        arch.head_dim,
        arch.rotary_dims,
        arch.rope_theta,
        arch.norm_eps,
        arch.intermediate_size,
        arch.vocab_size,
        arch.max_position_embeddings,
        if arch.tie_word_embeddings {
            "tied"
        } else {
            "untied"
        },
        if extras.is_empty() { "" } else { ", " },
        extras.join(", "),
        num_params(arch)
    )
}
