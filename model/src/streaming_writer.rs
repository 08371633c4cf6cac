//! Writing safetensors one tensor at a time: the header (names, dtypes, shapes, offsets) is known
//! before any data, so a model far larger than memory (a 7B checkpoint generated for a benchmark,
//! a PyTorch `.bin` converted shard by shard) is written holding one tensor at a time. Optionally
//! split into shards of at most `max_shard_bytes` with transformers' `model.safetensors.index.json`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

use crate::error::{ModelError, Result};
use crate::weights::{io, INDEX_FILE, SINGLE_FILE};

/// One tensor of a file to be written: its name, stored dtype and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub fn bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size_in_bytes()
    }
}

fn st_dtype(d: DType) -> Result<&'static str> {
    Ok(match d {
        DType::F32 => "F32",
        DType::BF16 => "BF16",
        DType::F16 => "F16",
        DType::F64 => "F64",
        DType::U32 => "U32",
        DType::I64 => "I64",
        DType::U8 => "U8",
        other => {
            return Err(ModelError::Weights {
                path: PathBuf::new(),
                message: format!("cannot write dtype {other:?} to safetensors"),
            })
        }
    })
}

/// Writes `specs` (in this order) into the safetensors file `path`, asking `produce` for each
/// tensor just before its bytes are written. A produced tensor whose dtype or shape differs from
/// its spec is an error. The file is written under a temporary name and renamed into place.
pub fn write_streaming(
    path: &Path,
    specs: &[TensorSpec],
    metadata: &BTreeMap<String, String>,
    produce: &mut dyn FnMut(&TensorSpec) -> Result<Tensor>,
) -> Result<()> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::json!(metadata));
    }
    let mut offset = 0usize;
    for s in specs {
        let end = offset + s.bytes();
        header.insert(
            s.name.clone(),
            serde_json::json!({
                "dtype": st_dtype(s.dtype)?,
                "shape": s.shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    let mut text = serde_json::to_string(&header).expect("header serialises");
    // The data starts 8-byte aligned, as the safetensors writer pads it.
    while !(8 + text.len()).is_multiple_of(8) {
        text.push(' ');
    }
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map_or("weights".into(), |n| n.to_string_lossy())
    ));
    let written = write_body(&tmp, path, &text, specs, produce);
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

fn write_body(
    tmp: &Path,
    path: &Path,
    text: &str,
    specs: &[TensorSpec],
    produce: &mut dyn FnMut(&TensorSpec) -> Result<Tensor>,
) -> Result<()> {
    let tmp = tmp.to_path_buf();
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut w = std::io::BufWriter::with_capacity(8 << 20, file);
    w.write_all(&(text.len() as u64).to_le_bytes())
        .map_err(io(&tmp))?;
    w.write_all(text.as_bytes()).map_err(io(&tmp))?;
    for s in specs {
        let t = produce(s)?;
        if t.dtype() != s.dtype || t.dims() != s.shape.as_slice() {
            return Err(ModelError::Weights {
                path: path.to_path_buf(),
                message: format!(
                    "tensor `{}`: produced {:?} {:?}, the header says {:?} {:?}",
                    s.name,
                    t.dtype(),
                    t.dims(),
                    s.dtype,
                    s.shape
                ),
            });
        }
        // candle's safetensors view: the tensor's little-endian bytes, copied to the host.
        w.write_all(&safetensors::View::data(&t.contiguous()?))
            .map_err(io(&tmp))?;
    }
    let file = w.into_inner().map_err(|e| ModelError::Io {
        path: tmp.clone(),
        error: e.into_error(),
    })?;
    file.sync_all().map_err(io(&tmp))?;
    Ok(())
}

/// Splits `specs` (kept in order) into shards of at most `max_shard_bytes` each (a tensor larger
/// than that gets a shard of its own), as transformers' `max_shard_size` does.
pub fn plan_shards(specs: &[TensorSpec], max_shard_bytes: usize) -> Vec<Vec<TensorSpec>> {
    let mut shards: Vec<Vec<TensorSpec>> = Vec::new();
    let mut size = 0usize;
    for s in specs {
        let b = s.bytes();
        if shards.is_empty() || (size + b > max_shard_bytes && size > 0) {
            shards.push(Vec::new());
            size = 0;
        }
        shards.last_mut().expect("a shard").push(s.clone());
        size += b;
    }
    shards
}

/// Writes an HF weight set into `dir`: one `model.safetensors` when everything fits in
/// `max_shard_bytes`, else `model-0000i-of-0000n.safetensors` shards and the index. Returns the
/// files written (relative names).
pub fn write_model_weights(
    dir: &Path,
    specs: &[TensorSpec],
    max_shard_bytes: usize,
    produce: &mut dyn FnMut(&TensorSpec) -> Result<Tensor>,
) -> Result<Vec<String>> {
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let shards = plan_shards(specs, max_shard_bytes);
    if shards.len() <= 1 {
        write_streaming(&dir.join(SINGLE_FILE), specs, &meta, produce)?;
        return Ok(vec![SINGLE_FILE.to_string()]);
    }
    let n = shards.len();
    let mut weight_map = serde_json::Map::new();
    let mut files = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let name = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
        write_streaming(&dir.join(&name), shard, &meta, produce)?;
        for s in shard {
            weight_map.insert(s.name.clone(), serde_json::json!(name));
        }
        files.push(name);
    }
    let total: usize = specs.iter().map(TensorSpec::bytes).sum();
    let index = serde_json::json!({
        "metadata": { "total_size": total },
        "weight_map": weight_map,
    });
    let mut text = serde_json::to_string_pretty(&index).expect("index serialises");
    text.push('\n');
    let p = dir.join(INDEX_FILE);
    std::fs::write(&p, text).map_err(io(&p))?;
    files.push(INDEX_FILE.to_string());
    Ok(files)
}

/// `5GB`, `500MB`, `2GiB`, `1000000` (bytes) as transformers' `max_shard_size` reads them
/// (GB = 10^9, GiB = 2^30).
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 5GB, 500MB, 2GiB)"))?;
    let mult = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KIB" => 1024.0,
        "MIB" => 1024.0 * 1024.0,
        "GIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("`{s}`: unknown size unit `{unit}`")),
    };
    if n.is_nan() || n <= 0.0 {
        return Err(format!("`{s}`: a size must be positive"));
    }
    Ok((n * mult) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn specs() -> Vec<TensorSpec> {
        vec![
            TensorSpec {
                name: "b.weight".into(),
                dtype: DType::BF16,
                shape: vec![3, 5],
            },
            TensorSpec {
                name: "a.weight".into(),
                dtype: DType::F32,
                shape: vec![7],
            },
            TensorSpec {
                name: "c.weight".into(),
                dtype: DType::BF16,
                shape: vec![2, 2, 3],
            },
        ]
    }

    fn value(s: &TensorSpec) -> Tensor {
        let n: usize = s.shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 1.0).collect();
        Tensor::from_vec(v, s.shape.clone(), &Device::Cpu)
            .unwrap()
            .to_dtype(s.dtype)
            .unwrap()
    }

    #[test]
    fn streamed_file_reads_back_with_the_safetensors_crate_and_k2() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.safetensors");
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        write_streaming(&p, &specs(), &meta, &mut |s| Ok(value(s))).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.len(), 3);
        let mut back = BTreeMap::new();
        crate::weights::load_file(&p, DType::F32, &Device::Cpu, &mut back).unwrap();
        for s in specs() {
            let want = crate::host_f32(&value(&s)).unwrap();
            let got = crate::host_f32(&back[&s.name]).unwrap();
            assert_eq!(got, want, "{}", s.name);
            assert_eq!(back[&s.name].dims(), s.shape.as_slice());
        }
        // Stored dtypes are kept when asked for.
        let mut stored = BTreeMap::new();
        crate::weights::load_file(&p, DType::BF16, &Device::Cpu, &mut stored).unwrap();
        assert_eq!(stored["c.weight"].dtype(), DType::BF16);
    }

    #[test]
    fn shards_split_at_the_size_and_the_index_lists_every_tensor() {
        let dir = tempfile::tempdir().unwrap();
        // 30 + 28 + 24 bytes: a 60-byte limit gives [b, a] and [c].
        let files = write_model_weights(dir.path(), &specs(), 60, &mut |s| Ok(value(s))).unwrap();
        assert_eq!(
            files,
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                INDEX_FILE
            ]
        );
        let all = crate::weights::load_tensors(dir.path(), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(all.len(), 3);
        let one = tempfile::tempdir().unwrap();
        let files =
            write_model_weights(one.path(), &specs(), 1 << 20, &mut |s| Ok(value(s))).unwrap();
        assert_eq!(files, [SINGLE_FILE]);
    }

    #[test]
    fn a_produced_tensor_must_match_its_spec() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        let e = write_streaming(&p, &specs(), &BTreeMap::new(), &mut |s| {
            Ok(value(s).to_dtype(DType::F32).unwrap())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("b.weight") && e.contains("BF16"), "{e}");
        assert!(!p.exists());
    }

    #[test]
    fn sizes_parse_like_transformers() {
        assert_eq!(parse_size("5GB").unwrap(), 5_000_000_000);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("five").is_err());
        assert!(parse_size("5XB").unwrap_err().contains("XB"));
    }
}
