//! Checkpoint revision names on the Hub and their training order.
//!
//! The schemes in use (see `reference/eval-anchors.md` A3 and `reference/k2-paper.md`):
//! LLM360 `ckpt_N` / `ckpt_NNN` (stage 1), `ministage2_ckpt_N` (K2 stage 2), `spike_ckpt_N` (the
//! diverged checkpoints kept beside their twins); Pythia `stepN`; OLMo-1 `stepN-tokensTB`; OLMo-2
//! `stageK-stepN-tokensTB` (and `stage2-ingredientK-stepN-tokensTB`). Local checkpoint directories
//! written by other trainers add Hugging Face Trainer's `checkpoint-N` and Megatron's `iter_N`
//! (`iter_0000100`). Anything else (`main`, tags) is not a checkpoint and sorts after them.

use std::cmp::Ordering;

/// The naming scheme a revision follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// LLM360 `ckpt_N` (stage 1 of K2, all of Amber).
    Ckpt,
    /// LLM360 K2 `ministage2_ckpt_N`.
    MiniStage2,
    /// LLM360 K2 `spike_ckpt_N`: the diverged twin of `ckpt_N`.
    Spike,
    /// Pythia `stepN`.
    Step,
    /// OLMo `stepN-tokensTB` or `stageK[-ingredientI]-stepN-tokensTB`.
    OlmoStep,
    /// Hugging Face Trainer `checkpoint-N` (N = optimizer step).
    TrainerCheckpoint,
    /// Megatron `iter_N` (N = iteration, zero-padded to 7 digits).
    MegatronIter,
}

/// What a revision name says about its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub name: String,
    pub scheme: Scheme,
    /// The checkpoint number (`ckpt_N`) or the optimizer step (`stepN`).
    pub number: u64,
    /// Training stage: 1 unless the name says otherwise.
    pub stage: u32,
    /// OLMo-2 stage-2 ingredient (soup member), if any.
    pub ingredient: Option<u32>,
    /// Tokens seen, when the name carries them (`-tokens4B`), in tokens.
    pub tokens: Option<u64>,
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `stepN-tokensTB` -> (N, T * 1e9).
fn olmo_step_tokens(s: &str) -> Option<(u64, u64)> {
    let (step, tokens) = s.strip_prefix("step")?.split_once("-tokens")?;
    let t = number(tokens.strip_suffix('B')?)?;
    Some((number(step)?, t.checked_mul(1_000_000_000)?))
}

impl Revision {
    /// Parses a revision name; `None` for names that are not checkpoints (`main`, `v1.0`).
    pub fn parse(name: &str) -> Option<Revision> {
        let make = |scheme, number, stage| Revision {
            name: name.to_string(),
            scheme,
            number,
            stage,
            ingredient: None,
            tokens: None,
        };
        if let Some(n) = name.strip_prefix("ckpt_").and_then(number) {
            return Some(make(Scheme::Ckpt, n, 1));
        }
        if let Some(n) = name.strip_prefix("ministage2_ckpt_").and_then(number) {
            return Some(make(Scheme::MiniStage2, n, 2));
        }
        if let Some(n) = name.strip_prefix("spike_ckpt_").and_then(number) {
            return Some(make(Scheme::Spike, n, 1));
        }
        if let Some(n) = name.strip_prefix("step").and_then(number) {
            return Some(make(Scheme::Step, n, 1));
        }
        if let Some(n) = name.strip_prefix("checkpoint-").and_then(number) {
            return Some(make(Scheme::TrainerCheckpoint, n, 1));
        }
        if let Some(n) = name.strip_prefix("iter_").and_then(number) {
            return Some(make(Scheme::MegatronIter, n, 1));
        }
        if let Some((step, tokens)) = olmo_step_tokens(name) {
            let mut r = make(Scheme::OlmoStep, step, 1);
            r.tokens = Some(tokens);
            return Some(r);
        }
        // stageK-stepN-tokensTB, stageK-ingredientI-stepN-tokensTB
        let rest = name.strip_prefix("stage")?;
        let (stage, rest) = rest.split_once('-')?;
        let stage: u32 = number(stage)?.try_into().ok()?;
        let (ingredient, rest) = match rest.strip_prefix("ingredient") {
            Some(r) => {
                let (i, r) = r.split_once('-')?;
                (Some(number(i)?.try_into().ok()?), r)
            }
            None => (None, rest),
        };
        let (step, tokens) = olmo_step_tokens(rest)?;
        Some(Revision {
            name: name.to_string(),
            scheme: Scheme::OlmoStep,
            number: step,
            stage,
            ingredient,
            tokens: Some(tokens),
        })
    }

