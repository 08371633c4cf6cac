//! The in-memory state of a run between two optimizer steps, and one checkpoint interval of
//! training. `k2 train` (run.rs) and `k2 verify` (replay.rs) both drive this, so a replay runs
//! exactly the code the run ran.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use k2_archive::{ChunkOrder, DataIndex, Manifest, RunLayout, SpikeEvent, SpikeKind};
use k2_model::{Arch, Decoder};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{read_state, read_tensors, CheckpointData};
use crate::config::TrainConfig;
use crate::dataset::{read_chunk, read_index};
use crate::error::{io_err, Result, TrainError};
use crate::init::init_weights;
use crate::loss::Backprop;
use crate::metrics::StepMetrics;
use crate::optim::{AdamW, AdamWConfig};
use crate::schedule::Schedule;
use crate::spike::{DetectorState, StepSignal, Verdict};
use crate::state::{DataCursor, RngState, ScheduleState, TrainerState};

/// How one interval ended.
#[derive(Debug, Clone, PartialEq)]
pub enum IntervalEnd {
    /// All steps of the interval were taken.
    Completed,
    /// A malignant spike under the `rollback` policy stopped the interval at this event.
    Malignant(Box<SpikeEvent>),
}

/// What happened during one step, for the caller to log.
pub struct StepReport<'a> {
    pub metrics: &'a StepMetrics,
    /// A spike resolved at this step (benign, or malignant under the `log` policy).
    pub resolved: Option<&'a SpikeEvent>,
    /// The model after the step (over the f32 master weights), for probes scored during training.
    pub model: &'a Decoder,
}

pub struct Session {
    pub cfg: TrainConfig,
    pub dev: Device,
    pub index: DataIndex,
    pub data_dir: std::path::PathBuf,
    pub tokenizer_json: String,
    pub vars: BTreeMap<String, Var>,
    pub opt: AdamW,
    pub state: TrainerState,
    pub stage: usize,
    /// Set when the loaded checkpoint was trained on another device kind than `dev`: the run goes
    /// on, but not bit for bit with what that device would have computed.
    pub device_change: Option<String>,
    model: Decoder,
    train_rng: ChaCha8Rng,
    backprop: Backprop,
}

/// Rollbacks that restarted training at or before `position`: the attempt that trained the
/// surviving checkpoint at that position.
pub fn attempt_at(manifest: &Manifest, position: u32) -> u32 {
    manifest
        .spikes
        .iter()
        .filter(|e| e.is_rollback() && e.deferred_from_position.is_some_and(|p| p <= position))
        .count() as u32
}

/// The peak learning rate used at training position `position`: the config's, times
/// `spike.lr_factor` for every rollback that restarted at or before it.
pub fn peak_lr_at(cfg: &TrainConfig, manifest: &Manifest, position: u32) -> f64 {
    cfg.optim.lr
        * cfg
            .spike
            .lr_factor
            .powi(attempt_at(manifest, position) as i32)
}

impl Session {
    /// The state saved in checkpoint `ckpt` of the run, or a fresh initialisation (`None`), with
    /// master weights and optimizer moments on `dev`.
    pub fn load(
        layout: &RunLayout,
        cfg: &TrainConfig,
        ckpt: Option<&str>,
        dev: &Device,
    ) -> Result<Session> {
        let dev = dev.clone();
        let index = read_index(&layout.data_dir())?;
        let tokenizer_json = std::fs::read_to_string(layout.tokenizer_path())
            .map_err(io_err(layout.tokenizer_path()))?;
        let order = ChunkOrder::load(&layout.chunk_order_path())?;
        let (weights, optim_state, state) = match ckpt {
            Some(name) => {
                let dir = layout.ckpt_dir(name);
                let state = read_state(&dir)?;
                if state.config_hash != cfg.hash() {
                    return Err(TrainError::Resume(format!(
                        "{}: config hash {} does not match the run's config {}",
                        dir.display(),
                        state.config_hash,
                        cfg.hash()
                    )));
                }
                let (w, o) = read_tensors(&dir, &dev)?;
                (w, Some(o), state)
            }
            None => {
                let first_stage = cfg.stage_of_chunk(order.chunk_at(0).unwrap_or(0));
                let w = init_weights(&cfg.model_config(first_stage)?, cfg.seed, &dev)?;
                (w, None, initial_state(cfg, &order, first_stage))
            }
        };
        let mut state = state;
        let kind = k2_model::device_kind(&dev);
        let trained_on = state.device.clone().unwrap_or_else(|| "cpu".into());
        let device_change = (ckpt.is_some() && trained_on != kind).then(|| {
            format!(
                "{} was trained on {trained_on}; continuing on {kind} is not bit-exact with {trained_on}",
                ckpt.unwrap_or("the checkpoint")
            )
        });
        state.device = (kind != "cpu").then(|| kind.to_string());
        let mut train_rng = ChaCha8Rng::seed_from_u64(state.rng.train_seed);
        train_rng.set_word_pos(state.rng.train_word_pos.parse::<u128>().unwrap_or(0));
        let vars: BTreeMap<String, Var> = weights
            .into_iter()
            .map(|(k, t)| Ok((k, Var::from_tensor(&t)?)))
            .collect::<Result<_>>()?;
        let mut opt = AdamW::new(
            &vars,
            AdamWConfig {
                beta1: cfg.optim.beta1,
                beta2: cfg.optim.beta2,
                eps: cfg.optim.eps,
                weight_decay: cfg.optim.weight_decay,
            },
        )?;
        if let Some(o) = &optim_state {
            opt.load_state(o, state.step)?;
        }
        let stage = state.stage;
        let model = model_from(cfg, &vars, stage, DType::F32)?;
        Ok(Session {
            cfg: cfg.clone(),
            dev,
            index,
            data_dir: layout.data_dir(),
            tokenizer_json,
            vars,
            opt,
            state,
            stage,
            device_change,
            model,
            train_rng,
            backprop: Backprop::new(),
        })
    }

