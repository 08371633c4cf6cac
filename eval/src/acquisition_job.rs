//! `k2 analyze acquisition`'s measurement as a sweep [`Job`]: at every `ok` and `spike`
//! checkpoint of a run with `[[inject_facts]]`, the target-span log-probability of every probe of
//! every injection (memorization, semantic and compositional, Chang et al. 2024), into
//! `<run>/acquisition/<checkpoint>.json`, written atomically. A file computed from the same
//! weights and probes is done; the sweep resumes where a killed one stopped.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use k2_archive::{
    AcquisitionFile, CheckpointStatus, ChunkOrder, InjectionRecord, Manifest, ProbeScore,
    RunLayout, SourceCheckpoint, ACQUISITION_FORMAT,
};
use k2_corpus::injection::{control_facts, fictional_facts};
use k2_model::span::{span_logprobs, span_sequence, SpanSequence};

use crate::error::{EvalError, Result};
use crate::sweep::{Job, Loaded};

/// One probe to score: its score skeleton and tokens.
struct Probe {
    score: ProbeScore,
    seq: SpanSequence,
}

pub struct AcquisitionJob {
    pub run_dir: PathBuf,
    pub placement: k2_model::Placement,
    manifest: Manifest,
    injections: Vec<InjectionRecord>,
    probes: Vec<Probe>,
    probes_sha: String,
    units: Vec<String>,
}

/// The probes of `injections`, tokenized with the run's tokenizer.
fn build_probes(run: &Path, injections: &[InjectionRecord]) -> Result<Vec<Probe>> {
    let tok = k2_model::load_tokenizer(&RunLayout::new(run).tokenizer_path())?;
    let mut out = Vec::new();
    for inj in injections {
        let sets = [
            (false, fictional_facts(inj.seed, inj.facts)),
            (true, control_facts(inj.seed, inj.facts)),
        ];
        for (control, facts) in sets {
            for fact in facts {
                for p in fact.probes() {
                    out.push(Probe {
                        score: ProbeScore {
                            injection: inj.name.clone(),
                            kind: p.kind.name().to_string(),
                            fact: fact.id,
                            control,
                            logprob: 0.0,
                        },
                        seq: span_sequence(&tok, &p.context, &p.target)?,
                    });
                }
            }
        }
    }
    Ok(out)
}

impl AcquisitionJob {
    /// Reads the run's manifest and chunk order; errors if the run has no injections.
    pub fn new(run_dir: &Path, placement: k2_model::Placement) -> Result<Self> {
        let layout = RunLayout::new(run_dir);
        let manifest = Manifest::load(&layout.manifest_path())?;
        let order = ChunkOrder::load(&layout.chunk_order_path())?;
        if order.injections.is_empty() {
            return Err(EvalError::Invalid {
                path: layout.chunk_order_path(),
                message: "the run has no knowledge injections (`[[inject_facts]]` in its config); \
                          see configs/acquisition.toml"
                    .into(),
            });
        }
        let probes = build_probes(run_dir, &order.injections)?;
        let tok_sha = k2_archive::sha256_file(&layout.tokenizer_path())?;
        let probes_sha = k2_archive::sha256_bytes(
            format!(
                "{}\ncontrol 1\n{tok_sha}",
                serde_json::to_string(
                    &order
                        .injections
                        .iter()
                        .map(|i| (&i.name, i.seed, i.facts))
                        .collect::<Vec<_>>()
                )?
            )
            .as_bytes(),
        );
        Ok(AcquisitionJob {
            run_dir: run_dir.to_path_buf(),
            placement,
            manifest,
            injections: order.injections,
            probes,
            probes_sha,
            units: vec!["acquisition".into()],
        })
    }

    pub fn statuses() -> Vec<CheckpointStatus> {
        vec![CheckpointStatus::Ok, CheckpointStatus::Spike]
    }

    pub fn injections(&self) -> &[InjectionRecord] {
        &self.injections
    }

