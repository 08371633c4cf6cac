//! The training configuration (TOML). Unknown keys and wrong types are errors that name the
//! field, file, line and column; impossible combinations are rejected before anything is written.

use std::path::Path;

use k2_archive::RunLayout;
use k2_model::{dtype_name, preset, DTypeSpec, LlamaConfig};
use serde::{Deserialize, Serialize};

use crate::error::{io_err, Result, TrainError};
use crate::injection::InjectFacts;
use crate::spike::{InjectSpike, SpikeSection};

/// The built-in default run: small enough for a few minutes on 2 CPU cores, shaped like K2's recipe.
pub const DEFAULT_CONFIG: &str = include_str!("../../configs/default.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name, recorded in the manifest.
    pub name: String,
    /// Seed of weight initialisation and of the trainer's RNG.
    pub seed: u64,
    pub model: ModelSection,
    pub tokenizer: TokenizerSection,
    pub data: DataSection,
    pub train: LoopSection,
    pub optim: OptimSection,
    /// Loss-spike detection and the response to a malignant spike (defaults when absent).
    #[serde(default)]
    pub spike: SpikeSection,
    /// Reproducible instabilities for exercising the spike path (none by default).
    #[serde(
        default,
        rename = "inject_spike",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inject_spikes: Vec<InjectSpike>,
    /// Fictional facts injected into the training stream (none by default).
    #[serde(
        default,
        rename = "inject_facts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inject_facts: Vec<InjectFacts>,
    /// Training stages in order (K2: stage 1 at 2K context, stage 2 long-context, math/code-heavy).
    #[serde(rename = "stage")]
    pub stages: Vec<StageSection>,
}

