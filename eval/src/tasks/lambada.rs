//! `lambada_openai` (lm-eval `tasks/lambada/lambada_openai.yaml`, version 1.0): the OpenAI
//! (detokenized) LAMBADA test set, 5153 passages; predict the last word.
//!
//! lm-eval builds `context = " ".join(text.split(" ")[:-1])` and `continuation = " " + text.split(" ")[-1]`,
//! `output_type: loglikelihood`; metrics `perplexity` (exp(−mean ll), lower is better) and `acc`
//! (the whole continuation is the greedy argmax, i.e. `is_greedy`, mean).
//!
//! Data (lm-eval 0.4 `lambada_openai.yaml`): `dataset_path: EleutherAI/lambada_openai`,
//! `dataset_name: default`, test split; the repository holds a loading script, so its rows come
//! from the Hub's parquet export. Rows: `text`. Because lm-eval splits on `' '` only, a "last
//! word" may contain newlines (7 rows, e.g. `"\n\nrecorder"`); they are kept as they are.

use k2_archive::results_file::DatasetRecord;

use crate::data;
use crate::datasets::{fingerprint_of, Dataset, Load};
use crate::error::Result;
use crate::request::{Request, Response};
use crate::task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};

pub const DATASET: Dataset = Dataset::new("EleutherAI/lambada_openai", Some("default"));

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
    datasets: Vec<DatasetRecord>,
}

impl Lambada {
    pub fn load(load: &Load) -> Result<Self> {
        let test = load.split(&DATASET, "test")?;
        let docs = test
            .iter()
            .map(|(path, line, v)| {
                let text = data::get_str(path, line, v, "text")?;
                // text.split(" "): the last piece is the word; the rest, joined, the context.
                let (context, word) = text.rsplit_once(' ').unwrap_or(("", &text));
                Ok(LambadaDoc {
                    context: context.to_string(),
                    last_word: word.to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            docs,
            datasets: vec![test.record.clone()],
        })
    }

    pub fn docs(&self) -> &[LambadaDoc] {
        &self.docs
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
            "lambada_openai v1.0; data {}; loglikelihood(context, ' ' + last word); \
             metrics perplexity, acc=is_greedy",
            fingerprint_of(&self.datasets)
        )
    }
    fn datasets(&self) -> Vec<DatasetRecord> {
        self.datasets.clone()
    }
}
