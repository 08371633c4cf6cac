//! OpenBookQA (lm-eval `openbookqa`, version 1.0).
//!
//! lm-eval 0.4 `openbookqa.yaml`: `dataset_path: allenai/openbookqa`, `dataset_name: main`, test
//! split, few-shot from `train` (`n` drawn: `test_split` is set); `doc_to_text: question_stem`,
//! choices `choices.text`, gold = `choices.label.index(answerKey.lstrip())`, acc + acc_norm.

use crate::data;
use crate::datasets::{Dataset, Load, SplitRows};
use crate::error::Result;
use crate::fewshot::{McDoc, McTask};

pub const VERSION: f64 = 1.0;
pub const FORMAT_ID: &str = "lm-eval openbookqa v1.0: {question_stem} + ' '+choice";
pub const DATASET: Dataset = Dataset::new("allenai/openbookqa", Some("main"));

#[derive(Debug)]
pub struct OpenBookQa(pub McTask);

fn docs(rows: &SplitRows) -> Result<Vec<McDoc>> {
    rows.iter()
        .map(|(path, line, v)| {
            let (choices, gold) = data::labelled_choices(path, line, v, "choices", "answerKey")?;
            Ok(McDoc {
                text: data::get_str(path, line, v, "question_stem")?,
                choices,
                gold,
            })
        })
        .collect()
}

impl OpenBookQa {
    pub fn load(load: &Load) -> Result<Self> {
        let test = load.split(&DATASET, "test")?;
        let train = load.fewshot_split(&DATASET, "train")?;
        McTask::from_splits(
            "openbookqa",
            VERSION,
            &test,
            train.as_ref(),
            docs,
            false,
            FORMAT_ID,
            true,
        )
        .map(OpenBookQa)
    }
}

crate::delegate_mc_task!(OpenBookQa);
