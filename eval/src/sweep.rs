//! The one sweep: every checkpoint of a [`CheckpointSource`] through a [`Job`] (benchmarks,
//! memorization, ...). Per checkpoint, in training order:
//!
//! 1. skip units whose results exist for the same weights (known from the source's manifest or
//!    listing before anything is fetched);
//! 2. materialise the checkpoint (verified against the source's hashes), or record why not;
//! 3. a checkpoint whose weights equal an earlier one's is a duplicate: recorded, not run again;
//! 4. run the job's units, which write their files atomically;
//! 5. with `--keep N`, release the oldest checkpoints this sweep fetched beyond N;
//! 6. rewrite the summary ([`k2_archive::sweep_summary`]).
//!
//! The (checkpoint × unit) work splits across processes: `--shard I/N` takes the units whose
//! index in training order is I mod N, and claim files ([`k2_archive::claim`]) let workers that
//! start at any time share what is left. Either way each result file is written by exactly one
//! process, with the same bytes a single-process sweep writes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use indicatif::ProgressBar;
use k2_archive::claim::{read_claim, release_claim, try_claim, Claim, ClaimState};
use k2_archive::hub::Duplicates;
use k2_archive::sweep_summary::{
    read_summary, summary_file_name, summary_files, write_summary, CheckpointRecord,
};
use k2_archive::{CheckpointSource, Materialised, SourceCheckpoint, SourceError};

use crate::error::{EvalError, Result};

/// A checkpoint ready for a job: its directory (or converted view) and identity.
pub struct Loaded<'a> {
    pub checkpoint: &'a SourceCheckpoint,
    pub dir: PathBuf,
    pub weights_sha256: &'a str,
    /// What results name as the model (the source's [`CheckpointSource::model`]).
    pub model: &'a str,
}

/// What a sweep does to each checkpoint, as units of work (a benchmark task each; one for
/// memorization).
pub trait Job {
    /// What the summary line says of finished units: `evaluated`, `measured`.
    fn verb(&self) -> &'static str;
    /// The units, in order.
    fn units(&self) -> &[String];
    /// Whether the job applies to this checkpoint at all.
    fn accepts(&self, _c: &SourceCheckpoint) -> bool {
        true
    }
    /// Progress-bar cost of one unit on one checkpoint.
    fn cost(&self, unit: usize) -> u64;
    /// Where summaries go.
    fn root(&self) -> PathBuf;
    /// The claim file of a unit (beside its results).
    fn claim_path(&self, c: &SourceCheckpoint, unit: usize) -> PathBuf;
    /// Whether the unit's results exist for these weights (`None`: exist at all). May refresh
    /// labels that do not depend on the weights.
    fn done(&self, c: &SourceCheckpoint, weights: Option<&str>, unit: usize) -> Result<bool>;
    /// Runs `units` on the checkpoint, writing their results.
    fn run(&self, ckpt: &Loaded, units: &[usize], bar: &ProgressBar) -> Result<()>;
}

/// Which share of the (checkpoint × unit) work this process takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with 0 <= I < N (Slurm's `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected I/N, e.g. 0/4"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: I is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: N is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("`{s}`: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether unit `u` of the checkpoint at `position` in training order is this shard's.
    pub fn owns(&self, position: usize, units: usize, u: usize) -> bool {
        (position * units + u) % self.count == self.index
    }
}

/// How a sweep runs.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    pub shard: Shard,
    /// Claim units with claim files; a claim older than this many seconds (or of a process gone
    /// from this host) is stale and taken over.
    pub claim_ttl_s: Option<u64>,
    /// Keep at most this many checkpoints fetched by this sweep (Hub snapshots) on disk.
    pub keep: Option<usize>,
    /// Keep polling the source, at this interval, until it has all the checkpoints it expects
    /// ([`CheckpointSource::expected_count`]).
    pub watch: Option<Duration>,
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub records: Vec<CheckpointRecord>,
    /// (checkpoint, unit) pairs run now.
    pub evaluated: Vec<(String, String)>,
    /// Pairs whose results already existed.
    pub skipped: Vec<(String, String)>,
    /// Pairs another worker holds a live claim on.
    pub claimed_elsewhere: BTreeSet<(String, String)>,
    /// Pairs of the checkpoints this worker looked at that belong to other shards.
    pub others: BTreeSet<(String, String)>,
    pub bytes_downloaded: u64,
    /// The summary file this process wrote.
    pub summary: PathBuf,
}

