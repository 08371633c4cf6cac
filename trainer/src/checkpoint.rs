//! Writing and reading checkpoints. A checkpoint directory is a valid HF LLaMA model
//! (`config.json`, `generation_config.json`, `model.safetensors`, `tokenizer.json`,
//! `tokenizer_config.json`) plus `trainer_state/` (`state.json`, `optimizer.safetensors`).
//! It is written under a temporary name, fsynced and renamed; only then is it added to the
//! manifest, so a crash never leaves a half checkpoint listed.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use k2_archive::{CheckpointEntry, CheckpointStatus, RunLayout};
use k2_model::LlamaConfig;

use crate::error::{io_err, Result, TrainError};
use crate::state::TrainerState;

pub const STATE_DIR: &str = "trainer_state";
pub const STATE_FILE: &str = "trainer_state/state.json";
pub const OPTIM_FILE: &str = "trainer_state/optimizer.safetensors";

pub struct CheckpointData<'a> {
    pub model_cfg: &'a LlamaConfig,
    pub weights: &'a BTreeMap<String, Tensor>,
    pub optimizer: &'a BTreeMap<String, Tensor>,
    pub state: &'a TrainerState,
    pub tokenizer_json: &'a str,
}

fn tokenizer_config(cfg: &LlamaConfig) -> String {
    let v = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": crate::tokenizer_train::BOS,
        "eos_token": crate::tokenizer_train::EOS,
        "pad_token": crate::tokenizer_train::PAD,
        "add_bos_token": false,
        "add_eos_token": false,
        "model_max_length": cfg.max_position_embeddings,
        "clean_up_tokenization_spaces": false,
    });
    let mut s = serde_json::to_string_pretty(&v).expect("json serialises");
    s.push('\n');
    s
}

/// Writes checkpoint `name` atomically and returns its manifest entry (without wall time).
pub fn write_checkpoint(
    layout: &RunLayout,
    name: &str,
    data: &CheckpointData,
    chunks: Vec<u32>,
    status: CheckpointStatus,
) -> Result<CheckpointEntry> {
    let final_dir = layout.ckpt_dir(name);
    let tmp = k2_archive::tmp_dir_for(&final_dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir_all(tmp.join(STATE_DIR)).map_err(io_err(&tmp))?;
    let write = |rel: &str, bytes: &[u8]| -> Result<()> {
        let p = tmp.join(rel);
        std::fs::write(&p, bytes).map_err(io_err(&p))
    };
    write("config.json", data.model_cfg.to_hf_json().as_bytes())?;
    write(
        "generation_config.json",
        data.model_cfg.generation_config_json().as_bytes(),
    )?;
    write(
        "model.safetensors",
        &k2_model::safetensors_bytes(data.weights)?,
    )?;
    write("tokenizer.json", data.tokenizer_json.as_bytes())?;
    write(
        "tokenizer_config.json",
        tokenizer_config(data.model_cfg).as_bytes(),
    )?;
    let mut state = serde_json::to_string_pretty(data.state).expect("state serialises");
    state.push('\n');
    write(STATE_FILE, state.as_bytes())?;
    write(OPTIM_FILE, &k2_model::safetensors_bytes(data.optimizer)?)?;
    k2_archive::commit_dir_atomic(&tmp, &final_dir)?;
    let files = k2_archive::hash_tree(&final_dir)?;
    Ok(CheckpointEntry {
        name: name.to_string(),
        step: data.state.step,
        tokens: data.state.tokens_seen,
        chunks,
        stage: data.state.stage as u32 + 1,
        status,
        wall_time_s: 0.0,
        note: None,
        files,
        injected: Vec::new(),
    })
}

/// Reads `trainer_state/state.json` of a checkpoint directory.
pub fn read_state(ckpt_dir: &Path) -> Result<TrainerState> {
    let p = ckpt_dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Data {
        path: p,
        message: format!("line {}: {e}", e.line()),
    })
}

/// Reads the weights (f32, onto `dev`) and the optimizer moments (host) of a checkpoint directory.
pub fn read_tensors(
    ckpt_dir: &Path,
    dev: &Device,
) -> Result<(BTreeMap<String, Tensor>, BTreeMap<String, Tensor>)> {
    let weights = k2_model::load_tensors(ckpt_dir, DType::F32, dev)?;
    let p = ckpt_dir.join(OPTIM_FILE);
    let mut optim = BTreeMap::new();
    k2_model::weights::load_file(&p, DType::F32, &Device::Cpu, &mut optim)?;
    Ok((weights, optim))
}
