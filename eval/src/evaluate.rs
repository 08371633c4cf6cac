//! Evaluating one task on one model: build every document's requests, score them with the
//! engine (loglikelihoods batched and context-shared, rolling windows, greedy generations),
//! turn responses into per-document metrics, aggregate, and produce the lm-eval-style results and
//! the per-sample records.

use serde::Serialize;

use crate::error::Result;
use crate::metrics::aggregate_docs;
use crate::prepared::Prepared;
use crate::request::{Request, Response};
use crate::results::{MetricResult, TaskResult};
use crate::scorer::Scorer;
use crate::task::{DocResult, Task};

/// One line of the samples file (lm-eval's `--log_samples` fields that apply).
#[derive(Debug, Clone, Serialize)]
pub struct SampleRecord {
    pub doc_id: usize,
    pub prompt_hash: String,
    pub arguments: Vec<Request>,
    pub resps: Vec<Response>,
    pub prediction: String,
    pub target: String,
    /// The gold request of a multiple-choice document (see [`crate::task::DocResult::gold`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<usize>,
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// Filter name -> extracted answer (lm-eval's `filtered_resps`), for tasks with filters.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub filtered: std::collections::BTreeMap<String, String>,
}

/// Counts the requests a task run will score (for progress bars over a sweep).
pub fn count_requests(task: &dyn Task, shots: usize, limit: Option<usize>) -> usize {
    let n = limit.map_or(task.num_docs(), |l| l.min(task.num_docs()));
    (0..n).map(|d| task.requests(d, shots).len()).sum()
}

/// Runs `task` (its first `limit` documents, `shots`-shot) through `scorer`: the task's result
/// and one sample record per document.
pub fn run_task(
    scorer: &dyn Scorer,
    task: &dyn Task,
    shots: usize,
    limit: Option<usize>,
    progress: &mut dyn FnMut(usize),
) -> Result<(TaskResult, Vec<SampleRecord>)> {
    let prepared = Prepared::build(task, shots, limit);
    run_prepared(scorer, task, shots, limit, &prepared, progress)
}

/// [`run_task`] over requests built beforehand ([`Prepared::build`] of the same task, shots
/// and limit), which a sweep shares across checkpoints.
pub fn run_prepared(
    scorer: &dyn Scorer,
    task: &dyn Task,
    shots: usize,
    limit: Option<usize>,
    prepared: &Prepared,
    progress: &mut dyn FnMut(usize),
) -> Result<(TaskResult, Vec<SampleRecord>)> {
    let per_doc = &prepared.per_doc;
    let n = per_doc.len();
    let mut responses: Vec<Vec<Option<Response>>> =
        per_doc.iter().map(|r| vec![None; r.len()]).collect();

    // Loglikelihood requests, all at once so contexts are shared across the whole task.
    let (ll_pairs, ll_owner) = prepared.loglikelihood_pairs();
    let mut rolling = Vec::new();
    let mut rolling_owner = Vec::new();
    for (d, reqs) in per_doc.iter().enumerate() {
        for (k, r) in reqs.iter().enumerate() {
            if let Request::Rolling { text } = r {
                rolling.push(text.clone());
                rolling_owner.push((d, k));
            }
        }
    }
    let mut done = 0;
    if !ll_pairs.is_empty() {
        let scored =
            scorer.prepared_loglikelihoods(prepared, &ll_pairs, &mut |k| progress(done + k))?;
        for ((ll, is_greedy), (d, k)) in scored.into_iter().zip(ll_owner) {
            responses[d][k] = Some(Response::Loglikelihood { ll, is_greedy });
        }
        done += ll_pairs.len();
    }
    if !rolling.is_empty() {
        let scored = scorer.rolling_loglikelihoods(&rolling, &mut |_| {})?;
        for ((ll, tokens), (d, k)) in scored.into_iter().zip(rolling_owner) {
            responses[d][k] = Some(Response::Rolling { ll, tokens });
            done += 1;
            progress(done);
        }
    }
    for (d, reqs) in per_doc.iter().enumerate() {
        for (k, r) in reqs.iter().enumerate() {
            if let Request::Generate {
                context,
                until,
                max_gen_toks,
            } = r
            {
                let text = scorer.generate_until(context, until, *max_gen_toks)?;
                responses[d][k] = Some(Response::Generate { text });
                done += 1;
                progress(done);
            }
        }
    }

    let mut docs: Vec<DocResult> = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n);
    for (d, (reqs, resps)) in per_doc.iter().zip(responses).enumerate() {
        let resps: Vec<Response> = resps
            .into_iter()
            .map(|r| r.expect("every request answered"))
            .collect();
        let res = task.process(d, &resps);
        let prompt = match reqs.first() {
            Some(Request::Loglikelihood { context, .. })
            | Some(Request::Generate { context, .. }) => context.clone(),
            Some(Request::Rolling { text }) => text.clone(),
            None => String::new(),
        };
        samples.push(SampleRecord {
            doc_id: d,
            prompt_hash: k2_archive::sha256_bytes(prompt.as_bytes()),
            arguments: reqs.clone(),
            resps,
            prediction: res.prediction.clone(),
            target: res.target.clone(),
            gold: res.gold,
            metrics: res
                .metrics
                .iter()
                .map(|(k, v)| (k.clone(), v.value))
                .collect(),
            filtered: res.filtered.clone(),
        });
        docs.push(res);
    }
    let metrics = task
        .metrics()
        .into_iter()
        .map(|spec| {
            let a = aggregate_docs(&spec, &docs);
            MetricResult {
                name: spec.name.clone(),
                filter: spec.filter.clone(),
                value: a.value,
                stderr: a.stderr,
                higher_is_better: spec.higher_is_better,
            }
        })
        .collect();
    Ok((
        TaskResult {
            task: task.name().to_string(),
            version: task.version(),
            n_shot: shots,
            n_original: task.num_docs(),
            n_effective: n,
            metrics,
            batch_size: scorer.batch_size(),
            limit,
            datasets: task.datasets(),
        },
        samples,
    ))
}
