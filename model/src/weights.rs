//! Reading and writing model weights as HF safetensors: a single `model.safetensors` or shards
//! listed in `model.safetensors.index.json`, memory-mapped and converted tensor by tensor to the
//! compute dtype (no conversion when it is the stored dtype).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::names;

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |error| ModelError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// A '/'-separated relative path without empty, `.` or `..` components.
fn is_plain_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The safetensors files of an HF model directory, in a stable order. The index's shard names
/// must stay inside `dir`.
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
        // A shard name stays inside the checkpoint directory: no absolute path, no `..`.
        if let Some(bad) = files.iter().find(|f| !is_plain_relative(f)) {
            return Err(ModelError::Weights {
                path: index.clone(),
                message: format!("shard `{bad}` is not a file inside {}", dir.display()),
            });
        }
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

/// Every tensor of an HF model directory, converted to `dtype` (a no-op for tensors stored in it)
/// and placed on `dev`. Shards are memory-mapped, never read whole: each tensor is copied out of
/// the mapping (to host memory or straight to the GPU) and its pages are handed back to the kernel
/// at once, so the peak memory is the loaded weights plus one tensor, not plus a shard.
pub fn load_tensors(dir: &Path, dtype: DType, dev: &Device) -> Result<BTreeMap<String, Tensor>> {
    load_tensors_where(dir, dtype, dev, &mut |_| true)
}

/// The tensors of an HF model directory whose names `keep` accepts (see [`load_tensors`]); the
/// others are neither read nor converted.
pub fn load_tensors_where(
    dir: &Path,
    dtype: DType,
    dev: &Device,
    keep: &mut dyn FnMut(&str) -> bool,
) -> Result<BTreeMap<String, Tensor>> {
    let mut out = BTreeMap::new();
    for file in weight_files(dir)? {
        load_file_where(&file, dtype, dev, &mut out, keep)?;
    }
    Ok(out)
}

fn weights_err(path: &Path) -> impl Fn(String) -> ModelError + '_ {
    move |message| ModelError::Weights {
        path: path.to_path_buf(),
        message,
    }
}

/// The tensors of one safetensors file, memory-mapped (see [`load_tensors`]).
pub fn load_file(
    file: &Path,
    dtype: DType,
    dev: &Device,
    out: &mut BTreeMap<String, Tensor>,
) -> Result<()> {
    load_file_where(file, dtype, dev, out, &mut |_| true)
}

/// The tensors of one safetensors file whose names `keep` accepts.
fn load_file_where(
    file: &Path,
    dtype: DType,
    dev: &Device,
    out: &mut BTreeMap<String, Tensor>,
    keep: &mut dyn FnMut(&str) -> bool,
) -> Result<()> {
    let bad = weights_err(file);
    let f = std::fs::File::open(file).map_err(io(file))?;
    // SAFETY: the mapping is read-only and private. k2 and the HF cache replace weight files by
    // renaming new ones into place, never by writing into them, so the bytes do not change while
    // they are mapped; a file truncated under us would fault, as it would for any mmap reader.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io(file))?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let st = safetensors::SafeTensors::deserialize(&map).map_err(|e| bad(e.to_string()))?;
    let base = map.as_ptr() as usize;
    let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        st.tensors().into_iter().collect();
    // In file order, so the kernel's read-ahead streams the file once.
    views.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    for (name, view) in views {
        if !keep(&name) {
            continue;
        }
        let stored =
            DType::try_from(view.dtype()).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        let t = Tensor::from_raw_buffer(view.data(), stored, view.shape(), dev)
            .and_then(|t| t.to_dtype(dtype))
            .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        let start = view.data().as_ptr() as usize - base;
        release_pages(&map, start, view.data().len());
        out.insert(name, t);
    }
    Ok(())
}

/// Drops the whole pages inside `[start, start + len)` of a read-only file mapping from this
/// process's resident set (they are re-read from the file if touched again).
fn release_pages(map: &memmap2::Mmap, start: usize, len: usize) {
    const PAGE: usize = 4096;
    let first = start.div_ceil(PAGE) * PAGE;
    let end = (start + len) / PAGE * PAGE;
    if end > first {
        // SAFETY: MADV_DONTNEED on a private read-only file mapping only discards clean pages,
        // which the kernel re-reads from the file; no data the program owns is lost.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, end - first)
        };
    }
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
    for (name, shape) in names::tensor_shapes(&crate::family::Arch::from_llama(cfg)) {
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