impl SweepReport {
    pub fn with_status(&self, status: &str) -> Vec<&CheckpointRecord> {
        self.records.iter().filter(|r| r.status == status).collect()
    }

    /// (checkpoint, reason) of every failed checkpoint.
    pub fn failed(&self) -> Vec<(String, String)> {
        self.with_status("failed")
            .into_iter()
            .map(|r| (r.revision.clone(), r.error.clone().unwrap_or_default()))
            .collect()
    }

    /// The line that ends a sweep's output.
    pub fn summary_line(&self, verb: &str) -> String {
        let mut s = format!(
            "{} {verb}, {} already done, {} duplicate checkpoints, {} checkpoints failed",
            self.evaluated.len(),
            self.skipped.len(),
            self.with_status("duplicate").len(),
            self.with_status("failed").len(),
        );
        if !self.claimed_elsewhere.is_empty() {
            s.push_str(&format!(
                ", {} claimed by other workers",
                self.claimed_elsewhere.len()
            ));
        }
        let evicted = self.records.iter().filter(|r| r.evicted).count();
        if evicted > 0 || self.bytes_downloaded > 0 {
            s.push_str(&format!(
                ", {evicted} evicted, {} downloaded",
                human_bytes(self.bytes_downloaded)
            ));
        }
        s
    }
}

/// `1.5 GiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// How long `--watch` waits for a trainer that has not taken its run's lock yet.
const WATCH_GRACE: Duration = Duration::from_secs(10);

/// The state of one sweep while it runs.
struct Sweeper<'a> {
    job: &'a dyn Job,
    opts: &'a SweepOptions,
    bar: &'a ProgressBar,
    report: SweepReport,
    dups: Duplicates,
    /// Checkpoints this sweep fetched and finished, oldest first.
    evictable: VecDeque<(usize, SourceCheckpoint, Materialised)>,
}

