//! WinoGrande (lm-eval `winogrande`, winogrande_xl, version 1.0), validation split, acc only.
//!
//! lm-eval uses "partial evaluation" (multiple_input): `doc_to_text` returns the gold index,
//! `doc_to_choice` = `[sentence[:idx] + option1, sentence[:idx] + option2]` (idx = index of "_"),
//! `doc_to_target` = `sentence[idx+1:].strip()`. One request per *context*:
//! `(fewshot_prefix + choice_i, " " + target)`; acc = argmax ll == gold.
//! A few-shot example is `choices[gold] + " " + target + "\n\n"`.
//! Data (lm-eval 0.4 `winogrande.yaml`): `dataset_path: allenai/winogrande`, `dataset_name:
//! winogrande_xl`, validation split, few-shot from `train` (`n + 1` drawn: neither
//! `fewshot_split` nor `test_split` is set; docs equal to the evaluated one dropped). Rows:
//! `sentence` with one `_`, `option1`, `option2`, `answer` (`"1"` or `"2"`).

use crate::data;
use crate::datasets::{Dataset, Load, SplitRows};
use crate::error::Result;
use crate::fewshot::{
    argmax_first, assemble_prompt, context_sampler_fewshot, data_fingerprint, FewshotCache,
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
    /// The few-shot split's docs (`None`: not loaded, zero-shot only).
    pub pool: Option<Vec<WinograndeDoc>>,
    pub seed: u64,
    fingerprint: String,
    datasets: Vec<k2_archive::results_file::DatasetRecord>,
    cache: FewshotCache,
}

pub const DATASET: Dataset = Dataset::new("allenai/winogrande", Some("winogrande_xl"));

/// lm-eval's `doc_to_choice` / `doc_to_target` / `doc_to_text` of winogrande rows.
fn docs(rows: &SplitRows) -> Result<Vec<WinograndeDoc>> {
    rows.iter()
        .map(|(path, line, v)| {
            let sentence = data::get_str(path, line, v, "sentence")?;
            let idx = sentence
                .find('_')
                .ok_or_else(|| data::err(path, line, "`sentence` has no `_` blank"))?;
            let options = [
                data::get_str(path, line, v, "option1")?,
                data::get_str(path, line, v, "option2")?,
            ];
            let answer = data::get_str(path, line, v, "answer")?;
            let gold = match answer.as_str() {
                "1" => 0,
                "2" => 1,
                other => {
                    return Err(data::err(
                        path,
                        line,
                        format!("`answer` is `{other}`, not \"1\" or \"2\""),
                    ))
                }
            };
            Ok(WinograndeDoc {
                contexts: options
                    .iter()
                    .map(|o| format!("{}{o}", &sentence[..idx]))
                    .collect(),
                continuation: sentence[idx + 1..].trim().to_string(),
                gold,
            })
        })
        .collect()
}

impl Winogrande {
    pub fn load(load: &Load) -> Result<Self> {
        let eval = load.split(&DATASET, "validation")?;
        let train = load.fewshot_split(&DATASET, "train")?;
        let mut splits = vec![&eval];
        splits.extend(train.as_ref());
        Ok(Winogrande {
            docs: docs(&eval)?,
            pool: train.as_ref().map(docs).transpose()?,
            seed: DEFAULT_FEWSHOT_SEED,
            fingerprint: data_fingerprint("winogrande", &splits, VERSION, FORMAT_ID),
            datasets: splits.iter().map(|s| s.record.clone()).collect(),
            cache: FewshotCache::new(),
        })
    }

    /// The few-shot prefix of `doc` (empty for 0 shots).
    pub fn fewshot_prefix(&self, doc: usize, shots: usize) -> String {
        let Some(pool) = self.pool.as_ref().filter(|_| shots > 0) else {
            return String::new();
        };
        let table = self.cache.get(shots, || {
            context_sampler_fewshot(
                pool.len(),
                self.docs.len(),
                shots,
                self.seed,
                true,
                |d, p| self.docs[d] == pool[p],
            )
        });
        let ex: Vec<(String, String)> = table[doc]
            .iter()
            .map(|&p| {
                let d = &pool[p];
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
    /// The few-shot split's size.
    fn max_shots(&self) -> Option<usize> {
        Some(self.pool.as_ref().map_or(0, Vec::len))
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
    fn datasets(&self) -> Vec<k2_archive::results_file::DatasetRecord> {
        self.datasets.clone()
    }
    fn chance(&self) -> Option<f64> {
        Some(0.5)
    }
}
