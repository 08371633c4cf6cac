//! `k2 eval --all-checkpoints --suite NAME` for a `kind = "hub"` suite: stream through the suite's
//! revisions in training order — pull (verified against the Hub's sha256), evaluate, and with
//! `--keep N` evict the snapshots this sweep pulled and finished so at most N stay in the cache.
//!
//! Results go to `<out>/<revision>/<task>.json` (lm-eval layout, `model_args`
//! `pretrained=<repo>,revision=<rev>`, `model_revision`, `model_sha` = the weights' sha256, and the
//! k2 block with step and tokens seen), so `k2 report --lm-eval-results <out>` reads them. A
//! (revision, task) pair already done for the same weights is skipped before anything is
//! downloaded. A revision whose weights hash equals an earlier revision's is a duplicate: it is
//! reported and recorded in `<out>/sweep-summary.jsonl`, not evaluated again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use k2_archive::hub::{self, HubClient, HubError, PullOptions, Revision};
use k2_archive::Suite;
use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::evaluate::count_requests;
use crate::results::{read_metrics, stored_key, CheckpointInfo, ResultKey, HARNESS_VERSION};
use crate::summary::headline;
use crate::sweep::{eval_target, results_path, samples_path, Outcome, Target, TaskSpec};

/// The summary file of a hub sweep (JSON lines, not read as an lm-eval results file).
pub const SUMMARY_FILE: &str = "sweep-summary.jsonl";

/// What happened to one revision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevisionRecord {
    pub revision: String,
    pub step: Option<u64>,
    pub tokens: Option<u64>,
    pub commit: Option<String>,
    pub weights_sha256: Option<String>,
    /// `evaluated`, `done` (every task already had results), `duplicate`, or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its snapshot was removed from the cache after evaluation (`--keep`).
    pub evicted: bool,
}

#[derive(Debug, Default)]
pub struct HubSweepReport {
    pub records: Vec<RevisionRecord>,
    pub evaluated: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
    pub bytes_downloaded: u64,
}

impl HubSweepReport {
    pub fn with_status(&self, status: &str) -> Vec<&RevisionRecord> {
        self.records.iter().filter(|r| r.status == status).collect()
    }
}

/// Options of a hub sweep.
pub struct HubSweepOptions {
    /// Results root for this suite (`eval-results/<suite>`).
    pub out_dir: PathBuf,
    /// Keep at most this many snapshots pulled by this sweep in the cache.
    pub keep: Option<usize>,
    pub batch_size: usize,
    pub placement: k2_model::Placement,
}

fn hub_err(e: HubError) -> EvalError {
    EvalError::Other(e.to_string())
}

/// Errors after which no other revision of the repository can succeed. (Offline, a revision
/// missing from the cache fails alone: the others may be there.)
fn fatal(e: &HubError) -> bool {
    matches!(
        e,
        HubError::Gated { .. } | HubError::RepoNotFound { .. } | HubError::DiskFull { .. }
    )
}

/// The suite's revisions in training order: its list or pattern, else every checkpoint branch
/// the Hub (or, offline, the cache) lists.
pub fn suite_revisions(client: &HubClient, suite: &Suite) -> Result<Vec<String>> {
    let repo = suite
        .repo
        .as_deref()
        .ok_or_else(|| EvalError::Other(format!("suite `{}` has no repo", suite.name)))?;
    let names = match suite
        .hub_revisions()
        .map_err(|e| EvalError::Other(format!("suite `{}`: {e}", suite.name)))?
    {
        Some(list) => list,
        None => hub::list_revisions(client, repo, Some(suite))
            .map_err(hub_err)?
            .into_iter()
            .filter(|r| r.parsed.is_some())
            .map(|r| r.name)
            .collect(),
    };
    Ok(hub::training_order(&names))
}