    /// Trains the interval at `position` of `order` (`steps_per_checkpoint` steps on chunk
    /// `order[position]`), calling `on_step` after every step. Stops early on a malignant spike
    /// when the policy is `rollback`.
    pub fn train_interval(
        &mut self,
        order: &ChunkOrder,
        position: u32,
        peak_lr: f64,
        attempt: u32,
        on_step: &mut dyn FnMut(StepReport) -> Result<()>,
    ) -> Result<IntervalEnd> {
        let cfg = self.cfg.clone();
        let chunk = order.chunk_at(position).ok_or_else(|| {
            TrainError::Resume(format!(
                "chunk_order.toml has no position {position} ({} chunks)",
                order.len()
            ))
        })?;
        let chunk_stage = cfg.stage_of_chunk(chunk);
        if chunk_stage != self.stage {
            self.stage = chunk_stage;
            self.model = model_from(&cfg, &self.vars, chunk_stage, DType::F32)?;
            self.state.detector.reset();
        }
        let info = self.index.chunk(&self.data_dir, chunk)?.clone();
        let samples = read_chunk(&self.data_dir, &info)?;
        let spc = cfg.train.steps_per_checkpoint;
        let (gb, mb) = (cfg.train.global_batch, cfg.train.micro_batch);
        if samples.len() < spc as usize * gb {
            return Err(TrainError::Data {
                path: k2_archive::chunk_file(&self.data_dir, chunk),
                message: format!(
                    "{} samples, an interval needs {}",
                    samples.len(),
                    spc as usize * gb
                ),
            });
        }
        let schedule = Schedule {
            peak: peak_lr,
            min: peak_lr * cfg.optim.min_lr_ratio,
            warmup: cfg.optim.warmup_steps,
            total: cfg.total_steps(),
        };
        self.state.schedule.peak_lr = schedule.peak;
        self.state.schedule.min_lr = schedule.min;
        let surge: Vec<_> = cfg
            .inject_spikes
            .iter()
            .filter(|i| i.chunk == chunk && !order.is_deferred(chunk))
            .collect();
        let n_micro = gb / mb;
        let seq = info.seq_len;
        let detect = cfg.spike.detect;
        for j in 0..spc as usize {
            let t0 = Instant::now();
            let step = self.state.step + 1;
            let batch = &samples[j * gb..(j + 1) * gb];
            let mut grads = self.opt.zero_grads()?;
            let mut loss_sum = 0.0f64;
            let compute = self.compute_model()?;
            for micro in batch.chunks(mb) {
                let ids: Vec<u32> = micro
                    .iter()
                    .flat_map(|s| s.token_ids.iter().copied())
                    .collect();
                let ids = Tensor::from_vec(ids, (micro.len(), seq), &self.dev)?;
                let model = compute.as_ref().unwrap_or(&self.model);
                let scale = 1.0 / n_micro as f32;
                let loss = self
                    .backprop
                    .micro_batch(model, &ids, &self.opt, &mut grads, scale)?;
                loss_sum += loss as f64;
            }
            let loss = loss_sum / n_micro as f64;
            let signal = |grad_norm: f64, update_ratio: f64| StepSignal {
                step,
                loss,
                grad_norm,
                update_ratio,
                chunk,
                position,
                attempt,
            };
            if !loss.is_finite() {
                if !detect || cfg.spike.policy == crate::spike::SpikePolicy::Log {
                    return Err(TrainError::NonFinite {
                        step,
                        loss: loss as f32,
                    });
                }
                // The step is not taken: the weights stay as they were before the bad batch.
                if let Verdict::Resolved(ev) = self
                    .state
                    .detector
                    .observe(&cfg.spike, signal(f64::NAN, f64::NAN))
                {
                    return Ok(IntervalEnd::Malignant(ev));
                }
                unreachable!("a non-finite loss always resolves as malignant");
            }
            let mut lr = schedule.lr(step);
            for s in &surge {
                if (s.offset..s.offset + s.steps).contains(&(j as u64)) {
                    lr *= s.lr_multiplier;
                }
            }
            let stats = self.opt.step(&mut grads, lr, cfg.optim.clip_grad_norm)?;
            self.state.step = step;
            self.state.tokens_seen += (gb * seq) as u64;
            self.state.schedule.last_lr = lr;
            let m = StepMetrics {
                step,
                loss,
                lr,
                grad_norm: stats.grad_norm,
                param_norm: stats.param_norm,
                update_norm: stats.update_norm,
                tokens_seen: self.state.tokens_seen,
                tokens_per_s: (gb * seq) as f64 / t0.elapsed().as_secs_f64().max(1e-9),
                chunk,
                stage: self.stage,
                attempt,
            };
            let verdict = if detect {
                let ratio = stats.update_norm / stats.param_norm.max(f64::MIN_POSITIVE);
                self.state
                    .detector
                    .observe(&cfg.spike, signal(stats.grad_norm, ratio))
            } else {
                Verdict::Normal
            };
            match verdict {
                Verdict::Resolved(ev)
                    if ev.kind == SpikeKind::Malignant
                        && cfg.spike.policy == crate::spike::SpikePolicy::Rollback =>
                {
                    on_step(StepReport {
                        metrics: &m,
                        resolved: None,
                        model: &self.model,
                    })?;
                    return Ok(IntervalEnd::Malignant(ev));
                }
                Verdict::Resolved(ev) => on_step(StepReport {
                    metrics: &m,
                    resolved: Some(&ev),
                    model: &self.model,
                })?,
                _ => on_step(StepReport {
                    metrics: &m,
                    resolved: None,
                    model: &self.model,
                })?,
            }
        }
        self.state.stage = self.stage;
        self.state.cursor = DataCursor {
            chunk_order: order.order.clone(),
            position: position + 1,
            sample_in_chunk: 0,
        };
        self.state.rng.train_word_pos = self.train_rng.get_word_pos().to_string();
        Ok(IntervalEnd::Completed)
    }

