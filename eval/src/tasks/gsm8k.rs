//! `gsm8k` (lm-eval `tasks/gsm8k/gsm8k.yaml`, version 3.0): grade-school math, test split (1319
//! problems), 5-shot from the train split (7473) by default.
//!
//! * Prompt: `"Question: {question}\nAnswer:"`. A few-shot example is that text, the target
//!   delimiter `" "`, the FULL answer (rationale with `<<…>>` annotations, ending `"#### N"`) and
//!   the few-shot delimiter `"\n\n"`; the examples precede the question.
//! * Few-shot selection as lm-eval's `ContextSampler`: one `random.Random(1234)` per task, shared
//!   across documents in document order, `rnd.sample(train, shots)` per document; examples equal to
//!   the evaluated document are dropped (`[x for x in fewshotex if x != doc][:n]`). Document `i`'s
//!   examples are therefore the `(i+1)`-th draw of that stream, which [`Gsm8k::fewshot_indices`]
//!   replays (cached per shot count) so that `requests(doc, shots)` is a pure function.
//! * Request: `generate_until` with `until = ["Question:", "</s>", "<|im_end|>"]`,
//!   `max_gen_toks = 256` (lm-eval's default), greedy.
//! * Filters: `strict-match` = first match of `#### (\-?[0-9\.\,]+)` (group 1);
//!   `flexible-extract` = LAST match of `(-?[$0-9.,]{2,})|(-?[0-9]+)` (the group that matched);
//!   `"[invalid]"` when nothing matches. Both then `take_first`.
//! * `exact_match` with `ignore_case`, `regexes_to_ignore = [",", "\$", "(?s).*#### ", "\.$"]`
//!   applied in that order to prediction and target (the full answer), then lower-cased.
//!
//! The patterns are lm-eval's, through the `regex` crate, whose leftmost-first alternation and
//! non-overlapping `find_iter` are Python `re`'s. One construct differs: Python's `$` also matches
//! just before a final newline, so `\.$` is written `\.(\n?)\z` with the newline put back.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use k2_archive::results_file::DatasetRecord;
use regex::Regex;

use crate::data;
use crate::datasets::{fingerprint_of, Dataset, Load, SplitRows};
use crate::error::Result;
use crate::pyrandom::PyRandom;
use crate::request::{Request, Response};
use crate::task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};

/// lm-eval 0.4 `gsm8k.yaml`: `dataset_path: gsm8k` (now `openai/gsm8k`), `dataset_name: main`,
/// test split, few-shot from `train` (`fewshot_split: train`).
pub const DATASET: Dataset = Dataset::new("openai/gsm8k", Some("main"));
/// lm-eval's few-shot seed (`DEFAULT_OTHER_SEED`, `--fewshot_random_seed`).
pub const FEWSHOT_SEED: i64 = 1234;
/// Generation stops.
pub const UNTIL: [&str; 3] = ["Question:", "</s>", "<|im_end|>"];
/// lm-eval's default `max_gen_toks`.
pub const MAX_GEN_TOKS: usize = 256;
/// What a regex filter yields when nothing matches.
pub const INVALID: &str = "[invalid]";

/// One GSM8K problem (`{"question", "answer"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gsm8kDoc {
    pub question: String,
    pub answer: String,
}

impl Gsm8kDoc {
    /// `doc_to_text`.
    pub fn text(&self) -> String {
        format!("Question: {}\nAnswer:", self.question)
    }
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid pattern")
}

/// `strict-match`'s pattern (gsm8k.yaml).
static STRICT: LazyLock<Regex> = LazyLock::new(|| regex(r"#### (\-?[0-9\.\,]+)"));
/// `flexible-extract`'s pattern (gsm8k.yaml).
static FLEXIBLE: LazyLock<Regex> = LazyLock::new(|| regex(r"(-?[$0-9.,]{2,})|(-?[0-9]+)"));
/// `exact_match`'s `regexes_to_ignore`, in order, with their replacements.
static IGNORE: LazyLock<[(Regex, &str); 4]> = LazyLock::new(|| {
    [
        (regex(r","), ""),
        (regex(r"\$"), ""),
        (regex(r"(?s).*#### "), ""),
        // Python's `\.$`: `$` matches at the end and just before a final "\n".
        (regex(r"\.(\n?)\z"), "${1}"),
    ]
});

/// `strict-match`: group 1 of the first match of `#### (\-?[0-9\.\,]+)`, else `"[invalid]"`.
pub fn strict_match(text: &str) -> String {
    STRICT
        .captures(text)
        .and_then(|c| c.get(1))
        .map_or_else(|| INVALID.to_string(), |m| m.as_str().to_string())
}

/// All matches of the flexible-extract pattern, as `re.findall` finds them (left to right,
/// non-overlapping), each the text of whichever group matched.
pub fn flexible_matches(text: &str) -> Vec<&str> {
    FLEXIBLE.find_iter(text).map(|m| m.as_str()).collect()
}

/// `flexible-extract`: the last match of `(-?[$0-9.,]{2,})|(-?[0-9]+)`, else `"[invalid]"`.
pub fn flexible_extract(text: &str) -> String {
    flexible_matches(text)
        .last()
        .map_or_else(|| INVALID.to_string(), |m| m.trim().to_string())
}

/// Apply gsm8k's `regexes_to_ignore` (`","`, `"\$"`, `"(?s).*#### "`, `"\.$"`, in order, each as
/// `re.sub(r, "", s)`) and then `ignore_case` (lower-casing), as lm-eval's `exact_match`.
pub fn normalize_exact_match(s: &str) -> String {
    let mut s = s.to_string();
    for (re, with) in IGNORE.iter() {
        s = re.replace_all(&s, *with).into_owned();
    }
    s.to_lowercase()
}