/// Whether every task already has results for these weights.
fn all_done(out_dir: &Path, tasks: &[TaskSpec], weights: &str, dtype: &str) -> bool {
    tasks.iter().all(|t| {
        let name = t.task.name();
        let key = ResultKey {
            weights_sha256: weights.to_string(),
            task_hash: t.config_hash(),
            harness_version: HARNESS_VERSION.to_string(),
            dtype: dtype.to_string(),
        };
        stored_key(&results_path(out_dir, name)).as_ref() == Some(&key)
            && samples_path(out_dir, name).exists()
    })
}

fn write_summary(out_dir: &Path, records: &[RevisionRecord]) -> Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(|e| EvalError::Other(e.to_string()))?);
        text.push('\n');
    }
    std::fs::create_dir_all(out_dir).map_err(crate::error::io_err(out_dir))?;
    k2_archive::write_file_atomic(&out_dir.join(SUMMARY_FILE), text.as_bytes())
        .map_err(|e| EvalError::Other(e.to_string()))
}

/// Marks a revision as failed with the error, and says so.
fn mark_failed(rec: &mut RevisionRecord, e: &dyn std::fmt::Display, say: &mut dyn FnMut(String)) {
    say(format!("{}: {e}", rec.revision));
    rec.status = "failed".into();
    rec.error = Some(e.to_string());
}

/// Records a revision that failed (with the error), says so, and rewrites the summary.
fn record_failure(
    report: &mut HubSweepReport,
    mut rec: RevisionRecord,
    e: &dyn std::fmt::Display,
    out_dir: &Path,
    say: &mut dyn FnMut(String),
) -> Result<()> {
    mark_failed(&mut rec, e, say);
    report.records.push(rec);
    write_summary(out_dir, &report.records)
}

