//! The model directory a sweep evaluates. Usually the checkpoint's directory itself; for a
//! checkpoint that ships only a SentencePiece `tokenizer.model` or only PyTorch
//! `pytorch_model*.bin` weights, a view in the directory its source names (for the Hub: beside
//! the cache, `<cache>/../k2-views/models--org--name/<commit>/`) with links to the checkpoint's
//! files plus a `tokenizer.json` converted from the model (`sp_tokenizer`) and safetensors
//! converted from the PyTorch files. The checkpoint's own directory (and the Hugging Face cache)
//! is never written to.

use k2_model::streaming_writer::{write_streaming, TensorSpec};
use std::path::{Path, PathBuf};

use k2_archive::hub::pull;

use crate::error::{io_err, EvalError, Result};

/// Written last into a view: its presence marks a finished one.
pub const VIEW_MARKER: &str = "k2-view.json";

/// The directory to evaluate for the checkpoint in `snapshot`: the directory itself when it has
/// `tokenizer.json` and safetensors weights, else a view in `view` that adds what is missing
/// (`tokenizer.json` from `tokenizer.model`, safetensors from PyTorch `pytorch_model*.bin`).
/// Without a place for a view, the directory is used as it is.
pub fn model_dir(snapshot: &Path, view: Option<&Path>) -> Result<PathBuf> {
    let has_tokenizer = snapshot.join("tokenizer.json").exists();
    let has_safetensors =
        snapshot.join(pull::SINGLE_FILE).exists() || snapshot.join(pull::INDEX_FILE).exists();
    if has_tokenizer && has_safetensors {
        return Ok(snapshot.to_path_buf());
    }
    let sp = snapshot.join("tokenizer.model");
    if !has_tokenizer && !sp.exists() {
        return Err(EvalError::Invalid {
            path: snapshot.to_path_buf(),
            message: "neither tokenizer.json nor tokenizer.model".into(),
        });
    }
    let Some(view) = view else {
        return Ok(snapshot.to_path_buf());
    };
    let view = view.to_path_buf();
    if view.join(VIEW_MARKER).exists() {
        return Ok(view);
    }
    std::fs::create_dir_all(&view).map_err(io_err(&view))?;
    let pytorch = if has_safetensors {
        Vec::new()
    } else {
        pull::weight_files_in(snapshot)?
    };
    let rd = std::fs::read_dir(snapshot).map_err(io_err(snapshot))?;
    let mut files: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    for f in files {
        if pytorch.contains(&f) || f == pull::PT_INDEX_FILE {
            continue;
        }
        let dst = view.join(&f);
        if dst.symlink_metadata().is_ok() {
            std::fs::remove_file(&dst).map_err(io_err(&dst))?;
        }
        let src = std::path::absolute(snapshot.join(&f)).map_err(io_err(snapshot))?;
        link(&src, &dst)?;
    }
    let mut converted = Vec::new();
    if !has_tokenizer {
        let json = crate::sp_tokenizer::tokenizer_json(&sp)?;
        let text = serde_json::to_string(&json)?;
        write(&view.join("tokenizer.json"), text.as_bytes())?;
        converted.push("tokenizer.model -> tokenizer.json".to_string());
    }
    if !pytorch.is_empty() {
        converted.extend(convert_pytorch(snapshot, &pytorch, &view)?);
    }
    let marker = serde_json::json!({
        "source": snapshot.display().to_string(),
        "converted": converted
    });
    write(&view.join(VIEW_MARKER), marker.to_string().as_bytes())?;
    Ok(view)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(k2_archive::write_file_atomic(path, bytes)?)
}

/// PyTorch weight files -> safetensors in `view` (one file per shard, with an index when sharded).
fn convert_pytorch(snapshot: &Path, shards: &[String], view: &Path) -> Result<Vec<String>> {
    let n = shards.len();
    let mut weight_map = serde_json::Map::new();
    let mut done = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let src = snapshot.join(shard);
        let bad = |e: &dyn std::fmt::Display| EvalError::Invalid {
            path: src.clone(),
            message: e.to_string(),
        };
        // Streamed tensor by tensor: only the tensor being written is ever in memory.
        let pth = candle_core::pickle::PthTensors::new(&src, None).map_err(|e| bad(&e))?;
        let mut specs: Vec<TensorSpec> = pth
            .tensor_infos()
            .values()
            .map(|t| TensorSpec {
                name: t.name.clone(),
                dtype: t.dtype,
                shape: t.layout.shape().dims().to_vec(),
            })
            .collect();
        if specs.is_empty() {
            return Err(bad(&"no tensors in this PyTorch file"));
        }
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let name = if n == 1 {
            pull::SINGLE_FILE.to_string()
        } else {
            format!("model-{:05}-of-{n:05}.safetensors", i + 1)
        };
        for t in &specs {
            weight_map.insert(t.name.clone(), serde_json::Value::String(name.clone()));
        }
        let dst = view.join(&name);
        let mut meta = std::collections::BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        write_streaming(&dst, &specs, &meta, &mut |spec| {
            pth.get(&spec.name)?
                .ok_or_else(|| k2_model::ModelError::MissingTensor {
                    path: src.clone(),
                    name: spec.name.clone(),
                })?
                .contiguous()
                .map_err(Into::into)
        })
        .map_err(|e| bad(&e))?;
        done.push(format!("{shard} -> {name}"));
    }
    if n > 1 {
        let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
        write(&view.join(pull::INDEX_FILE), index.to_string().as_bytes())?;
    }
    Ok(done)
}

#[cfg(unix)]
fn link(src: &Path, dst: &Path) -> Result<()> {
    std::os::unix::fs::symlink(src, dst).map_err(io_err(dst))
}

#[cfg(not(unix))]
fn link(src: &Path, dst: &Path) -> Result<()> {
    std::fs::copy(src, dst).map(|_| ()).map_err(io_err(dst))
}
