//! A task's requests built once for a whole sweep, and their token ids computed once per
//! tokenizer: the checkpoints of a run or a suite share a tokenizer, so every checkpoint after
//! the first scores the same token ids without building a prompt or calling the tokenizer again.
//!
//! What is cached is exactly what a fresh build computes: [`Task::requests`] is a function of the
//! document and the shot count (few-shot draws are seeded per document), and a pair's token ids
//! are a function of the texts and the tokenizer, which the key names. A sweep whose checkpoints
//! change tokenizer gets one encoding per tokenizer.

use std::sync::{Arc, Mutex};

use crate::encode::EncodedPair;
use crate::error::Result;
use crate::request::Request;
use crate::task::Task;

/// (context, continuation) pairs and each one's (document, request index).
pub type LoglikelihoodPairs<'a> = (Vec<(&'a str, &'a str)>, Vec<(usize, usize)>);

/// The requests of a task's first `limit` documents, `shots`-shot, and their loglikelihood
/// pairs' token ids by tokenizer.
pub struct Prepared {
    /// Each document's requests, in document order.
    pub per_doc: Vec<Vec<Request>>,
    /// (tokenizer key, the loglikelihood pairs' ids in [`Prepared::loglikelihood_pairs`] order).
    encoded: Mutex<Vec<(String, Arc<Vec<EncodedPair>>)>>,
}

impl Prepared {
    pub fn build(task: &dyn Task, shots: usize, limit: Option<usize>) -> Self {
        let n = limit.map_or(task.num_docs(), |l| l.min(task.num_docs()));
        Prepared {
            per_doc: (0..n).map(|d| task.requests(d, shots)).collect(),
            encoded: Mutex::new(Vec::new()),
        }
    }

    /// Requests over all documents.
    pub fn requests(&self) -> usize {
        self.per_doc.iter().map(Vec::len).sum()
    }

    /// Every loglikelihood request as (context, continuation), with its (document, index).
    pub fn loglikelihood_pairs(&self) -> LoglikelihoodPairs<'_> {
        let mut pairs = Vec::new();
        let mut owner = Vec::new();
        for (d, reqs) in self.per_doc.iter().enumerate() {
            for (k, r) in reqs.iter().enumerate() {
                if let Request::Loglikelihood {
                    context,
                    continuation,
                } = r
                {
                    pairs.push((context.as_str(), continuation.as_str()));
                    owner.push((d, k));
                }
            }
        }
        (pairs, owner)
    }

    /// The loglikelihood pairs' token ids under the tokenizer named `key`: `encode`'s result,
    /// computed on the first call for that key and shared after. An error is returned, not kept.
    pub fn encoded(
        &self,
        key: &str,
        encode: impl FnOnce() -> Result<Vec<EncodedPair>>,
    ) -> Result<Arc<Vec<EncodedPair>>> {
        let found = self
            .encoded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone());
        if let Some(v) = found {
            return Ok(v);
        }
        let v = Arc::new(encode()?);
        self.encoded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key.to_string(), v.clone()));
        Ok(v)
    }

    /// How many times the pairs have been tokenized (one per tokenizer seen).
    pub fn encodings(&self) -> usize {
        self.encoded.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
