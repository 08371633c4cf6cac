//! Memorization of training data per (checkpoint, chunk), as LLM360's Analysis360 measures it
//! (Biderman et al. 2023): for sampled training sequences of a chunk, the sequence's first
//! `prompt_len` tokens are the prompt, the model's greedy continuation of `continuation_len`
//! tokens is compared with the sequence's true next tokens.
//!
//! * **exact-match rate**: the fraction of sampled sequences whose whole continuation is
//!   reproduced (Analysis360's `full_match`);
//! * **token-match rate**: the mean over sequences of the fraction of continuation positions
//!   reproduced (`token_match`).
//!
//! The same sequences are drawn for every checkpoint: `random.Random(seed).sample(range(n), k)`
//! over the `n` samples of each chunk file (Python's algorithm, so a script can redraw them).
//! Greedy ties go to the lowest token id (see [`crate::greedy`]).
//!
//! One file per checkpoint, `<run>/memorization/<ckpt>.json` ([`MemorizationFile`]); it is kept
//! outside `<run>/eval/`, which holds lm-eval results files only. A checkpoint whose file has the
//! same weights, data and settings is not recomputed (see [`crate::memorization_job`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k2_archive::{CheckpointEntry, CheckpointStatus, ChunkOrder, DataIndex};

use crate::error::{EvalError, Result};
use crate::pyrandom::PyRandom;

/// How ties in the greedy argmax are broken (recorded in every file).
pub const TIE_BREAK: &str = "argmax, lowest token id wins ties";

pub use k2_archive::memorization_file::{
    ChunkScore, MemorizationFile, Settings, MEMORIZATION_FORMAT,
};

/// Rejects zero counts and lengths.
pub fn validate(s: &Settings) -> Result<()> {
    s.check()
        .map_err(|why| EvalError::Settings(format!("memorization: {why}")))
}

/// `<run>/memorization`.
pub fn memorization_dir(run_dir: &Path) -> PathBuf {
    k2_archive::RunLayout::new(run_dir).memorization_dir()
}

/// `<run>/memorization/<ckpt>.json`.
pub fn memorization_path(run_dir: &Path, ckpt: &str) -> PathBuf {
    memorization_dir(run_dir).join(format!("{ckpt}.json"))
}

/// The number of positions `i` with `predicted[i] == truth[i]` (every position counts, not only
/// a common prefix).
pub fn matched_tokens(truth: &[u32], predicted: &[u32]) -> usize {
    truth.iter().zip(predicted).filter(|(a, b)| a == b).count()
}

/// (exact-match rate, token-match rate) of sequences with `matched[i]` of `len` tokens
/// reproduced. Both are 0 for no sequences.
pub fn rates(matched: &[usize], len: usize) -> (f64, f64) {
    if matched.is_empty() || len == 0 {
        return (0.0, 0.0);
    }
    let n = matched.len() as f64;
    let exact = matched.iter().filter(|&&m| m == len).count() as f64 / n;
    let token = matched.iter().map(|&m| m as f64 / len as f64).sum::<f64>() / n;
    (exact, token)
}

/// Line indices drawn from a chunk of `n` samples: `random.Random(seed).sample(range(n), k)`
/// with `k = min(samples_per_chunk, n)`.
pub fn sample_indices(n: usize, s: &Settings) -> Vec<usize> {
    PyRandom::new(s.seed as i64).sample_indices(n, s.samples_per_chunk.min(n))
}

/// The checkpoints measured: `ok` and `spike` ones, in step order (a spike checkpoint after the
/// `ok` one of the same step). `rolled_back` checkpoints are left out.
pub fn measured_checkpoints(checkpoints: &[CheckpointEntry]) -> Vec<&CheckpointEntry> {
    let mut v: Vec<&CheckpointEntry> = checkpoints
        .iter()
        .filter(|c| matches!(c.status, CheckpointStatus::Ok | CheckpointStatus::Spike))
        .collect();
    v.sort_by_key(|c| (c.step, c.status == CheckpointStatus::Spike));
    v
}

/// For each chunk id, the checkpoint after whose interval `ckpt`'s weights were trained on it, if
/// any. `checkpoints` is the manifest in its (append, i.e. chronological) order.
///
/// * An `ok` checkpoint's lineage is every `ok` checkpoint up to its step (`rolled_back` ones were
///   undone; `spike` ones were left behind by a rollback).
/// * A `spike` checkpoint belongs to a diverged branch: the run of consecutive `spike` entries
///   around it. Its lineage is the `ok` checkpoints listed before the branch, then the branch's
///   entries up to itself. (A chunk trained only partly before a mid-interval spike checkpoint
///   counts when the manifest lists it under that checkpoint's `chunks`.)
pub fn trained_at(
    checkpoints: &[CheckpointEntry],
    ckpt: &CheckpointEntry,
    n_chunks: usize,
) -> Vec<Option<String>> {
    let mut lineage: Vec<&CheckpointEntry> = match ckpt.status {
        CheckpointStatus::Ok => checkpoints
            .iter()
            .filter(|c| c.status == CheckpointStatus::Ok && c.step <= ckpt.step)
            .collect(),
        _ => {
            let at = checkpoints
                .iter()
                .position(|c| c.name == ckpt.name)
                .unwrap_or(checkpoints.len());
            let mut first = at.min(checkpoints.len());
            while first > 0 && checkpoints[first - 1].status == CheckpointStatus::Spike {
                first -= 1;
            }
            let mut v: Vec<&CheckpointEntry> = checkpoints[..first]
                .iter()
                .filter(|c| c.status == CheckpointStatus::Ok)
                .collect();
            v.extend(checkpoints[first..at.min(checkpoints.len())].iter());
            v.push(ckpt);
            v
        }
    };
    lineage.sort_by_key(|c| c.step);
    let mut out: Vec<Option<String>> = vec![None; n_chunks];
    for c in lineage {
        for &k in &c.chunks {
            if let Some(slot) = out.get_mut(k as usize) {
                if slot.is_none() {
                    *slot = Some(c.name.clone());
                }
            }
        }
    }
    out
}