    /// The training-order key: stage, ingredient, checkpoint/step number, then a diverged spike
    /// checkpoint right after its normal twin.
    fn key(&self) -> (u32, u32, u64, u8) {
        (
            self.stage,
            self.ingredient.unwrap_or(0),
            self.number,
            u8::from(self.scheme == Scheme::Spike),
        )
    }
}

impl Ord for Revision {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key()
            .cmp(&other.key())
            .then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for Revision {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Revision names in training order: checkpoints first (by stage, number), then every name that
/// is not a checkpoint, alphabetically.
pub fn training_order<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let mut ckpts: Vec<Revision> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    for n in names {
        match Revision::parse(n.as_ref()) {
            Some(r) => ckpts.push(r),
            None => other.push(n.as_ref().to_string()),
        }
    }
    ckpts.sort();
    other.sort();
    ckpts.into_iter().map(|r| r.name).chain(other).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme_in_use() {
        let r = Revision::parse("ckpt_007").unwrap();
        assert_eq!((r.scheme, r.number, r.stage), (Scheme::Ckpt, 7, 1));
        assert_eq!(Revision::parse("ckpt_351").unwrap().number, 351);
        let r = Revision::parse("ministage2_ckpt_377").unwrap();
        assert_eq!((r.scheme, r.number, r.stage), (Scheme::MiniStage2, 377, 2));
        let r = Revision::parse("spike_ckpt_160").unwrap();
        assert_eq!((r.scheme, r.number), (Scheme::Spike, 160));
        let r = Revision::parse("step143000").unwrap();
        assert_eq!((r.scheme, r.number, r.tokens), (Scheme::Step, 143000, None));
        let r = Revision::parse("step1000-tokens4B").unwrap();
        assert_eq!(
            (r.scheme, r.number, r.tokens),
            (Scheme::OlmoStep, 1000, Some(4_000_000_000))
        );
        let r = Revision::parse("stage1-step928646-tokens3896B").unwrap();
        assert_eq!((r.stage, r.number), (1, 928646));
        assert_eq!(r.tokens, Some(3_896_000_000_000));
        let r = Revision::parse("stage2-ingredient3-step11931-tokens50B").unwrap();
        assert_eq!((r.stage, r.ingredient, r.number), (2, Some(3), 11931));
        let r = Revision::parse("checkpoint-500").unwrap();
        assert_eq!((r.scheme, r.number), (Scheme::TrainerCheckpoint, 500));
        let r = Revision::parse("iter_0000100").unwrap();
        assert_eq!((r.scheme, r.number), (Scheme::MegatronIter, 100));
        for not in [
            "main",
            "v1.0",
            "ckpt_",
            "ckpt_1a",
            "step",
            "step-1",
            "stepx-tokens4B",
            "step10-tokensB",
            "stage-step1-tokens1B",
        ] {
            assert_eq!(Revision::parse(not), None, "{not}");
        }
    }

    #[test]
    fn training_order_is_numeric_with_spikes_after_their_twins_and_stage_two_last() {
        let names = [
            "main",
            "ministage2_ckpt_377",
            "ckpt_10",
            "spike_ckpt_160",
            "ckpt_2",
            "ckpt_160",
            "ckpt_161",
            "ckpt_360",
        ];
        assert_eq!(
            training_order(&names),
            [
                "ckpt_2",
                "ckpt_10",
                "ckpt_160",
                "spike_ckpt_160",
                "ckpt_161",
                "ckpt_360",
                "ministage2_ckpt_377",
                "main"
            ]
        );
        let pythia = ["step1000", "step512", "step0", "step143000", "step2"];
        assert_eq!(
            training_order(&pythia),
            ["step0", "step2", "step512", "step1000", "step143000"]
        );
        let olmo = [
            "stage2-ingredient1-step100-tokens1B",
            "stage1-step928646-tokens3896B",
            "stage1-step1000-tokens5B",
        ];
        assert_eq!(
            training_order(&olmo),
            [
                "stage1-step1000-tokens5B",
                "stage1-step928646-tokens3896B",
                "stage2-ingredient1-step100-tokens1B"
            ]
        );
    }
}
