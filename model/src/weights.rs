//! Reading and writing model weights as HF safetensors: a single `model.safetensors` or shards
//! listed in `model.safetensors.index.json`; bf16/f16 weights are converted to the compute dtype.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::llama::Llama;
use crate::names;

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The safetensors files of an HF model directory, in a stable order.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join(INDEX_FILE);
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(io(&index))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Weights {
                path: index.clone(),
                message: format!("line {}: {e}", e.line()),
            })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::Weights {
                path: index.clone(),
                message: "no `weight_map` object".into(),
            })?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join(SINGLE_FILE);
    if single.exists() {
        return Ok(vec![single]);
    }
    Err(ModelError::Weights {
        path: dir.to_path_buf(),
        message: format!("neither {SINGLE_FILE} nor {INDEX_FILE} found"),
    })
}

/// Every tensor of an HF model directory, converted to `dtype`.
pub fn load_tensors(dir: &Path, dtype: DType, dev: &Device) -> Result<BTreeMap<String, Tensor>> {
    let mut out = BTreeMap::new();
    for file in weight_files(dir)? {
        let bytes = std::fs::read(&file).map_err(io(&file))?;
        let map = candle_core::safetensors::load_buffer(&bytes, dev).map_err(|e| {
            ModelError::Weights {
                path: file.clone(),
                message: e.to_string(),
            }
        })?;
        for (name, t) in map {
            out.insert(name, t.to_dtype(dtype)?);
        }
    }
    Ok(out)
}

/// Loads an HF LLaMA directory (`config.json` + weights) for computation in `dtype`.
pub fn load_model(dir: &Path, dtype: DType, dev: &Device) -> Result<Llama> {
    let cfg = LlamaConfig::from_hf_json(&dir.join("config.json"))?;
    let tensors = load_tensors(dir, dtype, dev)?;
    Llama::from_tensors(&cfg, tensors).map_err(|e| match e {
        ModelError::MissingTensor { name, .. } => ModelError::MissingTensor {
            path: dir.to_path_buf(),
            name,
        },
        ModelError::TensorShape {
            name,
            expected,
            actual,
            ..
        } => ModelError::TensorShape {
            path: dir.to_path_buf(),
            name,
            expected,
            actual,
        },
        other => other,
    })
}

/// Serialises tensors as one safetensors file with transformers' `{"format": "pt"}` metadata.
/// The bytes depend only on names, shapes and values, so equal weights give equal hashes.
pub fn safetensors_bytes(tensors: &BTreeMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let contiguous: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.contiguous()?)))
        .collect::<Result<_>>()?;
    safetensors::tensor::serialize(contiguous.iter().map(|(k, t)| (k.as_str(), t)), Some(meta))
        .map_err(|e| ModelError::Weights {
            path: SINGLE_FILE.into(),
            message: e.to_string(),
        })
}

/// Checks that `tensors` holds exactly the weights of `cfg` with the right shapes.
pub fn check_complete(cfg: &LlamaConfig, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    for (name, shape) in names::tensor_shapes(cfg) {
        match tensors.get(&name) {
            None => {
                return Err(ModelError::MissingTensor {
                    path: SINGLE_FILE.into(),
                    name,
                })
            }
            Some(t) if t.dims() != shape.as_slice() => {
                return Err(ModelError::TensorShape {
                    path: SINGLE_FILE.into(),
                    name,
                    expected: shape,
                    actual: t.dims().to_vec(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}