/// One chunk's measured sequences: the chunk's id, position and stage, the sampled indices, and
/// per sequence its prompt and true continuation.
#[derive(Debug, Clone)]
pub struct ChunkProbe {
    pub chunk: u32,
    pub position: u32,
    pub stage: usize,
    pub sample_indices: Vec<usize>,
    pub prompts: Vec<Vec<u32>>,
    pub truths: Vec<Vec<u32>>,
}

/// Draws the measured sequences of every chunk of the run's data, in training order. Errors name
/// the file: a chunk whose sequences are shorter than prompt + continuation, a chunk missing from
/// the order, a chunk file that fails its sha256.
pub fn chunk_probes(
    data_dir: &Path,
    index: &DataIndex,
    order: &ChunkOrder,
    s: &Settings,
) -> Result<Vec<ChunkProbe>> {
    let index_path = data_dir.join("index.json");
    let mut out = Vec::with_capacity(index.chunks.len());
    for (position, &chunk) in order.order.iter().enumerate() {
        let info = index.chunk(data_dir, chunk)?;
        if info.seq_len < s.window() {
            return Err(EvalError::Invalid {
                path: index_path,
                message: format!(
                    "chunk {chunk} has {}-token sequences, shorter than the {}-token prompt + {}-token continuation (use a shorter --prompt-len / --continuation-len)",
                    info.seq_len, s.prompt_len, s.continuation_len
                ),
            });
        }
        let samples = k2_archive::read_chunk(data_dir, info)?;
        let idx = sample_indices(samples.len(), s);
        let (prompts, truths) = idx
            .iter()
            .map(|&i| {
                let t = &samples[i].token_ids;
                (
                    t[..s.prompt_len].to_vec(),
                    t[s.prompt_len..s.window()].to_vec(),
                )
            })
            .unzip();
        out.push(ChunkProbe {
            chunk,
            position: position as u32,
            stage: info.stage,
            sample_indices: idx,
            prompts,
            truths,
        });
    }
    if out.len() != index.chunks.len() {
        return Err(EvalError::Invalid {
            path: index_path,
            message: format!(
                "{} chunks, but the chunk order lists {}",
                index.chunks.len(),
                out.len()
            ),
        });
    }
    Ok(out)
}

/// Scores one checkpoint's continuations (`predicted[c][i]` for sequence `i` of chunk probe `c`).
pub fn score_chunks(
    probes: &[ChunkProbe],
    predicted: &[Vec<Vec<u32>>],
    trained_at: &[Option<String>],
    continuation_len: usize,
) -> Vec<ChunkScore> {
    probes
        .iter()
        .zip(predicted)
        .map(|(p, pred)| {
            let matched: Vec<usize> = p
                .truths
                .iter()
                .zip(pred)
                .map(|(t, q)| matched_tokens(t, q))
                .collect();
            let (exact_match, token_match) = rates(&matched, continuation_len);
            let at = trained_at.get(p.chunk as usize).cloned().flatten();
            ChunkScore {
                chunk: p.chunk,
                position: p.position,
                stage: p.stage,
                trained: at.is_some(),
                trained_at: at,
                n: matched.len(),
                exact_match,
                token_match,
                sample_indices: p.sample_indices.clone(),
                matched_tokens: matched,
            }
        })
        .collect()
}