/// Runs the sweep; `say` receives one line per event (pulled, evaluated, duplicate, evicted).
pub fn sweep_hub(
    client: &HubClient,
    suite: &Suite,
    tasks: &[TaskSpec],
    opts: &HubSweepOptions,
    bar: &ProgressBar,
    say: &mut dyn FnMut(String),
) -> Result<HubSweepReport> {
    let repo = suite
        .repo
        .clone()
        .ok_or_else(|| EvalError::Other(format!("suite `{}` has no repo", suite.name)))?;
    let revisions = suite_revisions(client, suite)?;
    let per_rev: usize = tasks
        .iter()
        .map(|t| count_requests(t.task.as_ref(), t.shots, t.limit))
        .sum();
    let mut report = HubSweepReport::default();
    let mut dups = hub::Duplicates::default();
    // snapshots this sweep pulled and finished, oldest first: (revision, commit)
    let mut evictable: VecDeque<(usize, String)> = VecDeque::new();
    for rev in &revisions {
        let parsed = Revision::parse(rev);
        let mut rec = RevisionRecord {
            revision: rev.clone(),
            // The k2 block's step: the optimizer step of `stepN`, the number of `ckpt_N`.
            step: parsed.as_ref().map(|r| r.number),
            tokens: hub::tokens_of(rev, Some(suite)),
            commit: None,
            weights_sha256: None,
            status: String::new(),
            duplicate_of: None,
            error: None,
            evicted: false,
        };
        let out_dir = opts.out_dir.join(rev);
        // The weights' identity before any download: the listing's LFS sha256s (offline: the cache).
        let listed = if client.offline {
            hub::cached(client, &repo, rev).map(|p| (None, p.commit, Some(p.weights_sha256)))
        } else {
            client.revision_info(&repo, rev).map(|info| {
                let w = info.weights_sha256();
                (Some(info.clone()), info.sha, w)
            })
        };
        let (info, commit, weights) = match listed {
            Ok(x) => x,
            Err(e) if fatal(&e) => return Err(hub_err(e)),
            Err(e) => {
                record_failure(&mut report, rec, &e, &opts.out_dir, say)?;
                continue;
            }
        };
        rec.commit = Some(commit.clone());
        rec.weights_sha256 = weights.clone();
        if let Some(w) = &weights {
            if let Some(first) = dups.check(rev, w) {
                say(format!(
                    "{rev}: weights identical to {first} (sha256 {w}); not evaluated again"
                ));
                rec.status = "duplicate".into();
                rec.duplicate_of = Some(first);
                report.records.push(rec);
                write_summary(&opts.out_dir, &report.records)?;
                continue;
            }
            if all_done(&out_dir, tasks, w, &opts.placement.dtype.to_string()) {
                bar.inc_length(per_rev as u64);
                bar.inc(per_rev as u64);
                for t in tasks {
                    report
                        .skipped
                        .push((rev.clone(), t.task.name().to_string()));
                }
                rec.status = "done".into();
                report.records.push(rec);
                write_summary(&opts.out_dir, &report.records)?;
                continue;
            }
        }
        let was_cached = client.cache.snapshot_dir(&repo, &commit).is_dir();
        // config.json first: a model k2 cannot evaluate stops the sweep before any weights move.
        if let Some(info) = &info {
            if info.sibling("tokenizer.json").is_none() && info.sibling("tokenizer.model").is_none()
            {
                return Err(EvalError::Other(format!(
                    "{repo}@{rev} has neither tokenizer.json nor tokenizer.model; the sweep stops \
                     before downloading weights"
                )));
            }
            if let Err(e) = hub::pull::pull_file(client, &repo, rev, info, "config.json") {
                if fatal(&e) {
                    return Err(hub_err(e));
                }
                record_failure(&mut report, rec, &e, &opts.out_dir, say)?;
                continue;
            }
            let cfg = client
                .cache
                .snapshot_dir(&repo, &commit)
                .join("config.json");
            if let Err(e) = k2_model::LlamaConfig::from_hf_json(&cfg) {
                return Err(EvalError::Other(format!(
                    "{repo}@{rev}: {e}; k2 evaluates LLaMA-architecture checkpoints only, so the \
                     sweep stops before downloading weights"
                )));
            }
        }
        let pulled = match &info {
            Some(info) => hub::pull_listed(
                client,
                &repo,
                rev,
                info,
                &PullOptions::default(),
                &mut |_| {},
            ),
            None => hub::cached(client, &repo, rev),
        };
        let pulled = match pulled {
            Ok(p) => p,
            Err(e) if fatal(&e) => return Err(hub_err(e)),
            Err(e) => {
                record_failure(&mut report, rec, &e, &opts.out_dir, say)?;
                continue;
            }
        };
        report.bytes_downloaded += pulled.bytes_downloaded;
        if pulled.bytes_downloaded > 0 {
            say(format!(
                "{rev}: pulled {} bytes into {}",
                pulled.bytes_downloaded,
                pulled.dir.display()
            ));
        }
        if weights.as_deref() != Some(pulled.weights_sha256.as_str()) {
            if let Some(first) = dups.check(rev, &pulled.weights_sha256) {
                say(format!(
                    "{rev}: weights identical to {first} (sha256 {}); not evaluated again",
                    pulled.weights_sha256
                ));
                rec.status = "duplicate".into();
                rec.duplicate_of = Some(first);
                rec.weights_sha256 = Some(pulled.weights_sha256.clone());
                report.records.push(rec);
                if !was_cached {
                    evictable.push_back((report.records.len() - 1, commit.clone()));
                }
                write_summary(&opts.out_dir, &report.records)?;
                continue;
            }
        }
        rec.weights_sha256 = Some(pulled.weights_sha256.clone());
        // A checkpoint with only tokenizer.model or PyTorch weights is evaluated through a view
        // beside the cache with a converted tokenizer.json / safetensors.
        let dir =
            match crate::hub_view::model_dir(&client.cache, &repo, &pulled.commit, &pulled.dir) {
                Ok(d) => d,
                Err(e) => {
                    record_failure(&mut report, rec, &e, &opts.out_dir, say)?;
                    if !was_cached {
                        evictable.push_back((report.records.len() - 1, commit.clone()));
                    }
                    continue;
                }
            };
        let target = Target {
            dir,
            info: CheckpointInfo {
                model: repo.clone(),
                revision: rev.clone(),
                step: rec.step,
                tokens: rec.tokens,
                num_parameters: 0,
                ..Default::default()
            },
            weights_sha256: pulled.weights_sha256.clone(),
        };
        bar.inc_length(per_rev as u64);
        match eval_target(
            &target,
            tasks,
            &out_dir,
            opts.batch_size,
            &opts.placement,
            bar,
        ) {
            Ok(outcomes) => {
                for (task, o) in outcomes {
                    match o {
                        Outcome::Evaluated(_) => report.evaluated.push((rev.clone(), task)),
                        Outcome::Skipped(_) => report.skipped.push((rev.clone(), task)),
                    }
                }
                rec.status = "evaluated".into();
            }
            Err(e) => mark_failed(&mut rec, &e, say),
        }
        report.records.push(rec);
        if !was_cached {
            evictable.push_back((report.records.len() - 1, commit.clone()));
        }
        evict_beyond(client, &repo, opts.keep, &mut evictable, &mut report, say)?;
        write_summary(&opts.out_dir, &report.records)?;
    }
    // Snapshots of revisions that ended early (duplicates found after the pull, failures).
    evict_beyond(client, &repo, opts.keep, &mut evictable, &mut report, say)?;
    write_summary(&opts.out_dir, &report.records)?;
    Ok(report)
}

