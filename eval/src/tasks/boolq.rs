//! BoolQ (lm-eval `boolq`, version 2.0): `"{{passage}}\nQuestion: {{question}}?\nAnswer:"`,
//! choices ["no", "yes"], gold = label, acc only, validation split.
//! Data: llm-foundry's `boolq/boolq_validation.jsonl` with `query = "Passage: <passage>\nQuestion:
//! <question>?"`; the "Passage: " prefix is removed and "\nAnswer:" appended. CAVEAT: super_glue's
//! passage is "<title> -- <passage>"; this file has no title, so prompts (and scores) differ
//! slightly from lm-eval's.
//! Few-shot: eval split (train not available), draw n+1, drop the doc itself (super_glue has `idx`).

use std::path::Path;

use crate::data;
use crate::error::Result;
use crate::fewshot::{sha256_hex, McDoc, McTask};

pub const VERSION: f64 = 2.0;
pub const FORMAT_ID: &str =
    "lm-eval boolq v2.0: {passage}\\nQuestion: {q}?\\nAnswer: + ' '+no/yes (no title)";

#[derive(Debug)]
pub struct BoolQ(pub McTask);

impl BoolQ {
    /// Loads `data_root/boolq/boolq_validation.jsonl`.
    pub fn load(data_root: &Path) -> Result<Self> {
        let path = data_root.join("boolq/boolq_validation.jsonl");
        let text = data::read_string(&path)?;
        let mut docs = Vec::new();
        for (line, v) in data::jsonl(&path, &text)? {
            let query = data::get_str(&path, line, &v, "query")?;
            let body = query
                .strip_prefix("Passage: ")
                .ok_or_else(|| data::err(&path, line, "query does not start with `Passage: `"))?;
            let choices = data::get_str_list(&path, line, &v, "choices")?;
            if choices != ["no", "yes"] {
                return Err(data::err(&path, line, "choices are not [\"no\", \"yes\"]"));
            }
            let gold = data::get_gold(&path, line, &v, "gold", 2)?;
            docs.push(McDoc {
                text: format!("{body}\nAnswer:"),
                choices,
                gold,
            });
        }
        Ok(BoolQ(McTask::from_eval_split(
            "boolq",
            VERSION,
            docs,
            &format!("data:{}", sha256_hex(text.as_bytes())),
            FORMAT_ID,
            false,
            false,
        )))
    }
}

crate::delegate_mc_task!(BoolQ);
