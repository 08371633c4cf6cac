//! The training loop: chunk after chunk in the run's chunk order, `steps_per_checkpoint` optimizer
//! steps per chunk (gradient accumulation over micro-batches, warmup + cosine, global clipping,
//! AdamW), one metrics line per step, a full-state checkpoint at the end of every chunk.
//! `--resume` restarts from the manifest's last good checkpoint and continues bit for bit.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use k2_archive::{CheckpointStatus, ChunkOrder, Manifest, RunLayout, SpikeEvent};
use k2_model::{dtype_name, DTypeSpec, DeviceSpec};

use crate::checkpoint::write_checkpoint;
use crate::config::with_dtype;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::metrics::truncate_metrics;
use crate::metrics::EventLine;
use crate::rollback::remove_unlisted_checkpoints;
use crate::session::{peak_lr_at, IntervalEnd, Session};
use crate::setup::create_run;
use crate::threads::set_threads;

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
    /// Where the master weights, moments and compute live.
    pub device: DeviceSpec,
    /// Compute dtype; `Auto` keeps the config's `train.dtype`. Given for a new run it is written
    /// into the run's config; given for a resumed run it must match the run's.
    pub dtype: DTypeSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub out: PathBuf,
    pub resumed_from: Option<String>,
    pub steps: u64,
    pub tokens: u64,
    pub checkpoints_written: Vec<String>,
    /// Malignant spikes this invocation rolled back.
    pub rollbacks: Vec<SpikeEvent>,
    pub final_loss: Option<f64>,
    pub wall_s: f64,
}

