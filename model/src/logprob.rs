//! The one definition of a token's log-probability and of greedy choice, computed where the
//! logits are. Every job that scores tokens (benchmarks, `loglikelihood_rolling`, memorization's
//! greedy continuations, knowledge-injection probes, token curves, `k2 model score`, generation)
//! goes through these functions, so they agree to the bit on one device.
//!
//! * **log p(tok | row)** = `x[tok] - max - ln Σ exp(x - max)`, with `max` the row's largest
//!   value and the sum accumulated in f64 in vocabulary order on the CPU (so a score does not
//!   depend on how rows are batched or how many threads run). On another device (CUDA) the row
//!   reductions run there in f32, as PyTorch's `log_softmax` does, and only two numbers per
//!   scored token come back to the host (its log-probability and whether it is the argmax).
//! * **argmax**: the lowest index among equal maxima (torch's `argmax`, HF greedy decoding).
//! * **NaN**: a NaN logit is never the argmax; a row holding a NaN gives a NaN log-probability,
//!   which is never greedy. One rule on every device.

use candle_core::{DType, Device, Storage, Tensor, D};

use crate::error::{ModelError, Result};
use crate::parallel::par_map;

/// A scored token: its log-probability under the row's softmax, and whether it is the row's
/// argmax (what greedy decoding would pick).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenScore {
    pub logprob: f64,
    pub greedy: bool,
}

/// Index of the largest value: the lowest index among equal maxima, NaN never chosen (0 when
/// every value is NaN or the slice is empty).
pub fn argmax(xs: &[f32]) -> usize {
    let mut best: Option<usize> = None;
    for (i, &x) in xs.iter().enumerate() {
        if x.is_nan() {
            continue;
        }
        match best {
            Some(b) if x <= xs[b] => {}
            _ => best = Some(i),
        }
    }
    best.unwrap_or(0)
}

/// [`TokenScore`] of `tok` in one row of logits, on the host (see the module docs).
pub fn token_score(row: &[f32], tok: u32) -> TokenScore {
    let best = argmax(row);
    let max = row[best] as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    let logprob = row[tok as usize] as f64 - max - sum.ln();
    TokenScore {
        logprob,
        greedy: !logprob.is_nan() && best == tok as usize,
    }
}

/// Scores `picks` ((row, token) pairs) of `logits` (rows, vocab), where the logits are: on the
/// CPU straight from the tensor's memory, rows in parallel; elsewhere on the device, only the
/// picked rows' two numbers copied back. In `picks` order.
pub fn score(logits: &Tensor, picks: &[(usize, u32)]) -> Result<Vec<TokenScore>> {
    let (rows, vocab) = logits.dims2()?;
    if let Some(&(r, t)) = picks
        .iter()
        .find(|&&(r, t)| r >= rows || t as usize >= vocab)
    {
        return Err(ModelError::InvalidConfig {
            field: "scored token".into(),
            reason: format!("row {r}, token {t} outside logits of {rows} rows x {vocab} tokens"),
        });
    }
    if picks.is_empty() {
        return Ok(Vec::new());
    }
    match logits.device() {
        Device::Cpu => with_host_rows(logits, |all| {
            Ok(par_map(picks.len(), |j| {
                let (r, t) = picks[j];
                token_score(&all[r * vocab..(r + 1) * vocab], t)
            }))
        }),
        _ => score_on_device(logits, picks),
    }
}

/// The argmax ([`argmax`]) of every row of `logits` (rows, vocab), computed on its device.
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<u32>> {
    let (rows, vocab) = logits.dims2()?;
    match logits.device() {
        Device::Cpu => with_host_rows(logits, |all| {
            Ok(par_map(rows, |r| {
                argmax(&all[r * vocab..(r + 1) * vocab]) as u32
            }))
        }),
        _ => Ok(without_nan(&logits.to_dtype(DType::F32)?)?
            .argmax_keepdim(D::Minus1)?
            .flatten_all()?
            .to_vec1::<u32>()?),
    }
}

/// log p(ids[i][j+1] | ids[i][..=j]) for logits (batch, seq, vocab) of `ids` (batch, seq): one
/// row of seq - 1 values per sequence.
pub fn next_token_logprobs(logits: &Tensor, ids: &[Vec<u32>]) -> Result<Vec<Vec<f64>>> {
    let (b, t, v) = logits.dims3()?;
    if ids.len() != b || ids.iter().any(|s| s.len() != t) {
        return Err(ModelError::InvalidConfig {
            field: "scored tokens".into(),
            reason: format!("{} sequences for logits of {b} x {t} positions", ids.len()),
        });
    }
    if t < 2 {
        return Ok(vec![Vec::new(); b]);
    }
    let picks: Vec<(usize, u32)> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, s)| (1..t).map(move |j| (i * t + j - 1, s[j])))
        .collect();
    let scores = score(&logits.reshape((b * t, v))?, &picks)?;
    Ok(scores
        .chunks(t - 1)
        .map(|c| c.iter().map(|s| s.logprob).collect())
        .collect())
}

/// `f` on the row-major f32 values of a CPU tensor, read in place when it is contiguous f32.
fn with_host_rows<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = if t.dtype() == DType::F32 {
        t.contiguous()?
    } else {
        t.to_dtype(DType::F32)?.contiguous()?
    };
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(candle_core::CpuStorage::F32(v)) = &*storage else {
        return Err(ModelError::InvalidConfig {
            field: "logits".into(),
            reason: "expected f32 logits on the CPU".into(),
        });
    };
    let (a, b) = layout.contiguous_offsets().expect("made contiguous above");
    f(&v[a..b])
}