impl Sweeper<'_> {
    fn record(&mut self, rec: CheckpointRecord) -> Result<()> {
        self.report.records.push(rec);
        Ok(write_summary(&self.report.summary, &self.report.records)?)
    }

    fn fail(
        &mut self,
        mut rec: CheckpointRecord,
        why: String,
        say: &mut dyn FnMut(String),
    ) -> Result<()> {
        say(format!("{}: {why}", rec.revision));
        rec.status = "failed".into();
        rec.error = Some(why);
        self.record(rec)
    }

    fn cost(&self, units: &[usize]) -> u64 {
        units.iter().map(|&u| self.job.cost(u)).sum()
    }

    fn pairs(&self, c: &SourceCheckpoint, units: &[usize]) -> Vec<(String, String)> {
        let names = self.job.units();
        units
            .iter()
            .map(|&u| (c.name.clone(), names[u].clone()))
            .collect()
    }

    /// Releases the oldest fetched checkpoints until at most `keep` remain.
    fn evict_beyond(
        &mut self,
        source: &mut dyn CheckpointSource,
        say: &mut dyn FnMut(String),
    ) -> Result<()> {
        let Some(keep) = self.opts.keep else {
            return Ok(());
        };
        while self.evictable.len() > keep {
            let (i, c, m) = self.evictable.pop_front().expect("non-empty");
            let freed = source.release(&c, &m)?;
            self.report.records[i].evicted = true;
            say(format!(
                "{}: evicted from the cache ({freed} bytes freed)",
                c.name
            ));
        }
        Ok(write_summary(&self.report.summary, &self.report.records)?)
    }

    /// Claims what it can of `units`; the rest are held by live claims of other workers.
    fn claim(
        &mut self,
        c: &SourceCheckpoint,
        units: Vec<usize>,
        weights: Option<&str>,
    ) -> Result<Vec<usize>> {
        let Some(ttl) = self.opts.claim_ttl_s else {
            return Ok(units);
        };
        let mut mine = Vec::new();
        for u in units {
            let path = self.job.claim_path(c, u);
            if try_claim(&path, ttl)? {
                // Another worker may have finished it between the check and the claim.
                if weights.is_some() && self.job.done(c, weights, u)? {
                    release_claim(&path)?;
                    self.bar.inc(self.job.cost(u));
                    let p = self.pairs(c, &[u]);
                    self.report.skipped.extend(p);
                    continue;
                }
                mine.push(u);
            } else {
                self.bar.inc(self.job.cost(u));
                let p = self.pairs(c, &[u]);
                self.report.claimed_elsewhere.extend(p);
            }
        }
        Ok(mine)
    }

    fn unclaim(&self, c: &SourceCheckpoint, units: &[usize]) -> Result<()> {
        if self.opts.claim_ttl_s.is_some() {
            for &u in units {
                release_claim(&self.job.claim_path(c, u))?;
            }
        }
        Ok(())
    }

    fn checkpoint(
        &mut self,
        source: &mut dyn CheckpointSource,
        model: &str,
        c: &SourceCheckpoint,
        mine: Vec<usize>,
        say: &mut dyn FnMut(String),
    ) -> Result<()> {
        let mut rec = CheckpointRecord {
            revision: c.name.clone(),
            step: c.step,
            tokens: c.tokens,
            commit: None,
            weights_sha256: None,
            status: String::new(),
            duplicate_of: None,
            error: None,
            evicted: false,
        };
        self.bar.inc_length(self.cost(&mine));
        // The weights' identity before anything is fetched.
        let expected = match source.expected_weights(c) {
            Ok(w) => w,
            Err(e @ SourceError::Fatal(_)) => return Err(e.into()),
            Err(SourceError::Checkpoint(e)) => {
                self.bar.inc(self.cost(&mine));
                return self.fail(rec, e, say);
            }
        };
        let mut todo = mine.clone();
        if let Some(w) = &expected {
            rec.weights_sha256 = Some(w.clone());
            if let Some(first) = self.dups.check(&c.name, w) {
                return self.duplicate(rec, first, w, &mine, say);
            }
            todo = self.not_done(c, Some(w), &mine)?;
            if todo.is_empty() {
                rec.status = "done".into();
                return self.record(rec);
            }
        }
        let todo = self.claim(c, todo, expected.as_deref())?;
        if todo.is_empty() {
            rec.status = "claimed".into();
            return self.record(rec);
        }
        // Claims are kept fresh while the work runs: a live worker's claim never goes stale.
        let beat = self.opts.claim_ttl_s.map(|ttl| {
            let paths = todo.iter().map(|&u| self.job.claim_path(c, u)).collect();
            k2_archive::claim::heartbeat(paths, Duration::from_secs((ttl / 4).max(1)))
        });
        let result = self.fetch_and_run(source, model, c, &mut rec, todo.clone(), say);
        drop(beat);
        self.unclaim(c, &todo)?;
        result?;
        self.evict_beyond(source, say)
    }

    /// Units of `units` without results for these weights; counts the others as skipped.
    fn not_done(
        &mut self,
        c: &SourceCheckpoint,
        weights: Option<&str>,
        units: &[usize],
    ) -> Result<Vec<usize>> {
        let mut todo = Vec::new();
        for &u in units {
            if self.job.done(c, weights, u)? {
                self.bar.inc(self.job.cost(u));
                let p = self.pairs(c, &[u]);
                self.report.skipped.extend(p);
            } else {
                todo.push(u);
            }
        }
        Ok(todo)
    }

    fn duplicate(
        &mut self,
        mut rec: CheckpointRecord,
        first: String,
        weights: &str,
        units: &[usize],
        say: &mut dyn FnMut(String),
    ) -> Result<()> {
        say(format!(
            "{}: weights identical to {first} (sha256 {weights}); not evaluated again",
            rec.revision
        ));
        self.bar.inc(self.cost(units));
        rec.status = "duplicate".into();
        rec.duplicate_of = Some(first);
        rec.weights_sha256 = Some(weights.to_string());
        self.record(rec)
    }

    fn fetch_and_run(
        &mut self,
        source: &mut dyn CheckpointSource,
        model: &str,
        c: &SourceCheckpoint,
        rec: &mut CheckpointRecord,
        todo: Vec<usize>,
        say: &mut dyn FnMut(String),
    ) -> Result<()> {
        let m = match source.materialise(c, say) {
            Ok(m) => m,
            Err(e @ SourceError::Fatal(_)) => return Err(e.into()),
            Err(SourceError::Checkpoint(e)) => {
                self.bar.inc(self.cost(&todo));
                return self.fail(rec.clone(), e, say);
            }
        };
        self.report.bytes_downloaded += m.bytes_downloaded;
        rec.commit = m.commit.clone();
        let evictable = |s: &mut Self, m: Materialised| {
            if m.owned {
                let i = s.report.records.len() - 1;
                s.evictable.push_back((i, c.clone(), m));
            }
        };
        let todo = if rec.weights_sha256.as_deref() != Some(m.weights_sha256.as_str()) {
            if let Some(first) = self.dups.check(&c.name, &m.weights_sha256) {
                self.duplicate(rec.clone(), first, &m.weights_sha256, &todo, say)?;
                evictable(self, m);
                return Ok(());
            }
            rec.weights_sha256 = Some(m.weights_sha256.clone());
            self.not_done(c, Some(&m.weights_sha256), &todo)?
        } else {
            todo
        };
        if todo.is_empty() {
            rec.status = "done".into();
            self.record(rec.clone())?;
            evictable(self, m);
            return Ok(());
        }
        let dir = match crate::model_view::model_dir(&m.dir, m.view_dir.as_deref()) {
            Ok(d) => d,
            Err(e) => {
                self.bar.inc(self.cost(&todo));
                self.fail(rec.clone(), e.to_string(), say)?;
                evictable(self, m);
                return Ok(());
            }
        };
        let loaded = Loaded {
            checkpoint: c,
            dir,
            weights_sha256: &m.weights_sha256,
            model,
        };
        let start = self.bar.position();
        match self.job.run(&loaded, &todo, self.bar) {
            Ok(()) => {
                let p = self.pairs(c, &todo);
                self.report.evaluated.extend(p);
                rec.status = "evaluated".into();
                self.record(rec.clone())?;
            }
            Err(e) => {
                self.bar.set_position(start + self.cost(&todo));
                self.fail(rec.clone(), e.to_string(), say)?;
            }
        }
        evictable(self, m);
        Ok(())
    }
}

