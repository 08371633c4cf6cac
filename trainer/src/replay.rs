//! `k2 verify`: exact replay of a training interval. Starting from the archived full state of
//! checkpoint A (or the initialisation), the trainer retrains every interval up to checkpoint B
//! into a scratch directory, compares every step's loss and norms with `metrics.jsonl` and every
//! produced file's sha256 with the manifest, and on a mismatch names the first differing step
//! and tensor. Nothing in the run directory is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k2_archive::{CheckpointEntry, CheckpointStatus, ChunkOrder, Manifest, RunLayout};

use crate::checkpoint::{read_state, write_checkpoint, OPTIM_FILE};
use crate::config::TrainConfig;
use crate::error::{io_err, Result, TrainError};
use crate::metrics::StepMetrics;
use crate::session::{attempt_at, peak_lr_at, IntervalEnd, Session};

/// What a replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    pub from: String,
    pub to: String,
    pub steps: u64,
    /// Checkpoints whose every file matched, in order.
    pub matched: Vec<String>,
    /// The first mismatch, if any.
    pub mismatch: Option<Mismatch>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The checkpoint whose files differ (or that the replay could not reach).
    pub checkpoint: String,
    /// The first step whose logged metrics differ from the replay's, if any does.
    pub first_step: Option<StepDiff>,
    /// Files whose sha256 differs: (path in the checkpoint, archived sha256, replayed sha256).
    pub files: Vec<(String, String, String)>,
    /// The first differing tensor (in name order) of the first differing safetensors file.
    pub tensor: Option<TensorDiff>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepDiff {
    pub step: u64,
    pub field: String,
    pub archived: f64,
    pub replayed: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorDiff {
    pub file: String,
    pub tensor: String,
    /// Elements that differ, of how many; the largest absolute difference.
    pub differing: usize,
    pub elements: usize,
    pub max_abs_diff: f64,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: replay differs from the archive", self.checkpoint)?;
        match &self.first_step {
            Some(s) => write!(
                f,
                "; first differing step {} ({} archived {} replayed {})",
                s.step, s.field, s.archived, s.replayed
            )?,
            None => write!(f, "; every step's loss and norms match metrics.jsonl")?,
        }
        if let Some(t) = &self.tensor {
            write!(
                f,
                "; first differing tensor `{}` in {} ({} of {} elements differ, max |diff| {:e})",
                t.tensor, t.file, t.differing, t.elements, t.max_abs_diff
            )?;
        }
        for (path, a, b) in &self.files {
            write!(
                f,
                "; {path}: sha256 {} archived, {} replayed",
                &a[..12],
                &b[..12]
            )?;
        }
        Ok(())
    }
}

/// The metrics line in effect for every step: the last line of each step in file order (after a
/// rollback the retrained steps follow the diverged ones).
fn lineage_metrics(path: &Path) -> Result<BTreeMap<u64, StepMetrics>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let lines = k2_archive::metrics_log::read_metrics_log(path)?;
    Ok(k2_archive::metrics_log::step_lines(lines)
        .into_iter()
        .map(|m| (m.step, m))
        .collect())
}

fn compare_step(archived: &StepMetrics, replayed: &StepMetrics) -> Option<StepDiff> {
    let fields = [
        ("loss", archived.loss, replayed.loss),
        ("lr", archived.lr, replayed.lr),
        ("grad_norm", archived.grad_norm, replayed.grad_norm),
        ("update_norm", archived.update_norm, replayed.update_norm),
        ("param_norm", archived.param_norm, replayed.param_norm),
    ];
    fields
        .into_iter()
        .find(|(_, a, b)| a.to_bits() != b.to_bits())
        .map(|(field, a, b)| StepDiff {
            step: replayed.step,
            field: field.to_string(),
            archived: a,
            replayed: b,
        })
}