    /// For bf16/f16 compute, this step's model: the master weights cast to the compute dtype
    /// (the casts are in the autograd graph, so gradients reach the f32 masters). `None` for f32,
    /// whose model uses the master weights directly.
    fn compute_model(&self) -> Result<Option<Decoder>> {
        let dtype = self.cfg.compute_dtype();
        if dtype == DType::F32 {
            return Ok(None);
        }
        Ok(Some(model_from(&self.cfg, &self.vars, self.stage, dtype)?))
    }

    /// The weights as host tensors (names as in HF files).
    pub fn weights(&self) -> Result<BTreeMap<String, Tensor>> {
        self.vars
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_device(&Device::Cpu)?)))
            .collect()
    }

    /// Everything a checkpoint holds, for [`crate::checkpoint::write_checkpoint`].
    pub fn with_checkpoint_data<T>(
        &self,
        f: impl FnOnce(&CheckpointData) -> Result<T>,
    ) -> Result<T> {
        let weights = self.weights()?;
        let optimizer = self.opt.state_tensors()?;
        let model_cfg = self.cfg.model_config(self.stage)?;
        f(&CheckpointData {
            model_cfg: &model_cfg,
            weights: &weights,
            optimizer: &optimizer,
            state: &self.state,
            tokenizer_json: &self.tokenizer_json,
        })
    }
}

/// The model of stage `stage` over the master weights, cast to `dtype` (no copy for f32).
fn model_from(
    cfg: &TrainConfig,
    vars: &BTreeMap<String, Var>,
    stage: usize,
    dtype: DType,
) -> Result<Decoder> {
    model_over(&cfg.model_config(stage)?, vars, dtype)
}

/// A model of shape `cfg` over f32 master weights cast to the compute dtype `dtype`. The casts
/// are in the autograd graph, so gradients reach the masters; for f32 the model uses the master
/// tensors themselves (updating a `Var` updates the model).
pub fn model_over(
    cfg: &k2_model::LlamaConfig,
    vars: &BTreeMap<String, Var>,
    dtype: DType,
) -> Result<Decoder> {
    let map = vars
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_dtype(dtype)?)))
        .collect::<Result<_>>()?;
    Ok(Decoder::for_training(&Arch::from_llama(cfg), map)?)
}

fn initial_state(cfg: &TrainConfig, order: &ChunkOrder, first_stage: usize) -> TrainerState {
    TrainerState {
        format: 1,
        run: cfg.name.clone(),
        config_hash: cfg.hash(),
        step: 0,
        tokens_seen: 0,
        stage: first_stage,
        cursor: DataCursor {
            chunk_order: order.order.clone(),
            position: 0,
            sample_in_chunk: 0,
        },
        schedule: ScheduleState {
            peak_lr: cfg.optim.lr,
            min_lr: cfg.optim.lr * cfg.optim.min_lr_ratio,
            warmup_steps: cfg.optim.warmup_steps,
            total_steps: cfg.total_steps(),
            last_lr: 0.0,
        },
        rng: RngState {
            init_seed: cfg.seed,
            train_seed: cfg.seed ^ 0x6b32_7472_6169_6e00,
            train_word_pos: "0".into(),
            shuffle_seed_base: cfg.data.shuffle_seed_base,
        },
        detector: DetectorState::default(),
        device: None,
    }
}