/// `preset` plus optional overrides of single fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub preset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_hidden_layers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_attention_heads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initializer_range: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSection {
    /// Vocabulary of the byte-level BPE trained on the corpus (includes 3 specials).
    pub vocab_size: usize,
    /// Documents per source used to train the tokenizer.
    pub train_docs_per_source: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Chunk `c` is shuffled with seed `shuffle_seed_base + c` (K2: 11111 + chunk id).
    pub shuffle_seed_base: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopSection {
    /// Sequences per optimizer step.
    pub global_batch: usize,
    /// Sequences per forward/backward; `global_batch / micro_batch` steps of gradient accumulation.
    pub micro_batch: usize,
    /// Optimizer steps per checkpoint interval; one interval consumes exactly one data chunk.
    pub steps_per_checkpoint: u64,
    /// CPU threads for matrix products (resume bit-exactly needs the same value).
    pub threads: usize,
    /// Compute dtype: `f32` (the default when absent), or `bf16`/`f16` for mixed precision as K2
    /// trained: the forward and backward in that dtype, norms, softmax and the loss in f32, master
    /// weights and AdamW moments in f32. Checkpoints hold the f32 master weights either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimSection {
    pub lr: f64,
    /// Cosine decays to `lr * min_lr_ratio` (K2: 1.5e-4 -> 1.5e-5, ratio 0.1).
    pub min_lr_ratio: f64,
    pub warmup_steps: u64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices only (not to norm gains).
    pub weight_decay: f64,
    /// Global gradient-norm clipping threshold.
    pub clip_grad_norm: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSection {
    pub name: String,
    /// Number of chunks (= checkpoint intervals) in this stage.
    pub chunks: u32,
    /// Tokens per training sample in this stage.
    pub seq_len: usize,
    pub rope_theta: f64,
    #[serde(rename = "source")]
    pub sources: Vec<SourceMix>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceMix {
    /// A corpus source (`k2_corpus::source_names()`).
    pub name: String,
    /// Fraction of every chunk's samples drawn from this source.
    pub share: f64,
    /// K2's repeat factor: each unique sample appears in `repeat` chunks (0.5: half are never used).
    pub repeat: f64,
}

impl TrainConfig {
    pub fn default_config() -> Self {
        Self::from_toml_str(DEFAULT_CONFIG, Path::new("<built-in default config>"))
            .expect("the built-in default config is valid")
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates; errors name `path`, the line and column, and the field.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        let cfg: TrainConfig = k2_archive::parse_toml(path, text).map_err(|e| match e {
            k2_archive::ArchiveError::Toml {
                location,
                field,
                message,
                ..
            } => TrainError::Config {
                path: path.to_path_buf(),
                message: format!(
                    "{}{}{message}",
                    location.map_or(String::new(), |l| format!(
                        "line {}, column {}: ",
                        l.line, l.column
                    )),
                    field.map_or(String::new(), |f| format!("field `{f}`: "))
                ),
            },
            other => TrainError::Config {
                path: path.to_path_buf(),
                message: other.to_string(),
            },
        })?;
        cfg.validate().map_err(|e| TrainError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// The compute dtype of `train.dtype` (f32 when absent).
    pub fn compute_dtype(&self) -> candle_core::DType {
        self.train
            .dtype
            .as_deref()
            .and_then(|d| k2_model::device::parse_float_dtype(d).ok())
            .unwrap_or(candle_core::DType::F32)
    }

    /// sha256 of the canonical TOML: identifies the config in checkpoints and manifests.
    pub fn hash(&self) -> String {
        k2_archive::sha256_bytes(self.to_toml().as_bytes())
    }

    /// The model architecture for stage `stage` (RoPE theta and context follow the stage).
    pub fn model_config(&self, stage: usize) -> Result<LlamaConfig> {
        let m = &self.model;
        let mut c = preset(&m.preset).map_err(|e| field("model.preset", e.to_string()))?;
        c.vocab_size = self.tokenizer.vocab_size;
        if let Some(v) = m.hidden_size {
            c.hidden_size = v;
        }
        if let Some(v) = m.intermediate_size {
            c.intermediate_size = v;
        }
        if let Some(v) = m.num_hidden_layers {
            c.num_hidden_layers = v;
        }
        if let Some(v) = m.num_attention_heads {
            c.num_attention_heads = v;
        }
        if m.num_key_value_heads.is_some() {
            c.num_key_value_heads = m.num_key_value_heads;
        }
        if let Some(v) = m.initializer_range {
            c.initializer_range = v;
        }
        let st = &self.stages[stage];
        c.rope_theta = st.rope_theta;
        c.max_position_embeddings = st.seq_len;
        c.bos_token_id = Some(crate::tokenizer_train::BOS_ID);
        c.eos_token_id = Some(crate::tokenizer_train::EOS_ID);
        c.validate().map_err(|e| match e {
            k2_model::ModelError::InvalidConfig { field: f, reason } => {
                field(&format!("model.{f}"), reason)
            }
            other => field("model", other.to_string()),
        })?;
        Ok(c)
    }

    pub fn total_chunks(&self) -> u32 {
        self.stages.iter().map(|s| s.chunks).sum()
    }

    pub fn total_steps(&self) -> u64 {
        self.total_chunks() as u64 * self.train.steps_per_checkpoint
    }

    pub fn samples_per_chunk(&self) -> usize {
        self.train.global_batch * self.train.steps_per_checkpoint as usize
    }

    /// The stage a chunk id belongs to (chunk ids are numbered stage after stage).
    pub fn stage_of_chunk(&self, chunk: u32) -> usize {
        let mut end = 0;
        for (i, s) in self.stages.iter().enumerate() {
            end += s.chunks;
            if chunk < end {
                return i;
            }
        }
        self.stages.len() - 1
    }

    /// First chunk id of stage `stage`.
    pub fn first_chunk(&self, stage: usize) -> u32 {
        self.stages[..stage].iter().map(|s| s.chunks).sum()
    }

    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        if t.global_batch == 0 {
            return Err(field("train.global_batch", "must be at least 1".into()));
        }
        if t.micro_batch == 0 || !t.global_batch.is_multiple_of(t.micro_batch) {
            return Err(field(
                "train.micro_batch",
                format!(
                    "{} must divide train.global_batch {}",
                    t.micro_batch, t.global_batch
                ),
            ));
        }
        if t.steps_per_checkpoint == 0 {
            return Err(field(
                "train.steps_per_checkpoint",
                "must be at least 1".into(),
            ));
        }
        if t.threads == 0 {
            return Err(field("train.threads", "must be at least 1".into()));
        }
        if let Some(d) = &t.dtype {
            k2_model::device::parse_float_dtype(d).map_err(|e| field("train.dtype", e))?;
        }
        let o = &self.optim;
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            return Err(field("optim.lr", format!("{} must be positive", o.lr)));
        }
        if !(0.0..=1.0).contains(&o.min_lr_ratio) {
            return Err(field(
                "optim.min_lr_ratio",
                format!("{} must be in [0, 1]", o.min_lr_ratio),
            ));
        }
        for (f, b) in [("optim.beta1", o.beta1), ("optim.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(field(f, format!("{b} must be in [0, 1)")));
            }
        }
        if !positive(o.eps) {
            return Err(field("optim.eps", format!("{} must be positive", o.eps)));
        }
        if !(positive(o.weight_decay) || o.weight_decay == 0.0) {
            return Err(field(
                "optim.weight_decay",
                format!("{} must be >= 0", o.weight_decay),
            ));
        }
        if !positive(o.clip_grad_norm) {
            return Err(field(
                "optim.clip_grad_norm",
                format!("{} must be positive", o.clip_grad_norm),
            ));
        }
        if self.tokenizer.vocab_size < 260 {
            return Err(field(
                "tokenizer.vocab_size",
                format!(
                    "{} is too small for a byte-level BPE (256 bytes + 3 specials)",
                    self.tokenizer.vocab_size
                ),
            ));
        }
        if self.tokenizer.train_docs_per_source == 0 {
            return Err(field(
                "tokenizer.train_docs_per_source",
                "must be at least 1".into(),
            ));
        }
        if self.stages.is_empty() {
            return Err(field("stage", "at least one [[stage]] is required".into()));
        }
        for (i, s) in self.stages.iter().enumerate() {
            let p = format!("stage[{i}]");
            if s.chunks == 0 {
                return Err(field(&format!("{p}.chunks"), "must be at least 1".into()));
            }
            if s.seq_len < 2 {
                return Err(field(
                    &format!("{p}.seq_len"),
                    format!("{} must be at least 2", s.seq_len),
                ));
            }
            if s.sources.is_empty() {
                return Err(field(
                    &format!("{p}.source"),
                    "at least one [[stage.source]] is required".into(),
                ));
            }
            let mut total = 0.0;
            for (j, src) in s.sources.iter().enumerate() {
                let q = format!("{p}.source[{j}]");
                if k2_corpus::source(&src.name).is_none() {
                    return Err(field(
                        &format!("{q}.name"),
                        format!(
                            "unknown source `{}` (known: {})",
                            src.name,
                            k2_corpus::source_names().join(", ")
                        ),
                    ));
                }
                if !(src.share > 0.0 && src.share <= 1.0) {
                    return Err(field(
                        &format!("{q}.share"),
                        format!("{} must be in (0, 1]", src.share),
                    ));
                }
                if !(src.repeat > 0.0 && src.repeat <= s.chunks as f64) {
                    return Err(field(
                        &format!("{q}.repeat"),
                        format!(
                            "{} must be in (0, {}] (the stage's chunk count)",
                            src.repeat, s.chunks
                        ),
                    ));
                }
                total += src.share;
            }
            if (total - 1.0).abs() > 1e-6 {
                return Err(field(
                    &format!("{p}.source"),
                    format!("shares sum to {total}, not 1"),
                ));
            }
        }
        for i in 0..self.stages.len() {
            self.model_config(i)?;
        }
        self.spike.validate()?;
        for (i, inj) in self.inject_spikes.iter().enumerate() {
            if inj.chunk >= self.total_chunks() {
                return Err(field(
                    &format!("inject_spike[{i}].chunk"),
                    format!(
                        "{} is not a chunk id (the run has {})",
                        inj.chunk,
                        self.total_chunks()
                    ),
                ));
            }
            if !(inj.lr_multiplier.is_finite() && inj.lr_multiplier > 0.0) {
                return Err(field(
                    &format!("inject_spike[{i}].lr_multiplier"),
                    format!("{} must be positive", inj.lr_multiplier),
                ));
            }
        }
        for (i, inj) in self.inject_facts.iter().enumerate() {
            inj.validate(
                i,
                self.total_chunks(),
                self.train.global_batch,
                self.train.steps_per_checkpoint,
            )?;
        }
        crate::injection::check_disjoint(&self.inject_facts)?;
        Ok(())
    }
}

/// True for finite numbers above zero (false for NaN).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn field(name: &str, reason: String) -> TrainError {
    TrainError::Field {
        field: name.to_string(),
        reason,
    }
}

/// `cfg` with `train.dtype` set from `dtype` (unchanged for `Auto`; f32 is the default and is not
/// written, so an f32 run's config and hash are those of a config without the field).
pub fn with_dtype(cfg: &TrainConfig, dtype: DTypeSpec) -> TrainConfig {
    let mut cfg = cfg.clone();
    if let DTypeSpec::Is(d) = dtype {
        cfg.train.dtype = (d != candle_core::DType::F32).then(|| dtype_name(d).to_string());
    }
    cfg
}

/// The run directory's config, for commands that read a run.
pub fn run_config(run_dir: &Path) -> Result<TrainConfig> {
    TrainConfig::load(&RunLayout::new(run_dir).config_path())
}