/// The first tensor (by name) that differs between two safetensors files.
pub fn first_differing_tensor(
    archived: &Path,
    replayed: &Path,
    file: &str,
) -> Result<Option<TensorDiff>> {
    let load = |p: &Path| -> Result<BTreeMap<String, Vec<f64>>> {
        let bytes = std::fs::read(p).map_err(io_err(p))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| TrainError::Data {
            path: p.to_path_buf(),
            message: format!("not a safetensors file: {e}"),
        })?;
        let mut out = BTreeMap::new();
        for (name, view) in st.tensors() {
            let vals = match view.dtype() {
                safetensors::Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
                    .collect(),
                _ => view.data().iter().map(|&b| b as f64).collect(),
            };
            out.insert(name, vals);
        }
        Ok(out)
    };
    let (a, b) = (load(archived)?, load(replayed)?);
    for (name, av) in &a {
        let Some(bv) = b.get(name) else {
            return Ok(Some(TensorDiff {
                file: file.into(),
                tensor: name.clone(),
                differing: av.len(),
                elements: av.len(),
                max_abs_diff: f64::INFINITY,
            }));
        };
        let mut differing = 0;
        let mut max = 0.0f64;
        for (x, y) in av.iter().zip(bv) {
            if x.to_bits() != y.to_bits() {
                differing += 1;
                max = max.max((x - y).abs());
            }
        }
        differing += av.len().abs_diff(bv.len());
        if differing > 0 {
            return Ok(Some(TensorDiff {
                file: file.into(),
                tensor: name.clone(),
                differing,
                elements: av.len().max(bv.len()),
                max_abs_diff: max,
            }));
        }
    }
    Ok(b.keys()
        .find(|k| !a.contains_key(*k))
        .map(|name| TensorDiff {
            file: file.into(),
            tensor: name.clone(),
            differing: b[name].len(),
            elements: b[name].len(),
            max_abs_diff: f64::INFINITY,
        }))
}

fn ok_entry<'a>(manifest: &'a Manifest, path: &Path, name: &str) -> Result<&'a CheckpointEntry> {
    let e = manifest.get(name).ok_or_else(|| {
        let known: Vec<&str> = manifest
            .ok_checkpoints()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        TrainError::Verify(format!(
            "{}: no checkpoint `{name}` (ok checkpoints: {})",
            path.display(),
            known.join(", ")
        ))
    })?;
    if e.status != CheckpointStatus::Ok {
        return Err(TrainError::Verify(format!(
            "{}: `{name}` has status {}; replay follows the ok lineage",
            path.display(),
            e.status
        )));
    }
    Ok(e)
}

