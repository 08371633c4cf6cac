//! A task read from an lm-eval YAML ([`TaskConfig`]) as a k2 [`Task`]: its documents with their
//! `doc_to_text` / `doc_to_target` / `doc_to_choice` rendered once at load (so a template error
//! or a missing field is an error before anything is scored), the prompt assembled as lm-eval
//! 0.4's `fewshot_context` does, the requests of its output type (`construct_requests`), and
//! `process_results` with the filters and metrics of its config.

use std::collections::BTreeSet;

use serde_json::Value;

use super::answer_filters::{apply, exact_match};
use super::py_literal::{literal_eval, str_of};
use super::task_config::{DocField, OutputType, Sampler, TaskConfig};
use super::template::{is_template, Templates};
use crate::datasets::{fingerprint_of, Load, SplitRows};
use crate::error::{EvalError, Result};
use crate::fewshot::{argmax_first, FewshotCache, DEFAULT_FEWSHOT_SEED};
use crate::py_str::{count_words, py_isspace};
use crate::pyrandom::PyRandom;
use crate::request::{Request, Response};
use crate::task::{DocResult, MetricSpec, MetricValue, Task};

/// What a `doc_to_*` gives for one document, as Python values.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

/// One document, rendered.
#[derive(Debug, Clone)]
struct Doc {
    raw: Value,
    text: Option<Rendered>,
    target: Rendered,
    choices: Option<Vec<String>>,
    description: String,
    /// The row's `choices` field, for `multi_choice_regex` (empty when no filter reads it).
    mc_choices: Vec<String>,
    /// The rendered `gen_prefix` (the few-shot one for a few-shot example), never empty.
    gen_prefix: Option<String>,
}

pub struct YamlTask {
    cfg: TaskConfig,
    docs: Vec<Doc>,
    pool: Vec<Doc>,
    multiple_input: bool,
    multiple_target: bool,
    /// lm-eval passes the evaluated document to the sampler (to leave it out) when the few-shot
    /// split equals `test_split`, both unset included.
    exclude_eval_doc: bool,
    fewshot_cache: FewshotCache,
    datasets: Vec<k2_archive::results_file::DatasetRecord>,
    fingerprint: String,
}

fn err(cfg: &TaskConfig, field: &str, message: impl Into<String>) -> EvalError {
    EvalError::TaskYaml {
        path: cfg.path.clone(),
        field: Some(field.to_string()),
        message: message.into(),
    }
}

struct Renderer<'a> {
    cfg: &'a TaskConfig,
    t: Templates,
    features: BTreeSet<String>,
}

