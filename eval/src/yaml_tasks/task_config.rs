//! One task's merged YAML as a typed config (lm-eval's `TaskConfig` and `FewshotConfig`), with
//! every field checked before any data is read: a field lm-eval does not know or a value of the
//! wrong shape is an error naming the file and the field; what lm-eval runs but k2 cannot run the
//! same way (a Python hook, a template construct, a metric or filter k2 lacks, sampling) is a
//! [`Refusal`] that names it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::py_regex::PyRegex;
use super::template;
use super::yaml_file::{function_of, hooks};
use crate::error::EvalError;
use crate::task::Aggregation;

/// Why k2 does not run a task lm-eval runs: a reason (what `--list-tasks` groups by) and the
/// detail (the field, hook, construct).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub detail: String,
}

impl Refusal {
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        Refusal {
            reason: reason.into(),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.detail)
    }
}

/// What stops a config from becoming a task.
#[derive(Debug)]
pub enum Problem {
    /// Bad input: the YAML is wrong.
    Invalid(EvalError),
    /// Valid for lm-eval, but k2 does not run it.
    Refused(Refusal),
}

impl From<EvalError> for Problem {
    fn from(e: EvalError) -> Self {
        Problem::Invalid(e)
    }
}

/// A `doc_to_text` / `doc_to_target` / `doc_to_choice` value.
#[derive(Debug, Clone, PartialEq)]
pub enum DocField {
    Int(i64),
    /// A field name of the document, or a Jinja template.
    Text(String),
    /// A list as is (a `doc_to_choice` list of choices, a `doc_to_target` list).
    List(Vec<Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    Loglikelihood,
    LoglikelihoodRolling,
    MultipleChoice,
    GenerateUntil,
}

impl OutputType {
    pub fn name(self) -> &'static str {
        match self {
            OutputType::Loglikelihood => "loglikelihood",
            OutputType::LoglikelihoodRolling => "loglikelihood_rolling",
            OutputType::MultipleChoice => "multiple_choice",
            OutputType::GenerateUntil => "generate_until",
        }
    }
}

/// `exact_match`'s options (lm-eval's port of HF evaluate's `exact_match`).
#[derive(Debug, Clone, Default)]
pub struct ExactMatchOptions {
    pub regexes_to_ignore: Vec<PyRegex>,
    pub ignore_case: bool,
    pub ignore_punctuation: bool,
    pub ignore_numbers: bool,
}

#[derive(Debug, Clone)]
pub struct MetricConfig {
    pub name: String,
    pub aggregation: Aggregation,
    pub higher_is_better: bool,
    pub exact_match: ExactMatchOptions,
}

/// One step of a filter pipeline (lm-eval's registered filters k2 implements).
#[derive(Debug, Clone)]
pub enum FilterStep {
    Regex {
        re: PyRegex,
        group_select: i64,
        fallback: String,
    },
    TakeFirst,
    TakeFirstK(usize),
    Lowercase,
    Uppercase,
    RemoveWhitespace,
    MajorityVote,
    /// lm-eval's `multi_choice_regex`: the regex, else the document's `choices` texts (after the
    /// ignore options), else `: A`-style letters, each mapped to `(A)`.
    MultiChoiceRegex {
        re: PyRegex,
        group_select: i64,
        fallback: String,
        ignore_case: bool,
        ignore_punctuation: bool,
        regexes_to_ignore: Vec<PyRegex>,
    },
}

impl FilterConfig {
    /// Whether the pipeline reads the document's `choices` field (`multi_choice_regex`).
    pub fn reads_choices(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, FilterStep::MultiChoiceRegex { .. }))
    }
}

#[derive(Debug, Clone)]
pub struct FilterConfig {
    pub name: String,
    pub steps: Vec<FilterStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    /// `random.Random(seed).sample` per document, in document order.
    Default,
    FirstN,
}

