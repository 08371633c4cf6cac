//! PIQA (lm-eval `piqa`, version 1.0).
//!
//! lm-eval 0.4 `piqa.yaml`: `dataset_path: baber/piqa`, validation split, few-shot from `train`
//! (neither `fewshot_split` nor `test_split` is set, so `n + 1` are drawn and docs equal to the
//! evaluated one dropped); `doc_to_text: "Question: {{goal}}\nAnswer:"`, choices `[sol1, sol2]`,
//! gold = `label`, acc + acc_norm.

use crate::data;
use crate::datasets::{Dataset, Load, SplitRows};
use crate::error::Result;
use crate::fewshot::{McDoc, McTask};

pub const VERSION: f64 = 1.0;
pub const FORMAT_ID: &str = "lm-eval piqa v1.0: Question: {goal}\\nAnswer: + ' '+sol";
pub const DATASET: Dataset = Dataset::new("baber/piqa", None);

#[derive(Debug)]
pub struct Piqa(pub McTask);

fn docs(rows: &SplitRows) -> Result<Vec<McDoc>> {
    rows.iter()
        .map(|(path, line, v)| {
            let goal = data::get_str(path, line, v, "goal")?;
            let sol1 = data::get_str(path, line, v, "sol1")?;
            let sol2 = data::get_str(path, line, v, "sol2")?;
            Ok(McDoc {
                text: format!("Question: {goal}\nAnswer:"),
                choices: vec![sol1, sol2],
                gold: data::get_index(path, line, v, "label", 2)?,
            })
        })
        .collect()
}

impl Piqa {
    pub fn load(load: &Load) -> Result<Self> {
        let eval = load.split(&DATASET, "validation")?;
        let train = load.fewshot_split(&DATASET, "train")?;
        McTask::from_splits(
            "piqa",
            VERSION,
            &eval,
            train.as_ref(),
            docs,
            true,
            FORMAT_ID,
            true,
        )
        .map(Piqa)
    }
}

crate::delegate_mc_task!(Piqa);
