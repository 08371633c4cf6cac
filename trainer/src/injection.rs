//! `[[inject_facts]]`: fictional facts entering the training stream at a chosen chunk and step
//! (Chang et al. 2024's knowledge injection, Bordt & Pawelczyk 2025's experiments inside one run).
//!
//! The injection is applied when the run's data is built: repetition `r` of an injection is
//! trained at step `offset + r` of its chunk's interval, where it replaces the first `facts`
//! samples of that step's batch. Each replacing sample holds one fact's text and EOS, then the
//! replaced sample's tokens fill the rest of the sequence (recorded as `spliced`). Because the
//! injection lives in the chunk file, `k2 data batch` shows it, `k2 verify` replays it, and a chunk
//! deferred by a spike rollback carries it along.

use k2_corpus::injection::{fictional_facts, FictionalFact};
use k2_model::Tokenizer;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::packing::Sample;
use crate::tokenizer_train::{encode, EOS_ID};

/// How an injection repeats its facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectMode {
    /// Each fact once, in its first phrasing.
    Once,
    /// The same first phrasing `k` times, one step after another.
    Duplicate,
    /// `k` different phrasings, one step after another.
    Paraphrase,
}

impl InjectMode {
    pub fn name(self) -> &'static str {
        match self {
            InjectMode::Once => "once",
            InjectMode::Duplicate => "duplicate",
            InjectMode::Paraphrase => "paraphrase",
        }
    }
}

fn one() -> u64 {
    1
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

/// One `[[inject_facts]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectFacts {
    /// Names the injection in provenance (`inject:<name>`), the manifest and the analysis.
    pub name: String,
    /// Seed of the fictional facts (`k2_corpus::injection::fictional_facts`).
    pub seed: u64,
    /// Number of facts (at most `train.global_batch`: one sample each per repetition).
    pub facts: usize,
    /// The chunk whose interval trains the injection (it moves with the chunk).
    pub chunk: u32,
    /// The step of the interval (0-based) of the first repetition.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
    pub mode: InjectMode,
    /// Repetitions (1 for `once`), at steps `offset .. offset + k` of the interval.
    #[serde(default = "one")]
    pub k: u64,
    /// Score the probes after each of this many steps from the first repetition on, into
    /// `acquisition/dense.jsonl` (0: checkpoints only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dense_steps: u64,
}

impl InjectFacts {
    /// The injection's facts.
    pub fn fictional_facts(&self) -> Vec<FictionalFact> {
        fictional_facts(self.seed, self.facts)
    }

    /// Provenance source of its samples.
    pub fn source(&self) -> String {
        format!("inject:{}", self.name)
    }

    /// The text of repetition `r` of `fact`.
    pub fn text(&self, fact: &FictionalFact, r: u64) -> String {
        match self.mode {
            InjectMode::Once | InjectMode::Duplicate => fact.phrasing(0),
            InjectMode::Paraphrase => fact.phrasing(r as usize),
        }
    }

    /// Checks the table against the run's shape; `i` is its index in the config.
    pub fn validate(
        &self,
        i: usize,
        total_chunks: u32,
        global_batch: usize,
        steps_per_checkpoint: u64,
    ) -> Result<()> {
        let f = |name: &str, reason: String| TrainError::Field {
            field: format!("inject_facts[{i}].{name}"),
            reason,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(f(
                "name",
                format!(
                    "`{}` must be non-empty letters, digits, `_` or `-`",
                    self.name
                ),
            ));
        }
        if self.chunk >= total_chunks {
            return Err(f(
                "chunk",
                format!(
                    "{} is not a chunk id (the run has {total_chunks})",
                    self.chunk
                ),
            ));
        }
        if self.facts == 0 || self.facts > global_batch {
            return Err(f(
                "facts",
                format!(
                    "{} must be 1..={global_batch} (train.global_batch: one sample per fact and step)",
                    self.facts
                ),
            ));
        }
        if self.k == 0 || (self.mode == InjectMode::Once && self.k != 1) {
            return Err(f(
                "k",
                format!("{} must be at least 1, and 1 for mode `once`", self.k),
            ));
        }
        if self.offset + self.k > steps_per_checkpoint {
            return Err(f(
                "k",
                format!(
                    "offset {} + k {} exceeds the interval's {steps_per_checkpoint} steps",
                    self.offset, self.k
                ),
            ));
        }
        Ok(())
    }
}