/// `fewshot_config`, with the task's fields as its defaults.
#[derive(Debug, Clone)]
pub struct FewshotConfig {
    pub sampler: Sampler,
    pub split: Option<String>,
    pub samples: Option<Vec<Value>>,
    pub doc_to_text: Option<DocField>,
    pub doc_to_choice: Option<DocField>,
    pub doc_to_target: Option<DocField>,
    pub target_delimiter: String,
    pub fewshot_delimiter: String,
    /// `gen_prefix` of the few-shot examples (the task's unless `fewshot_config` sets it).
    pub gen_prefix: Option<String>,
}

/// `generation_kwargs` k2 honours: greedy decoding only.
#[derive(Debug, Clone)]
pub struct Generation {
    pub until: Vec<String>,
    pub max_gen_toks: usize,
}

/// A task's config, checked.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    pub task: String,
    pub path: PathBuf,
    pub tags: Vec<String>,
    pub dataset_path: String,
    pub dataset_name: Option<String>,
    pub dataset_kwargs: Map<String, Value>,
    pub training_split: Option<String>,
    pub validation_split: Option<String>,
    pub test_split: Option<String>,
    pub doc_to_text: Option<DocField>,
    pub doc_to_target: Option<DocField>,
    pub doc_to_choice: Option<DocField>,
    pub description: String,
    pub target_delimiter: String,
    pub fewshot_delimiter: String,
    pub fewshot: FewshotConfig,
    pub num_fewshot: Option<usize>,
    pub output_type: OutputType,
    pub metrics: Vec<MetricConfig>,
    pub generation: Option<Generation>,
    pub repeats: usize,
    pub filters: Vec<FilterConfig>,
    pub version: Option<f64>,
    /// `gen_prefix`: a field name or a template that opens the answer (generate_until only).
    pub gen_prefix: Option<String>,
    /// sha256 of the merged config (the task's file with everything it includes), so a change to
    /// an included file changes the task's fingerprint too.
    pub merged_sha256: String,
}

/// The fields of lm-eval 0.4's `TaskConfig`.
const KNOWN: &[&str] = &[
    "task",
    "task_alias",
    "tag",
    "custom_dataset",
    "dataset_path",
    "dataset_name",
    "dataset_kwargs",
    "training_split",
    "validation_split",
    "test_split",
    "fewshot_split",
    "process_docs",
    "doc_to_text",
    "doc_to_target",
    "doc_to_image",
    "doc_to_audio",
    "unsafe_code",
    "doc_to_choice",
    "process_results",
    "use_prompt",
    "description",
    "target_delimiter",
    "fewshot_delimiter",
    "fewshot_config",
    "num_fewshot",
    "metric_list",
    "output_type",
    "generation_kwargs",
    "repeats",
    "filter_list",
    "should_decontaminate",
    "doc_to_decontamination_query",
    "gen_prefix",
    "metadata",
];

struct Ctx<'a> {
    path: &'a Path,
}

impl Ctx<'_> {
    fn invalid(&self, field: &str, message: impl Into<String>) -> Problem {
        Problem::Invalid(EvalError::TaskYaml {
            path: self.path.to_path_buf(),
            field: Some(field.to_string()),
            message: message.into(),
        })
    }

    fn opt_str(&self, m: &Map<String, Value>, field: &str) -> Result<Option<String>, Problem> {
        match m.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // YAML reads `dataset_name: 2019` as a number; lm-eval would pass it on as is.
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.invalid(field, "expected a string")),
        }
    }

    fn string_or(
        &self,
        m: &Map<String, Value>,
        field: &str,
        default: &str,
    ) -> Result<String, Problem> {
        Ok(self
            .opt_str(m, field)?
            .unwrap_or_else(|| default.to_string()))
    }

    fn doc_field(&self, m: &Map<String, Value>, field: &str) -> Result<Option<DocField>, Problem> {
        let v = match m.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v,
        };
        let f =
            match v {
                Value::Number(n) => DocField::Int(n.as_i64().ok_or_else(|| {
                    self.invalid(field, "expected an integer, a string or a list")
                })?),
                Value::String(s) => {
                    if template::is_template(s) {
                        template::check(s).map_err(|c| {
                            Problem::Refused(Refusal::new(
                                "a template construct k2 does not render as Jinja2 does",
                                format!("{field}: {c}"),
                            ))
                        })?;
                    }
                    DocField::Text(s.clone())
                }
                Value::Array(xs) => DocField::List(xs.clone()),
                // lm-eval's `doc_to_choice` dict: its values, in order.
                Value::Object(o) if field.ends_with("doc_to_choice") => {
                    DocField::List(o.values().cloned().collect())
                }
                _ => return Err(self.invalid(field, "expected an integer, a string or a list")),
            };
        Ok(Some(f))
    }
}

