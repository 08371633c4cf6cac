//! The prompt gallery (LLM360 K2's "Prompt Gallery"): fixed prompts that every checkpoint
//! continues greedily, so a reader sees what the model writes as it trains.
//!
//! * One document per prompt, one `generate_until(text, stop, max_tokens)` request each
//!   (greedy, KV-cached; stops at a stop string, EOS or `max_tokens` tokens; the stop string is
//!   cut off, as lm-eval does).
//! * A prompts file is TOML, one `[[prompt]]` table per prompt:
//!   `id` (letters, digits, `_`, `-`; unique), `text` (non-empty), `max_tokens` (1 ..= 1024,
//!   default 48) and `stop` (strings, default none). Errors name the file, the line and the field.
//! * The built-in prompts ([`builtin_prompts`]) open each kind of document of the default corpus.
//! * Metric `chars`: the mean length of the continuations in characters (a gallery is read, not
//!   scored; the number only shows where generations collapse to nothing).
//! * The fingerprint is the sha256 of the prompts, so editing a prompt recomputes the gallery.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EvalError, Result};
use crate::request::{Request, Response};
use crate::task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};

/// The task name (results file `k2_gallery.json` and `k2_gallery.samples.jsonl`).
pub const GALLERY_TASK: &str = "k2_gallery";

/// The default length of a continuation, in tokens.
pub const DEFAULT_MAX_TOKENS: usize = 48;

/// The longest continuation a prompt may ask for.
pub const MAX_MAX_TOKENS: usize = 1024;

/// One prompt of the gallery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryPrompt {
    pub id: String,
    pub text: String,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    #[serde(default)]
    pub stop: Vec<String>,
}

fn default_max_tokens() -> usize {
    DEFAULT_MAX_TOKENS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptsFile {
    #[serde(default)]
    prompt: Vec<GalleryPrompt>,
}

/// The built-in prompts: the opening of each kind of document in the default corpus (a story,
/// an agreement sentence, arithmetic, a fact, code, brackets, copying and a repeated sequence).
pub fn builtin_prompts() -> Vec<GalleryPrompt> {
    use k2_corpus::factbase::{factbase, Attr};
    let fb = factbase();
    let country = fb.entity(Attr::Capital, 0);
    let p = |id: &str, text: String, max_tokens: usize, stop: &[&str]| GalleryPrompt {
        id: id.into(),
        text,
        max_tokens,
        stop: stop.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        p(
            "story",
            "Once upon a time, there was a little".into(),
            48,
            &["\n\n"],
        ),
        p(
            "agreement",
            "The dogs near the old tree".into(),
            16,
            &["\n"],
        ),
        p(
            "arithmetic",
            "What is 23 plus 14? The answer is".into(),
            8,
            &["\n"],
        ),
        p("fact", format!("The capital of {country} is"), 12, &["\n"]),
        p(
            "code",
            "def sum_items(items):\n    total = 0\n".into(),
            40,
            &["\n\n"],
        ),
        p("brackets", "brackets: ( [ {".into(), 12, &["\n"]),
        p("copy", "copy: k q z m -> ".into(), 12, &["\n"]),
        p("sequence", "seq: a b c a b c a".into(), 12, &["\n"]),
    ]
}

/// Reads and checks a prompts file (see the module docs).
pub fn read_prompts(path: &Path) -> Result<Vec<GalleryPrompt>> {
    let text = std::fs::read_to_string(path).map_err(|error| EvalError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    parse_prompts(&text, path)
}

/// Parses prompts from TOML text; `path` names the file in errors.
pub fn parse_prompts(text: &str, path: &Path) -> Result<Vec<GalleryPrompt>> {
    let file: PromptsFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| {
            text.as_bytes()[..s.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        EvalError::Data {
            path: path.to_path_buf(),
            line,
            message: e.message().to_string(),
        }
    })?;
    let invalid = |i: usize, field: &str, message: String| EvalError::Invalid {
        path: path.to_path_buf(),
        message: format!("prompt[{i}].{field}: {message}"),
    };
    if file.prompt.is_empty() {
        return Err(EvalError::Invalid {
            path: path.to_path_buf(),
            message: "no [[prompt]] tables (each needs `id` and `text`)".into(),
        });
    }
    let mut ids = BTreeSet::new();
    for (i, p) in file.prompt.iter().enumerate() {
        if p.id.is_empty()
            || !p
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                i,
                "id",
                format!("`{}` must be letters, digits, `_` or `-`", p.id),
            ));
        }
        if !ids.insert(p.id.as_str()) {
            return Err(invalid(i, "id", format!("`{}` is used twice", p.id)));
        }
        if p.text.is_empty() {
            return Err(invalid(i, "text", "is empty".into()));
        }
        if p.max_tokens == 0 || p.max_tokens > MAX_MAX_TOKENS {
            return Err(invalid(
                i,
                "max_tokens",
                format!("{} is not in 1..={MAX_MAX_TOKENS}", p.max_tokens),
            ));
        }
        if p.stop.iter().any(String::is_empty) {
            return Err(invalid(i, "stop", "holds an empty string".into()));
        }
    }
    Ok(file.prompt)
}

