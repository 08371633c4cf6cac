//! `k2 bench eval`: loglikelihood requests per second of one model on a task, the same work
//! lm-evaluation-harness does for `--limit N` (compare with `bench/lm_eval_parity/`).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::benchmark_job::TaskSpec;
use crate::engine::Engine;
use crate::error::Result;
use crate::evaluate::{count_requests, run_task};

#[derive(Debug, Clone, Serialize)]
pub struct EvalBench {
    pub model: String,
    pub device: String,
    pub dtype: String,
    pub task: String,
    pub docs: usize,
    pub requests: usize,
    pub batch_size: usize,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub metrics: Vec<(String, f64)>,
}

/// Times `run_task` (model loading excluded) for each task spec.
pub fn bench_eval(
    model_dir: &Path,
    specs: &[TaskSpec],
    batch_size: usize,
    placement: &k2_model::Placement,
) -> Result<Vec<EvalBench>> {
    let model = k2_model::load_decoder_on(model_dir, placement)?;
    let (device, dtype) = (
        k2_model::device_kind(model.device()).to_string(),
        k2_model::dtype_name(model.dtype()).to_string(),
    );
    let tok_path = model_dir.join("tokenizer.json");
    let tok = k2_model::CheckpointTokenizer::load(model_dir)?;
    crate::engine::check_vocab(&model, &tok, &tok_path)?;
    let engine = Engine::new(model, tok, batch_size);
    let mut out = Vec::new();
    for s in specs {
        let requests = count_requests(s.task.as_ref(), s.shots, s.limit);
        let t0 = Instant::now();
        let (r, _) = run_task(&engine, s.task.as_ref(), s.shots, s.limit, &mut |_| {})?;
        let secs = t0.elapsed().as_secs_f64();
        out.push(EvalBench {
            model: model_dir.display().to_string(),
            device: device.clone(),
            dtype: dtype.clone(),
            task: r.task.clone(),
            docs: r.n_effective,
            requests,
            batch_size,
            seconds: secs,
            requests_per_s: requests as f64 / secs,
            metrics: r
                .metrics
                .iter()
                .map(|m| (format!("{},{}", m.name, m.filter), m.value))
                .collect(),
        });
    }
    Ok(out)
}