/// A template k2 renders as Jinja2 does, or a refusal naming the construct.
fn check_template(s: &str, field: &str) -> std::result::Result<(), Problem> {
    if template::is_template(s) {
        template::check(s).map_err(|c| {
            refused(
                "a template construct k2 does not render as Jinja2 does",
                format!("{field}: {c}"),
            )
        })?;
    }
    Ok(())
}

fn refused(reason: &str, detail: impl Into<String>) -> Problem {
    Problem::Refused(Refusal::new(reason, detail))
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// The aggregation and direction lm-eval registers for a metric k2 implements.
fn metric_defaults(name: &str) -> Option<(Aggregation, bool)> {
    Some(match name {
        "acc" | "acc_norm" | "acc_bytes" | "acc_mutual_info" | "exact_match" => {
            (Aggregation::Mean, true)
        }
        "perplexity" => (Aggregation::Perplexity, false),
        "word_perplexity" | "byte_perplexity" => (Aggregation::WeightedPerplexity, false),
        "bits_per_byte" => (Aggregation::BitsPerByte, false),
        "f1" => (Aggregation::F1, true),
        "mcc" => (Aggregation::Mcc, true),
        _ => return None,
    })
}

/// The metrics an output type can compute without a `process_results` hook.
fn metric_fits(name: &str, out: OutputType) -> bool {
    use OutputType::*;
    match name {
        "acc" => matches!(out, Loglikelihood | MultipleChoice),
        "perplexity" => out == Loglikelihood,
        "acc_norm" | "acc_bytes" | "acc_mutual_info" | "f1" | "mcc" => out == MultipleChoice,
        "exact_match" => matches!(out, GenerateUntil | MultipleChoice),
        "word_perplexity" | "byte_perplexity" | "bits_per_byte" => out == LoglikelihoodRolling,
        _ => false,
    }
}

fn parse_agg(name: &str) -> Option<Aggregation> {
    Some(match name {
        "mean" => Aggregation::Mean,
        "perplexity" => Aggregation::Perplexity,
        "weighted_perplexity" => Aggregation::WeightedPerplexity,
        "bits_per_byte" => Aggregation::BitsPerByte,
        "f1" => Aggregation::F1,
        "matthews_corrcoef" => Aggregation::Mcc,
        _ => return None,
    })
}

impl TaskConfig {
    /// Checks a merged task config read from `path`.
    pub fn from_map(path: &Path, m: &Map<String, Value>) -> Result<TaskConfig, Problem> {
        let cx = Ctx { path };
        if m.contains_key("class") {
            return Err(refused("a Python task class", "class"));
        }
        // One hook k2 provides natively: `weighted_f1_score` as a metric's aggregation
        // (scikit-learn's weighted F1; the survey in bench/yaml_tasks found it alone blocks the
        // most tasks, and every copy re-exports lm_eval.utils.weighted_f1_score).
        let native = |field: &str, hook: &str| {
            field == "metric_list.aggregation"
                && hook.rsplit('.').next() == Some("weighted_f1_score")
        };
        if let Some((field, hook)) = hooks(m).into_iter().find(|(f, h)| !native(f, h)) {
            return Err(refused(
                "a Python hook (!function)",
                format!("{field}: !function {hook}"),
            ));
        }
        for k in m.keys() {
            if !KNOWN.contains(&k.as_str()) && k != "group" {
                return Err(cx.invalid(k, "not a field of an lm-eval task"));
            }
        }
        let task = cx
            .opt_str(m, "task")?
            .ok_or_else(|| cx.invalid("task", "missing: every task YAML names its task"))?;
        for (field, what) in [
            ("doc_to_image", "images"),
            ("doc_to_audio", "audio"),
            ("use_prompt", "promptsource prompts"),
            ("custom_dataset", "a custom dataset"),
            ("process_results", "process_results"),
        ] {
            if m.get(field)
                .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
            {
                return Err(refused(&format!("{what} (`{field}`)"), field));
            }
        }
        if m.get("unsafe_code").and_then(as_bool) == Some(true) {
            return Err(refused("code execution (`unsafe_code`)", "unsafe_code"));
        }
        let output_type = match cx.opt_str(m, "output_type")?.as_deref() {
            None | Some("generate_until") => OutputType::GenerateUntil,
            Some("loglikelihood") => OutputType::Loglikelihood,
            Some("loglikelihood_rolling") => OutputType::LoglikelihoodRolling,
            Some("multiple_choice") => OutputType::MultipleChoice,
            Some(other) => {
                return Err(cx.invalid(
                    "output_type",
                    format!("unknown output type `{other}` (loglikelihood, loglikelihood_rolling, multiple_choice, generate_until)"),
                ))
            }
        };
        let dataset_path = cx
            .opt_str(m, "dataset_path")?
            .ok_or_else(|| cx.invalid("dataset_path", "missing: the task names no dataset"))?;
        let dataset_kwargs = match m.get("dataset_kwargs") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => return Err(cx.invalid("dataset_kwargs", "expected a mapping")),
        };
        let target_delimiter = cx.string_or(m, "target_delimiter", " ")?;
        let fewshot_delimiter = cx.string_or(m, "fewshot_delimiter", "\n\n")?;
        let doc_to_text = cx.doc_field(m, "doc_to_text")?;
        let doc_to_target = cx.doc_field(m, "doc_to_target")?;
        let doc_to_choice = cx.doc_field(m, "doc_to_choice")?;
        let description = match m.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => {
                check_template(s, "description")?;
                s.clone()
            }
            Some(_) => return Err(cx.invalid("description", "expected a string")),
        };
        // `gen_prefix`: a field name or a template, opening the model's answer (generation only:
        // the multiple-choice and loglikelihood uses move the target delimiter, not supported).
        let gen_prefix = match m.get("gen_prefix") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                if output_type != OutputType::GenerateUntil {
                    return Err(refused(
                        &format!(
                            "a generation prefix (`gen_prefix`) on a {} task",
                            output_type.name()
                        ),
                        "gen_prefix",
                    ));
                }
                check_template(s, "gen_prefix")?;
                Some(s.clone())
            }
            Some(_) => return Err(cx.invalid("gen_prefix", "expected a string")),
        };
        let fewshot_split = cx.opt_str(m, "fewshot_split")?;
        let fewshot = fewshot_config(
            &cx,
            m,
            FewshotConfig {
                sampler: Sampler::Default,
                split: fewshot_split,
                samples: None,
                doc_to_text: doc_to_text.clone(),
                doc_to_choice: doc_to_choice.clone(),
                doc_to_target: doc_to_target.clone(),
                target_delimiter: target_delimiter.clone(),
                fewshot_delimiter: fewshot_delimiter.clone(),
                gen_prefix: gen_prefix.clone(),
            },
        )?;
        let num_fewshot = match m.get("num_fewshot") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| cx.invalid("num_fewshot", "expected a non-negative integer"))?
                    as usize,
            ),
        };
        let metrics = metric_list(&cx, m, output_type)?;
        let generation = generation(&cx, m, output_type, &fewshot_delimiter)?;
        let repeats = match m.get("repeats") {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_u64()
                .filter(|r| *r >= 1)
                .ok_or_else(|| cx.invalid("repeats", "expected a positive integer"))?
                as usize,
        };
        let filters = filter_list(&cx, m, output_type)?;
        let version = match m.get("metadata") {
            Some(Value::Object(md)) => md.get("version").and_then(Value::as_f64),
            _ => None,
        };
        let tags = match m.get("tag") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(xs)) => xs
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(_) => return Err(cx.invalid("tag", "expected a name or a list of names")),
        };
        if output_type == OutputType::MultipleChoice && doc_to_choice.is_none() {
            return Err(cx.invalid(
                "doc_to_choice",
                "missing: a multiple_choice task needs its choices",
            ));
        }
        if doc_to_target.is_none() {
            return Err(cx.invalid("doc_to_target", "missing"));
        }
        if output_type != OutputType::LoglikelihoodRolling && doc_to_text.is_none() {
            return Err(cx.invalid("doc_to_text", "missing"));
        }
        Ok(TaskConfig {
            task,
            path: path.to_path_buf(),
            tags,
            dataset_path,
            dataset_name: cx.opt_str(m, "dataset_name")?,
            dataset_kwargs,
            training_split: cx.opt_str(m, "training_split")?,
            validation_split: cx.opt_str(m, "validation_split")?,
            test_split: cx.opt_str(m, "test_split")?,
            doc_to_text,
            doc_to_target,
            doc_to_choice,
            description,
            target_delimiter,
            fewshot_delimiter,
            fewshot,
            num_fewshot,
            output_type,
            metrics,
            generation,
            repeats,
            filters,
            version,
            gen_prefix,
            merged_sha256: k2_archive::sha256_bytes(
                Value::Object(m.clone()).to_string().as_bytes(),
            ),
        })
    }

    /// The split documents are evaluated on (lm-eval: test, else validation).
    pub fn eval_split(&self) -> Option<&str> {
        self.test_split
            .as_deref()
            .or(self.validation_split.as_deref())
    }

    /// The split few-shot examples come from when no `fewshot_split` or `samples` is set
    /// (lm-eval's `Task.fewshot_docs`: training, else validation, else test).
    pub fn default_fewshot_split(&self) -> Option<&str> {
        self.training_split
            .as_deref()
            .or(self.validation_split.as_deref())
            .or(self.test_split.as_deref())
    }
}

