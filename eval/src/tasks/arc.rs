//! ARC-Easy / ARC-Challenge (lm-eval `arc_easy`, `arc_challenge`, version 1.0).
//!
//! lm-eval 0.4 `arc_easy.yaml`: `dataset_path: allenai/ai2_arc`, `dataset_name: ARC-Easy`
//! (`ARC-Challenge`), test split, few-shot from `train` (`test_split` is set and differs from
//! the unset `fewshot_split`, so `n` are drawn, not `n + 1`); `doc_to_text: "Question:
//! {{question}}\nAnswer:"`, choices = `choices.text`, gold = `choices.label.index(answerKey)`,
//! metrics acc + acc_norm.

use crate::data;
use crate::datasets::{Dataset, Load, SplitRows};
use crate::error::Result;
use crate::fewshot::{McDoc, McTask};

pub const VERSION: f64 = 1.0;
/// Identifies the prompt format in the fingerprint.
pub const FORMAT_ID: &str = "lm-eval arc v1.0: Question: {q}\\nAnswer: + ' '+choice";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArcVariant {
    Easy,
    Challenge,
}

impl ArcVariant {
    pub fn task_name(self) -> &'static str {
        match self {
            ArcVariant::Easy => "arc_easy",
            ArcVariant::Challenge => "arc_challenge",
        }
    }
    pub fn dataset(self) -> Dataset<'static> {
        match self {
            ArcVariant::Easy => Dataset::new("allenai/ai2_arc", Some("ARC-Easy")),
            ArcVariant::Challenge => Dataset::new("allenai/ai2_arc", Some("ARC-Challenge")),
        }
    }
}

#[derive(Debug)]
pub struct Arc(pub McTask);

/// ARC's documents from rows of `allenai/ai2_arc`.
pub fn docs(rows: &SplitRows) -> Result<Vec<McDoc>> {
    rows.iter()
        .map(|(path, line, v)| {
            let question = data::get_str(path, line, v, "question")?;
            let (choices, gold) = data::labelled_choices(path, line, v, "choices", "answerKey")?;
            Ok(McDoc {
                text: format!("Question: {question}\nAnswer:"),
                choices,
                gold,
            })
        })
        .collect()
}

impl Arc {
    pub fn load(load: &Load, variant: ArcVariant) -> Result<Self> {
        let ds = variant.dataset();
        let test = load.split(&ds, "test")?;
        let train = load.fewshot_split(&ds, "train")?;
        McTask::from_splits(
            variant.task_name(),
            VERSION,
            &test,
            train.as_ref(),
            docs,
            false,
            FORMAT_ID,
            true,
        )
        .map(Arc)
    }
}

crate::delegate_mc_task!(Arc);
