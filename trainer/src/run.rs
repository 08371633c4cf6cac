//! The training loop: chunk after chunk in the run's chunk order, `steps_per_checkpoint` optimizer
//! steps per chunk (gradient accumulation over micro-batches, warmup + cosine, global clipping,
//! AdamW), one metrics line per step, a full-state checkpoint at the end of every chunk.
//! `--resume` restarts from the manifest's last good checkpoint and continues bit for bit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use k2_archive::{CheckpointStatus, ChunkOrder, Manifest, RunLayout};
use k2_model::{Llama, Mode};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{read_state, read_tensors, write_checkpoint, CheckpointData};
use crate::config::TrainConfig;
use crate::dataset::{read_chunk, read_index};
use crate::error::{io_err, Result, TrainError};
use crate::init::init_weights;
use crate::metrics::StepMetrics;
use crate::optim::{AdamW, AdamWConfig};
use crate::schedule::Schedule;
use crate::setup::create_run;
use crate::state::{DataCursor, RngState, ScheduleState, TrainerState};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub out: PathBuf,
    /// The config of a new run; ignored (but checked against the run's) with `resume`.
    pub config: TrainConfig,
    /// Whether `config` was given explicitly (then it must match a resumed run's).
    pub config_explicit: bool,
    pub resume: bool,
    pub force: bool,
    pub progress: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub out: PathBuf,
    pub resumed_from: Option<String>,
    pub steps: u64,
    pub tokens: u64,
    pub checkpoints_written: Vec<String>,
    pub final_loss: Option<f64>,
    pub wall_s: f64,
}

/// Makes candle's CPU matrix products use `n` threads (they read `RAYON_NUM_THREADS` per call).
pub fn set_threads(n: usize) {
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
}