fn fewshot_config(
    cx: &Ctx,
    m: &Map<String, Value>,
    mut f: FewshotConfig,
) -> Result<FewshotConfig, Problem> {
    let fc = match m.get("fewshot_config") {
        None | Some(Value::Null) => return Ok(f),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(cx.invalid("fewshot_config", "expected a mapping")),
    };
    for (k, v) in fc {
        let field = format!("fewshot_config.{k}");
        match k.as_str() {
            "sampler" => {
                f.sampler = match v.as_str() {
                    Some("default") => Sampler::Default,
                    Some("first_n") => Sampler::FirstN,
                    Some(other) => {
                        return Err(cx.invalid(
                            &field,
                            format!("unknown sampler `{other}` (default, first_n)"),
                        ))
                    }
                    None => return Err(cx.invalid(&field, "expected a sampler name")),
                }
            }
            "split" => f.split = cx.opt_str(fc, k)?,
            "samples" => match v {
                Value::Array(xs) => f.samples = Some(xs.clone()),
                Value::Null => {}
                _ => return Err(cx.invalid(&field, "expected a list of documents")),
            },
            "doc_to_text" | "doc_to_choice" | "doc_to_target" => {
                let d = cx.doc_field(fc, k)?;
                match k.as_str() {
                    "doc_to_text" => f.doc_to_text = d,
                    "doc_to_choice" => f.doc_to_choice = d,
                    _ => f.doc_to_target = d,
                }
            }
            "target_delimiter" => f.target_delimiter = cx.opt_str(fc, k)?.unwrap_or_default(),
            "fewshot_delimiter" => f.fewshot_delimiter = cx.opt_str(fc, k)?.unwrap_or_default(),
            "gen_prefix" => {
                f.gen_prefix = cx.opt_str(fc, k)?;
                if let Some(g) = &f.gen_prefix {
                    check_template(g, &field)?;
                }
            }
            "fewshot_indices" | "process_docs" if v.is_null() => {}
            "fewshot_indices" => {
                return Err(refused(
                    "few-shot indices (`fewshot_config.fewshot_indices`)",
                    field,
                ))
            }
            _ => return Err(cx.invalid(&field, "not a field of lm-eval's fewshot_config")),
        }
    }
    Ok(f)
}