/// Runs `job` over every checkpoint of `source`; see the module docs. `say` receives one line
/// per event (pulled, duplicate, evicted, failed).
pub fn sweep(
    source: &mut dyn CheckpointSource,
    job: &dyn Job,
    opts: &SweepOptions,
    bar: &ProgressBar,
    say: &mut dyn FnMut(String),
) -> Result<SweepReport> {
    let shard = (opts.shard.count > 1).then_some((opts.shard.index, opts.shard.count));
    let summary = job
        .root()
        .join(summary_file_name(shard, opts.claim_ttl_s.is_some()));
    let mut s = Sweeper {
        job,
        opts,
        bar,
        report: SweepReport {
            summary,
            ..Default::default()
        },
        dups: Duplicates::default(),
        evictable: VecDeque::new(),
    };
    let model = source.model();
    if opts.watch.is_some() && source.expected_count().is_none() {
        return Err(EvalError::Settings(format!(
            "--watch follows a k2 run that is training; {model} cannot say how many checkpoints \
             are to come (a run has a data index once it is set up)"
        )));
    }
    let n_units = job.units().len();
    let mut seen = BTreeSet::new();
    let started = std::time::Instant::now();
    // Under --watch: a producer seen alive, and one more listing after it was found gone.
    let (mut producer_seen, mut last_look) = (false, false);
    loop {
        let all = source.checkpoints()?;
        let accepted: Vec<SourceCheckpoint> = all.into_iter().filter(|c| job.accepts(c)).collect();
        for (pos, c) in accepted.iter().enumerate() {
            if !seen.insert(c.name.clone()) {
                continue;
            }
            let mine: Vec<usize> = (0..n_units)
                .filter(|&u| opts.shard.owns(pos, n_units, u))
                .collect();
            if mine.is_empty() {
                // Another shard's checkpoint: its weights still count for duplicates (known
                // without fetching, e.g. from a Hub listing), so every shard marks the same
                // revisions duplicate as one process would.
                if let Ok(Some(w)) = source.expected_weights(c) {
                    s.dups.check(&c.name, &w);
                }
                continue;
            }
            let theirs: Vec<usize> = (0..n_units).filter(|u| !mine.contains(u)).collect();
            let p = s.pairs(c, &theirs);
            s.report.others.extend(p);
            s.checkpoint(source, &model, c, mine, say)?;
        }
        let Some(poll) = opts.watch else { break };
        let expected = source.expected_count().unwrap_or(0);
        if seen.len() >= expected {
            break;
        }
        match source.producer_alive() {
            Some(false) if last_look => {
                return Err(EvalError::Settings(format!(
                    "{model}: training stopped with {} of {expected} checkpoints written (no \
                     live trainer holds the run); --watch gives up, the {} evaluated are kept",
                    seen.len(),
                    s.report.evaluated.len()
                )));
            }
            // Gone (or, after a grace for a trainer still starting, never there): list once
            // more, in case it wrote its last checkpoint and ended meanwhile.
            Some(false) if producer_seen || started.elapsed() > WATCH_GRACE => {
                last_look = true;
                continue;
            }
            Some(true) => producer_seen = true,
            _ => {}
        }
        std::thread::sleep(poll);
    }
    // Snapshots of checkpoints that ended early (duplicates found after the pull, failures).
    s.evict_beyond(source, say)?;
    Ok(s.report)
}

