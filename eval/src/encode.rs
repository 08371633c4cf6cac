//! Turning requests into token ids exactly as lm-evaluation-harness does for causal models
//! (`api/model.py::_encode_pair`, `huggingface.py::tok_encode`):
//! trailing whitespace of the context (`context.rstrip()`: spaces, newlines, tabs, ...) moves to the front of the continuation; the continuation's tokens
//! are those of `context + continuation` after as many tokens as the context alone encodes to, and
//! the model sees `encode(context) + continuation`; an empty context becomes the
//! prefix token (BOS if the tokenizer has one, else EOS, as its `tokenizer_config.json` names them)
//! and its continuation is encoded without special tokens.
//! Encoding applies the tokenizer's own special-token template as transformers loads it (HF LLaMA
//! tokenizers prepend BOS; GPT-NeoX's and k2's byte-level BPE add nothing; see
//! [`k2_model::CheckpointTokenizer`]).

use k2_model::CheckpointTokenizer;

use crate::error::{EvalError, Result};
use crate::py_str::py_rstrip;

/// Token ids of a (context, continuation) pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncodedPair {
    pub context: Vec<u32>,
    pub continuation: Vec<u32>,
}

/// lm-eval's `tok_encode`: the tokenizer's own special-token template, except for a text that
/// already starts with the prefix token's text (then no special tokens are added).
pub fn encode(tok: &CheckpointTokenizer, text: &str) -> Result<Vec<u32>> {
    let starts_with_prefix = tok
        .prefix_token()
        .and_then(|p| tok.decode(&[p], false).ok())
        .is_some_and(|p| !p.is_empty() && text.starts_with(&p));
    tok.encode(text, !starts_with_prefix)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| EvalError::Tokenizer(e.to_string()))
}

/// The token lm-eval uses as the context of an empty-context request.
pub fn prefix_token(tok: &CheckpointTokenizer) -> Option<u32> {
    tok.prefix_token()
}

pub fn encode_pair(
    tok: &CheckpointTokenizer,
    context: &str,
    continuation: &str,
) -> Result<EncodedPair> {
    if context.is_empty() {
        // lm-eval 0.4.13 (`api/model.py::loglikelihood`): the continuation without special
        // tokens after the prefix token; a continuation that itself starts with the prefix token
        // gives its first token to the context instead.
        let p =
            prefix_token(tok).ok_or_else(|| EvalError::Tokenizer("neither BOS nor EOS".into()))?;
        let mut cont = tok
            .encode(continuation, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| EvalError::Tokenizer(e.to_string()))?;
        let context = if cont.first() == Some(&p) {
            vec![cont.remove(0)]
        } else {
            vec![p]
        };
        if cont.is_empty() {
            return Err(EvalError::EmptyContinuation {
                context: String::new(),
            });
        }
        return Ok(EncodedPair {
            context,
            continuation: cont,
        });
    }
    // Python's `str.rstrip()`: every whitespace character, not only spaces.
    let trimmed = py_rstrip(context);
    let n = context.len() - trimmed.len();
    let (ctx, cont) = if n > 0 {
        (
            trimmed.to_string(),
            format!("{}{continuation}", &context[trimmed.len()..]),
        )
    } else {
        (context.to_string(), continuation.to_string())
    };
    if cont.is_empty() {
        return Err(EvalError::EmptyContinuation {
            context: ctx.chars().take(60).collect(),
        });
    }
    let whole = encode(tok, &format!("{ctx}{cont}"))?;
    let mut ctx_enc = encode(tok, &ctx)?;
    let split = ctx_enc.len().min(whole.len());
    let continuation = whole[split..].to_vec();
    if continuation.is_empty() {
        // lm-eval refuses it too: there would be nothing to score, and a log-likelihood of 0
        // would be the best possible.
        return Err(EvalError::EmptyContinuation {
            context: ctx.chars().take(60).collect(),
        });
    }
    if ctx_enc.is_empty() {
        // A context the tokenizer turns into nothing is scored as the empty context.
        ctx_enc.push(
            prefix_token(tok).ok_or_else(|| EvalError::Tokenizer("neither BOS nor EOS".into()))?,
        );
    }
    Ok(EncodedPair {
        continuation,
        context: ctx_enc,
    })
}
