//! WinoGrande (lm-eval `winogrande`, winogrande_xl, version 1.0), validation split, acc only.
//!
//! lm-eval uses "partial evaluation" (multiple_input): `doc_to_text` returns the gold index,
//! `doc_to_choice` = `[sentence[:idx] + option1, sentence[:idx] + option2]` (idx = index of "_"),
//! `doc_to_target` = `sentence[idx+1:].strip()`. One request per *context*:
//! `(fewshot_prefix + choice_i, " " + target)`; acc = argmax ll == gold.
//! A few-shot example is `choices[gold] + " " + target + "\n\n"`.
//! Data: llm-foundry's `winogrande/winogrande_validation.jsonl`
//! (`{"context_options": [..2], "continuation": target, "gold": 0|1}`).
//! Few-shot: eval split (train not available), draw n+1, drop docs equal to the evaluated one
//! (winogrande docs have no id, so equality is by content).

use std::path::Path;

use crate::data;
use crate::error::Result;
use crate::fewshot::{
    argmax_first, assemble_prompt, context_sampler_fewshot, sha256_hex, FewshotCache,
    DEFAULT_FEWSHOT_SEED, FEWSHOT_DELIMITER, TARGET_DELIMITER,
};
use crate::request::{Request, Response};
use crate::task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};

pub const VERSION: f64 = 1.0;
pub const FORMAT_ID: &str =
    "lm-eval winogrande v1.0: partial scoring (option ctx, ' '+continuation)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinograndeDoc {
    /// `[sentence[:idx] + option1, sentence[:idx] + option2]`.
    pub contexts: Vec<String>,
    /// `sentence[idx+1:].strip()`.
    pub continuation: String,
    pub gold: usize,
}

#[derive(Debug)]
pub struct Winogrande {
    pub docs: Vec<WinograndeDoc>,
    pub seed: u64,
    fingerprint: String,
    cache: FewshotCache,
}

impl Winogrande {
    /// Loads `data_root/winogrande/winogrande_validation.jsonl`.
    pub fn load(data_root: &Path) -> Result<Self> {
        let path = data_root.join("winogrande/winogrande_validation.jsonl");
        let text = data::read_string(&path)?;
        let mut docs = Vec::new();
        for (line, v) in data::jsonl(&path, &text)? {
            let contexts = data::get_str_list(&path, line, &v, "context_options")?;
            if contexts.len() != 2 {
                return Err(data::err(
                    &path,
                    line,
                    "context_options must have 2 entries",
                ));
            }
            let continuation = data::get_str(&path, line, &v, "continuation")?;
            let gold = data::get_gold(&path, line, &v, "gold", 2)?;
            docs.push(WinograndeDoc {
                contexts,
                continuation,
                gold,
            });
        }
        Ok(Winogrande {
            docs,
            seed: DEFAULT_FEWSHOT_SEED,
            fingerprint: format!(
                "winogrande|data:{}|v{VERSION}|{FORMAT_ID}",
                sha256_hex(text.as_bytes())
            ),
            cache: FewshotCache::new(),
        })
    }

    /// The few-shot prefix of `doc` (empty for 0 shots).
    pub fn fewshot_prefix(&self, doc: usize, shots: usize) -> String {
        if shots == 0 {
            return String::new();
        }
        let table = self.cache.get(shots, || {
            context_sampler_fewshot(
                self.docs.len(),
                self.docs.len(),
                shots,
                self.seed,
                true,
                |d, p| self.docs[d] == self.docs[p],
            )
        });
        let ex: Vec<(String, String)> = table[doc]
            .iter()
            .map(|&p| {
                let d = &self.docs[p];
                (d.contexts[d.gold].clone(), d.continuation.clone())
            })
            .collect();
        assemble_prompt("", &ex, TARGET_DELIMITER, FEWSHOT_DELIMITER, "")
    }
}

impl Task for Winogrande {
    fn name(&self) -> &str {
        "winogrande"
    }
    fn version(&self) -> f64 {
        VERSION
    }
    fn num_docs(&self) -> usize {
        self.docs.len()
    }
    /// The eval split less the document itself.
    fn max_shots(&self) -> Option<usize> {
        Some(self.docs.len().saturating_sub(1))
    }

    fn default_shots(&self) -> usize {
        0
    }
    fn requests(&self, doc: usize, shots: usize) -> Vec<Request> {
        let prefix = self.fewshot_prefix(doc, shots);
        let d = &self.docs[doc];
        d.contexts
            .iter()
            .map(|c| Request::Loglikelihood {
                context: format!("{prefix}{c}"),
                continuation: format!("{TARGET_DELIMITER}{}", d.continuation),
            })
            .collect()
    }
    fn process(&self, doc: usize, responses: &[Response]) -> DocResult {
        let d = &self.docs[doc];
        let lls: Vec<f64> = responses.iter().map(Response::ll).collect();
        let pred = argmax_first(&lls);
        let mut r = DocResult::default();
        r.metrics.insert(
            "acc,none".into(),
            MetricValue {
                value: if pred == d.gold { 1.0 } else { 0.0 },
                weight: 1.0,
            },
        );
        r.prediction = d.contexts.get(pred).cloned().unwrap_or_default();
        r.target = d.contexts[d.gold].clone();
        r.gold = Some(d.gold);
        r
    }
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::new("acc", "none", Aggregation::Mean, true)]
    }
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
    fn chance(&self) -> Option<f64> {
        Some(0.5)
    }
}