/// lm-eval `exact_match` for gsm8k: the normalized strings are equal.
pub fn exact_match(prediction: &str, target: &str) -> bool {
    normalize_exact_match(prediction) == normalize_exact_match(target)
}

fn docs(rows: &SplitRows) -> Result<Vec<Gsm8kDoc>> {
    rows.iter()
        .map(|(path, line, v)| {
            Ok(Gsm8kDoc {
                question: data::get_str(path, line, v, "question")?,
                answer: data::get_str(path, line, v, "answer")?,
            })
        })
        .collect()
}

/// The `gsm8k` task.
#[derive(Debug)]
pub struct Gsm8k {
    test: Vec<Gsm8kDoc>,
    /// The few-shot pool (empty when not loaded: a zero-shot run).
    train: Vec<Gsm8kDoc>,
    /// The splits read (for the fingerprint and the results file).
    datasets: Vec<DatasetRecord>,
    /// shots -> few-shot train indices of every test document.
    fewshot_cache: Mutex<BTreeMap<usize, Arc<Vec<Vec<usize>>>>>,
}

impl Gsm8k {
    pub fn load(load: &Load) -> Result<Self> {
        let test = load.split(&DATASET, "test")?;
        let train = load.fewshot_split(&DATASET, "train")?;
        let mut splits = vec![&test];
        splits.extend(train.as_ref());
        Ok(Self {
            test: docs(&test)?,
            train: train.as_ref().map(docs).transpose()?.unwrap_or_default(),
            datasets: splits.iter().map(|s| s.record.clone()).collect(),
            fewshot_cache: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn docs(&self) -> &[Gsm8kDoc] {
        &self.test
    }

    pub fn train_docs(&self) -> &[Gsm8kDoc] {
        &self.train
    }

    /// Indices into the train split of document `doc`'s few-shot examples, in prompt order:
    /// the `(doc+1)`-th `random.Random(1234).sample(train, shots)`, minus any example equal to
    /// the document itself.
    pub fn fewshot_indices(&self, doc: usize, shots: usize) -> Vec<usize> {
        if shots == 0 {
            return Vec::new();
        }
        let all = {
            let mut cache = self.fewshot_cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .entry(shots)
                .or_insert_with(|| {
                    let mut rnd = PyRandom::new(FEWSHOT_SEED);
                    let n = self.train.len();
                    Arc::new(
                        (0..self.test.len())
                            .map(|_| rnd.sample_indices(n, shots.min(n)))
                            .collect(),
                    )
                })
                .clone()
        };
        let d = &self.test[doc];
        all[doc]
            .iter()
            .copied()
            .filter(|&j| self.train[j] != *d)
            .take(shots)
            .collect()
    }

    /// The prompt of document `doc` with `shots` examples.
    pub fn prompt(&self, doc: usize, shots: usize) -> String {
        let mut s = String::new();
        for j in self.fewshot_indices(doc, shots) {
            let ex = &self.train[j];
            s.push_str(&ex.text());
            s.push(' ');
            s.push_str(&ex.answer);
            s.push_str("\n\n");
        }
        s.push_str(&self.test[doc].text());
        s
    }
}

impl Task for Gsm8k {
    fn name(&self) -> &str {
        "gsm8k"
    }
    fn version(&self) -> f64 {
        3.0
    }
    fn num_docs(&self) -> usize {
        self.test.len()
    }
    /// The train split.
    fn max_shots(&self) -> Option<usize> {
        Some(self.train.len())
    }

    fn default_shots(&self) -> usize {
        5
    }
    fn requests(&self, doc: usize, shots: usize) -> Vec<Request> {
        vec![Request::Generate {
            context: self.prompt(doc, shots),
            until: UNTIL.iter().map(|s| s.to_string()).collect(),
            max_gen_toks: MAX_GEN_TOKS,
        }]
    }
    fn process(&self, doc: usize, responses: &[Response]) -> DocResult {
        let text = responses.first().map_or("", Response::text);
        let target = &self.test[doc].answer;
        let strict = strict_match(text);
        let flex = flexible_extract(text);
        let em = |p: &str| MetricValue {
            value: if exact_match(p, target) { 1.0 } else { 0.0 },
            weight: 1.0,
        };
        let mut r = DocResult {
            prediction: text.to_string(),
            target: target.clone(),
            ..Default::default()
        };
        r.filtered.insert("strict-match".into(), strict.clone());
        r.filtered.insert("flexible-extract".into(), flex.clone());
        r.metrics
            .insert("exact_match,strict-match".into(), em(&strict));
        r.metrics
            .insert("exact_match,flexible-extract".into(), em(&flex));
        r
    }
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![
            MetricSpec::new("exact_match", "strict-match", Aggregation::Mean, true),
            MetricSpec::new("exact_match", "flexible-extract", Aggregation::Mean, true),
        ]
    }
    fn fingerprint(&self) -> String {
        format!(
            "gsm8k v3.0; {}; 'Question: {{q}}\\nAnswer:' + ' ' + answer, \
             '\\n\\n'; fewshot random.Random({FEWSHOT_SEED}).sample shared in doc order; \
             until {UNTIL:?}, max_gen_toks {MAX_GEN_TOKS}; strict-match, flexible-extract",
            fingerprint_of(&self.datasets)
        )
    }
    fn datasets(&self) -> Vec<DatasetRecord> {
        self.datasets.clone()
    }
}
