//! The built-in default suite: k2-corpus's held-out capability probes as lm-eval-style
//! multiple-choice tasks, one per [`k2_corpus::probe_tasks`] name, called `k2_<task>`
//! (`k2_agreement`, `k2_arithmetic`, `k2_facts`, `k2_copy`, `k2_code_brackets`).
//!
//! * Documents: the first `n` probes of the task (`k2_corpus::probes(task, n)`, prefix-stable;
//!   default [`DEFAULT_PROBES`]).
//! * Requests (`output_type: multiple_choice`): one `loglikelihood(context, " " + choice)` per
//!   choice (probe contexts have no trailing space, choices no leading space).
//! * Metrics as lm-eval's MC `process_results`: `acc` = [argmax ll == gold], `acc_norm` =
//!   [argmax ll / len(choice) == gold] with `len` the choice's character count (the delimiter
//!   not counted); ties go to the first index (`np.argmax`). Both `Mean`, higher is better.
//! * Few-shot (default 0): the `shots` probes that follow the evaluated set (ids `n .. n+shots`,
//!   a fixed held-out "train" split used in order like lm-eval's `first_n` sampler), each
//!   written `context + " " + choices[gold] + "\n\n"` before the evaluated context.
//! * Chance = 1 / number of choices ([`k2_corpus::probe_chance`]).
//! * The fingerprint holds the sha256 of the generated probes (JSON) including the few-shot
//!   pool's first probes, so a change of the generator invalidates stored results.

use sha2::{Digest, Sha256};

use crate::request::{Request, Response};
use crate::task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};

pub use k2_corpus::Probe;

/// Default number of probes per task.
pub const DEFAULT_PROBES: usize = 200;

/// Size of the few-shot pool generated after the evaluated probes (the most shots supported).
pub const FEWSHOT_POOL: usize = 32;

/// Index of the first maximum (`np.argmax`); NaNs never win over numbers.
pub fn argmax(xs: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] || (xs[best].is_nan() && !x.is_nan()) {
            best = i;
        }
    }
    best
}

/// lm-eval multiple-choice `acc` and `acc_norm` of one document from the choices' log-likelihoods.
pub fn mc_acc(lls: &[f64], choices: &[String], gold: usize) -> (bool, bool) {
    let acc = argmax(lls) == gold;
    let normed: Vec<f64> = lls
        .iter()
        .zip(choices)
        .map(|(ll, c)| ll / c.chars().count() as f64)
        .collect();
    (acc, argmax(&normed) == gold)
}

/// One probe task of the default suite.
#[derive(Debug, Clone)]
pub struct ProbeTask {
    task: &'static str,
    name: String,
    probes: Vec<Probe>,
    fewshot: Vec<Probe>,
    chance: f64,
    sha256: String,
}

impl ProbeTask {
    /// The `k2_<task>` task over the first `n` probes of `task`; `None` for an unknown task.
    pub fn new(task: &str, n: usize) -> Option<Self> {
        let task = *k2_corpus::probe_tasks().iter().find(|t| **t == task)?;
        let mut all = k2_corpus::probes(task, n + FEWSHOT_POOL)?;
        let fewshot = all.split_off(n);
        let chance = k2_corpus::probe_chance(task)?;
        let json = serde_json::to_vec(&(&all, &fewshot)).expect("probes serialize");
        Some(Self {
            task,
            name: format!("k2_{task}"),
            probes: all,
            fewshot,
            chance,
            sha256: hex::encode(Sha256::digest(json)),
        })
    }

    /// Every probe task (in `probe_tasks()` order) with `n` probes each.
    pub fn all(n: usize) -> Vec<Self> {
        k2_corpus::probe_tasks()
            .iter()
            .filter_map(|t| Self::new(t, n))
            .collect()
    }

    /// The k2-corpus probe task name (`agreement`, ...).
    pub fn probe_task(&self) -> &str {
        self.task
    }

    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// The prompt (context) of document `doc` with `shots` few-shot examples (at most
    /// [`FEWSHOT_POOL`]: the registry refuses more).
    pub fn context(&self, doc: usize, shots: usize) -> String {
        let shots = shots.min(self.fewshot.len());
        let mut s = String::new();
        for ex in &self.fewshot[..shots] {
            s.push_str(&ex.context);
            s.push(' ');
            s.push_str(&ex.choices[ex.gold]);
            s.push_str("\n\n");
        }
        s.push_str(&self.probes[doc].context);
        s
    }
}

impl Task for ProbeTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> f64 {
        1.0
    }
    fn num_docs(&self) -> usize {
        self.probes.len()
    }
    /// The probes generated after the evaluated ones.
    fn max_shots(&self) -> Option<usize> {
        Some(self.fewshot.len())
    }

    fn default_shots(&self) -> usize {
        0
    }
    fn requests(&self, doc: usize, shots: usize) -> Vec<Request> {
        let ctx = self.context(doc, shots);
        self.probes[doc]
            .choices
            .iter()
            .map(|c| Request::Loglikelihood {
                context: ctx.clone(),
                continuation: format!(" {c}"),
            })
            .collect()
    }
    fn process(&self, doc: usize, responses: &[Response]) -> DocResult {
        let p = &self.probes[doc];
        let lls: Vec<f64> = (0..p.choices.len())
            .map(|i| responses.get(i).map_or(f64::NAN, Response::ll))
            .collect();
        let (acc, acc_norm) = mc_acc(&lls, &p.choices, p.gold);
        let v = |b: bool| MetricValue {
            value: if b { 1.0 } else { 0.0 },
            weight: 1.0,
        };
        let mut r = DocResult {
            prediction: p.choices[argmax(&lls)].clone(),
            target: p.choices[p.gold].clone(),
            gold: Some(p.gold),
            ..Default::default()
        };
        r.metrics.insert("acc,none".into(), v(acc));
        r.metrics.insert("acc_norm,none".into(), v(acc_norm));
        r
    }
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![
            MetricSpec::new("acc", "none", Aggregation::Mean, true),
            MetricSpec::new("acc_norm", "none", Aggregation::Mean, true),
        ]
    }
    fn fingerprint(&self) -> String {
        format!(
            "{} v1.0; k2-corpus probes n={} + {} few-shot, sha256 {}; \
             multiple_choice loglikelihood(context, ' ' + choice); acc, acc_norm (chars)",
            self.name,
            self.probes.len(),
            self.fewshot.len(),
            self.sha256
        )
    }
    fn chance(&self) -> Option<f64> {
        Some(self.chance)
    }
}
