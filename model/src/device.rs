//! Where and in which float type k2 computes: `--device auto|cpu|cuda|cuda:N` and
//! `--dtype auto|f32|bf16|f16`, resolved to candle's `Device` and `DType`.
//!
//! `auto` device is CUDA when this binary was built with the `cuda` feature and a GPU answers,
//! else the CPU. `auto` dtype is decided by the caller (eval: the checkpoint's `torch_dtype`, as
//! lm-eval's HF backend with `dtype=auto`; training: f32 unless the config says otherwise).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use candle_core::{DType, Device};

use crate::error::{ModelError, Result};

/// A device as the user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Auto,
    Cpu,
    /// CUDA device ordinal.
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(format!(
                    "unknown device `{s}` (expected auto, cpu, cuda or cuda:N)"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether this binary was built with the `cuda` feature.
pub fn cuda_built() -> bool {
    candle_core::utils::cuda_is_available()
}

impl DeviceSpec {
    /// The candle device. `Auto` falls back to the CPU when CUDA is not built in or no GPU answers;
    /// an explicit `cuda` is an error then.
    pub fn resolve(&self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => {
                if cuda_built() {
                    if let Ok(d) = Device::new_cuda(0) {
                        return Ok(d);
                    }
                }
                Ok(Device::Cpu)
            }
            Self::Cuda(n) => {
                if !cuda_built() {
                    return Err(ModelError::Device(format!(
                        "--device {self}: this k2 binary was built without CUDA \
                         (build it with scripts/build-cuda.sh, i.e. `cargo build --release --features cuda`)"
                    )));
                }
                Device::new_cuda(*n).map_err(|e| {
                    ModelError::Device(format!("--device {self}: cannot open the GPU: {e}"))
                })
            }
        }
    }
}

/// The kind of a device as recorded with results and replays: `cpu` or `cuda`.
pub fn device_kind(dev: &Device) -> &'static str {
    match dev {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Metal(_) => "metal",
    }
}

/// A float type as the user names it; `Auto` leaves the choice to the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DTypeSpec {
    #[default]
    Auto,
    Is(DType),
}

impl FromStr for DTypeSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        parse_float_dtype(s).map(Self::Is)
    }
}

impl fmt::Display for DTypeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Is(d) => write!(f, "{}", dtype_name(*d)),
        }
    }
}

impl DTypeSpec {
    /// The chosen dtype, or `default` for `Auto`.
    pub fn or(self, default: DType) -> DType {
        match self {
            Self::Auto => default,
            Self::Is(d) => d,
        }
    }
}

/// `f32|float32|fp32`, `bf16|bfloat16`, `f16|float16|fp16|half`.
pub fn parse_float_dtype(s: &str) -> std::result::Result<DType, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "f32" | "fp32" | "float32" | "float" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "fp16" | "float16" | "half" => Ok(DType::F16),
        _ => Err(format!("unknown dtype `{s}` (expected f32, bf16 or f16)")),
    }
}

/// k2's short name of a float dtype (`f32`, `bf16`, `f16`).
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => "f64",
        other => other.as_str(),
    }
}

/// transformers' name of a dtype in `config.json` (`torch_dtype`).
pub fn torch_dtype_name(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// The `torch_dtype` (or transformers 5's `dtype`) of an HF `config.json`, when it names a float
/// type k2 computes in. Absent or unknown: `None`.
pub fn config_torch_dtype(config_json: &Path) -> Result<Option<DType>> {
    let text = std::fs::read_to_string(config_json).map_err(|error| ModelError::Io {
        path: config_json.to_path_buf(),
        error,
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::ConfigFile {
        path: config_json.to_path_buf(),
        message: format!("line {}: {e}", e.line()),
    })?;
    let name = v
        .get("torch_dtype")
        .or_else(|| v.get("dtype"))
        .and_then(|d| d.as_str());
    Ok(name.and_then(|n| parse_float_dtype(n).ok()))
}

/// Where and in which dtype a command runs models: the device resolved once, the dtype as asked.
#[derive(Debug, Clone)]
pub struct Placement {
    pub device: Device,
    pub dtype: DTypeSpec,
}

impl Default for Placement {
    /// The CPU, each model in its own `torch_dtype`.
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: DTypeSpec::Auto,
        }
    }
}

impl Placement {
    pub fn new(device: DeviceSpec, dtype: DTypeSpec) -> Result<Self> {
        Ok(Self {
            device: device.resolve()?,
            dtype,
        })
    }

    /// The dtype to run the HF model in `dir` in: the one asked for, else its `config.json`'s
    /// `torch_dtype` (lm-eval's `dtype=auto`), else f32.
    pub fn dtype_for(&self, dir: &Path) -> Result<DType> {
        Ok(match self.dtype {
            DTypeSpec::Is(d) => d,
            DTypeSpec::Auto => config_torch_dtype(&dir.join("config.json"))?.unwrap_or(DType::F32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("CPU".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        let e = "cuda:x".parse::<DeviceSpec>().unwrap_err();
        assert!(e.contains("cuda:x") && e.contains("cuda:N"), "{e}");
        assert!("tpu".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn dtype_names_parse() {
        assert_eq!(
            "bf16".parse::<DTypeSpec>().unwrap(),
            DTypeSpec::Is(DType::BF16)
        );
        assert_eq!(
            "bfloat16".parse::<DTypeSpec>().unwrap(),
            DTypeSpec::Is(DType::BF16)
        );
        assert_eq!(
            "fp16".parse::<DTypeSpec>().unwrap(),
            DTypeSpec::Is(DType::F16)
        );
        assert_eq!("auto".parse::<DTypeSpec>().unwrap(), DTypeSpec::Auto);
        assert_eq!(DTypeSpec::Auto.or(DType::F32), DType::F32);
        assert!("int8".parse::<DTypeSpec>().unwrap_err().contains("int8"));
    }

    #[test]
    fn cpu_and_auto_resolve_without_a_gpu() {
        assert!(matches!(DeviceSpec::Cpu.resolve().unwrap(), Device::Cpu));
        let auto = DeviceSpec::Auto.resolve().unwrap();
        if !cuda_built() {
            assert!(matches!(auto, Device::Cpu));
            let e = DeviceSpec::Cuda(0).resolve().unwrap_err().to_string();
            assert!(e.contains("built without CUDA"), "{e}");
        }
    }

    #[test]
    fn torch_dtype_is_read_from_config_json() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, r#"{"torch_dtype": "bfloat16"}"#).unwrap();
        assert_eq!(config_torch_dtype(&p).unwrap(), Some(DType::BF16));
        std::fs::write(&p, r#"{"dtype": "float16"}"#).unwrap();
        assert_eq!(config_torch_dtype(&p).unwrap(), Some(DType::F16));
        std::fs::write(&p, r#"{"hidden_size": 8}"#).unwrap();
        assert_eq!(config_torch_dtype(&p).unwrap(), None);
        std::fs::write(&p, "{").unwrap();
        let e = config_torch_dtype(&p).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("line 1"), "{e}");
    }
}
