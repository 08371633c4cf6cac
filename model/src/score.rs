//! Per-token log-probabilities of a text under a model: the number to compare across devices and
//! dtypes (`k2 model score`), and with transformers.

use std::path::Path;

use candle_core::Tensor;

use crate::device::Placement;
use crate::error::{ModelError, Result};
use crate::logprob::next_token_logprobs;

/// Token ids of `text` (with the tokenizer's BOS handling) and `log p(token_i | tokens_<i)` for
/// i >= 1, from one forward pass of the model in `dir` on `placement` (at most its context).
pub fn score_text(dir: &Path, text: &str, placement: &Placement) -> Result<(Vec<u32>, Vec<f32>)> {
    let model = crate::decoder_weights::load_decoder_on(dir, placement)?;
    let tok_path = dir.join("tokenizer.json");
    let tok = crate::tokenizer::load_tokenizer(&tok_path)?;
    let enc = tok.encode(text, true).map_err(|e| ModelError::Tokenizer {
        path: tok_path.clone(),
        message: e.to_string(),
    })?;
    let mut ids = enc.get_ids().to_vec();
    ids.truncate(model.arch().max_position_embeddings);
    if ids.len() < 2 {
        return Err(ModelError::Tokenizer {
            path: tok_path,
            message: "the text has fewer than 2 tokens".into(),
        });
    }
    let t = Tensor::from_vec(ids.clone(), (1, ids.len()), model.device())?;
    let logits = model.forward(&t)?;
    let lp = next_token_logprobs(&logits, std::slice::from_ref(&ids))?;
    Ok((ids, lp[0].iter().map(|&x| x as f32).collect()))
}