fn metric_list(
    cx: &Ctx,
    m: &Map<String, Value>,
    out: OutputType,
) -> Result<Vec<MetricConfig>, Problem> {
    let list = match m.get("metric_list") {
        None | Some(Value::Null) => {
            let names: &[&str] = match out {
                OutputType::Loglikelihood => &["perplexity", "acc"],
                OutputType::LoglikelihoodRolling => {
                    &["word_perplexity", "byte_perplexity", "bits_per_byte"]
                }
                OutputType::MultipleChoice => &["acc", "acc_norm"],
                OutputType::GenerateUntil => &["exact_match"],
            };
            return Ok(names
                .iter()
                .map(|n| {
                    let (aggregation, higher_is_better) =
                        metric_defaults(n).expect("defaults known");
                    MetricConfig {
                        name: n.to_string(),
                        aggregation,
                        higher_is_better,
                        exact_match: ExactMatchOptions::default(),
                    }
                })
                .collect());
        }
        Some(Value::Array(xs)) => xs,
        Some(_) => return Err(cx.invalid("metric_list", "expected a list of metrics")),
    };
    let mut metrics = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let field = format!("metric_list[{i}]");
        let Value::Object(e) = entry else {
            return Err(cx.invalid(&field, "expected a mapping with `metric`"));
        };
        let name = match e.get("metric") {
            Some(Value::String(s)) => s.clone(),
            Some(v) if function_of(v).is_some() => unreachable!("hooks were refused first"),
            _ => return Err(cx.invalid(&format!("{field}.metric"), "missing or not a metric name")),
        };
        // Only generate_until calls a metric function; the others compute their metrics in
        // process_results, so `hf_evaluate` changes nothing there.
        if out == OutputType::GenerateUntil && e.get("hf_evaluate").and_then(as_bool) == Some(true)
        {
            return Err(refused(
                "a Hugging Face `evaluate` metric",
                format!("metric `{name}`"),
            ));
        }
        let Some((default_agg, default_hib)) = metric_defaults(&name) else {
            return Err(refused(
                &format!("metric `{name}`"),
                format!("{field}.metric"),
            ));
        };
        if !metric_fits(&name, out) {
            return Err(refused(
                &format!("metric `{name}` on {} (needs process_results)", out.name()),
                format!("{field}.metric"),
            ));
        }
        let aggregation = match e.get("aggregation") {
            None | Some(Value::Null) => default_agg,
            Some(v) if function_of(v).is_some() => Aggregation::WeightedF1,
            Some(Value::String(a)) => parse_agg(a).ok_or_else(|| {
                refused(
                    &format!("aggregation `{a}`"),
                    format!("{field}.aggregation"),
                )
            })?,
            Some(_) => {
                return Err(cx.invalid(
                    &format!("{field}.aggregation"),
                    "expected an aggregation name",
                ))
            }
        };
        let higher_is_better = match e.get("higher_is_better") {
            None | Some(Value::Null) => default_hib,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(cx.invalid(
                    &format!("{field}.higher_is_better"),
                    "expected true or false",
                ))
            }
        };
        let mut em = ExactMatchOptions::default();
        for (k, v) in e {
            let kf = format!("{field}.{k}");
            match k.as_str() {
                "metric" | "aggregation" | "higher_is_better" | "hf_evaluate" => {}
                "ignore_case" | "ignore_punctuation" | "ignore_numbers"
                    if name == "exact_match" =>
                {
                    let b = as_bool(v).ok_or_else(|| cx.invalid(&kf, "expected true or false"))?;
                    match k.as_str() {
                        "ignore_case" => em.ignore_case = b,
                        "ignore_punctuation" => em.ignore_punctuation = b,
                        _ => em.ignore_numbers = b,
                    }
                }
                "regexes_to_ignore" if name == "exact_match" => {
                    let Value::Array(xs) = v else {
                        return Err(cx.invalid(&kf, "expected a list of patterns"));
                    };
                    for x in xs {
                        let p = x
                            .as_str()
                            .ok_or_else(|| cx.invalid(&kf, "expected a list of patterns"))?;
                        em.regexes_to_ignore.push(PyRegex::new(p).map_err(|e| {
                            refused(
                                "a regex k2 cannot match as Python does",
                                format!("{kf}: {e}"),
                            )
                        })?);
                    }
                }
                // lm-eval passes options to a metric function only for generate_until; the
                // loglikelihood metrics are computed in process_results and ignore them.
                _ if out != OutputType::GenerateUntil => {}
                _ => {
                    return Err(refused(
                        &format!("metric option `{k}`"),
                        format!("{kf} on `{name}`"),
                    ))
                }
            }
        }
        metrics.push(MetricConfig {
            name,
            aggregation,
            higher_is_better,
            exact_match: em,
        });
    }
    Ok(metrics)
}

