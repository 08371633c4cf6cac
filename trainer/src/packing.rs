//! Packing documents into fixed-length samples as K2 did: documents joined with EOS (no BOS, no
//! attention reset at boundaries), the token stream cut into `seq_len`-token samples. Every sample
//! records where it came from.

use std::collections::VecDeque;

use k2_corpus::Source;
use k2_model::Tokenizer;

use crate::error::Result;
use crate::tokenizer_train::{encode, EOS_ID};

pub use k2_archive::Sample;

/// The first `n` samples of `source`, packed from its documents `first_doc`, `first_doc + 1`, ...
pub fn pack_source(
    source: &dyn Source,
    tokenizer: &Tokenizer,
    seq_len: usize,
    first_doc: u64,
    n: usize,
) -> Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(n);
    // The token stream not yet cut, with each token's (document, offset in document).
    let mut buf: VecDeque<(u32, u64, u32)> = VecDeque::with_capacity(2 * seq_len);
    let mut next_doc = first_doc;
    while out.len() < n {
        while buf.len() < seq_len {
            let mut ids = encode(tokenizer, &source.document(next_doc))?;
            ids.push(EOS_ID);
            buf.extend(
                ids.into_iter()
                    .enumerate()
                    .map(|(i, t)| (t, next_doc, i as u32)),
            );
            next_doc += 1;
        }
        let (_, doc, offset) = buf[0];
        let token_ids = buf.drain(..seq_len).map(|(t, _, _)| t).collect();
        out.push(Sample {
            token_ids,
            source: source.name().to_string(),
            doc,
            offset,
            spliced: None,
        });
    }
    Ok(out)
}