/// Evicts the oldest snapshots this sweep pulled until at most `keep` remain (no limit: none).
fn evict_beyond(
    client: &HubClient,
    repo: &str,
    keep: Option<usize>,
    evictable: &mut VecDeque<(usize, String)>,
    report: &mut HubSweepReport,
    say: &mut dyn FnMut(String),
) -> Result<()> {
    let Some(keep) = keep else {
        return Ok(());
    };
    while evictable.len() > keep {
        let (i, c) = evictable.pop_front().expect("non-empty");
        let freed = client.cache.evict(repo, &c).map_err(hub_err)?;
        crate::hub_view::remove_view(&client.cache, repo, &c)?;
        report.records[i].evicted = true;
        say(format!(
            "{}: evicted from the cache ({freed} bytes freed)",
            report.records[i].revision
        ));
    }
    Ok(())
}

/// Revision x task headline metrics of a finished sweep, with tokens and status.
pub fn table(report: &HubSweepReport, out_dir: &Path, tasks: &[TaskSpec]) -> Result<String> {
    let names: Vec<&str> = tasks.iter().map(|t| t.task.name()).collect();
    let width: Vec<usize> = names.iter().map(|t| t.len().max(8)).collect();
    let mut s = format!("{:<22} {:>16} {:<10}", "revision", "tokens", "status");
    for (t, w) in names.iter().zip(&width) {
        s.push_str(&format!(" {:>w$}", t, w = w));
    }
    s.push('\n');
    for r in &report.records {
        let tokens = r.tokens.map_or("-".to_string(), |t| t.to_string());
        s.push_str(&format!(
            "{:<22} {:>16} {:<10}",
            r.revision, tokens, r.status
        ));
        for (t, w) in names.iter().zip(&width) {
            let p = results_path(&out_dir.join(&r.revision), t);
            let v = if p.exists() {
                headline(&read_metrics(&p)?).map(|(_, v)| v)
            } else {
                None
            };
            match v {
                Some(v) => s.push_str(&format!(" {:>w$.3}", v, w = w)),
                None => s.push_str(&format!(" {:>w$}", "-", w = w)),
            }
        }
        if let Some(d) = &r.duplicate_of {
            s.push_str(&format!("  (= {d})"));
        }
        s.push('\n');
    }
    Ok(s)
}
