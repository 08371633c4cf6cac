//! `lambada_openai` (lm-eval `tasks/lambada/lambada_openai.yaml`, version 1.0): the OpenAI
//! (detokenized) LAMBADA test set, 5153 passages; predict the last word.
//!
//! lm-eval builds `context = " ".join(text.split(" ")[:-1])` and `continuation = " " + text.split(" ")[-1]`,
//! `output_type: loglikelihood`; metrics `perplexity` (exp(−mean ll), lower is better) and `acc`
//! (the whole continuation is the greedy argmax, i.e. `is_greedy`, mean).
//!
//! The offline file (`lambada/lambada_openai_test.jsonl`, from llm-foundry) already stores the
//! split: `{"context": all but the last space-separated word, "continuation": last word}`, so
//! `text = context + " " + continuation` and the request is `(context, " " + continuation)`.
//! Because lm-eval splits on `' '` only, a "last word" may contain newlines (7 rows, e.g.
//! `"\n\nrecorder"`); they are kept as they are.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Result;
use crate::request::{Request, Response};
use crate::task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};

/// Relative path of the data file under the shared data directory.
pub const LAMBADA_FILE: &str = "lambada/lambada_openai_test.jsonl";

#[derive(Debug, Clone, Deserialize)]
struct Row {
    context: String,
    continuation: String,
}

/// One LAMBADA document as lm-eval sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LambadaDoc {
    /// All but the last space-separated word (no trailing space).
    pub context: String,
    /// The last word, without the leading space the request adds.
    pub last_word: String,
}

/// The `lambada_openai` task.
#[derive(Debug, Clone)]
pub struct Lambada {
    docs: Vec<LambadaDoc>,
    path: PathBuf,
    sha256: String,
}

impl Lambada {
    /// Load from the shared data directory (`<data_dir>/lambada/lambada_openai_test.jsonl`).
    pub fn load(data_dir: &Path) -> Result<Self> {
        Self::from_file(&data_dir.join(LAMBADA_FILE))
    }

    /// Load from a JSONL file of `{"context", "continuation"}` rows.
    pub fn from_file(path: &Path) -> Result<Self> {
        let (rows, sha256): (Vec<Row>, String) = crate::data::read_jsonl_records(path)?;
        let docs = rows
            .into_iter()
            .map(|r| LambadaDoc {
                context: r.context,
                last_word: r.continuation,
            })
            .collect();
        Ok(Self {
            docs,
            path: path.to_path_buf(),
            sha256,
        })
    }

    pub fn docs(&self) -> &[LambadaDoc] {
        &self.docs
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Task for Lambada {
    fn name(&self) -> &str {
        "lambada_openai"
    }
    fn version(&self) -> f64 {
        1.0
    }
    fn num_docs(&self) -> usize {
        self.docs.len()
    }
    fn default_shots(&self) -> usize {
        0
    }
    /// Zero-shot only (lm-eval's lambada_openai has no few-shot split); `shots` is ignored.
    fn requests(&self, doc: usize, _shots: usize) -> Vec<Request> {
        let d = &self.docs[doc];
        vec![Request::Loglikelihood {
            context: d.context.clone(),
            continuation: format!(" {}", d.last_word),
        }]
    }
    fn process(&self, doc: usize, responses: &[Response]) -> DocResult {
        let (ll, greedy) = match responses.first() {
            Some(Response::Loglikelihood { ll, is_greedy }) => (*ll, *is_greedy),
            _ => (f64::NAN, false),
        };
        let mut r = DocResult {
            prediction: format!("ll={ll} is_greedy={greedy}"),
            target: format!(" {}", self.docs[doc].last_word),
            ..Default::default()
        };
        r.metrics.insert(
            "perplexity,none".into(),
            MetricValue {
                value: ll,
                weight: 1.0,
            },
        );
        r.metrics.insert(
            "acc,none".into(),
            MetricValue {
                value: if greedy { 1.0 } else { 0.0 },
                weight: 1.0,
            },
        );
        r
    }
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![
            MetricSpec::new("perplexity", "none", Aggregation::Perplexity, false),
            MetricSpec::new("acc", "none", Aggregation::Mean, true),
        ]
    }
    fn fingerprint(&self) -> String {
        format!(
            "lambada_openai v1.0; data sha256 {}; loglikelihood(context, ' ' + last word); \
             metrics perplexity, acc=is_greedy",
            self.sha256
        )
    }
}
