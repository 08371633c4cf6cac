//! `k2 analyze tokens`' measurement as a sweep [`Job`]: at every `ok` checkpoint of a k2 run, the
//! surprisal of every token of a fixed held-out text, into `<run>/token_curves/<ckpt>.json`
//! (atomic; a file for the same weights and text is done, so a killed sweep resumes).
//!
//! The held-out text: documents [`HELDOUT_FIRST_DOC`].. of every source the run trained on, far
//! past the documents any chunk holds (training takes them from the start of each stage's range),
//! each tokenized with the run's tokenizer, cut to the run's shortest training sequence and scored
//! behind an EOS, as training packs documents.

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use indicatif::ProgressBar;
use k2_archive::{
    CheckpointStatus, HeldOutDoc, Manifest, RunLayout, SourceCheckpoint, TokenCurvesFile,
    TOKEN_CURVES_FORMAT,
};

use crate::error::{EvalError, Result};
use crate::sweep::{Job, Loaded};

/// The first held-out document index of every source.
pub const HELDOUT_FIRST_DOC: u64 = 900_000_000;
/// Held-out documents per source.
pub const HELDOUT_DOCS: u64 = 4;

/// A held-out document to score.
#[derive(Debug, Clone)]
pub struct HeldOut {
    pub source: String,
    pub doc: u64,
    /// EOS then the document's tokens.
    pub ids: Vec<u32>,
}

/// The held-out documents of `run` (sources from its data index, in name order).
pub fn held_out(run: &Path) -> Result<Vec<HeldOut>> {
    let layout = RunLayout::new(run);
    let index = k2_archive::read_index(&layout.data_dir())?;
    let mut sources: Vec<String> = index
        .chunks
        .iter()
        .flat_map(|c| c.tokens_by_source.keys().cloned())
        .filter(|s| k2_corpus::source(s).is_some())
        .collect();
    sources.sort();
    sources.dedup();
    // Every checkpoint scores the same tokens: documents are cut to the shortest context the run
    // trains at (its first stage's sequence length).
    let context = index.chunks.iter().map(|c| c.seq_len).min().unwrap_or(0);
    let path = layout.tokenizer_path();
    let tok = k2_model::load_tokenizer(&path)?;
    let eos = tok.token_to_id("</s>").ok_or_else(|| EvalError::Invalid {
        path: path.clone(),
        message: "the tokenizer has no `</s>`".into(),
    })?;
    let mut out = Vec::new();
    for s in sources {
        let src = k2_corpus::source(&s).expect("filtered above");
        for doc in HELDOUT_FIRST_DOC..HELDOUT_FIRST_DOC + HELDOUT_DOCS {
            let enc = tok
                .encode(src.document(doc), false)
                .map_err(|e| EvalError::Invalid {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let mut ids = vec![eos];
            ids.extend_from_slice(enc.get_ids());
            ids.truncate(context);
            out.push(HeldOut {
                source: s.clone(),
                doc,
                ids,
            });
        }
    }
    Ok(out)
}

pub struct TokenCurvesJob {
    pub run_dir: PathBuf,
    pub placement: k2_model::Placement,
    manifest: Manifest,
    docs: Vec<HeldOut>,
    text_sha: String,
    units: Vec<String>,
}

impl TokenCurvesJob {
    pub fn new(run_dir: &Path, placement: k2_model::Placement) -> Result<Self> {
        let manifest = Manifest::load(&RunLayout::new(run_dir).manifest_path())?;
        let docs = held_out(run_dir)?;
        let text_sha = k2_archive::sha256_bytes(
            serde_json::to_string(&docs.iter().map(|d| &d.ids).collect::<Vec<_>>())?.as_bytes(),
        );
        Ok(TokenCurvesJob {
            run_dir: run_dir.to_path_buf(),
            placement,
            manifest,
            docs,
            text_sha,
            units: vec!["token curves".into()],
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        RunLayout::new(&self.run_dir)
            .token_curves_dir()
            .join(format!("{name}.json"))
    }
}

impl Job for TokenCurvesJob {
    fn verb(&self) -> &'static str {
        "measured"
    }

    fn units(&self) -> &[String] {
        &self.units
    }

    fn accepts(&self, c: &SourceCheckpoint) -> bool {
        c.status == Some(CheckpointStatus::Ok)
    }

    fn cost(&self, _unit: usize) -> u64 {
        self.docs.len() as u64
    }

    fn root(&self) -> PathBuf {
        RunLayout::new(&self.run_dir).token_curves_dir()
    }

    fn claim_path(&self, c: &SourceCheckpoint, _unit: usize) -> PathBuf {
        self.root().join(format!("{}.claim", c.name))
    }

    fn done(&self, c: &SourceCheckpoint, weights: Option<&str>, _unit: usize) -> Result<bool> {
        let Ok(old) = k2_archive::read_token_curves_file(&self.path(&c.name)) else {
            return Ok(false);
        };
        Ok(weights.is_none_or(|w| old.weights_sha256 == w && old.text_sha256 == self.text_sha))
    }

    fn run(&self, ckpt: &Loaded, _units: &[usize], bar: &ProgressBar) -> Result<()> {
        let name = &ckpt.checkpoint.name;
        crate::checkpoint_file::prepare(&self.root(), name)?;
        bar.set_message(name.clone());
        let entry = crate::checkpoint_file::manifest_entry(&self.manifest, &self.run_dir, name)?;
        let model = k2_model::load_decoder_on(&ckpt.dir, &self.placement)?;
        let max = model.arch().max_position_embeddings;
        let mut docs = Vec::with_capacity(self.docs.len());
        for d in &self.docs {
            let ids = &d.ids[..d.ids.len().min(max)];
            let t = Tensor::from_vec(ids.to_vec(), (1, ids.len()), model.device())?;
            let lp = k2_model::next_token_logprobs(&model.forward(&t)?, &[ids.to_vec()])?;
            let lp: Vec<f32> = lp[0].iter().map(|&x| x as f32).collect();
            docs.push(HeldOutDoc {
                source: d.source.clone(),
                doc: d.doc,
                ids: ids[1..].to_vec(),
                surprisal: lp.iter().map(|x| -x).collect(),
            });
            bar.inc(1);
        }
        let file = TokenCurvesFile {
            format: TOKEN_CURVES_FORMAT,
            run: self.manifest.run.clone(),
            checkpoint: name.clone(),
            status: entry.status.to_string(),
            step: entry.step,
            tokens: entry.tokens,
            weights_sha256: ckpt.weights_sha256.to_string(),
            text_sha256: self.text_sha.clone(),
            vocab_size: model.arch().vocab_size,
            docs,
        };
        let json = serde_json::to_string(&file)? + "\n";
        Ok(k2_archive::write_file_atomic(
            &self.path(name),
            json.as_bytes(),
        )?)
    }
}

/// Measures every `ok` checkpoint of `run` not yet measured.
pub fn measure_run(
    run: &Path,
    placement: &k2_model::Placement,
    bar: &ProgressBar,
) -> Result<crate::sweep::SweepReport> {
    let job = TokenCurvesJob::new(run, placement.clone())?;
    let mut source = k2_archive::RunSource::with_statuses(run, vec![CheckpointStatus::Ok]);
    crate::sweep::sweep(&mut source, &job, &Default::default(), bar, &mut |l| {
        bar.suspend(|| eprintln!("{l}"))
    })
}
