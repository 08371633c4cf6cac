//! Turning requests into token ids exactly as lm-evaluation-harness does for causal models
//! (`api/model.py::_encode_pair`, `huggingface.py::tok_encode`):
//! trailing whitespace of the context (`context.rstrip()`: spaces, newlines, tabs, ...) moves to the front of the continuation; the continuation's tokens
//! are those of `context + continuation` after as many tokens as the context alone encodes to, and
//! the model sees `encode(context) + continuation`; an empty context becomes the
//! prefix token (BOS if the tokenizer has one, else EOS). Encoding applies the tokenizer's own
//! special-token template (HF LLaMA tokenizers prepend BOS; k2's byte-level BPE adds nothing).

use k2_model::Tokenizer;

use crate::error::{EvalError, Result};

/// Token ids of a (context, continuation) pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncodedPair {
    pub context: Vec<u32>,
    pub continuation: Vec<u32>,
}

pub fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    tok.encode(text, true)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| EvalError::Tokenizer(e.to_string()))
}

/// The token lm-eval uses as the context of an empty-context request.
pub fn prefix_token(tok: &Tokenizer) -> Option<u32> {
    ["<s>", "<|begin_of_text|>", "<bos>"]
        .iter()
        .find_map(|t| tok.token_to_id(t))
        .or_else(|| {
            ["</s>", "<|endoftext|>", "<eos>"]
                .iter()
                .find_map(|t| tok.token_to_id(t))
        })
}

pub fn encode_pair(tok: &Tokenizer, context: &str, continuation: &str) -> Result<EncodedPair> {
    // Python's `str.rstrip()`: every whitespace character, not only spaces.
    let trimmed =
        context.trim_end_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
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
    if ctx.is_empty() {
        let p =
            prefix_token(tok).ok_or_else(|| EvalError::Tokenizer("neither BOS nor EOS".into()))?;
        return Ok(EncodedPair {
            context: vec![p],
            continuation: encode(tok, &cont)?,
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
