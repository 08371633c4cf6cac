//! Token learning curves (Chang & Bergen, TACL 2024): the surprisal of every token of a held-out
//! text at every checkpoint, and per token
//! * **age of acquisition**: the first checkpoint from which its surprisal stays below the midpoint
//!   between the untrained model's (ln V, the uniform distribution, which a small initialisation
//!   is close to) and its lowest surprisal over the run; none if it never gets there to stay;
//! * its final surprisal, its within-run variability (the standard deviation of its surprisal
//!   over the checkpoints from its age of acquisition on), and its forgetting events (below the
//!   midpoint at one checkpoint, above it at the next);
//! * its frequency in the run's own training data (every chunk file, through the data index),
//!   bucketed by powers of ten.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use k2_archive::{Manifest, RunLayout, TokenCurvesFile};
use serde::Serialize;

/// One held-out token position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenCurve {
    pub id: u32,
    /// Occurrences of the id in the training data.
    pub frequency: u64,
    pub surprisal: Vec<f64>,
    /// Index of the checkpoint of acquisition.
    pub aoa: Option<usize>,
    pub final_surprisal: f64,
    pub variability: Option<f64>,
    pub forgetting_events: usize,
}

/// Per frequency bucket `[10^k, 10^(k+1))` (bucket 0 holds frequency 0 too).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub lo: u64,
    pub hi: u64,
    pub tokens: usize,
    pub acquired: usize,
    /// Mean age of acquisition in tokens seen, over acquired tokens, and its standard error.
    pub mean_aoa_tokens: Option<f64>,
    pub aoa_stderr: Option<f64>,
    pub mean_final_surprisal: f64,
    pub mean_forgetting_events: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenCurves {
    pub run: String,
    pub checkpoints: Vec<String>,
    pub tokens_seen: Vec<u64>,
    pub vocab_size: usize,
    /// The first held-out document index (every source's documents start there).
    pub first_doc: u64,
    pub curves: Vec<TokenCurve>,
    pub buckets: Vec<Bucket>,
}

/// Age of acquisition, variability and forgetting events of one curve (`init` = ln V).
pub fn curve_stats(s: &[f64], init: f64) -> (Option<usize>, Option<f64>, usize) {
    let min = s.iter().copied().fold(f64::INFINITY, f64::min);
    let mid = (init + min) / 2.0;
    let below: Vec<bool> = s.iter().map(|&x| x < mid).collect();
    let aoa = (0..s.len()).find(|&i| below[i..].iter().all(|&b| b));
    let forgetting = below.windows(2).filter(|w| w[0] && !w[1]).count();
    let variability = aoa.and_then(|a| {
        let tail = &s[a..];
        (tail.len() >= 2).then(|| {
            let m = tail.iter().sum::<f64>() / tail.len() as f64;
            (tail.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (tail.len() - 1) as f64).sqrt()
        })
    });
    (aoa, variability, forgetting)
}

/// Bucket `[10^k, 10^(k+1))` of a frequency (0 and 1..9 share bucket 0).
pub fn bucket_of(f: u64) -> u32 {
    if f < 10 {
        0
    } else {
        f.ilog10()
    }
}

/// Token frequencies over every chunk file of the run.
pub fn training_frequencies(run: &Path) -> Result<BTreeMap<u32, u64>> {
    let data = RunLayout::new(run).data_dir();
    let index = k2_archive::read_index(&data)?;
    let mut freq = BTreeMap::new();
    for info in &index.chunks {
        for s in k2_archive::read_chunk(&data, info)? {
            for t in s.token_ids {
                *freq.entry(t).or_insert(0) += 1;
            }
        }
    }
    Ok(freq)
}

/// The curves of `run` from its `token_curves/` files (ok checkpoints in step order); `None`
/// when there are none.
pub fn load(run: &Path) -> Result<Option<TokenCurves>> {
    let layout = RunLayout::new(run);
    if !layout.token_curves_dir().is_dir() {
        return Ok(None);
    }
    let manifest = Manifest::load(&layout.manifest_path())?;
    let mut files: Vec<TokenCurvesFile> = Vec::new();
    for c in manifest
        .checkpoints
        .iter()
        .filter(|c| c.status == k2_archive::CheckpointStatus::Ok)
    {
        let p = layout.token_curves_dir().join(format!("{}.json", c.name));
        if p.exists() {
            files.push(
                k2_archive::read_token_curves_file(&p)
                    .with_context(|| format!("reading {}", p.display()))?,
            );
        }
    }
    files.sort_by_key(|f| f.step);
    let Some(first) = files.first() else {
        return Ok(None);
    };
    let freq = training_frequencies(run)?;
    let init = (first.vocab_size as f64).ln();
    let ids: Vec<u32> = first
        .docs
        .iter()
        .flat_map(|d| d.ids.iter().copied())
        .collect();
    let mut curves: Vec<TokenCurve> = ids
        .iter()
        .map(|&id| TokenCurve {
            id,
            frequency: freq.get(&id).copied().unwrap_or(0),
            surprisal: Vec::with_capacity(files.len()),
            aoa: None,
            final_surprisal: 0.0,
            variability: None,
            forgetting_events: 0,
        })
        .collect();
    for f in &files {
        let s: Vec<f32> = f
            .docs
            .iter()
            .flat_map(|d| d.surprisal.iter().copied())
            .collect();
        if s.len() != curves.len() || f.text_sha256 != first.text_sha256 {
            anyhow::bail!(
                "{}: token_curves/{}.json scored another held-out text; rerun `k2 analyze tokens`",
                run.display(),
                f.checkpoint
            );
        }
        for (c, x) in curves.iter_mut().zip(s) {
            c.surprisal.push(x as f64);
        }
    }
    for c in &mut curves {
        let (aoa, var, fe) = curve_stats(&c.surprisal, init);
        c.aoa = aoa;
        c.variability = var;
        c.forgetting_events = fe;
        c.final_surprisal = *c.surprisal.last().unwrap_or(&0.0);
    }
    let tokens_seen: Vec<u64> = files.iter().map(|f| f.tokens).collect();
    let buckets = buckets(&curves, &tokens_seen);
    Ok(Some(TokenCurves {
        run: manifest.run.clone(),
        checkpoints: files.iter().map(|f| f.checkpoint.clone()).collect(),
        tokens_seen,
        vocab_size: first.vocab_size,
        first_doc: first.docs.first().map_or(0, |d| d.doc),
        curves,
        buckets,
    }))
}

