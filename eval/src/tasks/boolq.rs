//! BoolQ (lm-eval `boolq`, version 2.0).
//!
//! lm-eval 0.4 `boolq.yaml`: `dataset_path: aps/super_glue`, `dataset_name: boolq`, validation
//! split, few-shot from `train` (`n + 1` drawn: neither `fewshot_split` nor `test_split` is set);
//! `doc_to_text: "{{passage}}\nQuestion: {{question}}?\nAnswer:"`, choices `["no", "yes"]`, gold
//! = `label`, acc only.

use crate::data;
use crate::datasets::{Dataset, Load, SplitRows};
use crate::error::Result;
use crate::fewshot::{McDoc, McTask};

pub const VERSION: f64 = 2.0;
pub const FORMAT_ID: &str = "lm-eval boolq v2.0: {passage}\\nQuestion: {q}?\\nAnswer: + ' '+no/yes";
pub const DATASET: Dataset = Dataset::new("aps/super_glue", Some("boolq"));

#[derive(Debug)]
pub struct BoolQ(pub McTask);

fn docs(rows: &SplitRows) -> Result<Vec<McDoc>> {
    rows.iter()
        .map(|(path, line, v)| {
            let passage = data::get_str(path, line, v, "passage")?;
            let question = data::get_str(path, line, v, "question")?;
            Ok(McDoc {
                text: format!("{passage}\nQuestion: {question}?\nAnswer:"),
                choices: vec!["no".into(), "yes".into()],
                gold: data::get_index(path, line, v, "label", 2)?,
            })
        })
        .collect()
}

impl BoolQ {
    pub fn load(load: &Load) -> Result<Self> {
        let eval = load.split(&DATASET, "validation")?;
        let train = load.fewshot_split(&DATASET, "train")?;
        McTask::from_splits(
            "boolq",
            VERSION,
            &eval,
            train.as_ref(),
            docs,
            true,
            FORMAT_ID,
            false,
        )
        .map(BoolQ)
    }
}

crate::delegate_mc_task!(BoolQ);
