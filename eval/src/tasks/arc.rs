//! ARC-Easy / ARC-Challenge (lm-eval `arc_easy`, `arc_challenge`, version 1.0).
//!
//! lm-eval: `doc_to_text: "Question: {{question}}\nAnswer:"`, choices = `choices.text`,
//! gold = `choices.label.index(answerKey)`, metrics acc + acc_norm, test split.
//! Data: llm-foundry's reformatted test files (`arc/arc_{easy,challenge}_test.jsonl`,
//! `{"query": "Question: <q>", "choices": [...], "gold": i}`), so the text is `query + "\nAnswer:"`.
//! Few-shot: lm-eval draws from the train split, which is not available offline; the eval split
//! is used instead (draw n+1, drop the doc itself; raw ARC docs have unique ids).

use std::path::Path;

use crate::data;
use crate::error::Result;
use crate::fewshot::{sha256_hex, McDoc, McTask};

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
    fn file(self) -> &'static str {
        match self {
            ArcVariant::Easy => "arc/arc_easy_test.jsonl",
            ArcVariant::Challenge => "arc/arc_challenge_test.jsonl",
        }
    }
}

#[derive(Debug)]
pub struct Arc(pub McTask);

impl Arc {
    /// Loads `data_root/arc/arc_{easy,challenge}_test.jsonl`.
    pub fn load(data_root: &Path, variant: ArcVariant) -> Result<Self> {
        let path = data_root.join(variant.file());
        let text = data::read_string(&path)?;
        let mut docs = Vec::new();
        for (line, v) in data::jsonl(&path, &text)? {
            let query = data::get_str(&path, line, &v, "query")?;
            let choices = data::get_str_list(&path, line, &v, "choices")?;
            if choices.is_empty() {
                return Err(data::err(&path, line, "no choices"));
            }
            let gold = data::get_gold(&path, line, &v, "gold", choices.len())?;
            docs.push(McDoc {
                text: format!("{query}\nAnswer:"),
                choices,
                gold,
            });
        }
        Ok(Arc(McTask::from_eval_split(
            variant.task_name(),
            VERSION,
            docs,
            &format!("data:{}", sha256_hex(text.as_bytes())),
            FORMAT_ID,
            false,
            true,
        )))
    }
}

crate::delegate_mc_task!(Arc);