/// The state of one (checkpoint, unit) pair on disk, for `k2 eval --status`.
#[derive(Debug, Clone, PartialEq)]
pub enum PairState {
    Done,
    Claimed { claim: Claim, stale: bool },
    Failed(String),
    Pending,
}

/// Every (checkpoint, unit) pair of the sweep `job` over `source` with its state: done
/// (results for the expected weights, or any results where the source cannot tell without
/// fetching), claimed (by whom, and whether the claim is stale), failed (per the latest summary
/// of any worker that recorded the checkpoint), or pending.
pub fn status(
    source: &mut dyn CheckpointSource,
    job: &dyn Job,
    claim_ttl_s: u64,
) -> Result<Vec<(String, String, PairState)>> {
    let mut failed: BTreeMap<String, Option<String>> = BTreeMap::new();
    for f in summary_files(&job.root()) {
        for r in read_summary(&f)? {
            let why = (r.status == "failed").then(|| r.error.unwrap_or_default());
            if why.is_some() || !failed.contains_key(&r.revision) {
                failed.insert(r.revision, why);
            }
        }
    }
    let mut out = Vec::new();
    for c in source.checkpoints()? {
        if !job.accepts(&c) {
            continue;
        }
        let weights = source.expected_weights(&c).ok().flatten();
        for (u, name) in job.units().iter().enumerate() {
            let state = if job.done(&c, weights.as_deref(), u)? {
                PairState::Done
            } else {
                match read_claim(&job.claim_path(&c, u), claim_ttl_s) {
                    ClaimState::Live(claim) => PairState::Claimed {
                        claim,
                        stale: false,
                    },
                    ClaimState::Stale(claim) => PairState::Claimed { claim, stale: true },
                    ClaimState::Free => match failed.get(&c.name) {
                        Some(Some(why)) => PairState::Failed(why.clone()),
                        _ => PairState::Pending,
                    },
                }
            };
            out.push((c.name.clone(), name.clone(), state));
        }
    }
    Ok(out)
}
