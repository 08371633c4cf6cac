//! Batched greedy decoding on token ids with the KV cache: each prompt is run once, then one token
//! per step is appended to every row of the batch from the cache.
//!
//! * Greedy is the argmax of the next-token logits; ties go to the lowest token id (torch's
//!   `argmax` and HF `generate(do_sample=False)` do the same). NaN logits never win.
//! * Exactly `n_new` tokens are produced per prompt: EOS does not stop a row (memorization compares
//!   fixed-length continuations, and EOS is an ordinary token of packed training data).
//! * Prompts are batched by length (no padding: every row of a batch has the same positions), in
//!   batches of at most `batch_size` rows; the result is in prompt order.

use std::collections::BTreeMap;

use candle_core::Tensor;
use k2_model::Decoder;

use crate::error::{EvalError, Result};

/// A prompt the model cannot continue.
fn err(message: String) -> EvalError {
    EvalError::Settings(message)
}

/// Greedy continuation of `n_new` tokens for every prompt (see the module docs). `progress` is
/// called with the number of prompts finished so far. Errors if a prompt is empty, holds a token
/// id outside the vocabulary, or `prompt + n_new` exceeds the model's context.
pub fn greedy_continuations(
    model: &Decoder,
    prompts: &[Vec<u32>],
    n_new: usize,
    batch_size: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<u32>>> {
    let cfg = model.arch();
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(err(format!("prompt {i} is empty")));
        }
        if let Some(&t) = p.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(err(format!(
                "prompt {i}: token id {t} is outside the model's vocabulary of {}",
                cfg.vocab_size
            )));
        }
        if p.len() + n_new > cfg.max_position_embeddings {
            return Err(err(format!(
                "prompt {i}: {} prompt + {n_new} new tokens exceed the model's context of {}",
                p.len(),
                cfg.max_position_embeddings
            )));
        }
    }
    let mut out = vec![Vec::new(); prompts.len()];
    if n_new == 0 {
        progress(prompts.len());
        return Ok(out);
    }
    let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, p) in prompts.iter().enumerate() {
        by_len.entry(p.len()).or_default().push(i);
    }
    let mut done = 0;
    for rows in by_len.values() {
        for batch in rows.chunks(batch_size.max(1)) {
            let refs: Vec<&[u32]> = batch.iter().map(|&i| prompts[i].as_slice()).collect();
            for (&i, toks) in batch.iter().zip(greedy_batch(model, &refs, n_new)?) {
                out[i] = toks;
            }
            done += batch.len();
            progress(done);
        }
    }
    Ok(out)
}

/// One batch of equal-length prompts: the prompt forward, then `n_new - 1` one-token steps.
fn greedy_batch(model: &Decoder, prompts: &[&[u32]], n_new: usize) -> Result<Vec<Vec<u32>>> {
    let dev = model.device().clone();
    let (b, t) = (prompts.len(), prompts[0].len());
    let ids: Vec<u32> = prompts.iter().flat_map(|p| p.iter().copied()).collect();
    let ids = Tensor::from_vec(ids, (b, t), &dev)?;
    let (hidden, cache) = model.forward_hidden_cached(&ids, None)?;
    // Each step's keys and values are written into this room in place.
    let mut cache = cache.with_room(n_new)?;
    let mut last = hidden.narrow(1, t - 1, 1)?;
    let mut out: Vec<Vec<u32>> = vec![Vec::with_capacity(n_new); b];
    for step in 0..n_new {
        let next = k2_model::logprob::argmax_rows(&model.lm_head(&last)?.squeeze(1)?)?;
        for (o, &n) in out.iter_mut().zip(&next) {
            o.push(n);
        }
        if step + 1 == n_new {
            break;
        }
        let x = Tensor::from_vec(next, (b, 1), &dev)?;
        let (h, c) = model.forward_hidden_cached(&x, Some(&cache))?;
        cache = c;
        last = h;
    }
    Ok(out)
}