fn buckets(curves: &[TokenCurve], tokens_seen: &[u64]) -> Vec<Bucket> {
    let mut by: BTreeMap<u32, Vec<&TokenCurve>> = BTreeMap::new();
    for c in curves {
        by.entry(bucket_of(c.frequency)).or_default().push(c);
    }
    by.into_iter()
        .map(|(k, cs)| {
            let aoas: Vec<f64> = cs
                .iter()
                .filter_map(|c| c.aoa.map(|a| tokens_seen[a] as f64))
                .collect();
            let n = aoas.len() as f64;
            let mean = (!aoas.is_empty()).then(|| aoas.iter().sum::<f64>() / n);
            let se = mean.filter(|_| aoas.len() > 1).map(|m| {
                (aoas.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt()
            });
            Bucket {
                lo: if k == 0 { 0 } else { 10u64.pow(k) },
                hi: 10u64.pow(k + 1),
                tokens: cs.len(),
                acquired: aoas.len(),
                mean_aoa_tokens: mean,
                aoa_stderr: se,
                mean_final_surprisal: cs.iter().map(|c| c.final_surprisal).sum::<f64>()
                    / cs.len() as f64,
                mean_forgetting_events: cs.iter().map(|c| c.forgetting_events as f64).sum::<f64>()
                    / cs.len() as f64,
            }
        })
        .collect()
}

/// One row per frequency bucket.
pub fn buckets_table(t: &TokenCurves) -> String {
    let rows = t
        .buckets
        .iter()
        .map(|b| {
            vec![
                format!("{}-{}", b.lo, b.hi - 1),
                b.tokens.to_string(),
                format!(
                    "{} ({:.0}%)",
                    b.acquired,
                    100.0 * b.acquired as f64 / b.tokens as f64
                ),
                match (b.mean_aoa_tokens, b.aoa_stderr) {
                    (Some(m), Some(se)) => format!(
                        "{} ± {}",
                        crate::tables::fmt_tokens(m as u64),
                        crate::tables::fmt_tokens(se as u64)
                    ),
                    (Some(m), None) => crate::tables::fmt_tokens(m as u64),
                    _ => "-".into(),
                },
                format!("{:.2}", b.mean_final_surprisal),
                format!("{:.2}", b.mean_forgetting_events),
            ]
        })
        .collect();
    crate::tables::simple_table(
        &[
            "training frequency",
            "held-out tokens",
            "acquired",
            "mean age of acquisition (tokens seen ± s.e.)",
            "final surprisal (nats)",
            "forgetting events",
        ],
        rows,
    )
}

/// The text of `k2 analyze tokens`.
pub fn tokens_text(t: &TokenCurves) -> String {
    format!(
        "token learning curves of `{}`: {} held-out tokens at {} checkpoints; age of acquisition: \
         the first checkpoint from which the surprisal stays below the midpoint of ln V ({:.2}) and \
         the token's lowest surprisal\n{}\n",
        t.run,
        t.curves.len(),
        t.checkpoints.len(),
        (t.vocab_size as f64).ln(),
        buckets_table(t)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_curve_statistics() {
        // init 7, min 1 -> midpoint 4. Below: F T F T T T -> acquired at index 3, one forgetting
        // event (index 1 -> 2); variability of [3, 1, 2] = 1.
        let s = [6.0, 3.5, 5.0, 3.0, 1.0, 2.0];
        let (aoa, var, fe) = curve_stats(&s, 7.0);
        assert_eq!((aoa, fe), (Some(3), 1));
        assert!((var.unwrap() - 1.0).abs() < 1e-12);
        // Never below the midpoint to stay.
        let (aoa, var, fe) = curve_stats(&[6.0, 3.0, 6.5], 7.0);
        assert_eq!((aoa, var, fe), (None, None, 1));
        assert_eq!(
            (bucket_of(0), bucket_of(9), bucket_of(10), bucket_of(12345)),
            (0, 0, 1, 4)
        );
    }

    #[test]
    fn buckets_average_the_acquired_tokens() {
        let c = |frequency, aoa| TokenCurve {
            id: 0,
            frequency,
            surprisal: vec![1.0, 1.0],
            aoa,
            final_surprisal: 2.0,
            variability: None,
            forgetting_events: 1,
        };
        let b = buckets(&[c(5, Some(0)), c(7, Some(1)), c(50, None)], &[100, 300]);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].tokens, b[0].acquired, b[0].mean_aoa_tokens),
            (2, 2, Some(200.0))
        );
        assert!((b[0].aoa_stderr.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(
            (b[1].lo, b[1].hi, b[1].acquired, b[1].mean_aoa_tokens),
            (10, 100, 0, None)
        );
    }
}
