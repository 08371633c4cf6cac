//! # k2-corpus: the built-in, generated training corpus of k2's default run
//!
//! A deterministic, multi-domain text corpus that mirrors LLM360 K2's data mix
//! in miniature, plus held-out *capability probes* for the eval harness. No
//! downloads and no files: every document is a pure function of
//! `(source name, document index)` and every probe of `(task name, probe index)`,
//! computed with a frozen SplitMix64 generator (see [`rng`]), so the text is
//! stable across crate versions, platforms and runs.
//!
//! The patterns are sized for a tiny LLaMA (~1-3M parameters, byte-level BPE
//! with ~1024 tokens, 128-256 token context) trained for a few minutes on
//! ~0.5-1M tokens: small vocabularies, short regular sentences, much
//! repetition of structure, and enough combinatorial variety that memorising
//! documents does not suffice.
//!
//! ## The mix and the K2 analogy
//!
//! | source       | domain | stands in for (K2 subset)        | repeat | stage | chars      |
//! |--------------|--------|----------------------------------|--------|-------|------------|
//! | `stories`    | web    | refinedweb                       | 1x     | 1     | 200-1500   |
//! | `facts`      | wiki   | redpajama.wikipedia              | 6x     | 1     | 200-1500   |
//! | `arithmetic` | math   | dm-math                          | 3x     | 1     | 200-1500   |
//! | `code`       | code   | starcoder                        | 0.5x   | 1     | 200-1500   |
//! | `math_long`  | math   | open-web-math / algebraic-stack  | 1x     | 2     | 600-4000   |
//! | `code_long`  | code   | python (stage-2 code)            | 1x     | 2     | 600-4000   |
//!
//! Stage 1 is dominated by `stories` (web) as K2's is by refinedweb; `facts` is
//! small but repeated 6x like Wikipedia, so its fixed fact base is seen many
//! times (which is what the `facts` probe measures). Stage 2 shifts toward
//! math and code with longer documents, as K2's stage 2 does with longer
//! context. [`source_info`] returns these numbers for the trainer.
//!
//! ## Probes
//!
//! | task            | choices | chance | measures                                           |
//! |-----------------|---------|--------|----------------------------------------------------|
//! | `agreement`     | 2       | 0.50   | subject-verb agreement across attractor clauses    |
//! | `arithmetic`    | 4       | 0.25   | sums/differences on held-out two-digit pairs       |
//! | `facts`         | 4       | 0.25   | recall of the fixed fact base                      |
//! | `copy`          | 4       | 0.25   | induction: copying fresh random symbol sequences   |
//! | `code_brackets` | 4       | 0.25   | the correct closing of nested brackets             |
//!
//! A probe is scored lm-eval style: the log-likelihood of `context + " " +
//! choice` restricted to the choice's tokens; contexts have no trailing space
//! and choices no leading space. Golds are exactly balanced over positions.
//! Random parts of probes come from a seed domain disjoint from the training
//! documents', and arithmetic probes use only operand pairs that no training
//! document contains.
//!
//! ```
//! use k2_corpus::{probes, source, source_names};
//!
//! let stories = source("stories").unwrap();
//! assert_eq!(stories.domain(), "web");
//! let doc = stories.document(0);
//! assert_eq!(doc, stories.document(0)); // pure function of (name, index)
//! assert!(doc.is_ascii() && (200..=1500).contains(&doc.len()));
//! assert!(source_names().contains(&"facts"));
//!
//! let ps = probes("arithmetic", 8).unwrap();
//! assert_eq!(ps.len(), 8);
//! assert!(ps.iter().all(|p| p.gold < p.choices.len()));
//! ```

pub mod arith;
pub mod factbase;
pub mod grammar;
pub mod injection;
pub mod probes;
pub mod rng;
pub mod sources;
pub mod text;

/// A named stream of generated documents.
pub trait Source: Send + Sync {
    /// Registry name, e.g. `"stories"`.
    fn name(&self) -> &'static str;
    /// Domain label: `web`, `wiki`, `math` or `code`.
    fn domain(&self) -> &'static str;
    /// Document `index`: a pure function of `(name, index)`, ASCII only.
    fn document(&self, index: u64) -> String;
}

/// Static description of a source's place in the data mix.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SourceInfo {
    pub name: &'static str,
    pub domain: &'static str,
    /// The K2 subset this source stands in for.
    pub k2_subset: &'static str,
    /// Suggested repeat factor (samples dealt into `repeat` chunks; 0.5 = half used).
    pub repeat: f64,
    /// Training stage (1 or 2).
    pub stage: u8,
    /// Inclusive document length range in bytes (= chars; ASCII).
    pub min_chars: usize,
    pub max_chars: usize,
}

/// Look up a source by name.
pub fn source(name: &str) -> Option<Box<dyn Source>> {
    sources::make(name)
}

/// All source names, stage-1 sources first.
pub fn source_names() -> &'static [&'static str] {
    sources::NAMES
}

/// Mix metadata (domain, K2 analogue, repeat factor, stage, lengths) for a source.
pub fn source_info(name: &str) -> Option<&'static SourceInfo> {
    sources::INFO.iter().find(|i| i.name == name)
}

/// One multiple-choice probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Probe {
    /// Index of the probe within its task (probes are a pure function of `(task, id)`).
    pub id: u64,
    /// Context, no trailing space.
    pub context: String,
    /// Candidate continuations, no leading space, pairwise distinct.
    pub choices: Vec<String>,
    /// Index of the correct choice.
    pub gold: usize,
}

/// All probe task names.
pub fn probe_tasks() -> &'static [&'static str] {
    probes::TASKS
}

/// The first `n` probes of `task` (a prefix-stable, deterministic list), or
/// `None` for an unknown task.
pub fn probes(task: &str, n: usize) -> Option<Vec<Probe>> {
    let gen = probes::generator(task)?;
    Some((0..n as u64).map(gen).collect())
}

/// Chance accuracy of `task`: 1 / number of choices.
pub fn probe_chance(task: &str) -> Option<f64> {
    probes::num_choices(task).map(|k| 1.0 / k as f64)
}
