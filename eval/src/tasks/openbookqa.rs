//! OpenBookQA (lm-eval `openbookqa`, version 1.0): `doc_to_text: question_stem`, choices
//! `choices.text`, gold = `choices.label.index(answerKey)`, acc + acc_norm, test split.
//! Data: llm-foundry's `openbookqa/openbookqa_test.jsonl` (`{"query": stem, "choices", "gold"}`).
//! Few-shot: the train split is not available offline; the eval split is used (draw n+1, drop
//! the doc itself; raw docs have unique ids).

use std::path::Path;

use crate::data;
use crate::error::Result;
use crate::fewshot::{sha256_hex, McDoc, McTask};

pub const VERSION: f64 = 1.0;
pub const FORMAT_ID: &str = "lm-eval openbookqa v1.0: {question_stem} + ' '+choice";

#[derive(Debug)]
pub struct OpenBookQa(pub McTask);

impl OpenBookQa {
    /// Loads `data_root/openbookqa/openbookqa_test.jsonl`.
    pub fn load(data_root: &Path) -> Result<Self> {
        let path = data_root.join("openbookqa/openbookqa_test.jsonl");
        let text = data::read_string(&path)?;
        let mut docs = Vec::new();
        for (line, v) in data::jsonl(&path, &text)? {
            let query = data::get_str(&path, line, &v, "query")?;
            let choices = data::get_str_list(&path, line, &v, "choices")?;
            let gold = data::get_gold(&path, line, &v, "gold", choices.len())?;
            docs.push(McDoc {
                text: query,
                choices,
                gold,
            });
        }
        Ok(OpenBookQa(McTask::from_eval_split(
            "openbookqa",
            VERSION,
            docs,
            &format!("data:{}", sha256_hex(text.as_bytes())),
            FORMAT_ID,
            false,
            true,
        )))
    }
}

crate::delegate_mc_task!(OpenBookQa);