/// A scratch directory for the replayed checkpoints, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replays run `run` from checkpoint `from` (`init` for the initialisation) to `to` on `device`
/// (bit for bit only on the device kind, and with the dtype, that trained it).
pub fn replay(
    run: &Path,
    from: &str,
    to: &str,
    device: k2_model::DeviceSpec,
    dtype: k2_model::DTypeSpec,
) -> Result<ReplayReport> {
    let dev = device.resolve()?;
    let layout = RunLayout::new(run);
    let cfg = TrainConfig::load(&layout.config_path())?;
    if let k2_model::DTypeSpec::Is(d) = dtype {
        if d != cfg.compute_dtype() {
            return Err(TrainError::Verify(format!(
                "--dtype {} differs from the run's train.dtype {} ({}); a replay runs in the \
                 run's dtype",
                k2_model::dtype_name(d),
                k2_model::dtype_name(cfg.compute_dtype()),
                layout.config_path().display()
            )));
        }
    }
    crate::threads::set_threads(cfg.train.threads);
    let manifest = Manifest::load(&layout.manifest_path())?;
    let order = ChunkOrder::load(&layout.chunk_order_path())?;
    let to_entry = ok_entry(&manifest, &layout.manifest_path(), to)?.clone();
    let (start_name, start_step) = if from == "init" {
        (None, 0)
    } else {
        let e = ok_entry(&manifest, &layout.manifest_path(), from)?;
        let problems = k2_archive::verify_checkpoint(&layout.root, e)?;
        if let Some(p) = problems.first() {
            return Err(TrainError::Mismatch(format!(
                "the starting checkpoint does not match the manifest: {p}"
            )));
        }
        (Some(from), e.step)
    };
    if to_entry.step <= start_step {
        return Err(TrainError::Verify(format!(
            "--to {to} (step {}) must come after --from {from} (step {start_step})",
            to_entry.step
        )));
    }
    let end_position = read_state(&layout.ckpt_dir(to))?.cursor.position;
    let archived = lineage_metrics(&layout.metrics_path())?;

    let scratch = Scratch(std::env::temp_dir().join(format!(
        "k2-verify-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )));
    let scratch_layout = RunLayout::new(&scratch.0);
    std::fs::create_dir_all(&scratch.0).map_err(io_err(&scratch.0))?;

    let mut session = Session::load(&layout, &cfg, start_name, &dev)?;
    if let Some(w) = &session.device_change {
        eprintln!("warning: {w}; expect a mismatch");
    }
    let mut report = ReplayReport {
        from: from.to_string(),
        to: to.to_string(),
        steps: 0,
        matched: Vec::new(),
        mismatch: None,
    };
    let mut first_step: Option<StepDiff> = None;
    let mut first_step_ckpt: Option<String> = None;
    let mut position = session.state.cursor.position;
    while position < end_position {
        let order_then = order.as_of_position(position);
        let attempt = attempt_at(&manifest, position);
        let peak = peak_lr_at(&cfg, &manifest, position);
        let name = k2_archive::ckpt_name(position + 1);
        let seen_before = first_step.is_some();
        let end = session.train_interval(&order_then, position, peak, attempt, &mut |r| {
            report.steps += 1;
            if first_step.is_none() {
                first_step = match archived.get(&r.metrics.step) {
                    Some(a) => compare_step(a, r.metrics),
                    None => Some(StepDiff {
                        step: r.metrics.step,
                        field: "missing from metrics.jsonl".into(),
                        archived: f64::NAN,
                        replayed: r.metrics.loss,
                    }),
                };
            }
            Ok(())
        })?;
        if !seen_before && first_step.is_some() {
            first_step_ckpt = Some(name.clone());
        }
        if let IntervalEnd::Malignant(ev) = end {
            report.mismatch = Some(Mismatch {
                checkpoint: name,
                first_step: first_step.clone().or(Some(StepDiff {
                    step: ev.end_step,
                    field: "malignant spike in the replay".into(),
                    archived: f64::NAN,
                    replayed: ev.peak_loss,
                })),
                files: Vec::new(),
                tensor: None,
            });
            return Ok(report);
        }
        let archived_entry = ok_entry(&manifest, &layout.manifest_path(), &name)?;
        let chunk = order_then.chunk_at(position).expect("position in range");
        let produced = session.with_checkpoint_data(|data| {
            write_checkpoint(
                &scratch_layout,
                &name,
                data,
                vec![chunk],
                CheckpointStatus::Ok,
            )
        })?;
        let mut files = Vec::new();
        for (path, sha) in &archived_entry.files {
            let got = produced
                .files
                .get(path)
                .cloned()
                .unwrap_or_else(|| "-".repeat(64));
            if &got != sha {
                files.push((path.clone(), sha.clone(), got));
            }
        }
        for (path, sha) in &produced.files {
            if !archived_entry.files.contains_key(path) {
                files.push((path.clone(), "-".repeat(64), sha.clone()));
            }
        }
        if files.is_empty() {
            // The replay reproduces the manifest; verify vouches for the archived bytes too, so
            // they must still be what the manifest says (a file altered on disk is a mismatch).
            for (path, sha) in &archived_entry.files {
                let on_disk = k2_archive::sha256_file(&layout.ckpt_dir(&name).join(path))
                    .unwrap_or_else(|_| "-".repeat(64));
                if &on_disk != sha {
                    files.push((path.clone(), on_disk, sha.clone()));
                }
            }
        }
        if !files.is_empty() {
            let mut tensor = None;
            for (path, _, _) in &files {
                if path == "model.safetensors" || path == OPTIM_FILE {
                    tensor = first_differing_tensor(
                        &layout.ckpt_dir(&name).join(path),
                        &scratch_layout.ckpt_dir(&name).join(path),
                        path,
                    )?;
                    if tensor.is_some() {
                        break;
                    }
                }
            }
            report.mismatch = Some(Mismatch {
                checkpoint: name,
                first_step,
                files,
                tensor,
            });
            return Ok(report);
        }
        std::fs::remove_dir_all(scratch_layout.ckpt_dir(&name))
            .map_err(io_err(scratch_layout.ckpt_dir(&name)))?;
        report.matched.push(name);
        position += 1;
    }
    if let Some(s) = first_step {
        // Files equal but a logged metric differs: metrics.jsonl was edited.
        report.mismatch = Some(Mismatch {
            checkpoint: first_step_ckpt.unwrap_or_else(|| to.to_string()),
            first_step: Some(s),
            files: Vec::new(),
            tensor: None,
        });
    }
    Ok(report)
}
