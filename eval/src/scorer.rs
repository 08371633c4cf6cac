//! The seam between tasks and a model: a [`Scorer`] answers a task's requests. The engine
//! ([`crate::engine::Engine`]) scores them with a model; [`RuleScorer`] answers by a rule, so a
//! task's contract (requests, responses, metrics) can be tested without any model.

use std::cell::RefCell;

use crate::encode::encode_pair;
use crate::engine::Engine;
use crate::error::Result;
use crate::prepared::Prepared;
use crate::request::{Request, Response};

/// Answers requests. Batched calls return answers in input order; `progress` is called with the
/// number answered so far.
pub trait Scorer {
    /// Log-likelihood of each continuation given its context, and whether greedy decoding would
    /// produce it.
    fn loglikelihoods(
        &self,
        pairs: &[(&str, &str)],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, bool)>>;

    /// [`Scorer::loglikelihoods`] of `prepared`'s loglikelihood `pairs` (in its order): a
    /// tokenizing scorer takes their token ids from `prepared`, encoding them on the first call
    /// for its tokenizer only. The same answers as `loglikelihoods(pairs)`.
    fn prepared_loglikelihoods(
        &self,
        prepared: &Prepared,
        pairs: &[(&str, &str)],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, bool)>> {
        let _ = prepared;
        self.loglikelihoods(pairs, progress)
    }

    /// Total log-likelihood and token count of each text (lm-eval `loglikelihood_rolling`).
    fn rolling_loglikelihoods(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, usize)>>;

    /// Greedy generation from `context` until a stop string or `max_gen_toks` tokens.
    fn generate_until(
        &self,
        context: &str,
        until: &[String],
        max_gen_toks: usize,
    ) -> Result<String>;

    /// The batch size results record (`config.batch_size`).
    fn batch_size(&self) -> usize;
}

impl Scorer for Engine {
    fn loglikelihoods(
        &self,
        pairs: &[(&str, &str)],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, bool)>> {
        let encoded = pairs
            .iter()
            .map(|(c, x)| encode_pair(&self.tokenizer, c, x))
            .collect::<Result<Vec<_>>>()?;
        Ok(self
            .loglikelihood(&encoded, progress)?
            .into_iter()
            .map(|s| (s.ll, s.is_greedy))
            .collect())
    }

    fn prepared_loglikelihoods(
        &self,
        prepared: &Prepared,
        pairs: &[(&str, &str)],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, bool)>> {
        let encoded = prepared.encoded(&self.tokenizer_key, || {
            pairs
                .iter()
                .map(|(c, x)| encode_pair(&self.tokenizer, c, x))
                .collect()
        })?;
        Ok(self
            .loglikelihood(&encoded, progress)?
            .into_iter()
            .map(|s| (s.ll, s.is_greedy))
            .collect())
    }

    fn rolling_loglikelihoods(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, usize)>> {
        self.rolling(texts, progress)
    }

    fn generate_until(
        &self,
        context: &str,
        until: &[String],
        max_gen_toks: usize,
    ) -> Result<String> {
        self.generate(context, until, max_gen_toks)
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// Answers every request by a rule and records the requests it saw, in the order it saw them.
pub struct RuleScorer<F: Fn(&Request) -> Response> {
    rule: F,
    pub seen: RefCell<Vec<Request>>,
}

impl<F: Fn(&Request) -> Response> RuleScorer<F> {
    pub fn new(rule: F) -> Self {
        RuleScorer {
            rule,
            seen: RefCell::new(Vec::new()),
        }
    }

    fn answer(&self, r: Request) -> Response {
        let a = (self.rule)(&r);
        self.seen.borrow_mut().push(r);
        a
    }
}

impl<F: Fn(&Request) -> Response> Scorer for RuleScorer<F> {
    fn loglikelihoods(
        &self,
        pairs: &[(&str, &str)],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, bool)>> {
        let mut out = Vec::with_capacity(pairs.len());
        for (i, (c, x)) in pairs.iter().enumerate() {
            let r = self.answer(Request::Loglikelihood {
                context: c.to_string(),
                continuation: x.to_string(),
            });
            out.push((r.ll(), r.is_greedy()));
            progress(i + 1);
        }
        Ok(out)
    }

    fn rolling_loglikelihoods(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, usize)>> {
        let mut out = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            match self.answer(Request::Rolling { text: t.clone() }) {
                Response::Rolling { ll, tokens } => out.push((ll, tokens)),
                other => out.push((other.ll(), 1)),
            }
            progress(i + 1);
        }
        Ok(out)
    }

    fn generate_until(
        &self,
        context: &str,
        until: &[String],
        max_gen_toks: usize,
    ) -> Result<String> {
        Ok(self
            .answer(Request::Generate {
                context: context.to_string(),
                until: until.to_vec(),
                max_gen_toks,
            })
            .text()
            .to_string())
    }

    fn batch_size(&self) -> usize {
        1
    }
}