/// Trains a run: creates it, or resumes it from its last good checkpoint.
pub fn train(opts: &TrainOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let layout = RunLayout::new(&opts.out);
    // The device first: an unusable one is reported before anything is written.
    let dev = opts.device.resolve()?;
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
        if let DTypeSpec::Is(d) = opts.dtype {
            if d != run_cfg.compute_dtype() {
                return Err(TrainError::Resume(format!(
                    "--dtype {} differs from the run's train.dtype {} in {}; resume without --dtype",
                    dtype_name(d),
                    dtype_name(run_cfg.compute_dtype()),
                    layout.config_path().display()
                )));
            }
        }
        run_cfg
    } else {
        let cfg = with_dtype(&opts.config, opts.dtype);
        create_run(&cfg, &opts.out, opts.force)?;
        cfg
    };
    // Held until training ends: a second trainer is refused, `k2 eval --watch` sees a live run.
    let _lock = crate::lock::TrainerLock::acquire(&layout)?;
    set_threads(cfg.train.threads);
    let mut manifest = Manifest::load(&layout.manifest_path())?;
    k2_archive::remove_stale_tmp(&layout.root)?;
    crate::rollback::repair(&layout, &cfg, &manifest)?;
    remove_unlisted_checkpoints(&layout, &manifest)?;
    let mut order = ChunkOrder::load(&layout.chunk_order_path())?;

    // Starting point: the last good checkpoint, or a fresh initialisation.
    let resume_entry = manifest.latest_ok().cloned();
    let mut session = Session::load(
        &layout,
        &cfg,
        resume_entry.as_ref().map(|e| e.name.as_str()),
        &dev,
    )?;
    if let Some(w) = &session.device_change {
        eprintln!("warning: {w}");
    }
    if opts.resume {
        // Drop metrics of the current attempt past the checkpoint we resume from: they will be
        // redone. Lines of earlier (rolled-back) attempts stay.
        truncate_metrics(&layout, session.state.step, manifest.rollbacks())?;
    }

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
    bar.set_position(session.state.step);

    let dense = crate::injection::DenseProbes::new(&cfg.inject_facts, &session.tokenizer_json)?;
    let dense_path = layout.dense_probes_path();
    if dense.is_some() {
        std::fs::create_dir_all(layout.acquisition_dir())
            .map_err(crate::error::io_err(layout.acquisition_dir()))?;
    }
    let spc = cfg.train.steps_per_checkpoint;
    let base_wall = resume_entry.as_ref().map_or(0.0, |e| e.wall_time_s);
    let mut written = Vec::new();
    let mut rollbacks = Vec::new();
    let mut final_loss = None;
    let mut steps_done = 0;
    let mut position = session.state.cursor.position;
    while (position as usize) < order.len() {
        let attempt = manifest.rollbacks();
        let peak = peak_lr_at(&cfg, &manifest, position);
        let mut resolved = Vec::new();
        let metrics_path = layout.metrics_path();
        let end = session.train_interval(&order, position, peak, attempt, &mut |r| {
            k2_archive::append_line_durable(
                &metrics_path,
                &serde_json::to_string(r.metrics).expect("metrics serialise"),
            )?;
            if let Some(ev) = r.resolved {
                k2_archive::append_line_durable(
                    &metrics_path,
                    &serde_json::to_string(&EventLine::new(ev)).expect("event serialises"),
                )?;
                if opts.progress {
                    bar.println(format!(
                        "{} loss spike at steps {}-{} (peak {:.3} vs baseline {:.3})",
                        ev.kind, ev.start_step, ev.end_step, ev.peak_loss, ev.baseline_loss
                    ));
                }
                resolved.push(ev.clone());
            }
            if let Some(d) = &dense {
                if let Some(line) = d.score(&order, spc, r.metrics.step, attempt, r.model)? {
                    k2_archive::append_line_durable(
                        &dense_path,
                        &serde_json::to_string(&line).expect("scores serialise"),
                    )?;
                }
            }
            final_loss = Some(r.metrics.loss);
            steps_done += 1;
            bar.set_position(r.metrics.step);
            bar.set_message(format!(
                "loss {:.3}  lr {:.2e}  ckpt {}",
                r.metrics.loss,
                r.metrics.lr,
                position + 1
            ));
            Ok(())
        })?;
        let wall = base_wall + started.elapsed().as_secs_f64();
        match end {
            IntervalEnd::Completed => {
                let name = k2_archive::ckpt_name(position + 1);
                let chunk = order.chunk_at(position).expect("position in range");
                let mut entry = session.with_checkpoint_data(|data| {
                    write_checkpoint(&layout, &name, data, vec![chunk], CheckpointStatus::Ok)
                })?;
                entry.wall_time_s = wall;
                entry.injected = crate::injection::steps_in_interval(
                    &cfg.inject_facts,
                    chunk,
                    entry.step - cfg.train.steps_per_checkpoint,
                );
                manifest.push(entry)?;
                manifest.spikes.extend(resolved);
                manifest.save_atomic(&layout.manifest_path())?;
                crate::failpoint::hit("checkpoint-committed");
                written.push(name);
                position += 1;
            }
            IntervalEnd::Malignant(event) => {
                manifest.spikes.extend(resolved);
                let rb = crate::rollback::roll_back(
                    &layout,
                    &cfg,
                    &session,
                    position,
                    &mut manifest,
                    &mut order,
                    *event,
                    wall,
                )?;
                bar.println(format!(
                    "malignant loss spike at steps {}-{} (peak {:.3} vs baseline {:.3}): rolled \
                     back to {}, chunk {} deferred to the end of its stage, diverged state kept \
                     as {}",
                    rb.event.start_step,
                    rb.event.end_step,
                    rb.event.peak_loss,
                    rb.event.baseline_loss,
                    rb.to.as_deref().unwrap_or(crate::rollback::INIT),
                    rb.event.deferred_chunk.unwrap_or(0),
                    rb.event.spike_checkpoints.join(", ")
                ));
                session = Session::load(&layout, &cfg, rb.to.as_deref(), &dev)?;
                position = session.state.cursor.position;
                bar.set_position(session.state.step);
                rollbacks.push(rb);
            }
        }
    }
    bar.finish_and_clear();
    Ok(RunSummary {
        out: opts.out.clone(),
        resumed_from: resume_entry.map(|e| e.name),
        steps: steps_done,
        tokens: session.state.tokens_seen,
        checkpoints_written: written,
        rollbacks: rollbacks.into_iter().map(|r| r.event).collect(),
        final_loss,
        wall_s: started.elapsed().as_secs_f64(),
    })
}
