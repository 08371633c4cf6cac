//! Log-probability of a target span after a context, lm-eval's `loglikelihood` for one
//! (context, continuation) pair: the context and `context + " " + target` are encoded, the target's
//! tokens are those of the whole past the context's, and the score is the sum of their
//! next-token log-probabilities. Knowledge-injection probes (Chang et al. 2024) are scored this way.

use candle_core::{Device, Tensor};

use crate::error::{ModelError, Result};
use crate::logprob::next_token_logprobs;
use crate::tokenizer::Tokenizer;

/// A tokenized probe: `ids` = context tokens then target tokens, the last `n_target` scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanSequence {
    pub ids: Vec<u32>,
    pub n_target: usize,
}

/// Encodes `context` + `" " + target` as lm-eval splits a request.
pub fn span_sequence(tokenizer: &Tokenizer, context: &str, target: &str) -> Result<SpanSequence> {
    let enc = |text: &str| -> Result<Vec<u32>> {
        Ok(tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer {
                path: "<tokenizer>".into(),
                message: e.to_string(),
            })?
            .get_ids()
            .to_vec())
    };
    let ctx = enc(context)?;
    let whole = enc(&format!("{context} {target}"))?;
    if ctx.is_empty() || whole.len() <= ctx.len() {
        return Err(ModelError::Tokenizer {
            path: "<tokenizer>".into(),
            message: format!("probe `{context}` / `{target}` has an empty context or target"),
        });
    }
    Ok(SpanSequence {
        n_target: whole.len() - ctx.len(),
        ids: whole,
    })
}

/// The span log-probability of every sequence. `logits` maps (batch, seq) u32 ids to
/// (batch, seq, vocab) logits; sequences of equal length go through it together, in input order,
/// so the grouping (and every score) is a function of the inputs alone. A sequence longer than
/// `max_len` (the model's context) keeps its last `max_len` tokens, losing context on the left as
/// lm-eval's truncation does; a target that does not fit is an error.
pub fn span_logprobs(
    logits: &dyn Fn(&Tensor) -> Result<Tensor>,
    seqs: &[SpanSequence],
    max_len: usize,
    dev: &Device,
) -> Result<Vec<f64>> {
    if let Some(s) = seqs.iter().find(|s| s.n_target >= max_len) {
        return Err(ModelError::InvalidConfig {
            field: "max_position_embeddings".into(),
            reason: format!(
                "a probe's target of {} tokens does not fit the {max_len}-token context",
                s.n_target
            ),
        });
    }
    let seqs: Vec<SpanSequence> = seqs
        .iter()
        .map(|s| SpanSequence {
            ids: s.ids[s.ids.len().saturating_sub(max_len)..].to_vec(),
            n_target: s.n_target,
        })
        .collect();
    let seqs = &seqs[..];
    let mut out = vec![0.0; seqs.len()];
    let mut lengths: Vec<usize> = seqs.iter().map(|s| s.ids.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for len in lengths {
        let members: Vec<usize> = (0..seqs.len())
            .filter(|&i| seqs[i].ids.len() == len)
            .collect();
        let flat: Vec<u32> = members
            .iter()
            .flat_map(|&i| seqs[i].ids.iter().copied())
            .collect();
        let ids = Tensor::from_vec(flat, (members.len(), len), dev)?;
        let member_ids: Vec<Vec<u32>> = members.iter().map(|&i| seqs[i].ids.clone()).collect();
        let rows = next_token_logprobs(&logits(&ids)?, &member_ids)?;
        for (row, &i) in rows.iter().zip(&members) {
            let n = seqs[i].n_target;
            out[i] = row[len - 1 - n..].iter().sum();
        }
    }
    Ok(out)
}