/// `x` with every NaN replaced by -inf (so it is never a maximum).
fn without_nan(x: &Tensor) -> Result<Tensor> {
    let nan = x.ne(x)?;
    let neg_inf = Tensor::full(f32::NEG_INFINITY, x.shape(), x.device())?;
    Ok(nan.where_cond(&neg_inf, x)?)
}

/// [`score`] on a non-CPU device: the picked rows gathered there, the reductions in f32, and
/// 2 numbers per pick copied to the host.
fn score_on_device(logits: &Tensor, picks: &[(usize, u32)]) -> Result<Vec<TokenScore>> {
    let dev = logits.device();
    let n = picks.len();
    let rows: Vec<u32> = picks.iter().map(|p| p.0 as u32).collect();
    let toks: Vec<u32> = picks.iter().map(|p| p.1).collect();
    let rows = Tensor::from_vec(rows, n, dev)?;
    let toks = Tensor::from_vec(toks, (n, 1), dev)?;
    let x = logits.index_select(&rows, 0)?.to_dtype(DType::F32)?;
    let clean = without_nan(&x)?;
    let max = clean.max_keepdim(D::Minus1)?;
    let best = clean.argmax_keepdim(D::Minus1)?;
    // NaN in a row reaches the sum, so its log-probability is NaN.
    let lse = (x
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + &max)?;
    let lp = (x.gather(&toks, 1)? - lse)?;
    let greedy = best.eq(&toks)?.to_dtype(DType::F32)?;
    let both: Vec<f32> = Tensor::cat(&[lp, greedy], 1)?.flatten_all()?.to_vec1()?;
    Ok(both
        .chunks(2)
        .map(|c| {
            let logprob = c[0] as f64;
            TokenScore {
                logprob,
                greedy: c[1] > 0.5 && !logprob.is_nan(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_lowest_index_of_a_tie_and_skips_nan() {
        assert_eq!(argmax(&[0.0, 2.0, 1.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0, -1.0]), 1);
        assert_eq!(argmax(&[-3.0, f32::NAN, 5.0]), 2);
        assert_eq!(argmax(&[f32::NAN]), 0);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }

    #[test]
    fn a_row_with_nan_scores_nan_and_is_never_greedy() {
        let s = token_score(&[1.0, f32::NAN, 0.5], 0);
        assert!(s.logprob.is_nan());
        assert!(!s.greedy);
        let t = Tensor::new(&[[1.0f32, f32::NAN, 0.5], [0.0, 1.0, 2.0]], &Device::Cpu).unwrap();
        assert_eq!(argmax_rows(&t).unwrap(), vec![0, 2]);
        let s = score(&t, &[(1, 2), (0, 0)]).unwrap();
        assert!(s[0].greedy && !s[1].greedy && s[1].logprob.is_nan());
    }

    #[test]
    fn log_probabilities_match_a_direct_softmax() {
        let row = [0.5f32, -1.0, 2.0, 0.0];
        let z: f64 = row.iter().map(|&x| (x as f64).exp()).sum();
        for (i, &x) in row.iter().enumerate() {
            let s = token_score(&row, i as u32);
            assert!((s.logprob - (x as f64 - z.ln())).abs() < 1e-12);
            assert_eq!(s.greedy, i == 2);
        }
        let t = Tensor::new(&[row, row], &Device::Cpu).unwrap();
        let got = score(&t, &[(1, 0), (0, 2)]).unwrap();
        assert_eq!(got, vec![token_score(&row, 0), token_score(&row, 2)]);
        assert!(score(&t, &[(2, 0)]).is_err());
        assert!(score(&t, &[(0, 4)]).is_err());
    }

    #[test]
    fn the_device_path_agrees_with_the_host_path() {
        // The reductions CUDA runs, run here on CPU tensors: f32 instead of f64, same picks.
        let rows: Vec<f32> = (0..5 * 37)
            .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 9.0)
            .collect();
        let mut rows = rows;
        rows[3 * 37 + 5] = f32::NAN;
        let t = Tensor::from_vec(rows, (5, 37), &Device::Cpu).unwrap();
        let picks = [(0, 3), (4, 36), (2, 0), (3, 1), (1, 17), (0, 3)];
        let host = score(&t, &picks).unwrap();
        let dev = score_on_device(&t, &picks).unwrap();
        for (h, d) in host.iter().zip(&dev) {
            assert_eq!(h.greedy, d.greedy, "{h:?} {d:?}");
            if h.logprob.is_nan() {
                assert!(d.logprob.is_nan());
            } else {
                assert!((h.logprob - d.logprob).abs() < 1e-5, "{h:?} {d:?}");
            }
        }
        let host_max = argmax_rows(&t).unwrap();
        let dev_max: Vec<u32> = without_nan(&t)
            .unwrap()
            .argmax_keepdim(D::Minus1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(host_max, dev_max);
    }

    #[test]
    fn next_token_logprobs_score_each_following_token() {
        let logits = Tensor::new(
            &[[[0.0f32, 1.0, 2.0], [2.0, 1.0, 0.0], [1.0, 1.0, 1.0]]],
            &Device::Cpu,
        )
        .unwrap();
        let lp = next_token_logprobs(&logits, &[vec![0, 2, 0]]).unwrap();
        assert_eq!(
            lp,
            vec![vec![
                token_score(&[0.0, 1.0, 2.0], 2).logprob,
                token_score(&[2.0, 1.0, 0.0], 0).logprob
            ]]
        );
    }
}