/// Chunk ids trained by some checkpoint (for tests and summaries).
pub fn trained_set(trained_at: &[Option<String>]) -> BTreeSet<u32> {
    trained_at
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_some())
        .map(|(i, _)| i as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn matched_tokens_counts_every_equal_position() {
        assert_eq!(matched_tokens(&[1, 2, 3, 4], &[1, 2, 3, 4]), 4);
        assert_eq!(matched_tokens(&[1, 2, 3, 4], &[9, 2, 9, 4]), 2);
        assert_eq!(matched_tokens(&[1, 2, 3, 4], &[2, 3, 4, 1]), 0);
        // a shifted copy matches nowhere even though it shares tokens
        assert_eq!(matched_tokens(&[5, 5, 6], &[5, 6, 6]), 2);
    }

    #[test]
    fn rates_on_constructed_cases() {
        // 4 sequences of 4 tokens: one exact, one 3/4, one 1/4, one 0/4
        let (e, t) = rates(&[4, 3, 1, 0], 4);
        assert_eq!(e, 0.25);
        assert_eq!(t, (1.0 + 0.75 + 0.25 + 0.0) / 4.0);
        assert_eq!(rates(&[32, 32], 32), (1.0, 1.0));
        assert_eq!(rates(&[0, 0, 0], 32), (0.0, 0.0));
        assert_eq!(rates(&[], 32), (0.0, 0.0));
        // 31 of 32 tokens is not an exact match
        let (e, t) = rates(&[31], 32);
        assert_eq!(e, 0.0);
        assert!((t - 31.0 / 32.0).abs() < 1e-15);
    }

    #[test]
    fn score_chunks_combines_matches_and_training_labels() {
        let probes = vec![
            ChunkProbe {
                chunk: 1,
                position: 0,
                stage: 0,
                sample_indices: vec![3, 0],
                prompts: vec![vec![0], vec![0]],
                truths: vec![vec![1, 2, 3], vec![4, 5, 6]],
            },
            ChunkProbe {
                chunk: 0,
                position: 1,
                stage: 0,
                sample_indices: vec![2],
                prompts: vec![vec![0]],
                truths: vec![vec![7, 8, 9]],
            },
        ];
        let pred = vec![vec![vec![1, 2, 3], vec![4, 0, 6]], vec![vec![0, 0, 9]]];
        let at = vec![None, Some("ckpt_0001".to_string())];
        let s = score_chunks(&probes, &pred, &at, 3);
        assert_eq!(s[0].chunk, 1);
        assert!(s[0].trained);
        assert_eq!(s[0].trained_at.as_deref(), Some("ckpt_0001"));
        assert_eq!(s[0].matched_tokens, vec![3, 2]);
        assert_eq!(s[0].n, 2);
        assert_eq!(s[0].exact_match, 0.5);
        assert!((s[0].token_match - 5.0 / 6.0).abs() < 1e-15);
        assert!(!s[1].trained);
        assert_eq!(s[1].exact_match, 0.0);
        assert!((s[1].token_match - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn samples_match_python_random_sample() {
        // python3 -c "import random; print(random.Random(42).sample(range(10), 4))" -> [1, 0, 4, 9]
        let s = Settings {
            samples_per_chunk: 4,
            ..Settings::default()
        };
        assert_eq!(sample_indices(10, &s), vec![1, 0, 4, 9]);
        // fewer samples than asked: all of them, in a shuffled order
        let mut all = sample_indices(3, &Settings::default());
        all.sort();
        assert_eq!(all, vec![0, 1, 2]);
    }

    fn entry(name: &str, step: u64, chunks: Vec<u32>, status: CheckpointStatus) -> CheckpointEntry {
        CheckpointEntry {
            name: name.into(),
            step,
            tokens: step * 10,
            chunks,
            stage: 1,
            status,
            wall_time_s: 0.0,
            note: None,
            injected: Vec::new(),
            files: BTreeMap::new(),
        }
    }

    #[test]
    fn lineage_excludes_spikes_from_later_checkpoints() {
        use CheckpointStatus::*;
        // Manifest order: chunk 2 diverged (spike checkpoints at step 30 and, mid-interval, 35),
        // training rolled back to ckpt_0002, chunk 2 was deferred and chunk 3 took its place.
        let m = vec![
            entry("ckpt_0001", 10, vec![0], Ok),
            entry("ckpt_0002", 20, vec![1], Ok),
            entry("spike_ckpt_0003", 30, vec![2], Spike),
            entry("spike_ckpt_0004", 35, vec![2], Spike),
            entry("ckpt_0003", 30, vec![3], Ok),
            entry("ckpt_0004", 40, vec![2], Ok),
            entry("ckpt_0005", 50, vec![4], RolledBack),
        ];
        let names: Vec<&str> = measured_checkpoints(&m)
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            names,
            vec![
                "ckpt_0001",
                "ckpt_0002",
                "ckpt_0003",
                "spike_ckpt_0003",
                "spike_ckpt_0004",
                "ckpt_0004"
            ]
        );
        let at = |i: usize| trained_at(&m, &m[i], 5);
        assert_eq!(trained_set(&at(0)), [0].into());
        assert_eq!(trained_set(&at(2)), [0, 1, 2].into());
        assert_eq!(at(2)[2].as_deref(), Some("spike_ckpt_0003"));
        // the later spike checkpoint: not the replayed ckpt_0003 (step 30 < 35), its own branch
        assert_eq!(trained_set(&at(3)), [0, 1, 2].into());
        assert_eq!(at(3)[2].as_deref(), Some("spike_ckpt_0003"));
        assert_eq!(trained_set(&at(4)), [0, 1, 3].into());
        assert_eq!(trained_set(&at(5)), [0, 1, 2, 3].into());
        assert_eq!(at(5)[2].as_deref(), Some("ckpt_0004"));
        assert_eq!(at(5)[1].as_deref(), Some("ckpt_0002"));
        // rolled back: nothing of it counts for anyone
        assert!(at(5)[4].is_none());
    }
}
