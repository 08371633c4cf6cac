//! Training the run's byte-level BPE tokenizer on a sample of the corpus (every checkpoint then
//! carries it as `tokenizer.json`). Deterministic: the same documents give the same file.

use k2_model::Tokenizer;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, TokenizerBuilder};

use crate::error::{Result, TrainError};

pub const PAD: &str = "<pad>";
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
pub const PAD_ID: u32 = 0;
pub const BOS_ID: u32 = 1;
pub const EOS_ID: u32 = 2;

/// Trains a byte-level BPE with `vocab_size` entries (ids 0, 1, 2 = `<pad>`, `<s>`, `</s>`,
/// LLaMA's BOS/EOS convention) on `docs`.
pub fn train_bpe(docs: &[String], vocab_size: usize) -> Result<Tokenizer> {
    let tk = |e: tokenizers::Error| TrainError::Tokenizer(e.to_string());
    let specials: Vec<AddedToken> = [PAD, BOS, EOS]
        .iter()
        .map(|s| AddedToken::from(s.to_string(), true))
        .collect();
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_normalizer(None::<tokenizers::NormalizerWrapper>)
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(Some(ByteLevel::new(false, true, true)))
        .with_decoder(Some(ByteLevelDecoder::new(false, true, true)))
        .build()
        .map_err(tk)?;
    tokenizer.train(&mut trainer, docs.iter()).map_err(tk)?;
    let tokenizer: Tokenizer = tokenizer.into();
    for (tok, id) in [(PAD, PAD_ID), (BOS, BOS_ID), (EOS, EOS_ID)] {
        if tokenizer.token_to_id(tok) != Some(id) {
            return Err(TrainError::Tokenizer(format!(
                "special token {tok} did not get id {id}"
            )));
        }
    }
    Ok(tokenizer)
}

/// Token ids of `text` without special tokens.
pub fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let enc = tokenizer
        .encode(text, false)
        .map_err(|e| TrainError::Tokenizer(e.to_string()))?;
    Ok(enc.get_ids().to_vec())
}

/// The tokenizer as `tokenizer.json` text.
pub fn to_json(tokenizer: &Tokenizer) -> Result<String> {
    tokenizer
        .to_string(true)
        .map_err(|e| TrainError::Tokenizer(e.to_string()))
}