impl Renderer<'_> {
    fn field_value(&self, doc: &Value, name: &str) -> Option<Value> {
        if self.features.contains(name) {
            Some(doc.get(name).cloned().unwrap_or(Value::Null))
        } else {
            None
        }
    }

    fn render(&self, field: &str, src: &str, doc: &Value, at: &str) -> Result<String> {
        self.t
            .render(src, doc)
            .map_err(|e| err(self.cfg, field, format!("{at}: template: {e}")))
    }

    fn from_value(v: Value) -> Rendered {
        match v {
            Value::String(s) => Rendered::Str(s),
            Value::Number(n) if n.is_i64() => Rendered::Int(n.as_i64().unwrap_or(0)),
            Value::Bool(b) => Rendered::Int(b as i64),
            Value::Array(xs) => Rendered::List(xs),
            other => Rendered::Str(str_of(&other)),
        }
    }

    /// lm-eval's `doc_to_text` (target: false) or `doc_to_target` (target: true).
    fn text_or_target(
        &self,
        name: &str,
        f: &DocField,
        doc: &Value,
        at: &str,
        target: bool,
    ) -> Result<Rendered> {
        Ok(match f {
            DocField::Int(i) => Rendered::Int(*i),
            DocField::List(xs) => Rendered::List(xs.clone()),
            DocField::Text(s) => {
                if let Some(v) = self.field_value(doc, s) {
                    return Ok(Self::from_value(v));
                }
                let r = self.render(name, s, doc, at)?;
                let digits = !r.is_empty() && r.chars().all(|c| c.is_ascii_digit());
                if digits && self.cfg.doc_to_choice.is_some() {
                    match r.parse::<i64>() {
                        Ok(i) => Rendered::Int(i),
                        Err(_) => Rendered::Str(r),
                    }
                } else if target && r.len() >= 2 && r.starts_with('[') && r.ends_with(']') {
                    match literal_eval(&r) {
                        Ok(Value::Array(xs)) => Rendered::List(xs),
                        _ => Rendered::Str(r),
                    }
                } else {
                    Rendered::Str(r)
                }
            }
        })
    }

    fn choices(&self, name: &str, f: &DocField, doc: &Value, at: &str) -> Result<Vec<String>> {
        let list = match f {
            DocField::List(xs) => xs.clone(),
            DocField::Int(_) => {
                return Err(err(
                    self.cfg,
                    name,
                    "expected a list, a field or a template",
                ))
            }
            DocField::Text(s) => match self.field_value(doc, s) {
                Some(Value::Array(xs)) => xs,
                Some(other) => {
                    return Err(err(
                        self.cfg,
                        name,
                        format!("{at}: field `{s}` is {}, not a list", str_of(&other)),
                    ))
                }
                None => {
                    let r = self.render(name, s, doc, at)?;
                    match literal_eval(&r) {
                        Ok(Value::Array(xs)) => xs,
                        Ok(_) => {
                            return Err(err(
                                self.cfg,
                                name,
                                format!("{at}: rendered `{r}`, not a list"),
                            ))
                        }
                        Err(e) => {
                            return Err(err(self.cfg, name, format!("{at}: rendered `{r}`: {e}")))
                        }
                    }
                }
            },
        };
        Ok(list.iter().map(str_of).collect())
    }

    fn description(&self, doc: &Value, at: &str) -> Result<String> {
        let d = &self.cfg.description;
        if d.is_empty() {
            return Ok(String::new());
        }
        if let Some(v) = doc.get(d) {
            return Ok(str_of(v));
        }
        if is_template(d) {
            self.render("description", d, doc, at)
        } else {
            Ok(d.clone())
        }
    }

    fn doc(&self, raw: Value, at: &str, fewshot: bool) -> Result<Doc> {
        let c = &self.cfg;
        let (text_f, target_f, choice_f) = if fewshot {
            (
                &c.fewshot.doc_to_text,
                &c.fewshot.doc_to_target,
                &c.fewshot.doc_to_choice,
            )
        } else {
            (&c.doc_to_text, &c.doc_to_target, &c.doc_to_choice)
        };
        let text = match text_f {
            Some(f) => Some(self.text_or_target("doc_to_text", f, &raw, at, false)?),
            None => None,
        };
        let target = match target_f {
            Some(f) => self.text_or_target("doc_to_target", f, &raw, at, true)?,
            None => return Err(err(c, "doc_to_target", "missing")),
        };
        let choices = match choice_f {
            Some(f) => Some(self.choices("doc_to_choice", f, &raw, at)?),
            None => None,
        };
        let description = if fewshot {
            String::new()
        } else {
            self.description(&raw, at)?
        };
        let mc_choices = if !fewshot && c.filters.iter().any(|f| f.reads_choices()) {
            match raw.get("choices") {
                Some(Value::Array(xs)) if xs.iter().all(Value::is_string) => xs
                    .iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect(),
                _ => {
                    return Err(err(
                        c,
                        "filter_list",
                        format!(
                            "{at}: `multi_choice_regex` reads the row's `choices`, \
                             which is not a list of strings here"
                        ),
                    ))
                }
            }
        } else {
            Vec::new()
        };
        let gen_prefix = match if fewshot {
            &c.fewshot.gen_prefix
        } else {
            &c.gen_prefix
        } {
            // lm-eval's `resolve_field`: a field of the row, else a template; an empty prefix is
            // none (lm-eval tests it for truth).
            Some(g) => Some(match raw.get(g) {
                Some(v) => str_of(v),
                None if is_template(g) => self.render("gen_prefix", g, &raw, at)?,
                None => g.clone(),
            })
            .filter(|g| !g.is_empty()),
            None => None,
        };
        Ok(Doc {
            raw,
            text,
            target,
            choices,
            description,
            mc_choices,
            gen_prefix,
        })
    }
}

fn rows_at(rows: &SplitRows) -> Vec<(String, Value)> {
    rows.iter()
        .map(|(f, line, v)| (format!("{}:{line}", f.display()), v.clone()))
        .collect()
}