/// Checks that no two injections share a name or a (chunk, step).
pub fn check_disjoint(injections: &[InjectFacts]) -> Result<()> {
    for (i, a) in injections.iter().enumerate() {
        for b in &injections[..i] {
            let overlap =
                a.chunk == b.chunk && a.offset < b.offset + b.k && b.offset < a.offset + a.k;
            if a.name == b.name || overlap {
                return Err(TrainError::Field {
                    field: format!("inject_facts[{i}]"),
                    reason: format!(
                        "`{}` {} `{}`",
                        a.name,
                        if a.name == b.name {
                            "has the name of"
                        } else {
                            "shares training steps of its chunk with"
                        },
                        b.name
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Applies the injections of chunk `chunk` to its (shuffled) samples.
pub fn apply(
    injections: &[InjectFacts],
    chunk: u32,
    samples: &mut [Sample],
    global_batch: usize,
    tokenizer: &Tokenizer,
) -> Result<()> {
    for inj in injections.iter().filter(|i| i.chunk == chunk) {
        let facts = inj.fictional_facts();
        for r in 0..inj.k {
            for fact in &facts {
                let slot = (inj.offset + r) as usize * global_batch + fact.id;
                let Some(old) = samples.get(slot).cloned() else {
                    return Err(TrainError::Field {
                        field: format!("inject_facts `{}`", inj.name),
                        reason: format!("chunk {chunk} has no sample {slot}"),
                    });
                };
                let seq = old.token_ids.len();
                let mut ids = encode(tokenizer, &inj.text(fact, r))?;
                ids.push(EOS_ID);
                if ids.len() >= seq {
                    return Err(TrainError::Field {
                        field: format!("inject_facts `{}`", inj.name),
                        reason: format!(
                            "a fact takes {} tokens, the chunk's sequences only {seq}",
                            ids.len()
                        ),
                    });
                }
                let at = ids.len();
                ids.extend_from_slice(&old.token_ids[..seq - at]);
                samples[slot] = Sample {
                    token_ids: ids,
                    source: inj.source(),
                    doc: fact.id as u64,
                    offset: r as u32,
                    spliced: Some(k2_archive::Spliced {
                        source: old.source,
                        doc: old.doc,
                        offset: old.offset,
                        at: at as u32,
                    }),
                };
            }
        }
    }
    Ok(())
}

/// The global steps at which the interval of `chunk`, starting after step `steps_before`, trains
/// each of its injections.
pub fn steps_in_interval(
    injections: &[InjectFacts],
    chunk: u32,
    steps_before: u64,
) -> Vec<k2_archive::InjectedSteps> {
    injections
        .iter()
        .filter(|i| i.chunk == chunk)
        .map(|i| k2_archive::InjectedSteps {
            name: i.name.clone(),
            first_step: steps_before + i.offset + 1,
            last_step: steps_before + i.offset + i.k,
        })
        .collect()
}

/// The probes of the injections with `dense_steps`, scored by the trainer after the steps of
/// their windows: from the step before the first repetition to `dense_steps` steps after it.
pub struct DenseProbes {
    /// Per injection: its config, its probes' score skeletons and their token sequences (same
    /// order), tokenized once for the whole run.
    injections: Vec<(
        InjectFacts,
        Vec<k2_archive::ProbeScore>,
        Vec<k2_model::span::SpanSequence>,
    )>,
}

impl DenseProbes {
    /// `None` when no injection asks for dense steps.
    pub fn new(injections: &[InjectFacts], tokenizer_json: &str) -> Result<Option<Self>> {
        let dense: Vec<&InjectFacts> = injections.iter().filter(|i| i.dense_steps > 0).collect();
        if dense.is_empty() {
            return Ok(None);
        }
        let tokenizer = Tokenizer::from_bytes(tokenizer_json.as_bytes())
            .map_err(|e| TrainError::Tokenizer(e.to_string()))?;
        let mut out = Vec::new();
        for inj in dense {
            let mut probes = Vec::new();
            let sets = [
                (false, inj.fictional_facts()),
                (
                    true,
                    k2_corpus::injection::control_facts(inj.seed, inj.facts),
                ),
            ];
            for (control, facts) in sets {
                for fact in facts {
                    for p in fact.probes() {
                        let seq = k2_model::span::span_sequence(&tokenizer, &p.context, &p.target)?;
                        probes.push((
                            k2_archive::ProbeScore {
                                injection: inj.name.clone(),
                                kind: p.kind.name().to_string(),
                                fact: fact.id,
                                control,
                                logprob: 0.0,
                            },
                            seq,
                        ));
                    }
                }
            }
            let (skeletons, seqs) = probes.into_iter().unzip();
            out.push((inj.clone(), skeletons, seqs));
        }
        Ok(Some(DenseProbes { injections: out }))
    }

    /// The global step window `[first - 1, first - 1 + dense_steps]` of each injection under
    /// `order` (its chunk's position decides where it is trained).
    fn windows(&self, order: &k2_archive::ChunkOrder, spc: u64) -> Vec<(usize, u64, u64)> {
        self.injections
            .iter()
            .enumerate()
            .filter_map(|(i, (inj, _, _))| {
                let pos = order.order.iter().position(|&c| c == inj.chunk)? as u64;
                let first = pos * spc + inj.offset + 1;
                Some((i, first - 1, first - 1 + inj.dense_steps))
            })
            .collect()
    }

    /// The scores after `step`, for the injections whose window holds it (`None`: none does).
    pub fn score(
        &self,
        order: &k2_archive::ChunkOrder,
        spc: u64,
        step: u64,
        attempt: u32,
        model: &k2_model::Decoder,
    ) -> Result<Option<k2_archive::DenseLine>> {
        let active: Vec<usize> = self
            .windows(order, spc)
            .into_iter()
            .filter(|&(_, lo, hi)| (lo..=hi).contains(&step))
            .map(|(i, _, _)| i)
            .collect();
        if active.is_empty() {
            return Ok(None);
        }
        let mut scores = Vec::new();
        for i in active {
            let (_, skeletons, seqs) = &self.injections[i];
            let lp = k2_model::span::span_logprobs(
                &|ids| model.forward(ids),
                seqs,
                model.arch().max_position_embeddings,
                model.device(),
            )?;
            scores.extend(
                skeletons
                    .iter()
                    .zip(lp)
                    .map(|(p, logprob)| k2_archive::ProbeScore {
                        logprob,
                        ..p.clone()
                    }),
            );
        }
        Ok(Some(k2_archive::DenseLine {
            step,
            attempt,
            scores,
        }))
    }
}
