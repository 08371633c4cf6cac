//! What a task asks of a model (lm-evaluation-harness's request types) and what it gets back.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Sum of log-probs of `continuation` given `context`, and whether greedy decoding would
    /// produce it. Split as lm-eval's `_encode_pair` does (trailing spaces of the context move
    /// to the continuation; the continuation's tokens are those of `context + continuation` after
    /// the context's).
    Loglikelihood {
        context: String,
        continuation: String,
    },
    /// Total log-likelihood of a whole text, in disjoint windows (lm-eval `loglikelihood_rolling`).
    Rolling { text: String },
    /// Greedy generation from `context` until any of `until` (or `max_gen_toks` tokens).
    Generate {
        context: String,
        until: Vec<String>,
        max_gen_toks: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Loglikelihood { ll: f64, is_greedy: bool },
    Rolling { ll: f64, tokens: usize },
    Generate { text: String },
}

impl Response {
    pub fn ll(&self) -> f64 {
        match self {
            Response::Loglikelihood { ll, .. } | Response::Rolling { ll, .. } => *ll,
            Response::Generate { .. } => f64::NAN,
        }
    }
    pub fn is_greedy(&self) -> bool {
        matches!(
            self,
            Response::Loglikelihood {
                is_greedy: true,
                ..
            }
        )
    }
    pub fn text(&self) -> &str {
        match self {
            Response::Generate { text } => text,
            _ => "",
        }
    }
}