impl YamlTask {
    /// Loads the task's documents (and its few-shot pool when `load.fewshot`).
    pub fn load(cfg: TaskConfig, load: &Load) -> Result<YamlTask> {
        let eval_split = cfg
            .eval_split()
            .ok_or_else(|| {
                err(
                    &cfg,
                    "test_split",
                    "the task has neither a test_split nor a validation_split",
                )
            })?
            .to_string();
        let mut records = Vec::new();
        let read = |split: &str,
                    records: &mut Vec<k2_archive::results_file::DatasetRecord>|
         -> Result<Vec<(String, Value)>> {
            let rows = split_rows(&cfg, load, split)?;
            records.push(rows.record.clone());
            Ok(rows_at(&rows))
        };
        let eval_rows = read(&eval_split, &mut records)?;
        if eval_rows.is_empty() {
            return Err(err(
                &cfg,
                "test_split",
                format!("split `{eval_split}` has no documents"),
            ));
        }
        let features: BTreeSet<String> = match &eval_rows[0].1 {
            Value::Object(m) => m.keys().cloned().collect(),
            _ => BTreeSet::new(),
        };
        let r = Renderer {
            cfg: &cfg,
            t: Templates::new(),
            features,
        };
        let docs = eval_rows
            .into_iter()
            .map(|(at, v)| r.doc(v, &at, false))
            .collect::<Result<Vec<_>>>()?;
        let pool = if load.fewshot {
            let raw: Vec<(String, Value)> = if let Some(split) = &cfg.fewshot.split {
                read(split, &mut records)?
            } else if let Some(samples) = &cfg.fewshot.samples {
                samples
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        (
                            format!("{}: fewshot_config.samples[{i}]", cfg.path.display()),
                            v.clone(),
                        )
                    })
                    .collect()
            } else {
                match cfg.default_fewshot_split() {
                    Some(s) if s == eval_split => docs
                        .iter()
                        .map(|d| (String::new(), d.raw.clone()))
                        .collect(),
                    Some(s) => read(s, &mut records)?,
                    None => Vec::new(),
                }
            };
            raw.into_iter()
                .map(|(at, v)| r.doc(v, &at, true))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let multiple_input =
            cfg.doc_to_choice.is_some() && matches!(docs[0].text, Some(Rendered::Int(_)));
        let multiple_target = matches!(docs[0].target, Rendered::List(_));
        let exclude_eval_doc = cfg.fewshot.split == cfg.test_split;
        let fingerprint = format!("yaml:{}|{}", cfg.merged_sha256, fingerprint_of(&records));
        let task = YamlTask {
            cfg,
            docs,
            pool,
            multiple_input,
            multiple_target,
            exclude_eval_doc,
            fewshot_cache: FewshotCache::new(),
            datasets: records,
            fingerprint,
        };
        task.check_shapes()?;
        Ok(task)
    }

    pub fn config(&self) -> &TaskConfig {
        &self.cfg
    }

    /// The task's default shot count (`num_fewshot`, else 0).
    pub fn num_fewshot(&self) -> usize {
        self.cfg.num_fewshot.unwrap_or(0)
    }

    /// Every document can be turned into requests: what lm-eval would fail on mid-run is an
    /// error here, before anything is scored.
    fn check_shapes(&self) -> Result<()> {
        let c = &self.cfg;
        for (i, d) in self.docs.iter().enumerate() {
            let at = format!("document {i}");
            match (c.output_type, &d.text) {
                (OutputType::LoglikelihoodRolling, _) => {}
                (OutputType::MultipleChoice, Some(Rendered::Int(k))) if self.multiple_input => {
                    let n = d.choices.as_ref().map_or(0, Vec::len);
                    if *k < 0 || *k as usize >= n {
                        return Err(err(
                            c,
                            "doc_to_text",
                            format!("{at}: index {k} outside its {n} choices"),
                        ));
                    }
                }
                (_, Some(Rendered::Str(_))) => {}
                (_, other) => {
                    return Err(err(
                        c,
                        "doc_to_text",
                        format!("{at}: expected text, got {other:?}"),
                    ))
                }
            }
            match (c.output_type, &d.target) {
                (
                    OutputType::Loglikelihood | OutputType::LoglikelihoodRolling,
                    Rendered::Str(_),
                ) => {}
                (OutputType::Loglikelihood | OutputType::LoglikelihoodRolling, other) => {
                    return Err(err(
                        c,
                        "doc_to_target",
                        format!("{at}: expected text, got {other:?}"),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Indices into the pool of document `doc`'s few-shot examples (lm-eval's samplers, one
    /// `random.Random(1234)` stream over the documents in order for the default sampler).
    fn fewshot_indices(&self, doc: usize, shots: usize) -> Vec<usize> {
        if shots == 0 || self.pool.is_empty() {
            return Vec::new();
        }
        let same = |d: usize, p: usize| self.pool[p].raw == self.docs[d].raw;
        match self.cfg.fewshot.sampler {
            Sampler::FirstN => (0..self.pool.len())
                .filter(|&p| !(self.exclude_eval_doc && same(doc, p)))
                .take(shots)
                .collect(),
            Sampler::Default => {
                let table = self.fewshot_cache.get(shots, || {
                    let n = self.pool.len();
                    let mut rnd = PyRandom::from_u128(DEFAULT_FEWSHOT_SEED as u128);
                    (0..self.docs.len())
                        .map(|d| {
                            if !self.exclude_eval_doc {
                                return rnd.sample_indices(n, shots.min(n));
                            }
                            let draw = rnd.sample_indices(n, (shots + 1).min(n));
                            let res: Vec<usize> = draw
                                .into_iter()
                                .filter(|&p| !same(d, p))
                                .take(shots)
                                .collect();
                            if res.len() >= shots {
                                return res;
                            }
                            let rest: Vec<usize> = (0..n).filter(|&p| !same(d, p)).collect();
                            let k = shots.min(rest.len());
                            rnd.sample_indices(rest.len(), k)
                                .into_iter()
                                .map(|i| rest[i])
                                .collect()
                        })
                        .collect()
                });
                table[doc].clone()
            }
        }
    }

    /// The prompt before the document's own text: description and few-shot turns.
    fn prefix(&self, doc: usize, shots: usize) -> String {
        let c = &self.cfg;
        let mut s = self.docs[doc].description.clone();
        for p in self.fewshot_indices(doc, shots) {
            let fs = &self.pool[p];
            let c_list = fs.choices.as_ref();
            let q = match (&fs.text, self.multiple_input, c_list) {
                (Some(Rendered::Int(k)), true, Some(cs)) => {
                    cs.get(*k as usize).cloned().unwrap_or_default()
                }
                (Some(Rendered::Str(q)), _, _) => q.clone(),
                (Some(other), _, _) => str_of(&rendered_json(other)),
                (None, _, _) => String::new(),
            };
            let has_answer = match &fs.target {
                Rendered::Str(a) => !a.is_empty(),
                _ => true,
            };
            s.push_str(&q);
            // lm-eval 0.4.13's `build_qa_turn`: with a generation prefix, the target delimiter
            // only where neither side has whitespace at the join, and the answer after the
            // prefix (space-delimited likewise); without an answer, the prefix alone.
            if let Some(gp) = fs.gen_prefix.as_deref() {
                if requires_delimiter(&q, gp) {
                    s.push_str(&c.fewshot.target_delimiter);
                }
                if !has_answer {
                    s.push_str(gp);
                    continue;
                }
            }
            if has_answer {
                let answer = match (&fs.target, c_list) {
                    (Rendered::Int(k), Some(cs)) if !self.multiple_input => {
                        cs.get(*k as usize).cloned().unwrap_or_default()
                    }
                    (Rendered::List(xs), _) => xs.first().map(str_of).unwrap_or_default(),
                    (Rendered::Str(a), _) => a.clone(),
                    (Rendered::Int(k), _) => k.to_string(),
                };
                match fs.gen_prefix.as_deref() {
                    Some(gp) => s.push_str(&maybe_delimit(gp, &answer)),
                    None => {
                        s.push_str(&c.fewshot.target_delimiter);
                        s.push_str(&answer);
                    }
                }
                s.push_str(&c.fewshot.fewshot_delimiter);
            }
        }
        s
    }

    fn text(&self, doc: usize) -> String {
        match &self.docs[doc].text {
            Some(Rendered::Str(s)) => s.clone(),
            Some(other) => str_of(&rendered_json(other)),
            None => String::new(),
        }
    }

    fn target_str(&self, doc: usize) -> String {
        str_of(&rendered_json(&self.docs[doc].target))
    }

    fn choices(&self, doc: usize) -> &[String] {
        self.docs[doc].choices.as_deref().unwrap_or(&[])
    }

    fn has_metric(&self, name: &str) -> bool {
        self.cfg.metrics.iter().any(|m| m.name == name)
    }

    /// The gold choice index (or indices) of a multiple-choice document; -100 where lm-eval
    /// marks a label outside the choices.
    fn gold(&self, doc: usize) -> Vec<i64> {
        let d = &self.docs[doc];
        let n = self.choices(doc).len() as i64;
        let g = if self.multiple_input {
            d.text.clone()
        } else {
            Some(d.target.clone())
        };
        let fit = |i: i64| if i < n { i } else { -100 };
        match g {
            Some(Rendered::Int(i)) => vec![fit(i)],
            Some(Rendered::Str(s)) => vec![self
                .choices(doc)
                .iter()
                .position(|c| *c == s)
                .map_or(-100, |i| i as i64)],
            Some(Rendered::List(xs)) => {
                xs.iter().map(|x| fit(x.as_i64().unwrap_or(-100))).collect()
            }
            None => vec![-100],
        }
    }
}

fn rendered_json(r: &Rendered) -> Value {
    match r {
        Rendered::Int(i) => Value::from(*i),
        Rendered::Str(s) => Value::String(s.clone()),
        Rendered::List(xs) => Value::Array(xs.clone()),
    }
}

/// The rows of one split of the task's dataset.
fn split_rows(cfg: &TaskConfig, load: &Load, split: &str) -> Result<SplitRows> {
    for k in cfg.dataset_kwargs.keys() {
        if !matches!(k.as_str(), "data_files" | "trust_remote_code") {
            return Err(err(
                cfg,
                &format!("dataset_kwargs.{k}"),
                "k2 reads `data_files` only",
            ));
        }
    }
    match cfg.dataset_path.as_str() {
        "json" | "csv" | "parquet" => {
            let files = data_files_for(cfg, split)?;
            load.data.data_files(load.task, split, &files)
        }
        "text" | "arrow" | "pandas" | "imagefolder" | "audiofolder" => Err(err(
            cfg,
            "dataset_path",
            format!(
                "the `{}` builder is not one k2 reads (json, csv, parquet, or a Hub dataset)",
                cfg.dataset_path
            ),
        )),
        repo => load
            .data
            .split_of(load.task, repo, cfg.dataset_name.as_deref(), split),
    }
}

fn data_files_for(cfg: &TaskConfig, split: &str) -> Result<Vec<String>> {
    let files = cfg.dataset_kwargs.get("data_files").ok_or_else(|| {
        err(
            cfg,
            "dataset_kwargs.data_files",
            format!(
                "missing: `dataset_path: {}` needs data files",
                cfg.dataset_path
            ),
        )
    })?;
    let list = |v: &Value| -> Option<Vec<String>> {
        match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(xs) => xs.iter().map(|x| x.as_str().map(str::to_string)).collect(),
            _ => None,
        }
    };
    match files {
        Value::Object(m) => m.get(split).and_then(list).ok_or_else(|| {
            err(
                cfg,
                "dataset_kwargs.data_files",
                format!("no files for split `{split}`"),
            )
        }),
        // A bare file or list is the `train` split, as in `datasets`.
        other if split == "train" => list(other).ok_or_else(|| {
            err(
                cfg,
                "dataset_kwargs.data_files",
                "expected a file, a list or a mapping",
            )
        }),
        _ => Err(err(
            cfg,
            "dataset_kwargs.data_files",
            format!("no files for split `{split}` (a bare list is the `train` split)"),
        )),
    }
}

impl Task for YamlTask {
    fn name(&self) -> &str {
        &self.cfg.task
    }

    fn version(&self) -> f64 {
        self.cfg.version.unwrap_or(0.0)
    }

    fn num_docs(&self) -> usize {
        self.docs.len()
    }

    fn default_shots(&self) -> usize {
        self.num_fewshot()
    }

    fn max_shots(&self) -> Option<usize> {
        let n = self.pool.len();
        Some(
            if self.exclude_eval_doc && self.cfg.fewshot.sampler == Sampler::Default {
                n.saturating_sub(1)
            } else {
                n
            },
        )
    }

    fn requests(&self, doc: usize, shots: usize) -> Vec<Request> {
        let c = &self.cfg;
        let prefix = self.prefix(doc, shots);
        let ll = |context: String, continuation: String| Request::Loglikelihood {
            context,
            continuation,
        };
        match c.output_type {
            OutputType::Loglikelihood => vec![ll(prefix + &self.text(doc), self.target_str(doc))],
            OutputType::LoglikelihoodRolling => vec![Request::Rolling {
                text: self.target_str(doc),
            }],
            OutputType::MultipleChoice => {
                let delim = &c.target_delimiter;
                let mut out: Vec<Request> = if self.multiple_input {
                    let cont = format!("{delim}{}", self.target_str(doc));
                    self.choices(doc)
                        .iter()
                        .map(|ch| ll(format!("{prefix}{ch}"), cont.clone()))
                        .collect()
                } else {
                    let ctx = prefix + &self.text(doc);
                    self.choices(doc)
                        .iter()
                        .map(|ch| ll(ctx.clone(), format!("{delim}{ch}")))
                        .collect()
                };
                if self.has_metric("acc_mutual_info") {
                    out.extend(
                        self.choices(doc)
                            .iter()
                            .map(|ch| ll(String::new(), format!("{delim}{ch}"))),
                    );
                }
                out
            }
            OutputType::GenerateUntil => {
                let g = c
                    .generation
                    .as_ref()
                    .expect("generate_until has generation settings");
                let text = self.text(doc);
                let mut context = prefix + &text;
                if let Some(gp) = self.docs[doc].gen_prefix.as_deref() {
                    if requires_delimiter(&text, gp) {
                        context.push_str(&c.target_delimiter);
                    }
                    context.push_str(gp);
                }
                let r = Request::Generate {
                    context,
                    until: g.until.clone(),
                    max_gen_toks: g.max_gen_toks,
                };
                vec![r; c.repeats]
            }
        }
    }

    fn process(&self, doc: usize, responses: &[Response]) -> DocResult {
        let c = &self.cfg;
        let mut r = DocResult::default();
        let put = |r: &mut DocResult, key: &str, value: f64, weight: f64| {
            r.metrics
                .insert(key.to_string(), MetricValue { value, weight });
        };
        match c.output_type {
            OutputType::Loglikelihood => {
                let (ll, greedy) = responses
                    .first()
                    .map_or((f64::NAN, false), |x| (x.ll(), x.is_greedy()));
                for m in &c.metrics {
                    match m.name.as_str() {
                        "perplexity" => put(&mut r, "perplexity,none", ll, 1.0),
                        "acc" => put(&mut r, "acc,none", if greedy { 1.0 } else { 0.0 }, 1.0),
                        _ => {}
                    }
                }
                r.prediction = format!("{ll}");
                r.target = self.target_str(doc);
            }
            OutputType::LoglikelihoodRolling => {
                let ll = responses.first().map_or(f64::NAN, Response::ll);
                let t = self.target_str(doc);
                let words = count_words(&t) as f64;
                let bytes = t.len() as f64;
                for m in &c.metrics {
                    match m.name.as_str() {
                        "word_perplexity" => put(&mut r, "word_perplexity,none", ll, words),
                        "byte_perplexity" => put(&mut r, "byte_perplexity,none", ll, bytes),
                        "bits_per_byte" => put(&mut r, "bits_per_byte,none", ll, bytes),
                        _ => {}
                    }
                }
                r.prediction = format!("{ll}");
            }
            OutputType::MultipleChoice => {
                let choices = self.choices(doc);
                let n = choices.len();
                let all: Vec<f64> = responses.iter().map(Response::ll).collect();
                let lls = &all[..n.min(all.len())];
                let greedy: Vec<bool> = responses.iter().take(n).map(Response::is_greedy).collect();
                let pred = argmax_first(lls) as i64;
                let norm: Vec<f64> = lls
                    .iter()
                    .zip(choices)
                    .map(|(l, ch)| l / ch.chars().count() as f64)
                    .collect();
                let pred_norm = argmax_first(&norm) as i64;
                let bytes: Vec<f64> = lls
                    .iter()
                    .zip(choices)
                    .map(|(l, ch)| l / ch.len() as f64)
                    .collect();
                let pred_bytes = argmax_first(&bytes) as i64;
                let gold = self.gold(doc);
                let hit = |p: i64| {
                    let ok = if self.multiple_target {
                        gold.contains(&p)
                    } else {
                        gold[0] == p
                    };
                    if ok {
                        1.0
                    } else {
                        0.0
                    }
                };
                let g0 = gold[0];
                for m in &c.metrics {
                    let key = format!("{},none", m.name);
                    match m.name.as_str() {
                        "acc" => put(&mut r, &key, hit(pred), 1.0),
                        "acc_norm" => put(&mut r, &key, hit(pred_norm), 1.0),
                        "acc_bytes" => put(&mut r, &key, hit(pred_bytes), 1.0),
                        "exact_match" => {
                            let v = if self.multiple_target {
                                gold.iter().any(|&g| {
                                    g >= 0 && greedy.get(g as usize).copied().unwrap_or(false)
                                })
                            } else {
                                g0 >= 0 && greedy.get(g0 as usize).copied().unwrap_or(false)
                            };
                            put(&mut r, &key, if v { 1.0 } else { 0.0 }, 1.0)
                        }
                        "acc_mutual_info" => {
                            let uncond = &all[n.min(all.len())..];
                            let mi: Vec<f64> = lls.iter().zip(uncond).map(|(a, b)| a - b).collect();
                            put(
                                &mut r,
                                &key,
                                if argmax_first(&mi) as i64 == g0 {
                                    1.0
                                } else {
                                    0.0
                                },
                                1.0,
                            )
                        }
                        "f1" | "mcc" => put(&mut r, &key, g0 as f64, pred as f64),
                        _ => {}
                    }
                }
                r.gold = (g0 >= 0).then_some(g0 as usize);
                r.prediction = choices.get(pred as usize).cloned().unwrap_or_default();
                r.target = if g0 >= 0 {
                    choices.get(g0 as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                };
            }
            OutputType::GenerateUntil => {
                let gens: Vec<String> = responses.iter().map(|x| x.text().to_string()).collect();
                let golds: Vec<String> = match (&self.docs[doc].target, &self.docs[doc].choices) {
                    (Rendered::Int(k), Some(cs)) => {
                        vec![cs.get(*k as usize).cloned().unwrap_or_default()]
                    }
                    (Rendered::List(xs), _) if self.multiple_target => {
                        xs.iter().map(str_of).collect()
                    }
                    (t, _) => vec![str_of(&rendered_json(t))],
                };
                for f in &c.filters {
                    let answer = apply(f, &gens, &self.docs[doc].mc_choices).answer();
                    for m in &c.metrics {
                        if m.name == "exact_match" {
                            let hit = golds
                                .iter()
                                .any(|g| exact_match(&answer, g, &m.exact_match) > 0.0);
                            put(
                                &mut r,
                                &format!("exact_match,{}", f.name),
                                if hit { 1.0 } else { 0.0 },
                                1.0,
                            );
                        }
                    }
                    r.filtered.insert(f.name.clone(), answer);
                }
                r.prediction = gens.first().cloned().unwrap_or_default();
                r.target = golds.first().cloned().unwrap_or_default();
            }
        }
        r
    }

    fn metrics(&self) -> Vec<MetricSpec> {
        let c = &self.cfg;
        let filters: Vec<String> = if c.output_type == OutputType::GenerateUntil {
            c.filters.iter().map(|f| f.name.clone()).collect()
        } else {
            vec!["none".into()]
        };
        let mut out = Vec::new();
        for f in &filters {
            for m in &c.metrics {
                out.push(MetricSpec::new(
                    &m.name,
                    f,
                    m.aggregation,
                    m.higher_is_better,
                ));
            }
        }
        out
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn datasets(&self) -> Vec<k2_archive::results_file::DatasetRecord> {
        self.datasets.clone()
    }

    fn chance(&self) -> Option<f64> {
        if self.cfg.output_type != OutputType::MultipleChoice || self.docs.is_empty() {
            return None;
        }
        let s: f64 = self
            .docs
            .iter()
            .map(|d| 1.0 / d.choices.as_ref().map_or(1, Vec::len).max(1) as f64)
            .sum();
        Some(s / self.docs.len() as f64)
    }
}

/// lm-eval's `requires_delimiter`: neither side has whitespace at the join (and `q` is not empty).
fn requires_delimiter(q: &str, gp: &str) -> bool {
    match (q.chars().last(), gp.chars().next()) {
        (Some(a), Some(b)) => !(py_isspace(a) || py_isspace(b)),
        _ => false,
    }
}

/// lm-eval's `maybe_delimit(prefix, suffix, " ")`.
fn maybe_delimit(prefix: &str, suffix: &str) -> String {
    if prefix.is_empty() {
        return suffix.to_string();
    }
    if suffix.is_empty() || !requires_delimiter(prefix, suffix) {
        return format!("{prefix}{suffix}");
    }
    format!("{prefix} {suffix}")
}