    fn path(&self, name: &str) -> PathBuf {
        RunLayout::new(&self.run_dir)
            .acquisition_dir()
            .join(format!("{name}.json"))
    }

    /// Every measured checkpoint's file, in the manifest's order.
    pub fn files(&self) -> Result<Vec<AcquisitionFile>> {
        self.manifest
            .checkpoints
            .iter()
            .filter(|c| matches!(c.status, CheckpointStatus::Ok | CheckpointStatus::Spike))
            .map(|c| self.path(&c.name))
            .filter(|p| p.exists())
            .map(|p| Ok(k2_archive::read_acquisition_file(&p)?))
            .collect()
    }
}

impl Job for AcquisitionJob {
    fn verb(&self) -> &'static str {
        "measured"
    }

    fn units(&self) -> &[String] {
        &self.units
    }

    fn accepts(&self, c: &SourceCheckpoint) -> bool {
        c.status
            .is_some_and(|s| matches!(s, CheckpointStatus::Ok | CheckpointStatus::Spike))
    }

    fn cost(&self, _unit: usize) -> u64 {
        self.probes.len() as u64
    }

    fn root(&self) -> PathBuf {
        RunLayout::new(&self.run_dir).acquisition_dir()
    }

    fn claim_path(&self, c: &SourceCheckpoint, _unit: usize) -> PathBuf {
        self.root().join(format!("{}.claim", c.name))
    }

    fn done(&self, c: &SourceCheckpoint, weights: Option<&str>, _unit: usize) -> Result<bool> {
        let Ok(old) = k2_archive::read_acquisition_file(&self.path(&c.name)) else {
            return Ok(false);
        };
        Ok(weights.is_none_or(|w| old.weights_sha256 == w && old.probes_sha256 == self.probes_sha))
    }

    fn run(&self, ckpt: &Loaded, _units: &[usize], bar: &ProgressBar) -> Result<()> {
        let name = &ckpt.checkpoint.name;
        crate::checkpoint_file::prepare(&self.root(), name)?;
        bar.set_message(name.clone());
        let entry = crate::checkpoint_file::manifest_entry(&self.manifest, &self.run_dir, name)?;
        let model = k2_model::load_decoder_on(&ckpt.dir, &self.placement)?;
        let seqs: Vec<SpanSequence> = self.probes.iter().map(|p| p.seq.clone()).collect();
        let lp = span_logprobs(
            &|ids| model.forward(ids),
            &seqs,
            model.arch().max_position_embeddings,
            model.device(),
        )?;
        bar.inc(self.probes.len() as u64);
        let file = AcquisitionFile {
            format: ACQUISITION_FORMAT,
            run: self.manifest.run.clone(),
            checkpoint: name.clone(),
            status: entry.status.to_string(),
            step: entry.step,
            tokens: entry.tokens,
            weights_sha256: ckpt.weights_sha256.to_string(),
            probes_sha256: self.probes_sha.clone(),
            scores: self
                .probes
                .iter()
                .zip(lp)
                .map(|(p, logprob)| ProbeScore {
                    logprob,
                    ..p.score.clone()
                })
                .collect(),
        };
        Ok(k2_archive::write_json_atomic(&self.path(name), &file)?)
    }
}

/// Measures every `ok` and `spike` checkpoint of `run` not yet measured; returns the job (for
/// its files and injections) and the sweep's report.
pub fn measure_run(
    run: &Path,
    placement: &k2_model::Placement,
    bar: &ProgressBar,
) -> Result<(AcquisitionJob, crate::sweep::SweepReport)> {
    let job = AcquisitionJob::new(run, placement.clone())?;
    let mut source = k2_archive::RunSource::with_statuses(run, AcquisitionJob::statuses());
    let report = crate::sweep::sweep(&mut source, &job, &Default::default(), bar, &mut |l| {
        bar.suspend(|| eprintln!("{l}"))
    })?;
    Ok((job, report))
}