/// Trains a run: creates it, or resumes it from its last good checkpoint.
pub fn train(opts: &TrainOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let layout = RunLayout::new(&opts.out);
    let cfg = if opts.resume {
        if !layout.manifest_path().exists() {
            return Err(TrainError::Resume(format!(
                "{} is not a complete run directory (no checkpoints.toml); start it without --resume",
                opts.out.display()
            )));
        }
        let run_cfg = TrainConfig::load(&layout.config_path())?;
        if opts.config_explicit && run_cfg.hash() != opts.config.hash() {
            return Err(TrainError::Resume(format!(
                "the given config differs from {} (hash {} vs {}); resume without --config",
                layout.config_path().display(),
                &opts.config.hash()[..12],
                &run_cfg.hash()[..12]
            )));
        }
        run_cfg
    } else {
        create_run(&opts.config, &opts.out, opts.force)?;
        opts.config.clone()
    };
    set_threads(cfg.train.threads);
    let dev = Device::Cpu;
    let mut manifest = Manifest::load(&layout.manifest_path())?;
    k2_archive::remove_stale_tmp(&layout.root)?;
    remove_unlisted_checkpoints(&layout, &manifest)?;
    let order = ChunkOrder::load(&layout.chunk_order_path())?;
    let index = read_index(&layout.data_dir())?;
    let tokenizer_json = std::fs::read_to_string(layout.tokenizer_path())
        .map_err(io_err(layout.tokenizer_path()))?;

    let spc = cfg.train.steps_per_checkpoint;
    let schedule = Schedule {
        peak: cfg.optim.lr,
        min: cfg.optim.lr * cfg.optim.min_lr_ratio,
        warmup: cfg.optim.warmup_steps,
        total: cfg.total_steps(),
    };
    let adam_cfg = AdamWConfig {
        beta1: cfg.optim.beta1,
        beta2: cfg.optim.beta2,
        eps: cfg.optim.eps,
        weight_decay: cfg.optim.weight_decay,
    };

    // Starting point: the last good checkpoint, or a fresh initialisation.
    let resume_entry = manifest.latest_ok().cloned();
    let (weights, optim_state, mut state) = match &resume_entry {
        Some(entry) => {
            let dir = layout.ckpt_dir(&entry.name);
            let state = read_state(&dir)?;
            if state.config_hash != cfg.hash() {
                return Err(TrainError::Resume(format!(
                    "{}: config hash {} does not match the run's config {}",
                    dir.display(),
                    state.config_hash,
                    cfg.hash()
                )));
            }
            let (w, o) = read_tensors(&dir)?;
            (w, Some(o), state)
        }
        None => {
            let first_stage = cfg.stage_of_chunk(order.chunk_at(0).unwrap_or(0));
            let w = init_weights(&cfg.model_config(first_stage)?, cfg.seed, &dev)?;
            let state = TrainerState {
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
                    peak_lr: schedule.peak,
                    min_lr: schedule.min,
                    warmup_steps: schedule.warmup,
                    total_steps: schedule.total,
                    last_lr: 0.0,
                },
                rng: RngState {
                    init_seed: cfg.seed,
                    train_seed: cfg.seed ^ 0x6b32_7472_6169_6e00,
                    train_word_pos: "0".into(),
                    shuffle_seed_base: cfg.data.shuffle_seed_base,
                },
            };
            (w, None, state)
        }
    };
    if opts.resume {
        // Drop metrics of steps past the checkpoint we resume from: they will be redone.
        let keep_until = state.step;
        k2_archive::truncate_jsonl_after(&layout.metrics_path(), |v| {
            v.get("step")
                .and_then(|s| s.as_u64())
                .is_some_and(|s| s <= keep_until)
        })?;
    }
    let train_rng = ChaCha8Rng::seed_from_u64(state.rng.train_seed);
    let mut train_rng = train_rng;
    train_rng.set_word_pos(state.rng.train_word_pos.parse::<u128>().unwrap_or(0));

    let vars: BTreeMap<String, Var> = weights
        .into_iter()
        .map(|(k, t)| Ok((k, Var::from_tensor(&t)?)))
        .collect::<Result<_>>()?;
    let mut opt = AdamW::new(&vars, adam_cfg);
    if let Some(o) = &optim_state {
        opt.load_state(o, state.step)?;
    }
    let model_of = |stage: usize| -> Result<Llama> {
        let map = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        Ok(Llama::from_tensors(&cfg.model_config(stage)?, map)?)
    };
    let mut stage = state.stage;
    let mut model = model_of(stage)?;

    let total_steps = cfg.total_steps();
    let bar = ProgressBar::new(total_steps);
    if !opts.progress {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  eta {eta}  {msg}",
        )
        .expect("valid template"),
    );
    bar.set_position(state.step);

    let base_wall = resume_entry.as_ref().map_or(0.0, |e| e.wall_time_s);
    let gb = cfg.train.global_batch;
    let mb = cfg.train.micro_batch;
    let n_micro = gb / mb;
    let mut written = Vec::new();
    let mut final_loss = None;
    let mut steps_done = 0;
    for position in state.cursor.position..order.order.len() as u32 {
        let chunk = order.order[position as usize];
        let chunk_stage = cfg.stage_of_chunk(chunk);
        if chunk_stage != stage {
            stage = chunk_stage;
            model = model_of(stage)?;
        }
        let info = index
            .chunks
            .get(chunk as usize)
            .ok_or_else(|| TrainError::Data {
                path: layout.data_dir().join("index.json"),
                message: format!("no chunk {chunk}"),
            })?;
        let samples = read_chunk(&layout.data_dir(), info)?;
        if samples.len() < spc as usize * gb {
            return Err(TrainError::Data {
                path: crate::dataset::chunk_file(&layout.data_dir(), chunk),
                message: format!(
                    "{} samples, an interval needs {}",
                    samples.len(),
                    spc as usize * gb
                ),
            });
        }
        let seq = info.seq_len;
        for j in 0..spc as usize {
            let t0 = Instant::now();
            let step = state.step + 1;
            let batch = &samples[j * gb..(j + 1) * gb];
            let mut grads = opt.zero_grads();
            let mut loss_sum = 0.0f64;
            for micro in batch.chunks(mb) {
                let ids: Vec<u32> = micro
                    .iter()
                    .flat_map(|s| s.token_ids.iter().copied())
                    .collect();
                let ids = Tensor::from_vec(ids, (micro.len(), seq), &dev)?;
                let loss = lm_loss(&model, &ids)?;
                loss_sum += loss.to_scalar::<f32>()? as f64;
                let store = loss.backward()?;
                opt.accumulate(&mut grads, &store, 1.0 / n_micro as f32)?;
            }
            let loss = loss_sum / n_micro as f64;
            if !loss.is_finite() {
                return Err(TrainError::NonFinite {
                    step,
                    loss: loss as f32,
                });
            }
            let lr = schedule.lr(step);
            let stats = opt.step(&mut grads, lr, cfg.optim.clip_grad_norm)?;
            state.step = step;
            state.tokens_seen += (gb * seq) as u64;
            state.schedule.last_lr = lr;
            let dt = t0.elapsed().as_secs_f64();
            let m = StepMetrics {
                step,
                loss,
                lr,
                grad_norm: stats.grad_norm,
                param_norm: stats.param_norm,
                update_norm: stats.update_norm,
                tokens_seen: state.tokens_seen,
                tokens_per_s: (gb * seq) as f64 / dt.max(1e-9),
                chunk,
                stage,
            };
            k2_archive::append_line_durable(
                &layout.metrics_path(),
                &serde_json::to_string(&m).expect("metrics serialise"),
            )?;
            final_loss = Some(loss);
            steps_done += 1;
            bar.set_position(step);
            bar.set_message(format!(
                "loss {loss:.3}  lr {lr:.2e}  ckpt {}",
                position + 1
            ));
        }
        // End of the interval: a full-state checkpoint.
        state.stage = stage;
        state.cursor = DataCursor {
            chunk_order: order.order.clone(),
            position: position + 1,
            sample_in_chunk: 0,
        };
        state.rng.train_word_pos = train_rng.get_word_pos().to_string();
        let weights: BTreeMap<String, Tensor> = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        let name = k2_archive::ckpt_name(position + 1);
        let model_cfg = cfg.model_config(stage)?;
        let mut entry = write_checkpoint(
            &layout,
            &name,
            &CheckpointData {
                model_cfg: &model_cfg,
                weights: &weights,
                optimizer: &opt.state_tensors()?,
                state: &state,
                tokenizer_json: &tokenizer_json,
            },
            vec![chunk],
            CheckpointStatus::Ok,
        )?;
        entry.wall_time_s = base_wall + started.elapsed().as_secs_f64();
        manifest.push(entry)?;
        manifest.save_atomic(&layout.manifest_path())?;
        written.push(name);
    }
    bar.finish_and_clear();
    Ok(RunSummary {
        out: opts.out.clone(),
        resumed_from: resume_entry.map(|e| e.name),
        steps: steps_done,
        tokens: state.tokens_seen,
        checkpoints_written: written,
        final_loss,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// Mean next-token cross-entropy over a batch (K2: labels are inputs shifted by one; the last
/// position has no label).
pub fn lm_loss(model: &Llama, ids: &Tensor) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let logits = model.forward(ids, Mode::Train)?;
    let v = logits.dim(2)?;
    let logits = logits.narrow(1, 0, t - 1)?.reshape((b * (t - 1), v))?;
    let targets = ids
        .narrow(1, 1, t - 1)?
        .contiguous()?
        .reshape(b * (t - 1))?;
    Ok(k2_model::fused::cross_entropy(&logits, &targets)?)
}

/// Checkpoint directories that a crash left renamed but not yet listed are removed: they are
/// re-created identically when their interval is retrained.
fn remove_unlisted_checkpoints(layout: &RunLayout, manifest: &Manifest) -> Result<()> {
    let entries = std::fs::read_dir(&layout.root).map_err(io_err(&layout.root))?;
    for e in entries {
        let e = e.map_err(io_err(&layout.root))?;
        let name = e.file_name().to_string_lossy().to_string();
        if k2_archive::parse_ckpt_name(&name).is_some()
            && manifest.get(&name).is_none()
            && e.path().is_dir()
        {
            eprintln!(
                "removing {} (written but never listed in the manifest)",
                e.path().display()
            );
            std::fs::remove_dir_all(e.path()).map_err(io_err(e.path()))?;
        }
    }
    Ok(())
}

/// The run directory's config, for commands that read a run.
pub fn run_config(run_dir: &Path) -> Result<TrainConfig> {
    TrainConfig::load(&RunLayout::new(run_dir).config_path())
}