fn generation(
    cx: &Ctx,
    m: &Map<String, Value>,
    out: OutputType,
    fewshot_delimiter: &str,
) -> Result<Option<Generation>, Problem> {
    if out != OutputType::GenerateUntil {
        return Ok(None);
    }
    let g = match m.get("generation_kwargs") {
        None | Some(Value::Null) => {
            return Ok(Some(Generation {
                until: vec![fewshot_delimiter.to_string()],
                max_gen_toks: 256,
            }))
        }
        Some(Value::Object(o)) => o,
        Some(_) => return Err(cx.invalid("generation_kwargs", "expected a mapping")),
    };
    let until = match g.get("until") {
        None => vec![fewshot_delimiter.to_string()],
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| cx.invalid("generation_kwargs.until", "expected strings"))?,
        Some(Value::Null) => Vec::new(),
        Some(_) => return Err(cx.invalid("generation_kwargs.until", "expected a string or a list")),
    };
    let mut max_gen_toks = 256;
    for key in [
        "max_completion_tokens",
        "max_tokens",
        "max_new_tokens",
        "max_gen_toks",
    ] {
        if let Some(v) = g.get(key) {
            max_gen_toks = v.as_u64().ok_or_else(|| {
                cx.invalid(&format!("generation_kwargs.{key}"), "expected a count")
            })? as usize;
        }
    }
    let temperature = g.get("temperature").and_then(Value::as_f64).unwrap_or(0.0);
    let sampling = match g.get("do_sample") {
        Some(Value::Bool(b)) => *b,
        _ => temperature > 0.0,
    };
    if sampling {
        return Err(refused(
            "sampled generation (`do_sample`)",
            "generation_kwargs.do_sample",
        ));
    }
    for k in g.keys() {
        if !matches!(
            k.as_str(),
            "until"
                | "max_gen_toks"
                | "max_new_tokens"
                | "max_tokens"
                | "max_completion_tokens"
                | "do_sample"
                | "temperature"
                | "top_p"
                | "top_k"
                | "num_beams"
                | "max_length"
        ) {
            return Err(refused(
                &format!("generation option `{k}`"),
                format!("generation_kwargs.{k}"),
            ));
        }
    }
    if g.get("num_beams")
        .and_then(Value::as_u64)
        .is_some_and(|b| b > 1)
    {
        return Err(refused(
            "beam search (`num_beams`)",
            "generation_kwargs.num_beams",
        ));
    }
    Ok(Some(Generation {
        until,
        max_gen_toks,
    }))
}