/// The gallery as a task.
#[derive(Debug, Clone)]
pub struct GalleryTask {
    prompts: Vec<GalleryPrompt>,
    sha256: String,
}

impl GalleryTask {
    pub fn new(prompts: Vec<GalleryPrompt>) -> Self {
        let json = serde_json::to_vec(&prompts).expect("prompts serialize");
        Self {
            prompts,
            sha256: hex::encode(Sha256::digest(json)),
        }
    }

    /// The built-in gallery.
    pub fn builtin() -> Self {
        Self::new(builtin_prompts())
    }

    pub fn prompts(&self) -> &[GalleryPrompt] {
        &self.prompts
    }
}

impl Task for GalleryTask {
    fn name(&self) -> &str {
        GALLERY_TASK
    }
    fn version(&self) -> f64 {
        1.0
    }
    fn num_docs(&self) -> usize {
        self.prompts.len()
    }
    fn default_shots(&self) -> usize {
        0
    }
    fn requests(&self, doc: usize, _shots: usize) -> Vec<Request> {
        let p = &self.prompts[doc];
        vec![Request::Generate {
            context: p.text.clone(),
            until: p.stop.clone(),
            max_gen_toks: p.max_tokens,
        }]
    }
    fn process(&self, doc: usize, responses: &[Response]) -> DocResult {
        let text = responses.first().map_or("", Response::text).to_string();
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert(
            "chars,none".to_string(),
            MetricValue {
                value: text.chars().count() as f64,
                weight: 1.0,
            },
        );
        DocResult {
            metrics,
            prediction: text,
            target: self.prompts[doc].id.clone(),
            gold: None,
            ..Default::default()
        }
    }
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::new("chars", "none", Aggregation::Mean, true)]
    }
    fn fingerprint(&self) -> String {
        format!("gallery prompts sha256={}", self.sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<GalleryPrompt>> {
        parse_prompts(text, Path::new("prompts.toml"))
    }

    #[test]
    fn a_prompts_file_parses_with_defaults() {
        let p = parse(
            "[[prompt]]\nid = \"a\"\ntext = \"Once\"\n\n[[prompt]]\nid = \"b-2\"\ntext = \"x\"\nmax_tokens = 5\nstop = [\"\\n\"]\n",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].max_tokens, DEFAULT_MAX_TOKENS);
        assert!(p[0].stop.is_empty());
        assert_eq!(p[1].max_tokens, 5);
        assert_eq!(p[1].stop, vec!["\n".to_string()]);
    }

    #[test]
    fn bad_prompts_name_the_field_or_line() {
        let e = parse("[[prompt]]\nid = \"a\"\ntext = \"\"\n").unwrap_err();
        assert!(e.to_string().contains("prompt[0].text: is empty"), "{e}");
        let e =
            parse("[[prompt]]\nid = \"a\"\ntext = \"t\"\n[[prompt]]\nid = \"a\"\ntext = \"u\"\n")
                .unwrap_err();
        assert!(
            e.to_string().contains("prompt[1].id: `a` is used twice"),
            "{e}"
        );
        let e = parse("[[prompt]]\nid = \"a b\"\ntext = \"t\"\n").unwrap_err();
        assert!(e.to_string().contains("prompt[0].id"), "{e}");
        let e = parse("[[prompt]]\nid = \"a\"\ntext = \"t\"\nmax_tokens = 0\n").unwrap_err();
        assert!(e.to_string().contains("prompt[0].max_tokens: 0"), "{e}");
        let e = parse("[[prompt]]\nid = \"a\"\ntext = \"t\"\nstop = [\"\"]\n").unwrap_err();
        assert!(e.to_string().contains("prompt[0].stop"), "{e}");
        let e = parse("").unwrap_err();
        assert!(e.to_string().contains("no [[prompt]] tables"), "{e}");
        let e = parse("[[prompt]]\nid = \"a\"\ntext = \"t\"\nmax_token = 3\n").unwrap_err();
        assert!(e.to_string().starts_with("prompts.toml:4:"), "{e}");
        assert!(e.to_string().contains("max_token"), "{e}");
        let e = parse("[[prompt]]\nid = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("text"), "{e}");
    }

    #[test]
    fn the_task_asks_one_generation_per_prompt_and_keeps_the_text() {
        let t = GalleryTask::builtin();
        assert_eq!(t.num_docs(), builtin_prompts().len());
        let ids: BTreeSet<_> = t.prompts().iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), t.num_docs());
        match &t.requests(0, 0)[0] {
            Request::Generate {
                context,
                until,
                max_gen_toks,
            } => {
                assert_eq!(context, &t.prompts()[0].text);
                assert_eq!(until, &t.prompts()[0].stop);
                assert_eq!(*max_gen_toks, t.prompts()[0].max_tokens);
            }
            r => panic!("{r:?}"),
        }
        let r = t.process(
            1,
            &[Response::Generate {
                text: "are tall.".into(),
            }],
        );
        assert_eq!(r.prediction, "are tall.");
        assert_eq!(r.target, t.prompts()[1].id);
        assert_eq!(r.metrics["chars,none"].value, 9.0);
        let other = GalleryTask::new(t.prompts()[..2].to_vec());
        assert_ne!(other.fingerprint(), t.fingerprint());
    }
}