fn filter_list(
    cx: &Ctx,
    m: &Map<String, Value>,
    out: OutputType,
) -> Result<Vec<FilterConfig>, Problem> {
    let list = match m.get("filter_list") {
        None | Some(Value::Null) => {
            return Ok(vec![FilterConfig {
                name: "none".into(),
                steps: vec![FilterStep::TakeFirst],
            }])
        }
        Some(Value::Array(xs)) => xs,
        Some(_) => return Err(cx.invalid("filter_list", "expected a list of filters")),
    };
    if out != OutputType::GenerateUntil {
        return Err(refused("filters on a loglikelihood task", "filter_list"));
    }
    let mut filters = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let field = format!("filter_list[{i}]");
        let Value::Object(f) = f else {
            return Err(cx.invalid(&field, "expected a mapping with `name` and `filter`"));
        };
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| cx.invalid(&format!("{field}.name"), "missing"))?
            .to_string();
        let Some(Value::Array(steps)) = f.get("filter") else {
            return Err(cx.invalid(
                &format!("{field}.filter"),
                "expected a list of filter functions",
            ));
        };
        let mut out = Vec::new();
        for (j, s) in steps.iter().enumerate() {
            let sf = format!("{field}.filter[{j}]");
            let Value::Object(s) = s else {
                return Err(cx.invalid(&sf, "expected a mapping with `function`"));
            };
            let func = s
                .get("function")
                .and_then(Value::as_str)
                .ok_or_else(|| cx.invalid(&format!("{sf}.function"), "missing"))?;
            let arg = |k: &str| s.get(k).filter(|v| !v.is_null());
            let flag = |k: &str| -> std::result::Result<bool, Problem> {
                match arg(k) {
                    None => Ok(false),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(_) => Err(cx.invalid(&format!("{sf}.{k}"), "expected true or false")),
                }
            };
            let pattern_of = || -> std::result::Result<PyRegex, Problem> {
                let pattern = match arg("regex_pattern") {
                    None => r"#### (\-?[0-9\.\,]+)".to_string(),
                    Some(Value::String(p)) => p.clone(),
                    Some(_) => {
                        return Err(cx.invalid(&format!("{sf}.regex_pattern"), "expected a pattern"))
                    }
                };
                PyRegex::new(&pattern).map_err(|e| {
                    refused(
                        "a regex k2 cannot match as Python does",
                        format!("{sf}: {e}"),
                    )
                })
            };
            // The arguments both regex filters take, read only for them.
            let group_select = || -> std::result::Result<i64, Problem> {
                match arg("group_select") {
                    None => Ok(0),
                    Some(v) => v.as_i64().ok_or_else(|| {
                        cx.invalid(&format!("{sf}.group_select"), "expected an integer")
                    }),
                }
            };
            let fallback = || -> std::result::Result<String, Problem> {
                match arg("fallback") {
                    None => Ok("[invalid]".to_string()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(refused(
                        "a regex filter with a non-string fallback",
                        sf.clone(),
                    )),
                }
            };
            out.push(match func {
                "multi_choice_regex" => {
                    let regexes_to_ignore = match arg("regexes_to_ignore") {
                        None => Vec::new(),
                        Some(Value::Array(xs)) => xs
                            .iter()
                            .map(|x| {
                                let p = x.as_str().ok_or_else(|| {
                                    cx.invalid(
                                        &format!("{sf}.regexes_to_ignore"),
                                        "expected a list of patterns",
                                    )
                                })?;
                                PyRegex::new(p).map_err(|e| {
                                    refused(
                                        "a regex k2 cannot match as Python does",
                                        format!("{sf}.regexes_to_ignore: {e}"),
                                    )
                                })
                            })
                            .collect::<std::result::Result<_, _>>()?,
                        Some(_) => {
                            return Err(cx.invalid(
                                &format!("{sf}.regexes_to_ignore"),
                                "expected a list of patterns",
                            ))
                        }
                    };
                    FilterStep::MultiChoiceRegex {
                        re: pattern_of()?,
                        group_select: group_select()?,
                        fallback: fallback()?,
                        ignore_case: flag("ignore_case")?,
                        ignore_punctuation: flag("ignore_punctuation")?,
                        regexes_to_ignore,
                    }
                }
                "regex" => FilterStep::Regex {
                    re: pattern_of()?,
                    group_select: group_select()?,
                    fallback: fallback()?,
                },
                "take_first" => FilterStep::TakeFirst,
                "take_first_k" => FilterStep::TakeFirstK(
                    arg("k")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| cx.invalid(&format!("{sf}.k"), "expected a count"))?
                        as usize,
                ),
                "lowercase" => FilterStep::Lowercase,
                "uppercase" => FilterStep::Uppercase,
                "remove_whitespace" => FilterStep::RemoveWhitespace,
                "majority_vote" => FilterStep::MajorityVote,
                other => return Err(refused(&format!("filter `{other}`"), sf)),
            });
        }
        filters.push(FilterConfig { name, steps: out });
    }
    Ok(filters)
}
